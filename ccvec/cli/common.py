"""What every command shares: the app, consoles, option types, the schema-checked connection, progress."""

from __future__ import annotations

import csv
import enum
import json
import logging
import os
import re
import signal
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, get_args, get_origin

import psycopg
import typer
from rich.console import Console
from rich.markup import escape

from ccvec import db, defaults, migrate
from ccvec.errors import CcvecError, first_line, from_database
from ccvec.sources import printable

if TYPE_CHECKING:
    from rich.table import Table

EXIT_CODES = (
    "Exit status: 0 ok; 1 some inputs failed (see `ccvec errors`); 2 usage or setup error "
    "(one line on stderr says what to do); 130 interrupted (Ctrl-C), 143 terminated (SIGTERM), both "
    "resumed by a rerun; 141 output closed early (`| head`)."
)
app = typer.Typer(
    help="Perceptual structure for image catalogs, inside PostgreSQL + pgvector.\n\n" + EXIT_CODES,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    rich_markup_mode=None,
)
console = Console(soft_wrap=True)  # long lines are not cut or wrapped when piped
err_console = Console(stderr=True, soft_wrap=True)
_state = {"quiet": False}


def quiet() -> bool:
    """No progress bars: asked for with --quiet, or stderr is not a terminal."""
    return _state["quiet"] or not err_console.is_terminal


class ProgressLog:
    """Progress as plain lines when stderr is not a terminal (a cron job, `2> log`), where a bar
    would draw nothing: one line per defaults.PROGRESS_LOG_SECONDS at most, the first after as
    long, so a short command (and every one-line error) prints none. Nothing with --quiet."""

    def __init__(self) -> None:
        self.on = not _state["quiet"] and not err_console.is_terminal
        self.start = self.last = time.monotonic()
        self.first_done = 0
        self.label: str | None = None

    def update(self, label: str, done: int, total: int | None) -> None:
        if not self.on:
            return
        now = time.monotonic()
        if label != self.label:  # a new stage: its own rate
            self.label, self.start, self.first_done = label, now, done
        if now - self.last < defaults.PROGRESS_LOG_SECONDS:
            return
        self.last = now
        line = f"{label}: {done:,}" + (f" of {total:,} ({done / total:.0%})" if total else "")
        rate = (done - self.first_done) / max(now - self.start, 1e-9)
        if total and rate > 0 and done < total:
            line += f", about {_duration((total - done) / rate)} left"
        err_console.print(f"{time.strftime('%H:%M:%S')} {line}", highlight=False)


def _duration(seconds: float) -> str:
    minutes = round(seconds / 60)
    if minutes < 1:
        return f"{max(1, round(seconds))} s"
    return f"{minutes} min" if minutes < 90 else f"{minutes / 60:.1f} h"


class Format(enum.StrEnum):
    table = "table"
    csv = "csv"
    json = "json"


TABLE_ROWS = 50  # rows a table shows by default; csv and json show all
FormatOption = Annotated[
    Format, typer.Option("--format", help="table for people; csv or json for programs (never truncated).")
]

# Option types shared by several commands, so each is spelled (and defaulted) once.
ModelOption = Annotated[str, typer.Option(metavar="NAME", help="Registered embedding model.")]
RadiusOption = Annotated[int, typer.Option(help="Largest pHash Hamming distance, 0 to 64.")]
LimitOption = Annotated[int, typer.Option(min=1, metavar="N", help="Rows to show.")]
MaxPixelsOption = Annotated[
    int, typer.Option(min=1, metavar="N", help="Refuse larger images (decompression bombs).")
]
JobsOption = Annotated[
    int,
    typer.Option(
        min=1,
        metavar="N",
        show_default=False,  # the number of CPUs of the machine it runs on, said in the help
        help="Connections searching neighbours at once (default: the number of CPUs).",
    ),
]
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
    quiet_flag: Annotated[
        bool,
        typer.Option(
            "--quiet", "-q", help="No progress (bars on a terminal; in a log, a line a minute at most)."
        ),
    ] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version", is_eager=True, callback=lambda v: _print_version(v), help="Print the version."
        ),
    ] = False,
) -> None:
    if database_url:
        os.environ["DATABASE_URL"] = database_url
    _state["quiet"] = quiet_flag


