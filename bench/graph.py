"""The kNN graph and clusters: quality on labelled photos, and time/memory at scale, in one run.

    python bench/graph.py [STAMPS_DIR] [--sizes 5000,20000,100000] [--skip-scale] [--scale-only]
                          [--jobs N] [--clusters]

1. Quality (STAMPS_DIR, default ../shared/data/stamps, labels in its manifest.csv): the photos are
   loaded with their labels as tags; `ccvec graph build` + `ccvec cluster --sim S` for several S,
   next to imagecluster's algorithm on the same embeddings (scipy average linkage, euclidean, cut
   at max distance x (1 - sim)). ARI, NMI and pairwise F1 against the fine labels.
2. Tag inference: labels hidden for half the images (2-fold), inferred from neighbours by the
   `ccvec.inferred_tags` view; precision@1 and @3 and coverage for several (min_support, min_score).
3. Scale: synthetic variants of the real embeddings (noise around each, renormalised) at each size:
   ccvec's HNSW build and graph build at its defaults (k=10, `--jobs` connections, default the
   number of CPUs; ef_search chosen by its sampled recall, shown), recall@10 against numpy exact search on 200
   images; FAISS IndexHNSWFlat on the same vectors (build + search, recall@10) and the ratio. At the
   largest size, an ef_search sweep (ms per query and recall@10). The run's recall on the same 200
   images counted by the exact pass in numpy (as the build makes it) and in SQL (ccvec.knn_recall),
   timed side by side. With --clusters: mutual-kNN
   clustering and scipy average linkage where the distance matrix fits. Unless --scale-only, at the
   middle size also: loading with the HNSW index in place vs building it afterwards, and the recall
   of incremental additions (90 % built, 10 % added). --scale-only skips parts 1 and 2 (the stamps
   are still loaded: their embeddings are the base of the synthetic vectors).
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
import tracemalloc
import uuid
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pgvector import HalfVector

from ccvec import db, defaults, graph, migrate
from ccvec.load import LoadOptions, load

SHARED = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
SIMS = (0.05, 0.1, 0.2, 0.3, 0.35, 0.4, 0.5, 0.7, 0.9)


def pairwise_f1(truth: np.ndarray, pred: np.ndarray) -> float:
    same_t = truth[:, None] == truth[None, :]
    same_p = pred[:, None] == pred[None, :]
    off = ~np.eye(len(truth), dtype=bool)
    tp = (same_t & same_p & off).sum()
    precision = tp / max((same_p & off).sum(), 1)
    recall = tp / max((same_t & off).sum(), 1)
    return 2 * precision * recall / max(precision + recall, 1e-12)


def scores(truth, pred) -> tuple[float, float, float]:
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    truth, pred = np.asarray(truth), np.asarray(pred)
    return (
        adjusted_rand_score(truth, pred),
        normalized_mutual_info_score(truth, pred),
        pairwise_f1(truth, pred),
    )


def imagecluster_labels(vectors: np.ndarray, sim: float) -> np.ndarray:
    """imagecluster's cut: average linkage on euclidean distances, cut at max distance x (1 - sim)."""
    from scipy.cluster.hierarchy import fcluster, linkage

    z = linkage(vectors, method="average", metric="euclidean")
    return fcluster(z, t=z[:, 2].max() * (1 - sim), criterion="distance")


# ---------------------------------------------------------------- 1 + 2: quality on stamps


