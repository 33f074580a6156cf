"""Semantic neighbours: the HNSW index, the kNN graph (built once, extended incrementally),
clusters, and refreshing what is inferred from the graph. The work is SQL in
`sql/0004_graph.up.sql` and `sql/0016_graph_functions.up.sql`; this module drives it in committed
batches with progress.
"""

from __future__ import annotations

import contextlib
import math
import random
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import LiteralString

import numpy as np
import numpy.typing as npt
import psycopg
from pgvector import HalfVector

from ccvec import db, defaults, vector_pass, visualrank
from ccvec.errors import CcvecError
from ccvec.models.registry import DEFAULT_MODEL

# Chosen by bench/graph.py (docs/graph.md): recall@10 >= 0.95 at these settings.
HNSW_M = 16
HNSW_EF_CONSTRUCTION = 64
EF_SEARCH = defaults.EF_SEARCH
DEFAULT_K = defaults.GRAPH_K
MAINTENANCE_WORKERS = 2
BATCH = defaults.SEARCH_BATCH
# how long a graph writer waits for other sessions' edge writes before leaving VisualRank's input
# to the next refresh (_store_adjacency)
ADJACENCY_WAIT = "30s"
ADJACENCY_MAX_EDGES = 100_000_000  # 10M images at k = 10: about 14 GB in the client at the peak

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class GraphRun:
    id: int
    model: str
    k: int
    images: int
    recall: float | None
    ef_search: int | None = None
    tried: tuple[tuple[int, float], ...] = ()  # (breadth, sampled recall) when the build chose it
    resumed_with: int | None = None  # images that had their edges when an interrupted build resumed


Exact = vector_pass.Neighbours  # image -> its exact k nearest (id, distance)


@dataclass(frozen=True)
class EfChoice:
    """The breadth chosen for a build, every breadth measured on the way (in order), and the exact
    neighbours of the whole sample (one pass), for the run's recall on the half not chosen on."""

    ef_search: int
    tried: tuple[tuple[int, float], ...]  # (breadth, recall@k on the half chosen on)
    exact: Exact


def require_embeddings(conn: psycopg.Connection, model: str) -> int:
    count: int = db.fetch_row(
        conn.execute("SELECT ccvec.embedding_count(%s)", [model]),
        "counting embeddings",
    )[0]
    if count < 2:
        held = {0: "no images", 1: "one image"}[count]
        raise CcvecError(
            f"model {model!r} has {held} embedded: a kNN graph needs two or more; "
            f"`ccvec load` more images (with --model {model})"
        )
    return count


def build_memory(rows: int, vector_bytes: int, concurrent: int = 1) -> str:
    """maintenance_work_mem for an HNSW build of `rows` vectors of `vector_bytes` each: the whole
    graph if the machine allows (defaults.INDEX_BUILD_*). Past it pgvector goes on building on disk,
    much slower: 1 GB for every 1M-row build made its HNSW take 43 min (docs/benchmarks.md).
    RAM is this machine's: used only for a server on it (partitions._build_memory); for one elsewhere
    builds get the floor unless partitions.build_index is given a maintenance_work_mem."""
    graph_bytes = rows * (vector_bytes + defaults.INDEX_LINK_BYTES) * 5 // 4  # and a quarter to spare
    cap = db.ram_bytes() * defaults.INDEX_BUILD_MEMORY_SHARE / max(concurrent, 1)
    chosen = max(min(graph_bytes, cap), defaults.INDEX_BUILD_MEMORY_MIN)
    return f"{int(chosen) // 2**20}MB"


def ensure_index(conn: psycopg.Connection, model: str) -> bool:
    """Build the model's HNSW index if missing (after bulk loading, as pgvector advises)."""
    if db.fetch_row(conn.execute("SELECT ccvec.has_embedding_index(%s)", [model]), "checking the index")[0]:
        conn.commit()
        return False
    from ccvec import partitions  # per partition, in parallel, when the table is partitioned

    partitions.build_index(conn, model)
    return True


def similar(
    conn: psycopg.Connection, identifier: uuid.UUID, k: int = DEFAULT_K, model: str = DEFAULT_MODEL
) -> list[tuple[uuid.UUID, float]]:
    """(identifier, cosine similarity) of the k nearest images."""
    return db.execute_checked(
        conn, "SELECT * FROM ccvec.similar(%s, %s, %s)", [identifier, k, model]
    ).fetchall()


