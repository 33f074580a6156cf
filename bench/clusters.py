"""Clusters, inferred tags and novelty at the level a user sees them, on both shared collections.

    python bench/clusters.py [DATA_DIR] [--scale 20000,100000]

DATA_DIR (default ../shared/data) holds photos/ and stamps/, each with a manifest.csv (coarse labels).
Everything is loaded with `ccvec load` into a fresh embedded server; each experiment copies the
embeddings it needs under a model name of its own, builds ccvec's kNN graph (k = 10) over them and
reads ccvec's outputs (cluster_member, inferred_tags, image_novelty, reference_novelty).

1. Clusters: ccvec's default (Louvain, resolution 1.0) and its documented range (0.5..2), the old
   default (mutual kNN, sim 0.35), next to imagecluster's algorithm on the same embeddings (scipy
   average linkage, euclidean, cut at max distance x (1 - sim)) at several sims, and scikit-learn's
   HDBSCAN. ARI, NMI, pairwise F1 against the coarse labels, cluster count, largest-cluster share,
   singleton share. Only labelled images are scored (the photos have one coarse label, "interior",
   on 39 of 153: their ARI/NMI only say whether the interiors stay together, so pairwise precision
   is also given counting every photo: pairs with an interior, both interior).
2. Inferred tags: coarse (and fine) labels as tags, 20 % hidden (5-fold); precision@1 and coverage
   of ccvec.inferred_tags at the default threshold, precision per score band, kNN majority vote as
   the baseline; and extra tags on images that keep theirs (right / wrong).
3. Novelty: (a) 5 % of one set mixed into the other, the per-image score of ccvec.image_novelty vs
   scikit-learn's LocalOutlierFactor and GaussianMixture on the same embeddings (AUROC);
   (b) reference set = half of one set, scored: the other half + the other set; ccvec's reference
   score vs GaussianMixture and LocalOutlierFactor(novelty=True) fitted on the same half.
4. Scale (--scale): Louvain clustering time and peak RSS on synthetic kNN graphs of that size.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ccvec import clusters, db, defaults, graph, migrate
from ccvec.load import LoadOptions, load

SHARED = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
SIMS = (0.05, 0.1, 0.2, 0.3, 0.4)
RESOLUTIONS = (0.5, 0.75, 1.0, 1.5, 2.0)


# ---------------------------------------------------------------- measures


def pairwise(truth: np.ndarray, pred: np.ndarray) -> tuple[float, float, float]:
    same_t = truth[:, None] == truth[None, :]
    same_p = pred[:, None] == pred[None, :]
    off = ~np.eye(len(truth), dtype=bool)
    tp = (same_t & same_p & off).sum()
    precision = tp / max((same_p & off).sum(), 1)
    recall = tp / max((same_t & off).sum(), 1)
    return precision, recall, 2 * precision * recall / max(precision + recall, 1e-12)


def quality(truth: np.ndarray, pred: np.ndarray, labelled: np.ndarray) -> dict:
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    t, p = truth[labelled], pred[labelled]
    sizes = np.unique(pred, return_counts=True)[1]
    return {
        "ARI": adjusted_rand_score(t, p),
        "NMI": normalized_mutual_info_score(t, p),
        "F1": pairwise(t, p)[2],
        "clusters": int((sizes > 1).sum()),
        "largest": sizes.max() / len(pred),
        "single": (sizes == 1).sum() / len(pred),
    }


def interior_precision(truth: np.ndarray, pred: np.ndarray) -> float:
    """Among co-clustered pairs with at least one labelled photo, the share with both labelled alike."""
    lab = truth != ""
    same_p = (pred[:, None] == pred[None, :]) & ~np.eye(len(pred), dtype=bool)
    involved = same_p & (lab[:, None] | lab[None, :])
    good = same_p & lab[:, None] & lab[None, :] & (truth[:, None] == truth[None, :])
    return good.sum() / max(involved.sum(), 1)


def auroc(is_out: np.ndarray, score: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    return roc_auc_score(is_out, score)


def imagecluster_labels(vectors: np.ndarray, sim: float) -> np.ndarray:
    from scipy.cluster.hierarchy import fcluster, linkage

    z = linkage(vectors.astype(np.float64), method="average", metric="euclidean")
    return fcluster(z, t=z[:, 2].max() * (1 - sim), criterion="distance")


def hdbscan_labels(vectors: np.ndarray) -> np.ndarray:
    from sklearn.cluster import HDBSCAN

    lab = HDBSCAN(min_cluster_size=3).fit_predict(vectors)
    noise = lab < 0
    lab[noise] = lab.max() + 1 + np.arange(noise.sum())  # noise points are singletons
    return lab


# ---------------------------------------------------------------- data


def load_set(folder: Path, work: Path) -> list[dict]:
    """Load a folder's manifest rows with ccvec (absolute paths); returns rows with identifiers."""
    folder = folder.resolve()
    with open(folder / "manifest.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    manifest = work / f"{folder.name}.jsonl"
    with open(manifest, "w") as f:
        for row in rows:
            f.write(
                json.dumps({"path": str(folder / row["path"]), "title": f"{folder.name}/{row['path']}"})
                + "\n"
            )
    summary = load(str(manifest), LoadOptions())
    print(f"loaded {summary.loaded} of {len(rows)} from {folder}", flush=True)
    with db.connection() as conn:
        ids = dict(conn.execute("SELECT title, identifier FROM ccvec.image").fetchall())
    for row in rows:
        row["identifier"] = ids[f"{folder.name}/{row['path']}"]
        row["set"] = folder.name
    return rows


def embeddings(conn, ids: list[uuid.UUID]) -> np.ndarray:
    got = dict(
        conn.execute(
            "SELECT identifier, embedding FROM ccvec.image_embedding "
            "WHERE model = %s AND identifier = ANY(%s)",
            [defaults.MODEL, ids],
        ).fetchall()
    )
    return np.stack([got[i].to_numpy().astype(np.float32) for i in ids])


def subset_graph(conn, name: str, ids: list[uuid.UUID]) -> None:
    """Copy these images' embeddings under model `name` and make ccvec's kNN graph over them current."""
    conn.execute(
        "INSERT INTO ccvec.model (name, version, onnx_sha256, dim, spec) "
        "SELECT %s, version, onnx_sha256, dim, spec FROM ccvec.model WHERE name = %s ON CONFLICT DO NOTHING",
        [name, defaults.MODEL],
    )
    conn.execute(
        "INSERT INTO ccvec.image_embedding (model, identifier, embedding) SELECT %s, identifier, embedding "
        "FROM ccvec.image_embedding WHERE model = %s AND identifier = ANY(%s)",
        [name, defaults.MODEL, ids],
    )
    conn.commit()
    graph.build(conn, k=defaults.GRAPH_K, model=name, recall_sample=0)


def members(conn, run_id: int, ids: list[uuid.UUID]) -> np.ndarray:
    got = dict(
        conn.execute(
            "SELECT identifier, cluster FROM ccvec.cluster_member WHERE run_id = %s", [run_id]
        ).fetchall()
    )
    return np.array([got[i] for i in ids])


# ---------------------------------------------------------------- 1. clusters


def cluster_table(conn, name: str, rows: list[dict]) -> None:
    ids = [r["identifier"] for r in rows]
    truth = np.array([r["coarse"] for r in rows])
    labelled = truth != ""
    subset_graph(conn, f"bench-{name}", ids)
    vectors = embeddings(conn, ids)
    print(
        f"\n{name}: {len(ids)} images, {labelled.sum()} with a coarse label "
        f"({len(set(truth[labelled]))} labels); scored on the labelled ones"
    )
    head = (
        f"{'method':34s} {'ARI':>6s} {'NMI':>6s} {'F1':>6s} {'clusters':>8s} {'largest':>8s} {'single':>7s}"
    )
    print(head + ("  interior-pair precision" if len(set(truth[labelled])) == 1 else ""))
    results = []
    for res in RESOLUTIONS:
        tag = " (default)" if res == defaults.CLUSTER_RESOLUTION else ""
        results.append(
            (f"ccvec louvain res {res:g}{tag}", members(conn, clusters.cluster_louvain(conn, res), ids))
        )
    results.append(
        ("ccvec mutual sim 0.35 (old default)", members(conn, graph.cluster(conn, 0.35, "mutual"), ids))
    )
    for sim in SIMS:
        results.append((f"imagecluster sim {sim:g}", imagecluster_labels(vectors, sim)))
    results.append(("sklearn HDBSCAN min_cluster_size 3", hdbscan_labels(vectors)))
    for method, pred in results:
        q = quality(truth, pred, labelled)
        extra = f"  {interior_precision(truth, pred):.3f}" if len(set(truth[labelled])) == 1 else ""
        print(
            f"{method:34s} {q['ARI']:6.3f} {q['NMI']:6.3f} {q['F1']:6.3f} {q['clusters']:8d} "
            f"{q['largest']:8.1%} {q['single']:7.1%}{extra}"
        )


# ---------------------------------------------------------------- 2. tags


def set_tags(conn, tags: dict[uuid.UUID, list[str]]) -> None:
    for ident, t in tags.items():
        conn.execute(
            "UPDATE ccvec.image SET tags = %s WHERE identifier = %s",
            [json.dumps([{"name": x} for x in t]), ident],
        )
    conn.commit()


def tag_table(conn, rows: list[dict]) -> None:
    rows = [r for r in rows if r["coarse"]]
    ids = [r["identifier"] for r in rows]
    labels = {r["identifier"]: [x for x in (r["coarse"], r["fine"]) if x] for r in rows}
    subset_graph(conn, "bench-tags", ids)
    run = graph.current(conn)
    floors = dict(
        conn.execute(
            "SELECT name, value FROM ccvec.setting WHERE name LIKE 'inferred_tags.min_score%'"
        ).fetchall()
    )
    fold = np.random.default_rng(0).permutation(len(ids)) % 5
    got, vote, extra = [], [], []
    for f in range(5):
        hidden = {i for i, k in zip(ids, fold, strict=True) if k == f}
        set_tags(conn, {i: ([] if i in hidden else labels[i]) for i in ids})
        # the view with no floor, to see every score band; the default floors are applied below
        conn.execute("UPDATE ccvec.setting SET value = 0 WHERE name LIKE 'inferred_tags.min_score%'")
        graph.refresh_inferred(conn)
        best = {}
        for ident, tag, score, tagged in conn.execute(
            "SELECT identifier, tag, score, already_tagged FROM ccvec.inferred_tags ORDER BY score DESC, tag"
        ):
            if ident in hidden:
                best.setdefault(ident, (tag, score))
            elif tagged:
                extra.append((score, tag in labels[ident]))
        for ident in hidden:
            tag, score = best.get(ident, (None, 0.0))
            got.append((score, tag is not None and tag in labels[ident]))
            counts: dict[str, int] = {}
            for (nb,) in conn.execute(
                "SELECT neighbour FROM ccvec.knn_edge WHERE run_id = %s AND identifier = %s", [run.id, ident]
            ):
                if nb not in hidden:
                    for t in labels[nb]:
                        counts[t] = counts.get(t, 0) + 1
            top = max(sorted(counts), key=counts.get) if counts else None
            vote.append(top is not None and top in labels[ident])
    for name, value in floors.items():
        conn.execute("UPDATE ccvec.setting SET value = %s WHERE name = %s", [value, name])
    conn.commit()
    got_a, extra_a = np.array(got), np.array(extra)
    thr, thr_tagged = floors["inferred_tags.min_score"], floors["inferred_tags.min_score_tagged"]
    kept = got_a[:, 0] >= thr
    print(
        f"\ninferred tags: {len(rows)} labelled images (coarse and fine label as tags), 20 % hidden, 5-fold"
    )
    print(f"kNN majority vote (baseline): precision@1 {np.mean(vote):.3f}, coverage 1.000")
    print(
        f"ccvec.inferred_tags, default min_score {thr}: precision@1 {got_a[kept, 1].mean():.3f}, "
        f"coverage {kept.mean():.3f}"
    )
    print("precision per score band (hidden images' top tag):")
    for lo, hi in ((0.0, 0.3), (0.3, 0.5), (0.5, 0.6), (0.6, 0.7), (0.7, 0.8), (0.8, 0.9), (0.9, 1.01)):
        band = (got_a[:, 0] >= lo) & (got_a[:, 0] < hi) & (got_a[:, 0] > 0)
        if band.any():
            print(
                f"  [{lo:.1f}, {min(hi, 1):.1f}): {band.sum():4d} images, "
                f"precision {got_a[band, 1].mean():.3f}"
            )
    print(
        f"extra tags on images that keep theirs (~{len(rows) - len(rows) // 5} per fold, 5 folds; "
        "any extra tag is wrong):"
    )
    for floor in sorted({0.5, 0.8, thr_tagged}):
        e = extra_a[extra_a[:, 0] >= floor] if len(extra_a) else extra_a
        default = " (default)" if floor == thr_tagged else ""
        print(
            f"  score >= {floor}{default}: {len(e)} extra tags "
            f"({int(e[:, 1].sum()) if len(e) else 0} right, "
            f"{int(len(e) - e[:, 1].sum()) if len(e) else 0} wrong)"
        )


# ---------------------------------------------------------------- 3. novelty


def novelty_within(conn, base: list[dict], outliers: list[dict], name: str) -> None:
    from sklearn.mixture import GaussianMixture
    from sklearn.neighbors import LocalOutlierFactor

    rng = np.random.default_rng(3)
    n_out = max(1, round(0.05 * len(base) / 0.95))
    picked = [outliers[i] for i in rng.choice(len(outliers), n_out, replace=False)]
    mix = base + picked
    ids = [r["identifier"] for r in mix]
    is_out = np.array([0] * len(base) + [1] * len(picked))
    subset_graph(conn, "bench-nov-" + name.replace(" ", "-"), ids)
    graph.refresh_inferred(conn)
    got = dict(conn.execute("SELECT identifier, novelty FROM ccvec.image_novelty").fetchall())
    ours = np.array([got[i] for i in ids])
    vectors = embeddings(conn, ids)
    lof = -LocalOutlierFactor(n_neighbors=10).fit(vectors).negative_outlier_factor_
    gmm = -GaussianMixture(4, covariance_type="diag", random_state=0).fit(vectors).score_samples(vectors)
    print(
        f"{name:28s} {len(base):5d} + {n_out:3d}  ccvec {auroc(is_out, ours):.3f}  "
        f"LOF {auroc(is_out, lof):.3f}  GMM {auroc(is_out, gmm):.3f}"
    )


def novelty_reference(conn, ref_set: list[dict], other: list[dict], name: str) -> None:
    from sklearn.mixture import GaussianMixture
    from sklearn.neighbors import LocalOutlierFactor

    rng = np.random.default_rng(4)
    order = rng.permutation(len(ref_set))
    ref = [ref_set[i] for i in order[: len(order) // 2]]
    held = [ref_set[i] for i in order[len(order) // 2 :]]
    ref_ids = [r["identifier"] for r in ref]
    test = held + other
    test_ids = [r["identifier"] for r in test]
    is_out = np.array([0] * len(held) + [1] * len(other))
    conn.execute("UPDATE ccvec.image SET provider = NULL")
    conn.execute("UPDATE ccvec.image SET provider = 'reference' WHERE identifier = ANY(%s)", [ref_ids])
    conn.commit()
    clusters.novelty_fit(conn, "bench", "provider=reference", "provider", "reference")
    clusters.novelty_score(conn, "bench")
    got = dict(
        conn.execute(
            "SELECT identifier, distance FROM ccvec.reference_novelty WHERE name = 'bench'"
        ).fetchall()
    )
    ours = np.array([got[i] for i in test_ids])
    fit, vectors = embeddings(conn, ref_ids), embeddings(conn, test_ids)
    lof = -LocalOutlierFactor(n_neighbors=10, novelty=True).fit(fit).score_samples(vectors)
    gmm = -GaussianMixture(4, covariance_type="diag", random_state=0).fit(fit).score_samples(vectors)
    print(
        f"{name:28s} {len(ref):4d} ref, {len(held):4d} + {len(other):4d}  ccvec {auroc(is_out, ours):.3f}  "
        f"LOF {auroc(is_out, lof):.3f}  GMM {auroc(is_out, gmm):.3f}"
    )


# ---------------------------------------------------------------- 4. scale


def scale(sizes: list[int], k: int = 10) -> None:
    """Louvain on synthetic kNN graphs: points around 1000 centres in 64-d, exact kNN by blocks."""
    print("\nLouvain clustering at scale (synthetic kNN graphs, k = 10; the clustering step only)")
    for n in sizes:
        rng = np.random.default_rng(n)
        centres = rng.normal(size=(max(10, n // 100), 64)).astype(np.float32)
        x = centres[rng.integers(0, len(centres), n)] + 0.6 * rng.normal(size=(n, 64)).astype(np.float32)
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        a = np.repeat(np.arange(n), k)
        b = np.empty(n * k, dtype=np.int64)
        w = np.empty(n * k, dtype=np.float32)
        for s in range(0, n, 2000):
            sims = x[s : s + 2000] @ x.T
            sims[np.arange(len(sims)), np.arange(s, s + len(sims))] = -2
            top = np.argpartition(-sims, k, axis=1)[:, :k]
            b[s * k : (s + len(sims)) * k] = top.ravel()
            w[s * k : (s + len(sims)) * k] = np.take_along_axis(sims, top, 1).ravel()
        start = time.perf_counter()
        labels = clusters.louvain_labels(n, a, b, w, defaults.CLUSTER_RESOLUTION, 0)
        seconds = time.perf_counter() - start
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(
            f"{n:>9,d} images: {seconds:7.1f}s, {len(set(labels)):,} clusters, peak RSS so far {rss:,.0f} MiB"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("data", nargs="?", type=Path, default=SHARED)
    parser.add_argument("--scale", default="", help="comma-separated sizes for the Louvain timing")
    args = parser.parse_args()
    for name in ("photos", "stamps"):
        if not (args.data / name / "manifest.csv").is_file():
            parser.error(f"{args.data / name} needs a manifest.csv")
    work = Path(tempfile.mkdtemp(prefix="ccvec-clusters-"))
    os.environ["CCVEC_HOME"] = str(work / "home")
    try:
        url = db.start_embedded(work / "home" / "pgdata")
        migrate.upgrade(url)
        os.environ["DATABASE_URL"] = url
        sets = {name: load_set(args.data / name, work) for name in ("photos", "stamps")}
        with db.connection(url) as conn:
            for name, rows in sets.items():
                cluster_table(conn, name, rows)
            tag_table(conn, sets["stamps"])
            set_tags(conn, {r["identifier"]: [] for rows in sets.values() for r in rows})
            print("\nnovelty (a) within a collection: 5 % of the other set mixed in; AUROC")
            novelty_within(conn, sets["photos"], sets["stamps"], "stamps among photos")
            novelty_within(conn, sets["stamps"], sets["photos"], "photos among stamps")
            print(
                "\nnovelty (b) against a reference: half of a set fitted, "
                "other half + other set scored; AUROC"
            )
            novelty_reference(conn, sets["photos"], sets["stamps"], "photos reference")
            novelty_reference(conn, sets["stamps"], sets["photos"], "stamps reference")
        if args.scale:
            scale([int(s) for s in args.scale.split(",")])
        print(
            f"\npeak RSS of this process {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB"
        )
        db.stop_embedded(work / "home" / "pgdata")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
