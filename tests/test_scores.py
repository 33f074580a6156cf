"""Popularity and authority: Openverse's standardisation, VisualRank, Common Crawl ranks, scores."""

from __future__ import annotations

import gzip
import json
import time
import uuid
from datetime import datetime
from pathlib import Path

import numpy as np
import psycopg
import pytest
from pgvector import HalfVector

from ccvec import db, graph, scores
from ccvec.errors import CcvecError


def add_image(
    conn: psycopg.Connection,
    provider: str | None = None,
    meta: dict | None = None,
    landing: str | None = None,
) -> uuid.UUID:
    ident = uuid.uuid4()
    conn.execute(
        "INSERT INTO ccvec.image (identifier, url, provider, meta_data, foreign_landing_url) "
        "VALUES (%s, %s, %s, %s, %s)",
        [
            ident,
            f"https://img.example.net/{ident}.jpg",
            provider,
            json.dumps(meta) if meta else None,
            landing,
        ],
    )
    return ident


def hand_graph(
    conn: psycopg.Connection, n: int, edges: list[tuple[int, int, float]]
) -> tuple[int, list[uuid.UUID]]:
    """A kNN run with exactly these weighted edges (i lists j with similarity w)."""
    conn.execute(
        "INSERT INTO ccvec.model (name, version, onnx_sha256, dim, spec) VALUES ('hand', '1', 'x', 3, '{}') "
        "ON CONFLICT DO NOTHING"
    )
    run = conn.execute(
        "INSERT INTO ccvec.knn_run (model, k, ef_search, is_current) VALUES ('hand', 10, 40, true) "
        "RETURNING id"
    ).fetchone()[0]
    ids = sorted(uuid.uuid4() for _ in range(n))
    for rank, (i, j, w) in enumerate(edges):
        conn.execute(
            "INSERT INTO ccvec.knn_edge VALUES (%s, %s, %s, %s, %s)", [run, ids[i], ids[j], rank + 1, w]
        )
    conn.commit()
    return run, ids


def numpy_pagerank(n: int, edges: list[tuple[int, int, float]], d: float = 0.85) -> np.ndarray:
    """Reference power iteration: column-normalised weights, dangling mass spread evenly."""
    m = np.zeros((n, n))
    for i, j, w in edges:
        m[j, i] += max(w, 0)
    out = m.sum(axis=0)
    dangling = out == 0
    m[:, ~dangling] /= out[~dangling]
    r = np.full(n, 1 / n)
    for _ in range(10_000):
        new = d * (m @ r + r[dangling].sum() / n) + (1 - d) / n
        if np.abs(new - r).sum() < 1e-15:
            break
        r = new
    return new


GRAPHS = {
    "kNN-like": (
        5,
        [
            (0, 1, 0.9),
            (0, 2, 0.5),
            (1, 0, 0.9),
            (1, 2, 0.7),
            (2, 1, 0.7),
            (2, 3, 0.2),
            (3, 2, 0.2),
            (3, 4, 0.8),
            (4, 3, 0.8),
            (4, 0, 0.1),
        ],
    ),
    "dangling": (4, [(0, 1, 1.0), (1, 2, 0.5), (2, 0, 0.3), (0, 3, 0.6)]),  # 3 lists nobody
    "disconnected": (
        6,
        [(0, 1, 0.9), (1, 0, 0.9), (1, 2, 0.4), (2, 1, 0.4), (3, 4, 0.8), (4, 5, 0.8), (5, 3, 0.8)],
    ),
}


