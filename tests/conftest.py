"""Shared fixtures: one throwaway embedded PostgreSQL + pgvector per test session.

The server lives in a temporary directory and `CCVEC_HOME` points there too, so tests never touch
the user's own ccvec data. Tests that need an empty schema get a fresh database of their own.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import psycopg
import pytest
import typer.testing
from typer.testing import CliRunner, Result

from ccvec import db, migrate


@pytest.fixture(scope="session")
def ccvec_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    # A short path: the server's Unix socket lives in it and socket paths are length-limited.
    home = Path(tempfile.mkdtemp(prefix="ccvec-test-"))
    mp = pytest.MonkeyPatch()
    mp.setenv("CCVEC_HOME", str(home))
    mp.delenv("DATABASE_URL", raising=False)
    yield home
    mp.undo()
    shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="session")
def server_url(ccvec_home: Path) -> Iterator[str]:
    """URL of ccvec's database on the session's embedded server (schema not yet applied)."""
    url = db.start_embedded(ccvec_home / "pgdata")
    yield url
    db.discard_embedded(ccvec_home / "pgdata")  # as root the data may live outside ccvec_home


def _admin_url(url: str) -> str:
    return url.replace("/ccvec?", "/postgres?")


@pytest.fixture()
def fresh_database_url(server_url: str) -> Iterator[str]:
    """A new, empty database on the session server, dropped afterwards."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(_admin_url(server_url), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield server_url.replace("/ccvec?", f"/{name}?")
    with psycopg.connect(_admin_url(server_url), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def database_url(server_url: str) -> str:
    """ccvec's database with the schema at head, shared by the session."""
    migrate.upgrade(server_url)
    return server_url


TABLES = (
    "image, image_feature, image_embedding, model, load_run, load_error, "
    "duplicate_member, duplicate_run, duplicate_edge, image_cue, mih_config, mih_mask_set, mih_plan, "
    "knn_run, knn_edge, knn_adjacency, cluster_run, cluster_member, "
    "visualrank_run, visual_rank, score_input, image_node, web_rank, web_rank_release, "
    "experiment, ab_served, ab_event, "
    "class_name, image_class, cluster_label, novelty_model, novelty_reference, novelty_score, "
    "novelty_centre, refresh_state"
)


@pytest.fixture()
def conn(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[psycopg.Connection]:
    """A connection to the shared database; ccvec's tables are emptied after each test."""
    monkeypatch.setenv("DATABASE_URL", database_url)
    connection = db.connect(database_url)
    yield connection
    connection.rollback()
    connection.execute("TRUNCATE " + ", ".join(f"ccvec.{t.strip()}" for t in TABLES.split(",")) + " CASCADE")
    connection.commit()
    connection.close()


class _AsInstalled:
    """`ccvec.cli.app` as the `ccvec` script runs it: through `ccvec.cli.main`, so a user-fixable
    error becomes one line on stderr and exit status 2, exactly as for users (the bare app would
    leave the exception to the runner)."""

    name = "ccvec"

    def main(self, args: Sequence[str] = (), prog_name: str | None = None, **extra: object) -> None:
        from ccvec.cli import main

        saved = sys.argv
        sys.argv = ["ccvec", *args]
        try:
            main()
        finally:
            sys.argv = saved


@pytest.fixture()
def cli(conn: psycopg.Connection, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Result]:
    """`cli("graph", "build", "--k", "2")` runs ccvec in-process (typer's CliRunner over
    `ccvec.cli.app`) against the test database; returns the runner's Result (exit_code, stdout,
    stderr). Tables are emptied after the test, as with `conn`."""
    from ccvec.cli import app

    runner = CliRunner()
    monkeypatch.setattr(typer.testing, "_get_command", lambda _app: _AsInstalled())

    def invoke(*args: str | Path) -> Result:
        return runner.invoke(app, [str(a) for a in args])

    return invoke


@pytest.fixture()
def tiny(conn: psycopg.Connection, tmp_path: Path) -> str:
    """The tiny test model, registered under a name of its own; returns the name (tests that need a
    fixed name or the ONNX file define their own `tiny` with `register_tiny`)."""
    from .tiny_model import register_tiny

    name = f"tiny-{uuid.uuid4().hex[:6]}"
    register_tiny(conn, tmp_path, name)
    return name
