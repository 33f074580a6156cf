"""The foundation: embedded server, server checks, migrations, the db CLI."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from ccvec import db, migrate
from ccvec.errors import CcvecError

from .process import run_ccvec

EXPECTED_TABLES = set(
    """catalog image model image_feature image_embedding load_run load_error
    mih_config mih_mask_set mih_plan provider_class duplicate_run duplicate_member duplicate_group
    duplicate_edge image_cue
    setting knn_run knn_edge knn_adjacency knn_current cluster_run cluster_member image_cluster
    inferred_tags neighbourhood_popularity popularity_source
    popularity_metric observed_popularity visualrank_run visual_rank web_rank web_rank_release
    web_authority image_score experiment cluster_mate ab_served ab_event
    ab_outcome ab_alternate_signal
    class_name image_class cluster_label cluster_summary image_novelty novelty_centre
    novelty_model novelty_reference novelty_score reference_novelty score_input image_node
    refresh_state""".split()  # noqa: SIM905 (a readable block)
)


ccvec = run_ccvec


def ccvec_tables(url: str) -> set[str]:
    """Tables, views and materialized views in schema ccvec (not alembic's own table)."""
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = 'ccvec' AND c.relkind IN ('r', 'v', 'm')"
        ).fetchall()
        functions = conn.execute(
            "SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
            "WHERE n.nspname = 'ccvec'"
        ).fetchone()[0]
    names = {r[0] for r in rows} - {"alembic_version"}
    return names if names or functions == 0 else names | {f"{functions} functions left"}


def test_embedded_server_has_pgvector(server_url: str) -> None:
    with db.connect(server_url) as conn:
        assert conn.info.server_version >= 180000
        version = conn.execute("SELECT extversion FROM pg_extension WHERE extname='vector'").fetchone()
    assert db.parse_version(version[0]) >= db.MIN_PGVECTOR


def test_start_embedded_reuses_running_server(server_url: str, ccvec_home: Path) -> None:
    again = db.start_embedded(ccvec_home / "pgdata")
    assert again == server_url
    with psycopg.connect(again) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_discard_embedded_leaves_no_data_behind() -> None:
    """A throwaway server (tests, benchmarks) is stopped and its data deleted, also where root's
    server account keeps it outside the home (/var/lib/ccvec/...), which deleting the home misses."""
    home = Path(tempfile.mkdtemp(prefix="ccvec-discard-"))  # 0700: as root, the data is relocated
    pgdata = home / "pgdata"
    try:
        with psycopg.connect(db.start_embedded(pgdata)) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
        location = db.server_location(pgdata)
        assert (location / "PG_VERSION").exists()
        db.discard_embedded(pgdata)
        assert not location.exists() and not db.stop_embedded(pgdata)
        if location != pgdata.resolve():
            assert not location.parent.exists()
    finally:
        db.discard_embedded(pgdata)
        shutil.rmtree(home, ignore_errors=True)


def test_upgrade_downgrade_upgrade(fresh_database_url: str) -> None:
    migrate.upgrade(fresh_database_url)
    assert ccvec_tables(fresh_database_url) == EXPECTED_TABLES
    with psycopg.connect(fresh_database_url) as conn:
        assert migrate.current_revision(conn) == migrate.head_revision()
    migrate.downgrade(fresh_database_url, "base")
    assert ccvec_tables(fresh_database_url) == set()
    with psycopg.connect(fresh_database_url) as conn:
        assert migrate.current_revision(conn) is None
    migrate.upgrade(fresh_database_url)
    assert ccvec_tables(fresh_database_url) == EXPECTED_TABLES


