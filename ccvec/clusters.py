"""Clusters people recognise: the default clustering (Louvain modularity on the kNN graph), class
predictions for naming clusters, labels and medoids, calibrated inferred tags, and novelty.

Why Louvain: over the one kNN graph it needs no threshold, so no `sim` to tune per collection, and
it leaves no image alone (bench/clusters.py compares it with imagecluster's algorithm and HDBSCAN on
both shared collections; bench/cluster_candidates.py with the alternatives not chosen). A cluster
above a quarter of the images is split where it has structure of its own (`split_large`). The
labels, medoids, inferred tags and novelty are SQL (sql/0009_clusters.up.sql, 0022_tags_novelty).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING, LiteralString

import numpy as np
import numpy.typing as npt
import psycopg
from psycopg.types.json import Jsonb

from ccvec import db, defaults, vector_pass
from ccvec.errors import CcvecError, counted

if TYPE_CHECKING:
    import scipy.sparse as sp
    from sknetwork.clustering import Louvain

# ---------------------------------------------------------------- class predictions

# The default model stores L2-normalised pooled features; its classifier head is linear, so
# logits = |f| W e + b. The norm |f| is not stored: the median over both shared collections is
# 15.7 (5-95 %: 12.3-19.3), and with it the top-5 classes of the stored embedding match those of the
# full network for 99.5 % (top-1: 100 %) of the 425 shared photos (measured for this module).
FEATURE_NORM = 15.7
TOP_CLASSES = 5


def class_names() -> list[str]:
    """ImageNet-1k class names in output order: each class's first WordNet lemma."""
    text = resources.files("ccvec.data").joinpath("imagenet_classes.tsv").read_text()
    rows = [line.split("\t") for line in text.splitlines() if line and not line.startswith("#")]
    return [lemmas.split(",")[0].strip() for _, _, lemmas in rows]


def classifier_head(conn: psycopg.Connection, model: str) -> tuple[np.ndarray, np.ndarray] | None:
    """(W, b) of the model's classifier head, read from its ONNX file; None for models without one."""
    import onnx
    from onnx import numpy_helper

    from ccvec.models import registry

    try:
        m = registry.get_model(conn, model)
    except CcvecError:  # vectors without a model file here (e.g. loaded elsewhere): no classes
        return None
    if m.spec.extra.get("classes") != "imagenet-1k":
        return None
    graph = onnx.load(str(m.path), load_external_data=False).graph
    init = {i.name: i for i in graph.initializer if i.name in ("fc.w", "fc.b")}
    if len(init) != 2:
        return None
    return numpy_helper.to_array(init["fc.w"]), numpy_helper.to_array(init["fc.b"])


