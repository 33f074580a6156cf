"""What every command shares: the app, consoles, option types, the schema-checked connection, progress."""

from __future__ import annotations

import os
import sys
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated

import psycopg
import typer
from rich.console import Console

from ccvec import db, defaults, migrate
from ccvec.errors import CcvecError

app = typer.Typer(
    help="Perceptual structure for image catalogs, inside PostgreSQL + pgvector.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
console = Console()
err_console = Console(stderr=True)

# Option types shared by several commands, so each is spelled (and defaulted) once.
ModelOption = Annotated[str, typer.Option(metavar="NAME", help="Registered embedding model.")]
RadiusOption = Annotated[int, typer.Option(min=0, max=64, help="Largest pHash Hamming distance.")]
LimitOption = Annotated[int, typer.Option(min=1, help="Rows to show.")]
DEFAULT_MODEL = defaults.MODEL


@app.callback()
def _global_options(
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url",
            metavar="URL",
            help="PostgreSQL >= 15 with pgvector >= 0.8.3. Default: $DATABASE_URL, "
            "else ccvec's embedded server under $CCVEC_HOME.",
            show_default=False,
        ),
    ] = None,
) -> None:
    if database_url:
        os.environ["DATABASE_URL"] = database_url


@contextmanager
def schema_connection() -> Iterator[psycopg.Connection]:
    """A connection to a database whose schema is at head (else one line: run `ccvec db upgrade`)."""
    with db.connection() as conn:
        migrate.require_current(conn)
        yield conn


@contextmanager
def progress(label: str) -> Iterator[Callable[[int, int], None]]:
    """A progress bar on stderr; yields `update(done, total)` for the work to call."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    bar = Progress(
        TextColumn(label),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err_console,
        transient=True,
    )
    with bar:
        task = bar.add_task(label, total=None)
        yield lambda done, total: bar.update(task, completed=done, total=total)


def parse_uuid(text: str) -> uuid.UUID:
    try:
        return uuid.UUID(text)
    except ValueError as exc:
        raise CcvecError(f"{text!r} is not a UUID") from exc


def main() -> None:
    """Entry point: user-fixable problems become one line on stderr and exit status 2."""
    from ccvec import cli  # noqa: F401  (registers every command group)

    try:
        app()
    except CcvecError as exc:
        err_console.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except KeyboardInterrupt:
        err_console.print("interrupted")
        sys.exit(130)