def nearest_to(
    conn: psycopg.Connection, vector: npt.NDArray[np.float32], k: int = DEFAULT_K, model: str = DEFAULT_MODEL
) -> list[tuple[uuid.UUID, float]]:
    """(identifier, cosine similarity) of the k images nearest to an embedding of `model` that is not
    stored: a query by example with an image from outside the collection."""
    return db.execute_checked(
        conn, "SELECT * FROM ccvec.nearest(%s, %s, %s)", [model, HalfVector(vector), k]
    ).fetchall()


def build(
    conn: psycopg.Connection,
    k: int = DEFAULT_K,
    model: str = DEFAULT_MODEL,
    ef_search: int | None = None,
    recall_sample: int = defaults.RECALL_SAMPLE,
    on_progress: Progress | None = None,
    jobs: int = defaults.SEARCH_JOBS,
) -> GraphRun:
    """A new graph over every embedded image; it becomes the current one when complete.

    Without `ef_search`, the breadth is chosen on half of a random sample of `recall_sample` images
    (choose_ef_search; EF_SEARCH when the sample is under 2), and the run's recall is measured on the
    other half, so the figure stored is not the one the choice was made on. The searches run in
    batches of BATCH images, one SQL call each (a LATERAL HNSW query per image), over `jobs`
    connections at once; the edges do not depend on `jobs` or the batch size. One graph writer at a
    time (db.job): a second build or `graph add` waits for this one.

    An unfinished run of the same model and k that no other build holds (an interrupted build) is
    resumed instead, at its own breadth: only the images without edges are searched, and its recall
    is measured on the whole sample (ccvec.resumable_knn_run).

    Last, the run's adjacency by position is stored for VisualRank (visualrank.store_adjacency)."""
    with db.job(conn, "graph", "graph build"):
        run = _build(conn, k, model, ef_search, recall_sample, on_progress, jobs)
        _store_adjacency(conn, run)
        return run


def _build(
    conn: psycopg.Connection,
    k: int,
    model: str,
    ef_search: int | None,
    recall_sample: int,
    on_progress: Progress | None,
    jobs: int,
) -> GraphRun:
    require_embeddings(conn, model)
    ensure_index(conn, model)
    ids = [r[0] for r in conn.execute("SELECT * FROM ccvec.embedded_images(%s)", [model])]
    sample = random.Random(0).sample(sorted(ids), min(recall_sample, len(ids)))
    query = "SELECT * FROM ccvec.resumable_knn_run(%s, %s, %s)"
    unfinished = conn.execute(query, [model, k, ef_search]).fetchone()  # claimed, when there is one
    conn.commit()
    choice: EfChoice | None = None
    if unfinished is not None:
        run_id, breadth, resumed_with = unfinished
        todo = [
            r[0]
            for r in conn.execute("SELECT * FROM ccvec.images_missing_from_graph(%s, %s)", [model, run_id])
        ]
    else:
        if ef_search is None and len(sample) >= 2:
            choice = choose_ef_search(conn, model, k, sample)
        breadth = ef_search or (choice.ef_search if choice else EF_SEARCH)
        run_id = _start(conn, model, k, breadth)
        resumed_with, todo = None, ids
    conn.commit()
    try:
        search(conn, "SELECT ccvec.knn_insert(%s, %s)", run_id, todo, jobs, on_progress)
        if choice:  # the half of the sample the breadth was not chosen on, against the same exact pass
            checked = {i: choice.exact[i] for i in sample[1::2]}
            recall, measured = edge_recall(conn, run_id, checked), len(checked)
        else:
            recall, measured = sample_recall(conn, run_id, sample), len(sample)
        conn.execute("SELECT ccvec.knn_run_finish(%s, %s, %s, %s)", [run_id, len(ids), recall, measured])
        make_current(conn, run_id)
    finally:
        # a caller that goes on (a test, a library user) lets the next build resume; a broken
        # connection has lost the claim already
        with contextlib.suppress(psycopg.Error):
            conn.rollback()
            conn.execute("SELECT ccvec.knn_run_release(%s)", [run_id])
            conn.commit()
    tried = choice.tried if choice else ()
    return GraphRun(run_id, model, k, len(ids), recall, breadth, tried, resumed_with)


