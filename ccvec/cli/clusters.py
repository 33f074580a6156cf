"""`ccvec clusters`, `ccvec tags`, `ccvec novelty …`: what the graph says about clusters and images."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Annotated

import typer

from ccvec import db
from ccvec.cli.common import (
    DEFAULT_MODEL,
    Format,
    FormatOption,
    ModelOption,
    app,
    catalog_titles,
    console,
    emit,
    image_identifier,
    safe,
    schema_connection,
)
from ccvec.errors import CcvecError, counted
from ccvec.sources import readable_source

novelty_app = typer.Typer(
    help="Novelty against a reference set: fit on images like these, score every other image.",
    no_args_is_help=True,
)
app.add_typer(novelty_app, name="novelty")


@app.command("clusters")
def clusters_command(
    run: Annotated[int | None, typer.Option(help="Cluster run (default: the newest current one).")] = None,
    limit: Annotated[int, typer.Option(min=1, help="Clusters to list (singletons are counted).")] = 50,
    fmt: FormatOption = Format.table,
) -> None:
    """List clusters: label, size, medoid; and how many images are left unclustered."""
    from ccvec import clusters

    with schema_connection() as conn:
        rows = clusters.summary(conn, run)
        newest = conn.execute("SELECT ccvec.newest_labelled_cluster_run()")
        run_id = run or db.fetch_row(newest, "newest run")[0]
        shape = clusters.shape(conn, run_id)
        medoids = [r[3] for r in rows if r[2] > 1 and r[3] is not None][:limit]
        titles = catalog_titles(conn, medoids) if fmt == Format.table else {}
    if fmt != Format.table:  # every cluster, singletons too
        emit(
            ["cluster", "size", "label", "from", "medoid"],
            [(c, n, lb, src, m) for c, lb, n, m, src in rows],
            fmt,
        )
        return
    grouped = [r for r in rows if r[2] > 1][:limit]
    emit(  # the medoid as people know it: its title, else its file or URL (csv/json: its identifier)
        ["cluster", "size", "label", "from", "medoid"],
        [
            (c, f"{n:,}", lb, src, readable_source(titles.get(m) or str(m)) if m else "")
            for c, lb, n, m, src in grouped
        ],
        fmt,
        empty="no cluster has 2 or more images",
    )
    alone = [r for r in rows if r[2] == 1]
    if alone:
        shown = ", ".join(f"{safe(r[1])} ({r[3]})" for r in alone[:5])
        console.print(f"singletons (images alone): {len(alone):,}, e.g. {shown}")
    console.print(f"run {run_id}: {shape.describe()}")


@app.command("tags")
def tags_command(
    identifier: Annotated[
        str | None,
        typer.Argument(metavar="IDENTIFIER", help="An image's identifier, or its file (a folder load's)."),
    ] = None,
    all_images: Annotated[bool, typer.Option("--all", help="Every inferred tag.")] = False,
    fmt: FormatOption = Format.table,
) -> None:
    """Tags of an image (its own and inferred from neighbours, with score), or all inferred tags."""
    from ccvec import clusters

    if all_images == (identifier is not None):
        raise CcvecError("give one IDENTIFIER or --all")
    with schema_connection() as conn:
        if identifier is not None:
            own, inferred = clusters.tags_of(conn, image_identifier(identifier, conn))
        else:
            rows = list(clusters.all_tags(conn))
    if identifier is None:
        emit(
            ("identifier", "tag", "score", "support", "already_tagged"),
            [(str(i), tag, round(score, 4), support, tagged) for i, tag, score, support, tagged in rows],
            fmt,
            empty="no inferred tags: they come from neighbours that have tags (a manifest's `tags` "
            "column, or the provider's), and no tag here is carried by enough neighbours of an image",
        )
        return
    if fmt != Format.table:
        mine = [(tag, "own", None, None) for tag in own]
        emit(
            ("tag", "kind", "score", "support"),
            [*mine, *((t, "inferred", round(sc, 4), n) for t, sc, n in inferred)],
            fmt,
        )
        return
    console.print(f"own tags: {', '.join(safe(t) for t in own) if own else '(none)'}")
    for tag, score, support in inferred:
        console.print(f"inferred: {safe(tag)}  score {score:.2f}  ({support} neighbours)")
    if not inferred and own:
        console.print(
            "inferred: (none beyond its own tags: an image that has tags gets another only when its "
            "neighbours agree on it almost unanimously)"
        )
    elif not inferred:
        console.print("inferred: (none: no tag is shared by enough of its neighbours)")
    else:
        console.print("score: the similarity-weighted share of its neighbourhood carrying the tag")


@novelty_app.command("fit")
def novelty_fit(
    name: Annotated[str, typer.Argument(help="A name for this reference set.")],
    reference: Annotated[
        str | None,
        typer.Option(
            metavar="SOURCE",
            help="The images of a folder or manifest ccvec loaded; else the images whose catalog "
            "`source` column is SOURCE.",
        ),
    ] = None,
    provider: Annotated[str | None, typer.Option(help="Images of this provider.")] = None,
    tag: Annotated[str | None, typer.Option(help="Images carrying this tag.")] = None,
    model: ModelOption = DEFAULT_MODEL,
) -> None:
    """Learn what "images like these" look like (their embeddings' centre and per-dimension spreads)."""
    from ccvec import clusters

    given = [(w, v) for w, v in (("source", reference), ("provider", provider), ("tag", tag)) if v]
    if len(given) != 1:
        raise CcvecError("give exactly one of --reference, --provider, --tag")
    where, value = given[0]
    images: list[uuid.UUID] = []
    if where == "source" and Path(value).expanduser().exists():  # a folder or manifest: its images
        from ccvec.pipeline import source_identifiers

        where, (images, _) = "images", source_identifiers(value)
    with schema_connection() as conn:
        try:
            n = clusters.novelty_fit(conn, name, f"{where}={value}", where, value, model, images)
        except CcvecError as exc:  # a path that is not there, and no catalog source of that name
            if where == "source" and "/" in value and "matches 0" in str(exc):
                raise CcvecError(
                    f"{value}: no such folder or file, and no image has it as its source"
                ) from exc
            raise
    console.print(
        f"novelty model {name!r}: {n:,} reference images ({where} = {value}); "
        f"now `ccvec novelty score {name}`"
    )


@novelty_app.command("score")
def novelty_score(name: Annotated[str, typer.Argument(help="A fitted reference set.")]) -> None:
    """Score every other image against the reference set: novelty in [0,1] (ccvec.reference_novelty)."""
    from ccvec import clusters

    with schema_connection() as conn:
        n = clusters.novelty_score(conn, name)
        top = conn.execute("SELECT * FROM ccvec.reference_novelty_top(%s, 5)", [name]).fetchall()
    scored = f"scored {counted(n, 'image')} against {safe(repr(name))} (ccvec.reference_novelty)"
    if not top:
        console.print(f"{scored}: every image is in the reference set, so none is left to score")
        return
    console.print(f"{scored}; closest fits:")
    for ident, novelty, title in top:
        console.print(f"  {novelty:.2f}  {ident}  {safe(title or '')}")