@pytest.mark.parametrize("name", list(GRAPHS))
def test_visualrank_matches_numpy_reference(conn: psycopg.Connection, name: str) -> None:
    n, edges = GRAPHS[name]
    run, ids = hand_graph(conn, n, edges)
    vr_run = conn.execute("SELECT ccvec.visualrank(%s, 0.85, 1e-13)", [run]).fetchone()[0]
    got = dict(conn.execute("SELECT identifier, rank FROM ccvec.visual_rank").fetchall())
    expected = numpy_pagerank(n, edges)
    assert np.abs(np.array([got[i] for i in ids]) - expected).max() < 1e-6
    assert sum(got.values()) == pytest.approx(1.0, abs=1e-9)
    iterations, residual = conn.execute(
        "SELECT iterations, residual FROM ccvec.visualrank_run WHERE id = %s", [vr_run]
    ).fetchone()
    assert 1 < iterations < 200 and residual < 1e-13
    scores_ = dict(conn.execute("SELECT identifier, score FROM ccvec.visual_rank").fetchall())
    best, worst = ids[int(expected.argmax())], ids[int(expected.argmin())]
    assert scores_[best] == 1.0 and scores_[worst] == 0.0  # percentile mapping


def test_visualrank_warm_start_converges_to_the_same_ranks(conn: psycopg.Connection) -> None:
    n, edges = GRAPHS["kNN-like"]
    run, ids = hand_graph(conn, n, edges)
    cold = conn.execute("SELECT ccvec.visualrank(%s, 0.85, 1e-12)", [run]).fetchone()[0]
    first = dict(conn.execute("SELECT identifier, rank FROM ccvec.visual_rank").fetchall())
    warm = conn.execute("SELECT ccvec.visualrank(%s, 0.85, 1e-12)", [run]).fetchone()[0]
    again = dict(conn.execute("SELECT identifier, rank FROM ccvec.visual_rank").fetchall())
    its = dict(conn.execute("SELECT id, iterations FROM ccvec.visualrank_run").fetchall())
    assert its[warm] < its[cold]
    assert max(abs(first[i] - again[i]) for i in ids) < 1e-10


def test_85th_percentile_maps_to_085(conn: psycopg.Connection) -> None:
    ids = [add_image(conn, "flickr", {"views": v}) for v in range(1, 101)]
    add_image(conn, "flickr", {"views": "not a number"})
    add_image(conn, "flickr", {"likes": 5})
    conn.commit()
    conn.execute("SELECT ccvec.refresh_popularity_constants()")
    vp, constant, n = conn.execute(
        "SELECT value_at_percentile, constant, images FROM ccvec.popularity_metric WHERE provider = 'flickr'"
    ).fetchone()
    assert (vp, n) == (85, 100) and constant == pytest.approx(0.15 / 0.85 * 85)
    conn.commit()
    timings = scores.refresh(conn)
    assert len(timings) == scores.refresh_stage_count(conn) == 9  # no graph: no VisualRank stage
    pop = dict(conn.execute("SELECT o.raw_value, o.popularity FROM ccvec.observed_popularity o").fetchall())
    assert pop[85] == pytest.approx(0.85, abs=1e-12)
    values = [pop[v] for v in range(1, 101)]
    assert values == sorted(values) and values[0] > 0 and values[-1] < 1
    assert len(ids) == 100


def test_a_refresh_starts_from_committed_input_changes(conn: psycopg.Connection, database_url: str) -> None:
    """A change drawn from ccvec.input_change but not committed when a refresh started counted as
    seen, though the refresh could not see it: the scores were neither refreshed for it nor stale.
    The refresh now waits for the writer's commit before it reads the number (0065); and deleting
    runs (graph prune) marks nothing stale."""
    import threading

    for v in (1, 2, 3):
        add_image(conn, "flickr", {"views": v})
    run, _ = hand_graph(conn, 3, [(0, 1, 0.9), (1, 2, 0.8), (2, 0, 0.7)])
    scores.refresh(conn)
    assert conn.execute("SELECT ccvec.scores_stale()").fetchone() == (False,)
    conn.commit()
    with psycopg.connect(database_url) as writer:  # a graph writer in the middle of its transaction
        writer.execute("UPDATE ccvec.knn_run SET recall = 0.5 WHERE id = %s", [run])  # draws a number

        def refresh() -> None:
            with db.connect(database_url) as other:
                scores.refresh(other)

        refreshing = threading.Thread(target=refresh)
        refreshing.start()
        waiting = "SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = 'ccvec.knn_run'::regclass"
        deadline = time.monotonic() + 30
        while writer.execute(waiting).fetchone() == (0,) and time.monotonic() < deadline:
            time.sleep(0.05)  # until the refresh waits for the writer (a condition, not a guess)
        assert writer.execute(waiting).fetchone() == (1,)  # it read nothing before the commit
        writer.commit()
        refreshing.join(60)
    assert not refreshing.is_alive()
    assert conn.execute("SELECT ccvec.scores_stale()").fetchone() == (False,)  # it saw the change
    conn.execute("DELETE FROM ccvec.knn_run WHERE id = %s", [run])  # what graph prune does
    conn.commit()
    assert conn.execute("SELECT ccvec.scores_stale()").fetchone() == (False,)


