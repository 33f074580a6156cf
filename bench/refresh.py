"""Score refresh at catalog scale: cold, then incremental after 1 % changed, against a cold
refresh of the same changed catalog, stage by stage, next to PageRank in memory.

    python bench/refresh.py [--sizes 100000,1000000] [--k 10] [--changed 0.01] [--tagged 0.5]
                            [--reference 5000] [--concurrently 0|1|2] [--no-embeddings]

Synthetic catalog per size (no images needed): providers with and without metrics (flickr views,
wikimedia global_usage_count, log-normal), landing pages spread over 20,000 hosts, a kNN graph of
k random neighbours per image with similarities in [0.5, 1], and a host-ranks file in Common
Crawl's format for 15,000 of the hosts; `--tagged` (half) of the images carry two tags (one of 64
fine, one of 8 coarse), which the inferred tags read. Unless `--no-embeddings` (the catalog of
runs before round 6): every image has a random non-negative unit embedding (halfvec(1280), as
ccvec stores them), the graph is clustered (ccvec's Louvain, then labels and medoids), and
`--reference` images form a reference set, fitted and scored (`ccvec novelty fit` / `score`),
so that novelty, cluster labels and cluster mates do the work a real catalog's refresh does (the
set's first scoring is timed there, so the first refresh below finds it scored, as a daily one
would; step 4's --cold rescores it whole). Then:

1. `ccvec refresh` on the new catalog (cold: nothing cached, views never filled);
2. the change: `--changed` x size new images (catalog rows and their k edges in the current kNN
   run) and new metric values for as many existing images;
3. `ccvec refresh` (incremental: only new or changed rows parsed again, VisualRank warm-started);
4. a copy of that database (CREATE DATABASE ... TEMPLATE) and `ccvec refresh --cold` on it;
5. the scores of 3 and 4 compared image by image.

The baseline is PageRank by power iteration with scipy.sparse over the same edges in memory, to
the same tolerance. Peak memory: the server's backends sampled every 0.2 s (bench/memory.py's
sampler: their private memory summed, and the largest VmHWM) and this process's ru_maxrss.
"""

from __future__ import annotations

import argparse
import gzip
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

from ccvec import clusters, db, migrate, scores
from ccvec.load_parquet import halfvec_binary

sys.path.insert(0, str(Path(__file__).resolve().parent))
from memory import Sampler  # bench/memory.py

HOSTS = 20_000
DIM = 1280
MODEL = "efficientnet-lite0"


def write_images(conn, first: int, n: int, rng: np.random.Generator, tagged: float = 0.0) -> None:
    """Catalog rows first .. first + n - 1 (identifier of image i is uuid.UUID(int=i + 1)); a share
    `tagged` of them carry two tags, one of 64 fine and one of 8 coarse."""
    ids = [uuid.UUID(int=i + 1) for i in range(first, first + n)]
    providers = rng.choice(["flickr", "wikimedia", "met", "local"], n, p=[0.4, 0.2, 0.1, 0.3])
    hosts = rng.integers(0, HOSTS, n)
    # drawn only when asked for, so that a catalog without tags is the one earlier runs measured
    fine = rng.integers(0, 64, n) if tagged else np.zeros(n, int)
    with_tags = rng.random(n) < tagged if tagged else np.zeros(n, bool)
    with conn.cursor().copy(
        "COPY ccvec.image (identifier, url, provider, meta_data, foreign_landing_url, tags) FROM STDIN"
    ) as copy:
        for i in range(n):
            meta = None
            if providers[i] == "flickr":
                meta = json.dumps({"views": int(rng.lognormal(6, 2))})
            elif providers[i] == "wikimedia":
                meta = json.dumps({"global_usage_count": int(rng.lognormal(1, 1.5))})
            copy.write_row(
                [
                    ids[i],
                    f"https://cdn.example/{first + i}.jpg",
                    providers[i],
                    meta,
                    f"https://www.site{hosts[i]}.example.org/p/{first + i}",
                    json.dumps([{"name": f"fine{fine[i]}"}, {"name": f"coarse{fine[i] % 8}"}])
                    if with_tags[i]
                    else None,
                ]
            )


