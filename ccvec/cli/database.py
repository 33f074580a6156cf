"""`ccvec db …`: the embedded server, the schema, status."""

from __future__ import annotations

from typing import Annotated

import psycopg
import typer
from rich.table import Table

from ccvec import config, db, defaults, migrate
from ccvec.cli.common import (
    ModelOption,
    app,
    confirm_destructive,
    console,
    print_table,
    safe,
    schema_connection,
    stages,
)
from ccvec.errors import CcvecError, counted

db_app = typer.Typer(help="Manage the database: embedded server, schema, status.", no_args_is_help=True)
app.add_typer(db_app, name="db")


PartitionJobsOption = Annotated[
    int,
    typer.Option("--jobs", min=1, help="Connections building HNSW indexes at once, one partition each."),
]


@db_app.command("upgrade")
def db_upgrade(
    revision: Annotated[str, typer.Argument(help="Target revision.")] = "head",
    partitions: Annotated[
        int | None,
        typer.Option(
            "--partitions",
            min=1,
            help="Hash partitions of image_feature, image_embedding and knn_edge (1: plain tables, "
            "what a new database gets). Default: keep the current layout.",
        ),
    ] = None,
    jobs: PartitionJobsOption = defaults.INDEX_JOBS,
) -> None:
    """Create or update ccvec's schema (alembic migrations applying sql/); with --partitions,
    then give the growing tables that many hash partitions (as `ccvec db partition`)."""
    with stages() as bar:  # which migration runs, on stderr (one that rewrites rows is long at scale)

        def step(rev: str, number: int, total: int) -> None:
            bar.update(f"migration {rev}", number - 1, total)

        done = migrate.upgrade(db.resolve_url(), revision, on_step=step)
    console.print(done.describe())
    if done.refresh_note():
        console.print(done.refresh_note(), highlight=False)
    if partitions is not None:
        _partition(partitions, jobs)


@db_app.command("partition")
def db_partition(
    count: Annotated[int, typer.Argument(help="Partitions per table; 1 turns them back into plain tables.")],
    jobs: PartitionJobsOption = defaults.INDEX_JOBS,
) -> None:
    """Re-create image_feature, image_embedding and knn_edge as COUNT hash partitions on identifier,
    moving their rows (one transaction per table: rerun to finish an interrupted run), then
    rebuild the HNSW indexes, one partition per connection (docs/scale.md)."""
    _partition(count, jobs)


@db_app.command("lean-index")
def db_lean_index(
    model: ModelOption = defaults.MODEL,
    drop: Annotated[bool, typer.Option("--drop", help="Remove the lean index instead.")] = False,
    jobs: PartitionJobsOption = defaults.INDEX_JOBS,
) -> None:
    """Build the memory-lean index of MODEL: a binary-quantised HNSW (one bit per dimension,
    Hamming distance), 0.11x the size of the halfvec HNSW, searched by ccvec.nearest_lean (Hamming
    candidates reranked by cosine). An option beside ccvec's index, not the default (docs/scale.md)."""
    from ccvec import partitions

    with schema_connection() as conn:
        if drop:
            partitions.drop_lean_index(conn, model)
            console.print(f"lean index of {safe(model)} dropped")
            return
        partitions.build_index(conn, model, jobs, kind="binary")
    console.print(f"lean index of {safe(model)} built: query it with ccvec.nearest_lean(model, vector, k)")


def _partition(count: int, jobs: int) -> None:
    from ccvec import partitions

    with schema_connection() as conn:
        changed = partitions.repartition(conn, count, jobs)
        layout = partitions.layout(conn)
    moved = ", ".join(changed) if changed else "nothing to move"
    console.print(
        f"{count} partition(s) per table ({moved}): "
        + ", ".join(f"{table} {n}" for table, n in layout.items())
    )


