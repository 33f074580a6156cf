"""`ccvec dedup` time at scale on synthetic hashes and embeddings, full build and incremental.

    python bench/dedup_scale.py [--images 20000] [--add 1000] [--dim 1280]

N synthetic images: 80 % unique (uniform random pHash, random unit vector), 20 % in near-duplicate
groups of 2-6 (a few pHash bits flipped, small vector noise; one copy in four mirrored, i.e. its
hash has the odd-column bits flipped as a mirrored image's would). They are written straight into
image_feature / image_embedding (dimension of EfficientNet-Lite0), then `neardup.dedup` runs at its
defaults and is timed by phase: edge search (pHash with dihedral probes, embedding kNN through HNSW)
and grouping. Then `--add` more images arrive and the incremental run is timed and compared with a
full rebuild. Beside it, what a user would do instead: brute-force all pairs in numpy (the 8 dihedral
Hamming distances and the cosine of every pair), timed on the same images.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ccvec import db, migrate, neardup
from ccvec.phash import to_signed

MODEL = "synthetic"
MIRROR = np.uint64(0x5555555555555555)


def synthetic(n: int, dim: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    hashes = rng.integers(0, 2**63, n, dtype=np.uint64) * np.uint64(2) + rng.integers(0, 2, n).astype(
        np.uint64
    )
    vectors = rng.normal(size=(n, dim)).astype(np.float32)
    i = int(n * 0.8)
    while i < n:
        size = min(int(rng.integers(2, 7)), n - i)
        for j in range(i + 1, i + size):
            flips = rng.choice(64, int(rng.integers(0, 6)), replace=False)
            hashes[j] = hashes[i] ^ np.uint64(sum(1 << int(b) for b in flips))
            if rng.random() < 0.25:
                hashes[j] ^= MIRROR
            vectors[j] = vectors[i] + rng.normal(scale=0.15, size=dim).astype(np.float32)
        i += size
    return hashes, vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def insert(conn, hashes: np.ndarray, vectors: np.ndarray, dim: int) -> None:
    from pgvector import HalfVector

    conn.execute(
        "INSERT INTO ccvec.model (name, version, onnx_sha256, dim, spec) "
        "VALUES (%s, '1', 'synthetic', %s, '{}') ON CONFLICT DO NOTHING",
        [MODEL, dim],
    )
    ids = [uuid.uuid4() for _ in hashes]
    with conn.cursor().copy(
        "COPY ccvec.image_feature (identifier, phash, content_sha256, width, height) FROM STDIN"
    ) as copy:
        for ident, h in zip(ids, hashes, strict=True):
            copy.write_row([ident, to_signed(int(h)), bytes(32), 640, 480])
    with conn.cursor().copy("COPY ccvec.image_embedding (model, identifier, embedding) FROM STDIN") as copy:
        for ident, v in zip(ids, vectors, strict=True):
            copy.write_row([MODEL, ident, HalfVector(v)])
    conn.commit()
    conn.execute("ANALYZE ccvec.image_feature")
    conn.execute("ANALYZE ccvec.image_embedding")
    conn.commit()


def dihedral_distance_block(rows: np.ndarray, hashes: np.ndarray) -> np.ndarray:
    def transpose(h: np.ndarray) -> np.ndarray:
        h = h.copy()
        for shift, mask in ((7, 0x00AA00AA00AA00AA), (14, 0x0000CCCC0000CCCC), (28, 0x00000000F0F0F0F0)):
            t = (h ^ (h >> np.uint64(shift))) & np.uint64(mask)
            h = h ^ t ^ (t << np.uint64(shift))
        return h

    masks = (0, 0x5555555555555555, 0x00FF00FF00FF00FF, 0x55AA55AA55AA55AA)
    t = transpose(rows)
    best = None
    for p in [rows ^ np.uint64(m) for m in masks] + [t ^ np.uint64(m) for m in masks]:
        d = np.bitwise_count(p[:, None] ^ hashes[None, :])
        best = d if best is None else np.minimum(best, d)
    return best


def groups(conn) -> set[frozenset]:
    out: dict = {}
    for ident, group in conn.execute("SELECT identifier, group_id FROM ccvec.duplicate_member"):
        out.setdefault(group, set()).add(ident)
    return {frozenset(g) for g in out.values()}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--images", type=int, default=20_000)
    parser.add_argument("--add", type=int, default=1_000)
    parser.add_argument("--dim", type=int, default=1280)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ccvec-dedup-scale-"))
    os.environ["CCVEC_HOME"] = str(work)
    url = db.start_embedded(work / "pgdata")
    try:
        migrate.upgrade(url)
        hashes, vectors = synthetic(args.images + args.add, args.dim, seed=1)
        with db.connection(url) as conn:
            insert(conn, hashes[: args.images], vectors[: args.images], args.dim)
            started = time.perf_counter()
            from ccvec.graph import ensure_index

            ensure_index(conn, MODEL)
            index_s = time.perf_counter() - started
            phases: list[tuple[int, float]] = []
            started = time.perf_counter()
            neardup.dedup(conn, model=MODEL, on_progress=lambda d, t: phases.append((d, time.perf_counter())))
            full_s = time.perf_counter() - started
            edges_s = phases[-1][1] - started if phases else 0.0
            insert(conn, hashes[args.images :], vectors[args.images :], args.dim)
            started = time.perf_counter()
            neardup.dedup(conn, model=MODEL)
            add_s = time.perf_counter() - started
            incremental = groups(conn)
            started = time.perf_counter()
            neardup.dedup(conn, model=MODEL, rebuild=True)
            rebuild_s = time.perf_counter() - started
            same = groups(conn) == incremental
            n_groups = sum(len(g) > 1 for g in incremental)
        brute_s = brute_force_time(hashes[: args.images], vectors[: args.images])
    finally:
        db.stop_embedded(work / "pgdata")
        shutil.rmtree(work, ignore_errors=True)
    n, per = args.images, full_s / args.images
    print("\n| step | images | seconds | ms / image |\n|---|---|---|---|")
    print(f"| HNSW index (dim {args.dim}) | {n:,} | {index_s:.1f} | {index_s / n * 1000:.2f} |")
    print(f"| dedup, full build | {n:,} | {full_s:.1f} | {per * 1000:.2f} |")
    print(f"|   of which edge search | {n:,} | {edges_s:.1f} | {edges_s / n * 1000:.2f} |")
    print(f"|   of which grouping + canonical | {n:,} | {full_s - edges_s:.1f} | |")
    print(
        f"| dedup, incremental (+{args.add:,}) | {args.add:,} | {add_s:.1f} | {add_s / args.add * 1000:.2f} |"
    )
    print(
        f"| dedup --rebuild (all) | {n + args.add:,} | {rebuild_s:.1f} | "
        f"{rebuild_s / (n + args.add) * 1000:.2f} |"
    )
    print(f"| numpy brute force, all pairs (8 dihedral Hamming + cosine) | {n:,} | {brute_s:.1f} | |")
    print(f"\nincremental groups equal the rebuild: {same} ({n_groups:,} groups of 2+)")
    print(
        f"ccvec / brute force time: {full_s / brute_s:.2f}; brute force grows with N^2 "
        f"(x{(100_000 / n) ** 2:.0f} at 100k), ccvec with N x log N"
    )


def brute_force_time(hashes: np.ndarray, vectors: np.ndarray, block: int = 1000) -> float:
    started = time.perf_counter()
    for start in range(0, len(hashes), block):
        dihedral_distance_block(hashes[start : start + block], hashes)
        _ = vectors[start : start + block] @ vectors.T
    return time.perf_counter() - started


if __name__ == "__main__":
    main()
