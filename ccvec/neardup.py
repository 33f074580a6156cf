"""Near-duplicates on the pHash: exact Hamming search by multi-index hashing, and duplicate groups.

The search and the grouping run in SQL (`sql/0003_neardup.up.sql`); this module picks the chunk
layout for the catalog's size, and drives group building in committed steps with progress.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg

from ccvec import db, defaults
from ccvec.errors import CcvecError
from ccvec.models.registry import DEFAULT_MODEL
from ccvec.phash import from_signed, to_signed

DEFAULT_RADIUS = defaults.HAMMING_RADIUS
DEFAULT_COSINE = defaults.DEDUP_COSINE
DEFAULT_LINK = defaults.DEDUP_LINK
DEFAULT_K = defaults.DEDUP_K
DEFAULT_DIHEDRAL = defaults.DIHEDRAL
DEFAULT_PREFER = defaults.DEDUP_PREFER
PREFER_ALIASES = {"pixels": "largest"}
MAX_MASKS = 100_000
# One index probe (a btree descent into a chunk index, ~2 us) relative to checking one candidate
# (~0.12 us): fitted to bench/hamming_chunks.py at 1M hashes, where chunks 3, 4 and 5 trade
# probes for candidates (docs/benchmarks.md). It makes 4 chunks the layout at 1M.
PROBE_COST = 16.0

# (radius, cosine, model, prefer, link, k, dihedral) of a dedup run
Settings = tuple[int, float | None, str | None, list[str], float, int, bool]


@dataclass(frozen=True)
class ChunkPlan:
    chunks: int
    bits: int  # widest chunk
    probes: int  # index probes per query at the planned radius
    candidates: float  # expected rows to verify per query (uniform hashes)

    @property
    def cost(self) -> float:
        return self.probes * PROBE_COST + self.candidates


def widths(chunks: int) -> list[int]:
    """Chunk widths in bits, the wider first (as ccvec.configure_mih lays them out)."""
    return [64 // chunks + (1 if i < 64 % chunks else 0) for i in range(chunks)]


def thresholds(chunk_widths: list[int], radius: int) -> list[int]:
    """Probe weight per chunk, as ccvec.mih_thresholds: the weights plus one sum to radius + 1
    (generalised pigeonhole), so a hash within `radius` is within its weight on some chunk; the
    one-higher weights go to the narrowest chunks; -1 leaves a chunk out."""
    m = len(chunk_widths)
    base, extra = divmod(radius + 1, m)
    return [base - 1 + (1 if i >= m - extra else 0) for i in range(m)]


def plan(rows: int, chunks: int, radius: int = DEFAULT_RADIUS) -> ChunkPlan:
    """Expected work of one query at `radius` with `chunks` chunks over `rows` uniform hashes."""
    chunk_widths = widths(chunks)
    per_chunk = [
        sum(math.comb(w, k) for k in range(t + 1))
        for w, t in zip(chunk_widths, thresholds(chunk_widths, radius), strict=True)
    ]
    candidates = sum(p * rows / 2**w for p, w in zip(per_chunk, chunk_widths, strict=True))
    return ChunkPlan(chunks, chunk_widths[0], sum(per_chunk), candidates)


def choose_chunks(rows: int, radius: int = DEFAULT_RADIUS) -> int:
    """The chunk count with the least expected work (Norouzi: chunk bits near log2(rows))."""
    feasible = [
        plan(rows, m, radius)
        for m in range(1, 17)
        if sum(math.comb(widths(m)[0], k) for k in range(max(thresholds(widths(m), radius)) + 1)) <= MAX_MASKS
    ]
    return min(feasible, key=lambda p: p.cost).chunks


def feature_rows(conn: psycopg.Connection) -> int:
    """Rows of ccvec.image_feature from the planner's estimate: the chunk choice needs the order of
    magnitude, and an exact count(*) of a 500M-row table would cost minutes per command."""
    rows: int = db.fetch_row(conn.execute("SELECT ccvec.feature_rows()"), "estimating ccvec.image_feature")[0]
    return rows


def configure(conn: psycopg.Connection, chunks: int | None = None, radius: int = DEFAULT_RADIUS) -> int:
    """(Re)build the chunk indexes for the current catalog size; returns the chunk count."""
    chunks = chunks or choose_chunks(max(feature_rows(conn), 1_000_000), radius)
    conn.execute("SELECT ccvec.configure_mih(%s, %s)", [chunks, MAX_MASKS])
    conn.commit()
    return chunks


def ensure_configured(conn: psycopg.Connection) -> None:
    """Configure on first use, and re-chunk when the catalog outgrew the layout tenfold (one command
    at a time: two at once would write the same masks; the second finds the layout done)."""
    if not _layout_outdated(conn):
        return
    with db.job(conn, "mih layout", "laying out the pHash index"):
        if _layout_outdated(conn):
            configure(conn)


def _layout_outdated(conn: psycopg.Connection) -> bool:
    row = conn.execute("SELECT * FROM ccvec.mih_layout()").fetchone()
    outdated = row is None or choose_chunks(max(feature_rows(conn), 1_000_000)) != row[1]
    conn.commit()
    return outdated


def neighbours(conn: psycopg.Connection, phash: int, radius: int) -> list[tuple[uuid.UUID, int]]:
    """(identifier, distance) of every image within `radius` of `phash` (unsigned 64-bit); SQL
    checks the radius (ccvec.check_radius)."""
    return db.execute_checked(
        conn,
        "SELECT * FROM ccvec.neardup_neighbours(%s, %s)",
        [to_signed(phash), radius],
    ).fetchall()


def neighbours_dihedral(
    conn: psycopg.Connection, phash: int, radius: int = DEFAULT_RADIUS
) -> list[tuple[uuid.UUID, int, str]]:
    """(identifier, distance, transform) within `radius` of `phash` or of its flipped / rotated hashes."""
    return db.execute_checked(
        conn,
        "SELECT * FROM ccvec.neardup_neighbours_dihedral(%s, %s)",
        [to_signed(phash), radius],
    ).fetchall()


def phash_of(conn: psycopg.Connection, identifier: uuid.UUID) -> int:
    row = conn.execute("SELECT ccvec.image_phash(%s)", [identifier]).fetchone()
    if row is None or row[0] is None:
        raise CcvecError(f"no image {identifier} in ccvec.image_feature (was it loaded?)")
    return from_signed(row[0])


# ---------------------------------------------------------------- groups


def _prefer_keys(prefer: tuple[str, ...] | list[str]) -> list[str]:
    """Preference keys with aliases resolved (ccvec.duplicate_settings_check validates them)."""
    return [PREFER_ALIASES.get(p, p) for p in prefer]


def dedup(
    conn: psycopg.Connection,
    radius: int = DEFAULT_RADIUS,
    prefer: tuple[str, ...] = DEFAULT_PREFER,
    rebuild: bool = False,
    cosine: float | None = DEFAULT_COSINE,
    model: str = DEFAULT_MODEL,
    link: float = DEFAULT_LINK,
    dihedral: bool = DEFAULT_DIHEDRAL,
    k: int = DEFAULT_K,
    step: int = defaults.SEARCH_BATCH,
    on_progress: Callable[[int, int], None] | None = None,
    jobs: int = defaults.SEARCH_JOBS,
) -> int:
    """Group images without a group yet (all of them after a rebuild). Returns the run id.

    Direct matches (edges): pHash within `radius` (of the image or, with `dihedral`, of its flipped
    and rotated versions), or embedding cosine >= `cosine` among the `k` nearest (None: pHash only).
    Groups: average linkage over the edges, merging while the share of member pairs that match
    directly is >= `link`; membership depends only on the set of images. The canonical is chosen
    afterwards by `prefer`. New images regroup only the components they touch, which gives the same
    groups as a rebuild. Other settings than the last run's rebuild. Edge search runs in batches of
    `step` images over `jobs` connections, each batch committed, so an interrupted run resumes.
    With embeddings, an image's candidates are its k nearest (HNSW), on which both rules are
    evaluated; while some images have no embedding of `model`, every image also probes the pHash
    index (exact), so that newcomers still find them. One dedup at a time (db.job): a second one waits,
    then groups only what the first left ungrouped.
    """
    with db.job(conn, "dedup", "dedup"):
        settings = (radius, prefer, rebuild, cosine, model, link, dihedral, k, step, on_progress, jobs)
        return _dedup(conn, *settings)


def _dedup(
    conn: psycopg.Connection,
    radius: int,
    prefer: tuple[str, ...],
    rebuild: bool,
    cosine: float | None,
    model: str,
    link: float,
    dihedral: bool,
    k: int,
    step: int,
    on_progress: Callable[[int, int], None] | None,
    jobs: int,
) -> int:
    prefer_list = _prefer_keys(prefer)
    db.execute_checked(  # every setting checked once, in SQL, before anything is cleared
        conn,
        "SELECT ccvec.duplicate_settings_check(%s, %s, %s, %s, %s)",
        [radius, cosine, link, k, prefer_list],
    )
    ensure_configured(conn)
    if cosine is not None:
        embedded = db.fetch_row(
            conn.execute("SELECT ccvec.embedding_count(%s)", [model]),
            "counting embeddings",
        )[0]
        if embedded >= 2:
            from ccvec.graph import ensure_index

            ensure_index(conn, model)
    settings: Settings = (
        radius,
        cosine,
        model if cosine is not None else None,
        prefer_list,
        link,
        k,
        dihedral,
    )
    last = conn.execute("SELECT * FROM ccvec.duplicate_last_run()").fetchone()
    if rebuild or (last is not None and not _same_settings(last, settings)):
        conn.execute("SELECT ccvec.duplicate_clear()")
    run_id: int = db.fetch_row(
        conn.execute("SELECT ccvec.duplicate_run_start(%s, %s, %s, %s, %s, %s, %s)", list(settings)),
        "creating the duplicate run",
    )[0]
    conn.commit()
    grouped = db.fetch_row(conn.execute("SELECT ccvec.duplicates_grouped()"), "checking for groups")[0]
    todo = [r[0] for r in conn.execute("SELECT * FROM ccvec.duplicate_ungrouped()")]
    probe = cosine is None or bool(
        db.fetch_row(conn.execute("SELECT ccvec.unembedded_count(%s)", [model]), "counting unembedded")[0]
    )
    starts = range(0, len(todo), step)
    batches: list[list[object]] = [[run_id, todo[start : start + step], probe] for start in starts]
    done = [0]

    def progress(i: int) -> None:
        done[0] += min(step, len(todo) - starts[i])
        if on_progress:
            on_progress(done[0], len(todo))

    db.run_batches(conn, "SELECT ccvec.duplicate_edges_batch(%s, %s, %s)", batches, jobs, progress)
    if todo:
        conn.execute("SELECT ccvec.duplicate_regroup(%s, %s)", [run_id, todo if grouped else None])
    conn.execute("SELECT ccvec.duplicate_run_finish(%s)", [run_id])
    conn.commit()
    return run_id


def _same_settings(last: tuple[Any, ...], settings: Settings) -> bool:
    def close(a: float | None, b: float | None) -> bool:
        return (a is None and b is None) or (a is not None and b is not None and abs(a - b) < 1e-6)

    radius, cosine, model, prefer, link, k, dihedral = last
    return (
        radius == settings[0]
        and close(cosine, settings[1])
        and model == settings[2]
        and list(prefer) == settings[3]
        and close(link, settings[4])
        and k == settings[5]
        and dihedral == settings[6]
    )


@dataclass(frozen=True)
class GroupReport:
    images: int
    groups: int  # with more than one member
    duplicates: int  # members that are not canonical
    size_histogram: list[tuple[str, int]]
    largest: list[tuple[uuid.UUID, int, int]]  # (group id, size, max distance)


MEMBER_COLUMNS = (
    "group",
    "size",
    "identifier",
    "canonical",
    "distance",
    "similarity",
    "matched_by",
    "location",
    "title",
)


def members(conn: psycopg.Connection) -> list[tuple[object, ...]]:
    """Every member of every group of two or more, largest groups first, canonical first in each
    (MEMBER_COLUMNS): what a script needs to decide which copies to keep."""
    return conn.execute("SELECT * FROM ccvec.duplicate_listing()").fetchall()


def report(conn: psycopg.Connection, top: int | None = 10) -> GroupReport:
    (images,) = db.fetch_row(conn.execute("SELECT ccvec.duplicate_member_count()"), "counting grouped images")
    groups, dupes = db.fetch_row(
        conn.execute("SELECT * FROM ccvec.duplicate_totals()"),
        "counting groups",
    )
    histogram = conn.execute("SELECT * FROM ccvec.duplicate_size_histogram()").fetchall()
    largest = conn.execute("SELECT * FROM ccvec.duplicate_largest(%s)", [top]).fetchall()
    return GroupReport(images, groups, int(dupes), histogram, largest)