@db_app.command("downgrade")
def db_downgrade(
    revision: Annotated[str, typer.Argument(help="Target revision; 'base' removes everything.")],
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask; required when not on a terminal.")] = False,
) -> None:
    """Undo migrations down to REVISION (drops ccvec's tables and their data). Asks first when
    rows would be lost."""
    url = db.resolve_url()
    known = migrate.known_revision(revision)
    with db.connection(url) as conn:
        current = migrate.current_revision(conn)
        migrate.refuse_newer(current)  # this ccvec has no down files for a newer one's migrations
        held = _rows_held(conn, migrate.tables_losing_rows(current, known)) if current else {}
    if current is None:
        raise CcvecError("the database has no ccvec schema: nothing to downgrade")
    if held:
        rows = sum(held.values())
        named = ", ".join(f"{table} {count:,}" for table, count in held.items())
        confirm_destructive(
            f"downgrading {current} to {known} loses data in tables holding {counted(rows, 'row')} ({named})",
            yes,
        )
    migrate.downgrade(url, known)
    console.print(f"schema at {known}")


def _rows_held(conn: psycopg.Connection, tables: set[str]) -> dict[str, int]:
    """Rows of ccvec's data tables among `tables` (those a downgrade drops or empties), by table,
    the empty ones left out."""
    held = {}
    for table in DATA_TABLES:
        if table in tables and _table_exists(conn, table):
            held[table] = _row_count(conn, table)
    return {table: count for table, count in held.items() if count}


def _table_exists(conn: psycopg.Connection, table: str) -> bool:
    return db.table_exists(conn, f"{config.SCHEMA}.{table}")


def _row_count(conn: psycopg.Connection, table: str) -> int:
    return db.row_count(conn, f"{config.SCHEMA}.{table}")


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
# What a downgrade asks about: the main tables and every other table holding what a user recorded
# or had computed (experiments and their events, novelty reference sets, derivative cues measured at
# load, runs); configuration that migrations seed and re-create (settings, MIH plans) is left out.
# Novelty sets went without a question before (a downgrade to 0023, 76e039e's head, dropped their fit).
DATA_TABLES = (
    *MAIN_TABLES,
    "image_cue",
    "duplicate_run",
    "duplicate_edge",
    "knn_run",
    "cluster_run",
    "cluster_label",
    "image_class",
    "visualrank_run",
    "web_rank_release",
    "experiment",
    "ab_served",
    "ab_event",
    "novelty_model",
    "novelty_reference",
    "novelty_score",
    "novelty_centre",
)


@db_app.command("status")
def db_status() -> None:
    """Show the server, pgvector and schema versions, and row counts of ccvec's tables (a stopped
    embedded server is reported as such, not started)."""
    if not config.database_url() and not db.embedded_running():
        pgdata = db.server_location(db.embedded_pgdata())
        reason = db.embedded_other_major(pgdata)
        if reason:
            raise CcvecError(f"embedded server: stopped; {reason}")
        state = "stopped" if pgdata.exists() else "not created yet"
        console.print(f"embedded server: {state} ({safe(str(pgdata))}); any other ccvec command starts it")
        return
    url = db.resolve_url()
    with db.connection(url) as conn:
        server = db.fetch_row(conn.execute("SHOW server_version"), "server version")[0]
        pgvector = db.installed_pgvector(conn)
        if pgvector is None:
            raise CcvecError("pgvector version (is the extension installed?): the query returned no row")
        revision = migrate.current_revision(conn)
        counts: dict[str, int] = {}
        if revision:
            for table in MAIN_TABLES:
                if _table_exists(conn, table):
                    counts[table] = _row_count(conn, table)
        missing: list[str] = []
        layout: dict[str, int] = {}
        if revision == migrate.head_revision():
            from ccvec.load import missing_indexes
            from ccvec.partitions import layout as partition_layout

            missing = missing_indexes(conn)
            layout = partition_layout(conn)
    head = migrate.head_revision()
    where = "embedded" if not config.database_url() else "from DATABASE_URL or --database-url"
    console.print(f"database    {db.redact(url)} ({where})")
    console.print(f"postgresql  {server}")
    console.print(f"pgvector    {pgvector}")
    if revision == head:
        state = "up to date"
    elif revision and not migrate.known(revision):
        state = f"newer than this ccvec, which knows up to {head}: use the ccvec that upgraded it"
    else:
        state = f"behind: run `ccvec db upgrade` (head {head})"
    console.print(f"schema      {revision or 'none'} ({state})")
    if layout:
        console.print("partitions  " + ", ".join(f"{table} {n}" for table, n in layout.items()))
    for model in missing:
        console.print(
            f"index       [yellow]missing[/yellow]: the HNSW index of {safe(model)} was dropped by a load "
            "that did not finish; the next `ccvec load`, `graph` or `dedup --semantic` rebuilds it"
        )
    if counts:
        rows_table = Table("table", "rows", box=None)
        for name, count in counts.items():
            rows_table.add_row(f"{config.SCHEMA}.{name}", f"{count:,}")
        print_table(rows_table)