def test_a_role_granted_before_an_upgrade_keeps_its_access(fresh_database_url: str) -> None:
    """Grants cover the tables that exist when given; tables a later migration adds or replaces
    (0032's probe plan and mask sets, the views 0033, 0034 and 0038 re-create) get the grants of
    those they stand beside."""
    migrate.upgrade(fresh_database_url, "0031_dead_sql")
    role = f"Old-Reader_{os.getpid()}"  # a name that needs quoting
    with psycopg.connect(fresh_database_url, autocommit=True) as conn:
        conn.execute(f'CREATE ROLE "{role}" LOGIN')
        conn.execute("SELECT ccvec.grant_access(%s, 'reader')", [role])
        conn.execute(
            "INSERT INTO ccvec.image_feature (identifier, phash, content_sha256, width, height) "
            "SELECT gen_random_uuid(), g * 7919, sha256(int8send(g)), 1, 1 FROM generate_series(1, 200) g"
        )
        conn.execute("SELECT ccvec.configure_mih(4)")
    try:
        migrate.upgrade(fresh_database_url)
        with psycopg.connect(fresh_database_url.replace("postgres:@", f"{role}:@")) as reader:
            for radius in (1, 8):  # a probe of the chunk indexes, then a scan: both read the plan
                found = reader.execute("SELECT count(*) FROM ccvec.hamming_neighbours(7919, %s)", [radius])
                assert found.fetchone()[0] >= 1
            for view in (*REPLACED_VIEWS, "image_novelty"):  # replaced by 0033, 0034, 0038
                readable = reader.execute("SELECT has_table_privilege(%s, 'SELECT')", [f"ccvec.{view}"])
                assert readable.fetchone()[0], view
    finally:
        with psycopg.connect(fresh_database_url, autocommit=True) as conn:
            conn.execute("SELECT ccvec.revoke_access(%s)", [role])
            conn.execute(f'DROP OWNED BY "{role}"')
            conn.execute(f'DROP ROLE "{role}"')


REPLACED_VIEWS = ("inferred_tags", "neighbourhood_popularity", "image_score", "cluster_mate")


def test_matview_replace_keeps_indexes_grants_comment_and_data(fresh_database_url: str) -> None:
    """ccvec.matview_replace (migration 0038): the new query, with the old view's owner, indexes
    (by name), grants and comment; refreshed when the old one had data, left empty when it had none."""
    migrate.upgrade(fresh_database_url)
    role = f"probe_reader_{os.getpid()}"
    with psycopg.connect(fresh_database_url, autocommit=True) as conn:
        conn.execute(f'CREATE ROLE "{role}"')
        try:
            for populated in (True, False):
                conn.execute(
                    "CREATE MATERIALIZED VIEW ccvec.probe AS SELECT g FROM generate_series(1, 3) g "
                    f"WITH {'' if populated else 'NO '}DATA"
                )
                conn.execute("CREATE UNIQUE INDEX probe_key ON ccvec.probe (g)")
                conn.execute("COMMENT ON MATERIALIZED VIEW ccvec.probe IS 'a probe'")
                conn.execute(f'GRANT SELECT ON ccvec.probe TO "{role}"')
                conn.execute(f'ALTER MATERIALIZED VIEW ccvec.probe OWNER TO "{role}"')
                query = "SELECT g, 2 * g AS twice FROM generate_series(1, 5) g -- ends in a comment"
                conn.execute("SELECT ccvec.matview_replace('probe', %s)", [query])
                shape = conn.execute(
                    "SELECT c.relispopulated, obj_description(c.oid, 'pg_class'), "
                    "has_table_privilege(%s, c.oid, 'SELECT'), c.relowner::regrole::text, "
                    "(SELECT array_agg(i.indexrelid::regclass::text) FROM pg_index i "
                    " WHERE i.indrelid = c.oid) "
                    "FROM pg_class c WHERE c.oid = 'ccvec.probe'::regclass",
                    [role],
                ).fetchone()
                assert shape == (populated, "a probe", True, role, ["ccvec.probe_key"])
                if populated:
                    assert conn.execute("SELECT sum(twice) FROM ccvec.probe").fetchone()[0] == 30
                    assert conn.execute("SELECT count(*) FROM ccvec.probe_retired").fetchone()[0] == 3
                conn.execute("DROP MATERIALIZED VIEW ccvec.probe, ccvec.probe_retired")
            with pytest.raises(psycopg.errors.RaiseException, match="not a materialized view"):
                conn.execute("SELECT ccvec.matview_replace('image', 'SELECT 1')")
        finally:
            conn.execute(f'DROP OWNED BY "{role}"')
            conn.execute(f'DROP ROLE "{role}"')


def test_plain_alembic_command_works(fresh_database_url: str) -> None:
    repo = Path(__file__).resolve().parent.parent
    result = subprocess.run(
        [sys.executable, "-m", "alembic", "upgrade", "head"],
        cwd=repo,
        capture_output=True,
        text=True,
        env={**os.environ, "DATABASE_URL": fresh_database_url},
    )
    assert result.returncode == 0, result.stderr
    assert ccvec_tables(fresh_database_url) == EXPECTED_TABLES


