"""`ccvec graph …`, `ccvec cluster`, `ccvec export-clusters`: the kNN graph and what is built on it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from ccvec import defaults
from ccvec.cli.common import (
    DEFAULT_MODEL,
    JobsOption,
    ModelOption,
    app,
    console,
    err_console,
    print_table,
    progress,
    safe,
    schema_connection,
    stages,
)
from ccvec.errors import CcvecError, counted

graph_app = typer.Typer(
    help="The kNN graph over the embeddings (HNSW): build, extend, inspect.", no_args_is_help=True
)
app.add_typer(graph_app, name="graph")


@graph_app.command("build")
def graph_build(
    k: Annotated[int, typer.Option(min=1, max=1000, help="Neighbours per image.")] = defaults.GRAPH_K,
    model: ModelOption = DEFAULT_MODEL,
    ef_search: Annotated[
        int | None,
        typer.Option(
            min=1,
            help=f"HNSW search breadth (recall vs speed). Default: the first of {defaults.EF_SEARCH}, "
            f"{defaults.EF_SEARCH * 2}, ... {defaults.EF_SEARCH_MAX} whose recall on half the sample "
            f"reaches {defaults.RECALL_TARGET} with 95% confidence ({defaults.EF_SEARCH} when "
            "--recall-sample is under 2).",
            show_default=False,
        ),
    ] = None,
    recall_sample: Annotated[
        int, typer.Option(min=0, help="Images checked against exact search (for --ef-search, then recall).")
    ] = defaults.RECALL_SAMPLE,
    jobs: JobsOption = defaults.SEARCH_JOBS,
) -> None:
    """Build a new kNN graph over every embedded image (HNSW index built first if missing)."""
    from ccvec import graph

    with schema_connection() as conn, progress("graph") as update:
        run = graph.build(
            conn,
            k,
            model,
            ef_search,
            recall_sample,
            on_progress=update,
            jobs=jobs,
        )
    recall = f"{run.recall:.3f}" if run.recall is not None else "n/a"
    chosen = ", ".join(f"{ef} -> {r:.3f}" for ef, r in run.tried)
    if run.resumed_with is not None:
        console.print(
            f"resumed graph run {run.id} (interrupted): {counted(run.resumed_with, 'image')} had their edges"
        )
    console.print(
        f"graph run {run.id}: {counted(run.images, 'image')}, k={run.k}, ef_search {run.ef_search}"
        + (f" (sampled recall by ef_search: {chosen})" if chosen else "")
        + f", recall@{run.k} {recall} (now current)"
    )


@graph_app.command("add")
def graph_add() -> None:
    """Add images embedded since the current graph was built (their edges, and older lists)."""
    from ccvec import graph

    with schema_connection() as conn, progress("adding") as update:
        added = graph.add_new(conn, update)
    console.print(f"added {counted(added, 'image')} to the current graph")


@graph_app.command("status")
def graph_status() -> None:
    """The graph runs and which one is current."""
    with schema_connection() as conn:
        rows = conn.execute("SELECT * FROM ccvec.knn_runs()").fetchall()
    table = Table("run", "model", "k", "ef_search", "images", "recall@k", "built", "current", box=None)
    for rid, mdl, k, ef, images, recall, started, finished, is_current in rows:
        table.add_row(
            str(rid),
            mdl,
            str(k),
            str(ef),
            f"{images or 0:,}",
            f"{recall:.3f}" if recall else "",
            f"{started:%Y-%m-%d %H:%M}" + ("" if finished else " (unfinished)"),
            "yes" if is_current else "",
        )
    if rows:
        print_table(table)
    else:
        console.print("no graph yet: run `ccvec graph build`")


@graph_app.command("prune")
def graph_prune(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="List what would go; delete nothing.")] = False,
    unfinished: Annotated[
        bool,
        typer.Option(
            "--unfinished",
            help="Also interrupted builds (the next build would resume them); one still running is kept.",
        ),
    ] = False,
) -> None:
    """Delete old graph runs (their edges) and cluster runs that nothing shows any more: every build
    and clustering keeps its rows. Kept: the current graph, the newest cluster run of each level on
    it, the graph of the newest VisualRank, and unfinished builds unless --unfinished."""
    from ccvec import graph

    with schema_connection() as conn:
        runs = graph.prunable(conn, unfinished)
        if not runs:
            console.print("nothing to prune")
            return
        table = Table("kind", "run", "started", "rows", box=None)
        for kind, run_id, started, held in runs:
            table.add_row(kind, str(run_id), f"{started:%Y-%m-%d %H:%M}", f"{held:,}")
        print_table(table)
        if dry_run:
            console.print("(dry run: nothing deleted)")
            return
        for kind, count, rows in graph.prune(conn, unfinished):
            noun = "edges" if kind == "graph" else "cluster members"
            console.print(f"deleted {counted(count, kind + ' run')} and {rows:,} {noun}")


@app.command("cluster")
def cluster_command(
    sim: Annotated[
        list[float] | None,
        typer.Option(
            help="imagecluster's similarity index 0..1 (0: one cluster, 1: singletons); repeat for "
            "levels. Without it: Louvain modularity, no threshold to tune."
        ),
    ] = None,
    method: Annotated[
        str,
        typer.Option(help="With --sim: mutual (mutual-kNN components), average (linkage; slower) or knn."),
    ] = defaults.CLUSTER_METHOD,
    resolution: Annotated[
        float,
        typer.Option(
            help=f"Louvain resolution, {defaults.CLUSTER_RESOLUTION_RANGE[0]:g}.."
            f"{defaults.CLUSTER_RESOLUTION_RANGE[1]:g}: higher gives more, smaller clusters."
        ),
    ] = defaults.CLUSTER_RESOLUTION,
) -> None:
    """Label every image of the current graph with a cluster, then name each cluster."""
    from ccvec import clusters, graph

    levels = sorted(set(sim or []))
    with schema_connection() as conn, stages() as bar:
        runs = []
        if not levels:
            bar.update("clustering (louvain)", 0, 1)
            runs.append((clusters.cluster_louvain(conn, resolution), f"louvain, resolution {resolution:g}"))
        for i, value in enumerate(levels):
            bar.update(f"clustering (sim {value:g})", i, len(levels))
            level = "default" if len(levels) == 1 else f"sim={value:g}"
            run_id = graph.cluster(conn, value, method, level)
            threshold = graph.cluster_summary(conn, run_id)[2]
            runs.append((run_id, f"{method}, sim {value:g}, cosine >= {threshold:.3f}"))
        for i, (run_id, _) in enumerate(runs):
            bar.update("naming clusters", i, len(runs))
            clusters.label(conn, run_id)
        bar.pause()
        for run_id, how in runs:
            console.print(f"cluster run {run_id} ({how}): {clusters.shape(conn, run_id).describe()}")
            grouped = [row for row in clusters.summary(conn, run_id) if row[2] > 1]
            for cluster, label, size, _, _ in grouped[:8]:
                console.print(f"  {cluster:5d}  {size:6,d}  {safe(label)}")


@app.command("export-clusters")
def export_clusters_command(
    target: Annotated[
        Path,
        typer.Argument(
            help="Folder for cluster_with_N/cluster_i/, unclustered/, labels.csv, sheets: new, or one an "
            "earlier export-clusters wrote (refreshed in place)."
        ),
    ],
    copy: Annotated[bool, typer.Option("--copy", help="Copy files instead of symlinking.")] = False,
    sheets: Annotated[int, typer.Option(min=0, help="Contact sheets for this many largest clusters.")] = 10,
    run: Annotated[
        int | None, typer.Option(help="Cluster run (default: the newest on the current graph).")
    ] = None,
) -> None:
    """Write clusters as folders of symlinks (imagecluster's layout), singletons under unclustered/,
    each folder's label in labels.csv and a README, and contact sheets captioned with the labels."""
    from ccvec import clusters, export

    out = export.open_export(target)  # before any work
    try:
        with schema_connection() as conn, stages() as bar:
            if run is None:
                row = conn.execute("SELECT ccvec.newest_cluster_run()").fetchone()
                run = row[0] if row else None
                if run is None:
                    raise CcvecError("no clusters yet: run `ccvec cluster`")
            else:
                clusters.require_run(conn, run)
            bar.update("reading clusters", 0, 3)
            labelled = conn.execute("SELECT ccvec.cluster_run_labelled(%s)", [run]).fetchone()
            if not (labelled and labelled[0]):
                clusters.label(conn, run)
            left_out: list[str] = []
            members = export.cluster_files(conn, run, 1, left_out)
            labels = export.cluster_labels(conn, run)
            bar.update("writing folders", 1, 3)
            written = export.write_layout(export.cluster_groups(members, labels), [], out, copy)
            bar.update("contact sheets", 2, 3)
            made = export.write_sheets(members, out, sheets, labels)
            out.commit()
    finally:
        out.release()  # a failure lets the next command write TARGET at once
    grouped = sum(1 for m in members.values() if len(m) > 1)
    alone = sum(1 for m in members.values() if len(m) == 1)
    console.print(
        f"{counted(grouped, 'cluster')} of 2 or more images, "
        f"{counted(alone, 'singleton')}{' (in unclustered/)' if alone else ''}, "
        f"{counted(written, 'file')} under {safe(target)} "
        f"(labels.csv beside them); {len(made)} contact sheets",
        highlight=False,
    )
    if left_out:
        err_console.print(
            f"{counted(len(left_out), 'clustered image')} not exported: not local files, or moved or changed "
            f"since loading (e.g. {safe(left_out[0])})",
            highlight=False,
        )
