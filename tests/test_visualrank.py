"""VisualRank streamed through COPY to scipy: the same ranks as the references and as the SQL function."""

from __future__ import annotations

import time
import uuid

import numpy as np
import psycopg
import pytest
import scipy.sparse as sp

from ccvec import visualrank
from ccvec.errors import CcvecError

from .test_scores import GRAPHS, hand_graph, numpy_pagerank


def as_stored(edges: list[tuple[int, int, float]]) -> list[tuple[int, int, float]]:
    """Similarities as the real column keeps them."""
    return [(i, j, float(np.float32(w))) for i, j, w in edges]


def stored(conn: psycopg.Connection, column: str = "rank") -> dict[uuid.UUID, float]:
    return dict(conn.execute(f"SELECT identifier, {column} FROM ccvec.visual_rank").fetchall())


def scipy_pagerank(n: int, edges: list[tuple[int, int, float]], d: float = 0.85) -> np.ndarray:
    """scipy.sparse power iteration written independently of ccvec's, to 1e-15."""
    src, dst, w = (np.array(c) for c in zip(*edges, strict=True))
    w = np.maximum(w.astype(float), 0)
    out = np.bincount(src, weights=w, minlength=n)
    m = sp.csc_matrix(
        (np.where(out[src] > 0, w / np.where(out[src] > 0, out[src], 1), 0), (dst, src)), (n, n)
    )
    dangling = out == 0
    r = np.full(n, 1 / n)
    for _ in range(10_000):
        new = d * (m @ r + r[dangling].sum() / n) + (1 - d) / n
        if np.abs(new - r).sum() < 1e-15:
            return new
        r = new
    return r


@pytest.mark.parametrize("name", list(GRAPHS))
def test_streamed_visualrank_equals_references_and_sql(conn: psycopg.Connection, name: str) -> None:
    n, edges = GRAPHS[name]
    run, ids = hand_graph(conn, n, edges)
    vr = visualrank.visualrank(conn, run, 0.85, 1e-13)
    conn.commit()
    got = stored(conn)
    ranks = np.array([got[i] for i in ids])
    assert np.abs(ranks - scipy_pagerank(n, as_stored(edges))).max() < 1e-12
    assert np.abs(ranks - numpy_pagerank(n, as_stored(edges))).max() < 1e-12
    streamed_scores = stored(conn, "score")
    its = conn.execute("SELECT iterations, nodes FROM ccvec.visualrank_run WHERE id = %s", [vr]).fetchone()
    assert 1 < its[0] < 200 and its[1] == n
    conn.execute("TRUNCATE ccvec.visual_rank")
    conn.execute("SELECT ccvec.visualrank(%s, 0.85, 1e-13)", [run])
    in_sql = stored(conn)
    assert max(abs(in_sql[i] - got[i]) for i in ids) < 1e-12
    assert stored(conn, "score") == pytest.approx(streamed_scores, abs=1e-7)


def test_streamed_visualrank_on_a_random_graph_with_ties_and_negative_weights(
    conn: psycopg.Connection,
) -> None:
    rng = np.random.default_rng(3)
    n = 300
    edges = [
        (i, int(j), round(float(rng.uniform(-0.2, 1)), 1))
        for i in range(n)
        for j in rng.choice(np.delete(np.arange(n), i), 5, replace=False)
    ]
    run, ids = hand_graph(conn, n, edges)
    visualrank.visualrank(conn, run, 0.85, 1e-13)
    got = stored(conn)
    ranks = np.array([got[i] for i in ids])
    assert np.abs(ranks - scipy_pagerank(n, as_stored(edges))).max() < 1e-12
    scores = stored(conn, "score")
    conn.execute("TRUNCATE ccvec.visual_rank")
    conn.execute("SELECT ccvec.visualrank(%s, 0.85, 1e-13)", [run])
    assert max(abs(stored(conn)[i] - got[i]) for i in ids) < 1e-12
    assert stored(conn, "score") == pytest.approx(scores, abs=1e-7)