def test_embedding_dimension_is_enforced(conn: psycopg.Connection) -> None:
    conn.execute(
        "INSERT INTO ccvec.model (name, version, onnx_sha256, dim, spec) VALUES ('tiny', '1', 'x', 3, '{}')"
    )
    conn.execute(
        "INSERT INTO ccvec.image_embedding (model, identifier, embedding) "
        "VALUES ('tiny', gen_random_uuid(), '[1,0,0]')"
    )
    with pytest.raises(psycopg.Error, match="has 2 dimensions") as raised:
        conn.execute(
            "INSERT INTO ccvec.image_embedding (model, identifier, embedding) "
            "VALUES ('tiny', gen_random_uuid(), '[1,0]')"
        )
    assert raised.value.sqlstate == "VC003"


def test_use_catalog_points_view_at_existing_table(conn: psycopg.Connection) -> None:
    conn.execute(
        "CREATE TABLE public.openverse_image (identifier uuid primary key, url varchar(3000), "
        "provider varchar(80), title varchar(5000), meta_data jsonb)"
    )
    conn.execute(
        "INSERT INTO public.openverse_image VALUES "
        "('11111111-1111-1111-1111-111111111111', 'https://x/a.jpg', 'flickr', 'A', '{\"views\": 3}')"
    )
    conn.execute("SELECT ccvec.use_catalog('public.openverse_image')")
    row = conn.execute("SELECT provider, title, meta_data, license FROM ccvec.catalog").fetchone()
    assert row == ("flickr", "A", {"views": 3}, None)
    conn.rollback()  # leave the shared database's view as it was


def test_status_cli_reports_versions_and_counts(database_url: str) -> None:
    result = ccvec("db", "status", env={"DATABASE_URL": database_url})
    assert result.returncode == 0, result.stderr
    assert "pgvector    0.8." in result.stdout
    assert f"{migrate.head_revision()} (up to date)" in result.stdout
    assert "ccvec.image_embedding" in result.stdout


def test_unreachable_server_is_one_line_error() -> None:
    result = ccvec("db", "status", env={"DATABASE_URL": "postgresql://u:secret@127.0.0.1:9/x"})
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("error: cannot connect to PostgreSQL at")
    assert "secret" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("installed", "available", "expected"),
    [
        ("0.8.6", "0.8.6", None),
        ("0.8.3", "0.8.3", None),
        (None, "0.10.0-dev", None),
        ("0.8.2", "0.8.6", "pgvector 0.8.2 is too old"),
        ("0.7.4", None, "pgvector 0.7.4 is too old"),
        (None, "0.8.0", "pgvector 0.8.0 is too old on this server"),
        (None, None, "pgvector is not available"),
    ],
)
def test_pgvector_version_rule(installed, available, expected) -> None:
    problem = db.pgvector_problem(installed, available)
    if expected is None:
        assert problem is None
    else:
        assert problem is not None and problem.startswith(expected)


# ------------------------------------------------------------ a real server without pgvector


def _debian_initdb() -> str | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return found[-1] if found else None


@pytest.fixture(scope="module")
def plain_postgres_url() -> Iterator[str]:
    """A stock PostgreSQL (Debian's package) that has no pgvector, started for this test."""
    initdb = _debian_initdb()
    if initdb is None:
        pytest.skip("no Debian PostgreSQL server package installed (.ci/run installs one)")
    bindir = Path(initdb).parent
    workdir = Path(tempfile.mkdtemp(prefix="pgplain-"))
    as_user: list[str] = []
    if os.geteuid() == 0:  # PostgreSQL refuses to run as root
        shutil.chown(workdir, "embedded_postgres")
        as_user = ["runuser", "-u", "embedded_postgres", "--"]
    data = workdir / "data"
    subprocess.run(
        [*as_user, initdb, "-D", str(data), "-A", "trust", "-U", "postgres"], check=True, capture_output=True
    )
    subprocess.run(
        [
            *as_user,
            str(bindir / "pg_ctl"),
            "-D",
            str(data),
            "-w",
            "-l",
            str(workdir / "log"),
            "-o",
            f"-h '' -k {workdir}",
            "start",
        ],
        check=True,
        capture_output=True,
    )
    yield f"postgresql://postgres@/postgres?host={workdir}"
    subprocess.run([*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-w", "stop"], capture_output=True)
    shutil.rmtree(workdir, ignore_errors=True)


def test_server_without_pgvector_is_refused(plain_postgres_url: str) -> None:
    with pytest.raises(CcvecError, match="pgvector is not available"):
        db.connect(plain_postgres_url)
    result = ccvec("db", "status", env={"DATABASE_URL": plain_postgres_url})
    assert result.returncode == 2
    assert result.stderr.startswith("error: pgvector is not available on this server")
    assert "Traceback" not in result.stderr
