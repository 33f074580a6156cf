"""Popularity and authority in [0, 1]: the refresh that recomputes them, in order, and the loader
for Common Crawl's web-graph ranks. The formulas are SQL in `sql/0005_scores.up.sql`; see
docs/scores.md for what each number means.
"""

from __future__ import annotations

import gzip
import math
import re
import shlex
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import psycopg

from ccvec import db
from ccvec.errors import CcvecError
from ccvec.sources import require_file

HOST_HEADER = ["#harmonicc_pos", "#harmonicc_val", "#pr_pos", "#pr_val", "#host_rev"]
DOMAIN_HEADER = [*HOST_HEADER, "#n_hosts"]
MAX_REPORTED_BAD_LINES = 5
MAX_HOST_NAME = 253  # a DNS name's length limit (RFC 1035); the reversed form is as long
BIGINT_MAX = 2**63 - 1
WHOLE_NUMBER = re.compile(r"[0-9]+")
DECIMAL = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")

Stage = Callable[[str, float], None]  # (stage name, seconds) after each stage


# ---------------------------------------------------------------- Common Crawl ranks


@dataclass
class RanksLoad:
    kind: str
    rows: int
    bad_lines: int
    examples: list[str]
    seconds: float


def _kind_of(header: list[str], path: Path) -> str:
    if header == DOMAIN_HEADER:
        return "domain"
    if header == HOST_HEADER:
        return "host"
    raise CcvecError(
        f"{path}: not a Common Crawl ranks file: the first line must be {' '.join(HOST_HEADER)} "
        f"(domain files add #n_hosts), found {' '.join(header)[:120]!r}"
    )


def _open_text(path: Path) -> TextIO:
    with open(path, "rb") as probe:
        gzipped = probe.read(2) == b"\x1f\x8b"
    return (
        gzip.open(path, "rt", encoding="utf-8", errors="replace")
        if gzipped
        else open(path, encoding="utf-8", errors="replace")
    )


def load_ranks(
    conn: psycopg.Connection, path: Path, on_progress: Callable[[int, int], None] | None = None
) -> RanksLoad:
    """Stream a host- or domain-ranks file into ccvec.web_rank, replacing that kind's release.

    Constant memory: lines go straight from gzip into COPY. One transaction: readers see the old
    release until the new one is complete. Malformed lines are skipped, counted and reported.
    """
    path = Path(path)
    require_file(path, "ranks file")
    started = time.perf_counter()
    total_bytes = path.stat().st_size
    examples: list[str] = []
    bad, rows, max_pos = 0, 0, 0
    try:
        with _open_text(path) as text:
            header = text.readline().rstrip("\n").split("\t")
            kind = _kind_of(header, path)
            width = len(header)
            raw = getattr(text.buffer, "fileobj", text.buffer)  # compressed bytes read, for progress
            with conn.transaction():
                conn.execute("SELECT ccvec.web_rank_clear(%s)", [kind])
                with conn.cursor().copy(
                    "COPY ccvec.web_rank (kind, harmonic_pos, harmonic_val, pr_pos, pr_val, host_rev, "
                    "n_hosts) FROM STDIN"
                ) as copy:
                    for number, line in enumerate(text, start=2):
                        values = _parse_ranks_line(line.rstrip("\n").split("\t"), width)
                        if isinstance(values, str):
                            bad += 1
                            if len(examples) < MAX_REPORTED_BAD_LINES:
                                examples.append(f"line {number}: {values}")
                            continue
                        copy.write_row([kind, *values, *([None] if width == 5 else [])])
                        rows += 1
                        max_pos = max(max_pos, int(values[0]))
                        if on_progress and rows % 100_000 == 0:
                            on_progress(raw.tell(), total_bytes)
                if rows == 0:
                    raise CcvecError(f"{path}: no valid rows; the release in the database was kept")
                conn.execute(
                    "SELECT ccvec.web_rank_record_release(%s, %s, %s, %s)", [kind, str(path), rows, max_pos]
                )
    except (OSError, EOFError, gzip.BadGzipFile) as exc:
        raise CcvecError(f"{path}: cannot read ({exc}); the release in the database was kept") from exc
    except psycopg.errors.UniqueViolation as exc:
        raise CcvecError(f"{path}: {_repeated_host(exc)}; the release in the database was kept") from None
    return RanksLoad(kind, rows, bad, examples, time.perf_counter() - started)


def _repeated_host(exc: psycopg.errors.UniqueViolation) -> str:
    """A host listed twice: a release lists each host once, so the file is damaged or two files were
    joined; finding it needs no memory per host, only the primary key that refused it."""
    found = re.search(r"=\(\w+, (.*)\) already exists", exc.diag.message_detail or "")
    name = repr(found.group(1)[:MAX_HOST_NAME]) if found else "a host name"
    return f"{name} is listed twice (a release lists each host once: a damaged or concatenated file)"


