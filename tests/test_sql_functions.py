"""SQL functions of schema ccvec on their own, against the test server.

Each expected value is computed independently in Python (hashlib, math, urllib, numpy), so a change
to a function's body that changes its answers fails here, not three layers up.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import uuid
from urllib.parse import urlsplit

import numpy as np
import psycopg
import pytest

SIGNED_64 = [0, 1, -1, -(2**63), 2**63 - 1, 0x5555555555555555, -0x5555555555555556]


def one(conn: psycopg.Connection, sql: str, params: list | None = None):
    return conn.execute(sql, params or []).fetchone()[0]


def add_model(conn: psycopg.Connection, name: str, dim: int) -> None:
    conn.execute(
        "INSERT INTO ccvec.model (name, version, onnx_sha256, dim, spec) VALUES (%s, '1', 'x', %s, '{}')",
        [name, dim],
    )


def add_embeddings(conn: psycopg.Connection, model: str, vectors: np.ndarray) -> list[uuid.UUID]:
    ids = sorted(uuid.UUID(int=random.Random(i).getrandbits(128)) for i in range(len(vectors)))
    for ident, v in zip(ids, vectors, strict=True):
        conn.execute(
            "INSERT INTO ccvec.image_embedding (model, identifier, embedding) VALUES (%s, %s, %s::halfvec)",
            [model, ident, json.dumps([float(x) for x in v])],
        )
    return ids


# ---------------------------------------------------------------- bits and counts


def test_hamming_counts_differing_bits_of_signed_hashes(conn: psycopg.Connection) -> None:
    rng = random.Random(7)
    pairs = [(a, b) for a in SIGNED_64 for b in SIGNED_64]
    pairs += [(rng.getrandbits(64) - 2**63, rng.getrandbits(64) - 2**63) for _ in range(200)]
    expected = [bin((a ^ b) & (2**64 - 1)).count("1") for a, b in pairs]
    assert 64 in expected and 0 in expected
    got = conn.execute(
        "SELECT ccvec.hamming(a, b) "
        "FROM unnest(%s::bigint[], %s::bigint[]) WITH ORDINALITY t(a, b, i) ORDER BY i",
        [[a for a, _ in pairs], [b for _, b in pairs]],
    ).fetchall()
    assert [g for (g,) in got] == expected


def test_binomial_is_exact_and_zero_outside_range(conn: psycopg.Connection) -> None:
    cases = [(n, k) for n in range(0, 33) for k in range(-2, n + 3)]
    got = conn.execute(
        "SELECT ccvec.binomial(n, k) FROM unnest(%s::int[], %s::int[]) WITH ORDINALITY t(n, k, i) ORDER BY i",
        [[n for n, _ in cases], [k for _, k in cases]],
    ).fetchall()
    expected = [math.comb(n, k) if 0 <= k <= n else 0 for n, k in cases]
    assert [int(g) for (g,) in got] == expected
    assert one(conn, "SELECT ccvec.binomial(64, 32)") == math.comb(64, 32)  # the widest chunk: exact


@pytest.mark.parametrize("widths", [[64], [32, 32], [22, 21, 21], [13, 13, 13, 13, 12], [4] * 16])
def test_mih_chunks_extract_and_reassemble_a_hash(conn: psycopg.Connection, widths: list[int]) -> None:
    rows = conn.execute(
        "SELECT chunk, shift, mask, bits FROM ccvec.mih_chunks(%s) ORDER BY chunk", [widths]
    ).fetchall()
    shifts = [64 - sum(widths[: i + 1]) for i in range(len(widths))]
    assert rows == [(i + 1, shifts[i], (1 << w) - 1 if w < 64 else -1, w) for i, w in enumerate(widths)]
    for value in [*SIGNED_64, 0x0123456789ABCDEF, -0x0123456789ABCDEF]:
        parts = conn.execute(
            "SELECT (%s::bigint >> shift) & mask FROM ccvec.mih_chunks(%s) ORDER BY chunk", [value, widths]
        ).fetchall()
        unsigned = value & (2**64 - 1)
        expected = [(unsigned >> s) & ((1 << w) - 1) for s, w in zip(shifts, widths, strict=True)]
        assert [p & ((1 << w) - 1) for (p,), w in zip(parts, widths, strict=True)] == expected


def test_one_chunk_layout_probes_only_matching_hashes(conn: psycopg.Connection) -> None:
    rng = random.Random(5)
    hashes = [rng.getrandbits(64) - 2**63 for _ in range(60)]
    for h in hashes:
        conn.execute(
            "INSERT INTO ccvec.image_feature (identifier, phash, content_sha256, width, height) "
            "VALUES (%s, %s, %s, 1, 1)",
            [uuid.uuid4(), h, hashlib.sha256(str(h).encode()).digest()],
        )
    conn.execute("SELECT ccvec.configure_mih(1)")
    query = hashes[0] ^ 0b101  # two bits from hashes[0]
    candidates = {r[0] for r in conn.execute("SELECT phash FROM ccvec.mih_candidates(%s, ARRAY[2])", [query])}
    expected = {h for h in hashes if bin((h ^ query) & (2**64 - 1)).count("1") <= 2}
    assert candidates == expected == {hashes[0]}


def test_mih_probe_cost_is_a_positive_constant(conn: psycopg.Connection) -> None:
    assert one(conn, "SELECT ccvec.mih_probe_cost()") == 40


# ---------------------------------------------------------------- near-duplicates


def test_source_class_rank_prefers_institutions(conn: psycopg.Connection) -> None:
    ranks = {"cultural_institution": 0, "curated": 1, "default": 2, "social_media": 3, "unknown": 2, None: 2}
    for source_class, rank in ranks.items():
        assert one(conn, "SELECT ccvec.source_class_rank(%s)", [source_class]) == rank, source_class
    # every class the provider table may hold is ranked, in the documented order
    classes = [
        r[0]
        for r in conn.execute(
            "SELECT c FROM (SELECT DISTINCT source_class FROM ccvec.provider_class) x(c) "
            "ORDER BY ccvec.source_class_rank(c)"
        )
    ]
    assert classes == ["cultural_institution", "curated", "default", "social_media"]


def test_canonical_order_is_built_from_whitelisted_keys(conn: psycopg.Connection) -> None:
    assert one(conn, "SELECT ccvec.canonical_order(%s)", [["original", "largest", "provider", "oldest"]]) == (
        "derived ASC, pixels DESC, provider_rank ASC, created_on ASC NULLS LAST, node"
    )
    assert one(conn, "SELECT ccvec.canonical_order(%s)", [["newest"]]) == "created_on DESC NULLS LAST, node"
    with pytest.raises(psycopg.Error, match="unknown canonical preference"):
        conn.execute("SELECT ccvec.canonical_order(%s)", [["original", "1; DROP TABLE ccvec.image"]])
    conn.rollback()


@pytest.mark.parametrize(
    ("cues", "expected"),
    [
        ((0.0, 0.0, 0.6, 0.6, 0.01, 0.01, 90, 30.0, 30.0), 0),  # the typical member
        ((0.3, 0.0, 0.6, 0.6, 0.01, 0.01, 90, 30.0, 30.0), 1),  # letterbox / border
        ((0.0, 0.0, 0.1, 0.6, 0.01, 0.01, 90, 30.0, 30.0), 1),  # upscaled
        ((0.0, 0.0, 0.6, 0.6, 0.20, 0.01, 90, 30.0, 30.0), 1),  # brightness pushed
        ((0.0, 0.0, 0.6, 0.6, 0.01, 0.01, 35, 30.0, 30.0), 1),  # heavy JPEG
        ((0.0, 0.0, 0.6, 0.6, 0.01, 0.01, 90, 0.5, 30.0), 1),  # greyscale copy of a colour picture
        ((0.0, 0.0, 0.6, 0.6, 0.01, 0.01, 90, 0.5, 0.5), 0),  # a greyscale group
        ((0.3, 0.0, 0.1, 0.6, 0.2, 0.01, 20, 0.0, 30.0), 5),
        ((None, None, None, None, None, None, None, None, None), 0),  # no cues: no signs
    ],
)
def test_derived_signs_count_against_the_group_median(conn: psycopg.Connection, cues, expected) -> None:
    args = ", ".join(["%s::real"] * 6 + ["%s::smallint"] + ["%s::real"] * 2)
    sql = f"SELECT ccvec.derived_signs({args})"
    assert one(conn, sql, list(cues)) == expected


# ---------------------------------------------------------------- settings, models, indexes


def test_setting_reads_the_table(conn: psycopg.Connection) -> None:
    assert one(conn, "SELECT ccvec.setting('visualrank.damping')") == pytest.approx(0.85)
    assert one(conn, "SELECT ccvec.setting('no.such.setting')") is None
    conn.execute("UPDATE ccvec.setting SET value = 0.5 WHERE name = 'visualrank.damping'")
    assert one(conn, "SELECT ccvec.setting('visualrank.damping')") == 0.5
    conn.rollback()  # ccvec.setting is not emptied between tests
    assert one(conn, "SELECT ccvec.setting('visualrank.damping')") == pytest.approx(0.85)


def test_model_dim_and_unknown_model(conn: psycopg.Connection) -> None:
    add_model(conn, "dim-seven", 7)
    assert one(conn, "SELECT ccvec.model_dim('dim-seven')") == 7
    with pytest.raises(psycopg.Error, match="no model named missing"):
        conn.execute("SELECT ccvec.model_dim('missing')")


def test_embedding_index_name_is_md5_based_and_short(conn: psycopg.Connection) -> None:
    for name in ["efficientnet-lite0", "a", "x" * 200]:
        expected = "image_embedding_hnsw_" + hashlib.md5(name.encode()).hexdigest()[:12]
        got = one(conn, "SELECT ccvec.embedding_index_name(%s)", [name])
        assert got == expected and len(got) <= 63


def test_embedding_index_lifecycle(conn: psycopg.Connection) -> None:
    add_model(conn, "idx-model", 4)
    assert one(conn, "SELECT ccvec.has_embedding_index('idx-model')") is False
    name = one(conn, "SELECT ccvec.create_embedding_index('idx-model', 8, 32)")
    assert name == one(conn, "SELECT ccvec.embedding_index_name('idx-model')")
    assert one(conn, "SELECT ccvec.has_embedding_index('idx-model')") is True
    definition = one(
        conn, "SELECT indexdef FROM pg_indexes WHERE schemaname = 'ccvec' AND indexname = %s", [name]
    )
    assert "hnsw" in definition and "halfvec(4)" in definition and "'idx-model'" in definition
    assert "m='8'" in definition.replace(" ", "") and "ef_construction='32'" in definition.replace(" ", "")
    conn.execute("SELECT ccvec.drop_embedding_index('idx-model')")
    assert one(conn, "SELECT ccvec.has_embedding_index('idx-model')") is False


def test_missing_embeddings_lists_only_the_unembedded(conn: psycopg.Connection) -> None:
    add_model(conn, "m-a", 3)
    add_model(conn, "m-b", 3)
    ids = add_embeddings(conn, "m-a", np.eye(3)[[0, 1, 2, 0]])
    other = uuid.uuid4()
    missing = {r[0] for r in conn.execute("SELECT ccvec.missing_embeddings('m-a', %s)", [[*ids[:2], other]])}
    assert missing == {other}
    assert {r[0] for r in conn.execute("SELECT ccvec.missing_embeddings('m-b', %s)", [ids])} == set(ids)


# ---------------------------------------------------------------- nearest neighbours


def _cosine_order(vectors: np.ndarray, ids: list[uuid.UUID], q: int) -> list[tuple[uuid.UUID, float]]:
    v = vectors.astype(np.float16).astype(np.float64)  # what halfvec stores
    sims = v @ v[q] / (np.linalg.norm(v, axis=1) * np.linalg.norm(v[q]))
    order = sorted((i for i in range(len(ids)) if i != q), key=lambda i: (-sims[i], ids[i]))
    return [(ids[i], float(sims[i])) for i in order]


def test_exact_and_unindexed_nearest_match_numpy(conn: psycopg.Connection) -> None:
    rng = np.random.default_rng(3)
    vectors = rng.normal(size=(40, 8))
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    add_model(conn, "near8", 8)
    ids = add_embeddings(conn, "near8", vectors)
    for q in (0, 17, 39):
        expected = _cosine_order(vectors, ids, q)[:5]
        exact = conn.execute(
            "SELECT identifier, similarity FROM ccvec.exact_nearest('near8', %s, 5)", [ids[q]]
        ).fetchall()
        assert [i for i, _ in exact] == [i for i, _ in expected]
        assert [s for _, s in exact] == pytest.approx([s for _, s in expected], abs=2e-3)
        similar = conn.execute("SELECT identifier FROM ccvec.similar(%s, 5, 'near8')", [ids[q]]).fetchall()
        assert [i for (i,) in similar] == [i for i, _ in expected]


def test_nearest_through_the_index_gives_k_rows_above_ef_search(conn: psycopg.Connection) -> None:
    """pgvector's HNSW scan stops after hnsw.ef_search candidates: ccvec.nearest (so ccvec.similar
    and `similar --semantic -k`) gave at most that many rows, silently, wherever the planner used
    the index. The function's scan is iterative, so k rows come back, and the caller's setting stays."""
    rng = np.random.default_rng(5)
    vectors = rng.normal(size=(120, 8))
    add_model(conn, "deep8", 8)
    ids = add_embeddings(conn, "deep8", vectors)
    conn.execute("SELECT ccvec.create_embedding_index('deep8')")
    conn.execute("SET hnsw.ef_search = 10")
    conn.execute("SET enable_seqscan = off")  # as on a large table: the planner takes the index
    conn.execute("SET enable_sort = off")
    plan = "\n".join(
        r[0]
        for r in conn.execute(
            "EXPLAIN SELECT identifier FROM ccvec.image_embedding WHERE model = 'deep8' "
            "ORDER BY embedding::halfvec(8) <=> %s::halfvec(8) LIMIT 50",
            [str(vectors[0].tolist())],
        )
    )
    assert "hnsw" in plan, plan
    found = conn.execute("SELECT identifier FROM ccvec.similar(%s, 50, 'deep8')", [ids[0]]).fetchall()
    assert len(found) == 50 and ids[0] not in {i for (i,) in found}
    expected = [i for i, _ in _cosine_order(vectors, ids, 0)[:50]]
    assert len({i for (i,) in found} & set(expected)) >= 45  # approximate, but the right neighbourhood
    assert conn.execute("SHOW hnsw.iterative_scan").fetchone() == ("off",)  # set for the call only
    for setting in ("enable_seqscan", "enable_sort", "hnsw.ef_search"):
        conn.execute(f"RESET {setting}")


def test_cluster_threshold_rescales_the_graph_range(conn: psycopg.Connection) -> None:
    add_model(conn, "thr", 2)
    run = one(conn, "INSERT INTO ccvec.knn_run (model, k, ef_search) VALUES ('thr', 2, 40) RETURNING id")
    empty = one(conn, "INSERT INTO ccvec.knn_run (model, k, ef_search) VALUES ('thr', 2, 40) RETURNING id")
    sims = [0.9, 0.7, 0.25, 0.6]
    for s in sims:
        conn.execute(
            "INSERT INTO ccvec.knn_edge VALUES (%s, %s, %s, 1, %s)", [run, uuid.uuid4(), uuid.uuid4(), s]
        )
    lo = min(sims)
    for sim in (0.0, 0.35, 0.5, 1.0):
        assert one(conn, "SELECT ccvec.cluster_threshold(%s::bigint, %s::real)", [run, sim]) == pytest.approx(
            lo + sim * (1 - lo), abs=1e-6
        )
        assert one(
            conn, "SELECT ccvec.cluster_threshold(%s::bigint, %s::real)", [empty, sim]
        ) == pytest.approx(sim, abs=1e-6)


# ---------------------------------------------------------------- popularity and authority


def test_metric_value_accepts_only_non_negative_numbers(conn: psycopg.Connection) -> None:
    cases = [
        ({"views": 12}, 12.0),
        ({"views": 0}, 0.0),
        ({"views": 3.25}, 3.25),
        ({"views": " 42 "}, 42.0),
        ({"views": "4.5"}, 4.5),
        ({"views": -1}, None),
        ({"views": "-3"}, None),
        ({"views": "1e3"}, None),
        ({"views": "many"}, None),
        ({"views": True}, None),
        ({"views": None}, None),
        ({"views": [1]}, None),
        ({"other": 5}, None),
        ({}, None),
    ]
    for meta, expected in cases:
        assert one(conn, "SELECT ccvec.metric_value(%s::jsonb, 'views')", [json.dumps(meta)]) == expected, (
            meta
        )
    assert one(conn, "SELECT ccvec.metric_value(NULL, 'views')") is None


def test_standardize_is_v_over_v_plus_c(conn: psycopg.Connection) -> None:
    rng = random.Random(11)
    for v, c in [(rng.uniform(0, 1e6), rng.uniform(1e-3, 1e4)) for _ in range(50)] + [
        (0.0, 5.0),
        (10.0, 10.0),
    ]:
        got = one(conn, "SELECT ccvec.standardize(%s, %s)", [v, c])
        assert got == pytest.approx(v / (v + c), rel=1e-12)
        assert 0 <= got < 1
    # the percentile value V_p maps to exactly p when C = ((1 - p) / p) * V_p
    p, vp = 0.85, 1234.0
    assert one(conn, "SELECT ccvec.standardize(%s, %s)", [vp, (1 - p) / p * vp]) == pytest.approx(p)
    assert one(conn, "SELECT ccvec.standardize(0, 0)") == 0
    assert one(conn, "SELECT ccvec.standardize(NULL, 3)") is None
    assert one(conn, "SELECT ccvec.standardize(3, NULL)") is None


def _reverse_host(url: str) -> str:
    host = urlsplit(url).hostname or ""
    host = host.removeprefix("www.")
    return ".".join(reversed(host.split("."))) if host else ""


def test_reverse_host_agrees_with_urllib(conn: psycopg.Connection) -> None:
    urls = [
        "https://www.Sub.Example.com:8080/x?y",
        "HTTP://EXAMPLE.ORG",
        "http://user:pw@img.example.net/a@b",
        "https://www.www.example.com/",
        "ftp://files.example.co.uk/pub",
        "https://a.b.c.d.e/#frag",
        "http://192.168.1.10:80/x",
        "https://wwwexample.com/",
        "https://example.com?q=1",
    ]
    for url in urls:
        assert one(conn, "SELECT ccvec.reverse_host(%s)", [url]) == _reverse_host(url), url
    assert one(conn, "SELECT ccvec.reverse_host('not a url')") == ""
    assert one(conn, "SELECT ccvec.reverse_host(NULL)") == ""


def test_reversed_domain_edge_cases(conn: psycopg.Connection) -> None:
    cases = {
        "com.example": "com.example",
        "com.example.www.x": "com.example",
        "jp.ne.example.www": "jp.ne.example",
        "au.com.shop": "au.com.shop",
        "com.co.example": "com.co",
        "localhost": "localhost",
        "uk.co": "uk.co",
        "": None,
        None: None,
    }
    for host_rev, expected in cases.items():
        assert one(conn, "SELECT ccvec.reversed_domain(%s)", [host_rev]) == expected, host_rev


def test_web_rank_score_is_log_scaled_and_clamped(conn: psycopg.Connection) -> None:
    max_pos = 90_000_000
    for pos in [1, 2, 10, 1000, 123_456, max_pos - 1, max_pos, max_pos * 3, 0, -5]:
        expected = max(0.0, min(1.0, 1 - math.log(max(pos, 1)) / math.log(max_pos)))
        got = one(conn, "SELECT ccvec.web_rank_score(%s, %s)", [pos, max_pos])
        assert got == pytest.approx(expected, abs=1e-6), pos
    assert one(conn, "SELECT ccvec.web_rank_score(5, 1)") == 1
    assert one(conn, "SELECT ccvec.web_rank_score(NULL, 10)") is None
    assert one(conn, "SELECT ccvec.web_rank_score(3, NULL)") is None


# ---------------------------------------------------------------- A/B testing


def _unit_hash(text: str) -> float:
    return int(hashlib.md5(text.encode()).hexdigest()[:8], 16) / 2**32


def test_unit_hash_is_the_first_32_bits_of_md5(conn: psycopg.Connection) -> None:
    texts = ["", "a", "salt:session-1", "ünïcødé ✓", "x" * 1000] + [f"s:{i}" for i in range(100)]
    got = [one(conn, "SELECT ccvec.unit_hash(%s)", [t]) for t in texts]
    assert got == [_unit_hash(t) for t in texts]
    assert all(0 <= g < 1 for g in got)


def test_assign_arm_follows_the_hash_and_the_window(conn: psycopg.Connection) -> None:
    conn.execute(
        "INSERT INTO ccvec.experiment (name, salt, treatment_share, substitution_share) "
        "VALUES ('arm', 'pepper', 0.4, 0.5)"
    )
    sessions = [f"session-{i}" for i in range(300)]
    expected = ["treatment" if _unit_hash(f"pepper:{s}") < 0.4 else "control" for s in sessions]
    got = [one(conn, "SELECT ccvec.assign_arm('arm', %s)", [s]) for s in sessions]
    assert got == expected and 0 < expected.count("treatment") < len(sessions)
    treated = sessions[expected.index("treatment")]
    for change in (
        "status = 'draft'",
        "starts_at = now() + interval '1 hour'",
        "starts_at = now() - interval '2 hours', ends_at = now() - interval '1 hour'",
    ):
        conn.execute("SAVEPOINT arm_window")
        conn.execute(f"UPDATE ccvec.experiment SET {change} WHERE name = 'arm'")
        assert one(conn, "SELECT ccvec.assign_arm('arm', %s)", [treated]) == "control", change
        conn.execute("ROLLBACK TO SAVEPOINT arm_window")
    assert one(conn, "SELECT ccvec.assign_arm('arm', %s)", [treated]) == "treatment"
    assert one(conn, "SELECT ccvec.assign_arm('no-such-experiment', 's')") is None


def test_one_populated_check_serves_refresh_view(conn: psycopg.Connection) -> None:
    """ccvec.view_populated is the one check (matview_populated, its duplicate, is gone): false
    before the first refresh, which then runs plainly, true after (refreshes run CONCURRENTLY);
    a view that does not exist is named in the error, as before."""
    from ccvec import db
    from ccvec.errors import CcvecError

    assert one(conn, "SELECT to_regprocedure('ccvec.matview_populated(text)')") is None
    conn.execute("REFRESH MATERIALIZED VIEW ccvec.image_novelty WITH NO DATA")
    conn.commit()
    assert one(conn, "SELECT ccvec.view_populated('image_novelty')") is False
    db.refresh_view(conn, "image_novelty")
    assert one(conn, "SELECT ccvec.view_populated('image_novelty')") is True
    db.refresh_view(conn, "image_novelty")  # CONCURRENTLY now: needs its unique index, which it has
    assert one(conn, "SELECT ccvec.view_populated('no_such_view')") is False
    with pytest.raises(CcvecError, match=r"no materialized view ccvec\.no_such_view: run `ccvec db upgrade`"):
        db.refresh_view(conn, "no_such_view")


def test_spread_distance_and_its_floor(conn: psycopg.Connection) -> None:
    """The novelty score: distance to a centre in units of each dimension's standard deviation +
    floor, the floor being novelty.spread_floor (1) x the mean deviation. Without it a dimension
    that hardly varies makes a tiny offset count as much as a large one."""
    mean, square = "[0, 0]", "[4, 0.0001]"  # standard deviations 2 and 0.01
    floor = one(conn, "SELECT ccvec.spread_floor(%s, %s)", [mean, square])
    assert floor == pytest.approx(1.005, rel=1e-5)

    def distance(x: str, floor: float) -> float:
        return one(
            conn,
            "SELECT ccvec.spread_distance(%s, %s, ccvec.spread_weights(%s, %s, %s))",
            [x, mean, mean, square, floor],
        )

    far, tiny = "[2, 0]", "[0, 0.01]"
    assert distance(far, floor) == pytest.approx(2 / 3.005, rel=1e-4)
    assert distance(tiny, floor) == pytest.approx(0.01 / 1.015, rel=1e-4)
    assert distance(far, 0) == pytest.approx(distance(tiny, 0), rel=1e-4) == pytest.approx(1, rel=1e-4)
    conn.execute("UPDATE ccvec.setting SET value = 0 WHERE name = 'novelty.spread_floor'")
    assert one(conn, "SELECT ccvec.spread_floor(%s, %s)", [mean, square]) == 0
    conn.rollback()


def test_collection_novelty_fits_the_current_graph(conn: psycopg.Connection) -> None:
    """ccvec refresh fits the current graph's model's centre and spreads, then ranks every image of
    the graph by its spread distance: the one far from the rest is the most novel."""
    from ccvec import clusters, graph

    assert one(conn, "SELECT ccvec.novelty_centre_fit()") == 0  # no graph yet
    add_model(conn, "spread", 3)
    rng = np.random.default_rng(0)
    vectors = np.abs(np.array([1.0, 0.2, 0.2]) + rng.normal(0, 0.05, (12, 3)))
    vectors = np.vstack([vectors, [[0.2, 0.2, 1.0]]])
    ids = add_embeddings(conn, "spread", vectors / np.linalg.norm(vectors, axis=1, keepdims=True))
    conn.commit()
    graph.build(conn, k=3, model="spread", recall_sample=0)
    clusters.refresh_scored(conn)
    assert one(conn, "SELECT images FROM ccvec.novelty_centre WHERE model = 'spread'") == 13
    rows = dict(conn.execute("SELECT identifier, novelty FROM ccvec.image_novelty").fetchall())
    assert len(rows) == 13 and rows[ids[12]] == 1.0 and max(rows[i] for i in ids[:12]) < 1.0
    conn.execute("UPDATE ccvec.setting SET value = 5 WHERE name = 'novelty.fit_sample'")
    assert one(conn, "SELECT ccvec.novelty_centre_fit()") == 5
    conn.rollback()
