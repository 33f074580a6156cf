"""A/B tests of the clustering: experiments, event import, and the rank-stratified analysis.

Substitution itself happens in SQL, in the search request path: `ccvec.substitute(experiment,
session, query, result_ids)` returns the page to show and logs it in `ccvec.ab_served`. This module
imports the analytics events and compares click-through of substituted results with originals
shown at the same rank in the control arm (clicks depend strongly on rank). See docs/ab-testing.md.
"""

from __future__ import annotations

import csv
import json
import math
import uuid
from collections import defaultdict
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import LiteralString, NamedTuple, TypedDict

import psycopg
from scipy import stats

from ccvec import db
from ccvec.errors import CcvecError
from ccvec.sources import jsonl_rows

EVENT_TYPES = {
    "impression": "impression",
    "search_result_impression": "impression",
    "view": "impression",
    "click": "click",
    "select_search_result": "click",
    "result_click": "click",
}


def create(
    conn: psycopg.Connection,
    name: str,
    treatment_share: float,
    substitution_share: float,
    level: str = "default",
    salt: str | None = None,
) -> None:
    try:
        conn.execute(
            "SELECT ccvec.create_experiment(%s, %s, %s, %s, %s)",
            [name, salt or uuid.uuid4().hex, treatment_share, substitution_share, level],
        )
        conn.commit()
    except psycopg.errors.UniqueViolation as exc:
        conn.rollback()
        raise CcvecError(f"an experiment named {name!r} exists already") from exc


def stop(conn: psycopg.Connection, name: str) -> None:
    if not db.fetch_row(conn.execute("SELECT ccvec.stop_experiment(%s)", [name]), "stopping")[0]:
        raise CcvecError(f"no experiment named {name!r}")
    conn.commit()


# ---------------------------------------------------------------- import


@dataclass
class ImportResult:
    read: int = 0
    imported: int = 0
    duplicates: int = 0
    rejected: int = 0
    reasons: list[str] = field(default_factory=list)


def _rows(path: Path) -> Iterator[tuple[int, Mapping[str, object] | str]]:
    if path.suffix.lower() in (".jsonl", ".ndjson", ".json"):
        yield from jsonl_rows(path)
    elif path.suffix.lower() == ".csv":
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            for row in reader:
                yield reader.line_num, row
    else:
        raise CcvecError(f"{path}: analytics exports must be .csv or .jsonl")


class Event(NamedTuple):
    """One analytics event, in the column order of ccvec.ab_event."""

    event_type: str
    session: str
    query: str
    result_uuid: uuid.UUID
    result_rank: int
    occurred_at: datetime


def parse_event(raw: Mapping[str, object]) -> Event:
    """A CSV or JSON row as an Event; ValueError with a reason."""
    row = {str(k).strip().lower(): v for k, v in raw.items() if k is not None}
    kind = str(row.get("event_type") or row.get("type") or row.get("event") or "").strip().lower()
    if kind not in EVENT_TYPES:
        raise ValueError(f"unknown event type {kind!r} (expected impression or click)")
    session = str(row.get("session_uuid") or "").strip()
    if not session:
        raise ValueError("missing session_uuid")
    query = row.get("query")
    if query is None:
        raise ValueError("missing query")
    try:
        result = uuid.UUID(str(row.get("result_uuid")).strip())
    except ValueError:
        raise ValueError(f"result_uuid {row.get('result_uuid')!r} is not a UUID") from None
    try:
        rank = _whole(row.get("result_rank"))
    except (TypeError, ValueError):
        raise ValueError(f"result_rank {row.get('result_rank')!r} is not a whole number") from None
    if rank < 1:
        raise ValueError(f"result_rank must be >= 1, not {rank}")
    stamp = row.get("timestamp")
    try:
        when = (
            datetime.fromtimestamp(float(stamp))
            if isinstance(stamp, int | float)
            else datetime.fromisoformat(str(stamp).strip().replace("Z", "+00:00"))
        )
    except (TypeError, ValueError, OSError):
        raise ValueError(f"timestamp {stamp!r} is not ISO 8601 or epoch seconds") from None
    return Event(EVENT_TYPES[kind], session, str(query), result, rank, when)


