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
        float | None,
        typer.Option(
            min=0.0, max=1.0, help="imagecluster's similarity index (default: Louvain, no threshold)."
        ),
    ] = None,
) -> None:
    """The whole job: schema, load, near-duplicate groups, kNN graph, clusters, scores (and export)."""
    from ccvec import clusters, export, graph, neardup, scores
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
        run_id = clusters.cluster_louvain(conn) if sim is None else graph.cluster(conn, sim)
        scores.refresh(conn)  # inferred tags first: cluster labels read them
        clusters.label(conn, run_id)
        console.print(f"clusters: {clusters.shape(conn, run_id).describe()}")
        for cluster, label, size, _, _ in clusters.summary(conn, run_id)[:8]:
            console.print(f"  {cluster:5d}  {size:6,d}  {label}")
        console.print("scores: refreshed (ccvec.image_score, ccvec.image_novelty)")
        if out is not None:
            members = export.cluster_files(conn, run_id, 1)
            labels = export.cluster_labels(conn, run_id)
            export.export_folders(members, out, labels=labels)
            sheets = export.export_sheets(members, out, 10, labels)
            console.print(
                f"export: {len(members):,} clusters and singletons under {out} (labels.csv), "
                f"{len(sheets)} contact sheets"
            )
    if summary.failed:
        err_console.print(
            f"{summary.failed} input(s) failed to load: see `ccvec errors --run {summary.run_id}`"
        )
        raise typer.Exit(1)