def _store_adjacency(conn: psycopg.Connection, run: GraphRun) -> bool:
    """Store the finished run's adjacency for VisualRank (visualrank.store_adjacency). The graph is
    done and committed either way: when another session keeps edges locked past ADJACENCY_WAIT,
    the graph is past ADJACENCY_MAX_EDGES (the client holds every edge, about 140 bytes each at the
    peak) or memory runs out, one line says so and the next refresh reads the edges."""
    if run.images * run.k > ADJACENCY_MAX_EDGES:
        _not_stored(run.id, f"over {ADJACENCY_MAX_EDGES:,} edges")
        return False
    try:
        db.one_row(conn, "SELECT set_config('lock_timeout', %s, true)", [ADJACENCY_WAIT])
        stored = visualrank.store_adjacency(conn, run.id) is not None
        conn.commit()
        return stored
    except (psycopg.errors.LockNotAvailable, CcvecError, MemoryError) as error:
        conn.rollback()
        _not_stored(run.id, str(error).splitlines()[0] if str(error) else type(error).__name__)
        return False


def _not_stored(run_id: int, reason: str) -> None:
    print(
        f"ccvec: graph run {run_id}: VisualRank's input not stored ({reason}); "
        "the next refresh reads the edges",
        file=sys.stderr,
    )


def _start(conn: psycopg.Connection, model: str, k: int, breadth: int) -> int:
    """A new unfinished run, claimed by this session until the build ends (ccvec.knn_run_claim)."""
    run_id: int = db.fetch_row(
        conn.execute("SELECT ccvec.knn_run_start(%s, %s, %s)", [model, k, breadth]), "creating the kNN run"
    )[0]
    conn.execute("SELECT ccvec.knn_run_claim(%s)", [run_id])  # new: no other session holds it
    return run_id


def _nearest(
    conn: psycopg.Connection, model: str, ids: list[uuid.UUID], k: int, ef_search: int
) -> dict[uuid.UUID, list[float]]:
    """The distances of each image's k nearest through the HNSW index at this breadth."""
    found: dict[uuid.UUID, list[float]] = {i: [] for i in ids}
    rows = conn.execute("SELECT * FROM ccvec.knn_candidates(%s, %s, %s, %s)", [model, ids, k, ef_search])
    for image, _, distance in rows:
        found[image].append(distance)
    conn.commit()  # knn_candidates' planner settings last until the end of the transaction
    return found


def _recall(found: dict[uuid.UUID, list[float]], exact: Exact) -> float:
    """Share of the exact k nearest matched, a neighbour found counting as right when it is as near
    as the exact k-th (so equally near copies do not count as misses)."""
    hits = 0
    for image, near in exact.items():
        if near:
            kth = max(d for _, d in near) + 1e-6
            hits += min(len(near), sum(d <= kth for d in found[image]))
    total = sum(len(near) for near in exact.values())
    return hits / total if total else 1.0


def edge_recall(conn: psycopg.Connection, run_id: int, exact: Exact) -> float | None:
    """Share of these images' exact k nearest that are edges of the run (as ccvec.knn_recall counts)."""
    total = sum(len(near) for near in exact.values())
    if not total:
        return None
    edges = set(conn.execute("SELECT * FROM ccvec.knn_run_edges(%s, %s)", [run_id, list(exact)]).fetchall())
    conn.commit()
    return sum((image, j) in edges for image, near in exact.items() for j, _ in near) / total


