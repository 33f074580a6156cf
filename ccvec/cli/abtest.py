"""`ccvec experiment …`: A/B tests of cluster-mate substitution."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from ccvec.cli.common import (
    Format,
    FormatOption,
    app,
    console,
    emit,
    err_console,
    print_table,
    safe,
    schema_connection,
)
from ccvec.errors import CcvecError, counted

if TYPE_CHECKING:
    from ccvec import abtest

experiment_app = typer.Typer(
    help="A/B tests: cluster-mate substitution and click-through analysis.", no_args_is_help=True
)
app.add_typer(experiment_app, name="experiment")


@experiment_app.command("create")
def experiment_create(
    name: Annotated[str, typer.Argument(help="Experiment name.")],
    treatment: Annotated[float, typer.Option(help="Share of sessions in treatment, 0 to 1.")] = 0.5,
    substitution: Annotated[
        float, typer.Option(help="Share of result positions substituted in treatment, 0 to 1.")
    ] = 0.2,
    level: Annotated[str, typer.Option(help="Cluster level whose mates substitute.")] = "default",
) -> None:
    """Define and start an experiment (the search engine then calls ccvec.substitute())."""
    from ccvec import abtest

    with schema_connection() as conn:
        abtest.create(conn, name, treatment, substitution, level)
    console.print(
        f"experiment {name} running: {treatment:.0%} of sessions, {substitution:.0%} of their results"
    )


@experiment_app.command("stop")
def experiment_stop(name: Annotated[str, typer.Argument(help="Experiment name.")]) -> None:
    """Stop substituting (sessions all get control from now on)."""
    from ccvec import abtest

    with schema_connection() as conn:
        abtest.stop(conn, name)
    console.print(f"experiment {name} stopped")


@experiment_app.command("import")
def experiment_import(
    name: Annotated[str, typer.Argument(help="Experiment name.")],
    file: Annotated[Path, typer.Argument(help="Analytics export: CSV or JSON Lines.")],
) -> None:
    """Import impression and click events; bad rows are rejected with reasons; re-import is safe."""
    from ccvec import abtest

    with schema_connection() as conn:
        result = abtest.import_events(conn, name, file)
    console.print(
        f"read {result.read:,}: imported {result.imported:,}, already there {result.duplicates:,}, "
        f"rejected {result.rejected:,}"
    )
    for reason in result.reasons:
        err_console.print(f"  rejected {safe(reason)}", highlight=False)
    if result.rejected > len(result.reasons):
        err_console.print(
            f"  and {result.rejected - len(result.reasons):,} more: "
            "SELECT source, reason FROM ccvec.load_error WHERE stage = 'ab-import'",
            highlight=False,
        )
    if result.unmatched:
        err_console.print(
            f"{counted(result.unmatched, 'event')} of experiment {safe(name)} match nothing it served "
            "(another experiment's, from before it started, or of images it never showed): "
            "the report leaves them out",
            highlight=False,
        )
    if result.rejected:
        raise typer.Exit(1)


@experiment_app.command("report")
def experiment_report(
    name: Annotated[str, typer.Argument(help="Experiment name.")],
    fmt: FormatOption = Format.table,
    as_json: Annotated[bool, typer.Option("--json", hidden=True, help="The same as --format json.")] = False,
) -> None:
    """CTR of substituted results vs originals at the same rank: difference, CI, p-value, clusters.

    --format json gives the whole report (strata, test, clusters); csv the rows of the rank table."""
    from ccvec import abtest

    if as_json and fmt not in (Format.table, Format.json):
        raise CcvecError(f"--json is --format json: give one of --json and --format {fmt.value}")
    with schema_connection() as conn:
        result = abtest.report(conn, name)
    if as_json or fmt == Format.json:
        print(result.to_json())
        return
    if fmt == Format.csv:
        columns = ["rank", "substituted", "substituted_clicks", "control", "control_clicks"]
        emit(columns, [[getattr(s, c) for c in columns] for s in result.strata], fmt)
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
            _rate(s.ctr_substituted),
            f"{s.control:,}",
            f"{s.control_clicks:,}",
            _rate(s.ctr_control),
        )
    print_table(table)
    console.print(_verdict(result))
    rated = [(v, c) for c in result.clusters if (v := c["validity"]) is not None]
    if rated:
        worst = sorted(rated, key=lambda vc: vc[0])[:5]
        console.print(
            "clusters whose mates draw fewest clicks (observed / expected clicks, substitutes shown): "
            + ", ".join(f"cluster {c['cluster']}: {v:.2f} ({c['impressions']:,} shown)" for v, c in worst)
        )
    console.print(
        f"{counted(result.alternates_clicked, 'alternate')} shown in this experiment drew clicks: "
        "see ccvec.ab_alternate_signal"
    )


def _verdict(result: abtest.Report) -> str:
    """The comparison in one sentence: none without a rank both arms saw, else the difference, its
    interval and p, and what the CMH test says at 95 % (the Wald interval collapses on tiny cells)."""
    if math.isnan(result.difference):
        return "no comparison yet: no rank has both substituted and control impressions"
    p = f"{result.p_value:.4f}" if result.p_value >= 1e-4 else "< 0.0001"
    figures = (
        f"CTR difference (Mantel-Haenszel, by rank): {result.difference:+.4f} "
        f"[95% CI {result.ci_low:+.4f}, {result.ci_high:+.4f}], odds ratio {result.odds_ratio:.3f}, CMH p {p}"
    )
    if result.p_value >= 0.05:
        return f"{figures}: no difference shown at 95 %"
    more = "more" if result.difference > 0 else "fewer"
    return f"{figures}: substitutes draw {more} clicks than the originals at the same ranks"


def _rate(ctr: float) -> str:
    """A CTR for the table; a rank without impressions in that arm has none ('-', not 'nan')."""
    return "-" if math.isnan(ctr) else f"{ctr:.3f}"


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
