"""What every command shares: the app, consoles, option types, the schema-checked connection, progress."""

from __future__ import annotations

import os
import re
import sys
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, NoReturn

import psycopg
import typer
from rich.console import Console
from rich.markup import escape

from ccvec import db, defaults, migrate
from ccvec.errors import CcvecError, from_database

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


def _fail(message: str) -> NoReturn:
    err_console.print(f"[red]error:[/red] {escape(message)}", highlight=False, soft_wrap=True)
    sys.exit(2)


_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def safe(text: object) -> str:
    """Text from data, fit for the terminal: control characters shown as escapes (no terminal
    sequences get through), rich markup escaped (a '[/x]' in a URL prints as itself)."""
    shown = _CONTROL.sub(lambda m: repr(m.group())[1:-1], str(text)).replace("\n", "\\n")
    return escape(shown)


def confirm_destructive(what: str, yes: bool) -> None:
    """Ask before destroying data; without a terminal, `--yes` is required."""
    if yes:
        return
    if not sys.stdin.isatty():
        raise CcvecError(f"{what}; not a terminal, so pass --yes to confirm")
    if not typer.confirm(f"{what}. Continue?", default=False):
        raise CcvecError("cancelled: nothing changed")


def _one_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return db.redact(lines[0] if lines else type(exc).__name__)


def main() -> None:
    """Entry point: user-fixable problems become one line on stderr and exit status 2; Ctrl-C and
    a server that goes away mid-command too (a rerun resumes: every batch is its own transaction)."""
    from alembic.util import CommandError

    from ccvec import cli  # noqa: F401  (registers every command group)

    try:
        app()
    except CcvecError as exc:
        _fail(str(exc))
    except CommandError as exc:  # alembic: unknown revision and the like
        _fail(_one_line(exc))
    except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
        _fail(
            f"the database connection failed: {_one_line(exc)}; "
            "rerun the command when the server is back (finished batches are kept)"
        )
    except psycopg.Error as exc:  # raised by ccvec's SQL (SQLSTATE class VC): one line too
        error = from_database(exc)
        if error is None:
            raise
        _fail(str(error))
    except KeyboardInterrupt:
        _interrupted()
    except SystemExit as exc:
        if exc.code == 130:  # typer turns Ctrl-C into a silent exit 130
            _interrupted()
        raise


def _interrupted() -> None:
    err_console.print(
        "interrupted: finished batches are stored; rerun the same command to resume", highlight=False
    )
    sys.exit(130)