def top_classes(embeddings: np.ndarray, w: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Top classes (best first) and their softmax probabilities for unit-length embeddings."""
    logits = FEATURE_NORM * embeddings @ w.T + b
    logits -= logits.max(axis=1, keepdims=True)
    probs = np.exp(logits)
    probs /= probs.sum(axis=1, keepdims=True)
    top = np.argsort(-probs, axis=1)[:, :TOP_CLASSES]
    return top, np.take_along_axis(probs, top, axis=1)


def predict_classes(conn: psycopg.Connection, model: str, batch: int = 5000) -> int:
    """Store the top classes of every embedding of `model` that has none yet; returns how many."""
    head = classifier_head(conn, model)
    if head is None:
        return 0
    w, b = head
    conn.execute("SELECT ccvec.class_names_add(%s, %s)", [model, class_names()])
    done, after = 0, None
    while True:
        sql: LiteralString = "SELECT * FROM ccvec.unclassified_embeddings(%s, %s, %s)"
        ids, block = vector_pass.read(conn, sql, [model, after, batch])
        if not ids:
            break
        after = ids[-1]
        top, probs = top_classes(block.astype(np.float32), w, b)
        with conn.cursor().copy(
            "COPY ccvec.image_class (model, identifier, classes, probs) FROM STDIN"
        ) as copy:
            for ident, t, p in zip(ids, top, probs, strict=True):
                copy.write_row([model, ident, [int(x) for x in t], [float(x) for x in p]])
        conn.commit()
        done += len(ids)
    conn.commit()
    return done


# ---------------------------------------------------------------- the default clustering


def louvain(resolution: float, seed: int) -> Louvain:
    """scikit-network's Louvain. Seed 0 visits the nodes in identifier order (deterministic: the
    default); another seed shuffles that order, to measure how much the result depends on it."""
    from sknetwork.clustering import Louvain

    return Louvain(resolution=resolution, random_state=seed, shuffle_nodes=seed != 0)


def louvain_labels(
    n: int,
    a: npt.NDArray[np.int64],
    b: npt.NDArray[np.int64],
    w: npt.NDArray[np.float32],
    resolution: float,
    seed: int,
    max_share: float = defaults.CLUSTER_MAX_SHARE,
) -> npt.NDArray[np.int64]:
    """Louvain communities (scikit-network, BSD; compiled, sparse) of the undirected graph on nodes
    0..n-1; an edge's weight is the larger similarity of its two directions. Clusters holding more
    than `max_share` of the images are then split where they have structure of their own
    (`split_large`). Labels are 0..c-1."""
    import scipy.sparse as sp

    adjacency = sp.coo_matrix((w, (a, b)), shape=(n, n)).tocsr()
    adjacency = adjacency.maximum(adjacency.T)
    adjacency.eliminate_zeros()
    if adjacency.nnz == 0:  # no edge of positive similarity: every image is its own community
        return np.arange(n)
    labels: npt.NDArray[np.int64] = louvain(resolution, seed).fit_predict(adjacency)
    labels = split_large(adjacency, labels, max_share, resolution, seed)
    return np.unique(labels, return_inverse=True)[1].astype(np.int64)


def split_large(
    adjacency: sp.csr_matrix,
    labels: npt.NDArray[np.int64],
    max_share: float,
    resolution: float,
    seed: int,
    min_modularity: float = defaults.CLUSTER_SPLIT_MODULARITY,
) -> npt.NDArray[np.int64]:
    """Split every cluster larger than `max_share` of the images by Louvain on its own subgraph,
    when that split has modularity >= `min_modularity` inside the cluster (real sub-structure, such
    as interiors inside one large "indoor" cluster); a cluster without it stays whole. Repeats
    until no large cluster splits (bench/clusters.py measures the effect on both collections)."""
    from sknetwork.clustering import get_modularity

    labels = labels.copy()
    n = len(labels)
    tried: set[int] = set()
    while True:
        ids, counts = np.unique(labels, return_counts=True)
        big = ids[counts > max_share * n]
        large = [int(c) for c in big if int(c) not in tried]
        if not large:
            return labels
        for c in large:
            tried.add(c)
            members = np.flatnonzero(labels == c)
            sub = adjacency[members][:, members]
            if sub.nnz == 0:
                continue
            parts = louvain(resolution, seed).fit_predict(sub)
            if parts.max() == 0 or get_modularity(sub, parts) < min_modularity:
                continue
            labels[members] = labels.max() + 1 + parts  # new ids: each part may split again


def _edge_arrays(
    conn: psycopg.Connection, knn_run: int, chunk: int = 200_000
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.float32]]:
    """(a, b, w) of the graph over cl_node's integer ids (0-based), read in chunks by a server-side
    cursor: ints and floats only, so 10M edges need ~120 MB here."""
    parts = []
    with conn.cursor(name="ccvec_louvain_edges") as cur:
        cur.execute("SELECT * FROM ccvec.louvain_edges(%s)", [knn_run])
        while rows := cur.fetchmany(chunk):
            parts.append(np.array(rows, dtype=np.float64))
    edges = np.concatenate(parts) if parts else np.zeros((0, 3))
    return edges[:, 0].astype(np.int64), edges[:, 1].astype(np.int64), edges[:, 2].astype(np.float32)


def cluster_louvain(
    conn: psycopg.Connection,
    resolution: float = defaults.CLUSTER_RESOLUTION,
    seed: int = 0,
    level: str = "default",
) -> int:
    """Label every image of the current graph by Louvain modularity; returns the cluster run id."""
    from ccvec import graph

    if not defaults.CLUSTER_RESOLUTION_RANGE[0] <= resolution <= defaults.CLUSTER_RESOLUTION_RANGE[1]:
        lo, hi = defaults.CLUSTER_RESOLUTION_RANGE
        raise CcvecError(f"--resolution must be between {lo} and {hi}, not {resolution}")
    run = graph.current(conn)
    if run is None:
        raise CcvecError("no kNN graph yet: run `ccvec graph build`")
    params = {"resolution": resolution, "seed": seed, "max_share": defaults.CLUSTER_MAX_SHARE}
    params["split_modularity"] = defaults.CLUSTER_SPLIT_MODULARITY
    run_id: int = db.fetch_row(
        conn.execute("SELECT ccvec.louvain_run(%s, %s, %s)", [run.id, Jsonb(params), level]),
        "creating the cluster run",
    )[0]
    # the temp table cl_node (node, id 1..n, label) of the graph; n = its size
    n: int = db.fetch_row(conn.execute("SELECT ccvec.louvain_nodes(%s)", [run.id]), "counting the nodes")[0]
    a, b, w = _edge_arrays(conn, run.id)
    labels = louvain_labels(n, a, b, w, resolution, seed)
    del a, b, w
    conn.execute("SELECT ccvec.louvain_label_table()")  # cl_louvain (id, label)
    with conn.cursor().copy("COPY cl_louvain (id, label) FROM STDIN WITH (FORMAT BINARY)") as copy:
        copy.set_types(["int4", "int4"])
        for i, c in enumerate(labels.tolist()):
            copy.write_row([i + 1, c])
    conn.execute("SELECT ccvec.louvain_save(%s)", [run_id])
    conn.commit()
    return run_id


def label(conn: psycopg.Connection, run_id: int) -> int:
    """Class predictions for images without them, then labels and medoids for the run's clusters."""
    return _name(conn, run_id, "SELECT ccvec.label_clusters(%s)")