def write_ranks(path: Path, header: list[str], rows: list[list]) -> Path:
    with gzip.open(path, "wt") as f:
        f.write("\t".join(header) + "\n")
        for row in rows:
            f.write("\t".join(str(x) for x in row) + "\n")
    return path


def test_common_crawl_ranks_drive_domain_authority(conn: psycopg.Connection, tmp_path: Path) -> None:
    host_file = write_ranks(
        tmp_path / "cc-main-host-ranks.txt.gz",
        scores.HOST_HEADER,
        [
            [1, 3.2e7, 5, 0.01, "org.wikipedia.en"],
            [10, 2.1e7, 40, 0.001, "com.flickr"],
            [999, 1e5, 900, 1e-7, "org.example.gallery"],
            ["x", 1, 1, 1, "bad.row"],  # malformed: skipped and reported
            [1000, 9e4, 1000, 1e-8, "net.small"],
        ],
    )
    domain_file = write_ranks(
        tmp_path / "cc-main-domain-ranks.txt.gz",
        scores.DOMAIN_HEADER,
        [
            [3, 2.5e7, 7, 0.009, "org.example", 12],
            [50, 1e6, 60, 1e-4, "uk.co.bbc", 40],
        ],
    )
    hosts = scores.load_ranks(conn, host_file)
    domains = scores.load_ranks(conn, domain_file)
    assert (hosts.kind, hosts.rows, hosts.bad_lines) == ("host", 4, 1)
    assert "line 5: field 1 is not a whole number" in hosts.examples[0]
    assert (domains.kind, domains.rows) == ("domain", 2)
    a = add_image(conn, "wikimedia", landing="https://en.wikipedia.org/wiki/File:X.jpg")
    b = add_image(conn, "flickr", landing="https://www.flickr.com/photos/x/1")  # www. dropped
    c = add_image(conn, None, landing="https://shop.example.org/item")  # host unknown -> domain
    e = add_image(conn, None, landing="https://news.bbc.co.uk/a")  # two-level public suffix
    f = add_image(conn, "met", landing="https://unranked.invalid/x")  # -> provider prior
    conn.commit()
    scores.refresh(conn)
    web = {r[0]: r[1:] for r in conn.execute("SELECT identifier, authority, source FROM ccvec.web_authority")}
    assert web[a] == (pytest.approx(1.0), "host")
    assert web[b][1] == "host" and web[b][0] == pytest.approx(1 - np.log(10) / np.log(1000))
    assert web[c][1] == "domain" and web[c][0] == pytest.approx(1 - np.log(3) / np.log(50))
    assert web[e][1] == "domain"
    assert web[f] == (pytest.approx(0.90), "provider")  # cultural institution prior
    # a new release replaces the old one
    scores.load_ranks(
        conn, write_ranks(tmp_path / "h2.txt.gz", scores.HOST_HEADER, [[1, 1, 1, 1, "com.other"]])
    )
    assert conn.execute("SELECT count(*) FROM ccvec.web_rank WHERE kind = 'host'").fetchone()[0] == 1


