"""`ccvec load` and `ccvec errors`: images in, failures listed."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Annotated

import typer

from ccvec import db, defaults
from ccvec.cli.common import (
    DEFAULT_MODEL,
    TABLE_ROWS,
    Format,
    FormatOption,
    MaxPixelsOption,
    ModelOption,
    ProgressLog,
    app,
    console,
    emit,
    err_console,
    explain_model_build,
    quiet,
    safe,
    schema_connection,
)
from ccvec.errors import counted
from ccvec.sources import NOTED, readable_source

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ccvec.load import LoadOptions, LoadSummary
    from ccvec.sources import BadRow, SourceItem


def load_with_progress(
    source: str,
    options: LoadOptions,
    jobs: int = defaults.LOAD_JOBS,
    entries: Sequence[SourceItem | BadRow] | None = None,
) -> LoadSummary:
    """`ccvec.load.load` (or the Parquet bulk load of a Spark features dataset) with a progress bar;
    `entries`: the source's listing when the caller read it already."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from ccvec.load import load
    from ccvec.load_parquet import is_features_dataset, load_dataset
    from ccvec.sources import open_source

    progress = Progress(
        TextColumn("loading"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]:>6.1f} img/s"),
        TimeRemainingColumn(),
        console=err_console,
        transient=True,
        disable=quiet(),
    )
    if not is_features_dataset(source):
        open_source(source)  # a missing or unusable source is refused before any model conversion
    explain_model_build(options.model)
    task = progress.add_task("load", total=None, rate=0.0)
    started = time.perf_counter()
    log = ProgressLog()

    def advance(n: int) -> None:
        done = progress.tasks[0].completed + n
        progress.update(task, completed=done, rate=done / max(time.perf_counter() - started, 1e-9))
        total = progress.tasks[0].total
        log.update("loading", int(done), None if total is None else int(total))

    def start(total: int) -> None:
        progress.update(task, total=total)

    with progress:
        if is_features_dataset(source):
            summary: LoadSummary = load_dataset(
                source, jobs, options.write_catalog, on_start=start, on_progress=advance
            )
            return summary
        return load(source, options, on_start=start, on_progress=advance, entries=entries)


@app.command("load")
def load_command(
    source: Annotated[
        str,
        typer.Argument(
            help="A folder (recursive), one image file, a CSV/TSV/JSONL manifest, or a "
            "`ccvec spark features` output folder."
        ),
    ],
    model: ModelOption = DEFAULT_MODEL,
    batch_size: Annotated[
        int, typer.Option(min=1, help="Images per inference batch and transaction.")
    ] = defaults.BATCH_SIZE,
    workers: Annotated[
        int, typer.Option(min=0, show_default="CPU count", help="Decode processes (0: decode in threads).")
    ] = defaults.WORKERS,
    concurrency: Annotated[
        int, typer.Option(min=1, help="Fetches in flight (matters for URLs).")
    ] = defaults.CONCURRENCY,
    max_pixels: MaxPixelsOption = defaults.MAX_PIXELS,
    max_bytes: Annotated[
        int, typer.Option(min=1, help="Refuse larger files or downloads.")
    ] = defaults.MAX_BYTES,
    timeout: Annotated[
        float, typer.Option(min=0.1, help="Seconds per download attempt.")
    ] = defaults.FETCH_TIMEOUT,
    retries: Annotated[
        int, typer.Option(min=0, help="Retries for a failed download.")
    ] = defaults.FETCH_RETRIES,
    deadline: Annotated[
        float,
        typer.Option(min=0.1, help="Seconds for one whole download: attempts, redirects and waits."),
    ] = defaults.FETCH_DEADLINE,
    allow_private_urls: Annotated[
        bool,
        typer.Option(
            "--allow-private-urls",
            help="Also fetch URLs on loopback, private and link-local addresses (refused by default).",
        ),
    ] = False,
    remote_only: Annotated[
        bool,
        typer.Option(
            "--remote-only",
            help="Refuse local paths and file:// URLs in the manifest (third-party manifests).",
        ),
    ] = False,
    jobs: Annotated[
        int, typer.Option(min=1, help="Parallel COPY connections (for a `ccvec spark features` dataset).")
    ] = defaults.LOAD_JOBS,
    no_catalog: Annotated[
        bool,
        typer.Option("--no-catalog", help="Write features only, not ccvec.image rows (existing catalog)."),
    ] = False,
) -> None:
    """Hash, embed and store every image of SOURCE not loaded yet. Exit status 1 if any failed."""

    from ccvec.fetch import FetchPolicy
    from ccvec.load import LoadOptions

    options = LoadOptions(
        model=model,
        batch_size=batch_size,
        workers=workers,
        concurrency=concurrency,
        max_pixels=max_pixels,
        fetch_policy=FetchPolicy(
            max_bytes=max_bytes,
            timeout=timeout,
            retries=retries,
            deadline=deadline,
            allow_private=allow_private_urls,
            remote_only=remote_only,
        ),
        write_catalog=not no_catalog,
    )
    summary = load_with_progress(source, options, jobs)
    console.print(
        f"loaded {summary.loaded:,}, skipped {summary.skipped:,} (already loaded), failed {summary.failed:,} "
        f"in {summary.seconds:.1f}s ({summary.rate:.1f} img/s) — run {summary.run_id}"
    )
    if summary.updated:
        console.print(
            f"{summary.updated:,} catalog row(s) loaded before updated from the manifest (not re-embedded)"
        )
    if summary.restored:
        console.print(
            f"{counted(summary.restored, 'catalog row')} restored (deleted after their image was loaded; "
            "features kept)"
        )
    if summary.warnings:
        console.print(
            f"{summary.warnings:,} row(s) stored with changes (text cut, invalid characters replaced): "
            f"see `ccvec errors --run {summary.run_id}`"
        )
    if summary.not_images or summary.passed_over:
        note = skipped_note(summary.not_images, [summary.run_id], summary.passed_over)
        console.print(note, highlight=False)
    if summary.gone or summary.changed:
        console.print(folder_changes_note(summary.gone, summary.changed, [summary.run_id]), highlight=False)
    if summary.loaded == 0 and summary.failed == 0 and summary.restored == 0:
        console.print("nothing new to load")
    if summary.failed:
        print_failures([summary.run_id], summary.failed)
        raise typer.Exit(1)