def _parse_ranks_line(fields: list[str], width: int) -> list[int | float | str] | str:
    """A ranks line's values, or why it cannot be loaded. Everything the database would refuse is
    caught here, so one bad line is skipped and reported instead of failing the release's COPY."""
    if len(fields) != width:
        return f"{len(fields)} fields, expected {width}"
    values: list[int | float | str] = []
    for i, text in enumerate(fields[:4]):
        value = _position(text, i) if i in (0, 2) else _finite(text, i)
        if isinstance(value, str):
            return value
        values.append(value)
    if problem := _host_problem(fields[4]):
        return problem
    values.append(fields[4])
    if width == 6:
        if not WHOLE_NUMBER.fullmatch(fields[5]) or int(fields[5]) > BIGINT_MAX:
            return f"field 6 is not a whole number up to {BIGINT_MAX}: {fields[5][:30]!r}"
        values.append(int(fields[5]))
    return values


def _position(text: str, i: int) -> int | str:
    """A rank position: Common Crawl counts from 1, and the column is a bigint."""
    if not WHOLE_NUMBER.fullmatch(text):
        return f"field {i + 1} is not a whole number: {text[:30]!r}"
    if not 1 <= int(text) <= BIGINT_MAX:
        return f"field {i + 1} is out of range: a position is a whole number from 1 to {BIGINT_MAX}"
    return int(text)


def _finite(text: str, i: int) -> float | str:
    """A rank value: an ASCII decimal (float() also takes non-ASCII digits and '1_0'; Postgres does not)."""
    if not DECIMAL.fullmatch(text):
        return f"field {i + 1} is not a number: {text[:30]!r}"
    value = float(text)
    return value if math.isfinite(value) else f"field {i + 1} is not a finite number: {text[:30]!r}"


def _host_problem(host: str) -> str | None:
    """Why a (reversed) host name is unusable: its index entry must fit, and text cannot hold NUL."""
    if not host or "\\" in host:
        return "empty or unusable host name"
    if len(host) > MAX_HOST_NAME:
        return f"host name of {len(host):,} characters: a DNS name has at most {MAX_HOST_NAME}"
    if any(c.isspace() or not c.isprintable() for c in host):
        return "host name with a space or control character"
    return None


# ---------------------------------------------------------------- the refresh

Work = Callable[[psycopg.Connection], object]  # one refresh stage, on the connection given
Chain = list[tuple[str, Work]]  # stages that must run in this order
StageRunner = Callable[[psycopg.Connection, str, Work], None]


@dataclass(frozen=True)
class _Plan:
    """The refresh's stages after the constants: `popularity` on the caller's connection, then,
    once `authority` is done, `scores`; `authority` and `tags` each on a connection of its own."""

    popularity: Chain
    authority: Chain
    tags: Chain
    scores: Chain

    def __len__(self) -> int:
        return 1 + sum(map(len, (self.popularity, self.authority, self.tags, self.scores)))  # 1: constants


def _plan(conn: psycopg.Connection, cold: bool) -> _Plan:
    from ccvec import graph, visualrank

    current = graph.current(conn)
    authority: Chain = [("web authority", lambda c: db.refresh_view(c, "web_authority"))]
    if current is not None:
        # streamed out (UUID pairs, mapped in numpy) and back by COPY: bench/visualrank.py
        authority.insert(0, ("visualrank", lambda c: visualrank.visualrank(c, current.id)))
    return _Plan(
        popularity=[
            ("observed popularity", lambda c: db.refresh_view(c, "observed_popularity")),
            ("neighbourhood popularity", lambda c: db.refresh_view(c, "neighbourhood_popularity")),
        ],
        authority=authority,
        tags=graph.tags_novelty_names(changed_only=not cold),
        scores=[
            ("image scores", lambda c: db.refresh_view(c, "image_score")),
            ("cluster mates (A/B)", lambda c: db.refresh_view(c, "cluster_mate")),
        ],
    )


def refresh_stage_count(conn: psycopg.Connection) -> int:
    """How many stages refresh() will report: a progress bar's total (VisualRank needs a graph)."""
    return len(_plan(conn, cold=False))


def refresh(conn: psycopg.Connection, on_stage: Stage | None = None, cold: bool = False) -> dict[str, float]:
    """Recompute everything, in dependency order; idempotent. Returns seconds per stage.

    Incremental by default: only new or changed catalog rows are parsed again (ccvec.score_input),
    VisualRank starts from the previous ranks, and reference sets score only images not scored
    yet. The global steps (constants, percentiles, the views) are recomputed whole, so the result
    is the same as a cold refresh (docs/scores.md). `cold` forgets the cached inputs and the
    previous ranks first, and rescores every image against every reference set.

    After the constants, three chains that read nothing of one another run at once: popularity on
    `conn`, then the image scores once the authority inputs (VisualRank, web authority) are done;
    the authority inputs, and the tags, novelty and cluster labels, each on a new connection to the
    same database (same parameters; session settings made on `conn`, such as SET ROLE, are not
    carried over). Stages overlap, so the refresh takes about its longest chain, not the sum of
    its stages (docs/benchmarks.md, "Score refresh").
    """
    timings: dict[str, float] = {}
    reporting = threading.Lock()  # on_stage is called from every chain, one call at a time

    def stage(on: psycopg.Connection, name: str, work: Work) -> None:
        start = time.perf_counter()
        work(on)
        on.commit()
        with reporting:
            timings[name] = time.perf_counter() - start
            if on_stage:
                on_stage(name, timings[name])

    # alone: two at once deadlock on the tables they replace, and stages reading a catalog that a
    # load is filling see it at different moments (an image scored with no authority)
    with db.job(conn, "catalog", "refresh"):
        _refresh(conn, stage, cold)
    return timings


