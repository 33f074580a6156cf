"""Clusters, inferred tags and novelty at the level a user sees them, on both shared collections.

    python bench/clusters.py [DATA_DIR] [--extra DIR ...] [--scale 20000,100000] [--model NAME]

--model (a built-in model; default ccvec's default) embeds both collections with that model;
everything below reads its embeddings.

DATA_DIR (default ../shared/data) holds photos/ and stamps/, each with a manifest.csv (coarse labels).
--extra DIR (repeatable) adds a collection of its own with a manifest.csv (path, coarse, fine), e.g.
the GCompris pictures bench/gcompris.py writes: its clustering and inferred-tag tables, after the
shared collections', from the same defaults.
Everything is loaded with `ccvec load` into a fresh embedded server; each experiment copies the
embeddings it needs under a model name of its own, builds ccvec's kNN graph (k = 10) over them and
reads ccvec's outputs (cluster_member, inferred_tags, image_novelty, reference_novelty).

1. Clusters: ccvec's default (Louvain, resolution 1.0, clusters above 25 % split where they have
   structure) and its documented range (0.5..2), the default with Louvain's node order shuffled
   (seeds 1-3), the old default (mutual kNN, sim 0.35), next to imagecluster's algorithm on the
   same embeddings (scipy average linkage, euclidean, cut at max distance x (1 - sim)) at several
   sims, and scikit-learn's HDBSCAN. ARI, NMI, pairwise F1 against the coarse labels, cluster
   count, largest-cluster share, singleton share, and ARI against coarse + fine labels. Only
   labelled images are scored (the photos have one coarse label, "interior", on 39 of 153: their
   ARI/NMI only say whether the interiors stay together, so pairwise precision is also given
   counting every photo: pairs with an interior, both interior).
2. Inferred tags: coarse (and fine) labels as tags, 20 % hidden (5-fold); precision@1 and coverage
   of each hidden image's top tag (rank 1 of ccvec.inferred_tags) at the default floor with the
   default neighbour weights (similarity^8), beside the old default (ties in score broken by tag
   name) and plain similarity weights; the largest coverage at precision@1 >= 0.88 (also mean / min
   over 5 random fold draws), the ceiling of a vote over the graph neighbours, a floor picked on one
   half of the images and read on the other, precision per score band, kNN majority vote as the
   baseline; extra tags on images that keep theirs at several floors (and which ones at the
   default); the photos ("interior" on 39 of 153) and a collection with no tags.
3. Novelty, over 8 random draws: (a) 5 % of one set mixed into the other, the per-image score of
   ccvec.image_novelty (distance to the collection's centre in spreads) and the mean kNN distance
   it replaced (its distance column) vs scikit-learn's LocalOutlierFactor and GaussianMixture on
   the same embeddings (AUROC); (b) reference set = half of one set, scored: the other half + the
   other set; ccvec's reference score (spread distance to the set's centre), the kNN score it
   replaced (d * sqrt(d / n), still computed by ccvec.reference_neighbourhood and
   ccvec.density_score) and the plain kNN distance vs GaussianMixture and
   LocalOutlierFactor(novelty=True) fitted on the same half; and how many held-out members of the
   reference get novelty > 0.9 (about 10 % when the percentile is calibrated).
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
MODEL = defaults.MODEL  # the model every image is embedded with (--model)


# ---------------------------------------------------------------- measures


def pairwise(truth: np.ndarray, pred: np.ndarray) -> tuple[float, float, float]:
    same_t = truth[:, None] == truth[None, :]
    same_p = pred[:, None] == pred[None, :]
    off = ~np.eye(len(truth), dtype=bool)
    tp = (same_t & same_p & off).sum()
    precision = tp / max((same_p & off).sum(), 1)
    recall = tp / max((same_t & off).sum(), 1)
    return precision, recall, 2 * precision * recall / max(precision + recall, 1e-12)


def quality(truth: np.ndarray, pred: np.ndarray, labelled: np.ndarray, fine: np.ndarray) -> dict:
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    t, p = truth[labelled], pred[labelled]
    sizes = np.unique(pred, return_counts=True)[1]
    return {
        "ARI": adjusted_rand_score(t, p),
        "NMI": normalized_mutual_info_score(t, p),
        "F1": pairwise(t, p)[2],
        "fARI": adjusted_rand_score(fine[labelled], p),
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
    summary = load(str(manifest), LoadOptions(model=MODEL))
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
            [MODEL, ids],
        ).fetchall()
    )
    return np.stack([got[i].to_numpy().astype(np.float32) for i in ids])


def subset_graph(conn, name: str, ids: list[uuid.UUID]) -> None:
    """Copy these images' embeddings under model `name` and make ccvec's kNN graph over them current."""
    conn.execute(
        "INSERT INTO ccvec.model (name, version, onnx_sha256, dim, spec) "
        "SELECT %s, version, onnx_sha256, dim, spec FROM ccvec.model WHERE name = %s ON CONFLICT DO NOTHING",
        [name, MODEL],
    )
    conn.execute(
        "INSERT INTO ccvec.image_embedding (model, identifier, embedding) SELECT %s, identifier, embedding "
        "FROM ccvec.image_embedding WHERE model = %s AND identifier = ANY(%s)",
        [name, MODEL, ids],
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
    fine = np.array([f"{r['coarse']}/{r['fine']}" for r in rows])  # the coarse label's sub-labels
    labelled = truth != ""
    subset_graph(conn, f"bench-{name}", ids)
    vectors = embeddings(conn, ids)
    print(
        f"\n{name}: {len(ids)} images, {labelled.sum()} with a coarse label "
        f"({len(set(truth[labelled]))} labels); scored on the labelled ones"
    )
    head = (
        f"{'method':34s} {'ARI':>6s} {'NMI':>6s} {'F1':>6s} {'clusters':>8s} {'largest':>8s} {'single':>7s} "
        f"{'ARI fine':>8s}"
    )
    print(head + ("  interior-pair precision" if len(set(truth[labelled])) == 1 else ""))
    results = []
    for res in RESOLUTIONS:
        tag = " (default)" if res == defaults.CLUSTER_RESOLUTION else ""
        results.append(
            (f"ccvec louvain res {res:g}{tag}", members(conn, clusters.cluster_louvain(conn, res), ids))
        )
    for seed in (1, 2, 3):
        results.append(
            (
                f"ccvec default, node order {seed}",
                members(conn, clusters.cluster_louvain(conn, seed=seed), ids),
            ),
        )
    results.append(
        ("ccvec mutual sim 0.35 (old default)", members(conn, graph.cluster(conn, 0.35, "mutual"), ids))
    )
    for sim in SIMS:
        results.append((f"imagecluster sim {sim:g}", imagecluster_labels(vectors, sim)))
    results.append(("sklearn HDBSCAN min_cluster_size 3", hdbscan_labels(vectors)))
    for method, pred in results:
        q = quality(truth, pred, labelled, fine)
        extra = f"  {interior_precision(truth, pred):.3f}" if len(set(truth[labelled])) == 1 else ""
        print(
            f"{method:34s} {q['ARI']:6.3f} {q['NMI']:6.3f} {q['F1']:6.3f} {q['clusters']:8d} "
            f"{q['largest']:8.1%} {q['single']:7.1%} {q['fARI']:8.3f}{extra}"
        )


# ---------------------------------------------------------------- 2. tags


FOLD_DRAWS = 5  # random 5-fold splits for the mean / min of the default's figures; draw 0 is the recorded one
IGNORED = 1000.0  # inferred_tags.untagged_power that makes untagged neighbours weigh ~0, as before 0033


def set_tags(conn, tags: dict[uuid.UUID, list[str]]) -> None:
    for ident, t in tags.items():
        conn.execute(
            "UPDATE ccvec.image SET tags = %s WHERE identifier = %s",
            [json.dumps([{"name": x} for x in t]), ident],
        )
    conn.commit()


def tag_scores(conn, ids: list, labels: dict, run, power: float, untagged: float, draw: int = 0) -> dict:
    """5-fold, every floor at 0, neighbour weights similarity^power, untagged neighbours weighing
    u^untagged (setting inferred_tags.untagged_power): per hidden image (score, right,
    half) of its top tag by ccvec's rank ("ranked") and by score then name as before 0033
    ("alphabetical"); (score, right, own tags, extra tag) of the extra tags on images that keep
    theirs; the kNN majority vote's hits; and per hidden image how many known graph neighbours carry
    its best-supported right tag (the ceiling of a vote over those neighbours)."""
    conn.execute("UPDATE ccvec.setting SET value = 0 WHERE name LIKE 'inferred_tags.min_score%'")
    conn.execute("UPDATE ccvec.setting SET value = %s WHERE name = 'inferred_tags.weight_power'", [power])
    conn.execute(
        "UPDATE ccvec.setting SET value = %s WHERE name = 'inferred_tags.untagged_power'", [untagged]
    )
    fold = np.random.default_rng(draw).permutation(len(ids)) % 5
    half = {i: n % 2 for n, i in enumerate(ids)}
    out: dict = {"ranked": [], "alphabetical": [], "extra": [], "vote": [], "carriers": []}
    for f in range(5):
        hidden = {i for i, k in zip(ids, fold, strict=True) if k == f}
        set_tags(conn, {i: ([] if i in hidden else labels[i]) for i in ids})
        graph.refresh_inferred(conn)
        ranked, alphabetical = {}, {}
        for ident, tag, score, tagged, rank in conn.execute(
            "SELECT identifier, tag, score, already_tagged, rank FROM ccvec.inferred_tags "
            "ORDER BY score DESC, tag"
        ):
            if ident in hidden:
                alphabetical.setdefault(ident, (tag, score))
                if rank == 1:
                    ranked[ident] = (tag, score)
            elif tagged:
                out["extra"].append((score, tag in labels[ident], "+".join(labels[ident]), tag))
        for ident in hidden:
            for name, best in (("ranked", ranked), ("alphabetical", alphabetical)):
                tag, score = best.get(ident, (None, 0.0))
                out[name].append((score, tag is not None and tag in labels[ident], half[ident]))
            counts: dict[str, int] = {}
            for (nb,) in conn.execute(
                "SELECT neighbour FROM ccvec.knn_edge WHERE run_id = %s AND identifier = %s", [run.id, ident]
            ):
                if nb not in hidden:
                    for t in labels[nb]:
                        counts[t] = counts.get(t, 0) + 1
            top = max(sorted(counts), key=counts.get) if counts else None
            out["vote"].append(top is not None and top in labels[ident])
            out["carriers"].append(max((counts.get(t, 0) for t in labels[ident]), default=0))
    for name in ("ranked", "alphabetical", "carriers"):
        out[name] = np.array(out[name])
    return out


def best_threshold(got: np.ndarray, target: float = 0.88) -> float:
    """The lowest score floor (0.05 steps) at which precision@1 reaches `target`."""
    for t in np.arange(0.05, 1.0, 0.05):
        kept = got[:, 0] >= t
        if kept.any() and got[kept, 1].mean() >= target:
            return float(round(t, 2))
    return 1.0


def max_coverage(got: np.ndarray, target: float = 0.88) -> float:
    """The largest share of the hidden images whose top tags, best score first, keep precision@1 >= target."""
    order = np.argsort(-got[:, 0], kind="stable")
    running = np.cumsum(got[order, 1]) / np.arange(1, len(order) + 1)
    ok = np.flatnonzero(running >= target)
    return (ok.max() + 1) / len(order) if len(ok) else 0.0


def tag_settings(conn) -> dict[str, float]:
    return dict(
        conn.execute(
            "SELECT name, value FROM ccvec.setting WHERE name LIKE 'inferred_tags.min_score%' "
            "OR name IN ('inferred_tags.weight_power', 'inferred_tags.untagged_power')"
        ).fetchall()
    )


def restore_settings(conn, saved: dict[str, float]) -> None:
    for name, value in saved.items():
        conn.execute("UPDATE ccvec.setting SET value = %s WHERE name = %s", [value, name])
    conn.commit()


def tag_table(conn, rows: list[dict]) -> None:
    name = rows[0]["set"]
    rows = [r for r in rows if r["coarse"]]
    ids = [r["identifier"] for r in rows]
    labels = {r["identifier"]: [x for x in (r["coarse"], r["fine"]) if x] for r in rows}
    subset_graph(conn, f"bench-tags-{name}", ids)  # a model per collection: graphs never mix them
    run = graph.current(conn)
    floors = tag_settings(conn)
    thr, thr_tagged = floors["inferred_tags.min_score"], floors["inferred_tags.min_score_tagged"]
    power, untagged = floors["inferred_tags.weight_power"], floors["inferred_tags.untagged_power"]
    print(
        f"\ninferred tags, {name}: {len(rows)} labelled images (coarse and fine label as tags), "
        "20 % hidden, 5-fold"
    )
    configs = ((1.0, untagged), (power, IGNORED), (power, untagged))
    results = {c: [tag_scores(conn, ids, labels, run, *c)] for c in configs}
    for c in configs[1:]:
        results[c] += [tag_scores(conn, ids, labels, run, *c, draw=d) for d in range(1, FOLD_DRAWS)]
    restore_settings(conn, floors)
    draws = results[(power, untagged)]
    res = draws[0]
    print(f"kNN majority vote (baseline): precision@1 {np.mean(res['vote']):.3f}, coverage 1.000")
    print(
        f"{'scores, top tag':58s} {'floor':>5s} {'precision@1':>11s} {'coverage':>8s}  "
        f"max coverage at P>=0.88 (mean / min over {FOLD_DRAWS} fold draws)"
    )
    variants = [
        ((1.0, untagged), "ranked", f"similarity^1, untagged u^{untagged:g}, ranked"),
        (
            (power, IGNORED),
            "alphabetical",
            f"similarity^{power:g}, untagged ignored, ties by name (old default)",
        ),
        ((power, IGNORED), "ranked", f"similarity^{power:g}, untagged ignored, ranked"),
        ((power, untagged), "ranked", f"similarity^{power:g}, untagged u^{untagged:g}, ranked (default)"),
    ]
    for config, order, label in variants:
        got_a = results[config][0][order]
        spread = ""
        if len(results[config]) > 1:
            covs = [max_coverage(d[order]) for d in results[config]]
            spread = f" ({np.mean(covs):.3f} / {np.min(covs):.3f})"
        for floor in sorted({0.5, thr}):
            kept = got_a[:, 0] >= floor
            default = " (default floor)" if floor == thr and label.endswith("(default)") else ""
            print(
                f"{label:58s} {floor:5.2f} {got_a[kept, 1].mean():11.3f} "
                f"{kept.mean():8.3f}  {max_coverage(got_a):.3f}{spread}{default}"
            )
    got_a = res["ranked"]
    at_floor = [(d["ranked"][:, 0] >= thr) for d in draws]
    print(
        f"  default over {FOLD_DRAWS} fold draws at floor {thr:g}: precision@1 "
        f"{np.mean([d['ranked'][k, 1].mean() for d, k in zip(draws, at_floor, strict=True)]):.3f} "
        f"(min {np.min([d['ranked'][k, 1].mean() for d, k in zip(draws, at_floor, strict=True)]):.3f}), "
        f"coverage {np.mean([k.mean() for k in at_floor]):.3f}"
    )
    carriers = res["carriers"]
    print(
        "ceiling of a vote over the 10 graph neighbours: hidden images whose right tag is carried by "
        f">= 2 known neighbours {np.mean(carriers >= 2):.3f}, by >= 1 {np.mean(carriers >= 1):.3f}; "
        f"top tag right at any score {got_a[:, 1].mean():.3f} "
        f"(coverage 0.85 at P 0.88 needs {0.85 * 0.88:.3f})"
    )
    print(
        "threshold picked on one half of the images (lowest floor with precision@1 >= 0.88), "
        "read on the other:"
    )
    for h in (0, 1):
        t = best_threshold(got_a[got_a[:, 2] == h])
        other = got_a[got_a[:, 2] != h]
        kept = other[:, 0] >= t
        print(
            f"  picked on half {h}: floor {t:.2f}; other half: precision@1 {other[kept, 1].mean():.3f}, "
            f"coverage {kept.mean():.3f}"
        )
    print("precision per score band (hidden images' top tag, default scores and rank):")
    for lo, hi in ((0.0, 0.3), (0.3, 0.5), (0.5, 0.6), (0.6, 0.7), (0.7, 0.8), (0.8, 0.9), (0.9, 1.01)):
        band = (got_a[:, 0] >= lo) & (got_a[:, 0] < hi) & (got_a[:, 0] > 0)
        if band.any():
            print(
                f"  [{lo:.1f}, {min(hi, 1):.1f}): {band.sum():4d} images, "
                f"precision {got_a[band, 1].mean():.3f}"
            )
    extra_table(res["extra"], len(rows), thr_tagged)
    old = [e for e in results[(power, IGNORED)][0]["extra"] if e[0] >= thr_tagged]
    print(f"  old default (untagged ignored) at score >= {thr_tagged:g}: {len(old)} extra tags")


def extra_table(extra: list, n: int, thr_tagged: float) -> None:
    print(
        f"extra tags on images that keep theirs (~{n - n // 5} per fold, 5 folds; "
        "any extra tag is wrong by these labels):"
    )
    scores = np.array([e[0] for e in extra]) if extra else np.zeros(0)
    for floor in sorted({0.5, 0.8, 0.9, 0.95, 0.97, 0.99, thr_tagged}):
        kept = [e for e, s in zip(extra, scores, strict=True) if s >= floor]
        right = sum(e[1] for e in kept)
        default = " (default)" if floor == thr_tagged else ""
        print(
            f"  score >= {floor}{default}: {len(kept)} extra tags ({right} right, {len(kept) - right} wrong)"
        )
    pairs: dict[str, int] = {}
    for score, _, own, tag in extra:
        if score >= thr_tagged:
            pairs[f"{own} -> {tag}"] = pairs.get(f"{own} -> {tag}", 0) + 1
    print(
        "  at the default, own tags -> extra tag: "
        + ", ".join(f"{k} x{v}" for k, v in sorted(pairs.items(), key=lambda kv: (-kv[1], kv[0])))
    )


def photo_tags(conn, rows: list[dict]) -> None:
    """The photos: 39 of 153 carry the one label "interior", the rest none. 5-fold: the hidden interiors
    that get "interior" back (coverage) and the unlabelled photos that get it; default settings, and
    untagged neighbours ignored as before 0033."""
    ids = [r["identifier"] for r in rows]
    interior = {r["identifier"] for r in rows if r["coarse"] == "interior"}
    subset_graph(conn, "bench-photo-tags", ids)
    print(f"\nphotos: {len(interior)} of {len(ids)} tagged 'interior', 20 % of them hidden, 5-fold")
    saved = tag_settings(conn)
    for untagged, label in ((IGNORED, "untagged ignored (old default)"), (None, "default")):
        if untagged is not None:
            conn.execute(
                "UPDATE ccvec.setting SET value = %s WHERE name = 'inferred_tags.untagged_power'", [untagged]
            )
            conn.commit()
        photo_folds(conn, ids, interior, label)
        restore_settings(conn, saved)
    set_tags(conn, {i: [] for i in ids})
    graph.refresh_inferred(conn)
    none = conn.execute("SELECT count(*) FROM ccvec.inferred_tags").fetchone()[0]
    print(f"photos with no tags at all: {none} inferred tags after `ccvec refresh`")


def photo_folds(conn, ids: list, interior: set, label: str) -> None:
    """One line: the photos' 5 folds under the current settings."""
    fold = np.random.default_rng(0).permutation(len(ids)) % 5
    back, wrong = 0, 0
    for f in range(5):
        hidden = {i for i, k in zip(ids, fold, strict=True) if k == f and i in interior}
        set_tags(conn, {i: (["interior"] if i in interior and i not in hidden else []) for i in ids})
        graph.refresh_inferred(conn)
        for (ident,) in conn.execute("SELECT identifier FROM ccvec.inferred_tags WHERE tag = 'interior'"):
            back += ident in hidden
            wrong += ident not in interior
    print(
        f"  {label:32s} {back} of {len(interior)} hidden interiors get it back "
        f"(coverage {back / len(interior):.3f}); unlabelled photos given it: {wrong} over the 5 folds "
        f"(precision {back / max(back + wrong, 1):.3f})"
    )