def test_bad_ranks_files_are_refused_and_keep_the_release(conn: psycopg.Connection, tmp_path: Path) -> None:
    good = write_ranks(tmp_path / "g.txt.gz", scores.HOST_HEADER, [[1, 1, 1, 1, "com.kept"]])
    scores.load_ranks(conn, good)
    wrong = write_ranks(tmp_path / "w.txt.gz", ["#pos", "#host"], [[1, "com.x"]])
    with pytest.raises(CcvecError, match="not a Common Crawl ranks file"):
        scores.load_ranks(conn, wrong)
    empty = write_ranks(tmp_path / "e.txt.gz", scores.HOST_HEADER, [["a", "b", "c", "d", "e"]])
    with pytest.raises(CcvecError, match="no valid rows; the release in the database was kept"):
        scores.load_ranks(conn, empty)
    truncated = tmp_path / "t.txt.gz"
    truncated.write_bytes(good.read_bytes()[:20])
    with pytest.raises(CcvecError, match="cannot read"):
        scores.load_ranks(conn, truncated)
    assert conn.execute("SELECT host_rev FROM ccvec.web_rank").fetchall() == [("com.kept",)]


def test_reverse_host_and_domain_in_sql(conn: psycopg.Connection) -> None:
    cases = {
        "https://www.Sub.Example.com:8080/x?y": ("com.example.sub", "com.example"),
        "http://user@example.org/": ("org.example", "org.example"),
        "https://news.bbc.co.uk/a": ("uk.co.bbc.news", "uk.co.bbc"),
        "file:///tmp/a.jpg": ("", None),
    }
    for url, (host, domain) in cases.items():
        got = conn.execute(
            "SELECT ccvec.reverse_host(%s), ccvec.reversed_domain(ccvec.reverse_host(%s))", [url, url]
        ).fetchone()
        assert got == (host, domain), url


def test_every_image_has_scores_in_bounds_with_provenance(conn: psycopg.Connection) -> None:
    rng = np.random.default_rng(0)
    conn.execute(
        "INSERT INTO ccvec.model (name, version, onnx_sha256, dim, spec) VALUES ('hand3', '1', 'x', 3, '{}')"
    )
    ids = []
    for i in range(30):
        provider, meta = ("flickr", {"views": int(rng.integers(0, 5000))}) if i % 3 == 0 else ("met", None)
        ident = add_image(conn, provider, meta, landing="https://www.flickr.com/p" if i % 2 else None)
        ids.append(ident)
        conn.execute(
            "INSERT INTO ccvec.image_embedding (model, identifier, embedding) VALUES (%s, %s, %s)",
            ["hand3", ident, HalfVector(np.abs(rng.normal(size=3)) + (i % 3))],
        )
    lonely = add_image(conn, "met")  # no metric, not in the graph
    conn.commit()
    graph.build(conn, k=4, model="hand3")
    scores.refresh(conn)
    rows = conn.execute(
        "SELECT identifier, popularity, popularity_provenance, authority, visual_authority "
        "FROM ccvec.image_score"
    ).fetchall()
    assert {r[0] for r in rows} == set(ids) | {lonely}
    for ident, pop, provenance, authority, visual in rows:
        assert 0 <= pop <= 1 and 0 <= authority <= 1
        assert provenance in ("observed", "inferred", "none")
        assert (visual is None) == (ident == lonely)
    provenance = {r[0]: r[2] for r in rows}
    assert provenance[lonely] == "none"
    assert sum(p == "observed" for p in provenance.values()) == 10
    observed = {i for i, p in provenance.items() if p == "observed"}
    with_observed_neighbour = {
        a for a, b in conn.execute("SELECT identifier, neighbour FROM ccvec.knn_current") if b in observed
    }
    assert {i for i, p in provenance.items() if p == "inferred"} == with_observed_neighbour - observed
    assert with_observed_neighbour - observed
    explained = scores.explain(conn, ids[0])
    assert explained["provenance"] == "observed" and explained["metric"][0] == "views"
    assert len(explained["neighbours"]) == 4 and explained["visualrank"] is not None