def choose_ef_search(
    conn: psycopg.Connection,
    model: str,
    k: int,
    sample: list[uuid.UUID],
    target: float = defaults.RECALL_TARGET,
    most: int = defaults.EF_SEARCH_MAX,
) -> EfChoice:
    """The smallest hnsw.ef_search, from EF_SEARCH (at least k + 1) doubling up to `most`, whose
    recall@k on every other image of `sample` (sample[::2]) reaches `target` with 95 % confidence
    (one-sided normal bound over the sample's exact pairs: a recall read on 1,000 pairs varies by
    about 0.01, and at 100k a breadth read as 0.95 gave 0.933 on the other half); when a doubling
    gains less than EF_SEARCH_MIN_GAIN, the breadth before it (more breadth buys next to nothing);
    `most` when neither happens.

    The recall a breadth buys depends on the catalog: 0.97-0.99 at 64 on synthetic variants of the
    shared photos at 100k, 0.79 on a synthetic 1M (docs/benchmarks.md). The exact neighbours of the
    whole sample come from one pass (exact_neighbours); the other half is left for the run's own
    recall."""
    breadth = max(EF_SEARCH, k + 1)  # knn_candidates searches at least k + 1 wide
    found = _nearest(conn, model, sample, k, breadth)
    exact = exact_neighbours(conn, model, sample, k)
    half = {i: exact[i] for i in sample[::2]}
    pairs = max(1, sum(len(near) for near in half.values()))

    def reaches(recall: float) -> bool:  # with 95 % confidence, not just on this sample
        return recall - 1.645 * math.sqrt(recall * (1 - recall) / pairs) >= target

    tried = [(breadth, _recall(found, half))]
    while not reaches(tried[-1][1]) and breadth < most:
        breadth = min(breadth * 2, most)
        tried.append((breadth, _recall(_nearest(conn, model, sample[::2], k, breadth), half)))
        if tried[-1][1] - tried[-2][1] < defaults.EF_SEARCH_MIN_GAIN:
            return EfChoice(tried[-2][0], tuple(tried), exact)
    return EfChoice(breadth, tuple(tried), exact)


def exact_neighbours(conn: psycopg.Connection, model: str, sample: list[uuid.UUID], k: int) -> Exact:
    """The sample's exact k nearest under `model` (as ccvec.knn_exact_within finds them), from one
    pass over the model's vectors in numpy: in SQL each of the sample x catalog distances is a
    pgvector call (about 25 s for 200 images at 100k, minutes at 1M; docs/benchmarks.md)."""
    ids, queries = vector_pass.read(conn, "SELECT * FROM ccvec.embeddings_of(%s, %s)", [model, sample])
    exact = vector_pass.exact_nearest(ids, queries, vector_pass.every(conn, model), k)
    conn.commit()
    return {i: exact.get(i, []) for i in sample}


def sample_recall(conn: psycopg.Connection, run_id: int, sample: list[uuid.UUID]) -> float | None:
    """Recall@k of the run on these images: their exact k nearest (one pass) found as edges."""
    if not sample:
        return None
    model, k = db.fetch_row(
        conn.execute("SELECT * FROM ccvec.knn_run_settings(%s::bigint)", [run_id]), f"no kNN run {run_id}"
    )
    return edge_recall(conn, run_id, exact_neighbours(conn, model, sample, k))


def search(
    conn: psycopg.Connection,
    sql: LiteralString,
    run_id: int,
    ids: list[uuid.UUID],
    jobs: int,
    on_progress: Progress | None = None,
    batch: int | None = None,
) -> None:
    """`sql` (run id, batch of identifiers) over `ids` in committed batches on `jobs` connections."""
    batch = batch or BATCH
    starts = range(0, len(ids), batch)
    batches: list[list[object]] = [[run_id, ids[start : start + batch]] for start in starts]
    done = [0]

    def progress(i: int) -> None:
        done[0] += min(batch, len(ids) - starts[i])
        if on_progress:
            on_progress(done[0], len(ids))

    db.run_batches(conn, sql, batches, jobs, progress)


def make_current(conn: psycopg.Connection, run_id: int) -> None:
    conn.execute("SELECT ccvec.knn_make_current(%s)", [run_id])
    conn.commit()


def current(conn: psycopg.Connection) -> GraphRun | None:
    row = conn.execute("SELECT * FROM ccvec.current_knn_run()").fetchone()
    return GraphRun(*row) if row else None


def prunable(conn: psycopg.Connection, unfinished: bool = False) -> list[tuple[str, int, datetime, int]]:
    """(kind, run id, started, rows held) of the runs prune() would delete (ccvec.prunable_runs)."""
    return conn.execute("SELECT * FROM ccvec.prunable_runs(%s)", [unfinished]).fetchall()


def prune(conn: psycopg.Connection, unfinished: bool = False) -> list[tuple[str, int, int]]:
    """Delete the graph and cluster runs nothing shows (unfinished builds too when asked: one may
    still be running); (kind, runs, rows) per kind. Committed."""
    deleted = conn.execute("SELECT * FROM ccvec.prune_runs(%s)", [unfinished]).fetchall()
    conn.commit()
    return deleted


