"""`ccvec dedup` time at scale on synthetic hashes and embeddings, against FAISS and numpy, in one run.

    python bench/dedup_scale.py [--sizes 20000,100000] [--add 1000] [--dim 1280] [--jobs N]
                                [--brute-max 20000]

For each size N, a fresh database: N synthetic images, 80 % unique, 20 % in planted near-duplicate
groups of 2-6 (a few pHash bits flipped, one copy in four mirrored, i.e. the odd-column bits of its
hash flipped as a mirrored image's would; its vector the original's plus noise, cosine ~0.95).
Unique vectors are noisy variants of 2,000 random centres (cosine ~0.8 to their centre, ~0.65 to
each other): embeddings of real photos are clustered like this, uniform random vectors are not.
They are written straight into image_feature / image_embedding (EfficientNet-Lite0's dimension).

ccvec: the HNSW index, then `neardup.dedup` at its defaults (edge search, then grouping), then
`--add` more images (incremental run), then `--rebuild`, compared with the incremental groups.
Found pairs: the share of planted same-group pairs that ccvec's edges hold.

What a user would do instead, on the same data in memory:
* FAISS `IndexHNSWFlat` (M 16, efConstruction 64, efSearch 64): build, the 24 nearest of every
  image, the same pHash (8 dihedral transforms, <= 8 bits) and cosine (>= 0.85) rules on those
  pairs in numpy, then connected components (scipy). No grouping rule beyond components.
* numpy brute force: all pairs' 8 dihedral Hamming distances and cosines, in blocks; run up to
  `--brute-max` images, extrapolated as N^2 beyond (labelled).
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
import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ccvec import db, defaults, migrate, neardup
from ccvec.phash import to_signed

MODEL = "synthetic"
MIRROR = np.uint64(0x5555555555555555)
MASKS = (0, 0x5555555555555555, 0x00FF00FF00FF00FF, 0x55AA55AA55AA55AA)


def synthetic(n: int, dim: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(hashes, unit vectors, planted group of each image)."""
    rng = np.random.default_rng(seed)
    hashes = rng.integers(0, 2**63, n, dtype=np.uint64) * np.uint64(2) + rng.integers(0, 2, n).astype(
        np.uint64
    )
    centres = rng.normal(size=(2000, dim)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    vectors = centres[rng.integers(0, len(centres), n)] + rng.normal(
        scale=0.75 / dim**0.5, size=(n, dim)
    ).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    group = np.arange(n)
    i = int(n * 0.8)
    while i < n:
        size = min(int(rng.integers(2, 7)), n - i)
        for j in range(i + 1, i + size):
            flips = rng.choice(64, int(rng.integers(0, 6)), replace=False)
            hashes[j] = hashes[i] ^ np.uint64(sum(1 << int(b) for b in flips))
            if rng.random() < 0.25:
                hashes[j] ^= MIRROR
            vectors[j] = vectors[i] + rng.normal(scale=0.3 / dim**0.5, size=dim).astype(np.float32)
            group[j] = i
        i += size
    return hashes, vectors / np.linalg.norm(vectors, axis=1, keepdims=True), group


def insert(conn: psycopg.Connection, hashes: np.ndarray, vectors: np.ndarray, ids: list[uuid.UUID]) -> None:
    from pgvector import HalfVector

    conn.execute(
        "INSERT INTO ccvec.model (name, version, onnx_sha256, dim, spec) "
        "VALUES (%s, '1', 'synthetic', %s, '{}') ON CONFLICT DO NOTHING",
        [MODEL, vectors.shape[1]],
    )
    with conn.cursor().copy(
        "COPY ccvec.image_feature (identifier, phash, content_sha256, width, height) FROM STDIN"
    ) as copy:
        for ident, h in zip(ids, hashes, strict=True):
            copy.write_row([ident, to_signed(int(h)), bytes(32), 640, 480])
    with conn.cursor().copy(
        "COPY ccvec.image_embedding (model, identifier, embedding) FROM STDIN WITH (FORMAT BINARY)"
    ) as copy:
        copy.set_types(["text", "uuid", "halfvec"])
        for ident, v in zip(ids, vectors, strict=True):
            copy.write_row([MODEL, ident, HalfVector(v)])
    conn.commit()
    conn.execute("ANALYZE ccvec.image_feature")
    conn.execute("ANALYZE ccvec.image_embedding")
    conn.commit()


def transpose(h: np.ndarray) -> np.ndarray:
    h = h.copy()
    for shift, mask in ((7, 0x00AA00AA00AA00AA), (14, 0x0000CCCC0000CCCC), (28, 0x00000000F0F0F0F0)):
        t = (h ^ (h >> np.uint64(shift))) & np.uint64(mask)
        h = h ^ t ^ (t << np.uint64(shift))
    return h


def dihedral(h: np.ndarray) -> list[np.ndarray]:
    t = transpose(h)
    return [h ^ np.uint64(m) for m in MASKS] + [t ^ np.uint64(m) for m in MASKS]


def dihedral_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Elementwise min over the 8 transforms of a of the Hamming distance to b."""
    return np.min([np.bitwise_count(p ^ b) for p in dihedral(a)], axis=0)


def dihedral_distance_block(rows: np.ndarray, hashes: np.ndarray) -> np.ndarray:
    best = None
    for p in dihedral(rows):
        d = np.bitwise_count(p[:, None] ^ hashes[None, :])
        best = d if best is None else np.minimum(best, d)
    return best


def groups(conn: psycopg.Connection) -> set[frozenset]:
    out: dict = {}
    for ident, group in conn.execute("SELECT identifier, group_id FROM ccvec.duplicate_member"):
        out.setdefault(group, set()).add(ident)
    return {frozenset(g) for g in out.values()}


def planted_pairs(group: np.ndarray) -> set[tuple[int, int]]:
    members: dict[int, list[int]] = {}
    for i, g in enumerate(group):
        members.setdefault(int(g), []).append(i)
    return {(a, b) for m in members.values() for x, a in enumerate(m) for b in m[x + 1 :]}


def found_share(pairs: set[tuple[int, int]], planted: set[tuple[int, int]]) -> float:
    return len(pairs & planted) / max(len(planted), 1)


def server_cpu(pgdata: Path) -> float:
    """CPU seconds used so far by the server: the postmaster, its live backends and those that exited
    (reaped children count in the postmaster's cutime / cstime). Under a shared machine's load this
    is what the work costs; wall time is what it costs next to everyone else's."""
    postmaster = int((db.server_location(pgdata) / "postmaster.pid").read_text().split()[0])
    tick = os.sysconf("SC_CLK_TCK")

    def fields(pid: int | str) -> list[str]:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()

    own = fields(postmaster)
    total = sum(int(x) for x in own[11:15])  # utime, stime, cutime, cstime
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                f = fields(entry.name)
            except OSError:
                continue
            if int(f[1]) == postmaster:
                total += int(f[11]) + int(f[12])
    return total / tick


def run_ccvec(url: str, n: int, add: int, data: tuple, jobs: int, pgdata: Path) -> dict:
    hashes, vectors, group = data
    ids = [uuid.UUID(int=i + 1) for i in range(n + add)]
    index_of = {ident: i for i, ident in enumerate(ids)}
    out: dict = {}
    with db.connection(url) as conn:
        insert(conn, hashes[:n], vectors[:n], ids[:n])
        from ccvec.graph import ensure_index

        started = time.perf_counter()
        ensure_index(conn, MODEL)
        out["index"] = time.perf_counter() - started
        phases: list[float] = []
        cpu = server_cpu(pgdata)
        started = time.perf_counter()
        neardup.dedup(
            conn, model=MODEL, jobs=jobs, on_progress=lambda d, t: phases.append(time.perf_counter())
        )
        out["full"] = time.perf_counter() - started
        out["cpu"] = server_cpu(pgdata) - cpu
        out["edges"] = (phases[-1] if phases else started) - started
        pairs = {
            tuple(sorted((index_of[a], index_of[b])))
            for a, b in conn.execute("SELECT a, b FROM ccvec.duplicate_edge").fetchall()
        }
        out["found"] = found_share(pairs, planted_pairs(group[:n]))
        insert(conn, hashes[n:], vectors[n:], ids[n:])
        started = time.perf_counter()
        neardup.dedup(conn, model=MODEL, jobs=jobs)
        out["add"] = time.perf_counter() - started
        incremental = groups(conn)
        started = time.perf_counter()
        neardup.dedup(conn, model=MODEL, rebuild=True, jobs=jobs)
        out["rebuild"] = time.perf_counter() - started
        out["same"] = groups(conn) == incremental
        out["groups"] = sum(len(g) > 1 for g in incremental)
    return out


def run_faiss(hashes: np.ndarray, vectors: np.ndarray, group: np.ndarray) -> dict:
    import faiss
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    faiss.omp_set_num_threads(os.cpu_count() or 1)
    n, k = len(vectors), defaults.DEDUP_K
    cpu = time.process_time()
    started = time.perf_counter()
    index = faiss.IndexHNSWFlat(vectors.shape[1], 16, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = 64
    index.add(vectors)
    build = time.perf_counter() - started
    started = time.perf_counter()
    index.hnsw.efSearch = 64
    sims, found = index.search(vectors, k + 1)
    rows = np.repeat(np.arange(n), k + 1)
    cols, sims = found.ravel(), sims.ravel()
    keep = (cols >= 0) & (cols != rows)
    rows, cols, sims = rows[keep], cols[keep], sims[keep]
    near = dihedral_distance(hashes[rows], hashes[cols]) <= defaults.HAMMING_RADIUS
    keep = near | (sims >= defaults.DEDUP_COSINE)
    a, b = np.minimum(rows[keep], cols[keep]), np.maximum(rows[keep], cols[keep])
    connected_components(coo_matrix((np.ones(len(a)), (a, b)), shape=(n, n)), directed=False)
    search = time.perf_counter() - started
    cpu = time.process_time() - cpu
    pairs = set(zip(a.tolist(), b.tolist(), strict=True))
    return {"build": build, "search": search, "cpu": cpu, "found": found_share(pairs, planted_pairs(group))}


def brute_force_time(hashes: np.ndarray, vectors: np.ndarray, block: int = 1000) -> float:
    started = time.perf_counter()
    for start in range(0, len(hashes), block):
        dihedral_distance_block(hashes[start : start + block], hashes)
        _ = vectors[start : start + block] @ vectors.T
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="20000,100000")
    parser.add_argument("--add", type=int, default=1_000)
    parser.add_argument("--dim", type=int, default=1280)
    parser.add_argument("--jobs", type=int, default=defaults.SEARCH_JOBS)
    parser.add_argument("--brute-max", type=int, default=20_000)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    work = Path(tempfile.mkdtemp(prefix="ccvec-dedup-scale-"))
    os.environ["CCVEC_HOME"] = str(work)
    url = db.start_embedded(work / "pgdata")
    admin = url.replace("/ccvec?", "/postgres?")
    rows = []
    brute: dict[int, float] = {}
    try:
        for n in sizes:
            data = synthetic(n + args.add, args.dim, seed=1)
            name = f"dedup_{n}"
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f"CREATE DATABASE {name}")
            size_url = url.replace("/ccvec?", f"/{name}?")
            migrate.upgrade(size_url)
            ours = run_ccvec(size_url, n, args.add, data, args.jobs, work / "pgdata")
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f"DROP DATABASE {name} WITH (FORCE)")
            hashes, vectors, group = (x[:n] for x in data)
            theirs = run_faiss(hashes, vectors, group)
            if n <= args.brute_max:
                brute[n] = brute_force_time(hashes, vectors)
            rows.append((n, ours, theirs))
            print(f"size {n:,} done", flush=True)
    finally:
        db.discard_embedded(work / "pgdata")
        shutil.rmtree(work, ignore_errors=True)
    print(f"\nccvec dedup at its defaults, --jobs {args.jobs}")
    print(
        "| images | HNSW index s | dedup s | of which edges s | grouping s | dedup, server CPU s | "
        "planted pairs found |"
    )
    print("|---|---|---|---|---|---|---|")
    for n, o, _ in rows:
        edges, grouping = o["edges"], o["full"] - o["edges"]
        print(
            f"| {n:,} | {o['index']:.1f} | {o['full']:.1f} | {edges:.1f} | {grouping:.1f} | {o['cpu']:.1f} | "
            f"{o['found']:.4f} |"
        )
    print(f"\nincremental (+{args.add:,} images) and rebuild")
    print("| images | incremental s | rebuild s | incremental = rebuild |")
    print("|---|---|---|---|")
    for n, o, _ in rows:
        same = f"{o['same']} ({o['groups']:,} groups of 2+)"
        print(f"| {n:,} | {o['add']:.1f} | {o['rebuild']:.1f} | {same} |")
    print("\nagainst FAISS HNSW + the same rules + components, and numpy brute force (same run)")
    print(
        "| images | ccvec index + dedup s | FAISS build + search + rules s | FAISS CPU s | "
        "FAISS pairs found | ccvec / FAISS | numpy brute force s | ccvec dedup / brute force |"
    )
    print("|---|---|---|---|---|---|---|---|")
    largest = max(brute) if brute else None
    for n, o, f in rows:
        if n in brute:
            b, label = brute[n], f"{brute[n]:.1f}"
        elif largest:
            b = brute[largest] * (n / largest) ** 2
            label = f"{b:.0f} (extrapolated as N^2 from {largest:,})"
        else:
            b, label = float("nan"), "not run"
        ours, theirs = o["index"] + o["full"], f["build"] + f["search"]
        print(
            f"| {n:,} | {ours:.1f} | {theirs:.1f} | {f['cpu']:.1f} | {f['found']:.4f} | "
            f"{ours / theirs:.2f}x | {label} | "
            f"{o['full'] / b:.3f} |"
        )


if __name__ == "__main__":
    main()
