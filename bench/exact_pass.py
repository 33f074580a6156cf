"""The graph build's exact pass at catalog size: numpy over vectors read from PostgreSQL, against
the SQL pass it replaced and against numpy on vectors already in memory.

    python bench/exact_pass.py [--sizes 100000,1000000] [--sample 200] [--k 10]

Before each graph build ccvec finds the exact k nearest of a sample (200 images) to choose
hnsw.ef_search and count the run's recall (docs/graph.md). Per size, a fresh database holds that
many random non-negative unit embeddings (halfvec(1280), as ccvec stores them; bench/refresh.py's
generator), and in one run:

1. `graph.exact_neighbours`: the vectors read in binary, 20,000 at a time by key, one matrix
   product per batch (migration 0045);
2. `ccvec.knn_exact_within` in SQL, as the build used it before, each image bounded by its true
   k-th distance + 1e-4 (the tightest bound the build could give it: it used the k-th distance
   its first HNSW search found, never nearer);
3. numpy on the vectors already in this process (float16 as stored, converted in batches): what a
   user with the vectors in memory would run, and the floor of (1).

The neighbours of 1 and 2 are compared image by image. Peak RSS of this process is reported
(the vectors of 3 are held in memory, 2.5 GB at 1M: run the sizes one at a time to see what 1
alone costs).
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from refresh import DIM, MODEL, write_embeddings  # bench/refresh.py

from ccvec import db, graph, migrate, vector_pass


def in_memory(vectors: np.ndarray, sample: list[int], ids: list[uuid.UUID], k: int) -> vector_pass.Neighbours:
    """The same exact search with every vector already in this process."""
    batches = ((ids[s : s + 20_000], vectors[s : s + 20_000]) for s in range(0, len(ids), 20_000))
    return vector_pass.exact_nearest([ids[i] for i in sample], vectors[sample], batches, k)


def stored_vectors(n: int) -> np.ndarray:
    """The vectors write_embeddings(seed 0) wrote, as float16: regenerated, not read back."""
    rng = np.random.default_rng(0)
    out = np.empty((n, DIM), np.float16)
    for start in range(0, n, 20_000):
        x = np.abs(rng.normal(size=(min(20_000, n - start), DIM))).astype(np.float32)
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        out[start : start + len(x)] = x.astype("<f2")
    return out


def one_size(server: str, n: int, sample_size: int, k: int) -> tuple:
    import psycopg

    name = f"exact_{n}"
    with psycopg.connect(server.replace("/ccvec?", "/postgres?"), autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = server.replace("/ccvec?", f"/{name}?")
    migrate.upgrade(url)
    with db.connection(url) as conn:
        conn.execute(
            "INSERT INTO ccvec.model (name, version, onnx_sha256, dim, spec) "
            "VALUES (%s, 'bench', 'bench', %s, '{}')",
            [MODEL, DIM],
        )
        start = time.perf_counter()
        write_embeddings(conn, 0, n, np.random.default_rng(0))
        conn.commit()
        conn.execute("ANALYZE ccvec.image_embedding")
        conn.commit()
        print(f"  {n:,} embeddings written in {time.perf_counter() - start:.0f}s", flush=True)
        ids = [uuid.UUID(int=i + 1) for i in range(n)]
        picked = sorted(random.Random(0).sample(range(n), sample_size))
        sample = [ids[i] for i in picked]

        start = time.perf_counter()
        numpy_pass = graph.exact_neighbours(conn, MODEL, sample, k)
        t_numpy = time.perf_counter() - start
        print(f"  numpy pass {t_numpy:.1f}s", flush=True)

        reach = [max(d for _, d in numpy_pass[i]) + 1e-4 for i in sample]
        start = time.perf_counter()
        sql_pass: vector_pass.Neighbours = {i: [] for i in sample}
        for image, neighbour, distance in conn.execute(
            "SELECT * FROM ccvec.knn_exact_within(%s, %s, %s, %s) ORDER BY 1, 3, 2", [MODEL, sample, reach, k]
        ):
            sql_pass[image].append((neighbour, distance))
        conn.commit()
        t_sql = time.perf_counter() - start
        print(f"  SQL pass {t_sql:.1f}s", flush=True)

    vectors = stored_vectors(n)
    start = time.perf_counter()
    memory_pass = in_memory(vectors, picked, ids, k)
    t_memory = time.perf_counter() - start
    del vectors
    same = sum(
        [n for n, _ in numpy_pass[i]] == [n for n, _ in sql_pass[i]] == [n for n, _ in memory_pass[i]]
        for i in sample
    )
    return n, t_numpy, t_sql, t_memory, same


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--sample", type=int, default=200)
    parser.add_argument("--k", type=int, default=10)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ccvec-exact-"))
    os.environ["CCVEC_HOME"] = str(work / "home")
    rows = []
    try:
        server = db.start_embedded(work / "home" / "pgdata")
        for n in (int(s) for s in args.sizes.split(",")):
            print(f"size {n:,}", flush=True)
            rows.append(one_size(server, n, args.sample, args.k))
    finally:
        db.discard_embedded(work / "home" / "pgdata")
        shutil.rmtree(work, ignore_errors=True)
    print(f"\nexact {args.k} nearest of {args.sample} images, 1280-d halfvec")
    print(
        "| images | numpy, read from PostgreSQL s | SQL (ccvec.knn_exact_within) s | SQL / numpy "
        "| numpy, vectors in memory s | same neighbours |"
    )
    print("|---|---|---|---|---|---|")
    for n, t_numpy, t_sql, t_memory, same in rows:
        print(
            f"| {n:,} | {t_numpy:.1f} | {t_sql:.1f} | {t_sql / t_numpy:.1f}x | {t_memory:.1f} "
            f"| {same} of {args.sample} |"
        )
    print(f"peak RSS of this process {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024} MiB")


if __name__ == "__main__":
    main()