def _print_version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        print(f"ccvec {version('ccvec')}")
        raise typer.Exit()


def emit(
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    fmt: Format = Format.table,
    title: str | None = None,
    empty: str | None = None,
) -> None:
    """Rows as a table (people), CSV or JSON (programs). Tables never truncate: when stdout is
    not a terminal they are as wide as their content."""
    if fmt == Format.json:
        print(json.dumps([dict(zip(columns, row, strict=True)) for row in rows], default=str, indent=1))
        return
    if fmt == Format.csv:
        # exact for programs (a pipe, a file); on a terminal a person reads it, so text cells are
        # made printable, as `ls` shows a file name's control characters only on a terminal
        terminal = sys.stdout.isatty()
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows([[_csv_cell(v, terminal) for v in row] for row in rows])
        return
    if not rows and empty:
        console.print(empty)
        return
    from rich.table import Table

    table = Table(*columns, title=title, box=None)
    for row in rows:
        table.add_row(*("" if v is None else safe(v) for v in row))
    print_table(table)


def _csv_cell(value: object, terminal: bool) -> object:
    if value is None:
        return ""
    return printable(value) if terminal and isinstance(value, str) else value


def print_table(table: Table) -> None:
    """A rich table on stdout, never cut: as wide as its content when stdout is not a terminal
    (a pipe's 80 columns would wrap or truncate its cells)."""
    out = console if console.is_terminal else Console(width=100_000, soft_wrap=True)
    out.print(table, overflow="ignore", crop=False)


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
        disable=quiet(),
    )
    log = ProgressLog()

    def update(done: int, total: int) -> None:
        bar.update(task, completed=done, total=total)
        log.update(label, done, total)

    with bar:
        task = bar.add_task(label, total=None)
        yield update


