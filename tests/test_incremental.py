"""Incremental refresh: after changes to a few images, `ccvec refresh` (cached inputs, warm-started
VisualRank) gives the same scores as a cold refresh that derives everything again."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import psycopg
import pytest

from ccvec import clusters, scores

from .test_scores import add_image, write_ranks

SCORE_COLUMNS = (
    "popularity, popularity_provenance, popularity_support, authority, visual_authority, "
    "domain_authority, prior_authority, web_source"
)


@pytest.fixture()
def tight_tolerance(conn: psycopg.Connection) -> Iterator[None]:
    """VisualRank to 1e-13, so cold and warm starts agree to float precision and percentiles of
    near-equal ranks cannot swap (at the default 1e-6 they agree within the tolerance)."""
    old = conn.execute("SELECT value FROM ccvec.setting WHERE name = 'visualrank.tolerance'").fetchone()[0]
    conn.execute("UPDATE ccvec.setting SET value = 1e-13 WHERE name = 'visualrank.tolerance'")
    conn.commit()
    yield
    conn.rollback()
    conn.execute("UPDATE ccvec.setting SET value = %s WHERE name = 'visualrank.tolerance'", [old])
    conn.commit()


def catalog(conn: psycopg.Connection, rng: np.random.Generator, n: int) -> list[uuid.UUID]:
    providers = ["flickr", "wikimedia", "met", None]
    ids = []
    for i in range(n):
        provider = providers[int(rng.integers(0, 4))]
        meta = None
        if provider == "flickr":
            meta = {"views": int(rng.lognormal(6, 2))}
        elif provider == "wikimedia":
            meta = {"global_usage_count": int(rng.lognormal(1, 1.5))}
        landing = f"https://www.site{int(rng.integers(0, 30))}.example.org/p/{i}"
        ids.append(add_image(conn, provider, meta, landing))
    return ids


def add_edges(conn: psycopg.Connection, run: int, ids: list[uuid.UUID], sources: list[uuid.UUID],
              rng: np.random.Generator, k: int = 5) -> None:  # fmt: skip
    with conn.cursor().copy("COPY ccvec.knn_edge FROM STDIN") as copy:
        for a in sources:
            others = [b for b in ids if b != a]
            for rank, j in enumerate(rng.choice(len(others), k, replace=False)):
                copy.write_row([run, a, others[int(j)], rank + 1, float(rng.uniform(0.3, 1.0))])


def embed(conn: psycopg.Connection, ids: list[uuid.UUID], rng: np.random.Generator) -> None:
    with conn.cursor().copy("COPY ccvec.image_embedding (model, identifier, embedding) FROM STDIN") as copy:
        for ident in ids:
            copy.write_row(["hand", ident, str(np.abs(rng.normal(size=3)).round(4).tolist())])


def reference_scores(conn: psycopg.Connection) -> dict[uuid.UUID, tuple]:
    rows = conn.execute("SELECT identifier, novelty, score, distance FROM ccvec.reference_novelty").fetchall()
    return {r[0]: r[1:] for r in rows}


def snapshot(conn: psycopg.Connection) -> dict[uuid.UUID, tuple]:
    rows = conn.execute(f"SELECT identifier, {SCORE_COLUMNS} FROM ccvec.image_score").fetchall()
    return {r[0]: r[1:] for r in rows}


def test_incremental_refresh_equals_cold_refresh(
    conn: psycopg.Connection, tmp_path: Path, tight_tolerance: None
) -> None:
    rng = np.random.default_rng(7)
    ids = catalog(conn, rng, 400)
    conn.execute(
        "INSERT INTO ccvec.model (name, version, onnx_sha256, dim, spec) VALUES ('hand', '1', 'x', 3, '{}')"
    )
    run = conn.execute(
        "INSERT INTO ccvec.knn_run (model, k, ef_search, is_current) "
        "VALUES ('hand', 5, 40, true) RETURNING id"
    ).fetchone()[0]
    add_edges(conn, run, ids, ids, rng)
    embed(conn, ids, rng)
    conn.commit()
    clusters.novelty_fit(conn, "ref", "images", "images", "", "hand", ids[:40])  # scored by the refresh
    hosts = enumerate(range(0, 30, 2), start=1)  # half the sites have a host rank
    ranks = [[pos, 1e6 / pos, pos, 1 / pos, f"org.example.site{h}"] for pos, h in hosts]
    scores.load_ranks(conn, write_ranks(tmp_path / "host-ranks.txt.gz", scores.HOST_HEADER, ranks))
    scores.refresh(conn)
    before = snapshot(conn)

    # about 2 % changed: new images (in the graph too), new metric values, a moved landing page, one gone
    new = catalog(conn, rng, 4)
    add_edges(conn, run, ids + new, new, rng)
    embed(conn, new, rng)
    query = "SELECT identifier FROM ccvec.image WHERE provider = 'flickr' LIMIT 3"
    flickr = [r[0] for r in conn.execute(query)]
    for ident in flickr:
        conn.execute(
            "UPDATE ccvec.image SET meta_data = %s WHERE identifier = %s",
            [json.dumps({"views": int(rng.integers(10**5, 10**6))}), ident],
        )
    conn.execute(
        "UPDATE ccvec.image SET foreign_landing_url = %s WHERE identifier = %s",
        ["https://www.site2.example.org/moved", ids[1]],
    )
    conn.execute("DELETE FROM ccvec.knn_edge WHERE identifier = %s OR neighbour = %s", [ids[2], ids[2]])
    conn.execute("DELETE FROM ccvec.image WHERE identifier = %s", [ids[2]])
    conn.commit()

    incremental = scores.refresh(conn)
    changed = conn.execute("SELECT * FROM ccvec.score_input_sync()").fetchone()
    assert changed == (0, 0)  # the refresh left nothing to derive
    warm = snapshot(conn)
    warm_iterations, cold_start = conn.execute(
        "SELECT iterations, (SELECT iterations FROM ccvec.visualrank_run ORDER BY id LIMIT 1) "
        "FROM ccvec.visualrank_run ORDER BY id DESC LIMIT 1"
    ).fetchone()
    warm_ranks = dict(conn.execute("SELECT identifier, rank FROM ccvec.visual_rank").fetchall())
    warm_reference = reference_scores(conn)
    # a refresh scores only images with no score: a row changed by hand survives it, --cold repairs it
    damaged = new[0]
    conn.execute("UPDATE ccvec.novelty_score SET score = 42 WHERE identifier = %s", [damaged])
    conn.commit()
    scores.refresh(conn)
    assert reference_scores(conn)[damaged][1] == 42

    cold = scores.refresh(conn, cold=True)
    assert "changed images, constants" in incremental and set(incremental) == set(cold)
    assert len(incremental) == scores.refresh_stage_count(conn) == 10  # every chain ran; the progress total
    after = snapshot(conn)
    cold_ranks = dict(conn.execute("SELECT identifier, rank FROM ccvec.visual_rank").fetchall())
    cold_reference = reference_scores(conn)  # --cold rescored every image against the set

    assert set(warm) == set(after) == (set(ids) | set(new)) - {ids[2]}
    assert warm == after  # every column of every image, exactly
    assert max(abs(warm_ranks[i] - cold_ranks[i]) for i in cold_ranks) < 1e-12
    assert warm_iterations < cold_start  # the warm start saved iterations
    # the changes did change scores: the test compares something that moved
    assert sum(before[i] != after[i] for i in after if i in before) > 100
    assert after[new[0]][0] is not None
    # reference-set novelty: the incremental refresh scored only the new images, with the same rows
    assert set(warm_reference) == set(cold_reference) == set(ids[40:] + new)
    assert all(warm_reference[i][:2] == cold_reference[i][:2] for i in cold_reference)
    assert all(warm_reference[i][2] == pytest.approx(cold_reference[i][2], abs=1e-6) for i in cold_reference)
