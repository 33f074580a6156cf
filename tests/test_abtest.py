"""A/B testing: arms, substitution, event import, and the report against a hand computation."""

from __future__ import annotations

import json
import math
import uuid
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
    assert any("result_rank 'x' is not a whole number" in r for r in first.reasons)
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
