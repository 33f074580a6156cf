"""`ccvec run`: the whole job in one command, rerunnable; `ccvec report`: the HTML report alone."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ccvec import defaults
from ccvec.cli.common import (
    DEFAULT_MODEL,
    MaxPixelsOption,
    ModelOption,
    app,
    console,
    err_console,
    safe,
    stages,
)
from ccvec.cli.loading import folder_changes_note, load_with_progress, print_failures, skipped_note

OutOption = Annotated[
    Path | None,
    typer.Option(
        metavar="PATH",
        help="Write the HTML report (OUT/index.html) and cluster folders here; a rerun refreshes them "
        "in place. Refused if the folder holds files ccvec did not write.",
    ),
]


@app.command("run")
def run_command(
    sources: Annotated[
        list[str],
        typer.Argument(
            metavar="SOURCE...", help="Folders of images, image files or CSV/TSV/JSONL manifests."
        ),
    ],
    out: OutOption = None,
    model: ModelOption = DEFAULT_MODEL,
    k: Annotated[int, typer.Option(min=1, help="Neighbours per image in the graph.")] = defaults.GRAPH_K,
    sim: Annotated[
        float | None,
        typer.Option(help="imagecluster's similarity index, 0 to 1 (default: Louvain, no threshold)."),
    ] = None,
    copy: Annotated[bool, typer.Option("--copy", help="Cluster folders hold copies, not symlinks.")] = False,
    max_pixels: MaxPixelsOption = defaults.MAX_PIXELS,
) -> None:
    """The whole job: schema, load, near-duplicate groups, kNN graph, clusters, scores, and the report.

    Rerunning does only what is new. Exit status 1 if any input failed to load."""
    from ccvec import pipeline
    from ccvec.load import LoadOptions, LoadSummary

    load = LoadOptions(model=model, max_pixels=max_pixels)
    options = pipeline.RunOptions(model=model, k=k, sim=sim, load=load, copy=copy)
    with stages() as bar:

        def loader(source: str, opts: LoadOptions, entries: pipeline.Entries) -> LoadSummary:
            bar.pause()  # the load has its own bar
            return load_with_progress(source, opts, entries=entries)

        summary = pipeline.run(
            sources,
            out,
            options,
            loader=loader,
            on_progress=bar.update,
            say=lambda text: err_console.print(safe(text), highlight=False),  # holds catalog values
        )
    skipped = sum(s.skipped for s in summary.loads)
    updated = sum(s.updated for s in summary.loads)
    console.print(
        f"load: {summary.loaded:,} new, {skipped:,} already loaded, {summary.failed:,} failed"
        + (f", {updated:,} catalog row(s) updated from a manifest" if updated else ""),
        highlight=False,
    )
    noted = [s for s in summary.loads if s.not_images or s.passed_over]
    if noted:
        count, passed = sum(s.not_images for s in noted), sum(s.passed_over for s in noted)
        console.print(skipped_note(count, [s.run_id for s in noted], passed), highlight=False)
    moved = [s for s in summary.loads if s.gone or s.changed]
    if moved:
        gone, changed = sum(s.gone for s in moved), sum(s.changed for s in moved)
        console.print(folder_changes_note(gone, changed, [s.run_id for s in moved]), highlight=False)
    for step, what in summary.steps.items():
        console.print(f"{step}: {safe(what)}", highlight=False)  # the report's names OUT
    if out is None:
        console.print("report: none written (--out FOLDER writes the HTML report and the cluster folders)")
    if summary.failed:
        print_failures([s.run_id for s in summary.loads if s.failed], summary.failed)
        raise typer.Exit(1)
