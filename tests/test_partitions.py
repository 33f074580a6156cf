"""Hash-partitioned storage answers exactly as the plain layout does (issue 15, item 2)."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
import pytest
from PIL import ImageOps

from ccvec import db, graph, migrate, neardup, partitions, scores
from ccvec.errors import CcvecError
from ccvec.load import LoadOptions, load

from .images import photo

MODEL = "efficientnet-lite0"


def _photos(folder: Path) -> None:
    """Real photos and edited copies of them: near-duplicate groups and a meaningful kNN graph."""
    folder.mkdir()
    for name in ("chelsea", "coffee", "astronaut", "rocket", "camera", "hubble_deep_field"):
        image = photo(name).convert("RGB")
        w, h = image.size
        image.save(folder / f"{name}.jpg", quality=90)
        image.resize((w // 2, h // 2)).save(folder / f"{name}-small.jpg", quality=70)
        ImageOps.mirror(image).save(folder / f"{name}-mirror.jpg", quality=90)
        image.crop((w // 10, h // 10, w - w // 10, h - h // 10)).save(folder / f"{name}-crop.jpg")


def _answers(conn: psycopg.Connection) -> dict[str, Any]:
    """What a user gets: dedup groups, the kNN graph, `similar` through HNSW and exact, scores."""
    neardup.dedup(conn)
    groups = {
        frozenset(r[0])
        for r in conn.execute("SELECT array_agg(identifier) FROM ccvec.duplicate_member GROUP BY group_id")
    }
    run = graph.build(conn, k=5, model=MODEL)
    edges = sorted(
        (ident, nb, rank, round(sim, 4))
        for ident, nb, rank, sim in conn.execute(
            "SELECT identifier, neighbour, rank, similarity FROM ccvec.knn_edge WHERE run_id = %s", [run.id]
        )
    )
    ids = [r[0] for r in conn.execute("SELECT identifier FROM ccvec.image_embedding ORDER BY identifier")]
    near = {i: [(n, round(s, 4)) for n, s in graph.similar(conn, i, 5, MODEL)] for i in ids}
    conn.execute("SELECT ccvec.drop_embedding_index(%s)", [MODEL])
    conn.commit()
    exact = {i: [(n, round(s, 4)) for n, s in graph.similar(conn, i, 5, MODEL)] for i in ids}
    graph.ensure_index(conn, MODEL)
    scores.refresh(conn)
    ranks = dict(conn.execute("SELECT identifier, round(authority::numeric, 6) FROM ccvec.image_score"))
    hashes = {i: sorted(r[0] for r in neardup.neighbours(conn, neardup.phash_of(conn, i), 10)) for i in ids}
    conn.commit()
    return {
        "groups": groups,
        "edges": edges,
        "recall": run.recall,
        "similar": near,
        "exact": exact,
        "ranks": ranks,
        "hashes": hashes,
    }


def test_partitioned_layout_gives_the_same_answers(
    fresh_database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", fresh_database_url)
    migrate.upgrade(fresh_database_url)
    _photos(tmp_path / "photos")
    load(str(tmp_path / "photos"), LoadOptions(workers=0))
    with db.connection(fresh_database_url) as conn:
        plain = _answers(conn)
        assert plain["recall"] == pytest.approx(1.0)
        assert any(len(g) >= 3 for g in plain["groups"])  # there is something to compare
        assert plain["similar"] == plain["exact"]
        edges_before = conn.execute("SELECT count(*) FROM ccvec.knn_edge").fetchone()[0]

        assert partitions.repartition(conn, 3) == list(partitions.TABLES)
        assert partitions.layout(conn) == dict.fromkeys(partitions.TABLES, 3)
        # The move kept every row, and the HNSW index was rebuilt per partition and attached.
        assert conn.execute("SELECT count(*) FROM ccvec.knn_edge").fetchone()[0] == edges_before
        assert conn.execute("SELECT count(*) FROM ccvec.image_embedding_p2").fetchone()[0] > 0
        assert conn.execute("SELECT ccvec.has_embedding_index(%s)", [MODEL]).fetchone()[0]
        attached = conn.execute(
            "SELECT count(*) FROM pg_inherits WHERE inhparent = to_regclass('ccvec.' || "
            "ccvec.embedding_index_name(%s))",
            [MODEL],
        ).fetchone()[0]
        assert attached == 3
        # A query on the parent fans out: one ordered index scan per partition, merged.
        conn.execute("SET enable_seqscan = off")
        conn.execute("SET enable_sort = off")
        query = conn.execute("SELECT embedding FROM ccvec.image_embedding LIMIT 1").fetchone()[0]
        plan = "\n".join(
            r[0]
            for r in conn.execute(
                "EXPLAIN SELECT identifier FROM ccvec.image_embedding WHERE model = %s "
                "ORDER BY embedding::halfvec(1280) <=> %s::halfvec(1280) LIMIT 5",
                [MODEL, query],
            )
        )
        conn.rollback()
        assert "Merge Append" in plan and plan.count("Index Scan using image_embedding_hnsw_") == 3

        partitioned = _answers(conn)
        assert partitioned == plain

        assert partitions.repartition(conn, 1) == list(partitions.TABLES)
        assert partitions.layout(conn) == dict.fromkeys(partitions.TABLES, 1)
        assert _answers(conn) == plain


def test_repartition_is_per_table_and_resumable(conn: psycopg.Connection) -> None:
    conn.execute(
        "INSERT INTO ccvec.image_feature (identifier, phash, content_sha256, width, height) "
        "SELECT gen_random_uuid(), g, sha256(int8send(g)), 1, 1 FROM generate_series(1, 50) g"
    )
    conn.commit()
    try:
        # An interrupted run: the first table moved, then the command was killed.
        conn.execute("SELECT ccvec.repartition('image_feature', 2)")
        conn.commit()
        assert partitions.layout(conn)["image_embedding"] == 1
        assert partitions.repartition(conn, 2) == ["image_embedding", "knn_edge"]
        assert partitions.repartition(conn, 2) == []
        assert conn.execute("SELECT count(*) FROM ccvec.image_feature").fetchone()[0] == 50
        # Inside a transaction that fails, nothing moves.
        with pytest.raises(psycopg.errors.DivisionByZero), conn.transaction():
            conn.execute("SELECT ccvec.repartition('image_feature', 4)")
            conn.execute("SELECT 1 / 0")
        assert partitions.layout(conn)["image_feature"] == 2
        with pytest.raises(psycopg.Error, match="cannot be partitioned") as caught:
            conn.execute("SELECT ccvec.repartition('image', 2)")
        assert caught.value.sqlstate == "VC001"
        conn.rollback()
        with pytest.raises(CcvecError, match="out of range"):
            partitions.repartition(conn, 0)
    finally:
        conn.rollback()
        partitions.repartition(conn, 1)
    assert partitions.layout(conn) == dict.fromkeys(partitions.TABLES, 1)
    assert conn.execute("SELECT count(*) FROM ccvec.image_feature").fetchone()[0] == 50
    assert uuid.UUID(str(conn.execute("SELECT identifier FROM ccvec.image_feature LIMIT 1").fetchone()[0]))


def test_lean_search_reranks_hamming_candidates(conn: psycopg.Connection) -> None:
    from pgvector import HalfVector

    model, dim = "lean-test", 64
    rng = np.random.default_rng(3)
    vectors = rng.normal(size=(400, dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    conn.execute(
        "INSERT INTO ccvec.model (name, version, onnx_sha256, dim, spec) VALUES (%s, '1', 'hand', %s, '{}')",
        [model, dim],
    )
    ids = [uuid.uuid4() for _ in vectors]
    with conn.cursor().copy("COPY ccvec.image_embedding (model, identifier, embedding) FROM STDIN") as copy:
        for ident, v in zip(ids, vectors, strict=True):
            copy.write_row([model, ident, HalfVector(v).to_text()])
    conn.commit()
    stored = vectors.astype(np.float16).astype(np.float32)
    stored /= np.linalg.norm(stored, axis=1, keepdims=True)
    queries = rng.choice(len(ids), 20, replace=False)
    truth = np.argsort(-(stored[queries] @ stored.T), axis=1)[:, :10]

    def found(candidates: int) -> list[list[int]]:
        return [
            [
                ids.index(i)
                for i, _ in partitions.nearest_lean(conn, model, HalfVector(vectors[q]), 10, candidates)
            ]
            for q in queries
        ]

    # Without the index the candidates are exact; covering every image, the rerank is exact search.
    assert found(len(ids)) == truth.tolist()
    try:
        partitions.build_index(conn, model, kind="binary")
        assert partitions.indexed_models(conn, "binary") == [model]
        assert partitions.indexed_models(conn, "halfvec") == []
        hits = [len(set(f) & set(t)) / 10 for f, t in zip(found(100), truth.tolist(), strict=True)]
        assert 0.8 <= float(np.mean(hits)) <= 1.0
        # The lean index survives a repartition: rebuilt per partition and attached.
        partitions.repartition(conn, 2)
        assert partitions.indexed_models(conn, "binary") == [model]
        overlap = [len(set(f) & set(t)) / 10 for f, t in zip(found(len(ids)), truth.tolist(), strict=True)]
        assert np.mean(overlap) >= 0.95  # equal lists give 1.0
        with pytest.raises(psycopg.Error, match="candidates") as caught:
            conn.execute("SELECT * FROM ccvec.nearest_lean(%s, %s, 10, 5)", [model, HalfVector(vectors[0])])
        assert caught.value.sqlstate == "VC001"
        conn.rollback()
    finally:
        conn.rollback()
        partitions.repartition(conn, 1)
        partitions.drop_lean_index(conn, model)
    assert partitions.indexed_models(conn, "binary") == []