# ---------------------------------------------------------------- 3. novelty


DRAWS = 8  # random mixes / halves per novelty test; draw 0 is the one recorded before (seeds 3, 4)


def novelty_row(name: str, sizes: str, results: dict[str, list[float]]) -> None:
    """One line per test: AUROC of draw 0, then mean and minimum over all draws, per method."""
    cells = "  ".join(f"{m} {v[0]:.3f} ({np.mean(v):.3f} / {np.min(v):.3f})" for m, v in results.items())
    print(f"{name:22s} {sizes:22s} {cells}")


def novelty_within(conn, base: list[dict], outliers: list[dict], name: str) -> None:
    from sklearn.mixture import GaussianMixture
    from sklearn.neighbors import LocalOutlierFactor

    n_out = max(1, round(0.05 * len(base) / 0.95))
    results: dict[str, list[float]] = {"ccvec": [], "ccvec kNN (old)": [], "LOF": [], "GMM": []}
    for draw in range(DRAWS):
        rng = np.random.default_rng(3 if draw == 0 else 100 + draw)
        picked = [outliers[i] for i in rng.choice(len(outliers), n_out, replace=False)]
        ids = [r["identifier"] for r in base + picked]
        is_out = np.array([0] * len(base) + [1] * len(picked))
        subset_graph(conn, f"bench-nov-{name.replace(' ', '-')}-{draw}", ids)
        graph.refresh_inferred(conn)
        got = {
            i: (novelty, distance)
            for i, novelty, distance in conn.execute(
                "SELECT identifier, novelty, distance FROM ccvec.image_novelty"
            )
        }
        vectors = embeddings(conn, ids)
        lof = -LocalOutlierFactor(n_neighbors=10).fit(vectors).negative_outlier_factor_
        gmm = -GaussianMixture(4, covariance_type="diag", random_state=0).fit(vectors).score_samples(vectors)
        results["ccvec"].append(auroc(is_out, np.array([got[i][0] for i in ids])))
        results["ccvec kNN (old)"].append(auroc(is_out, np.array([got[i][1] for i in ids])))
        results["LOF"].append(auroc(is_out, lof))
        results["GMM"].append(auroc(is_out, gmm))
    novelty_row(name, f"{len(base)} + {n_out}", results)