def load_stamps(stamps: Path, work: Path) -> list[dict]:
    """Load the stamps with their labels as tags (their embeddings are the base of the scale part)."""
    stamps = stamps.resolve()  # manifest paths resolve against the manifest's folder: make them absolute
    with open(stamps / "manifest.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    manifest = work / "stamps.jsonl"
    with open(manifest, "w") as f:
        for row in rows:
            f.write(
                json.dumps(
                    {
                        "path": str(stamps / row["path"]),
                        "title": row["path"],
                        "tags": [row["coarse"], row["fine"]],
                    }
                )
                + "\n"
            )
    summary = load(str(manifest), LoadOptions())
    print(f"loaded {summary.loaded} stamps", flush=True)
    return rows


def quality(stamps: Path, work: Path) -> None:
    rows = load_stamps(stamps, work)
    url = os.environ["DATABASE_URL"]
    with db.connection(url) as conn:
        run = graph.build(conn, k=10)
        fine = {r["path"]: r["fine"] or r["coarse"] for r in rows}  # 30 stamps have only a coarse label
        data = conn.execute(
            "SELECT i.identifier, i.title, e.embedding FROM ccvec.image i "
            "JOIN ccvec.image_embedding e USING (identifier) ORDER BY i.title"
        ).fetchall()
        ids = [d[0] for d in data]
        truth = np.array([fine[d[1]] for d in data])
        vectors = np.stack([d[2].to_numpy().astype(np.float32) for d in data])
        print(
            f"\ncluster quality on {len(ids)} stamps, {len(set(truth))} fine labels "
            f"(graph k=10, recall@10 {run.recall:.3f})"
        )
        print(
            f"{'sim':>4s} | {'ccvec mutual-kNN (--sim)':^33s} | {'ccvec average linkage':^33s} | "
            f"{'imagecluster (scipy average)':^33s}"
        )
        print(
            f"{'':4s} | "
            + " | ".join(f"{'clusters':>8s} {'ARI':>7s} {'NMI':>7s} {'F1':>7s}" for _ in range(3))
        )
        for sim in SIMS:
            cells = []
            for method in ("mutual", "average"):
                run_id = graph.cluster(conn, sim, method, level=f"bench-{method}")
                labels = dict(
                    conn.execute(
                        "SELECT identifier, cluster FROM ccvec.cluster_member WHERE run_id = %s", [run_id]
                    ).fetchall()
                )
                pred = np.array([labels[i] for i in ids])
                cells.append((len(set(pred)), *scores(truth, pred)))
            pred = imagecluster_labels(vectors, sim)
            cells.append((len(set(pred)), *scores(truth, pred)))
            print(
                f"{sim:4.2f} | " + " | ".join(f"{c[0]:8d} {c[1]:7.3f} {c[2]:7.3f} {c[3]:7.3f}" for c in cells)
            )
        tag_inference(
            conn,
            ids,
            {d[0]: (fine[d[1]], next(r["coarse"] for r in rows if r["path"] == d[1])) for d in data},
        )


def tag_inference(conn, ids: list[uuid.UUID], labels: dict) -> None:
    """2-fold: hide half the labels, infer them from neighbours, score; then the other half."""
    print("\ntag inference (labels hidden for half the images, 2-fold; a hit = a hidden label)")
    print(f"{'min_support':>11s} {'min_score':>9s} {'P@1':>6s} {'P@3':>6s} {'coverage':>9s}")
    rng = np.random.default_rng(0)
    fold = rng.permutation(len(ids)) % 2
    for support, min_score in ((1, 0.0), (2, 0.2), (2, 0.3), (3, 0.3), (3, 0.5)):
        conn.execute(
            "UPDATE ccvec.setting SET value = %s WHERE name = 'inferred_tags.min_support'", [support]
        )
        conn.execute(
            "UPDATE ccvec.setting SET value = %s WHERE name = 'inferred_tags.min_score'", [min_score]
        )
        hits1 = hits3 = covered = 0
        for f in (0, 1):
            hidden = [i for i, k in zip(ids, fold, strict=True) if k == f]
            for i in ids:
                tags = [] if i in hidden else [{"name": t} for t in labels[i]]
                conn.execute("UPDATE ccvec.image SET tags = %s WHERE identifier = %s", [json.dumps(tags), i])
            conn.commit()
            graph.refresh_inferred(conn)
            inferred: dict = {}
            for ident, tag in conn.execute(
                "SELECT identifier, tag FROM ccvec.inferred_tags WHERE identifier = ANY(%s) "
                "ORDER BY identifier, score DESC, tag",
                [hidden],
            ):
                inferred.setdefault(ident, []).append(tag)
            for ident in hidden:
                got = inferred.get(ident, [])
                truth = set(labels[ident])
                covered += bool(got)
                hits1 += bool(got[:1] and got[0] in truth)
                hits3 += len(set(got[:3]) & truth) / min(3, max(len(got[:3]), 1)) if got else 0
        n = len(ids)
        print(
            f"{support:11d} {min_score:9.1f} {hits1 / max(covered, 1):6.3f} {hits3 / max(covered, 1):6.3f} "
            f"{covered / n:9.3f}"
        )
    conn.execute("UPDATE ccvec.setting SET value = 2 WHERE name = 'inferred_tags.min_support'")
    conn.execute("UPDATE ccvec.setting SET value = 0.3 WHERE name = 'inferred_tags.min_score'")
    conn.commit()


# ---------------------------------------------------------------- 3: scale


def synthetic(base: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """Variants of real embeddings: each a real vector plus noise, renormalised (cos ~0.85 to base)."""
    picks = base[rng.integers(0, len(base), n)]
    noisy = picks + rng.normal(0, 0.017, picks.shape).astype(np.float32)
    return (noisy / np.linalg.norm(noisy, axis=1, keepdims=True)).astype(np.float32)


def insert_vectors(conn, vectors: np.ndarray, model: str) -> list[uuid.UUID]:
    conn.execute(
        "INSERT INTO ccvec.model (name, version, onnx_sha256, dim, spec) VALUES (%s, 'bench', 'bench', %s, "
        "'{}') ON CONFLICT DO NOTHING",
        [model, vectors.shape[1]],
    )
    ids = [uuid.uuid4() for _ in range(len(vectors))]
    with conn.cursor().copy(
        "COPY ccvec.image_embedding (model, identifier, embedding) FROM STDIN WITH (FORMAT BINARY)"
    ) as copy:
        copy.set_types(["text", "uuid", "halfvec"])
        for ident, v in zip(ids, vectors, strict=True):
            copy.write_row([model, ident, HalfVector(v)])
    conn.commit()
    return ids


def exact_top(vectors: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    sims = vectors[queries] @ vectors.T
    sims[np.arange(len(queries)), queries] = -np.inf
    return np.argsort(-sims, axis=1)[:, :k]


def faiss_hnsw(
    vectors: np.ndarray, k: int, sample: np.ndarray, truth: np.ndarray
) -> tuple[float, float, float]:
    import faiss

    faiss.omp_set_num_threads(os.cpu_count() or 1)
    start = time.perf_counter()
    index = faiss.IndexHNSWFlat(vectors.shape[1], 16, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = 64
    index.add(vectors)
    build = time.perf_counter() - start
    index.hnsw.efSearch = 64
    start = time.perf_counter()
    _, found = index.search(vectors, k + 1)
    search = time.perf_counter() - start
    recall = np.mean(
        [len(set(found[q][found[q] != q][:k]) & set(truth[i])) / k for i, q in enumerate(sample)]
    )
    return build, search, float(recall)


def scale(base: np.ndarray, sizes: list[int], jobs: int, clusters: bool) -> None:
    """ccvec's HNSW index + graph build (defaults, `jobs` connections) vs FAISS IndexHNSWFlat on
    the same vectors, same M / efConstruction / efSearch, in one run; recall@10 of both against
    exact search (numpy) on the same 200 images."""
    url = os.environ["DATABASE_URL"]
    rng = np.random.default_rng(1)
    rows = []
    for n in sizes:
        vectors = synthetic(base, n, rng)
        model = f"synthetic-{n}"
        with db.connection(url) as conn:
            ids = insert_vectors(conn, vectors, model)
            start = time.perf_counter()
            graph.ensure_index(conn, model)
            t_index = time.perf_counter() - start
            marks: list[float] = []
            start = time.perf_counter()
            run = graph.build(
                conn,
                k=10,
                model=model,
                jobs=jobs,
                on_progress=lambda d, t, m=marks: m.append(time.perf_counter()),
            )
            t_total = time.perf_counter() - start
            t_graph = marks[-1] - start
            # choosing ef_search (sampled exact pass) is inside t_graph; the recall then costs little
            t_recall = t_total - t_graph
            sample = rng.choice(n, min(200, n), replace=False)
            truth = exact_top(vectors, sample, 10)
            got = {}
            for ident, nb in conn.execute(
                "SELECT identifier, neighbour FROM ccvec.knn_edge WHERE run_id = %s AND identifier = ANY(%s)",
                [run.id, [ids[i] for i in sample]],
            ):
                got.setdefault(ident, set()).add(nb)
            recall = np.mean(
                [len(got.get(ids[q], set()) & {ids[j] for j in truth[i]}) / 10 for i, q in enumerate(sample)]
            )
            passes = exact_pass_both_ways(conn, run.id, [ids[i] for i in sample])
            t_cluster = t_average = None
            if clusters:
                start = time.perf_counter()
                graph.cluster(conn, graph.DEFAULT_SIM, "mutual")
                t_cluster = time.perf_counter() - start
                if n <= 20_000:  # average linkage by rounds is too slow beyond this here
                    start = time.perf_counter()
                    graph.cluster(conn, 0.3, "average")
                    t_average = time.perf_counter() - start
            if n == sizes[-1]:
                ef_sweep(conn, model, ids, vectors, rng)
            conn.execute(
                "SELECT ccvec.drop_embedding_index(%s)", [model]
            )  # the next size's index gets the cache
            conn.commit()
        f_build, f_search, f_recall = faiss_hnsw(vectors, 10, sample, truth)
        scipy_cell = scipy_linkage(vectors) if clusters else "not run"
        rows.append(
            (
                n,
                t_index,
                t_graph,
                t_recall,
                run.recall,
                run.ef_search,
                recall,
                f_build,
                f_search,
                f_recall,
                t_cluster,
                t_average,
                scipy_cell,
                passes,
            )
        )
        print(f"size {n:,} done", flush=True)
    print(f"\ngraph build: ccvec (defaults, --jobs {jobs}) vs FAISS IndexHNSWFlat, synthetic 1280-d, k=10")
    print(
        "| images | ccvec HNSW index s | graph searches s (with choosing ef_search) | ef_search chosen | "
        "index + graph s | recall@10 | FAISS build s | FAISS search s | FAISS total s | FAISS recall@10 | "
        "ccvec / FAISS | ccvec recall count s (own) |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for n, ti, tg, tr, own, ef, rec, fb, fs, fr, *_ in rows:
        print(
            f"| {n:,} | {ti:.1f} | {tg:.1f} | {ef} | {ti + tg:.1f} | {rec:.3f} | {fb:.1f} | {fs:.1f} | "
            f"{fb + fs:.1f} | {fr:.3f} | {(ti + tg) / (fb + fs):.2f}x | {tr:.1f} (recall {own:.3f}) |"
        )
    print("\nthe run's recall on the same 200 images, counted from one exact pass over the vectors")
    print(
        "| images | numpy pass s (graph.sample_recall) | SQL pass s (ccvec.knn_recall) | SQL / numpy "
        "| recall numpy / SQL |"
    )
    print("|---|---|---|---|---|")
    for n, *_, (t_numpy, r_numpy, t_sql, r_sql) in rows:
        print(
            f"| {n:,} | {t_numpy:.1f} | {t_sql:.1f} | {t_sql / t_numpy:.1f}x | {r_numpy:.4f} / {r_sql:.4f} |"
        )
    if clusters:
        print("\n| images | mutual s | scipy average linkage | ccvec average s |\n|---|---|---|---|")
        for n, *_, tc, ta, sc, _passes in rows:
            print(f"| {n:,} | {tc:.1f} | {sc} | {'not run' if ta is None else f'{ta:.1f}'} |")


def exact_pass_both_ways(conn, run_id: int, sample: list[uuid.UUID]) -> tuple[float, float, float, float]:
    """(seconds, recall) of the run on `sample` with the exact pass in numpy, as the graph build
    makes it since migration 0045, then in SQL (ccvec.knn_recall), as it was made before."""
    start = time.perf_counter()
    r_numpy = graph.sample_recall(conn, run_id, sample)
    t_numpy = time.perf_counter() - start
    start = time.perf_counter()
    found, expected = conn.execute("SELECT * FROM ccvec.knn_recall(%s, %s)", [run_id, sample]).fetchone()
    conn.commit()
    return t_numpy, r_numpy, time.perf_counter() - start, found / expected


def ef_sweep(conn, model: str, ids: list[uuid.UUID], vectors: np.ndarray, rng: np.random.Generator) -> None:
    """Time per query (one connection) and recall@10 of the batched search at several ef_search."""
    sample = rng.choice(len(ids), min(2000, len(ids)), replace=False)
    truth = exact_top(vectors, sample, 10)
    print(
        f"\nef_search sweep ({len(sample):,} queries over {len(ids):,} images, one connection, "
        "batches of 500)"
    )
    print("| ef_search | ms / query | recall@10 |\n|---|---|---|")
    for ef in (16, 24, 32, 40, 64, 100):
        got: dict = {}
        start = time.perf_counter()
        for s in range(0, len(sample), 500):
            batch = [ids[i] for i in sample[s : s + 500]]
            for ident, nb, _ in conn.execute(
                "SELECT * FROM ccvec.knn_candidates(%s, %s, 10, %s)", [model, batch, ef]
            ).fetchall():
                got.setdefault(ident, set()).add(nb)
            conn.commit()
        ms = (time.perf_counter() - start) / len(sample) * 1000
        recall = np.mean(
            [len(got.get(ids[q], set()) & {ids[j] for j in truth[i]}) / 10 for i, q in enumerate(sample)]
        )
        print(f"| {ef} | {ms:.2f} | {recall:.3f} |", flush=True)


def scipy_linkage(vectors: np.ndarray) -> str:
    n = len(vectors)
    need = n * (n - 1) / 2 * 8 / 2**30
    if need > 8:
        return f"does not fit: needs {need:.0f} GiB for distances (+ linkage work)"
    tracemalloc.start()
    start = time.perf_counter()
    imagecluster_labels(vectors.astype(np.float64), 0.5)
    seconds = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1] / 2**30
    tracemalloc.stop()
    return f"{seconds:.1f}s, peak {peak:.1f} GiB"


def index_maintenance(base: np.ndarray, n: int) -> None:
    """Loading n vectors with the HNSW index in place vs loading then building it; and incremental recall."""
    url = os.environ["DATABASE_URL"]
    rng = np.random.default_rng(2)
    vectors = synthetic(base, n, rng)
    with db.connection(url) as conn:
        existing = synthetic(base, n, rng)
        insert_vectors(conn, existing, "maint-a")
        graph.ensure_index(conn, "maint-a")
        start = time.perf_counter()
        insert_vectors(conn, vectors, "maint-a")
        maintained = time.perf_counter() - start
        insert_vectors(conn, existing, "maint-b")
        start = time.perf_counter()
        insert_vectors(conn, vectors, "maint-b")
        graph.ensure_index(conn, "maint-b")
        rebuilt = time.perf_counter() - start
        print(
            f"\nadding {n:,} vectors to {n:,}: with the HNSW index in place {maintained:.1f}s; "
            f"without, then building it over all {2 * n:,} {rebuilt:.1f}s"
        )
        # incremental: 90 % built, 10 % added
        model = "incremental"
        cut = int(n * 0.9)
        ids = insert_vectors(conn, vectors[:cut], model)
        graph.ensure_index(conn, model)
        run = graph.build(conn, k=10, model=model, recall_sample=0)
        ids += insert_vectors(conn, vectors[cut:], model)
        start = time.perf_counter()
        added = graph.add_new(conn)
        t_add = time.perf_counter() - start
        sample = rng.choice(n, 300, replace=False)
        truth = exact_top(vectors, sample, 10)
        got = {}
        for ident, nb in conn.execute(
            "SELECT identifier, neighbour FROM ccvec.knn_edge WHERE run_id = %s AND identifier = ANY(%s)",
            [run.id, [ids[i] for i in sample]],
        ):
            got.setdefault(ident, set()).add(nb)
        old = [i for i, q in enumerate(sample) if q < cut]
        new = [i for i, q in enumerate(sample) if q >= cut]

        def rec(rows: list[int]) -> float:
            return float(
                np.mean([len(got.get(ids[sample[i]], set()) & {ids[j] for j in truth[i]}) / 10 for i in rows])
            )

        print(
            f"incremental: {added:,} added in {t_add:.1f}s; recall@10 of older images {rec(old):.3f}, "
            f"of added images {rec(new):.3f} (against exact search over all {n:,})"
        )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("stamps", nargs="?", type=Path, default=SHARED / "stamps")
    parser.add_argument("--sizes", default="5000,20000,100000")
    parser.add_argument("--skip-scale", action="store_true")
    parser.add_argument("--scale-only", action="store_true", help="skip the quality and tag sections")
    parser.add_argument("--clusters", action="store_true", help="also time clustering and scipy at scale")
    parser.add_argument("--jobs", type=int, default=defaults.SEARCH_JOBS)
    args = parser.parse_args()
    if not args.stamps.is_dir():
        parser.error(f"{args.stamps}: no such folder (give the stamps folder, e.g. ../shared/data/stamps)")
    if not (args.stamps / "manifest.csv").is_file():
        parser.error(f"{args.stamps} needs a manifest.csv with fine labels")
    work = Path(tempfile.mkdtemp(prefix="ccvec-graph-"))
    os.environ["CCVEC_HOME"] = str(work / "home")
    try:
        url = db.start_embedded(work / "home" / "pgdata")
        migrate.upgrade(url)
        os.environ["DATABASE_URL"] = url
        if args.scale_only:
            load_stamps(args.stamps, work)
        else:
            quality(args.stamps, work)
        if not args.skip_scale:
            with db.connection(url) as conn:
                base = np.stack(
                    [
                        r[0].to_numpy().astype(np.float32)
                        for r in conn.execute(
                            "SELECT embedding FROM ccvec.image_embedding WHERE model = 'efficientnet-lite0'"
                        )
                    ]
                )
            sizes = [int(s) for s in args.sizes.split(",")]
            scale(base, sizes, args.jobs, args.clusters)
            if not args.scale_only:
                index_maintenance(base, sizes[min(1, len(sizes) - 1)])
        print(
            f"\npeak RSS of this process {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB"
        )
    finally:
        db.discard_embedded(work / "home" / "pgdata")
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