def _whole(value: object) -> int:
    """int() of a CSV or JSON value; TypeError for what int() does not take (None, lists, objects)."""
    if not isinstance(value, str | int | float):
        raise TypeError(f"{type(value).__name__} is not a number")
    return int(value)


def import_events(conn: psycopg.Connection, experiment: str, path: Path) -> ImportResult:
    """Load an analytics export; malformed rows are rejected with reasons (in ccvec.load_error),
    and re-importing never double-counts (one row per distinct event)."""
    if not db.fetch_row(conn.execute("SELECT ccvec.experiment_exists(%s)", [experiment]), "experiment")[0]:
        raise CcvecError(f"no experiment named {experiment!r}")
    path = Path(path)
    if not path.is_file():
        raise CcvecError(f"{path}: no such file")
    result = ImportResult()
    with conn.transaction():
        for number, row in _rows(path):
            result.read += 1
            try:
                if isinstance(row, str):
                    raise ValueError(row)
                event = parse_event(row)
            except ValueError as exc:
                result.rejected += 1
                reason = f"{path}:{number}: {exc}"
                if len(result.reasons) < 10:
                    result.reasons.append(reason)
                conn.execute(
                    "SELECT ccvec.add_load_error(NULL, %s, 'ab-import', %s)",
                    [f"{path}:{number}", str(exc)],
                )
                continue
            inserted: int = db.fetch_row(
                conn.execute("SELECT ccvec.add_ab_event(%s, %s, %s, %s, %s, %s, %s)", [experiment, *event]),
                "importing an event",
            )[0]
            result.imported += inserted
            result.duplicates += 1 - inserted
    return result


# ---------------------------------------------------------------- analysis


@dataclass
class Stratum:
    rank: int
    substituted: int
    substituted_clicks: int
    control: int
    control_clicks: int

    @property
    def ctr_substituted(self) -> float:
        return self.substituted_clicks / self.substituted if self.substituted else float("nan")

    @property
    def ctr_control(self) -> float:
        return self.control_clicks / self.control if self.control else float("nan")


class ClusterValidity(TypedDict):
    """How one cluster's substituted mates did: clicks observed vs expected from control CTR."""

    cluster: int | None  # None when the original has no cluster (any more) at the experiment's level
    impressions: int
    clicks: int
    expected: float
    validity: float | None  # clicks / expected; None when nothing was expected


class _Tally(TypedDict):
    impressions: int
    clicks: int
    expected: float


@dataclass
class Report:
    experiment: str
    strata: list[Stratum]
    difference: float  # Mantel-Haenszel risk difference, substituted - control
    ci_low: float
    ci_high: float
    odds_ratio: float  # Mantel-Haenszel common odds ratio
    p_value: float  # Cochran-Mantel-Haenszel test (no continuity correction)
    clusters: list[ClusterValidity]
    alternates_clicked: int

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, default=str)


def mantel_haenszel(strata: list[Stratum], alpha: float = 0.05) -> tuple[float, float, float, float, float]:
    """(risk difference, CI low, CI high, common odds ratio, CMH p-value) over informative strata."""
    used = [s for s in strata if s.substituted and s.control]
    if not used:
        nan = float("nan")
        return nan, nan, nan, nan, nan
    weights, diffs, variances = [], [], []
    num_or = den_or = 0.0
    deviation = variance = 0.0
    for s in used:
        n1, n0 = s.substituted, s.control
        a, c = s.substituted_clicks, s.control_clicks
        b, d = n1 - a, n0 - c
        total = n1 + n0
        w = n1 * n0 / total
        p1, p0 = a / n1, c / n0
        weights.append(w)
        diffs.append(p1 - p0)
        variances.append(p1 * (1 - p1) / n1 + p0 * (1 - p0) / n0)
        num_or += a * d / total
        den_or += b * c / total
        clicks = a + c
        deviation += a - n1 * clicks / total
        if total > 1:
            variance += n1 * n0 * clicks * (total - clicks) / (total**2 * (total - 1))
    sw = sum(weights)
    rd = sum(w * x for w, x in zip(weights, diffs, strict=True)) / sw
    se = math.sqrt(sum(w * w * v for w, v in zip(weights, variances, strict=True))) / sw
    z = float(stats.norm.ppf(1 - alpha / 2))
    odds = num_or / den_or if den_or else float("inf")
    p = float(stats.chi2.sf(deviation**2 / variance, 1)) if variance > 0 else 1.0
    return rd, rd - z * se, rd + z * se, odds, p