def relabel(conn: psycopg.Connection, run_id: int) -> int:
    """As label(), keeping sizes and the medoids computed at clustering (a join of every member's
    edges): `ccvec refresh` names the clusters again because names read the inferred tags."""
    return _name(conn, run_id, "SELECT ccvec.relabel_clusters(%s)")


def _name(conn: psycopg.Connection, run_id: int, sql: LiteralString) -> int:
    model: str = db.fetch_row(
        conn.execute("SELECT * FROM ccvec.cluster_run_model(%s)", [run_id]),
        f"cluster run {run_id}",
    )[0]
    predict_classes(conn, model)
    n: int = db.fetch_row(conn.execute(sql, [run_id]), "naming clusters")[0]
    conn.commit()
    return n


@dataclass(frozen=True)
class RunShape:
    """A cluster run's counts, as every command words them: `clusters` counts every cluster, a
    singleton (a cluster of one image) too; people are told clusters of 2 or more and singletons."""

    clusters: int
    singletons: int
    images: int
    largest: int

    @property
    def grouped(self) -> int:
        """Clusters of two or more images (what the listing, the report and the folders show)."""
        return self.clusters - self.singletons

    @property
    def largest_share(self) -> float:
        return self.largest / self.images if self.images else 0.0

    @property
    def singleton_share(self) -> float:
        return self.singletons / self.images if self.images else 0.0

    def describe(self) -> str:
        largest = f"; the largest has {self.largest:,} ({self.largest_share:.0%})" if self.grouped else ""
        return (
            f"{counted(self.grouped, 'cluster')} of 2 or more images, "
            f"{counted(self.singletons, 'singleton')} ({counted(self.images, 'image')}{largest})"
        )


def shape(conn: psycopg.Connection, run_id: int) -> RunShape:
    row = db.fetch_row(
        conn.execute("SELECT * FROM ccvec.cluster_run_shape(%s)", [run_id]),
        f"shape of cluster run {run_id}",
    )
    return RunShape(*[int(x) for x in row])


