"""`ccvec refresh`, `ccvec scores`, `ccvec popularity …`, `ccvec authority …`: popularity and authority."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from ccvec import db
from ccvec.cli.common import (
    Format,
    FormatOption,
    app,
    console,
    emit,
    err_console,
    image_identifier,
    progress,
    safe,
    schema_connection,
    stages,
)

authority_app = typer.Typer(help="Web authority: load Common Crawl host/domain ranks.", no_args_is_help=True)
app.add_typer(authority_app, name="authority")
popularity_app = typer.Typer(
    help="Popularity: which meta_data key counts for each provider (Openverse's five are set).",
    no_args_is_help=True,
)
app.add_typer(popularity_app, name="popularity")


@app.command("refresh")
def refresh_command(
    cold: Annotated[
        bool,
        typer.Option(
            "--cold",
            help="Derive every image's inputs again, start VisualRank from scratch and rescore every "
            "image against every reference set.",
        ),
    ] = False,
) -> None:
    """Recompute the scores: changed images and popularity constants; then at once, each on its own
    connection, popularity (observed, then from neighbours), VisualRank and web authority, and
    inferred tags, novelty and cluster labels; then image scores. Incremental (only new or changed
    images are parsed again, VisualRank starts from the previous ranks, reference sets score only
    images not scored yet) with the same result as --cold. Safe to rerun."""
    from ccvec import scores

    with schema_connection() as conn, stages() as bar:
        done = []
        total = scores.refresh_stage_count(conn)

        def stage(name: str, seconds: float) -> None:
            done.append(name)
            bar.update(f"refresh: {name}", len(done), total)
            err_console.print(f"{name:26s} {seconds:7.1f}s", highlight=False)

        started = time.perf_counter()
        scores.refresh(conn, on_stage=stage, cold=cold)
        seconds = time.perf_counter() - started  # stages overlap: their sum is not the time taken
        summary = db.fetch_row(
            conn.execute("SELECT * FROM ccvec.score_summary()"),
            "counting scores",
        )
        warnings = scores.unmetered(conn)
    images, observed, inferred, visual, tags = summary
    console.print(
        f"scored {images:,} images in {seconds:.1f}s: popularity observed {observed:,}, "
        f"inferred {inferred:,}, none {images - observed - inferred:,}; VisualRank for {visual:,}; "
        f"{tags:,} inferred tags"
    )
    for line in warnings:
        err_console.print(safe(line), highlight=False)


@popularity_app.command("metric")
def popularity_metric_command(
    provider: Annotated[str, typer.Argument(help="The provider, as the catalog's provider column names it.")],
    key: Annotated[str, typer.Argument(help="The meta_data key holding its count, e.g. views.")],
    percentile: Annotated[
        float, typer.Option(help="The provider's percentile that scores it (Openverse: 0.85).")
    ] = 0.85,
) -> None:
    """Count a provider's meta_data key as its popularity metric (then `ccvec refresh`)."""
    from ccvec import scores

    with schema_connection() as conn:
        scores.set_metric(conn, provider, key, percentile)
    console.print(
        f"{safe(provider)}: popularity from meta_data {safe(repr(key))} at the {percentile:g} "
        "percentile; `ccvec refresh` scores it"
    )


@popularity_app.command("metrics")
def popularity_metrics_command(fmt: FormatOption = Format.table) -> None:
    """Every provider's popularity metric, with the constant of the last refresh."""
    with schema_connection() as conn:
        rows = conn.execute("SELECT * FROM ccvec.popularity_metrics()").fetchall()
    emit(["provider", "metric", "percentile", "value_at_percentile", "constant", "images"], rows, fmt)


@app.command("scores")
def scores_command(
    identifier: Annotated[
        str,
        typer.Option(
            "--identifier",
            metavar="ID",
            help="The image to explain: its identifier, or its file (a folder load's).",
        ),
    ],
    fmt: FormatOption = Format.table,
) -> None:
    """Explain one image's popularity, authority and novelty: every number behind them."""
    from ccvec import scores

    with schema_connection() as conn:
        ident = image_identifier(identifier, conn)
        x = scores.explain(conn, ident)
    if fmt != Format.table:
        keys = ("popularity", "provenance", "support", "authority", "visual", "domain", "prior", "web_source")
        novelty = {_novelty_key(label): value for label, value, _ in x.get("novelty", [])}
        emit(
            ["identifier", *keys, *novelty],
            [(ident, *(x[k] for k in keys), *novelty.values())],
            fmt,
        )
        return
    provider, landing, _ = x["catalog"]
    console.print(f"[bold]{ident}[/bold]  provider {safe(provider or '-')}  {safe(landing or '')}")
    if x["provenance"] in ("observed", "inferred"):
        console.print(f"popularity  {x['popularity']:.3f}  ({x['provenance']}, support {x['support']})")
    else:
        console.print("popularity  no data")
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
    else:
        console.print(
            "  no data: no popularity metric counts for its provider (`ccvec popularity metrics`) or for "
            "any of its neighbours, so it gets the default"
        )
    console.print(
        f"authority   {x['authority']:.3f}  (visual and web below, weighted by the settings "
        "authority.weight_visual and authority.weight_web)"
    )
    if x["visualrank"]:
        rank, score, iterations, residual, nodes = x["visualrank"]
        console.print(
            f"  visual {score:.3f}: how much similar images point at it, as a percentile among {nodes:,} "
            f"images (VisualRank, PageRank over the neighbour graph: {rank:.3e} after {iterations} "
            f"iterations, residual {residual:.1e})"
        )
    host = x["host"]
    if host:
        host_rev, source, host_pos, domain_rev, domain_pos = host
        detail = {
            "host": _ranked("host", host_rev, host_pos),
            "domain": _ranked("domain", domain_rev, domain_pos),
            "provider": (
                f"a fixed prior for {provider}'s kind of source (no web rank for its host or domain)"
                if provider
                else "a fixed prior: no provider and no web rank for where it comes from (a local file)"
            ),
        }[source]
        web = x["domain"] if source in ("host", "domain") else x["prior"]
        console.print(f"  web {web:.3f}: {safe(detail)}")
    for label, novelty, detail in x.get("novelty", []):
        console.print(f"novelty     {novelty:.3f}  {safe(label)} ({safe(detail)})")


def _ranked(kind: str, name: str, position: int | None) -> str:
    """'host com.example at harmonic position 12'; position 0 is a position, not a missing one."""
    return f"{kind} {name} at harmonic position {position:,}" if position is not None else ""


def _novelty_key(label: str) -> str:
    """'within the collection' -> novelty; 'against NAME' -> novelty_NAME (machine-readable keys)."""
    return "novelty" if label == "within the collection" else f"novelty_{label.removeprefix('against ')}"


@authority_app.command("load-hosts")
def load_hosts_command(
    file: Annotated[
        Path, typer.Argument(help="A Common Crawl *-host-ranks.txt.gz or *-domain-ranks.txt.gz.")
    ],
) -> None:
    """Stream a Common Crawl ranks file into the database (replaces that kind's previous release)."""
    from ccvec import scores

    with schema_connection() as conn, progress("loading ranks") as update:
        result = scores.load_ranks(conn, file, update)
    console.print(
        f"{result.rows:,} {result.kind} ranks from {file} in {result.seconds:.1f}s; run `ccvec refresh`"
    )
    if result.bad_lines:
        err_console.print(
            f"skipped {result.bad_lines:,} malformed line(s), e.g. " + "; ".join(result.examples)
        )