def report(conn: psycopg.Connection, experiment: str) -> Report:
    if not db.fetch_row(conn.execute("SELECT ccvec.experiment_exists(%s)", [experiment]), "experiment")[0]:
        raise CcvecError(f"no experiment named {experiment!r}")
    rows = conn.execute(
        "SELECT * FROM ccvec.ab_strata(%s)",
        [experiment],
    ).fetchall()
    by_rank: dict[int, Stratum] = {}
    for rank, arm, substituted, n, clicks in rows:
        s = by_rank.setdefault(rank, Stratum(rank, 0, 0, 0, 0))
        if arm == "treatment" and substituted:
            s.substituted, s.substituted_clicks = n, clicks
        elif arm == "control":
            s.control, s.control_clicks = n, clicks
    strata = [by_rank[r] for r in sorted(by_rank)]
    rd, lo, hi, odds, p = mantel_haenszel(strata)
    return Report(
        experiment,
        strata,
        rd,
        lo,
        hi,
        odds,
        p,
        _clusters(conn, experiment, strata),
        _count(conn, "SELECT ccvec.ab_alternates_clicked()"),
    )


def _count(conn: psycopg.Connection, query: LiteralString) -> int:
    """The one number a `SELECT count(*)` returns."""
    row = conn.execute(query).fetchone()
    if row is None:  # an aggregate without GROUP BY always returns a row
        raise AssertionError(f"no row from {query}")
    return int(row[0])


def _clusters(conn: psycopg.Connection, experiment: str, strata: list[Stratum]) -> list[ClusterValidity]:
    """Per cluster: substituted clicks against what control CTR at the same ranks predicts.
    validity = observed / expected clicks: 1 means its mates are as good as the originals."""
    control_ctr = {s.rank: s.ctr_control for s in strata if s.control}
    per: defaultdict[int | None, _Tally] = defaultdict(lambda: _Tally(impressions=0, clicks=0, expected=0.0))
    for cluster, rank, clicked in conn.execute(
        "SELECT * FROM ccvec.ab_substituted_outcomes(%s)",
        [experiment],
    ):
        if rank not in control_ctr:
            continue
        entry = per[cluster]
        entry["impressions"] += 1
        entry["clicks"] += int(clicked)
        entry["expected"] += control_ctr[rank]
    out: list[ClusterValidity] = []
    for cluster, e in sorted(per.items(), key=lambda kv: -kv[1]["impressions"]):
        validity = e["clicks"] / e["expected"] if e["expected"] else None
        out.append(ClusterValidity(cluster=cluster, **e, validity=validity))
    return out


def sample_size(ctr: float, lift: float, alpha: float = 0.05, power: float = 0.8) -> int:
    """Impressions per group to detect a relative change `lift` of a click-through rate `ctr`
    (two-sided two-proportion z-test)."""
    p1, p2 = ctr, ctr * (1 + lift)
    if not 0 < p1 < 1 or not 0 < p2 < 1 or p1 == p2:
        raise CcvecError("need 0 < ctr < 1, 0 < ctr x (1 + lift) < 1 and lift != 0")
    bar = (p1 + p2) / 2
    za, zb = float(stats.norm.ppf(1 - alpha / 2)), float(stats.norm.ppf(power))
    n = (za * math.sqrt(2 * bar * (1 - bar)) + zb * math.sqrt(p1 * (1 - p1) + p2 * (1 - p2))) ** 2 / (
        p1 - p2
    ) ** 2
    return math.ceil(n)


def power_of(n: int, ctr: float, lift: float, alpha: float = 0.05, n_control: int | None = None) -> float:
    """Power of the same test with n substituted and n_control (default n) control impressions."""
    m = n_control or n
    p1, p2 = ctr, ctr * (1 + lift)
    bar = (m * p1 + n * p2) / (n + m)
    za = float(stats.norm.ppf(1 - alpha / 2))
    se_alt = math.sqrt(p1 * (1 - p1) / m + p2 * (1 - p2) / n)
    se_null = math.sqrt(bar * (1 - bar) * (1 / n + 1 / m))
    return float(stats.norm.sf((za * se_null - abs(p2 - p1)) / se_alt))