def test_run_refresh_and_scores_commands(conn: psycopg.Connection, database_url: str, tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    from .images import write_photos

    write_photos(tmp_path / "p", ("chelsea", "coffee", "astronaut", "rocket", "camera", "horse"))

    def cli(*args: str) -> subprocess.CompletedProcess:
        env = {**os.environ, "DATABASE_URL": database_url}
        return subprocess.run(
            [sys.executable, "-m", "ccvec.cli", *args], capture_output=True, text=True, env=env
        )

    ran = cli("run", str(tmp_path / "p"), "--k", "3", "--out", str(tmp_path / "out"))
    assert ran.returncode == 0, ran.stderr
    assert "load: 6 new" in ran.stdout and "graph: run" in ran.stdout and "scores: refreshed" in ran.stdout
    assert (tmp_path / "out" / "index.html").is_file()  # the HTML report (contact sheets: export-clusters)
    rows = conn.execute("SELECT identifier, popularity, authority FROM ccvec.image_score").fetchall()
    assert len(rows) == 6 and all(0 <= p <= 1 and 0 <= a <= 1 for _, p, a in rows)
    refreshed = cli("refresh")
    assert refreshed.returncode == 0 and "scored 6 images" in refreshed.stdout
    explained = cli("scores", "--identifier", str(rows[0][0]))
    assert explained.returncode == 0, explained.stderr
    assert "popularity  no data" in explained.stdout
    assert "no data: no popularity metric counts for its provider" in explained.stdout
    assert "how much similar images point at it" in explained.stdout
    assert "a fixed prior: no provider and no web rank for where it comes from" in explained.stdout
    missing = cli("scores", "--identifier", str(uuid.uuid4()))
    assert missing.returncode == 2 and "no scores for" in missing.stderr


def sessions_opened(conn: psycopg.Connection, since: datetime) -> int:
    """Connections to this database opened at `since` or later and still open, waited for (up to
    5 s) to reach 0, since a backend leaves pg_stat_activity a moment after its client closed. Older
    backends (another test's, still closing) do not count."""
    deadline = time.monotonic() + 5
    while True:
        count = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND backend_start >= %s AND pid <> pg_backend_pid()",
            [since],
        ).fetchone()[0]
        conn.commit()  # a new snapshot of the statistics next time
        if count == 0 or time.monotonic() > deadline:
            return count
        time.sleep(0.05)