class StageBar:
    """One progress bar for work in named stages, `update(stage, done, total)`; started on the first
    update and paused (`pause()`) while another bar (loading) has the terminal."""

    def __init__(self) -> None:
        from rich.progress import Progress, TaskID

        self.bar: Progress | None = None
        self.task: TaskID | None = None
        self.log = ProgressLog()

    def update(self, stage: str, done: int, total: int) -> None:
        self.log.update(stage, done, total)
        if quiet():
            return
        if self.bar is None:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self.bar = Progress(
                TextColumn("{task.description:<24}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
                console=err_console,
                transient=True,
            )
            self.bar.start()
            self.task = self.bar.add_task("", total=None)
        assert self.task is not None
        self.bar.update(self.task, description=stage, completed=done, total=total)

    def pause(self) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None


@contextmanager
def stages() -> Iterator[StageBar]:
    bar = StageBar()
    try:
        yield bar
    finally:
        bar.pause()


def explain_model_build(model: str) -> None:
    """The first use of a built-in model builds it (conversion, int8 quantisation): say so, in one
    line on stderr, when it starts."""
    from ccvec.models import registry

    if model in registry.BUILT_IN:
        registry.conversion_notice = lambda line: err_console.print(line, highlight=False)


def readable_metavars(command: Any) -> None:
    """PATH, N, X, TEXT instead of typer's <int range> and <list[str]>, for every command."""
    from pathlib import Path

    names = {int: "N", float: "X", str: "TEXT", Path: "PATH"}
    for sub in getattr(command, "commands", {}).values():
        readable_metavars(sub)
    for param in command.params:
        if param.param_type_name == "argument":
            name = (param.metavar or param.name.upper()).strip("[].") + ("..." if param.nargs == -1 else "")
            param.metavar = name
            shown = name if param.required else f"[{name}]"
            param._usage_display_name = lambda shown=shown: shown
            param.display_type = lambda ctx: ""
            continue
        if param.metavar is not None:
            continue
        annotation = getattr(getattr(param, "type_descriptor", None), "annotation", None)
        if get_origin(annotation) is list:  # a repeatable option (`--sim 0.3 --sim 0.5`): its item
            annotation = get_args(annotation)[0]
        if annotation in names:
            param.metavar = names[annotation]


def image_identifier(text: str, conn: psycopg.Connection | None = None) -> uuid.UUID:
    """An image named the way a user knows it: its identifier, or the path of a file a folder load
    took it from (the identifier is derived from the file's location). With `conn`, a file that was
    never loaded is named as such, not by an identifier the user never typed."""
    from pathlib import Path

    from ccvec.sources import display_path, file_location, identity, not_a_regular_file

    try:
        return uuid.UUID(text)
    except ValueError:
        pass
    path = Path(text)
    if not path.is_file():
        if os.path.lexists(path):  # there, but a folder, a FIFO, a dangling symlink...: say which
            raise CcvecError(
                f"{display_path(path)}: {not_a_regular_file(path)}: give an image file or an identifier"
            )
        raise CcvecError(f"{text!r} is neither an image identifier (a UUID) nor a file")
    try:
        found = identity(file_location(path))
    except ValueError as exc:
        raise CcvecError(f"{display_path(path)}: {exc}") from exc
    if conn is not None and not catalog_titles(conn, [found]):
        raise CcvecError(
            f"{display_path(path)} is not loaded: `ccvec load` it (or its folder) first; if it was, "
            "`ccvec errors` says why it failed"
        )
    return found


def _fail(message: str) -> NoReturn:
    """The one error line; it names inputs (file names, catalog values), so it is made printable."""
    err_console.print(f"[red]error:[/red] {safe(message)}", highlight=False, soft_wrap=True)
    sys.exit(2)


def catalog_titles(conn: psycopg.Connection, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, str]:
    """Title (else URL) of each image, for the label column of a listing."""
    return dict(conn.execute("SELECT * FROM ccvec.catalog_titles(%s)", [list(ids)]).fetchall())


def safe(text: object) -> str:
    """printable(), with rich markup escaped too (a '[/x]' in a URL prints as itself): for console.print."""
    return escape(printable(text))


def confirm_destructive(what: str, yes: bool) -> None:
    """Ask before destroying data; without a terminal, `--yes` is required."""
    if yes:
        return
    if not sys.stdin.isatty():
        raise CcvecError(f"{what}; not a terminal, so pass --yes to confirm")
    if not typer.confirm(f"{what}. Continue?", default=False):
        raise CcvecError("cancelled: nothing changed")


def _one_line(exc: BaseException) -> str:
    return db.redact(first_line(exc))


def application_name(args: list[str]) -> str:
    """"ccvec graph build [1234]": the command's words (not its arguments: paths or values) and
    this process's pid, as the sessions' application_name, which a command waiting for another
    names (db.job) and `ccvec db stop` lists."""
    groups = {group.name for group in app.registered_groups}
    args = list(args)
    while args and args[0].startswith("-"):  # global options first (`ccvec -q load`, as in cron)
        if args.pop(0) == "--database-url" and args:
            args.pop(0)  # its value (a URL, never shown)
    words = args[:2] if args[:1] and args[0] in groups else args[:1]
    words = [w for w in words if re.fullmatch(r"[a-z][a-z-]*", w)]
    return " ".join(["ccvec", *words]) + f" [{os.getpid()}]"


EXIT_BROKEN_PIPE = 128 + 13  # what a shell reports for a command ended by SIGPIPE


def main() -> None:
    """Entry point: user-fixable problems become one line on stderr and exit status 2; Ctrl-C and
    a server that goes away mid-command too (a rerun resumes: every batch is its own transaction)."""
    from alembic.util import CommandError

    from ccvec import cli  # noqa: F401  (registers every command group)

    # psycopg logs "error ignored terminating <Pipeline>" when the server goes away inside an
    # executemany; the one line below already says the connection failed, so it stays unprinted.
    logging.getLogger("psycopg").addHandler(logging.NullHandler())
    signal.signal(signal.SIGTERM, _terminate)  # `kill`, a CI job cancelled: as Ctrl-C, then 143
    db.APPLICATION = application_name(sys.argv[1:])  # who holds what, for a command that waits

    try:
        command = typer.main.get_command(app)
        readable_metavars(command)
        status = command(prog_name="ccvec", standalone_mode=False)  # usage errors come to us
        sys.stdout.flush()  # a reader gone early shows here, where it is caught, not at exit
        sys.exit(status if isinstance(status, int) else 0)
    except CcvecError as exc:
        _fail(str(exc))
    except typer.TyperException as exc:  # the parser's: an unknown option, a value of the wrong type
        _usage_error(exc)
    except typer.Abort:  # end of input at a prompt
        err_console.print("aborted: no answer at the prompt", highlight=False)
        sys.exit(1)
    except CommandError as exc:  # alembic: unknown revision and the like
        _fail(_one_line(exc))
    except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
        _fail(_operational(exc))
    except psycopg.Error as exc:  # raised by ccvec's SQL (SQLSTATE class VC): one line too
        error = from_database(exc)
        if error is None:
            raise
        _fail(str(error))
    except KeyboardInterrupt:
        _interrupted()
    except BrokenPipeError:  # output piped into a reader that stopped early (`| head`): quietly, with
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # a shell's status for SIGPIPE,
        sys.exit(EXIT_BROKEN_PIPE)  # not 1, which says inputs failed
    except OSError as exc:  # the machine's file system refused: a full disk, a folder gone, permissions
        _fail(_os_error(exc))
    except SystemExit as exc:
        if exc.code == 130:  # typer turns Ctrl-C into a silent exit 130
            _interrupted()
        if _stdout_pacified():  # typer met the closed pipe first, and exits 1 for it
            sys.exit(EXIT_BROKEN_PIPE)
        raise


def _stdout_pacified() -> bool:
    """Whether typer (its click) met a closed stdout pipe and wrapped stdout to silence it."""
    from typer._click.utils import PacifyFlushWrapper

    return isinstance(sys.stdout, PacifyFlushWrapper)


def _usage_error(exc: typer.TyperException) -> NoReturn:
    """One line, like ccvec's own errors, naming the command whose help lists the options (the
    parser's default is four lines); a command group run without a command still shows its help."""
    message = exc.format_message()
    if "\n" in message.strip():
        typer.echo(message, err=True)
        sys.exit(2)
    context = getattr(exc, "ctx", None)
    hint = f" (help: {context.command_path} -h)" if context is not None else ""
    _fail(f"{message.rstrip('.')}{hint}")


def _os_error(exc: OSError) -> str:
    """One line naming the file and the system's reason, e.g. "cannot write /x/y: No space left on
    device"."""
    where = f" {exc.filename}" if exc.filename is not None else ""
    return f"the file system refused{where}: {exc.strerror or exc}"


_SAME_ROWS = "another session changed the same rows at the same moment", "rerun the command"
CONFLICTS = {  # SQLSTATEs of sessions in each other's way: what happened, what to do
    "40P01": _SAME_ROWS,  # deadlock detected
    "40001": _SAME_ROWS,  # could not serialize access
    "55P03": ("another session holds a table this command needs", "rerun it when that one has finished"),
}


def _operational(exc: psycopg.Error) -> str:
    """One line for an OperationalError: a lost or refused connection (SQLSTATE class 08, 57 or
    none: the client's own) says so; anything else (e.g. a view never refreshed) says what it is."""
    state = exc.sqlstate or ""
    if state in CONFLICTS:
        what, todo = CONFLICTS[state]
        return (
            f"{what} ({_one_line(exc)}): {todo}; finished batches are kept "
            "(docs/reliability.md, \"Two commands at once\")"
        )
    if state and not state.startswith(("08", "57")):
        hint = "; run `ccvec refresh`" if "has not been populated" in str(exc) else ""
        return f"{_one_line(exc)}{hint}"
    return (
        f"the database connection failed: {_one_line(exc)}; "
        "rerun the command when the server is back (finished batches are kept)"
    )


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where Ctrl-C would be: the same unwinding (statements cancelled, workers
    stopped, nothing half-committed), and the same one line."""


def _terminate(signum: int, frame: object) -> None:
    _terminated.append(signum)  # the unwinding may turn the exception into another (exit 130)
    raise Terminated


_terminated: list[int] = []


def _interrupted() -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a second kill ends it at once
    what, status = ("terminated", 143) if _terminated else ("interrupted", 130)
    err_console.print(
        f"{what}: finished batches are stored; rerun the same command to resume", highlight=False
    )
    sys.exit(status)
