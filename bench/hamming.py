"""Hamming range search over 1M pHashes: ccvec's MIH in SQL against the alternatives, in one run.

    python bench/hamming.py [DIR ...] [--rows 1000000] [--queries 100] [--hnsw-rows 100000]

DIRs (default: ../shared/data/photos and ../shared/data/stamps when present) give real photos.
The table holds their pHashes, the pHashes of variants made from them (resized, recompressed,
cropped, brightened), then fill up to --rows: half uniform random, half real hashes with each bit
flipped with probability 0.35. Real pHashes are far from uniform (the DC bit is nearly always
set, and low-frequency bits are correlated), so the fill keeps part of that structure. Queries are
real and variant hashes, so answers are not empty.

Compared, at radius 4, 8 and 12:
  * ccvec.hamming_neighbours   (MIH: expression indexes on chunks, probe, verify)
  * SQL brute force            (parallel seq scan with bit_count)
  * pgvector HNSW on bit(64)   (--hnsw-rows rows only: its build is slow; recall vs exact)
  * numpy brute force          (xor + popcount on a uint64 array in memory)
  * FAISS IndexBinaryFlat and IndexBinaryMultiHash (in memory, range_search)
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ccvec import db, migrate, neardup
from ccvec.phash import hash_pixels, phash_from_pixels, to_signed
from ccvec.sources import IMAGE_EXTENSIONS

SHARED = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
RADII = (4, 8, 12)


def variants(image):
    """Mild edits a catalog sees: smaller copies, recompression, small crops, brightness."""
    from PIL import Image, ImageEnhance

    w, h = image.size
    yield image.resize((max(1, w // 2), max(1, h // 2)))
    for q in (30, 60):
        buf = io.BytesIO()
        image.save(buf, "JPEG", quality=q)
        yield Image.open(io.BytesIO(buf.getvalue()))
    yield image.crop((w // 20, h // 20, w - w // 20, h - h // 20))
    yield ImageEnhance.Brightness(image).enhance(1.3)


def real_hashes(folders: list[Path]) -> tuple[np.ndarray, np.ndarray]:
    """(hashes of originals, hashes of their variants)."""
    from PIL import Image

    originals, edited = [], []
    for folder in folders:
        for path in sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS):
            image = Image.open(path).convert("RGB")
            originals.append(hash_pixels(image.convert("L")))
            edited.extend(hash_pixels(v.convert("L")) for v in variants(image))
    return phash_from_pixels(np.stack(originals)), phash_from_pixels(np.stack(edited))


def fill(real: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    half = n // 2
    uniform = rng.integers(0, 2**64, half, dtype=np.uint64, endpoint=False)
    base = real[rng.integers(0, len(real), n - half)]
    flips = np.packbits(rng.random((n - half, 64)) < 0.35, axis=1).view(">u8").ravel().astype(np.uint64)
    return np.concatenate([uniform, base ^ flips])


def exact(hashes: np.ndarray, query: int, radius: int) -> np.ndarray:
    return np.flatnonzero(np.bitwise_count(hashes ^ np.uint64(query)) <= radius)


def timed_queries(fn, queries) -> tuple[list[float], list]:
    times, results = [], []
    for q in queries:
        start = time.perf_counter()
        results.append(fn(q))
        times.append(time.perf_counter() - start)
    return times, results


def load_table(url: str, hashes: np.ndarray) -> list[uuid.UUID]:
    ids = [uuid.UUID(int=i + 1) for i in range(len(hashes))]
    with (
        db.connection(url) as conn,
        conn.cursor().copy(
            "COPY ccvec.image_feature (identifier, phash, content_sha256, width, height) FROM STDIN"
        ) as copy,
    ):
        zero = bytes(32)
        for ident, h in zip(ids, hashes.tolist(), strict=True):
            copy.write_row([ident, to_signed(h), zero, 1, 1])
    return ids


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("folders", nargs="*", type=Path)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument(
        "--brute-queries", type=int, default=20, help="SQL brute force is slow: fewer queries"
    )
    parser.add_argument("--hnsw-rows", type=int, default=100_000)
    args = parser.parse_args()
    for folder in args.folders:
        if not folder.is_dir():
            parser.error(f"{folder}: no such folder")
    folders = args.folders or [p for p in (SHARED / "photos", SHARED / "stamps") if p.is_dir()]
    if not folders:
        parser.error("give a folder of images")
    rng = np.random.default_rng(0)

    print(f"hashing real photos and variants from {', '.join(map(str, folders))} ...", flush=True)
    originals, edited = real_hashes(folders)
    real = np.concatenate([originals, edited])
    if args.rows < len(real):
        parser.error(f"--rows {args.rows:,} is fewer than the {len(real):,} real hashes; give at least that")
    hashes = np.concatenate([real, fill(real, args.rows - len(real), rng)])
    queries = [int(q) for q in rng.choice(real, args.queries, replace=False)]
    print(
        f"{len(hashes):,} hashes ({len(originals)} originals, {len(edited)} variants); {len(queries)} queries"
    )

    work = Path(tempfile.mkdtemp(prefix="ccvec-bench-"))
    os.environ["CCVEC_HOME"] = str(work)
    results: dict[tuple[str, int], dict] = {}
    try:
        server = db.start_embedded(work / "pgdata")
        url = server
        migrate.upgrade(url)
        start = time.perf_counter()
        load_table(url, hashes)
        print(f"COPY {len(hashes):,} rows: {time.perf_counter() - start:.1f}s", flush=True)
        conn = db.connect(url, autocommit=True)
        start = time.perf_counter()
        chunks = neardup.configure(conn)
        mih_build = time.perf_counter() - start
        print(f"MIH: {chunks} chunks, indexes built in {mih_build:.1f}s", flush=True)
        conn.execute("VACUUM ANALYZE ccvec.image_feature")

        def sql_ids(sql: str, q: int, r: int) -> set[int]:
            return {row[0].int - 1 for row in conn.execute(sql, [to_signed(q), r])}

        for r in RADII:
            truth = [set(exact(hashes, q, r).tolist()) for q in queries]
            t, got = timed_queries(
                lambda q, r=r: sql_ids("SELECT identifier FROM ccvec.hamming_neighbours(%s, %s)", q, r),
                queries,
            )
            results[("ccvec MIH (SQL)", r)] = {"times": t, "recall": recall(got, truth)}
            t, got = timed_queries(
                lambda q, r=r: sql_ids(
                    "SELECT identifier FROM ccvec.image_feature WHERE ccvec.hamming(phash, %s) <= %s", q, r
                ),
                queries[: args.brute_queries],
            )
            results[("SQL brute force", r)] = {"times": t, "recall": recall(got, truth)}
            t, got = timed_queries(lambda q, r=r: set(exact(hashes, q, r).tolist()), queries)
            results[("numpy brute force", r)] = {"times": t, "recall": recall(got, truth)}
            print(f"radius {r}: SQL done", flush=True)

        faiss_results(hashes, queries, results)
        hnsw_build = hnsw_results(conn, hashes[: args.hnsw_rows], queries, results)
        conn.close()
    finally:
        db.discard_embedded(work / "pgdata")
        shutil.rmtree(work, ignore_errors=True)
    print_table(results, len(hashes), args.hnsw_rows, mih_build, hnsw_build)


def recall(got: list[set[int]], truth: list[set[int]]) -> float:
    found = sum(len(g & t) for g, t in zip(got, truth, strict=False))
    total = sum(len(t) for t in truth[: len(got)])
    return found / total if total else 1.0


def faiss_results(hashes: np.ndarray, queries: list[int], results: dict) -> None:
    import faiss

    codes = hashes.astype(">u8").view(np.uint8).reshape(-1, 8)
    qcodes = np.array(queries, dtype=np.uint64).astype(">u8").view(np.uint8).reshape(-1, 8)
    flat = faiss.IndexBinaryFlat(64)
    flat.add(codes)
    multi = faiss.IndexBinaryMultiHash(64, 3, 21)
    multi.add(codes)
    faiss.omp_set_num_threads(1)
    for r in RADII:
        truth = [set(exact(hashes, q, r).tolist()) for q in queries]
        multi.nflip = r // 3  # probe every chunk value within r // nhash: exact, like MIH
        for name, index in (("FAISS IndexBinaryFlat", flat), ("FAISS IndexBinaryMultiHash", multi)):
            times, got = [], []
            for i in range(len(queries)):
                start = time.perf_counter()
                lims, _, labels = index.range_search(qcodes[i : i + 1], r + 1)  # strict: distance < radius
                times.append(time.perf_counter() - start)
                got.append(set(labels[lims[0] : lims[1]].tolist()))
            results[(name, r)] = {"times": times, "recall": recall(got, truth)}


def hnsw_results(conn, hashes: np.ndarray, queries: list[int], results: dict) -> float:
    """pgvector HNSW on bit(64): k-NN by design, so a range query is top-k (k=100) then a filter."""
    conn.execute("CREATE TABLE hnsw_bits (id integer PRIMARY KEY, bits bit(64))")
    with conn.cursor().copy("COPY hnsw_bits (id, bits) FROM STDIN") as copy:
        for i, h in enumerate(hashes.tolist()):
            copy.write_row([i, format(h, "064b")])
    conn.execute("SET maintenance_work_mem = '1GB'")
    print(f"HNSW on bit(64): building over {len(hashes):,} rows ...", flush=True)
    start = time.perf_counter()
    conn.execute("CREATE INDEX ON hnsw_bits USING hnsw (bits bit_hamming_ops)")
    build = time.perf_counter() - start
    conn.execute("SET hnsw.ef_search = 200")
    for r in RADII:
        truth = [set(exact(hashes, q, r).tolist()) for q in queries]
        times, got = timed_queries(
            lambda q, r=r: {
                row[0]
                for row in conn.execute(
                    "SELECT id, d FROM (SELECT id, bits <~> %s::bit(64) AS d FROM hnsw_bits "
                    "ORDER BY bits <~> %s::bit(64) LIMIT 100) t WHERE d <= %s",
                    [format(q, "064b"), format(q, "064b"), r],
                )
            },
            queries,
        )
        results[("pgvector HNSW bit(64)*", r)] = {"times": times, "recall": recall(got, truth)}
    return build


def print_table(results: dict, rows: int, hnsw_rows: int, mih_build: float, hnsw_build: float) -> None:
    print()
    print(f"{rows:,} hashes; * HNSW over the first {hnsw_rows:,} rows only")
    print(f"index build: MIH {mih_build:.1f}s over {rows:,} rows; ", end="")
    print(f"HNSW bit(64) {hnsw_build:.1f}s over {hnsw_rows:,}")
    header = ("method", "radius", "mean ms", "p95 ms", "q/s", "recall", "vs SQL brute")
    print("{:30s} {:>6s} {:>9s} {:>8s} {:>8s} {:>7s} {:>12s}".format(*header))
    for r in RADII:
        brute = statistics.mean(results[("SQL brute force", r)]["times"])
        for (name, radius), v in results.items():
            if radius != r:
                continue
            mean = statistics.mean(v["times"])
            p95 = sorted(v["times"])[int(0.95 * (len(v["times"]) - 1))]
            print(
                f"{name:30s} {r:6d} {mean * 1000:9.2f} {p95 * 1000:8.2f} {1 / mean:8.0f} "
                f"{v['recall']:7.3f} {brute / mean:11.1f}x"
            )


if __name__ == "__main__":
    main()
