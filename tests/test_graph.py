"""The kNN graph, incremental additions, clusters and inferred metadata, on hand-made vectors."""

from __future__ import annotations

import json
import random
import uuid
from collections import defaultdict

import numpy as np
import psycopg
import pytest
from pgvector import HalfVector

from ccvec import defaults, graph, vector_pass, visualrank
from ccvec.errors import CcvecError

MODEL = "hand"
MODEL64 = "hand64"


def unit(v) -> np.ndarray:
    v = np.asarray(v, dtype=np.float32)
    return v / np.linalg.norm(v)


def three_groups(rng: np.random.Generator, per_group: int = 5) -> np.ndarray:
    """Tight groups around three orthogonal directions in 3-d."""
    centres = np.eye(3, dtype=np.float32)
    points = [unit(c + rng.normal(0, 0.08, 3)) for c in centres for _ in range(per_group)]
    return np.abs(np.stack(points))


def add_vectors(
    conn: psycopg.Connection,
    vectors: np.ndarray,
    tags: list[list[str]] | None = None,
    popularity: list[float | None] | None = None,
    model: str = MODEL,
) -> list[uuid.UUID]:
    conn.execute(
        "INSERT INTO ccvec.model (name, version, onnx_sha256, dim, spec) VALUES (%s, '1', 'hand', %s, '{}') "
        "ON CONFLICT DO NOTHING",
        [model, vectors.shape[1]],
    )
    ids = [uuid.uuid4() for _ in vectors]
    for i, (ident, v) in enumerate(zip(ids, vectors, strict=True)):
        conn.execute(
            "INSERT INTO ccvec.image_embedding (model, identifier, embedding) VALUES (%s, %s, %s)",
            [model, ident, HalfVector(v)],
        )
        conn.execute(
            "INSERT INTO ccvec.image (identifier, url, tags, standardized_popularity) "
            "VALUES (%s, %s, %s, %s)",
            [
                ident,
                f"file:///v{i}",
                json.dumps([{"name": t} for t in tags[i]]) if tags else None,
                popularity[i] if popularity else None,
            ],
        )
    conn.commit()
    return ids


def stored(vectors: np.ndarray) -> np.ndarray:
    """What halfvec keeps."""
    return vectors.astype(np.float16).astype(np.float32)


def exact_knn(vectors: np.ndarray, k: int) -> dict[int, list[int]]:
    v = stored(vectors)
    v = v / np.linalg.norm(v, axis=1, keepdims=True)
    sims = v @ v.T
    np.fill_diagonal(sims, -np.inf)
    return {i: list(np.argsort(-sims[i], kind="stable")[:k]) for i in range(len(v))}


def edges(conn: psycopg.Connection, run_id: int) -> dict[uuid.UUID, list[tuple[uuid.UUID, int, float]]]:
    out = defaultdict(list)
    for ident, nb, rank, sim in conn.execute(
        "SELECT identifier, neighbour, rank, similarity FROM ccvec.knn_edge WHERE run_id = %s "
        "ORDER BY identifier, rank",
        [run_id],
    ):
        out[ident].append((nb, rank, sim))
    return out


def test_graph_edges_equal_exact_knn(conn: psycopg.Connection) -> None:
    vectors = three_groups(np.random.default_rng(1))
    ids = add_vectors(conn, vectors)
    run = graph.build(conn, k=4, model=MODEL)
    assert run.images == len(ids) and run.recall == pytest.approx(1.0)
    got = edges(conn, run.id)
    truth = exact_knn(vectors, 4)
    v = stored(vectors)
    for i, ident in enumerate(ids):
        assert [nb for nb, _, _ in got[ident]] == [ids[j] for j in truth[i]]
        assert [rank for _, rank, _ in got[ident]] == [1, 2, 3, 4]
        for nb, _, sim in got[ident]:
            j = ids.index(nb)
            cosine = float(v[i] @ v[j] / np.linalg.norm(v[i]) / np.linalg.norm(v[j]))
            assert sim == pytest.approx(cosine, abs=2e-3)
    assert graph.current(conn).id == run.id