FAILURES_SHOWN = 10  # one line each after a load; the rest wait in `ccvec errors`


def errors_commands(runs: list[int]) -> str:
    """`ccvec errors --run N` for each run (the option takes one run)."""
    return " and ".join(f"`ccvec errors --run {run}`" for run in runs)


def skipped_note(count: int, runs: list[int], passed: int = 0) -> str:
    """The line saying a folder held files that were skipped as not images, and hidden entries or
    system folders (Synology's @eaDir, recycle bins) passed over (each named in the errors)."""
    parts = []
    if count:
        parts.append(
            f"{counted(count, 'file')} skipped, not images by their name "
            "(a manifest is loaded by passing its path)"
        )
    if passed:
        entries = "entry" if passed == 1 else "entries"
        parts.append(f"{passed:,} {entries} passed over (hidden, system folders, symlinks)")
    return f"{'; '.join(parts)}: listed by {errors_commands(runs)}"


def folder_changes_note(gone: int, changed: int, runs: list[int]) -> str:
    """The line saying that files loaded before from a folder are gone or changed since."""
    parts = []
    if gone:
        parts.append(
            f"{counted(gone, 'image')} loaded before from this folder no longer there (renamed, moved or "
            "deleted): left out of the report, still in the database"
        )
    if changed:
        parts.append(
            f"{counted(changed, 'file')} changed since loaded, not read again (the stored pHash and "
            "embedding are the first content's)"
        )
    return f"{'; '.join(parts)}: listed by {errors_commands(runs)}"


def print_failures(runs: list[int], failed: int) -> None:
    """One line per input that failed in these load runs (the first FAILURES_SHOWN), naming it and
    saying why, then where all `failed` of them are kept: a user should not need a second command
    to learn which file was bad. ccvec.load_errors lists a run's failures before its notes."""
    with schema_connection() as conn:
        rows = [
            row
            for run in runs
            for row in conn.execute("SELECT * FROM ccvec.load_errors(%s) LIMIT %s", [run, FAILURES_SHOWN])
            if row[1] not in NOTED  # stored with changes, or not an image: recorded, not failed
        ][:FAILURES_SHOWN]
    for _, stage, source, reason in rows:
        err_console.print(f"  {safe(readable_source(source))}: {safe(reason)} ({stage})", highlight=False)
    more = f" ({failed - len(rows):,} more not shown)" if failed > len(rows) else ""
    summary = f"{counted(failed, 'input')} failed{more}: all in {errors_commands(runs)}"
    err_console.print(summary, highlight=False)


@app.command("errors")
def errors_command(
    run: Annotated[
        int | None,
        typer.Option(
            metavar="N",
            help="Only this load run, the number `ccvec load` prints (default: the latest run with errors).",
        ),
    ] = None,
    limit: Annotated[
        int | None,
        typer.Option(min=1, metavar="N", help="Rows to show (default: 50 in a table, all in csv/json)."),
    ] = None,
    fmt: FormatOption = Format.table,
) -> None:
    """Inputs that failed to load, with the reason; then notes (skipped, passed over, gone or changed)."""

    with schema_connection() as conn:
        if run is None:
            run = db.fetch_row(conn.execute("SELECT ccvec.latest_load_error_run()"), "newest load run")[0]
        rows = (
            conn.execute(
                "SELECT * FROM ccvec.load_errors(%s)",
                [run],
            ).fetchall()
            if run is not None
            else []
        )
    shown = rows[: limit or (TABLE_ROWS if fmt == Format.table else None)]
    emit(
        ["run", "stage", "source", "reason"],
        shown,
        fmt,
        title=f"load errors of run {run}",
        empty="no load errors",
    )
    if fmt == Format.table and len(shown) < len(rows):
        err_console.print(f"{len(rows) - len(shown)} more: --limit N, or --format csv")