def test_a_failing_refresh_chain_is_raised_and_leaves_no_connection_behind(
    conn: psycopg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The refresh runs three chains at once (scores.refresh). When the tags chain fails, the scores
    are still written and its error is raised at the end; when this connection's chain fails, the
    others stop. Either way the connections the refresh opened are closed."""
    ids = [add_image(conn, "flickr", {"views": v}) for v in (3, 30, 300)]
    conn.commit()
    before = conn.execute("SELECT clock_timestamp()").fetchone()[0]

    def tags_break(on: psycopg.Connection) -> None:
        raise CcvecError("the tags chain broke")

    monkeypatch.setattr(graph, "tags_novelty_names", lambda changed_only: [("inferred tags", tags_break)])
    with pytest.raises(CcvecError, match="the tags chain broke"):
        scores.refresh(conn)
    scored = conn.execute("SELECT count(*) FROM ccvec.image_score WHERE identifier = ANY(%s)", [ids])
    assert scored.fetchone()[0] == 3  # the popularity chain and the image scores went on
    assert sessions_opened(conn, before) == 0
    monkeypatch.undo()

    refresh_view = db.refresh_view

    def popularity_breaks(on: psycopg.Connection, name: str) -> None:
        if name == "observed_popularity":
            raise CcvecError("the popularity chain broke")
        refresh_view(on, name)

    monkeypatch.setattr(db, "refresh_view", popularity_breaks)
    with pytest.raises(CcvecError, match="the popularity chain broke"):
        scores.refresh(conn)
    conn.rollback()
    assert sessions_opened(conn, before) == 0
    assert conn.execute("SELECT count(*) FROM ccvec.catalog").fetchone()[0] == 3  # still usable


def test_which_views_are_refreshed_concurrently(conn: psycopg.Connection) -> None:
    """refresh.concurrently: 1 (default) rebuilds the views that serve readers CONCURRENTLY and the
    inputs in place, 0 every view in place, 2 every view concurrently; the rows are the same."""
    for v in (3, 30, 300, 3000):
        add_image(conn, "flickr", {"views": v})
    conn.commit()
    scores.refresh(conn)
    views = ["image_score", "cluster_mate", "observed_popularity", "neighbourhood_popularity"]
    check = "SELECT ccvec.refresh_concurrently(%s)"
    rows = "SELECT identifier, popularity, authority FROM ccvec.image_score ORDER BY 1"
    before = conn.execute(rows).fetchall()
    try:
        for value, expected in ((1, [True, True, False, False]), (0, [False] * 4), (2, [True] * 4)):
            conn.execute("UPDATE ccvec.setting SET value = %s WHERE name = 'refresh.concurrently'", [value])
            conn.commit()
            assert [conn.execute(check, [v]).fetchone()[0] for v in views] == expected
            scores.refresh(conn)
            assert conn.execute(rows).fetchall() == before and len(before) == 4
    finally:
        conn.rollback()
        conn.execute("UPDATE ccvec.setting SET value = 1 WHERE name = 'refresh.concurrently'")
        conn.commit()


def test_ranks_lines_the_database_would_refuse_are_skipped_with_their_line(
    conn: psycopg.Connection, tmp_path: Path
) -> None:
    """Each of these lines failed the whole release (a COPY error) or loaded a position that does not
    exist; now each is skipped and reported by its line number, and the good lines load."""
    ranks = write_ranks(
        tmp_path / "h.txt.gz",
        scores.HOST_HEADER,
        [
            [1, 3.2e7, 5, 0.01, "org.wikipedia.en"],
            ["99999999999999999999999", 1, 1, 1, "com.overflow"],  # line 3: beyond bigint
            [2, 1, "99999999999999999999999", 1, "com.overflow.pr"],  # line 4
            [0, 1, 1, 1, "com.zero"],  # line 5: positions start at 1
            [3, 1, 0, 1, "com.zero.pr"],  # line 6
            [4, 1, 1, 1, "com.x" + "a" * 5_000_000],  # line 7: larger than an index row
            [5, 1, 1, 1, "com." + "a" * 250],  # line 8: 254 characters
            [6, "1e400", 1, 1, "com.infinite"],  # line 9: out of range for double precision
            [7, 1, 1, 1, "com.nul\x00byte"],  # line 10: text cannot hold NUL
            ["²", 1, 1, 1, "com.superscript"],  # line 11: a digit to str.isdigit, not to int()
            [8, 1, 1, 1, "com." + "a" * 249],  # 253 characters: the longest DNS name, loaded
        ],
    )
    result = scores.load_ranks(conn, ranks)
    assert (result.rows, result.bad_lines) == (2, 9)
    assert result.examples == [
        "line 3: field 1 is out of range: a position is a whole number from 1 to 9223372036854775807",
        "line 4: field 3 is out of range: a position is a whole number from 1 to 9223372036854775807",
        "line 5: field 1 is out of range: a position is a whole number from 1 to 9223372036854775807",
        "line 6: field 3 is out of range: a position is a whole number from 1 to 9223372036854775807",
        "line 7: host name of 5,000,005 characters: a DNS name has at most 253",
    ]
    rows = conn.execute("SELECT host_rev, harmonic_pos FROM ccvec.web_rank ORDER BY 2").fetchall()
    assert rows == [("org.wikipedia.en", 1), ("com." + "a" * 249, 8)]
    max_pos = conn.execute("SELECT max_pos FROM ccvec.web_rank_release WHERE kind = 'host'").fetchone()
    assert max_pos == (8,)


def test_each_kind_of_bad_ranks_line_has_its_reason() -> None:
    """The reasons of the lines the first five examples above leave out."""
    check = scores._parse_ranks_line
    assert check(["5", "1", "1", "1", "com." + "a" * 250], 5) == (
        "host name of 254 characters: a DNS name has at most 253"
    )
    assert check(["6", "1e400", "1", "1", "com.x"], 5) == "field 2 is not a finite number: '1e400'"
    assert check(["7", "1", "1", "1", "com.nul\x00"], 5) == "host name with a space or control character"
    assert check(["²", "1", "1", "1", "com.x"], 5) == "field 1 is not a whole number: '²'"
    assert check(["-1", "1", "1", "1", "com.x"], 5) == "field 1 is not a whole number: '-1'"
    assert check(["1", "2.5e-7", "3", "1E3", "com.x", "0"], 6) == [1, 2.5e-7, 3, 1000.0, "com.x", 0]


def test_plain_ranks_file_with_invalid_utf8_loads_the_rest(conn: psycopg.Connection, tmp_path: Path) -> None:
    """An uncompressed file is read like a gzipped one: invalid UTF-8 is replaced, not a traceback."""
    plain = tmp_path / "host-ranks.txt"
    header = "\t".join(scores.HOST_HEADER).encode()
    plain.write_bytes(header + b"\n1\t1\t1\t1\tcom.good\n2\t1\t1\t1\tcom.caf\xe9\n")
    assert scores.load_ranks(conn, plain).rows == 2
    hosts = conn.execute("SELECT host_rev FROM ccvec.web_rank ORDER BY harmonic_pos").fetchall()
    assert hosts == [("com.good",), ("com.caf\ufffd",)]


def test_scores_explains_a_host_at_position_zero(cli, conn: psycopg.Connection) -> None:
    """A position 0 in ccvec.web_rank (loaded before `load-hosts` refused it) is a position, not a
    missing one: the explanation names the host instead of printing an empty reason."""
    conn.execute(
        "INSERT INTO ccvec.web_rank (kind, host_rev, harmonic_pos, harmonic_val, pr_pos, pr_val) "
        "VALUES ('host', 'com.zero', 0, 1, 1, 1), ('host', 'com.other', 10, 1, 1, 1)"
    )
    conn.execute("SELECT ccvec.web_rank_record_release('host', 'old-release.txt.gz', 2, 10)")
    ident = add_image(conn, None, landing="https://zero.com/page")
    conn.commit()
    scores.refresh(conn)
    result = cli("scores", "--identifier", ident)
    assert result.exit_code == 0, result.stderr
    assert "web 1.000: host com.zero at harmonic position 0" in result.stdout


def test_ranks_file_listing_a_host_twice_is_refused_in_one_line(
    conn: psycopg.Connection, tmp_path: Path
) -> None:
    """A host on two lines broke the primary key with a traceback; now one line names it."""
    scores.load_ranks(
        conn, write_ranks(tmp_path / "g.txt.gz", scores.HOST_HEADER, [[1, 1, 1, 1, "com.kept"]])
    )
    twice = write_ranks(
        tmp_path / "d.txt.gz",
        scores.HOST_HEADER,
        [[1, 1, 1, 1, "com.a"], [2, 1, 2, 1, "com.b"], [3, 1, 3, 1, "com.a"]],
    )
    with pytest.raises(CcvecError, match=r"'com.a' is listed twice .*; the release in the database was kept"):
        scores.load_ranks(conn, twice)
    assert conn.execute("SELECT host_rev FROM ccvec.web_rank").fetchall() == [("com.kept",)]
