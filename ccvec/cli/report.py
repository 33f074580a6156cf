"""`ccvec report`: (re)write the HTML report from the database."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ccvec.cli.common import app, console, safe, stages


@app.command("report")
def report_command(
    out: Annotated[Path, typer.Argument(metavar="OUT", help="The report folder (new, or one ccvec wrote).")],
    sources: Annotated[
        list[str] | None,
        typer.Argument(
            metavar="[SOURCE...]",
            help="Limit to these sources. Default: the sources OUT was made from, else every image.",
        ),
    ] = None,
) -> None:
    """Write OUT/index.html: clusters, duplicates, each image's neighbours, tags and scores.

    Static pages with their thumbnails, for any browser from file://; unchanged data rewrites nothing."""
    from ccvec import pipeline

    with stages() as bar:
        summary = pipeline.report_only(out, sources, on_progress=bar.update)
    console.print(f"report: {safe(summary.steps['report'])}", highlight=False)  # names OUT