def require_run(conn: psycopg.Connection, run_id: int) -> None:
    """One line (CcvecError) unless the cluster run exists."""
    db.execute_checked(conn, "SELECT ccvec.require_cluster_run(%s)", [run_id])


def summary(
    conn: psycopg.Connection, run_id: int | None = None
) -> list[tuple[int, str | None, int, uuid.UUID | None, str | None]]:
    """(cluster, label, size, medoid, label source) of a run (default: the newest current one)."""
    if run_id is not None:
        require_run(conn, run_id)
    else:
        row = db.fetch_row(conn.execute("SELECT ccvec.newest_labelled_cluster_run()"), "newest cluster run")
        if row[0] is None:
            raise CcvecError("no labelled clusters yet: run `ccvec cluster`")
        run_id = row[0]
    return conn.execute("SELECT * FROM ccvec.cluster_run_labels(%s)", [run_id]).fetchall()


# ---------------------------------------------------------------- inferred tags


def tags_of(
    conn: psycopg.Connection, identifier: uuid.UUID
) -> tuple[list[str], list[tuple[str, float, int]]]:
    """(own tags, [(inferred tag, score, support)]) of one image."""
    row = conn.execute("SELECT * FROM ccvec.catalog_tags(%s)", [identifier]).fetchone()
    if row is None:
        raise CcvecError(f"no image {identifier} in the catalog")
    own = [t["name"] for t in (row[0] or []) if isinstance(t, dict) and t.get("name")]
    inferred = conn.execute("SELECT * FROM ccvec.inferred_tags_of(%s)", [identifier]).fetchall()
    return own, inferred


def all_tags(conn: psycopg.Connection) -> Iterator[tuple[uuid.UUID, str, float, int, bool]]:
    """(identifier, tag, score, support, already_tagged) of every inferred tag."""
    yield from conn.execute("SELECT * FROM ccvec.inferred_tags_all()")


# ---------------------------------------------------------------- novelty against a reference


def novelty_fit(
    conn: psycopg.Connection,
    name: str,
    reference: str,
    where: str,
    value: str,
    model: str = defaults.MODEL,
    images: Sequence[uuid.UUID] = (),
) -> int:
    """Record the reference set (images of a load source, a provider, carrying a tag, or given as
    `images` with where="images"), the set's centre and per-dimension spreads, and each member's
    leave-one-out spread distance (the scores unseen images are ranked against); returns its size.
    Linear in the set's size: the members' kNN distances (ccvec.novelty_reference_distances, the
    score before migration 0034) are no longer computed, and at most novelty.fit_sample members
    are scored."""
    if where == "images":
        found = conn.execute(
            "SELECT * FROM ccvec.novelty_reference_images(%s, %s, %s, %s)",
            [name, model, reference, list(images)],
        )
    elif where in ("source", "provider", "tag"):
        found = conn.execute(
            "SELECT * FROM ccvec.novelty_reference_set(%s, %s, %s, %s, %s)",
            [name, model, reference, where, value],
        )
    else:
        raise CcvecError(f"unknown reference kind {where!r}: use source, provider, tag or images")
    ids = [r[0] for r in found]
    if len(ids) < 2:
        conn.rollback()
        raise CcvecError(f"reference {reference!r} matches {len(ids)} embedded image(s): need at least 2")
    conn.execute("SELECT ccvec.novelty_reference_fit(%s)", [name])
    # the percentile's scale: members scored leave-one-out, at most novelty.fit_sample of them
    # (the first by identifier: a random sample for random UUIDs), after the centre and spreads
    sample = int(db.fetch_row(conn.execute("SELECT ccvec.setting(%s)", ["novelty.fit_sample"]), "setting")[0])
    scored = sorted(ids)[:sample]
    for start in range(0, len(scored), 500):
        conn.execute("SELECT ccvec.novelty_reference_scores(%s, %s)", [name, scored[start : start + 500]])
    conn.execute("SELECT ccvec.novelty_reference_calibrate(%s)", [name])
    conn.commit()
    return len(ids)


