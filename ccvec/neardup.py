"""Near-duplicates on the pHash: exact Hamming search by multi-index hashing, and duplicate groups.

The search and the grouping run in SQL (`sql/0003_neardup.up.sql`); this module picks the chunk
layout for the catalog's size, and drives group building in committed steps with progress.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import psycopg

from ccvec import defaults
from ccvec.errors import CcvecError
from ccvec.models.registry import DEFAULT_MODEL
from ccvec.phash import from_signed, to_signed

DEFAULT_RADIUS = defaults.HAMMING_RADIUS
DEFAULT_COSINE = defaults.DEDUP_COSINE
DEFAULT_PREFER = defaults.DEDUP_PREFER
PREFER_KEYS = {"pixels", "provider", "oldest", "newest"}
MAX_MASKS = 100_000
PROBE_COST = 4.0  # one btree descent, relative to verifying one candidate row


@dataclass(frozen=True)
class ChunkPlan:
    chunks: int
    bits: int  # widest chunk
    probes: int  # index probes per query at the planned radius
    candidates: float  # expected rows to verify per query (uniform hashes)

    @property
    def cost(self) -> float:
        return self.probes * PROBE_COST + self.candidates


def plan(rows: int, chunks: int, radius: int = DEFAULT_RADIUS) -> ChunkPlan:
    """Expected work of one query at `radius` with `chunks` chunks over `rows` uniform hashes."""
    bits = -(-64 // chunks)
    s = radius // chunks
    per_chunk = sum(math.comb(bits, k) for k in range(s + 1))
    probes = chunks * per_chunk
    return ChunkPlan(chunks, bits, probes, probes * rows / 2**bits)


def choose_chunks(rows: int, radius: int = DEFAULT_RADIUS) -> int:
    """The chunk count with the least expected work (Norouzi: chunk bits near log2(rows))."""
    feasible = [
        plan(rows, m, radius)
        for m in range(1, 17)
        if sum(math.comb(-(-64 // m), k) for k in range(radius // m + 1)) <= MAX_MASKS
    ]
    return min(feasible, key=lambda p: p.cost).chunks


def feature_rows(conn: psycopg.Connection) -> int:
    """Rows of ccvec.image_feature from the planner's estimate: the chunk choice needs the order of
    magnitude, and an exact count(*) of a 500M-row table would cost minutes per command."""
    estimate = conn.execute(
        "SELECT reltuples::bigint FROM pg_class WHERE oid = 'ccvec.image_feature'::regclass"
    ).fetchone()[0]
    if estimate is None or estimate < 0:  # never analysed: small enough to count
        return conn.execute("SELECT count(*) FROM ccvec.image_feature").fetchone()[0]
    return estimate


def configure(conn: psycopg.Connection, chunks: int | None = None, radius: int = DEFAULT_RADIUS) -> int:
    """(Re)build the chunk indexes for the current catalog size; returns the chunk count."""
    chunks = chunks or choose_chunks(max(feature_rows(conn), 1_000_000), radius)
    conn.execute("SELECT ccvec.configure_mih(%s, %s)", [chunks, MAX_MASKS])
    conn.commit()
    return chunks


def ensure_configured(conn: psycopg.Connection) -> None:
    """Configure on first use, and re-chunk when the catalog outgrew the layout tenfold."""
    row = conn.execute("SELECT rows_at_configure, cardinality(widths) FROM ccvec.mih_config").fetchone()
    if row is None or choose_chunks(max(feature_rows(conn), 1_000_000)) != row[1]:
        configure(conn)


def neighbours(conn: psycopg.Connection, phash: int, radius: int) -> list[tuple[uuid.UUID, int]]:
    """(identifier, distance) of every image within `radius` of `phash` (unsigned 64-bit)."""
    if not 0 <= radius <= 64:
        raise CcvecError(f"radius must be between 0 and 64, not {radius}")
    return conn.execute(
        "SELECT identifier, distance FROM ccvec.hamming_neighbours(%s, %s) ORDER BY distance, identifier",
        [to_signed(phash), radius],
    ).fetchall()


def phash_of(conn: psycopg.Connection, identifier: uuid.UUID) -> int:
    row = conn.execute("SELECT phash FROM ccvec.image_feature WHERE identifier = %s", [identifier]).fetchone()
    if row is None:
        raise CcvecError(f"no image {identifier} in ccvec.image_feature (was it loaded?)")
    return from_signed(row[0])


# ---------------------------------------------------------------- groups


def _parse_prefer(prefer: tuple[str, ...] | list[str]) -> list[str]:
    unknown = set(prefer) - PREFER_KEYS
    if unknown or not prefer:
        raise CcvecError(f"unknown canonical preference {sorted(unknown)}: use {sorted(PREFER_KEYS)}")
    return list(prefer)


def dedup(
    conn: psycopg.Connection,
    radius: int = DEFAULT_RADIUS,
    prefer: tuple[str, ...] = DEFAULT_PREFER,
    rebuild: bool = False,
    cosine: float | None = DEFAULT_COSINE,
    model: str = DEFAULT_MODEL,
    step: int = 2000,
    on_progress: Callable[[int, int], None] | None = None,
) -> int:
    """Group images without a group yet (all of them after a rebuild). Returns the run id.

    An image joins a canonical within `radius` pHash bits or, failing that, one whose embedding
    (from `model`) has cosine similarity >= `cosine` (None: pHash only). The settings of the last
    run stay in force: different settings rebuild. Each step commits, so an interrupted build
    resumes where it stopped.
    """
    prefer_list = _parse_prefer(prefer)
    if not 0 <= radius <= 64:
        raise CcvecError(f"radius must be between 0 and 64, not {radius}")
    if cosine is not None and not 0 < cosine <= 1:
        raise CcvecError(f"cosine threshold must be in (0, 1], not {cosine}")
    ensure_configured(conn)
    if cosine is not None:
        embedded = conn.execute(
            "SELECT count(*) FROM ccvec.image_embedding WHERE model = %s", [model]
        ).fetchone()[0]
        if embedded >= 2:
            from ccvec.graph import ensure_index

            ensure_index(conn, model)
    settings = (radius, cosine, model if cosine is not None else None, prefer_list)
    last = conn.execute(
        "SELECT radius, cosine, model, prefer FROM ccvec.duplicate_run ORDER BY id DESC LIMIT 1"
    ).fetchone()
    if rebuild or (last is not None and _same_settings(last, settings) is False):
        conn.execute("DELETE FROM ccvec.duplicate_member")
    run_id = conn.execute(
        "INSERT INTO ccvec.duplicate_run (radius, cosine, model, prefer) "
        "VALUES (%s, %s, %s, %s) RETURNING id",
        list(settings),
    ).fetchone()[0]
    conn.commit()
    todo = conn.execute(
        "SELECT count(*) FROM ccvec.image_feature f WHERE NOT EXISTS "
        "(SELECT 1 FROM ccvec.duplicate_member d WHERE d.identifier = f.identifier)"
    ).fetchone()[0]
    done = 0
    while done < todo:
        assigned = conn.execute("SELECT ccvec.assign_duplicates(%s, %s)", [run_id, step]).fetchone()[0]
        conn.commit()
        if assigned == 0:
            break
        done += assigned
        if on_progress:
            on_progress(done, todo)
    conn.execute("UPDATE ccvec.duplicate_run SET finished_at = now() WHERE id = %s", [run_id])
    conn.commit()
    return run_id


def _same_settings(last: tuple, settings: tuple) -> bool:
    radius, cosine, model, prefer = last
    same_cosine = (cosine is None and settings[1] is None) or (
        cosine is not None and settings[1] is not None and abs(cosine - settings[1]) < 1e-6
    )
    return radius == settings[0] and same_cosine and model == settings[2] and list(prefer) == settings[3]


@dataclass(frozen=True)
class GroupReport:
    images: int
    groups: int  # with more than one member
    duplicates: int  # members that are not canonical
    size_histogram: list[tuple[str, int]]
    largest: list[tuple[uuid.UUID, int, int]]  # (group id, size, max distance)


def report(conn: psycopg.Connection, top: int = 10) -> GroupReport:
    images = conn.execute("SELECT count(*) FROM ccvec.duplicate_member").fetchone()[0]
    groups, dupes = conn.execute(
        "SELECT count(*), coalesce(sum(size - 1), 0) FROM ccvec.duplicate_group"
    ).fetchone()
    histogram = conn.execute(
        "SELECT bucket, count(*) FROM (SELECT CASE WHEN size <= 5 THEN size::text "
        "WHEN size <= 10 THEN '6-10' WHEN size <= 100 THEN '11-100' ELSE '>100' END AS bucket, "
        "min(size) OVER (PARTITION BY 1) FROM ccvec.duplicate_group) g GROUP BY bucket "
        "ORDER BY min(length(bucket)), bucket"
    ).fetchall()
    largest = conn.execute(
        "SELECT group_id, size, max_distance FROM ccvec.duplicate_group "
        "ORDER BY size DESC, group_id LIMIT %s",
        [top],
    ).fetchall()
    return GroupReport(images, groups, int(dupes), histogram, largest)
