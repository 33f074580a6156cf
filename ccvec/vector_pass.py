"""Vectors out of the database and compared in numpy, where a pass over many of them would cost a
pgvector call per pair in SQL: the graph build's exact pass, reference-set novelty, class
predictions. Read in binary (parsing the text form costs more than the arithmetic), kept as
float16 as stored, compared in float32 a batch at a time so memory stays bounded.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from typing import Any, LiteralString

import numpy as np
import psycopg

Neighbours = dict[uuid.UUID, list[tuple[uuid.UUID, float]]]  # image -> its k nearest (id, distance)

PASS_BATCH = 20_000  # vectors per read of a full pass: 50 MB of float16 at 1280-d


def read(
    conn: psycopg.Connection, sql: LiteralString, params: list[Any]
) -> tuple[list[uuid.UUID], np.ndarray]:
    """(identifiers, float16 matrix: 2 bytes a dimension, as stored) of a query's (identifier,
    halfvec) rows, read in binary."""
    rows = conn.cursor(binary=True).execute(sql, params).fetchall()
    if not rows:
        return [], np.zeros((0, 0), np.float16)
    return [r[0] for r in rows], np.stack([r[1].to_numpy() for r in rows]).astype(np.float16)


def every(
    conn: psycopg.Connection, model: str, batch: int = PASS_BATCH
) -> Iterator[tuple[list[uuid.UUID], np.ndarray]]:
    """Every embedding of `model` in identifier order, `batch` at a time (resumed by key, so each
    read is an index range and no cursor stays open between batches)."""
    after: uuid.UUID | None = None
    while True:
        ids, block = read(conn, "SELECT * FROM ccvec.embeddings_after(%s, %s, %s)", [model, after, batch])
        if not ids:
            return
        yield ids, block
        after = ids[-1]


def unit(rows: np.ndarray) -> np.ndarray:
    """Rows as float32 of length 1; a zero row becomes NaN (pgvector's cosine distance to it)."""
    x = rows.astype(np.float32)
    with np.errstate(invalid="ignore", divide="ignore"):
        out: np.ndarray = x / np.linalg.norm(x, axis=1, keepdims=True)
    return out


QUERY_CHUNK = 256  # queries per product: a 256 x PASS_BATCH float32 block is 20 MB
SLACK = 1e-5  # float32 products pick candidates this far past the k-th; float64 ranks them


def exact_nearest(
    query_ids: Sequence[uuid.UUID],
    queries: np.ndarray,
    batches: Iterator[tuple[list[uuid.UUID], np.ndarray]],
    k: int,
) -> Neighbours:
    """Each query's exact k nearest over every vector of `batches` (cosine distance, itself
    excluded, ties by identifier), as ccvec.knn_exact_within finds them in SQL.

    A float32 matrix product per batch (and per QUERY_CHUNK queries, so memory stays bounded)
    picks the rows within a query's k-th distance plus SLACK; those few are measured again in
    float64, one row sum each, so copies of a vector get exactly equal distances wherever they sit
    in a batch and rank by identifier, as pgvector's equal distances do. A zero vector's distance
    is NaN in pgvector and is never a neighbour here either."""
    if not len(query_ids):
        return {}
    q = unit(queries)
    q64 = q.astype(np.float64)
    position = {image: i for i, image in enumerate(query_ids)}
    best: list[list[tuple[float, uuid.UUID]]] = [[] for _ in query_ids]
    for ids, block in batches:
        rows = unit(block)
        own = [(position[image], j) for j, image in enumerate(ids) if image in position]
        for start in range(0, len(q), QUERY_CHUNK):
            distances = 1.0 - q[start : start + QUERY_CHUNK] @ rows.T
            distances[np.isnan(distances)] = np.inf
            for i, j in own:
                if start <= i < start + QUERY_CHUNK:
                    distances[i - start, j] = np.inf
            cut = min(k, len(ids)) - 1
            kth = np.partition(distances, cut, axis=1)[:, cut]
            for offset, row in enumerate(distances):
                i = start + offset
                limit = kth[offset] if len(best[i]) < k else min(kth[offset], best[i][-1][0])
                near = np.nonzero((row <= limit + SLACK) & np.isfinite(row))[0]  # never itself
                best[i] = sorted(best[i] + _measured(q64[i], rows, near, ids))[:k]
    return {image: [(n, d) for d, n in near] for image, near in zip(query_ids, best, strict=True)}


def _measured(
    query: np.ndarray, rows: np.ndarray, picked: np.ndarray, ids: list[uuid.UUID]
) -> list[tuple[float, uuid.UUID]]:
    """(cosine distance in float64, identifier) of the picked rows: one pairwise row sum each, the
    same arithmetic for equal rows; similarity clamped to [-1, 1] as pgvector does."""
    if not len(picked):
        return []
    similarity = np.clip((rows[picked].astype(np.float64) * query).sum(axis=1), -1.0, 1.0)
    return [(float(1.0 - s), ids[j]) for s, j in zip(similarity, picked, strict=True) if np.isfinite(s)]
