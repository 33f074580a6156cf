"""`ccvec similar` and `ccvec dedup`: near-duplicates by pHash, neighbours by embedding."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from ccvec import db, defaults
from ccvec.cli.common import (
    DEFAULT_MODEL,
    Format,
    FormatOption,
    JobsOption,
    LimitOption,
    MaxPixelsOption,
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

if TYPE_CHECKING:
    import uuid

    import numpy as np
    import numpy.typing as npt

    from ccvec.models.registry import Model


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
            help="Nearest by embedding (HNSW) instead of pHash; of --identifier, or of --image "
            "(a file not loaded is embedded for the search, and not stored).",
        ),
    ] = False,
    k: Annotated[int, typer.Option("-k", min=1, help="Neighbours for --semantic.")] = 10,
    model: ModelOption = DEFAULT_MODEL,
    dihedral: Annotated[
        bool, typer.Option("--dihedral/--no-dihedral", help="Also find mirrored and rotated copies by pHash.")
    ] = defaults.DIHEDRAL,
    fmt: FormatOption = Format.table,
    max_pixels: MaxPixelsOption = defaults.MAX_PIXELS,
) -> None:
    """Near-duplicates by pHash Hamming distance (exact, multi-index hashing), or --semantic neighbours."""
    if semantic:
        if phash_hex is not None or (image is not None and identifier is not None):
            raise CcvecError("--semantic takes one of --identifier or --image (not --phash)")
        if image is not None:
            _similar_to_file(image, k, model, fmt, max_pixels)
        else:
            _similar_semantic(identifier, k, model, fmt)
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
                grid = decode(read_file(image, defaults.MAX_BYTES), None, max_pixels).hash_grid
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


def _similar_to_file(image: Path, k: int, model: str, fmt: Format, max_pixels: int) -> None:
    """--semantic --image: a loaded file by its stored embedding (itself left out); any other image
    file embedded here with the registered model, as `ccvec load` would, and not stored. The
    inference runs between two transactions, holding none (a load's index DDL would wait on it)."""
    from ccvec import graph
    from ccvec.models.registry import get_model
    from ccvec.sources import display_path, file_location, identity

    ident = identity(file_location(image))
    with schema_connection() as conn:
        missing = conn.execute("SELECT * FROM ccvec.missing_embeddings(%s, %s)", [model, [ident]])
        loaded = not missing.fetchall()
        registered = None if loaded else get_model(conn, model)
    query = None if registered is None else _embed_file(image, registered, max_pixels)
    with schema_connection() as conn:
        if query is None:
            found, note = graph.similar(conn, ident, k, model), ""
        else:
            found, note = graph.nearest_to(conn, query, k, model), "; not loaded"
        titles = catalog_titles(conn, [i for i, _ in found])
    _emit_nearest(found, titles, fmt, f"{k} nearest to {display_path(image)} ({model}{note})")


def _embed_file(image: Path, model: Model, max_pixels: int) -> npt.NDArray[np.float32]:
    """One image file's embedding with a registered model, read and decoded as the loader reads it
    (a FIFO, a folder or a missing file is named as such)."""
    from ccvec.decode import DecodeError, decode
    from ccvec.fetch import FetchError, read_file
    from ccvec.models.runtime import Embedder
    from ccvec.sources import display_path

    try:
        pixels = decode(read_file(image, defaults.MAX_BYTES), model.spec, max_pixels).pixels
    except (FetchError, DecodeError) as exc:
        raise CcvecError(f"{display_path(image)}: {exc}") from exc
    if pixels is None:  # decode returns pixels whenever a spec is given
        raise CcvecError(f"{display_path(image)}: no model input decoded")
    return Embedder(model, threads=1).embed(pixels[None]).reshape(-1)  # its one row


def _similar_semantic(identifier: str | None, k: int, model: str, fmt: Format) -> None:
    from ccvec import graph

    if identifier is None:
        raise CcvecError("--semantic needs --identifier or --image")
    with schema_connection() as conn:
        ident = image_identifier(identifier, conn)
        found = graph.similar(conn, ident, k, model)
        titles = catalog_titles(conn, [i for i, _ in found])
    _emit_nearest(found, titles, fmt, f"{k} nearest to {ident} ({model})")


def _emit_nearest(
    found: list[tuple[uuid.UUID, float]], titles: dict[uuid.UUID, str], fmt: Format, title: str
) -> None:
    emit(
        ["similarity", "identifier", "title"],
        # a table aligns 4 decimals (1.0000, 0.4300, 0.3638); csv and json keep numbers
        [
            (f"{sim:.4f}" if fmt == Format.table else round(sim, 4), ident, titles.get(ident, ""))
            for ident, sim in found
        ],
        fmt,
        title=title,
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
