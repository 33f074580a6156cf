"""`ccvec db …`: the embedded server, the schema, status."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from ccvec import config, db, migrate
from ccvec.cli.common import app, console
from ccvec.errors import CcvecError

db_app = typer.Typer(help="Manage the database: embedded server, schema, status.", no_args_is_help=True)
app.add_typer(db_app, name="db")


@db_app.command("upgrade")
def db_upgrade(
    revision: Annotated[str, typer.Argument(help="Target revision.")] = "head",
) -> None:
    """Create or update ccvec's schema (alembic migrations applying sql/)."""
    migrate.upgrade(db.resolve_url(), revision)
    console.print(f"schema at {revision if revision != 'head' else migrate.head_revision()}")


@db_app.command("downgrade")
def db_downgrade(
    revision: Annotated[str, typer.Argument(help="Target revision; 'base' removes everything.")],
) -> None:
    """Undo migrations down to REVISION (drops ccvec's tables and their data)."""
    migrate.downgrade(db.resolve_url(), revision)
    console.print(f"schema at {revision}")


MAIN_TABLES = (
    "image",
    "model",
    "image_feature",
    "image_embedding",
    "load_run",
    "load_error",
    "duplicate_member",
    "knn_edge",
    "cluster_member",
    "visual_rank",
    "web_rank",
)


@db_app.command("status")
def db_status() -> None:
    """Show the server, pgvector and schema versions, and row counts of ccvec's tables."""
    url = db.resolve_url()
    with db.connection(url) as conn:
        server = conn.execute("SHOW server_version").fetchone()[0]
        pgvector = conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'").fetchone()[0]
        revision = migrate.current_revision(conn)
        counts = {}
        if revision:
            for table in MAIN_TABLES:
                if conn.execute("SELECT to_regclass(%s)", [f"{config.SCHEMA}.{table}"]).fetchone()[0]:
                    counts[table] = conn.execute(f"SELECT count(*) FROM {config.SCHEMA}.{table}").fetchone()[
                        0
                    ]
    head = migrate.head_revision()
    where = "embedded" if not config.database_url() else "DATABASE_URL"
    console.print(f"database    {db.redact(url)} ({where})")
    console.print(f"postgresql  {server}")
    console.print(f"pgvector    {pgvector}")
    state = "up to date" if revision == head else f"behind: run `ccvec db upgrade` (head {head})"
    console.print(f"schema      {revision or 'none'} ({state})")
    if counts:
        table = Table("table", "rows", box=None)
        for name, count in counts.items():
            table.add_row(f"{config.SCHEMA}.{name}", f"{count:,}")
        console.print(table)


@db_app.command("url")
def db_url() -> None:
    """Print the connection URL (for psql, or DATABASE_URL in other tools)."""
    print(db.resolve_url())


@db_app.command("start")
def db_start() -> None:
    """Start the embedded server under $CCVEC_HOME (no-op if it runs)."""
    if config.database_url():
        raise CcvecError("DATABASE_URL is set: ccvec uses that server and starts none of its own")
    url = db.start_embedded()
    console.print(f"embedded server running: {url}")


@db_app.command("stop")
def db_stop() -> None:
    """Stop the embedded server under $CCVEC_HOME."""
    if db.stop_embedded():
        console.print("embedded server stopped")
    else:
        console.print("embedded server was not running")