def novelty_score(conn: psycopg.Connection, name: str, batch: int = 2000, changed_only: bool = False) -> int:
    """Score the embedded images outside the reference set; returns how many.

    `changed_only` (what `ccvec refresh` asks for) scores only images with no score for the set:
    a score depends on nothing but the image's embedding and the fit, and a refit or a changed
    embedding deletes the scores it invalidates (migration 0039), so the result equals a full
    rescore. The kNN distance column is searched here, over the members' vectors read once
    (reference_distances), not per image in SQL. A refit while this runs stops it (its batches
    would write nothing): an error, or for `changed_only` 0 scored, and the next refresh scores
    the new fit whole.
    """
    state = conn.execute("SELECT * FROM ccvec.novelty_fit_state(%s)", [name]).fetchone()
    if state is None:
        raise CcvecError(f"no novelty model {name!r}: run `ccvec novelty fit {name} ...` first")
    model, k, fitted_at = state
    if changed_only:
        picked = conn.execute("SELECT * FROM ccvec.novelty_unscored(%s)", [name])
    else:
        picked = conn.execute("SELECT * FROM ccvec.novelty_candidates(%s, %s)", [model, name])
    ids = [r[0] for r in picked]
    members = None
    if k and ids:  # the members' vectors, read once for every batch's exact search
        members = vector_pass.read(conn, "SELECT * FROM ccvec.novelty_member_vectors(%s)", [name])[1]
    for start in range(0, len(ids), batch):
        found, scored = vector_pass.read(
            conn, "SELECT * FROM ccvec.novelty_vectors(%s, %s)", [name, ids[start : start + batch]]
        )
        distances = None
        if members is not None and len(members):
            distances = [float(d) for d in reference_distances(scored, members, k)]
        written = db.fetch_row(
            conn.execute(
                "SELECT ccvec.novelty_score_batch(%s, %s, %s::real[], %s)",
                [name, found, distances, fitted_at],
            ),
            f"scoring against {name}",
        )[0]
        conn.commit()
        if found and not written:  # fitted again meanwhile: its scores were dropped with the old fit
            if changed_only:
                return 0  # the refresh goes on; the next one scores the new fit whole
            raise CcvecError(f"reference set {name!r} was fitted again while it was scored: score it again")
    conn.execute("SELECT ccvec.novelty_scored(%s, %s)", [name, fitted_at])
    conn.commit()
    return len(ids)


def reference_distances(queries: np.ndarray, members: np.ndarray, k: int, chunk: int = 8192) -> np.ndarray:
    """Mean cosine distance from each query row to its k nearest member rows, exact, as
    ccvec.reference_distance computes it in SQL (queries are never members, so none is skipped; a
    zero vector gets NaN, as pgvector gives). Members are compared a chunk at a time in float32 and
    only the k best kept, so the working memory stays bounded (a batch x chunk block); the cost is
    queries x members x dimensions (novelty.k = 0 skips it)."""
    if not len(queries):
        return np.zeros(0, np.float32)
    k = min(k, len(members))
    q = vector_pass.unit(queries)
    best = np.full((len(q), 0), np.inf, np.float32)
    for start in range(0, len(members), chunk):
        block = q @ vector_pass.unit(members[start : start + chunk]).T
        np.subtract(1, block, out=block)  # cosine distance, in place
        if block.shape[1] > k:
            block = np.partition(block, k - 1, axis=1)[:, :k].copy()
        both = np.hstack([best, block])
        best = np.partition(both, k - 1, axis=1)[:, :k].copy() if both.shape[1] > k else both
    mean: np.ndarray = best.mean(axis=1, dtype=np.float64).astype(np.float32)
    return mean


def refresh_scored(conn: psycopg.Connection, changed_only: bool = True) -> None:
    """`ccvec refresh`: the collection's centre and spreads, the novelty view, and every fitted
    reference set's scores (of the images not scored yet, or of all unless `changed_only`)."""
    conn.execute("SELECT ccvec.novelty_centre_fit()")
    conn.commit()
    db.refresh_view(conn, "image_novelty")
    for (name,) in conn.execute("SELECT * FROM ccvec.novelty_model_names()").fetchall():
        novelty_score(conn, name, changed_only=changed_only)