def test_packed_edges_lose_and_repeat_nothing_plain_or_partitioned(
    conn: psycopg.Connection,
) -> None:
    """The packed input comes in values of at most about p_rows rows (so none nears the 1 GB
    bytea limit), by block ranges, partition by partition when knn_edge is partitioned, the rows of
    another run filtered out. With small values they hold exactly the run's edges."""
    from ccvec import partitions

    rng = np.random.default_rng(4)
    edges = [
        (i, int(j), float(rng.uniform(0, 1))) for i in range(400) for j in rng.choice(400, 3, replace=False)
    ]
    earlier, _ = hand_graph(conn, 50, [(i, (i + 1) % 50, 0.5) for i in range(50)])  # kept, not read
    conn.execute("UPDATE ccvec.knn_run SET is_current = false WHERE id = %s", [earlier])
    run, _ = hand_graph(conn, 400, [e for e in edges if e[0] != e[1]])
    record = np.dtype([("a", "V16"), ("b", "V16"), ("w", ">f4")])
    stored_edges = sorted(
        bytes(r[0])
        for r in conn.execute(
            "SELECT uuid_send(identifier) || uuid_send(neighbour) || float4send(similarity) "
            "FROM ccvec.knn_edge WHERE run_id = %s",
            [run],
        )
    )

    def packed(rows: int) -> list[bytes]:
        conn.execute("ANALYZE ccvec.knn_edge")
        query = "SELECT packed FROM ccvec.knn_edges_packed(%s, %s) WHERE packed IS NOT NULL"
        values = [bytes(r[0]) for r in conn.cursor(binary=True).execute(query, [run, rows])]
        assert sorted(r.tobytes() for v in values for r in np.frombuffer(v, record)) == stored_edges
        return values

    assert len(packed(50)) > 5 and len(packed(4_000_000)) == 1
    try:
        partitions.repartition(conn, 3)
        assert len(packed(50)) > 5 and len(packed(4_000_000)) == 3  # one value per partition at least
    finally:
        conn.rollback()
        partitions.repartition(conn, 1)


def test_streamed_warm_start_takes_fewer_iterations_to_the_same_ranks(conn: psycopg.Connection) -> None:
    n, edges = GRAPHS["kNN-like"]
    run, ids = hand_graph(conn, n, edges)
    cold = visualrank.visualrank(conn, run, 0.85, 1e-12)
    first = stored(conn)
    warm = visualrank.visualrank(conn, run, 0.85, 1e-12)
    again = stored(conn)
    its = dict(conn.execute("SELECT id, iterations FROM ccvec.visualrank_run").fetchall())
    assert its[warm] < its[cold]
    assert max(abs(first[i] - again[i]) for i in ids) < 1e-10