@db_app.command("url")
def db_url(
    show_password: Annotated[
        bool, typer.Option("--show-password", help="Print the password of DATABASE_URL too.")
    ] = False,
) -> None:
    """Print the connection URL (for psql, or DATABASE_URL in other tools); a password in
    DATABASE_URL is shown as *** unless asked for."""
    url = db.resolve_url()
    print(url if show_password else db.redact(url))


@db_app.command("grant")
def db_grant(
    role: Annotated[str, typer.Argument(help="An existing PostgreSQL role (CREATE ROLE … LOGIN first).")],
    reader: Annotated[
        bool, typer.Option("--reader", help="SELECT on the catalog, views and search.")
    ] = False,
    searcher: Annotated[
        bool, typer.Option("--searcher", help="Reader + ccvec.substitute() and event logging.")
    ] = False,
    writer: Annotated[bool, typer.Option("--writer", help="Searcher + loads.")] = False,
) -> None:
    """Give ROLE one access level to ccvec's schema (ccvec.grant_access in SQL)."""
    levels = [
        name for name, chosen in (("reader", reader), ("searcher", searcher), ("writer", writer)) if chosen
    ]
    if len(levels) != 1:
        raise CcvecError("give exactly one of --reader, --searcher or --writer")
    with schema_connection() as conn:
        conn.execute("SELECT ccvec.grant_access(%s, %s)", [role, levels[0]])  # VC00x errors: one line
    console.print(f"{safe(role)} is now a ccvec {levels[0]}")


@db_app.command("start")
def db_start() -> None:
    """Start the embedded server under $CCVEC_HOME (no-op if it runs)."""
    if config.database_url():
        raise CcvecError("DATABASE_URL is set: ccvec uses that server and starts none of its own")
    url = db.start_embedded()
    console.print(f"embedded server running: {url}")


@db_app.command("stop")
def db_stop(
    force: Annotated[
        bool, typer.Option("--force", help="Stop even while other sessions (ccvec commands) are connected.")
    ] = False,
) -> None:
    """Stop the embedded server under $CCVEC_HOME; refused while other sessions use it (a cron load,
    a refresh): they would end with an error mid-way."""
    if not force and db.embedded_running():
        others = db.other_sessions(db.start_embedded())
        if others:
            shown = ", ".join(others[:3]) + (f" and {len(others) - 3} more" if len(others) > 3 else "")
            raise CcvecError(
                f"{counted(len(others), 'other session')} {'uses' if len(others) == 1 else 'use'} the "
                f"embedded server ({shown}): let them finish (or stop them: a rerun resumes), "
                "or `ccvec db stop --force` to end them now"
            )
    if db.stop_embedded():
        console.print("embedded server stopped")
    else:
        console.print("embedded server was not running")