def add_new(conn: psycopg.Connection, on_progress: Progress | None = None) -> int:
    """Give images embedded since the current graph was built their edges, and update older lists;
    then store the graph's adjacency for VisualRank anew. One graph writer at a time (db.job): two
    at once would add the same images twice."""
    with db.job(conn, "graph", "adding images to the graph"):
        added = _add_new(conn, on_progress)
        if added:
            run = current(conn)
            assert run is not None  # _add_new raised otherwise
            _store_adjacency(conn, run)
        return added


def _add_new(conn: psycopg.Connection, on_progress: Progress | None) -> int:
    run = current(conn)
    if run is None:
        raise CcvecError("no kNN graph yet: run `ccvec graph build`")
    new = [
        r[0]
        for r in conn.execute("SELECT * FROM ccvec.images_missing_from_graph(%s, %s)", [run.model, run.id])
    ]
    for start in range(0, len(new), BATCH):
        conn.execute("SELECT ccvec.knn_add(%s, %s)", [run.id, new[start : start + BATCH]])
        conn.commit()
        if on_progress:
            on_progress(min(start + BATCH, len(new)), len(new))
    return len(new)


# ---------------------------------------------------------------- clusters


METHODS = ("mutual", "average", "knn")
DEFAULT_SIM = defaults.CLUSTER_SIM


def check_sim(conn: psycopg.Connection, sim: float) -> None:
    """Raise the one-line error for a similarity index outside [0, 1] (ccvec.check_sim, in SQL)."""
    db.execute_checked(conn, "SELECT ccvec.check_sim(%s::real)", [sim])


def cluster(conn: psycopg.Connection, sim: float, method: str = "mutual", level: str = "default") -> int:
    """Label every image of the current graph; returns the cluster run id.

    mutual (default): components of mutual-kNN edges above the threshold, fast at any size;
    average: average-linkage agglomeration on the graph, as good on labelled photos and less
    sensitive to k, but slow on large graphs; knn: components of all kNN edges (chains; for
    comparison).
    """
    if method not in METHODS:
        raise CcvecError(f"unknown clustering method {method!r}: use one of {', '.join(METHODS)}")
    run = current(conn)
    if run is None:
        raise CcvecError("no kNN graph yet: run `ccvec graph build`")
    if method == "average":
        sql, args = "SELECT ccvec.cluster_average(%s::bigint, %s::real, %s::text)", [run.id, sim, level]
    else:
        sql = "SELECT ccvec.cluster_graph(%s::bigint, %s::real, %s, %s::text)"
        args = [run.id, sim, method == "mutual", level]
    run_id: int = db.fetch_row(db.execute_checked(conn, sql, args), "clustering")[0]  # sim: checked in SQL
    conn.commit()
    return run_id


def cluster_summary(conn: psycopg.Connection, run_id: int) -> tuple[int, int, float, list[tuple[int, int]]]:
    """(clusters, singletons, threshold, [(cluster, size)] of the largest)."""
    clusters, singletons, threshold = db.fetch_row(
        conn.execute("SELECT * FROM ccvec.cluster_run_counts(%s)", [run_id]),
        f"cluster run {run_id}",
    )
    largest = conn.execute("SELECT * FROM ccvec.largest_clusters(%s, %s)", [run_id, 10]).fetchall()
    return clusters, singletons, threshold, largest


def refresh_inferred(conn: psycopg.Connection) -> None:
    """Recompute what reads the graph besides scores: neighbourhood popularity, inferred tags,
    novelty and cluster names (each view concurrently or in place as db.refresh_view decides)."""
    db.refresh_view(conn, "neighbourhood_popularity")
    for _, work in tags_novelty_names():
        work(conn)


def tags_novelty_names(changed_only: bool = True) -> list[tuple[str, Callable[[psycopg.Connection], object]]]:
    """What the graph gives besides popularity, as named steps in order: inferred tags, novelty
    (within the collection and against each reference set: only images not scored yet unless
    `changed_only` is false), cluster names (they read the inferred tags). They read no score, so
    `ccvec refresh` runs them as one chain beside the popularity and authority stages."""
    from ccvec import clusters

    def names(conn: psycopg.Connection) -> None:
        for (run_id,) in conn.execute("SELECT * FROM ccvec.clustered_runs()").fetchall():
            clusters.relabel(conn, run_id)

    return [
        ("inferred tags", lambda c: db.refresh_view(c, "inferred_tags")),
        ("novelty", lambda c: clusters.refresh_scored(c, changed_only)),
        ("cluster names", names),
    ]