def test_incremental_addition_matches_a_rebuild(conn: psycopg.Connection) -> None:
    rng = np.random.default_rng(2)
    vectors = three_groups(rng, per_group=6)
    order = rng.permutation(len(vectors))
    first, later = order[:12], order[12:]
    ids_first = add_vectors(conn, vectors[first])
    run = graph.build(conn, k=3, model=MODEL)
    ids_later = add_vectors(conn, vectors[later])
    assert graph.add_new(conn) == len(later)
    incremental = {k: [nb for nb, _, _ in v] for k, v in edges(conn, run.id).items()}
    ranks = {k: [r for _, r, _ in v] for k, v in edges(conn, run.id).items()}
    all_ids = ids_first + ids_later
    truth = exact_knn(np.concatenate([vectors[first], vectors[later]]), 3)
    expected = {all_ids[i]: [all_ids[j] for j in nbs] for i, nbs in truth.items()}
    assert incremental == expected  # new images have edges, and older lists now include them
    assert all(r == [1, 2, 3] for r in ranks.values())
    assert any(set(expected[i]) & set(ids_later) for i in ids_first)  # the update did something


def test_jobs_and_batch_size_do_not_change_the_graph(
    conn: psycopg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    vectors = three_groups(np.random.default_rng(5), per_group=12)
    ids = add_vectors(conn, vectors)
    one = graph.build(conn, k=5, model=MODEL, jobs=1)
    monkeypatch.setattr(graph, "BATCH", 7)  # 6 batches over 2 connections
    two = graph.build(conn, k=5, model=MODEL, jobs=2)
    assert one.id != two.id and one.recall == two.recall
    got = edges(conn, two.id)
    assert got == edges(conn, one.id)
    assert set(got) == set(ids) and all(len(v) == 5 for v in got.values())


def test_an_interrupted_build_is_resumed_not_started_again(
    conn: psycopg.Connection, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A build stopped after its first batches (Ctrl-C, a kill) left its run unfinished, and the next
    build started a new one: at 1M images, an hour of searches lost. The next build of the same
    model and k now finishes that run, searching only the images without edges, and gives the edges
    an uninterrupted build gives; a run another session is building is never taken over."""
    vectors = three_groups(np.random.default_rng(6), per_group=12)
    ids = add_vectors(conn, vectors)
    whole = graph.build(conn, k=5, model=MODEL, ef_search=40, jobs=1)
    monkeypatch.setattr(graph, "BATCH", 7)

    def stop_after_two_batches(done: int, total: int) -> None:
        if done >= 14:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        graph.build(conn, k=5, model=MODEL, ef_search=40, jobs=1, on_progress=stop_after_two_batches)
    (run_id,) = conn.execute("SELECT max(id) FROM ccvec.knn_run").fetchone()
    assert len(edges(conn, run_id)) == 14 and graph.current(conn).id == whole.id  # unfinished
    conn.commit()

    with psycopg.connect(database_url, autocommit=True) as other:  # another build holds it
        assert other.execute("SELECT ccvec.knn_run_claim(%s)", [run_id]).fetchone() == (True,)
        assert conn.execute("SELECT * FROM ccvec.resumable_knn_run(%s, 5)", [MODEL]).fetchall() == []
        prunable = "SELECT id FROM ccvec.prunable_runs(true) WHERE kind = 'graph'"
        assert (run_id,) not in conn.execute(prunable).fetchall()  # `graph prune --unfinished` keeps it
        conn.commit()
        other.execute("SELECT ccvec.knn_run_release(%s)", [run_id])  # (a closed session's goes a bit later)
    assert (run_id,) in conn.execute(prunable).fetchall()  # interrupted, no one building it
    conn.commit()
    searched: list[int] = []
    resumed = graph.build(conn, k=5, model=MODEL, on_progress=lambda done, total: searched.append(total))
    assert (resumed.id, resumed.resumed_with, resumed.ef_search) == (run_id, 14, 40)
    assert set(searched) == {len(ids) - 14}  # only the images without edges were searched
    assert edges(conn, run_id) == edges(conn, whole.id)
    assert graph.current(conn).id == run_id and resumed.images == len(ids)
    fresh = graph.build(conn, k=5, model=MODEL, ef_search=40, jobs=1)  # nothing unfinished: a new run
    assert fresh.id > run_id and fresh.resumed_with is None


def test_recall_counts_missing_edges(conn: psycopg.Connection) -> None:
    vectors = three_groups(np.random.default_rng(6), per_group=5)
    ids = add_vectors(conn, vectors)
    run = graph.build(conn, k=3, model=MODEL)
    before = graph.sample_recall(conn, run.id, ids)  # every image
    assert before is not None and before > 0.9 and run.recall is not None and run.recall > 0.9
    truth = exact_knn(vectors, 3)
    conn.execute(  # drop the true nearest neighbour of one image: its list now has 2 of 3
        "DELETE FROM ccvec.knn_edge WHERE run_id = %s AND identifier = %s AND neighbour = %s",
        [run.id, ids[0], ids[truth[0][0]]],
    )
    conn.commit()
    assert graph.sample_recall(conn, run.id, ids) == pytest.approx(before - 1 / (3 * len(ids)))


def _sql_exact(conn: psycopg.Connection, model: str, sample: list[uuid.UUID], k: int):
    found: dict[uuid.UUID, list[tuple[uuid.UUID, float]]] = {i: [] for i in sample}
    for image, neighbour, distance in conn.execute(
        "SELECT * FROM ccvec.knn_exact_within(%s, %s, %s, %s) ORDER BY 1, 3, 2",
        [model, sample, [2.0] * len(sample), k],
    ):
        found[image].append((neighbour, distance))
    return found


def test_exact_pass_in_numpy_equals_the_sql_one(conn: psycopg.Connection) -> None:
    """The build's exact pass (numpy over vectors read in batches) finds what ccvec.knn_exact_within
    finds in SQL at 64-d: the same neighbours, copies of a vector tied and ranked by identifier
    wherever they fall in a batch (cut at the k-th), distances within float rounding; a zero vector
    (NaN distance) is nobody's neighbour and hides no one in its batch; an image without an
    embedding gets none, and so does a sample of such images only."""
    rng = np.random.default_rng(11)
    vectors = np.abs(rng.normal(size=(40, 64))).astype(np.float32)
    for copy in (7, 19, 26, 33):  # copies land at different positions of every batch size below
        vectors[copy] = vectors[3]
    vectors[5] = vectors[3] + 0.01  # its 5 nearest are the copies, all at one distance
    vectors[38] = 0.0
    ids = add_vectors(conn, vectors, model=MODEL64)
    sample = [*ids[::2], ids[3], ids[5], uuid.uuid4()]
    for k in (2, 4, 6):
        sql = _sql_exact(conn, MODEL64, sample, k)
        got, queries = vector_pass.read(conn, "SELECT * FROM ccvec.embeddings_of(%s, %s)", [MODEL64, sample])
        assert got == sorted(sample[:-1])
        for batch in (3, 4, 7, 1000):
            found = vector_pass.exact_nearest(got, queries, vector_pass.every(conn, MODEL64, batch), k)
            for image in got:
                assert [n for n, _ in found[image]] == [n for n, _ in sql[image]], (k, batch)
                assert np.allclose([d for _, d in found[image]], [d for _, d in sql[image]], atol=1e-6)
                assert ids[38] not in [n for n, _ in found[image]]
        copies = sorted(ids[i] for i in (3, 7, 19, 26, 33))
        assert [n for n, _ in sql[ids[5]]][:5] == copies[:k]
        assert graph.exact_neighbours(conn, MODEL64, sample, k)[sample[-1]] == []
    nobody = uuid.uuid4()
    assert graph.exact_neighbours(conn, MODEL64, [nobody], 4) == {nobody: []}
    run = graph.build(conn, k=4, model=MODEL64, recall_sample=0)
    found, expected = conn.execute("SELECT * FROM ccvec.knn_recall(%s, %s)", [run.id, ids[:20]]).fetchone()
    assert graph.sample_recall(conn, run.id, ids[:20]) == found / expected
    assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE


def test_search_breadth_is_chosen_by_the_recall_it_buys(
    conn: psycopg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without --ef-search the build measures recall on half a sample, from 64 up, keeps the first
    breadth reaching the target (or the one before a doubling that buys nothing), and stores the
    recall measured on the other half."""
    vectors = three_groups(np.random.default_rng(7), per_group=8)
    ids = add_vectors(conn, vectors)
    run = graph.build(conn, k=4, model=MODEL, recall_sample=10)
    # on 24 images HNSW is all but exact: 64 is enough (the loop itself is checked below)
    assert run.tried[0][0] == defaults.EF_SEARCH and run.ef_search in [ef for ef, _ in run.tried]
    assert run.tried[-1][1] >= defaults.RECALL_TARGET or len(run.tried) > 1
    embedded = [r[0] for r in conn.execute("SELECT * FROM ccvec.embedded_images(%s)", [MODEL])]
    other_half = random.Random(0).sample(sorted(embedded), 10)[1::2]
    found, expected = conn.execute("SELECT * FROM ccvec.knn_recall(%s, %s)", [run.id, other_half]).fetchone()
    assert expected == 20 and run.recall == found / expected
    truth = exact_knn(vectors, 4)
    exact = conn.execute(
        "SELECT identifier, neighbour FROM ccvec.knn_exact_within(%s, %s, %s, 4)",
        [MODEL, ids[::3], [2.0] * 8],
    ).fetchall()
    assert set(exact) == {(ids[i], ids[j]) for i in range(0, len(ids), 3) for j in truth[i]}

    nearest: dict[uuid.UUID, list[float]] = {}
    for image, _, distance in conn.execute(
        "SELECT * FROM ccvec.knn_exact_within(%s, %s, %s, 4) ORDER BY 1, 3", [MODEL, ids[::3], [2.0] * 8]
    ):
        nearest.setdefault(image, []).append(distance)

    def missing(drop: dict[int, int]):  # a search that misses the farthest `drop[ef]` of k at breadth ef
        def search(conn, model, sample, k, ef):
            return {i: nearest[i][: k - drop.get(ef, 0)] for i in sample}

        return search

    monkeypatch.setattr(graph, "_nearest", missing({64: 2, 128: 1}))
    assert graph.choose_ef_search(conn, MODEL, 4, ids[::3]).tried == ((64, 0.5), (128, 0.75), (256, 1.0))
    monkeypatch.setattr(graph, "_nearest", missing({64: 3, 128: 2, 256: 1, 512: 1}))
    choice = graph.choose_ef_search(conn, MODEL, 4, ids[::3])  # 512 buys nothing over 256: 256
    assert [ef for ef, _ in choice.tried] == [64, 128, 256, 512] and choice.ef_search == 256
    monkeypatch.undo()
    fixed = graph.build(conn, k=4, model=MODEL, ef_search=100)
    row = conn.execute("SELECT ef_search FROM ccvec.knn_run WHERE id = %s", [fixed.id]).fetchone()
    assert fixed.ef_search == 100 and fixed.tried == () and row == (100,)


@pytest.mark.parametrize("method", ["average", "mutual"])
def test_clusters_at_the_ends_and_in_between(conn: psycopg.Connection, method: str) -> None:
    vectors = three_groups(np.random.default_rng(3))
    ids = add_vectors(conn, vectors)
    graph.build(conn, k=6, model=MODEL)  # 4 edges inside each group of 5, 2 leaving it
    labels = {}
    for sim in (0.0, 0.5, 1.0):
        run_id = graph.cluster(conn, sim, method)
        labels[sim] = dict(
            conn.execute(
                "SELECT identifier, cluster FROM ccvec.cluster_member WHERE run_id = %s", [run_id]
            ).fetchall()
        )
        assert set(labels[sim]) == set(ids)  # every image labelled, singletons too
    assert set(labels[0.0].values()) == {0}
    assert sorted(labels[1.0].values()) == list(range(len(ids)))
    groups = [set(labels[0.5][ids[i]] for i in range(g * 5, g * 5 + 5)) for g in range(3)]
    assert all(len(g) == 1 for g in groups) and len(set.union(*groups)) == 3
    current = dict(conn.execute("SELECT identifier, cluster FROM ccvec.image_cluster").fetchall())
    assert current == labels[1.0]  # the view shows the newest run


def test_mutual_edges_stop_chaining(conn: psycopg.Connection) -> None:
    """X lies between groups A and B: X lists one of each as its nearest, neither lists X. Plain kNN
    components chain A-X-B into one cluster; mutual kNN keeps A and B apart and X alone."""
    a = [unit([np.cos(t), np.sin(t), 0]) for t in np.radians([0, 2, 4])]
    b = [unit([np.cos(t), np.sin(t), 0]) for t in np.radians([86, 88, 90])]
    x = [unit([1, 1, 0])]
    c = [unit([0.05, 0.02, 1]), unit([0.02, 0.05, 1])]  # far away: sets the low end of the scale
    ids = add_vectors(conn, np.stack(a + b + x + c))
    graph.build(conn, k=2, model=MODEL)
    sizes = {}
    for mutual in (False, True):
        run_id = graph.cluster(conn, 0.2, method="mutual" if mutual else "knn")
        sizes[mutual] = sorted(
            r[0]
            for r in conn.execute(
                "SELECT count(*) FROM ccvec.cluster_member WHERE run_id = %s GROUP BY cluster", [run_id]
            )
        )
    assert sizes[False] == [2, 7]
    assert sizes[True] == [1, 2, 3, 3] and len(ids) == 9


def test_inferred_tags_and_popularity_views(conn: psycopg.Connection) -> None:
    vectors = three_groups(np.random.default_rng(4), per_group=4)
    tags = [["cat", "animal"], ["cat"], ["cat", "pet"], []] + [["dog"]] * 4 + [["car"], [], ["car"], ["car"]]
    popularity = [0.9, None, 0.5, None, 0.1, 0.2, None, None, None, None, None, 0.7]
    ids = add_vectors(conn, vectors, tags, popularity)
    run = graph.build(conn, k=3, model=MODEL)
    graph.refresh_inferred(conn)
    got = {
        (i, t): (s, n)
        for i, t, s, n in conn.execute("SELECT identifier, tag, score, support FROM ccvec.inferred_tags")
    }
    # independent computation from the stored edges
    e = edges(conn, run.id)
    tag_of = dict(zip(ids, tags, strict=True))
    expected = {}
    for ident, nbs in e.items():
        total = sum(s for _, _, s in nbs)
        for tag in {t for nb, _, _ in nbs for t in tag_of[nb]}:
            carriers = [s for nb, _, s in nbs if tag in tag_of[nb]]
            score = sum(carriers) / total
            if len(carriers) >= 2 and score >= 0.3 and tag not in tag_of[ident]:
                expected[(ident, tag)] = (score, len(carriers))
    assert set(got) == set(expected) and expected
    for key, (score, support) in expected.items():
        assert got[key][0] == pytest.approx(score, abs=1e-5) and got[key][1] == support
    assert (ids[3], "cat") in got  # the untagged cat picks up "cat" from its group
    assert not any(t == "dog" for (i, t) in got if i in ids[:4])

    pop = dict(
        (i, (est, n))
        for i, est, n in conn.execute(
            "SELECT identifier, estimate, support FROM ccvec.neighbourhood_popularity"
        )
    )
    pop_of = dict(zip(ids, popularity, strict=True))
    for ident, nbs in e.items():
        having = [(s, pop_of[nb]) for nb, _, s in nbs if pop_of[nb] is not None]
        if not having:
            assert ident not in pop
            continue
        estimate = sum(s * p for s, p in having) / sum(s for s, _ in having)
        assert pop[ident][0] == pytest.approx(estimate, abs=1e-5) and pop[ident][1] == len(having)
    # a second refresh runs concurrently (the views are populated now) and gives the same rows
    graph.refresh_inferred(conn)
    assert conn.execute("SELECT count(*) FROM ccvec.inferred_tags").fetchone()[0] == len(expected)


def test_similar_in_sql_and_errors(conn: psycopg.Connection) -> None:
    vectors = three_groups(np.random.default_rng(5))
    ids = add_vectors(conn, vectors)
    graph.ensure_index(conn, MODEL)
    # Through the index, as on a large table: its cosine opclass compares re-rounded normalised
    # copies, which put ids[4] (0.99968) and ids[1] (0.99961) in the wrong order before 0026.
    conn.execute("SET enable_seqscan = off")
    found = graph.similar(conn, ids[0], 3, MODEL)
    assert [i for i, _ in found] == [ids[j] for j in exact_knn(vectors, 3)[0]]
    assert [s for _, s in found] == sorted((s for _, s in found), reverse=True)
    with pytest.raises(CcvecError, match="has no hand embedding"):
        graph.similar(conn, uuid.uuid4(), 3, MODEL)
    with pytest.raises(CcvecError, match=r"sim must be between 0 and 1, not 1\.5"):
        graph.check_sim(conn, 1.5)


def test_export_clusters_folders_and_contact_sheets(conn: psycopg.Connection, tmp_path) -> None:
    from PIL import Image

    from ccvec import export
    from ccvec.load import LoadOptions, load
    from ccvec.models import registry

    from .tiny_model import build_tiny_model, tiny_spec

    registry.add_model(conn, build_tiny_model(tmp_path / "tiny.onnx"), tiny_spec("tiny-export"))
    photos = tmp_path / "photos"
    photos.mkdir()
    rng = np.random.default_rng(6)
    for colour, name in (((200, 30, 30), "red"), ((30, 30, 200), "blue")):
        for i in range(3):
            noise = rng.integers(-20, 20, (32, 32, 3))
            Image.fromarray(np.clip(np.array(colour) + noise, 0, 255).astype(np.uint8)).save(
                photos / f"{name}{i}.png"
            )
    load(str(photos), LoadOptions(model="tiny-export", workers=0))
    graph.build(conn, k=4, model="tiny-export")  # 2 edges inside each colour, 2 across
    run_id = graph.cluster(conn, 0.5)
    clusters = export.cluster_files(conn, run_id, min_size=2)
    assert sorted(len(m) for m in clusters.values()) == [3, 3]
    assert all(
        len({p.name[:-5] for p, _ in m}) == 1 for m in clusters.values()
    )  # red with red, blue with blue
    out = tmp_path / "out"
    assert export.export_folders(clusters, out) == 6
    links = sorted(out.glob("cluster_with_3/cluster_*/*.png"))
    assert len(links) == 6 and all(p.is_symlink() and p.resolve().parent == photos for p in links)
    sheets = export.export_sheets(clusters, out, 5)
    assert len(sheets) == 2 and Image.open(sheets[0]).size[0] == export.COLUMNS * export.THUMB
    with pytest.raises(CcvecError, match="is not empty"):
        export.export_folders(clusters, out)


def test_index_build_memory_holds_the_graph_within_a_share_of_ram() -> None:
    """maintenance_work_mem for an HNSW build: the whole graph when RAM allows, never below the
    old fixed 1 GB, never above a quarter of RAM (split between builds that run at once)."""
    from ccvec import db, defaults

    def mib(setting: str) -> int:
        assert setting.endswith("MB")
        return int(setting[:-2])

    cap = db.ram_bytes() * defaults.INDEX_BUILD_MEMORY_SHARE // 2**20
    assert mib(graph.build_memory(1_000, 2 * 1280)) == 1024  # small: the floor
    rows = 200_000  # 200k x (2,560 + 1,536) bytes x 1.25 = 977 MiB: below the floor
    assert mib(graph.build_memory(rows, 2 * 1280)) == 1024
    rows = 1_000_000  # 4.8 GiB of graph
    need = rows * (2 * 1280 + defaults.INDEX_LINK_BYTES) * 5 // 4 // 2**20
    assert abs(mib(graph.build_memory(rows, 2 * 1280)) - max(1024, min(need, cap))) <= 1  # MiB rounding
    assert abs(mib(graph.build_memory(rows, 2 * 1280, concurrent=2)) - max(1024, min(need, cap // 2))) <= 1
    assert abs(mib(graph.build_memory(10**9, 2 * 1280)) - max(1024, cap)) <= 1  # never more than the share
    assert mib(graph.build_memory(rows, 1280 // 8)) < mib(graph.build_memory(rows, 2 * 1280))  # binary


def test_the_embedded_server_is_local(conn: psycopg.Connection) -> None:
    """Build memory is sized from this machine's RAM only for a server on it: the embedded one is."""
    from ccvec import db

    assert conn.info.host.startswith("/") and db.server_is_local(conn)


def test_prune_deletes_old_runs_and_keeps_what_is_shown(conn: psycopg.Connection, database_url: str) -> None:
    """Every build and clustering keeps its rows; `ccvec graph prune` deletes the runs nothing reads
    (older graphs, cluster runs that are not the newest of their level on the current graph) and
    keeps the graph the newest VisualRank ran on, and unfinished builds unless asked; a build still
    running (it holds its run's claim) even then."""
    from ccvec import clusters, visualrank

    add_vectors(conn, three_groups(np.random.default_rng(8)))
    first = graph.build(conn, k=3, model=MODEL)
    clusters.cluster_louvain(conn)  # on the first graph
    abandoned = conn.execute("SELECT ccvec.knn_run_start(%s, 4, 40)", [MODEL]).fetchone()[0]  # k=3 resumes
    current = graph.build(conn, k=3, model=MODEL)
    clusters.cluster_louvain(conn)
    shown = clusters.cluster_louvain(conn)  # the newest default-level run: what image_cluster shows
    running = conn.execute("SELECT ccvec.knn_run_start(%s, 3, 40)", [MODEL]).fetchone()[0]
    visualrank.visualrank(conn, first.id)  # the newest VisualRank is on the first graph
    conn.commit()
    builder = psycopg.connect(database_url, autocommit=True)  # the build of `running`, still at work
    builder.execute("SELECT ccvec.knn_run_claim(%s)", [running])
    view = "SELECT identifier, cluster, run_id FROM ccvec.image_cluster ORDER BY 1"
    before = conn.execute(view).fetchall()
    listed = {(kind, run) for kind, run, _, _ in graph.prunable(conn)}
    assert listed == {("clusters", shown - 2), ("clusters", shown - 1)}  # unfinished builds are kept
    assert sorted(graph.prune(conn)) == [("clusters", 2, 30)]
    assert conn.execute(view).fetchall() == before and {r[2] for r in before} == {shown}
    assert graph.prunable(conn) == []
    assert [(kind, run) for kind, run, _, _ in graph.prunable(conn, unfinished=True)] == [
        ("graph", abandoned)
    ]
    assert graph.prune(conn, unfinished=True) == [("graph", 1, 0)]
    builder.execute("SELECT ccvec.knn_run_release(%s)", [running])  # the build stopped: interrupted now
    builder.close()
    assert graph.prune(conn, unfinished=True) == [("graph", 1, 0)]
    visualrank.visualrank(conn, current.id)  # now the first graph is read by nothing
    conn.commit()
    assert graph.prune(conn) == [("graph", 1, 15 * 3)]
    assert (now := graph.current(conn)) is not None and now.id == current.id
    kept = {r[0] for r in conn.execute("SELECT id FROM ccvec.knn_run")}
    assert kept == {current.id}
    left = conn.execute("SELECT count(*) FROM ccvec.knn_edge WHERE run_id = %s", [first.id]).fetchone()
    assert left == (0,)


def adjacency_edges(adjacency: visualrank.Adjacency) -> set[tuple[uuid.UUID, uuid.UUID, float]]:
    """The stored adjacency back as (image, neighbour, similarity) triples."""
    ids = [uuid.UUID(bytes=b.tobytes()) for b in adjacency.nodes.astype(">u8")]
    return {
        (ids[s], ids[t], float(w))
        for s, t, w in zip(adjacency.sources(), adjacency.targets, adjacency.weights, strict=True)
    }


def edge_triples(conn: psycopg.Connection, run_id: int) -> set[tuple[uuid.UUID, uuid.UUID, float]]:
    # the text form of a real is its shortest decimal, not the float32 itself
    return {
        (i, nb, float(np.float32(sim))) for i, listed in edges(conn, run_id).items() for nb, _, sim in listed
    }


def test_build_and_add_store_the_adjacency_visualrank_reads(conn: psycopg.Connection) -> None:
    """The graph's writers leave its adjacency by position stored and current: the same edges, nodes
    in identifier order; `graph add` stores it anew with the new images' edges and updated lists."""
    rng = np.random.default_rng(6)
    vectors = three_groups(rng, per_group=6)
    add_vectors(conn, vectors[:12])
    run = graph.build(conn, k=3, model=MODEL)
    built = visualrank.stored_adjacency(conn, run.id)
    assert built is not None and adjacency_edges(built) == edge_triples(conn, run.id)
    ids = [uuid.UUID(bytes=b.tobytes()) for b in built.nodes.astype(">u8")]
    assert ids == sorted(ids) and len(ids) == 12
    add_vectors(conn, vectors[12:])
    assert graph.add_new(conn) == 6
    added = visualrank.stored_adjacency(conn, run.id)
    assert added is not None and len(added.nodes) == 18
    assert adjacency_edges(added) == edge_triples(conn, run.id) != adjacency_edges(built)


def test_a_graph_writer_does_not_wait_long_for_edge_locks_nor_fail_on_them(
    conn: psycopg.Connection, database_url: str, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """`graph add` beside another session holding an uncommitted write on knn_edge: the images get
    their edges and the command succeeds after ADJACENCY_WAIT, saying in one line that VisualRank's
    input was not stored; the next VisualRank reads the edges and stores it."""
    monkeypatch.setattr(graph, "ADJACENCY_WAIT", "1s")
    vectors = three_groups(np.random.default_rng(9), per_group=5)
    add_vectors(conn, vectors[:10])
    run = graph.build(conn, k=3, model=MODEL)
    add_vectors(conn, vectors[10:])
    with psycopg.connect(database_url) as other:
        other.execute("DELETE FROM ccvec.knn_edge WHERE run_id = -1")  # holds its lock, uncommitted
        conn.execute("SET lock_timeout = '20s'")  # a writer that waits fails the test, not hangs it
        assert graph.add_new(conn) == 5
        other.rollback()
    assert "VisualRank's input not stored" in capsys.readouterr().err
    assert visualrank.stored_adjacency(conn, run.id) is None
    assert len(edges(conn, run.id)) == 15  # the graph itself is complete
    visualrank.visualrank(conn, run.id)
    conn.commit()
    stored = visualrank.stored_adjacency(conn, run.id)
    assert stored is not None and adjacency_edges(stored) == edge_triples(conn, run.id)


def test_a_graph_past_the_adjacency_limit_is_built_without_it(
    conn: psycopg.Connection, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """Past ADJACENCY_MAX_EDGES the client would hold every edge to store VisualRank's input: the
    graph is built, and one line says the input is left to the refresh."""
    monkeypatch.setattr(graph, "ADJACENCY_MAX_EDGES", 20)
    add_vectors(conn, three_groups(np.random.default_rng(12), per_group=4))
    run = graph.build(conn, k=3, model=MODEL)
    assert "not stored (over 20 edges)" in capsys.readouterr().err
    assert visualrank.stored_adjacency(conn, run.id) is None and len(edges(conn, run.id)) == 12
