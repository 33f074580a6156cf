"""FAISS's kNN graph over bench/memory.py's synthetic vectors: the reference for `ccvec graph build`
at sizes where one process cannot hold both (bench/memory.py runs ccvec's graph stage; this script
builds the same graph in memory, on the same vectors, in a run of its own).

    python bench/faiss_graph.py [--size 1000000] [--dim 1280] [--k 10] [--ef 64,128,256,512]
                                [--queries N]

The vectors are bench/memory.py's (`vectors()`, seed 0, drawn first): the same rows ccvec loaded.
FAISS IndexHNSWFlat with ccvec's M and efConstruction is built once, then every vector is searched
for its k nearest others at each efSearch (`--queries N`: only the first N, and the time scaled to
all; queries are independent, so the search time is linear in their number). recall@k is counted on
1,000 random images among those searched against an exact search (numpy, inner product of unit
vectors), as ccvec's build counts its own on a sample.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from memory import vectors  # bench/memory.py: the same generator and seed

from ccvec import graph

SAMPLE = 1_000


def exact_neighbours(matrix: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    """The k nearest other rows of each query row (inner product), by blocks of 100k rows."""
    best_score = np.full((len(queries), k + 1), -np.inf, np.float32)
    best_index = np.zeros((len(queries), k + 1), np.int64)
    for start in range(0, len(matrix), 100_000):
        block = matrix[start : start + 100_000]
        scores = matrix[queries] @ block.T
        index = np.arange(start, start + len(block))[None, :].repeat(len(queries), 0)
        both_score = np.concatenate([best_score, scores], axis=1)
        both_index = np.concatenate([best_index, index], axis=1)
        top = np.argsort(-both_score, axis=1)[:, : k + 1]
        best_score = np.take_along_axis(both_score, top, 1)
        best_index = np.take_along_axis(both_index, top, 1)
    return best_index


def recall(found: np.ndarray, exact: np.ndarray, queries: np.ndarray, k: int) -> float:
    hits = 0
    for row, q in enumerate(queries):
        truth = [i for i in exact[row] if i != q][:k]
        got = [i for i in found[q] if i != q][:k]
        hits += len(set(truth) & set(got))
    return hits / (k * len(queries))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", type=int, default=1_000_000)
    parser.add_argument("--dim", type=int, default=1280)
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--ef", default="64,128,256,512")
    parser.add_argument("--queries", type=int, help="search only the first N images; time scaled to all")
    args = parser.parse_args()
    import faiss

    rng = np.random.default_rng(0)
    start = time.perf_counter()
    matrix = vectors(args.size, args.dim, rng).astype(np.float32)
    print(
        f"{args.size:,} x {args.dim} vectors (bench/memory.py's) in {time.perf_counter() - start:.0f}s",
        flush=True,
    )
    searched_rows = min(args.queries or args.size, args.size)
    queries = np.random.default_rng(1).choice(searched_rows, min(SAMPLE, searched_rows), replace=False)
    start = time.perf_counter()
    exact = exact_neighbours(matrix, queries, args.k)
    print(f"exact neighbours of {SAMPLE:,} images in {time.perf_counter() - start:.0f}s", flush=True)

    index = faiss.IndexHNSWFlat(args.dim, graph.HNSW_M, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = graph.HNSW_EF_CONSTRUCTION
    start = time.perf_counter()
    index.add(matrix)
    built = time.perf_counter() - start
    shape = f"M {graph.HNSW_M}, efConstruction {graph.HNSW_EF_CONSTRUCTION}"
    print(f"FAISS IndexHNSWFlat ({shape}) built in {built:.0f}s", flush=True)
    rows = []
    for ef in (int(e) for e in args.ef.split(",")):
        index.hnsw.efSearch = ef
        start = time.perf_counter()
        found = np.empty((searched_rows, args.k + 1), np.int64)
        for first in range(0, searched_rows, 100_000):
            last = min(first + 100_000, searched_rows)
            _, found[first:last] = index.search(matrix[first:last], args.k + 1)
        searched = (time.perf_counter() - start) * args.size / searched_rows
        rows.append((ef, searched, recall(found, exact, queries, args.k)))
        print(
            f"  efSearch {ef}: {args.size:,} images in {searched:.0f}s, recall@{args.k} {rows[-1][2]:.3f}",
            flush=True,
        )
    scaled = f"; search timed on {searched_rows:,} images, scaled" if searched_rows < args.size else ""
    threads = faiss.omp_get_max_threads()
    print(
        f"\nFAISS kNN graph, {args.size:,} images, k {args.k} (build {built:.0f}s, {threads} threads{scaled})"
    )
    print(f"{'efSearch':>8} {'search s':>9} {'build+search s':>15} {'recall@' + str(args.k):>10}")
    for ef, searched, got in rows:
        print(f"{ef:>8} {searched:>9.0f} {built + searched:>15.0f} {got:>10.3f}")


if __name__ == "__main__":
    main()
