"""HNSW build time against maintenance_work_mem: the old fixed 1 GB, ccvec's sizing
(`ccvec.graph.build_memory`: room for the whole graph), and FAISS IndexHNSWFlat, in one run.

    python bench/index_memory.py [--size 500000] [--dim 1280] [--settings 1GB,auto]

Synthetic float16 vectors around 500 centres (bench/memory.py's), written as a features dataset
and loaded with `ccvec load DIR` into a throwaway embedded server. Then ccvec's index of the model
is dropped and built again once per setting (`ccvec.partitions.build_index`, what `ccvec graph
build` runs: m 16, ef_construction 64, 2 parallel maintenance workers), and FAISS builds the same
vectors in memory with the same M and efConstruction on the same 2 cores. pgvector keeps the graph
in maintenance_work_mem while it fits and inserts the rest on disk, much more slowly; the table
shows what that costs at this size.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.memory import vectors
from bench.scale import write_dataset
from ccvec import db, graph, migrate, partitions
from ccvec.models.registry import DEFAULT_MODEL


def build_seconds(conn, setting: str) -> tuple[float, int]:
    """Seconds to build the model's HNSW index at this maintenance_work_mem, and its bytes."""
    conn.execute("SELECT ccvec.drop_vector_index('halfvec', %s)", [DEFAULT_MODEL])
    conn.commit()
    start = time.perf_counter()
    partitions.build_index(conn, DEFAULT_MODEL, maintenance_work_mem=setting)
    seconds = time.perf_counter() - start
    size = conn.execute(
        "SELECT sum(pg_relation_size(indexrelid)) FROM pg_index "
        "WHERE indrelid = 'ccvec.image_embedding'::regclass AND NOT indisprimary"
    ).fetchone()[0]
    conn.commit()
    return seconds, int(size or 0)


def faiss_seconds(matrix: np.ndarray) -> float:
    import faiss

    faiss.omp_set_num_threads(os.cpu_count() or 1)
    index = faiss.IndexHNSWFlat(matrix.shape[1], graph.HNSW_M, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = graph.HNSW_EF_CONSTRUCTION
    start = time.perf_counter()
    index.add(matrix)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", type=int, default=500_000)
    parser.add_argument("--dim", type=int, default=1280)
    parser.add_argument("--settings", default="1GB,auto", help="maintenance_work_mem values; auto: ccvec's")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ccvec-index-memory-"))
    os.environ["CCVEC_HOME"] = str(work / "home")
    try:
        rng = np.random.default_rng(0)
        data = vectors(args.size, args.dim, rng)
        write_dataset(work / "features", data, rng.integers(0, 2**63, args.size, np.uint64), rng)
        url = db.start_embedded(work / "home" / "pgdata")
        migrate.upgrade(url)
        env = {**os.environ, "DATABASE_URL": url, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
        start = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "ccvec.cli", "load", str(work / "features")],
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        print(f"{args.size:,} x {args.dim} loaded in {time.perf_counter() - start:.0f}s", flush=True)
        auto = graph.build_memory(args.size, 2 * args.dim)
        rows = []
        with db.connection(url) as conn:
            for setting in args.settings.split(","):
                value = auto if setting == "auto" else setting
                seconds, size = build_seconds(conn, value)
                rows.append(
                    (
                        f"ccvec, maintenance_work_mem {value}" + (" (auto)" if setting == "auto" else ""),
                        seconds,
                        size,
                    )
                )
                print(f"  {rows[-1][0]}: {seconds:.1f}s", flush=True)
        reference = faiss_seconds(data.astype(np.float32))
        print(
            f"\nHNSW build, {args.size:,} x {args.dim}-d, m {graph.HNSW_M}, ef_construction "
            f"{graph.HNSW_EF_CONSTRUCTION}, {os.cpu_count()} cores"
        )
        print(f"{'build':48s} {'seconds':>8s} {'vs FAISS':>9s} {'index MiB':>10s}")
        for name, seconds, size in rows:
            print(f"{name:48s} {seconds:8.1f} {seconds / reference:8.2f}x {size / 2**20:10.0f}")
        print(f"{'FAISS IndexHNSWFlat (float32, in memory)':48s} {reference:8.1f} {1.0:8.2f}x")
    finally:
        db.discard_embedded(work / "home" / "pgdata")
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
