"""A/B testing: arms, substitution, event import, and the report against a hand computation."""

from __future__ import annotations

import json
import math
import uuid
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest

from ccvec import abtest, scores
from ccvec.errors import CcvecError


def current_cluster_run(conn: psycopg.Connection) -> tuple[int, int]:
    """(kNN run, cluster run): an empty cluster run on a current kNN run of a hand-made model."""
    conn.execute(
        "INSERT INTO ccvec.model (name, version, onnx_sha256, dim, spec) VALUES ('m', '1', 'x', 3, '{}')"
    )
    knn = conn.execute(
        "INSERT INTO ccvec.knn_run (model, k, ef_search, is_current) VALUES ('m', 2, 40, true) RETURNING id"
    ).fetchone()[0]
    run = conn.execute(
        "INSERT INTO ccvec.cluster_run (knn_run, method, sim, threshold) "
        "VALUES (%s, 'hand', 0.5, 0.5) RETURNING id",
        [knn],
    ).fetchone()[0]
    return knn, run


@pytest.fixture()
def clustered(conn: psycopg.Connection) -> list[list[uuid.UUID]]:
    """30 images in 5 clusters of 6, labelled as a current cluster run, scored."""
    knn, run = current_cluster_run(conn)
    clusters = [[uuid.uuid4() for _ in range(6)] for _ in range(5)]
    for c, members in enumerate(clusters):
        for i, ident in enumerate(members):
            conn.execute(
                "INSERT INTO ccvec.image (identifier, url, provider, meta_data) "
                "VALUES (%s, %s, 'flickr', %s)",
                [ident, f"https://x/{ident}", json.dumps({"views": 10 * (6 - i)})],
            )
            conn.execute("INSERT INTO ccvec.cluster_member VALUES (%s, %s, %s)", [run, ident, c])
            conn.execute(
                "INSERT INTO ccvec.knn_edge VALUES (%s, %s, %s, 1, 0.9)", [knn, ident, members[(i + 1) % 6]]
            )
    conn.commit()
    scores.refresh(conn)
    return clusters


def page(conn, experiment: str, session: str, query: str, results: list[uuid.UUID]) -> list[tuple]:
    return conn.execute(
        "SELECT * FROM ccvec.substitute(%s, %s, %s, %s)", [experiment, session, query, results]
    ).fetchall()


def test_arm_assignment_is_deterministic_and_proportional(conn: psycopg.Connection) -> None:
    current_cluster_run(conn)
    abtest.create(conn, "arms", treatment_share=0.3, substitution_share=0.5, salt="s1")
    arms = [
        conn.execute("SELECT ccvec.assign_arm('arms', %s)", [f"session-{i}"]).fetchone()[0]
        for i in range(2000)
    ]
    again = [
        conn.execute("SELECT ccvec.assign_arm('arms', %s)", [f"session-{i}"]).fetchone()[0]
        for i in range(2000)
    ]
    assert arms == again
    share = arms.count("treatment") / len(arms)
    assert abs(share - 0.3) < 3 * math.sqrt(0.3 * 0.7 / 2000)
    abtest.stop(conn, "arms")
    assert conn.execute("SELECT ccvec.assign_arm('arms', 'session-1')").fetchone()[0] == "control"


def test_substitution_only_in_treatment_and_never_duplicates(conn: psycopg.Connection, clustered) -> None:
    abtest.create(conn, "sub", treatment_share=0.5, substitution_share=0.5, salt="s2")
    results = [clustered[c][i] for i in range(3) for c in range(5)]  # 15 results, 3 per cluster
    treated = controlled = substituted = 0
    for s in range(60):
        rows = page(conn, "sub", f"sess-{s}", "cats", results)
        assert [r[0] for r in rows] == list(range(1, 16))
        assert [r[2] for r in rows] == results
        shown = [r[1] for r in rows]
        assert len(set(shown)) == len(shown)  # no duplicate identifiers on a page
        arm = rows[0][3]
        if arm == "control":
            controlled += 1
            assert shown == results and not any(r[4] for r in rows)
        else:
            treated += 1
            for _, sh, orig, _, sub in rows:
                if sub:
                    substituted += 1
                    cluster = next(c for c in clustered if orig in c)
                    assert sh in cluster and sh not in results
        assert rows == page(conn, "sub", f"sess-{s}", "cats", results)  # deterministic
    assert treated and controlled and substituted
    served = conn.execute("SELECT count(*) FROM ccvec.ab_served WHERE experiment = 'sub'").fetchone()[0]
    assert served == 60 * 15


def test_best_scored_mate_is_chosen(conn: psycopg.Connection, clustered) -> None:
    abtest.create(conn, "best", treatment_share=1.0, substitution_share=1.0, salt="s3")
    rows = page(conn, "best", "s", "q", [clustered[0][5]])
    assert rows[0][1] == clustered[0][0] and rows[0][4]  # most views in its cluster


