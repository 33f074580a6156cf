"""`ccvec similar` and `ccvec dedup`: near-duplicates by pHash, neighbours by embedding."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from ccvec import db, defaults
from ccvec.cli.common import (
    DEFAULT_MODEL,
    Format,
    FormatOption,
    JobsOption,
    LimitOption,
    ModelOption,
    RadiusOption,
    app,
    catalog_titles,
    confirm_destructive,
    console,
    emit,
    err_console,
    image_identifier,
    print_table,
    progress,
    safe,
    schema_connection,
)
from ccvec.errors import CcvecError, counted


@app.command("similar")
def similar_command(
    phash_hex: Annotated[
        str | None, typer.Option("--phash", help="A pHash in imagehash's 16-hex form.")
    ] = None,
    image: Annotated[Path | None, typer.Option("--image", help="An image file (need not be loaded).")] = None,
    identifier: Annotated[
        str | None,
        typer.Option("--identifier", help="A loaded image: its identifier, or its file (a folder load's)."),
    ] = None,
    radius: RadiusOption = defaults.HAMMING_RADIUS,
    limit: LimitOption = 50,
    semantic: Annotated[
        bool,
        typer.Option(
            "--semantic",
            help="Nearest by embedding (HNSW) instead of pHash; of --identifier, or of a loaded --image.",
        ),
    ] = False,
    k: Annotated[int, typer.Option("-k", min=1, help="Neighbours for --semantic.")] = 10,
    model: ModelOption = DEFAULT_MODEL,
    dihedral: Annotated[
        bool, typer.Option("--dihedral/--no-dihedral", help="Also find mirrored and rotated copies by pHash.")
    ] = defaults.DIHEDRAL,
    fmt: FormatOption = Format.table,
) -> None:
    """Near-duplicates by pHash Hamming distance (exact, multi-index hashing), or --semantic neighbours."""
    if semantic:
        if phash_hex is not None or (image is not None and identifier is not None):
            raise CcvecError("--semantic takes one of --identifier or --image (not --phash)")
        _similar_semantic(identifier or (_loaded_identifier(image, model) if image else None), k, model, fmt)
        return
    from ccvec import neardup, phash
    from ccvec.decode import DecodeError, decode
    from ccvec.fetch import FetchError, read_file
    from ccvec.sources import display_path

    if sum(x is not None for x in (phash_hex, image, identifier)) != 1:
        raise CcvecError("give exactly one of --phash, --image or --identifier")
    with schema_connection() as conn:
        if phash_hex is not None:
            try:
                query = phash.from_hex(phash_hex)
            except ValueError as exc:
                raise CcvecError(str(exc)) from exc
        elif image is not None:
            try:  # the loader's reading: a FIFO, a folder or a symlink loop is named as such
                grid = decode(read_file(image, defaults.MAX_BYTES), None).hash_grid
            except (FetchError, DecodeError) as exc:
                raise CcvecError(f"{display_path(image)}: {exc}") from exc
            query = int(phash.phash_from_pixels(grid[None])[0])
        else:
            if identifier is None:  # unreachable: exactly one of the three was given
                raise CcvecError("give exactly one of --phash, --image or --identifier")
            query = neardup.phash_of(conn, image_identifier(identifier, conn))
        neardup.ensure_configured(conn)
        if dihedral:
            found = neardup.neighbours_dihedral(conn, query, radius)
        else:
            found = [(i, d, "identity") for i, d in neardup.neighbours(conn, query, radius)]
        titles = catalog_titles(conn, [i for i, _, _ in found[:limit]])
    emit(
        ["distance", "as", "identifier", "title"],
        [(distance, transform, ident, titles.get(ident, "")) for ident, distance, transform in found[:limit]],
        fmt,
        title=f"within {radius} of {phash.to_hex(query)}",
        empty=f"nothing within {radius} of {phash.to_hex(query)}",
    )
    if len(found) > limit:
        err_console.print(f"{len(found) - limit} more within {radius}: --limit N shows them", highlight=False)


def _loaded_identifier(image: Path, model: str) -> str:
    """The identifier a folder load gave this file: semantic search needs its stored embedding."""
    from ccvec.sources import display_path

    if not image.is_file():
        raise CcvecError(f"{display_path(image)}: --image takes an image file")
    with schema_connection() as conn:
        ident = image_identifier(str(image), conn)
        missing = conn.execute("SELECT * FROM ccvec.missing_embeddings(%s, %s)", [model, [ident]]).fetchall()
    if missing:
        raise CcvecError(
            f"{display_path(image)} is not loaded with {model}: `ccvec load` it first, or search by "
            "pHash without --semantic (any file will do)"
        )
    return str(ident)


def _similar_semantic(identifier: str | None, k: int, model: str, fmt: Format) -> None:
    from ccvec import graph

    if identifier is None:
        raise CcvecError("--semantic needs --identifier, or --image of a loaded file")
    with schema_connection() as conn:
        ident = image_identifier(identifier, conn)
        found = graph.similar(conn, ident, k, model)
        titles = catalog_titles(conn, [i for i, _ in found])
    emit(
        ["similarity", "identifier", "title"],
        # a table aligns 4 decimals (1.0000, 0.4300, 0.3638); csv and json keep numbers
        [
            (
                f"{similarity:.4f}" if fmt == Format.table else round(similarity, 4),
                ident2,
                titles.get(ident2, ""),
            )
            for ident2, similarity in found
        ],
        fmt,
        title=f"{k} nearest to {ident} ({model})",
    )


@app.command("dedup")
def dedup_command(
    radius: RadiusOption = defaults.HAMMING_RADIUS,
    prefer: Annotated[
        str,
        typer.Option(
            help="Canonical preference, in order: original (fewest signs of being a derivative), "
            "largest, provider, oldest, newest."
        ),
    ] = ",".join(defaults.DEDUP_PREFER),
    cosine: Annotated[
        float, typer.Option(help="Also match by embedding cosine >= this, up to 1 (0: pHash only).")
    ] = defaults.DEDUP_COSINE,
    link: Annotated[
        float,
        typer.Option(
            help="Groups merge while this share (above 0, up to 1) of their member pairs match directly."
        ),
    ] = defaults.DEDUP_LINK,
    dihedral: Annotated[
        bool, typer.Option("--dihedral/--no-dihedral", help="Also match flipped and rotated copies by pHash.")
    ] = defaults.DIHEDRAL,
    model: ModelOption = DEFAULT_MODEL,
    rebuild: Annotated[
        bool, typer.Option("--rebuild", help="Regroup everything, not just new images.")
    ] = False,
    report_only: Annotated[bool, typer.Option("--report", help="Only summarise the current groups.")] = False,
    yes: Annotated[
        bool,
        typer.Option("--yes", help="Do not ask before --rebuild of a large run (needed off a terminal)."),
    ] = False,
    fmt: Annotated[
        Format,
        typer.Option(
            "--format", help="table: a summary; csv or json: every member of every group, canonical first."
        ),
    ] = Format.table,
    jobs: JobsOption = defaults.SEARCH_JOBS,
) -> None:
    """Group near-duplicate images; each group keeps one canonical image (new images join incrementally)."""

    from ccvec import neardup

    with schema_connection() as conn:
        if rebuild and not report_only:
            (grouped,) = db.fetch_row(
                conn.execute("SELECT ccvec.duplicate_member_count()"), "counting groups"
            )
            conn.commit()
            if grouped > defaults.CONFIRM_REBUILD_ABOVE:
                confirm_destructive(f"--rebuild discards the current groups of {grouped:,} images", yes)
        if not report_only:
            with progress("grouping") as update:
                neardup.dedup(
                    conn,
                    radius,
                    tuple(p.strip() for p in prefer.split(",") if p.strip()),
                    rebuild,
                    cosine=cosine or None,
                    model=model,
                    link=link,
                    dihedral=dihedral,
                    on_progress=update,
                    jobs=jobs,
                )
        if fmt != Format.table:
            members = neardup.members(conn)
        else:
            summary = neardup.report(conn)
            titles = catalog_titles(conn, [g for g, _, _ in summary.largest])
    if fmt != Format.table:
        emit(list(neardup.MEMBER_COLUMNS), members, fmt)
        return
    console.print(
        f"{counted(summary.images, 'image')}, {counted(summary.groups, 'duplicate group')}, "
        f"{counted(summary.duplicates, 'duplicate')} of a canonical image"
    )
    if summary.size_histogram:
        table = Table("group size", "groups", box=None)
        for bucket, n in summary.size_histogram:
            table.add_row(bucket, f"{n:,}")
        print_table(table)
        largest = Table(
            "group (canonical identifier)",
            "size",
            "max pHash distance",
            "canonical image",
            title="largest groups",
            box=None,
        )
        for group_id, size, max_distance in summary.largest:
            largest.add_row(str(group_id), str(size), str(max_distance), safe(titles.get(group_id) or ""))
        print_table(largest)
        console.print(
            "members match by pHash within the radius or by embedding cosine, so a pHash distance past "
            "the radius is an embedding match; every member, how it matched, its location and the "
            "canonical one: --report --format csv (or json)"
        )