def write_embeddings(conn, first: int, n: int, rng: np.random.Generator) -> None:
    """Random non-negative unit embeddings (halfvec) for images first .. first + n - 1, binary COPY."""
    sql = "COPY ccvec.image_embedding (model, identifier, embedding) FROM STDIN (FORMAT BINARY)"
    with conn.cursor().copy(sql) as copy:
        copy.set_types(["text", "uuid", "bytea"])
        for start in range(first, first + n, 20_000):
            x = np.abs(rng.normal(size=(min(20_000, first + n - start), DIM))).astype(np.float32)
            x /= np.linalg.norm(x, axis=1, keepdims=True)
            blobs = halfvec_binary([row.tobytes() for row in x.astype("<f2")], DIM)
            for i, blob in enumerate(blobs):
                copy.write_row([MODEL, uuid.UUID(int=start + i + 1), blob])


def random_edges(sources: np.ndarray, n: int, k: int, rng: np.random.Generator):
    """k distinct neighbours among images 0 .. n - 1 per source, never itself, similarity in [0.5, 1]."""
    m_count = len(sources)
    src = np.repeat(sources, k)
    # distinct, never itself: offset r + j * m for j < k, with r < n/2 and j * m < n/2
    r = np.repeat(rng.integers(1, n // 2, m_count), k)
    m = np.repeat(rng.integers(1, max(2, n // (2 * k)), m_count), k)
    dst = (src + r + np.tile(np.arange(k), m_count) * m) % n
    sim = rng.uniform(0.5, 1.0, m_count * k).astype(np.float32)
    return src, dst, sim


def make_catalog(
    conn, n: int, k: int, rng: np.random.Generator, tagged: float = 0.0, embedded: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    start = time.perf_counter()
    write_images(conn, 0, n, rng, tagged)
    conn.execute(
        "INSERT INTO ccvec.model (name, version, onnx_sha256, dim, spec) "
        "VALUES ('efficientnet-lite0', 'bench', 'bench', 1280, '{}')"
    )
    run = conn.execute(
        "INSERT INTO ccvec.knn_run (model, k, ef_search, is_current, images) "
        "VALUES ('efficientnet-lite0', %s, 64, true, %s) RETURNING id",
        [k, n],
    ).fetchone()[0]
    src, dst, sim = random_edges(np.arange(n), n, k, rng)
    write_edges(conn, run, src, dst, sim, k)
    if embedded:
        write_embeddings(conn, 0, n, rng)
    conn.commit()
    what = f"{n:,} images, {n * k:,} edges" + (f" and {n:,} embeddings" if embedded else "")
    print(f"  {what} written in {time.perf_counter() - start:.0f}s", flush=True)
    edge_bytes = conn.execute("SELECT pg_total_relation_size('ccvec.knn_edge')").fetchone()[0]
    print(f"  knn_edge with its indexes: {edge_bytes / (n * k):.0f} bytes per edge", flush=True)
    return src, dst, sim


def clusters_and_reference(conn, reference: int) -> None:
    """What a catalog with embeddings has before a refresh: the graph's clusters (named, with
    medoids) and a fitted, scored reference set of `reference` images (not timed as the refresh)."""
    start = time.perf_counter()
    run_id = clusters.cluster_louvain(conn)
    clustered = time.perf_counter()
    clusters.label(conn, run_id)
    labelled = time.perf_counter()
    print(
        f"  clustered (Louvain) in {clustered - start:.0f}s: {clusters.shape(conn, run_id).describe()}; "
        f"named in {labelled - clustered:.0f}s",
        flush=True,
    )
    if reference:
        ids = [uuid.UUID(int=i + 1) for i in range(reference)]
        clusters.novelty_fit(conn, "bench", "images", "images", "", MODEL, ids)
        fitted = time.perf_counter()
        scored = clusters.novelty_score(conn, "bench")
        print(
            f"  reference set of {reference:,} fitted in {fitted - labelled:.0f}s; {scored:,} other images "
            f"scored in {time.perf_counter() - fitted:.0f}s",
            flush=True,
        )


def write_edges(conn, run: int, src: np.ndarray, dst: np.ndarray, sim: np.ndarray, k: int) -> None:
    """Binary COPY built with numpy (identifier of image i is uuid.UUID(int=i + 1))."""
    row = np.dtype(
        [("count", ">i2"), ("run_len", ">i4"), ("run", ">i8"), ("a_len", ">i4"), ("a", ">u8", 2),
         ("b_len", ">i4"), ("b", ">u8", 2), ("rank_len", ">i4"), ("rank", ">i2"), ("sim_len", ">i4"),
         ("sim", ">f4")]
    )  # fmt: skip
    sql = "COPY ccvec.knn_edge (run_id, identifier, neighbour, rank, similarity) FROM STDIN (FORMAT BINARY)"
    with conn.cursor().copy(sql) as copy:
        copy.write(b"PGCOPY\n\xff\r\n\x00" + b"\x00" * 8)
        for start in range(0, len(src), 1_000_000):
            part = slice(start, min(start + 1_000_000, len(src)))
            out = np.zeros(part.stop - part.start, row)
            out["count"] = 5
            out["run_len"], out["a_len"], out["b_len"], out["rank_len"], out["sim_len"] = 8, 16, 16, 2, 4
            out["run"] = run
            out["a"][:, 1] = src[part] + 1
            out["b"][:, 1] = dst[part] + 1
            out["rank"] = np.arange(part.start, part.stop) % k + 1  # edges come in runs of k per source
            out["sim"] = sim[part]
            copy.write(out.tobytes())
        copy.write(b"\xff\xff")


def write_host_ranks(path: Path, rng: np.random.Generator) -> Path:
    ranked = rng.permutation(HOSTS)[:15_000]
    with gzip.open(path, "wt") as f:
        f.write("#harmonicc_pos\t#harmonicc_val\t#pr_pos\t#pr_val\t#host_rev\n")
        for pos, h in enumerate(ranked, start=1):
            f.write(f"{pos}\t{1e7 / pos:.1f}\t{pos}\t{1 / pos:.3e}\torg.example.site{h}\n")
    return path


def server_sampler(conn) -> Sampler:
    """bench/memory.py's sampler of the server's processes (children of the postmaster, read from
    postmaster.pid: the embedded server runs on this machine), started."""
    data = Path(conn.execute("SHOW data_directory").fetchone()[0])
    sampler = Sampler(int((data / "postmaster.pid").read_text().split()[0]))
    sampler.client = os.getpid()
    sampler.start()
    return sampler


def scipy_pagerank(n: int, src, dst, sim, d: float = 0.85, tol: float = 1e-6) -> tuple[float, int]:
    import scipy.sparse as sp

    start = time.perf_counter()
    out = np.bincount(src, weights=sim, minlength=n)
    m = sp.csr_matrix((sim / out[src], (dst, src)), shape=(n, n))
    dangling = out == 0
    r = np.full(n, 1 / n)
    iterations, delta = 0, 1.0
    while delta >= tol and iterations < 1000:
        new = d * (m @ r + r[dangling].sum() / n) + (1 - d) / n
        delta = np.abs(new - r).sum()
        r = new
        iterations += 1
    return time.perf_counter() - start, iterations


def change(conn, n: int, k: int, share: float, rng: np.random.Generator, tagged: float, embedded: bool):
    """share x n new images (rows, edges, embeddings when `embedded`) and new metric values for
    share x n existing ones."""
    added = max(1, int(n * share))
    write_images(conn, n, added, rng, tagged)
    if embedded:
        write_embeddings(conn, n, added, rng)
    run = conn.execute("SELECT id FROM ccvec.knn_run WHERE is_current").fetchone()[0]
    src, dst, sim = random_edges(np.arange(n, n + added), n + added, k, rng)
    write_edges(conn, run, src, dst, sim, k)
    updated = rng.choice(n, added, replace=False)
    conn.execute(
        "UPDATE ccvec.image i SET meta_data = jsonb_set(i.meta_data, ARRAY[m.metric], "
        "to_jsonb(((i.meta_data ->> m.metric)::numeric * 3 + 7)::bigint)) "
        "FROM ccvec.popularity_metric m WHERE m.provider = i.provider AND i.meta_data ? m.metric "
        "AND i.identifier = ANY(%s)",
        [[uuid.UUID(int=int(i) + 1) for i in updated]],
    )
    conn.commit()
    return src, dst, sim, added


def rows(url: str) -> tuple[dict, np.ndarray]:
    """image_score (by identifier) and the VisualRank vector (by image number) of one database."""
    with db.connection(url) as conn:
        score = {
            r[0]: r[1:]
            for r in conn.execute(
                "SELECT identifier, popularity, popularity_provenance, popularity_support, authority, "
                "visual_authority, domain_authority, prior_authority, web_source FROM ccvec.image_score"
            )
        }
        ranks = conn.execute("SELECT identifier, rank FROM ccvec.visual_rank").fetchall()
        novelty = {
            (r[0], r[1]): r[2:]
            for r in conn.execute(
                "SELECT 'collection', identifier, novelty, score, distance FROM ccvec.image_novelty "
                "UNION ALL SELECT name, identifier, novelty, score, distance FROM ccvec.reference_novelty"
            )
        }
    vector = np.zeros(max(i.int for i, _ in ranks))
    for ident, rank in ranks:
        vector[ident.int - 1] = rank
    return score, vector, novelty


def novelty_gap(a: dict, b: dict) -> float:
    """Largest difference between two runs' (novelty, score, distance) of the same rows."""
    pairs = (pair for key in a if key in b for pair in zip(a[key], b[key], strict=True))
    return max((abs(x - y) for x, y in pairs if x is not None and y is not None), default=0.0)


def compare(incremental: str, cold: str) -> str:
    a, ra, na = rows(incremental)
    b, rb, nb = rows(cold)
    same = sum(a[i] == b.get(i) for i in a)

    def gap(col: int) -> float:
        return max(
            (
                abs(a[i][col] - b[i][col])
                for i in a
                if i in b and a[i][col] is not None and b[i][col] is not None
            ),
            default=0.0,
        )

    kinds = sum(a[i][1] != b[i][1] or a[i][7] != b[i][7] for i in a if i in b)
    scaled = np.abs(ra / ra.max() - rb / rb.max()).max()
    novelty = (
        f"; novelty rows (collection and reference set) {len(na):,} / {len(nb):,}, "
        f"{sum(na[key] == nb.get(key) for key in na):,} identical, max |diff| "
        f"{novelty_gap(na, nb):.1e} (novelty, score, kNN distance)"
        if na or nb
        else ""
    )
    return (
        f"incremental vs cold: {len(a):,} / {len(b):,} images, {same:,} rows identical; "
        f"max |diff| popularity {gap(0):.1e}, authority {gap(3):.1e}, visual {gap(4):.1e}; "
        f"provenance or web source differ for {kinds}; VisualRank max |diff| scaled to max 1 {scaled:.1e}"
        f"{novelty}"
    )


WALL = "wall clock"  # the authority stages overlap the popularity chain: the stages' sum is more


def timed_refresh(conn, label: str, cold: bool = False) -> dict[str, float]:
    print(f"  {label}", flush=True)
    start = time.perf_counter()
    timings = scores.refresh(
        conn, on_stage=lambda s, t: print(f"    {s:28s} {t:7.1f}s", flush=True), cold=cold
    )
    timings[WALL] = time.perf_counter() - start
    print(f"    {WALL:28s} {timings[WALL]:7.1f}s", flush=True)
    return timings


def iterations(conn) -> int:
    return conn.execute("SELECT iterations FROM ccvec.visualrank_run ORDER BY id DESC").fetchone()[0]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--changed", type=float, default=0.01, help="share of images new and changed")
    parser.add_argument("--tagged", type=float, default=0.5, help="share of images with two tags")
    parser.add_argument("--reference", type=int, default=5000, help="reference set size (under 2: none)")
    parser.add_argument(
        "--concurrently",
        type=int,
        choices=(0, 1, 2),
        help="setting refresh.concurrently: 0 every view in place, 1 (ccvec's default) the served ones "
        "CONCURRENTLY, 2 every view CONCURRENTLY (ccvec before migration 0043)",
    )
    parser.add_argument(
        "--no-embeddings",
        dest="embedded",
        action="store_false",
        help="no embeddings, clusters or reference set (the catalog of earlier rounds)",
    )
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    work = Path(tempfile.mkdtemp(prefix="ccvec-refresh-"))
    os.environ["CCVEC_HOME"] = str(work / "home")
    results = []
    try:
        server = db.start_embedded(work / "home" / "pgdata")
        ranks = write_host_ranks(work / "host-ranks.txt.gz", rng)
        admin = server.replace("/ccvec?", "/postgres?")
        import psycopg

        for n in (int(s) for s in args.sizes.split(",")):
            print(f"size {n:,}", flush=True)
            name = f"refresh_{n}"
            with psycopg.connect(admin, autocommit=True) as c:
                c.execute(f'CREATE DATABASE "{name}"')
            url = server.replace("/ccvec?", f"/{name}?")
            migrate.upgrade(url)
            with db.connection(url) as conn:
                if args.concurrently is not None:
                    sql = "UPDATE ccvec.setting SET value = %s WHERE name = 'refresh.concurrently'"
                    conn.execute(sql, [args.concurrently])
                src, dst, sim = make_catalog(conn, n, args.k, rng, args.tagged, args.embedded)
                if args.embedded:
                    clusters_and_reference(conn, min(args.reference, n // 2) if args.reference > 1 else 0)
                loaded = scores.load_ranks(conn, ranks)
                sampler = server_sampler(conn)  # the refresh's three chains each have a backend
                cold = timed_refresh(conn, "cold (first refresh)")
                it_cold = iterations(conn)
                start = time.perf_counter()
                new_src, new_dst, new_sim, added = change(
                    conn, n, args.k, args.changed, rng, args.tagged, args.embedded
                )
                print(
                    f"  changed: {added:,} new images and {added:,} new metric values in "
                    f"{time.perf_counter() - start:.0f}s",
                    flush=True,
                )
                incremental = timed_refresh(conn, f"incremental ({args.changed:.0%} changed)")
                it_inc = iterations(conn)
                bounds = conn.execute(
                    "SELECT min(popularity), max(popularity), min(authority), max(authority), "
                    "count(*) FROM ccvec.image_score"
                ).fetchone()
                sampler.done.set()
                sampler.join()
                rss_backend = (sampler.private / 1024, sampler.largest / 1024)
            with psycopg.connect(admin, autocommit=True) as c:
                c.execute(f'CREATE DATABASE "{name}_cold" TEMPLATE "{name}"')
            cold_url = server.replace("/ccvec?", f"/{name}_cold?")
            with db.connection(cold_url) as conn:
                recold = timed_refresh(conn, "cold on a copy of the changed catalog (--cold)", cold=True)
                it_recold = iterations(conn)
            same = compare(url, cold_url)
            print(f"  {same}", flush=True)
            rss_client = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            all_src = np.concatenate([src, new_src])
            all_dst = np.concatenate([dst, new_dst])
            baseline, base_it = scipy_pagerank(n + added, all_src, all_dst, np.concatenate([sim, new_sim]))
            results.append(
                (n, cold, incremental, recold, (it_cold, it_inc, it_recold), baseline, base_it, bounds,
                 loaded.seconds, same, rss_backend, rss_client)
            )  # fmt: skip
    finally:
        db.discard_embedded(work / "home" / "pgdata")
        shutil.rmtree(work, ignore_errors=True)
    print(
        "\nrefresh, seconds per stage: cold (first), incremental (after the change), "
        "cold' (the same changed catalog)"
    )
    stages = [s for s in results[0][1] if s != WALL]
    heads = [f"{n:,} {kind}" for n, *_ in results for kind in ("cold", "incr.", "cold'")]
    print(f"{'stage':26s} " + " ".join(f"{h:>14s}" for h in heads))
    for s in stages:
        print(f"{s:26s} " + " ".join(f"{r[i].get(s, 0):14.1f}" for r in results for i in (1, 2, 3)))
    summed = (sum(t for s, t in r[i].items() if s != WALL) for r in results for i in (1, 2, 3))
    print(f"{'stages summed':26s} " + " ".join(f"{t:14.1f}" for t in summed))
    print(f"{WALL:26s} " + " ".join(f"{r[i][WALL]:14.1f}" for r in results for i in (1, 2, 3)))
    for n, cold, inc, recold, its, base, base_it, bounds, ranks_s, same, rss_b, rss_c in results:
        total_inc, total_cold = inc[WALL], recold[WALL]
        print(
            f"{n:,}: incremental {total_inc:.1f}s vs cold {total_cold:.1f}s on the same changed catalog: "
            f"{total_cold / total_inc:.2f}x faster"
        )
        print(f"    {same}")
        vr = recold["visualrank"]
        print(
            f"    VisualRank cold {vr:.1f}s ({its[2]} iterations), incremental {inc['visualrank']:.1f}s "
            f"({its[1]} iterations from the previous ranks); first cold {cold['visualrank']:.1f}s ({its[0]})"
        )
        print(
            f"    scipy.sparse in memory {base:.1f}s ({base_it} iterations): ccvec cold is {vr / base:.1f}x "
            "(beside the refresh's other chains: bench/visualrank.py times it alone)"
        )
        print(
            f"    popularity [{bounds[0]:.3f}, {bounds[1]:.3f}], "
            f"authority [{bounds[2]:.3f}, {bounds[3]:.3f}] "
            f"for {bounds[4]:,} images; 15,000 host ranks loaded in {ranks_s:.1f}s"
        )
        print(
            f"    peak memory, first cold + incremental: server private {rss_b[0]:.0f} MiB (all backends "
            f"at once, RssAnon), largest backend VmHWM {rss_b[1]:.0f} MiB (with the shared buffers it "
            f"touched); this process {rss_c:.0f} MiB"
        )


if __name__ == "__main__":
    main()