def test_import_is_idempotent_and_rejects_bad_rows(conn: psycopg.Connection, tmp_path: Path) -> None:
    current_cluster_run(conn)
    abtest.create(conn, "imp", 0.5, 0.5)
    good = {
        "query": "cat",
        "result_uuid": str(uuid.uuid4()),
        "result_rank": 2,
        "session_uuid": "s1",
        "timestamp": "2026-11-01T10:00:00Z",
        "event_type": "SELECT_SEARCH_RESULT",
    }
    rows = [
        good,
        {**good, "event_type": "impression"},
        {**good, "result_rank": "x"},
        {**good, "result_uuid": "nope"},
        {**good, "event_type": "hover"},
        {**good, "timestamp": "yesterday"},
    ]
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n{oops\n")
    first = abtest.import_events(conn, "imp", path)
    assert (first.read, first.imported, first.duplicates, first.rejected) == (7, 2, 0, 5)
    assert any("column result_rank is not an integer: 'x'" in r for r in first.reasons)
    assert any("unknown event type 'hover'" in r for r in first.reasons)
    second = abtest.import_events(conn, "imp", path)
    assert (second.imported, second.duplicates) == (0, 2)
    assert conn.execute("SELECT count(*) FROM ccvec.ab_event").fetchone()[0] == 2
    csv_path = tmp_path / "events.csv"
    csv_path.write_text(
        "query,result_uuid,result_rank,session_uuid,timestamp,event_type\n"
        f"cat,{good['result_uuid']},2,s1,2026-11-01T10:00:00+00:00,click\n"
    )
    assert abtest.import_events(conn, "imp", csv_path).duplicates == 1  # same event, other format


def test_report_matches_hand_computation(conn: psycopg.Connection) -> None:
    """Two ranks. Rank 1: substituted 4 shown / 2 clicked, control 5 / 1. Rank 2: 3 / 0 vs 4 / 2."""
    current_cluster_run(conn)
    abtest.create(conn, "hand", 0.5, 0.5)
    layout = {
        1: [("treatment", True, 2, 4), ("control", False, 1, 5)],
        2: [("treatment", True, 0, 3), ("control", False, 2, 4)],
    }
    n = 0
    for rank, groups in layout.items():
        for arm, sub, clicks, shown in groups:
            for i in range(shown):
                n += 1
                ident = uuid.uuid4()
                conn.execute(
                    "INSERT INTO ccvec.ab_served VALUES ('hand', %s, 'q', %s, %s, %s, %s, %s, now())",
                    [f"s{n}", rank, ident, ident, arm, sub],
                )
                if i < clicks:
                    conn.execute(
                        "INSERT INTO ccvec.ab_event (experiment, event_type, session, query, result_uuid, "
                        "result_rank, occurred_at) VALUES ('hand', 'click', %s, 'q', %s, %s, now())",
                        [f"s{n}", ident, rank],
                    )
    conn.commit()
    r = abtest.report(conn, "hand")
    # by hand: weights w1 = 4*5/9 = 20/9, w2 = 3*4/7 = 12/7
    w1, w2 = 20 / 9, 12 / 7
    rd = (w1 * (2 / 4 - 1 / 5) + w2 * (0 / 3 - 2 / 4)) / (w1 + w2)
    assert r.difference == pytest.approx(rd, abs=1e-12)
    # CMH: expected substituted clicks 4*3/9 and 3*2/7; variances 4*5*3*6/(81*8), 3*4*2*5/(49*6)
    deviation = (2 - 12 / 9) + (0 - 6 / 7)
    variance = 360 / 648 + 120 / 294
    from scipy.stats import chi2

    assert r.p_value == pytest.approx(chi2.sf(deviation**2 / variance, 1), abs=1e-12)
    # MH odds ratio: (2*4/9 + 0*2/7) / (2*1/9 + 3*2/7)
    assert r.odds_ratio == pytest.approx((8 / 9) / (2 / 9 + 6 / 7), abs=1e-12)
    assert r.ci_low < r.difference < r.ci_high
    assert [(s.rank, s.substituted, s.substituted_clicks, s.control, s.control_clicks) for s in r.strata] == [
        (1, 4, 2, 5, 1),
        (2, 3, 0, 4, 2),
    ]


def test_power_calculator_round_trips() -> None:
    n = abtest.sample_size(0.05, -0.1)
    assert 25_000 < n < 32_000
    assert abtest.power_of(n, 0.05, -0.1) == pytest.approx(0.8, abs=0.01)
    with pytest.raises(CcvecError):
        abtest.sample_size(0.05, 0)


def test_report_needs_no_refresh(conn: psycopg.Connection, cli) -> None:
    """`ccvec experiment report` reads the served positions, the imported clicks and the current
    clusters: with ccvec.cluster_mate never refreshed (as after `ccvec db upgrade`) it still reports,
    per-cluster validity included (it failed with "cluster_mate has not been populated")."""
    _, run = current_cluster_run(conn)
    members = [uuid.uuid4() for _ in range(4)]
    for ident in members:
        conn.execute("INSERT INTO ccvec.cluster_member VALUES (%s, %s, 7)", [run, ident])
    abtest.create(conn, "fresh", 0.5, 0.5)
    # rank 1: a substituted position (mate members[1] shown for members[0]), clicked; two control
    # positions, one clicked
    served = [
        ("s1", members[1], members[0], "treatment", True),
        ("s2", members[2], members[2], "control", False),
        ("s3", members[3], members[3], "control", False),
    ]
    for session, shown, original, arm, substituted in served:
        conn.execute(
            "INSERT INTO ccvec.ab_served VALUES ('fresh', %s, 'q', 1, %s, %s, %s, %s, now())",
            [session, shown, original, arm, substituted],
        )
    for session, shown in (("s1", members[1]), ("s2", members[2])):
        conn.execute(
            "INSERT INTO ccvec.ab_event (experiment, event_type, session, query, result_uuid, result_rank, "
            "occurred_at) VALUES ('fresh', 'click', %s, 'q', %s, 1, now())",
            [session, shown],
        )
    conn.execute("REFRESH MATERIALIZED VIEW ccvec.cluster_mate WITH NO DATA")
    conn.commit()
    r = abtest.report(conn, "fresh")
    strata = [(s.substituted, s.substituted_clicks, s.control, s.control_clicks) for s in r.strata]
    assert strata == [(1, 1, 2, 1)]
    validity = [(c["cluster"], c["impressions"], c["clicks"], c["validity"]) for c in r.clusters]
    assert validity == [(7, 1, 1, 2.0)]  # 1 click observed, 1 x control CTR 0.5 expected
    shown = cli("experiment", "report", "fresh")
    assert shown.exit_code == 0, shown.stderr
    assert "cluster 7: 2.00 (1 shown)" in shown.stdout


def test_import_survives_hostile_rows(conn: psycopg.Connection, tmp_path: Path) -> None:
    """Every row on its own: NULs and bytes that are not UTF-8 are cleaned as in a manifest, wrong
    types and numbers out of range are refused with a reason, and the good rows all land."""
    current_cluster_run(conn)
    abtest.create(conn, "hostile", 0.5, 0.5)
    ident = uuid.uuid4()
    head = b"query,result_uuid,result_rank,session_uuid,timestamp,event_type\n"
    rows = [
        b"se\x00a,%s,1,s1,2026-11-30T09:21:00Z,click",  # NUL: dropped
        b"caf\xff\xfe,%s,1,s2,2026-11-30T09:21:00Z,click",  # not UTF-8: U+FFFD
        b"red cat,%s,2,s3,1764500000,click",  # epoch seconds as text
        b"big,%s,99999999999999999999,s4,2026-11-30T09:21:00Z,click",
        b"q" * 2_000_000 + b",%s,1,s5,2026-11-30T09:21:00Z,click",
        b"naive,%s,1,s6,2026-11-30 09:21:00,click",  # no offset: UTC
    ]
    path = tmp_path / "events.csv"
    path.write_bytes(head + b"\n".join(r.replace(b"%s", str(ident).encode()) for r in rows) + b"\n")
    result = abtest.import_events(conn, "hostile", path)
    assert (result.read, result.imported, result.rejected) == (6, 4, 2), result
    reasons = " | ".join(result.reasons)
    assert "events.csv:5: column result_rank is not an integer" in reasons
    assert "events.csv:6: query is 2,000,000 characters long, more than 1,000" in reasons
    stored = dict(conn.execute("SELECT session, query FROM ccvec.ab_event").fetchall())
    assert stored["s1"] == "sea" and stored["s2"] == "caf\ufffd\ufffd"
    when = dict(conn.execute("SELECT session, occurred_at FROM ccvec.ab_event").fetchall())
    assert when["s3"].timestamp() == 1764500000
    assert when["s6"] == datetime(2026, 11, 30, 9, 21, tzinfo=UTC)
    assert result.unmatched == 4  # nothing was served in this experiment
    jsonl = tmp_path / "events.jsonl"
    good = {
        "query": "q",
        "result_uuid": str(ident),
        "result_rank": 1,
        "session_uuid": "s",
        "timestamp": 1764500000,
        "event_type": "click",
    }
    bad = [
        {"result_rank": True},
        {"result_rank": 10**30},
        {"query": {"a": 1}},
        {"timestamp": 1e20},
        {"event_type": None},
        {"session_uuid": "  "},
    ]
    jsonl.write_text("\n".join(json.dumps({**good, **b}) for b in bad) + "\n")
    again = abtest.import_events(conn, "hostile", jsonl)
    assert (again.imported, again.rejected) == (0, 6), again
    reasons = " | ".join(again.reasons)
    for expected in (
        "must be an integer, got a boolean",
        "result_rank is out of range",
        "column query must be text, got dict",
        "timestamp 1e+20 is not ISO 8601",
        "missing event_type",
        "empty session_uuid",
    ):
        assert expected in reasons, (expected, reasons)
    recorded = "SELECT count(*) FROM ccvec.load_error WHERE stage = 'ab-import'"
    assert conn.execute(recorded).fetchone()[0] == 8
    abtest.import_events(conn, "hostile", jsonl)  # the same rejections are not recorded twice
    assert conn.execute(recorded).fetchone()[0] == 8


def test_import_refuses_a_header_without_the_columns(conn: psycopg.Connection, tmp_path: Path) -> None:
    current_cluster_run(conn)
    abtest.create(conn, "header", 0.5, 0.5)
    path = tmp_path / "events.csv"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(CcvecError, match="the header lacks query, result_uuid, result_rank, session_uuid"):
        abtest.import_events(conn, "header", path)
    with pytest.raises(CcvecError, match="is a folder, not an analytics export"):
        abtest.import_events(conn, "header", tmp_path)
    with pytest.raises(CcvecError, match=r"gone\.csv: no such analytics export"):
        abtest.import_events(conn, "header", tmp_path / "gone.csv")


def test_substitute_passes_nulls_through(conn: psycopg.Connection, clustered) -> None:
    """A NULL among the results stays NULL at its rank, unlogged, and does not stop the other
    positions from being substituted (it used to fail the whole page)."""
    abtest.create(conn, "nulls", treatment_share=1.0, substitution_share=1.0, salt="s4")
    rows = page(conn, "nulls", "s", "q", [clustered[0][5], None, clustered[1][5]])
    assert [r[0] for r in rows] == [1, 2, 3]
    assert rows[1][1:3] == (None, None) and not rows[1][4]
    assert rows[0][4] and rows[2][4]  # both real positions substituted
    logged = conn.execute("SELECT rank FROM ccvec.ab_served WHERE experiment = 'nulls' ORDER BY rank")
    assert [r[0] for r in logged] == [1, 3]


def test_create_refuses_a_level_without_clusters(conn: psycopg.Connection) -> None:
    with pytest.raises(psycopg.Error, match="no clusters at level 'default': run `ccvec cluster` first"):
        abtest.create(conn, "early", 0.5, 0.5)
    conn.rollback()
    current_cluster_run(conn)
    with pytest.raises(psycopg.Error, match="no clusters at level 'nosuch': the levels are default"):
        abtest.create(conn, "typo", 0.5, 0.5, level="nosuch")
    conn.rollback()
    current_cluster_run(conn)
    with pytest.raises(psycopg.Error, match="an experiment needs a name"):
        abtest.create(conn, " ", 0.5, 0.5)


def test_report_counts_this_experiments_alternates_only(conn: psycopg.Connection) -> None:
    current_cluster_run(conn)
    for name in ("one", "two"):
        abtest.create(conn, name, 0.5, 0.5)
    for name, clicked in (("one", 1), ("two", 3)):
        for i in range(clicked):
            ident = uuid.uuid4()
            conn.execute(
                "INSERT INTO ccvec.ab_served VALUES (%s, %s, 'q', 1, %s, %s, 'treatment', true, now())",
                [name, f"s{i}", ident, uuid.uuid4()],
            )
            conn.execute(
                "INSERT INTO ccvec.ab_event (experiment, event_type, session, query, result_uuid, "
                "result_rank, occurred_at) VALUES (%s, 'click', %s, 'q', %s, 1, now())",
                [name, f"s{i}", ident],
            )
    conn.commit()
    assert (abtest.report(conn, "one").alternates_clicked, abtest.report(conn, "two").alternates_clicked) == (
        1,
        3,
    )
    only_treatment = abtest.report(conn, "two")  # no control impressions: nothing to compare yet
    assert math.isnan(only_treatment.difference)
    assert json.loads(only_treatment.to_json())["difference"] is None  # strict JSON: null, not NaN


def test_power_refuses_impossible_levels() -> None:
    for alpha, power in ((0, 0.8), (1, 0.8), (-1, 0.8), (0.05, 1), (0.05, 0), (0.05, 1.5)):
        with pytest.raises(CcvecError, match="need 0 < alpha < 1 and 0 < power < 1"):
            abtest.sample_size(0.05, -0.1, alpha, power)