def test_node_ids_and_uuids_give_the_same_ranks(conn: psycopg.Connection) -> None:
    """Edges streamed as ccvec.image_node pairs or as UUIDs: the same ranks, for images in the
    catalog and (through the fallback that numbers the run's edges) for images that are not."""
    rng = np.random.default_rng(5)
    n = 120
    edges = [
        (i, int(j), float(rng.uniform(0.1, 1)))
        for i in range(n)
        for j in rng.choice(np.delete(np.arange(n), i), 4, replace=False)
    ]
    run, ids = hand_graph(conn, n, edges)
    with conn.cursor().copy("COPY ccvec.image (identifier, url) FROM STDIN") as copy:
        for ident in ids[: n // 2]:  # half the graph is in the catalog
            copy.write_row([ident, f"https://example.net/{ident}.jpg"])
    conn.commit()
    visualrank.visualrank(conn, run, 0.85, 1e-13)
    by_uuid = stored(conn)
    timings: dict[str, float] = {}
    visualrank.visualrank(conn, run, 0.85, 1e-13, timings=timings, source="node")
    by_node = stored(conn)
    assert "node ids" in timings and "index UUIDs" not in timings
    assert set(by_node) == set(by_uuid) == set(ids)
    assert max(abs(by_node[i] - by_uuid[i]) for i in ids) < 1e-15
    assert np.abs(np.array([by_node[i] for i in ids]) - scipy_pagerank(n, as_stored(edges))).max() < 1e-12
    nodes = conn.execute("SELECT count(*), count(DISTINCT node) FROM ccvec.image_node").fetchone()
    assert nodes == (n, n)


def test_uuid_indexing_matches_an_exact_sort() -> None:
    """The hashed, bucketed UUID -> position mapping against np.unique over the full keys: sources in
    runs, targets that never list anyone, and a forced hash collision (falls back, still exact)."""
    rng = np.random.default_rng(11)
    ids = rng.integers(0, 2**63, (5000, 2)).astype(np.uint64)
    src = np.repeat(ids[:4000], 3, axis=0)
    dst = ids[rng.integers(0, 5000, len(src))]  # 1000 images only ever listed as neighbours
    keys = np.unique(visualrank._hash(ids))
    needles = visualrank._hash(ids)[rng.integers(0, 5000, 20000)]
    assert (visualrank._lookup(keys, needles) == np.searchsorted(keys, needles)).all()
    misses = rng.integers(0, 2**63, 1000).astype(np.uint64)
    assert (visualrank._lookup(keys, misses) == np.searchsorted(keys, misses)).all()
    collide = ids[:2].copy()
    with np.errstate(over="ignore"):  # the hash multiplies modulo 2^64
        collide[1, 1] = collide[0, 0] * visualrank._MIX ^ collide[0, 1] ^ (collide[1, 0] * visualrank._MIX)
    assert visualrank._hash(collide[:1])[0] == visualrank._hash(collide[1:])[0]  # same hash, other UUID
    sequential = np.zeros((3000, 2), np.uint64)  # uuid.UUID(int=i): one bucket without the finaliser
    sequential[:, 1] = np.arange(1, 3001)
    assert len(np.unique(visualrank._hash(sequential) >> np.uint64(52))) > 2000  # spread over buckets
    seq_src, seq_dst = np.repeat(sequential, 4, axis=0), sequential[rng.integers(0, 3000, 12000)]
    cases = [(src, dst), (np.concatenate([src, collide[:1]]), np.concatenate([dst, collide[1:]]))]
    split = np.concatenate([src, np.repeat(ids[:50], 2, axis=0)])  # an image's edges in two runs
    cases.append((split, ids[rng.integers(0, 5000, len(split))]))
    for s, d in [*cases, (seq_src, seq_dst)]:
        distinct, s_at, d_at = visualrank._index(s, d)
        assert (distinct[s_at] == s).all() and (distinct[d_at] == d).all()
        assert len(distinct) == len(np.unique(np.concatenate([s, d]), axis=0))


def random_graph(seed: int, n: int, k: int) -> list[tuple[int, int, float]]:
    """k distinct neighbours each for the first n - 5 images (the last 5 are only listed), with
    negative similarities (no vote) and ties."""
    rng = np.random.default_rng(seed)
    return [
        (i, int(j), round(float(rng.uniform(-0.2, 1)), 2))
        for i in range(n - 5)
        for j in rng.choice(np.delete(np.arange(n), i), k, replace=False)
    ]


def test_the_stored_adjacency_gives_the_ranks_of_the_edges(
    conn: psycopg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    """VisualRank from the stored adjacency (what a refresh reads after a graph build) equals
    VisualRank from the edges' UUIDs and the independent scipy reference, also when the adjacency
    is stored in several parts (none larger than PART_EDGES edges)."""
    n = 250
    edges = random_graph(7, n, 6)
    run, ids = hand_graph(conn, n, edges)
    visualrank.visualrank(conn, run, 0.85, 1e-13, source="uuid")
    by_uuid = stored(conn)
    monkeypatch.setattr(visualrank, "PART_EDGES", 100)
    made = visualrank.store_adjacency(conn, run)
    conn.commit()
    parts, largest = conn.execute(
        "SELECT count(*), max(length(targets) / 4) FROM ccvec.knn_adjacency WHERE run_id = %s", [run]
    ).fetchone()
    assert made is not None and parts >= len(edges) // 100 and largest <= 100
    conn.execute("TRUNCATE ccvec.visual_rank")  # cold again
    timings: dict[str, float] = {}
    visualrank.visualrank(conn, run, 0.85, 1e-13, timings=timings)
    by_position = stored(conn)
    assert "read adjacency" in timings and "fetch edges" not in timings  # the edges were not read
    assert set(by_position) == set(by_uuid) == set(ids)
    assert max(abs(by_position[i] - by_uuid[i]) for i in ids) < 1e-15
    ranks = np.array([by_position[i] for i in ids])
    assert np.abs(ranks - scipy_pagerank(n, as_stored(edges))).max() < 1e-12


@pytest.mark.parametrize(
    "change",
    [
        "INSERT INTO ccvec.knn_edge SELECT run_id, neighbour, identifier, 99, 0.9 FROM ccvec.knn_edge "
        "WHERE rank = 1 ON CONFLICT DO NOTHING",
        "UPDATE ccvec.knn_edge SET similarity = 1 - similarity WHERE rank = 2",
        "DELETE FROM ccvec.knn_edge WHERE rank = 3",
    ],
    ids=["insert", "update", "delete"],
)
def test_a_changed_graph_is_read_from_its_edges_and_stored_again(
    conn: psycopg.Connection, change: str
) -> None:
    """Any statement that changes knn_edge makes the stored adjacency stale: the next VisualRank
    reads the edges (ranks of the changed graph, not the stored one) and stores it again."""
    n = 120
    run, ids = hand_graph(conn, n, random_graph(8, n, 4))
    visualrank.visualrank(conn, run, 0.85, 1e-13)  # stores the adjacency
    conn.commit()
    before = stored(conn)
    assert visualrank.stored_adjacency(conn, run) is not None
    conn.execute(change)
    conn.commit()
    assert visualrank.stored_adjacency(conn, run) is None
    conn.execute("TRUNCATE ccvec.visual_rank")
    timings: dict[str, float] = {}
    visualrank.visualrank(conn, run, 0.85, 1e-13, timings=timings)
    conn.commit()
    after = stored(conn)
    assert "fetch edges" in timings and "store adjacency" in timings
    conn.execute("TRUNCATE ccvec.visual_rank")
    visualrank.visualrank(conn, run, 0.85, 1e-13, source="uuid")
    from_edges = stored(conn)
    assert max(abs(after[i] - from_edges[i]) for i in ids) < 1e-15
    assert max(abs(after[i] - before[i]) for i in ids) > 1e-6  # the change changed the ranks
    again = visualrank.stored_adjacency(conn, run)
    count = conn.execute("SELECT count(*) FROM ccvec.knn_edge WHERE run_id = %s", [run]).fetchone()[0]
    assert again is not None and len(again.targets) == count


def test_an_edge_writer_in_flight_is_not_waited_for_and_its_edges_not_stored(
    conn: psycopg.Connection, database_url: str
) -> None:
    """A refresh beside a graph writer (edges written, not yet committed) neither waits for it nor
    stores an adjacency that the writer's commit would make wrong; it ranks the committed edges."""
    n = 60
    edges = random_graph(9, n, 3)
    run, ids = hand_graph(conn, n, edges)
    with psycopg.connect(database_url) as writer:
        writer.execute("UPDATE ccvec.knn_edge SET similarity = 0.01 WHERE run_id = %s AND rank = 1", [run])
        # lock_timeout raises lock_not_available, which knn_adjacency_begin takes for NOWAIT's
        # refusal: a wait would pass unnoticed but for the clock
        conn.execute("SET lock_timeout = '20s'")
        began = time.perf_counter()
        visualrank.visualrank(conn, run, 0.85, 1e-13)
        conn.commit()
        assert time.perf_counter() - began < 10
        got = stored(conn)
        assert np.abs(np.array([got[i] for i in ids]) - scipy_pagerank(n, as_stored(edges))).max() < 1e-12
        assert conn.execute("SELECT count(*) FROM ccvec.knn_adjacency").fetchone()[0] == 0
        writer.commit()
    assert visualrank.stored_adjacency(conn, run) is None


def test_an_adjacency_is_not_stored_from_a_snapshot_older_than_its_lock(
    conn: psycopg.Connection, database_url: str
) -> None:
    """Outside READ COMMITTED the edges are read in the transaction's snapshot, taken at its first
    statement, before knn_adjacency_begin's lock: edges committed in between are not seen though the
    value it returns counts them. Nothing is stored then, and the next VisualRank (read committed)
    ranks the committed edges."""
    n = 60
    edges = random_graph(9, n, 3)
    run, ids = hand_graph(conn, n, edges)
    conn.execute("SET default_transaction_isolation = 'repeatable read'")
    conn.commit()
    conn.execute("SELECT 1").fetchone()  # the transaction's snapshot
    with psycopg.connect(database_url) as writer:
        writer.execute("UPDATE ccvec.knn_edge SET similarity = 0.01 WHERE run_id = %s AND rank <= 20", [run])
    assert visualrank.store_adjacency(conn, run) is None
    conn.commit()
    conn.execute("SET default_transaction_isolation = 'read committed'")
    conn.commit()
    visualrank.visualrank(conn, run, 0.85, 1e-13)
    conn.commit()
    got = stored(conn)
    changed = [(i, j, 0.01 if rank < 20 else w) for rank, (i, j, w) in enumerate(edges)]
    assert np.abs(np.array([got[i] for i in ids]) - scipy_pagerank(n, as_stored(changed))).max() < 1e-12


def test_the_adjacency_is_read_at_one_edge_change_value(
    conn: psycopg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    """All parts are checked against one reading of ccvec.knn_edge_changes(): read once per part, a
    change drawn while the parts are read would leave the later ones out."""
    n = 100
    run, _ = hand_graph(conn, n, random_graph(5, n, 4))
    monkeypatch.setattr(visualrank, "PART_EDGES", 20)
    visualrank.store_adjacency(conn, run)
    conn.commit()
    conn.execute("SET track_functions = 'all'")
    parts = conn.execute("SELECT count(*) FROM ccvec.knn_adjacency_current(%s)", [run]).fetchone()[0]
    query = "SELECT calls FROM pg_stat_xact_user_functions WHERE schemaname = 'ccvec' AND funcname = %s"
    calls = conn.execute(query, ["knn_edge_changes"]).fetchone()
    assert parts > 10 and calls == (1,)


def test_an_incomplete_stored_adjacency_is_not_used(
    conn: psycopg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Parts that do not add up (the last one missing, or one in the middle) are not current: the
    edges are read instead, and the adjacency stored whole again."""
    n = 200
    edges = random_graph(3, n, 5)
    run, ids = hand_graph(conn, n, edges)
    monkeypatch.setattr(visualrank, "PART_EDGES", 100)
    for missing in ("max", "min"):
        visualrank.store_adjacency(conn, run)
        conn.commit()
        conn.execute(
            f"DELETE FROM ccvec.knn_adjacency WHERE first_node = (SELECT {missing}(first_node) "
            "FROM ccvec.knn_adjacency WHERE first_node > 0)"
        )
        conn.commit()
        assert visualrank.stored_adjacency(conn, run) is None
        visualrank.visualrank(conn, run, 0.85, 1e-13)
        conn.commit()
        got = stored(conn)
        assert np.abs(np.array([got[i] for i in ids]) - scipy_pagerank(n, as_stored(edges))).max() < 1e-12
        again = visualrank.stored_adjacency(conn, run)
        assert again is not None and len(again.targets) == len(edges)


def test_a_partitioned_knn_edge_keeps_the_change_trigger(conn: psycopg.Connection) -> None:
    """ccvec.repartition re-creates knn_edge with its triggers: an adjacency stored before the move
    stays current (same rows), and an update through the parent, a run deleted (prune's cascade) or
    a TRUNCATE makes it stale."""
    n = 50
    run, _ = hand_graph(conn, n, random_graph(4, n, 3))
    query = "INSERT INTO ccvec.knn_run (model, k, ef_search) VALUES ('hand', 10, 40) RETURNING id"
    other = conn.execute(query).fetchone()[0]  # an older run, as prune deletes
    conn.execute(
        "INSERT INTO ccvec.knn_edge SELECT %s, identifier, neighbour, rank, similarity FROM ccvec.knn_edge",
        [other],
    )
    visualrank.store_adjacency(conn, run)
    conn.commit()
    try:
        assert conn.execute("SELECT ccvec.repartition('knn_edge', 3)").fetchone() == (True,)
        conn.commit()
        assert visualrank.stored_adjacency(conn, run) is not None
        for change in (
            "UPDATE ccvec.knn_edge SET similarity = 0.5 WHERE rank = 1",
            f"DELETE FROM ccvec.knn_run WHERE id = {other}",
            "TRUNCATE ccvec.knn_edge",
        ):
            visualrank.store_adjacency(conn, run)
            conn.commit()
            assert visualrank.stored_adjacency(conn, run) is not None, change
            conn.execute(change)
            conn.commit()
            assert visualrank.stored_adjacency(conn, run) is None, change
    finally:
        conn.rollback()
        conn.execute("SELECT ccvec.repartition('knn_edge', 1)")
        conn.commit()


def test_a_refresh_beside_a_graph_writer_does_not_store_the_adjacency(
    conn: psycopg.Connection, database_url: str
) -> None:
    """While another session holds the graph job (a build or add between two batches), VisualRank
    ranks the edges but stores nothing: the writer's next batch would make it stale at once."""
    n = 40
    run, _ = hand_graph(conn, n, random_graph(10, n, 3))
    with psycopg.connect(database_url, autocommit=True) as writer:
        assert writer.execute("SELECT ccvec.job_lock('graph', NULL, false)").fetchone()[0]
        visualrank.visualrank(conn, run, 0.85, 1e-13)
        conn.commit()
        assert conn.execute("SELECT count(*) FROM ccvec.knn_adjacency").fetchone()[0] == 0
    visualrank.visualrank(conn, run, 0.85, 1e-13)  # the writer gone: stored
    conn.commit()
    assert visualrank.stored_adjacency(conn, run) is not None
    with pytest.raises(CcvecError, match="unknown VisualRank source"):
        visualrank.visualrank(conn, run, source="nodes")  # type: ignore[arg-type]


def test_adjacency_parts_are_bounded_by_nodes_too(
    conn: psycopg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Images only listed as neighbours have no edges of their own: parts count them too."""
    n = 200
    edges = [(i, 20 + 9 * i + t, 0.5) for i in range(20) for t in range(9)]  # 180 listed, listing none
    run, _ = hand_graph(conn, n, edges)
    monkeypatch.setattr(visualrank, "PART_NODES", 30)
    made = visualrank.store_adjacency(conn, run)
    conn.commit()
    largest, parts = conn.execute(
        "SELECT max(length(ids) / 16), count(*) FROM ccvec.knn_adjacency WHERE run_id = %s", [run]
    ).fetchone()
    assert made is not None and largest <= 30 and parts >= n // 30
    again = visualrank.stored_adjacency(conn, run)
    assert again is not None and len(again.nodes) == n and len(again.targets) == len(edges)
