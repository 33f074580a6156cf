"""`ccvec run`: the whole job in one command."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ccvec import db, defaults, migrate
from ccvec.cli.common import app, console, err_console
from ccvec.cli.loading import load_with_progress


@app.command("run")
def run_command(
    source: Annotated[str, typer.Argument(help="A folder of images or a CSV/JSONL manifest.")],
    out: Annotated[
        Path | None, typer.Option(help="Also export clusters and contact sheets to this new folder.")
    ] = None,
    k: Annotated[int, typer.Option(min=1, help="Neighbours per image in the graph.")] = defaults.GRAPH_K,
    sim: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Cluster similarity index.")
    ] = defaults.CLUSTER_SIM,
) -> None:
    """The whole job: schema, load, near-duplicate groups, kNN graph, clusters, scores (and export)."""
    from ccvec import export, graph, neardup, scores
    from ccvec.load import LoadOptions

    migrate.upgrade(db.resolve_url())
    summary = load_with_progress(source, LoadOptions())
    console.print(
        f"load: {summary.loaded:,} new, {summary.skipped:,} already loaded, {summary.failed:,} failed"
    )
    with db.connection() as conn:
        neardup.dedup(conn)
        report = neardup.report(conn)
        console.print(
            f"dedup: {report.groups:,} groups of near-duplicates ({report.duplicates:,} duplicates)"
        )
        current = graph.current(conn)
        if current is not None and current.k == k and current.model == graph.DEFAULT_MODEL:
            added = graph.add_new(conn)
            console.print(f"graph: {added:,} images added to graph run {current.id}")
        else:
            run = graph.build(conn, k)
            console.print(f"graph: run {run.id}, {run.images:,} images, recall@{k} {run.recall or 0:.3f}")
        run_id = graph.cluster(conn, sim)
        clusters, singletons, _, _ = graph.cluster_summary(conn, run_id)
        console.print(f"clusters: {clusters:,} ({singletons:,} singletons) at sim {sim:g}")
        scores.refresh(conn)
        console.print("scores: refreshed (ccvec.image_score)")
        if out is not None:
            members = export.cluster_files(conn, run_id, 2)
            export.export_folders(members, out)
            sheets = export.export_sheets(members, out, 10)
            console.print(f"export: {len(members):,} clusters under {out}, {len(sheets)} contact sheets")
    if summary.failed:
        err_console.print(
            f"{summary.failed} input(s) failed to load: see `ccvec errors --run {summary.run_id}`"
        )
        raise typer.Exit(1)
