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


def exact_nearest(
    query_ids: Sequence[uuid.UUID],
    queries: np.ndarray,
    batches: Iterator[tuple[list[uuid.UUID], np.ndarray]],
    k: int,
) -> Neighbours:
    """Each query's exact k nearest over every vector of `batches` (cosine distance, itself
    excluded, ties by identifier), as ccvec.knn_exact_within finds them in SQL.

    Per batch only the rows within a query's current k-th distance are kept, so the work is one
    matrix product per batch and the memory a queries x batch block."""
    q = unit(queries)
    position = {image: i for i, image in enumerate(query_ids)}
    best: list[list[tuple[float, uuid.UUID]]] = [[] for _ in query_ids]
    for ids, block in batches:
        distances = 1.0 - q @ unit(block).T
        for j, image in enumerate(ids):
            if image in position:
                distances[position[image], j] = np.inf
        cut = min(k, len(ids)) - 1
        kth = np.partition(distances, cut, axis=1)[:, cut]
        for i, row in enumerate(distances):
            limit = kth[i] if len(best[i]) < k else min(kth[i], best[i][-1][0])
            near = np.nonzero(row <= limit)[0]
            merged = best[i] + [(float(row[j]), ids[j]) for j in near if np.isfinite(row[j])]
            best[i] = sorted(merged)[:k]
    return {image: [(n, d) for d, n in near] for image, near in zip(query_ids, best, strict=True)}
