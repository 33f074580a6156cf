"""VisualRank at catalog scale: in SQL, streamed through COPY to scipy, and scipy alone, in one run.

    python bench/visualrank.py [--size 1000000] [--k 10] [--skip-sql] [--rounds 2]

A catalog of `--size` images and a kNN run with k distinct random neighbours each (similarities in
[0.5, 1]), written with binary COPY. Then, cold (no previous ranks) each time:

* `SELECT ccvec.visualrank(run)`: the power iteration in SQL (sql/0005_scores.up.sql);
* `ccvec.visualrank.visualrank()` (what `ccvec refresh` runs): the run's adjacency by position,
  which the graph's writers store once (`visualrank.store_adjacency`, timed here on its own: the
  graph build pays it), scipy.sparse power iteration, ranks back with binary COPY;
* `ccvec.visualrank.visualrank(source="uuid")` (the way before the stored adjacency, and the way
  when the edges changed since): edges out as UUID pairs in packed values, mapped to integers in
  the client;
* `ccvec.visualrank.visualrank(source="node")`: the same with edges out as pairs of
  ccvec.image_node integer ids (measured, not adopted: docs/benchmarks.md);
* scipy.sparse power iteration alone on the same edges already in memory as integer arrays
  (what a user with the edges in hand would run);

the three streamed ways alternate for `--rounds` rounds (best of each is reported), then one warm
run of the default (previous ranks present, as in `ccvec refresh`), and one after the edges
changed (the adjacency stale: the edges read and the adjacency stored again, as the first refresh
after a change of `knn_edge` does). Prints the largest difference between the
rank vectors (they sum to 1), also after scaling each to a maximum of 1.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.refresh import iterations as latest_iterations
from ccvec import db, migrate, visualrank

CHUNK = 1_000_000


def write_graph(conn, n: int, k: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """k distinct random neighbours per image (never itself), by binary COPY; returns (src, dst, sim)."""
    conn.execute(
        "INSERT INTO ccvec.model (name, version, onnx_sha256, dim, spec) VALUES ('bench', 'b', 'b', 8, '{}')"
    )
    run = conn.execute(
        "INSERT INTO ccvec.knn_run (model, k, ef_search, is_current, images) "
        "VALUES ('bench', %s, 64, true, %s) RETURNING id",
        [k, n],
    ).fetchone()[0]
    src = np.repeat(np.arange(n), k)
    r = np.repeat(rng.integers(1, n // 2, n), k)
    m = np.repeat(rng.integers(1, max(2, n // (2 * k)), n), k)
    dst = (src + r + np.tile(np.arange(k), n) * m) % n
    sim = rng.uniform(0.5, 1.0, n * k).astype(np.float32)
    row = np.dtype(
        [
            ("count", ">i2"),
            ("run_len", ">i4"),
            ("run", ">i8"),
            ("a_len", ">i4"),
            ("a", ">u8", 2),
            ("b_len", ">i4"),
            ("b", ">u8", 2),
            ("rank_len", ">i4"),
            ("rank", ">i2"),
            ("sim_len", ">i4"),
            ("sim", ">f4"),
        ]
    )
    sql = "COPY ccvec.knn_edge (run_id, identifier, neighbour, rank, similarity) FROM STDIN (FORMAT BINARY)"
    with conn.cursor().copy(sql) as copy:
        copy.write(b"PGCOPY\n\xff\r\n\x00" + b"\x00" * 8)
        for start in range(0, n * k, CHUNK):
            part = slice(start, min(start + CHUNK, n * k))
            out = np.zeros(part.stop - part.start, row)
            out["count"] = 5
            out["run_len"], out["a_len"], out["b_len"], out["rank_len"], out["sim_len"] = 8, 16, 16, 2, 4
            out["run"] = run
            out["a"][:, 1] = src[part] + 1  # uuid.UUID(int=i + 1)
            out["b"][:, 1] = dst[part] + 1
            out["rank"] = np.arange(part.start, part.stop) % k + 1
            out["sim"] = sim[part]
            copy.write(out.tobytes())
        copy.write(b"\xff\xff")
    catalog_row = np.dtype(
        [("count", ">i2"), ("id_len", ">i4"), ("id", ">u8", 2), ("url_len", ">i4"), ("url", "S8")]
    )
    with conn.cursor().copy("COPY ccvec.image (identifier, url) FROM STDIN (FORMAT BINARY)") as copy:
        copy.write(b"PGCOPY\n\xff\r\n\x00" + b"\x00" * 8)
        for start in range(0, n, CHUNK):
            ids = np.arange(start, min(start + CHUNK, n))
            out = np.zeros(len(ids), catalog_row)
            out["count"], out["id_len"], out["url_len"] = 2, 16, 8
            out["id"][:, 1] = ids + 1
            out["url"] = np.char.mod("%08x", ids).astype("S8")
            copy.write(out.tobytes())
        copy.write(b"\xff\xff")
    conn.execute("ANALYZE ccvec.knn_edge")
    conn.execute("ANALYZE ccvec.image")
    conn.commit()
    return src, dst, sim


def scipy_alone(n: int, src, dst, sim, d: float = 0.85, tol: float = 1e-6) -> tuple[float, np.ndarray, int]:
    start = time.perf_counter()
    ranks, iterations, _ = visualrank.power_iteration(n, src, dst, sim, np.full(n, 1.0 / n), d, tol, 200)
    return time.perf_counter() - start, ranks, iterations


def stored_ranks(conn, n: int) -> np.ndarray:
    """visual_rank as a vector indexed like the generated graph (uuid int - 1)."""
    out = np.zeros(n)
    for ident, rank in conn.execute("SELECT identifier, rank FROM ccvec.visual_rank"):
        out[ident.int - 1] = rank
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", type=int, default=1_000_000)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--skip-sql", action="store_true", help="skip the (slow) SQL iteration")
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds of the two streamed ways")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ccvec-visualrank-"))
    os.environ["CCVEC_HOME"] = str(work / "home")
    n = args.size
    try:
        url = db.start_embedded(work / "home" / "pgdata")
        migrate.upgrade(url)
        with db.connection(url) as conn:
            start = time.perf_counter()
            src, dst, sim = write_graph(conn, n, args.k, np.random.default_rng(0))
            print(
                f"{n:,} images, {n * args.k:,} edges written in {time.perf_counter() - start:.0f}s",
                flush=True,
            )
            run = conn.execute("SELECT id FROM ccvec.knn_run").fetchone()[0]
            results = {}
            if not args.skip_sql:
                start = time.perf_counter()
                conn.execute("SELECT ccvec.visualrank(%s)", [run])
                conn.commit()
                results["SQL (ccvec.visualrank)"] = time.perf_counter() - start
                sql_ranks = stored_ranks(conn, n)
                conn.execute("TRUNCATE ccvec.visual_rank")
                conn.commit()
                print(f"SQL done in {results['SQL (ccvec.visualrank)']:.0f}s", flush=True)
            start = time.perf_counter()
            numbered = conn.execute("SELECT ccvec.image_node_sync()").fetchone()[0]
            conn.commit()
            print(f"{numbered:,} images numbered (once) in {time.perf_counter() - start:.1f}s", flush=True)
            start = time.perf_counter()
            visualrank.store_adjacency(conn, run)
            conn.commit()
            stored_in = time.perf_counter() - start
            print(f"adjacency stored (what the graph build adds) in {stored_in:.1f}s", flush=True)
            ways = {"stored adjacency": "adjacency", "UUID ids": "uuid", "integer node ids": "node"}
            best: dict[str, float] = {}
            steps: dict[str, dict[str, float]] = {}
            streamed: dict[str, np.ndarray] = {}
            iterations: dict[str, int] = {}
            for round_ in range(args.rounds):
                for label, ids in ways.items():
                    conn.execute("TRUNCATE ccvec.visual_rank")  # cold: no previous ranks
                    conn.commit()
                    timings: dict[str, float] = {}
                    start = time.perf_counter()
                    visualrank.visualrank(conn, run, timings=timings, source=ids)
                    conn.commit()
                    seconds = time.perf_counter() - start
                    print(f"round {round_ + 1} {label}: {seconds:.1f}s", flush=True)
                    if seconds < best.get(label, float("inf")):
                        best[label], steps[label] = seconds, timings
                    streamed[label] = stored_ranks(conn, n)
                    iterations[label] = latest_iterations(conn)
            for label in ways:
                results[f"streamed, {label}"] = best[label]
            timings = {}
            start = time.perf_counter()
            visualrank.visualrank(conn, run, timings=timings)  # previous ranks present
            conn.commit()
            warm = time.perf_counter() - start
            warm_it = latest_iterations(conn)
            warm_ranks = stored_ranks(conn, n)
            # the first refresh after any change of knn_edge: the edges read, the adjacency stored again
            conn.execute("SELECT nextval('ccvec.knn_edge_change')")  # as the edges' trigger does
            conn.commit()
            stale_steps: dict[str, float] = {}
            start = time.perf_counter()
            visualrank.visualrank(conn, run, timings=stale_steps)
            conn.commit()
            stale = time.perf_counter() - start
            stale_ranks = stored_ranks(conn, n)
        base, reference, base_it = scipy_alone(n, src, dst, sim)
        results["scipy.sparse alone (in memory)"] = base
    finally:
        db.discard_embedded(work / "home" / "pgdata")
        shutil.rmtree(work, ignore_errors=True)

    def diffs(a: np.ndarray, b: np.ndarray) -> str:
        return f"{np.abs(a - b).max():.1e} / {np.abs(a / a.max() - b / b.max()).max():.1e}"

    print(f"\nVisualRank, {n:,} images, {n * args.k:,} edges, cold start, tolerance 1e-6 (L1)")
    print(f"{'method':34s} {'seconds':>8s} {'vs scipy':>9s}   max |diff| to scipy (raw / scaled to max 1)")
    vectors = {"SQL (ccvec.visualrank)": locals().get("sql_ranks")}
    vectors.update({f"streamed, {label}": ranks for label, ranks in streamed.items()})
    for label, seconds in results.items():
        vec = vectors.get(label, reference)
        print(f"{label:34s} {seconds:8.1f} {seconds / base:8.1f}x   {diffs(vec, reference)}")
    print(
        f"{'warm (default, stored adjacency)':34s} {warm:8.1f} {warm / base:8.1f}x   "
        f"{diffs(warm_ranks, reference)}"
        f"   ({warm_it} iterations from the previous ranks)"
    )
    print(
        f"{'stale (edges read, stored again)':34s} {stale:8.1f} {stale / base:8.1f}x   "
        f"{diffs(stale_ranks, reference)}   (warm; the first refresh after knn_edge changed)"
    )
    print("iterations: " + ", ".join(f"{k} {v}" for k, v in iterations.items()) + f", scipy {base_it}")
    for label, timing in steps.items():
        print(f"{label}, seconds per step: " + ", ".join(f"{k} {v:.1f}" for k, v in timing.items()))
    print(f"storing the adjacency (once per graph build or graph add): {stored_in:.1f}s")
    print("warm, seconds per step: " + ", ".join(f"{k} {v:.1f}" for k, v in timings.items()))
    print("stale, seconds per step: " + ", ".join(f"{k} {v:.1f}" for k, v in stale_steps.items()))
    print(f"peak RSS of this process {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