def _refresh(conn: psycopg.Connection, stage: StageRunner, cold: bool) -> None:
    """refresh() once it is the only one running."""
    # what the scores read as of now: a change drawn after this (a graph add beside the refresh)
    # leaves them stale for the next `ccvec run` (ccvec.scores_stale)
    started_at_change = db.one_row(conn, "SELECT ccvec.input_changes_settled()")[0]
    conn.commit()  # the SHARE locks it took
    if cold:
        conn.execute("SELECT ccvec.score_inputs_forget()")
    # the constants first bring ccvec.score_input up to date: only new or changed rows are parsed
    stage(
        conn, "changed images, constants", lambda c: c.execute("SELECT ccvec.refresh_popularity_constants()")
    )
    plan = _plan(conn, cold)
    with _beside(conn, [plan.authority, plan.tags], stage) as (authority_done, _):
        for name, work in plan.popularity:
            stage(conn, name, work)
        authority_done.result()
        for name, work in plan.scores:
            stage(conn, name, work)
    conn.execute("SELECT ccvec.refresh_finished(%s)", [started_at_change])
    conn.commit()


@contextmanager
def _beside(
    conn: psycopg.Connection, chains: list[Chain], stage: StageRunner
) -> Iterator[list[Future[None]]]:
    """Run each chain, its stages in order, on a connection of its own while the body runs on
    `conn` (db.alongside); yields one future per chain. A chain that fails stops the others at
    their next stage; an error in the body (Ctrl-C too) also cancels the statements they run."""
    stop = threading.Event()

    def runner(chain: Chain) -> Callable[[psycopg.Connection], None]:
        def run(on: psycopg.Connection) -> None:
            for name, work in chain:
                if stop.is_set():
                    return
                stage(on, name, work)

        return run

    with db.alongside(conn, [runner(chain) for chain in chains], stop) as futures:
        yield futures


# ---------------------------------------------------------------- explaining one image


UNMETERED_SAMPLE = 1_000  # images looked at per provider without a metric, for metric-like keys


def unmetered(conn: psycopg.Connection) -> list[str]:
    """One line per provider whose images carry a metric no popularity row counts for it (the
    refresh would ignore it in silence), saying how to count it."""
    rows = conn.execute("SELECT * FROM ccvec.unmetered_metrics(%s)", [UNMETERED_SAMPLE]).fetchall()
    conn.commit()
    return [
        f"provider {provider!r}: {images:,} of {sampled:,} images looked at carry meta_data {metric!r}, "
        f"which no popularity metric counts for it: `ccvec popularity metric {shlex.quote(provider)} "
        f"{shlex.quote(metric)}` counts it"
        for provider, metric, images, sampled in rows
    ]


def set_metric(conn: psycopg.Connection, provider: str, metric: str, percentile: float) -> None:
    """Count `provider`'s meta_data key `metric` as its popularity (ccvec.set_popularity_metric)."""
    conn.execute("SELECT ccvec.set_popularity_metric(%s, %s, %s)", [provider, metric, percentile])
    conn.commit()


def explain(conn: psycopg.Connection, identifier: uuid.UUID) -> dict[str, Any]:
    """Every number behind one image's popularity and authority, for `ccvec scores`."""
    score = conn.execute("SELECT * FROM ccvec.explain_score(%s)", [identifier]).fetchone()
    if score is None:
        raise CcvecError(f"no scores for {identifier}: is it in the catalog, and has `ccvec refresh` run?")
    keys = ("popularity", "provenance", "support", "authority", "visual", "domain", "prior", "web_source")
    out = dict(zip(keys, score, strict=True))
    out["catalog"] = conn.execute("SELECT * FROM ccvec.explain_catalog(%s)", [identifier]).fetchone()
    out["metric"] = conn.execute("SELECT * FROM ccvec.explain_metric(%s)", [identifier]).fetchone()
    out["neighbours"] = conn.execute("SELECT * FROM ccvec.explain_neighbours(%s)", [identifier]).fetchall()
    out["visualrank"] = conn.execute("SELECT * FROM ccvec.explain_visualrank(%s)", [identifier]).fetchone()
    out["host"] = conn.execute("SELECT * FROM ccvec.explain_host(%s)", [identifier]).fetchone()
    out["novelty"] = conn.execute("SELECT * FROM ccvec.explain_novelty(%s)", [identifier]).fetchall()
    return out