def novelty_reference(conn, ref_set: list[dict], other: list[dict], name: str) -> None:
    from sklearn.mixture import GaussianMixture
    from sklearn.neighbors import LocalOutlierFactor

    results: dict[str, list[float]] = {
        "ccvec": [],
        "ccvec d*sqrt(d/n) (old)": [],
        "ccvec plain kNN": [],
        "LOF": [],
        "GMM": [],
    }
    above = []  # share of held-out members with novelty > 0.9, per draw
    for draw in range(DRAWS):
        order = np.random.default_rng(4 if draw == 0 else 200 + draw).permutation(len(ref_set))
        ref = [ref_set[i] for i in order[: len(order) // 2]]
        ref_ids = [r["identifier"] for r in ref]
        # the photos list one file twice (one identifier): a held-out copy of a reference image is not scored
        held = [ref_set[i] for i in order[len(order) // 2 :] if ref_set[i]["identifier"] not in ref_ids]
        test_ids = [r["identifier"] for r in held + other]
        is_out = np.array([0] * len(held) + [1] * len(other))
        if draw == 0:
            sizes = f"{len(ref)} ref, {len(held)} + {len(other)}"
        conn.execute("UPDATE ccvec.image SET provider = NULL")
        conn.execute("UPDATE ccvec.image SET provider = 'reference' WHERE identifier = ANY(%s)", [ref_ids])
        conn.commit()
        clusters.novelty_fit(conn, "bench", "provider=reference", "provider", "reference", model=MODEL)
        clusters.novelty_score(conn, "bench")
        # the score before migration 0034 needs the members' own kNN distances, no longer computed
        conn.execute("SELECT ccvec.novelty_reference_distances('bench', %s)", [ref_ids])
        got = {
            i: (score, distance, novelty)
            for i, score, distance, novelty in conn.execute(
                "SELECT identifier, score, distance, novelty FROM ccvec.reference_novelty "
                "WHERE name = 'bench'"
            )
        }
        old = dict(
            conn.execute(
                "SELECT identifier, ccvec.density_score(distance, neighbour_distance) "
                "FROM ccvec.reference_neighbourhood('bench', %s)",
                [test_ids],
            ).fetchall()
        )
        fit, vectors = embeddings(conn, ref_ids), embeddings(conn, test_ids)
        lof = -LocalOutlierFactor(n_neighbors=10, novelty=True).fit(fit).score_samples(vectors)
        gmm = -GaussianMixture(4, covariance_type="diag", random_state=0).fit(fit).score_samples(vectors)
        results["ccvec"].append(auroc(is_out, np.array([got[i][0] for i in test_ids])))
        results["ccvec d*sqrt(d/n) (old)"].append(auroc(is_out, np.array([old[i] for i in test_ids])))
        results["ccvec plain kNN"].append(auroc(is_out, np.array([got[i][1] for i in test_ids])))
        results["LOF"].append(auroc(is_out, lof))
        results["GMM"].append(auroc(is_out, gmm))
        above.append(np.mean([got[r["identifier"]][2] > 0.9 for r in held]))
    novelty_row(name, sizes, results)
    print(f"{'':22s} held-out members with novelty > 0.9: {np.mean(above):.1%} (mean over the draws)")


# ---------------------------------------------------------------- 4. scale


def planted_graph(n: int, k: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A kNN-shaped graph: groups of ~100 images, each listing k neighbours, 80 % inside its group
    (similarity 0.6-0.9) and 20 % anywhere (0.3-0.6)."""
    group = rng.integers(0, max(1, n // 100), n)
    order = np.argsort(group, kind="stable")
    starts = np.searchsorted(group[order], np.arange(group.max() + 2))
    a = np.repeat(np.arange(n), k)
    inside = rng.random(n * k) < 0.8
    g = group[a]
    lo, hi = starts[g], starts[g + 1]
    b = np.where(
        inside, order[lo + (rng.random(n * k) * (hi - lo)).astype(np.int64)], rng.integers(0, n, n * k)
    )
    w = np.where(inside, rng.uniform(0.6, 0.9, n * k), rng.uniform(0.3, 0.6, n * k)).astype(np.float32)
    _, first = np.unique(a * n + b, return_index=True)  # one edge per pair
    keep = first[a[first] != b[first]]
    return a[keep], b[keep], w[keep]


def peak_rss_mib() -> float:
    """This process's peak resident memory (VmHWM: unlike ru_maxrss, not inherited from the parent)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def scale_one(n: int, k: int = 10) -> None:
    """One size in a fresh process (clean peak RSS): the graph goes into knn_edge, then ccvec's
    default clustering runs as a user runs it (read edges, Louvain, write members, label)."""
    rng = np.random.default_rng(n)
    a, b, w = planted_graph(n, k, rng)
    with db.connection() as conn:
        conn.execute(
            "INSERT INTO ccvec.model (name, version, onnx_sha256, dim, spec) "
            "VALUES ('scale', 'bench', 'bench', 2, '{}') ON CONFLICT DO NOTHING"
        )
        run = conn.execute(
            "INSERT INTO ccvec.knn_run (model, k, ef_search, images, finished_at) "
            "VALUES ('scale', %s, 64, %s, now()) RETURNING id",
            [k, n],
        ).fetchone()[0]
        # integers by text COPY, turned into uuids by the server: fast enough for 10M edges
        conn.execute("CREATE TEMP TABLE scale_edge (a integer, b integer, s real) ON COMMIT DROP")
        with conn.cursor().copy("COPY scale_edge (a, b, s) FROM STDIN") as copy:
            for start in range(0, len(a), 500_000):
                chunk = np.column_stack([a[start : start + 500_000], b[start : start + 500_000]])
                sims = w[start : start + 500_000]
                copy.write(
                    "".join(
                        f"{x}\t{y}\t{z:.4f}\n"
                        for (x, y), z in zip(chunk.tolist(), sims.tolist(), strict=True)
                    )
                )
        conn.execute(
            "INSERT INTO ccvec.knn_edge (run_id, identifier, neighbour, rank, similarity) "
            "SELECT %s, ('00000000-0000-0000-0000-' || lpad(to_hex(a + 1), 12, '0'))::uuid, "
            "('00000000-0000-0000-0000-' || lpad(to_hex(b + 1), 12, '0'))::uuid, "
            "row_number() OVER (PARTITION BY a ORDER BY s DESC), s FROM scale_edge",
            [run],
        )
        conn.commit()
        graph.make_current(conn, run)
        edges = len(a)
        del a, b, w
        base = peak_rss_mib()
        start = time.perf_counter()
        run_id = clusters.cluster_louvain(conn)
        t_cluster = time.perf_counter() - start
        start = time.perf_counter()
        clusters.label(conn, run_id)
        t_label = time.perf_counter() - start
        shape = clusters.shape(conn, run_id)
    rss = peak_rss_mib()
    print(
        f"{n:>9,d} {edges:>11,d} {t_cluster:10.1f} {t_label:8.1f} {shape.clusters:9,d} "
        f"{shape.largest_share:8.1%} {rss:10,.0f} {base:12,.0f}",
        flush=True,
    )


def scale(sizes: list[int], url: str) -> None:
    import subprocess

    print(
        "\nscale: ccvec cluster (default) on synthetic kNN graphs in knn_edge, k = 10, one process per size"
    )
    print(
        f"{'images':>9s} {'edges':>11s} {'cluster s':>10s} {'label s':>8s} {'clusters':>9s} {'largest':>8s} "
        f"{'peak RSS MiB':>10s} {'(before) MiB':>12s}",
        flush=True,
    )
    for n in sizes:
        subprocess.run(
            [sys.executable, __file__, "--scale-one", str(n)],
            env={**os.environ, "DATABASE_URL": url},
            check=True,
        )


def quality_tables(data: Path, work: Path, url: str, extra: list[Path]) -> None:
    sets = {name: load_set(data / name, work) for name in ("photos", "stamps")}
    with db.connection(url) as conn:
        for name, rows in sets.items():
            cluster_table(conn, name, rows)
        tag_table(conn, sets["stamps"])
        photo_tags(conn, sets["photos"])
        set_tags(conn, {r["identifier"]: [] for rows in sets.values() for r in rows})
        print(
            "\nnovelty (a) within a collection: 5 % of the other set mixed in; "
            f"AUROC of draw 0 (mean / min over {DRAWS} random draws); ccvec kNN (old) = the distance column"
        )
        novelty_within(conn, sets["photos"], sets["stamps"], "stamps among photos")
        novelty_within(conn, sets["stamps"], sets["photos"], "photos among stamps")
        print(
            "\nnovelty (b) against a reference: half of a set fitted, other half + other set scored; "
            f"AUROC of draw 0 (mean / min over {DRAWS} random halves); ccvec plain kNN = the distance column"
        )
        novelty_reference(conn, sets["photos"], sets["stamps"], "photos reference")
        novelty_reference(conn, sets["stamps"], sets["photos"], "stamps reference")
    for folder in extra:  # loaded after the shared tables, which read the whole catalog here and there
        rows = load_set(folder, work)
        with db.connection(url) as conn:
            cluster_table(conn, folder.resolve().name, rows)
            tag_table(conn, rows)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("data", nargs="?", type=Path, default=SHARED)
    parser.add_argument("--extra", type=Path, action="append", default=[], help="another labelled collection")
    parser.add_argument("--scale", default="", help="comma-separated sizes for the clustering timing")
    parser.add_argument("--skip-quality", action="store_true", help="only the --scale part")
    parser.add_argument("--scale-one", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--model", default=defaults.MODEL, help="the built-in model to embed with")
    args = parser.parse_args()
    global MODEL
    MODEL = args.model
    print(f"model: {MODEL}", flush=True)
    if not args.data.is_dir():
        parser.error(f"{args.data}: no such folder")
    if args.scale_one:
        scale_one(args.scale_one)
        return
    for name in () if args.skip_quality else ("photos", "stamps"):
        if not (args.data / name / "manifest.csv").is_file():
            parser.error(f"{args.data / name} needs a manifest.csv")
    for folder in args.extra:
        if not (folder / "manifest.csv").is_file():
            parser.error(f"{folder} needs a manifest.csv")
    work = Path(tempfile.mkdtemp(prefix="ccvec-clusters-"))
    os.environ["CCVEC_HOME"] = str(work / "home")
    url = db.start_embedded(work / "home" / "pgdata")
    try:
        migrate.upgrade(url)
        os.environ["DATABASE_URL"] = url
        if not args.skip_quality:
            quality_tables(args.data, work, url, args.extra)
        if args.scale:
            scale([int(s) for s in args.scale.split(",")], url)
        print(
            f"\npeak RSS of this process {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB"
        )
    finally:  # a failed run leaves no server behind
        db.discard_embedded(work / "home" / "pgdata")
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
