"""A/B tests of the clustering: experiments, event import, and the rank-stratified analysis.

Substitution itself happens in SQL, in the search request path: `ccvec.substitute(experiment,
session, query, result_ids)` returns the page to show and logs it in `ccvec.ab_served`. This module
imports the analytics events and compares click-through of substituted results with originals
shown at the same rank in the control arm (clicks depend strongly on rank). See docs/ab-testing.md.
"""

from __future__ import annotations

import json
import math
import re
import uuid
from collections import defaultdict
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import LiteralString, NamedTuple, TypedDict

import psycopg
from scipy import stats

from ccvec import db
from ccvec.errors import CcvecError, first_line
from ccvec.sources import (
    JSON,
    JSONObject,
    as_int,
    as_text,
    clean_text,
    csv_rows,
    jsonl_rows,
    require_file,
    show_value,
)

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
    unmatched: int = 0  # events of this experiment (this file's and earlier) matching nothing it served
    reasons: list[str] = field(default_factory=list)  # the first REASONS_SHOWN rejections


EVENT_COLUMNS = ("query", "result_uuid", "result_rank", "session_uuid", "timestamp")
KIND_COLUMNS = ("event_type", "type", "event")  # the event's kind, under any of these names
RANK_MAX = 2**31 - 1  # ab_event.result_rank is a Postgres integer
TEXT_MAX = 1000  # characters of a query or session id: ab_event and ab_served index them
REASONS_SHOWN = 10  # rejections printed one per line; ccvec.load_error (stage ab-import) has them all


def _event_header(columns: set[str]) -> str | None:
    missing = [c for c in EVENT_COLUMNS if c not in columns]
    if not set(KIND_COLUMNS) & columns:
        missing.append("event_type")
    return f"the header lacks {', '.join(missing)}" if missing else None


def _rows(path: Path) -> Iterator[tuple[int, JSONObject | str]]:
    if path.suffix.lower() in (".jsonl", ".ndjson", ".json"):
        yield from jsonl_rows(path)
    elif path.suffix.lower() == ".csv":
        yield from csv_rows(path, _event_header)
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


def parse_event(raw: Mapping[str, JSON]) -> Event:
    """A CSV or JSON row as an Event; ValueError with a reason. Text is cleaned as a manifest's is
    (NULs dropped, invalid characters to U+FFFD); a value of the wrong type is refused, not coerced."""
    row = {str(k).strip().lower(): v for k, v in raw.items() if k is not None}
    kinds = [row[c] for c in KIND_COLUMNS if row.get(c) is not None]
    missing = [c for c in EVENT_COLUMNS if row.get(c) is None] + ([] if kinds else ["event_type"])
    if missing:
        raise ValueError(f"missing {', '.join(missing)}")
    kind = _text("event_type", kinds[0]).lower()
    if kind not in EVENT_TYPES:
        raise ValueError(f"unknown event type {kind!r} (expected impression or click)")
    session = _text("session_uuid", row["session_uuid"])
    if not session:
        raise ValueError("empty session_uuid")
    try:
        result = uuid.UUID(_text("result_uuid", row["result_uuid"]))
    except ValueError:
        raise ValueError(f"result_uuid {show_value(row['result_uuid'])} is not a UUID") from None
    rank = as_int("result_rank", row["result_rank"])
    if not 1 <= rank <= RANK_MAX:
        raise ValueError(f"result_rank must be between 1 and {RANK_MAX}, not {rank}")
    query = _text("query", row["query"])
    for name, text in (("session_uuid", session), ("query", query)):
        if len(text) > TEXT_MAX:
            raise ValueError(f"{name} is {len(text):,} characters long, more than {TEXT_MAX:,}")
    return Event(EVENT_TYPES[kind], session, query, result, rank, _timestamp(row["timestamp"]))


def _text(name: str, value: JSON) -> str:
    """A text field, cleaned; numbers become text, anything else (lists, objects, booleans) is refused."""
    return clean_text(as_text(name, value).strip())[0]


def _timestamp(value: JSON) -> datetime:
    """ISO 8601 (no offset: UTC) or epoch seconds, as a number or as text; aware, in UTC."""
    try:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return datetime.fromtimestamp(float(value), tz=UTC)
        text = _text("timestamp", value)
        if _EPOCH.fullmatch(text):
            return datetime.fromtimestamp(float(text), tz=UTC)
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except (TypeError, ValueError, OverflowError, OSError):
        raise ValueError(f"timestamp {show_value(value)} is not ISO 8601 or epoch seconds") from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


_EPOCH = re.compile(r"[+-]?\d{1,12}(\.\d*)?")


def import_events(conn: psycopg.Connection, experiment: str, path: Path) -> ImportResult:
    """Load an analytics export; malformed rows are rejected with reasons (in ccvec.load_error,
    once however often the file is imported), and re-importing never double-counts (one row per
    distinct event). Every row is checked on its own: a bad row never costs a good one."""
    if not db.fetch_row(conn.execute("SELECT ccvec.experiment_exists(%s)", [experiment]), "experiment")[0]:
        raise CcvecError(f"no experiment named {experiment!r}")
    path = Path(path)
    require_file(path, "analytics export")
    result = ImportResult()
    with conn.transaction():
        for number, row in _rows(path):
            result.read += 1
            try:
                if isinstance(row, str):
                    raise ValueError(row)
                inserted = _add_event(conn, experiment, parse_event(row))
            except (ValueError, psycopg.DataError, psycopg.errors.ProgramLimitExceeded) as exc:
                _reject(conn, result, f"{path}:{number}", clean_text(first_line(exc))[0])
                continue
            result.imported += inserted
            result.duplicates += 1 - inserted
        result.unmatched = _count(conn, "SELECT ccvec.ab_unmatched_events(%s)", experiment)
    return result


def _add_event(conn: psycopg.Connection, experiment: str, event: Event) -> int:
    """1 if stored, 0 if there already. In a savepoint: whatever the checks missed costs one row."""
    with conn.transaction():
        row = conn.execute("SELECT ccvec.add_ab_event(%s, %s, %s, %s, %s, %s, %s)", [experiment, *event])
        return int(db.fetch_row(row, "importing an event")[0])


def _reject(conn: psycopg.Connection, result: ImportResult, where: str, reason: str) -> None:
    result.rejected += 1
    if len(result.reasons) < REASONS_SHOWN:
        result.reasons.append(f"{where}: {reason}")
    conn.execute("SELECT ccvec.add_ab_import_error(%s, %s)", [where, reason])


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
        """Strict JSON: a figure that does not exist yet (no rank both arms saw) is null, not NaN."""
        return json.dumps(_finite(asdict(self)), indent=2, default=str, allow_nan=False)


def _finite(value: object) -> object:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


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
        _count(conn, "SELECT ccvec.ab_alternates_clicked(%s)", experiment),
    )


def _count(conn: psycopg.Connection, query: LiteralString, experiment: str) -> int:
    """The one number a counting function of `experiment` returns."""
    row = conn.execute(query, [experiment]).fetchone()
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
    if not 0 < alpha < 1 or not 0 < power < 1:
        raise CcvecError(f"need 0 < alpha < 1 and 0 < power < 1, not alpha {alpha} and power {power}")
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
