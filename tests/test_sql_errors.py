"""ccvec's SQL errors carry their own SQLSTATEs (class VC), and the CLI shows them as one line."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

import psycopg
import pytest

from ccvec import migrate
from ccvec.errors import CcvecError, from_database

# (SQL, SQLSTATE, start of the message): one call per RAISE in ccvec's functions but the embedding
# dimension trigger (tests/test_database.py) and visualrank (below, it needs a graph).
RAISES = [
    ("SELECT ccvec.configure_mih(17)", "VC001", "number of chunks must be between 1 and 16, not 17"),
    ("SELECT * FROM ccvec.hamming_neighbours(0, -1)", "VC001", "radius must be between 0 and 64, not -1"),
    ("SELECT ccvec.check_radius(65)", "VC001", "radius must be between 0 and 64, not 65"),
    ("SELECT ccvec.check_sim(1.5)", "VC001", "sim must be between 0 and 1, not 1.5"),
    ("SELECT ccvec.cluster_threshold(1, -0.5)", "VC001", "sim must be between 0 and 1, not -0.5"),
    (
        "SELECT ccvec.duplicate_settings_check(8, 0, 0.5, 24, '{original}')",
        "VC001",
        "cosine threshold must be",
    ),
    (
        "SELECT ccvec.duplicate_settings_check(8, NULL, 0, 24, '{original}')",
        "VC001",
        "link must be in (0, 1]",
    ),
    ("SELECT ccvec.duplicate_settings_check(8, NULL, 0.5, 0, '{original}')", "VC001", "k must be at least 1"),
    ("SELECT ccvec.duplicate_settings_check(8, NULL, 0.5, 2, '{}')", "VC001", "give at least one canonical"),
    (
        "SELECT ccvec.duplicate_settings_check(8, NULL, 0.5, 2, '{best}')",
        "VC001",
        "unknown canonical preference",
    ),
    (
        "SELECT ccvec.duplicate_run_start(99, NULL, NULL, '{original}', 0.5, 2, true)",
        "VC001",
        "radius must be",
    ),
    (
        "SELECT ccvec.create_experiment('e', 's', 1.5, 0.2, 'default')",
        "VC001",
        "treatment share must be between",
    ),
    (
        "SELECT ccvec.create_experiment('e', 's', 0.5, NULL, 'default')",
        "VC001",
        "substitution share must be between",
    ),
    ("SELECT ccvec.canonical_order('{biggest}')", "VC001", "unknown canonical preference biggest"),
    ("SELECT ccvec.model_dim('nope')", "VC002", "no model named nope"),
    ("SELECT * FROM ccvec.nearest('nope', '[1,0]', 3)", "VC002", "no model named nope"),
    ("SELECT ccvec.create_embedding_index('nope')", "VC002", "no model named nope"),
    (
        "SELECT * FROM ccvec.similar('00000000-0000-0000-0000-000000000001', 3, 'nope')",
        "VC002",
        "image 00000000-0000-0000-0000-000000000001 has no nope embedding",
    ),
    ("SELECT * FROM ccvec.substitute('nope', 's', 'q', '{}')", "VC002", "no experiment named nope"),
    ("SELECT * FROM ccvec.load_errors(99)", "VC002", "load run 99 does not exist"),
    ("SELECT ccvec.use_catalog('pg_catalog.pg_am')", "VC003", "catalog table pg_am needs at least"),
    (
        "SELECT ccvec.knn_adjacency_put(1, 0, 0, '\\x00', '\\x', '\\x', '\\x')",
        "VC001",
        "adjacency part of kNN run 1 at node 0 has inconsistent lengths",
    ),
]


@pytest.mark.parametrize(("sql", "sqlstate", "message"), RAISES, ids=[r[0][:40] for r in RAISES])
def test_each_raise_has_its_sqlstate(conn: psycopg.Connection, sql: str, sqlstate: str, message: str) -> None:
    with pytest.raises(psycopg.Error) as raised:
        conn.execute(sql)
    assert raised.value.sqlstate == sqlstate
    error = from_database(raised.value)
    assert isinstance(error, CcvecError)
    assert str(error).startswith(message) and "\n" not in str(error)


def test_visualrank_of_an_empty_graph(conn: psycopg.Connection) -> None:
    run = empty_current_graph(conn)
    with pytest.raises(psycopg.Error, match=f"kNN run {run} has no edges") as raised:
        conn.execute("SELECT ccvec.visualrank(%s)", [run])
    assert raised.value.sqlstate == "VC004"


def test_other_database_errors_are_not_ccvecs(conn: psycopg.Connection) -> None:
    with pytest.raises(psycopg.Error) as raised:
        conn.execute("SELECT 1 / 0")
    assert from_database(raised.value) is None
    assert from_database(ValueError("VC001")) is None


def empty_current_graph(conn: psycopg.Connection) -> int:
    """A current kNN run without edges: what `ccvec graph build` leaves for a single image."""
    conn.execute(
        "INSERT INTO ccvec.model (name, version, onnx_sha256, dim, spec) VALUES ('lonely', '1', 'x', 2, '{}')"
    )
    return conn.execute(
        "INSERT INTO ccvec.knn_run (model, k, ef_search, is_current) "
        "VALUES ('lonely', 10, 40, true) RETURNING id"
    ).fetchone()[0]


def ccvec(*args: str) -> subprocess.CompletedProcess:
    """The real CLI in a subprocess (DATABASE_URL is the test database, set by the conn fixture)."""
    return subprocess.run(
        [sys.executable, "-m", "ccvec.cli", *args], capture_output=True, text=True, env=dict(os.environ)
    )


def assert_one_line_error(result: subprocess.CompletedProcess, message: str) -> None:
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()  # progress lines may come first
    assert lines[-1] == f"error: {message}"
    assert [line for line in lines if "error" in line.lower()] == [lines[-1]]


def test_cli_shows_an_sql_error_as_one_line(conn: psycopg.Connection) -> None:
    run = empty_current_graph(conn)
    conn.commit()
    assert_one_line_error(ccvec("refresh"), f"kNN run {run} has no edges")


def test_cli_semantic_similar_without_embedding(conn: psycopg.Connection) -> None:
    ident = uuid.uuid4()
    result = ccvec("similar", "--semantic", "--identifier", str(ident), "--model", "tiny")
    assert_one_line_error(result, f"image {ident} has no tiny embedding")


# Hostile arguments (migration 0052): each call hung, failed with PostgreSQL's own error or answered
# silently before; now one VC error naming the argument.
HOSTILE = [
    ("SELECT ccvec.configure_mih(NULL)", "VC001", "number of chunks must be between 1 and 16, not NULL"),
    ("SELECT ccvec.configure_mih(4, NULL)", "VC001", "max masks must be between 1 and 10000000, not NULL"),
    ("SELECT ccvec.configure_mih(1, 2147483647)", "VC001", "max masks must be between 1 and 10000000"),
    ("SELECT ccvec.mih_make_candidates('{NULL}')", "VC001", "chunk widths must be 1 to 64 bits each"),
    ("SELECT ccvec.mih_make_candidates('{}')", "VC001", "chunk widths must be 1 to 64 bits each"),
    ("SELECT ccvec.mih_make_candidates('{-1,65}')", "VC001", "chunk widths must be 1 to 64 bits each"),
    ("SELECT ccvec.mih_make_candidates(NULL)", "VC001", "chunk widths must be 1 to 64 bits each"),
    ("SELECT ccvec.canonical_order(NULL)", "VC001", "give at least one canonical preference"),
    ("SELECT ccvec.use_catalog(NULL)", "VC001", "give a catalog table, not NULL"),
    ("SELECT ccvec.revoke_access('no_such_role_0052')", "VC002", "role no_such_role_0052 does not exist"),
    ("SELECT ccvec.revoke_access('')", "VC002", 'role "" does not exist'),  # 0057: quoted
    ("SELECT ccvec.revoke_access('Two Words')", "VC002", 'role "Two Words" does not exist'),
    ("SELECT ccvec.grant_access('', 'reader')", "VC002", 'role "" does not exist: CREATE ROLE "" LOGIN'),
    ("SELECT ccvec.grant_access(current_user, NULL)", "VC001", "unknown access level NULL"),  # granted reader
    ("SELECT ccvec.grant_access(current_user, 'admin')", "VC001", "unknown access level 'admin'"),
    ("SELECT ccvec.revoke_access(NULL)", "VC002", "role NULL does not exist"),
    ("SELECT ccvec.vector_index_body('halfvec', 'hostile2', NULL, 64)", "VC001", "give m and ef_constr"),
    ("SELECT ccvec.create_embedding_index('hostile2', 16, NULL)", "VC001", "give m and ef_construction"),
    ("SELECT ccvec.vector_index_body(NULL, 'hostile2', 16, 64)", "VC001", "unknown index kind NULL"),
]


@pytest.mark.parametrize(("sql", "sqlstate", "message"), HOSTILE, ids=[r[0][:45] for r in HOSTILE])
def test_hostile_arguments_raise_ccvec_errors(
    conn: psycopg.Connection, sql: str, sqlstate: str, message: str
) -> None:
    conn.execute("SET statement_timeout = '10s'")  # configure_mih(NULL) looped for ever
    conn.execute(
        "INSERT INTO ccvec.model (name, version, onnx_sha256, dim, spec) "
        "VALUES ('hostile2', '1', 'x', 2, '{}')"
    )
    with pytest.raises(psycopg.Error) as raised:
        conn.execute(sql)
    assert raised.value.sqlstate == sqlstate, str(raised.value)
    assert str(raised.value).startswith(message)


def test_mih_arithmetic_of_hostile_layouts(conn: psycopg.Connection) -> None:
    conn.execute("SET statement_timeout = '10s'")  # a weight of 2^31 - 1 counted for ever
    # a weight above the width probes every mask of the chunk: C(16, 0..16) = 2^16
    assert conn.execute("SELECT ccvec.mih_probe_count('{16}', '{2147483647}')").fetchone()[0] == 2**16
    assert conn.execute("SELECT ccvec.mih_probe_count('{16, 16}', '{2, 1}')").fetchone()[0] == 137 + 17
    assert conn.execute("SELECT ccvec.mih_probe_count('{NULL}', '{2147483647}')").fetchone()[0] == 0
    assert conn.execute("SELECT ccvec.mih_probe_count('{16}', '{NULL}')").fetchone()[0] == 0  # not 2^16
    assert conn.execute("SELECT ccvec.mih_probe_count('{16, 16}', '{2}')").fetchone()[0] == 137  # padded NULL
    assert conn.execute("SELECT ccvec.mih_thresholds('{}', 3)").fetchone()[0] is None  # divided by zero
    assert conn.execute("SELECT ccvec.mih_thresholds('{16,16,16,16}', 5)").fetchone()[0] == [0, 0, 1, 1]


SEARCHES = [
    ("SELECT * FROM ccvec.nearest('hostile2', '[1,0]', NULL)", "VC001", "k must be 0 or more, not NULL"),
    ("SELECT * FROM ccvec.nearest('hostile2', '[1,0]', -1)", "VC001", "k must be 0 or more, not -1"),
    ("SELECT * FROM ccvec.nearest('hostile2', NULL, 3)", "VC001", "query vector is NULL"),
    (
        "SELECT * FROM ccvec.nearest('hostile2', '[1,0,0]', 3)",
        "VC003",
        "query vector has 3 dimensions, model",
    ),
    ("SELECT * FROM ccvec.similar(%s, NULL, 'hostile2')", "VC001", "k must be 0 or more, not NULL"),
    ("SELECT * FROM ccvec.similar(%s, -1, 'hostile2')", "VC001", "k must be 0 or more, not -1"),
    ("SELECT * FROM ccvec.exact_nearest('hostile2', %s, NULL)", "VC001", "k must be 0 or more, not NULL"),
    ("SELECT * FROM ccvec.exact_nearest('hostile2', %s, -1)", "VC001", "k must be 0 or more, not -1"),
    ("SELECT * FROM ccvec.nearest_lean('hostile2', '[1,0]', NULL)", "VC001", "need 1 <= k <= candidates"),
    ("SELECT * FROM ccvec.nearest_lean('hostile2', '[1,0]', 2, NULL)", "VC001", "need 1 <= k <= candidates"),
    (
        "SELECT * FROM ccvec.nearest_lean('hostile2', '[1,0]', 2, 1001)",
        "VC001",
        "candidates must be at most 1000",
    ),
    ("SELECT * FROM ccvec.nearest_lean('hostile2', NULL, 2)", "VC001", "query vector is NULL"),
    ("SELECT * FROM ccvec.nearest_lean('hostile2', '[1]', 2)", "VC003", "query vector has 1 dimensions"),
]


@pytest.mark.parametrize(("sql", "sqlstate", "message"), SEARCHES, ids=[r[0][:60] for r in SEARCHES])
def test_searches_refuse_hostile_k_and_queries(
    conn: psycopg.Connection, sql: str, sqlstate: str, message: str
) -> None:
    """NULL k listed every image (500M in the catalog), a NULL query k images with NULL similarity."""
    conn.execute(
        "INSERT INTO ccvec.model (name, version, onnx_sha256, dim, spec) "
        "VALUES ('hostile2', '1', 'x', 2, '{}')"
    )
    ids = [uuid.uuid4() for _ in range(3)]
    for i, vec in zip(ids, ("[1,0]", "[0,1]", "[1,1]"), strict=True):
        conn.execute(
            "INSERT INTO ccvec.image_embedding (identifier, model, embedding) VALUES (%s, 'hostile2', %s)",
            [i, vec],
        )
    with pytest.raises(psycopg.Error) as raised:
        conn.execute(sql, [ids[0]] if "%s" in sql else None)
    assert raised.value.sqlstate == sqlstate, str(raised.value)
    assert str(raised.value).startswith(message)


def test_searches_with_k_zero_are_empty(conn: psycopg.Connection) -> None:
    conn.execute(
        "INSERT INTO ccvec.model (name, version, onnx_sha256, dim, spec) "
        "VALUES ('hostile0', '1', 'x', 2, '{}')"
    )
    assert conn.execute("SELECT count(*) FROM ccvec.nearest('hostile0', '[1,0]', 0)").fetchone()[0] == 0


@pytest.mark.parametrize(
    ("call", "views"),
    [
        ("ccvec.explain_score(%s)", "ccvec.image_score"),
        ("ccvec.explain_host(%s)", "ccvec.web_authority"),
        ("ccvec.explain_novelty(%s)", "ccvec.image_novelty"),
        ("ccvec.inferred_tags_of(%s)", "ccvec.inferred_tags"),
        ("ccvec.inferred_tags_all()", "ccvec.inferred_tags"),
        ("ccvec.score_summary()", "ccvec.image_score, ccvec.inferred_tags"),
    ],
)
def test_reading_before_the_first_refresh_says_to_run_it(
    fresh_database_url: str, call: str, views: str
) -> None:
    """Before `ccvec refresh` these said PostgreSQL's 'has not been populated', with the hint 'Use
    the REFRESH MATERIALIZED VIEW command': not how ccvec's views are refreshed."""
    migrate.upgrade(fresh_database_url)
    args = [uuid.uuid4()] if "%s" in call else []
    with psycopg.connect(fresh_database_url) as fresh, pytest.raises(psycopg.Error) as raised:
        fresh.execute(f"SELECT * FROM {call}", args)
    assert raised.value.sqlstate == "VC005"
    assert raised.value.diag.message_primary == f"{views} not computed yet: run `ccvec refresh`"
