"""Score refresh at catalog scale: `ccvec refresh` stage by stage, next to PageRank in memory.

    python bench/refresh.py [--sizes 100000,1000000] [--k 10]

Synthetic catalog per size (no images needed): providers with and without metrics (flickr views,
wikimedia global_usage_count, log-normal), landing pages spread over 20,000 hosts, a kNN graph of
k random neighbours per image with similarities in [0.5, 1], and a host-ranks file in Common
Crawl's format for 15,000 of the hosts. Then `ccvec.scores.refresh` runs twice (cold, then warm:
VisualRank starts from the previous ranks). The baseline is PageRank by power iteration with
scipy.sparse over the same edges in memory, to the same tolerance.
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

from ccvec import db, migrate, scores

HOSTS = 20_000


def make_catalog(conn, n: int, k: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    ids = [uuid.UUID(int=i + 1) for i in range(n)]
    providers = rng.choice(["flickr", "wikimedia", "met", "local"], n, p=[0.4, 0.2, 0.1, 0.3])
    hosts = rng.integers(0, HOSTS, n)
    start = time.perf_counter()
    with conn.cursor().copy(
        "COPY ccvec.image (identifier, url, provider, meta_data, foreign_landing_url) FROM STDIN"
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
                    f"https://cdn.example/{i}.jpg",
                    providers[i],
                    meta,
                    f"https://www.site{hosts[i]}.example.org/p/{i}",
                ]
            )
    conn.execute(
        "INSERT INTO ccvec.model (name, version, onnx_sha256, dim, spec) "
        "VALUES ('efficientnet-lite0', 'bench', 'bench', 1280, '{}')"
    )
    run = conn.execute(
        "INSERT INTO ccvec.knn_run (model, k, ef_search, is_current, images) "
        "VALUES ('efficientnet-lite0', %s, 64, true, %s) RETURNING id",
        [k, n],
    ).fetchone()[0]
    src = np.repeat(np.arange(n), k)
    # distinct, never itself: offset r + j * m for j < k, with r < n/2 and j * m < n/2
    r = np.repeat(rng.integers(1, n // 2, n), k)
    m = np.repeat(rng.integers(1, max(2, n // (2 * k)), n), k)
    dst = (src + r + np.tile(np.arange(k), n) * m) % n
    sim = rng.uniform(0.5, 1.0, n * k).astype(np.float32)
    write_edges(conn, run, src, dst, sim, k)
    conn.commit()
    print(f"  {n:,} images and {n * k:,} edges written in {time.perf_counter() - start:.0f}s", flush=True)
    return src, dst, sim


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
            out["rank"] = np.arange(part.start, part.stop) % k + 1
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


def peak_rss(pid: int) -> float:
    """VmHWM of a server backend, MiB (the embedded server runs on this machine)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


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


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--k", type=int, default=10)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    work = Path(tempfile.mkdtemp(prefix="ccvec-refresh-"))
    os.environ["CCVEC_HOME"] = str(work / "home")
    results = []
    try:
        server = db.start_embedded(work / "home" / "pgdata")
        ranks = write_host_ranks(work / "host-ranks.txt.gz", rng)
        for n in (int(s) for s in args.sizes.split(",")):
            print(f"size {n:,}", flush=True)
            name = f"refresh_{n}"
            admin = server.replace("/ccvec?", "/postgres?")
            import psycopg

            with psycopg.connect(admin, autocommit=True) as c:
                c.execute(f'CREATE DATABASE "{name}"')
            url = server.replace("/ccvec?", f"/{name}?")
            migrate.upgrade(url)
            with db.connection(url) as conn:
                src, dst, sim = make_catalog(conn, n, args.k, rng)
                loaded = scores.load_ranks(conn, ranks)
                backend = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
                cold = scores.refresh(conn, on_stage=lambda s, t: print(f"    {s:26s} {t:7.1f}s", flush=True))
                vr_cold = conn.execute(
                    "SELECT iterations FROM ccvec.visualrank_run ORDER BY id DESC"
                ).fetchone()[0]
                warm = scores.refresh(conn)
                vr_warm = conn.execute(
                    "SELECT iterations FROM ccvec.visualrank_run ORDER BY id DESC"
                ).fetchone()[0]
                bounds = conn.execute(
                    "SELECT min(popularity), max(popularity), min(authority), max(authority), "
                    "count(*) FROM ccvec.image_score"
                ).fetchone()
                print(f"    peak RSS: server backend {peak_rss(backend):.0f} MiB, ", end="")
                print(f"this process {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
            baseline, base_it = scipy_pagerank(n, src, dst, sim)
            results.append((n, cold, warm, vr_cold, vr_warm, baseline, base_it, bounds, loaded.seconds))
    finally:
        db.stop_embedded(work / "home" / "pgdata")
        shutil.rmtree(work, ignore_errors=True)
    print("\nrefresh, seconds per stage (cold = first refresh, warm = rerun, VisualRank from previous ranks)")
    stages = list(results[0][1])
    print(f"{'stage':26s} " + " ".join(f"{f'{n:,} cold':>12s} {f'{n:,} warm':>12s}" for n, *_ in results))
    for s in stages:
        print(f"{s:26s} " + " ".join(f"{r[1].get(s, 0):12.1f} {r[2].get(s, 0):12.1f}" for r in results))
    print(
        f"{'total':26s} "
        + " ".join(f"{sum(r[1].values()):12.1f} {sum(r[2].values()):12.1f}" for r in results)
    )
    for n, cold, warm, it_c, it_w, base, base_it, bounds, ranks_s in results:
        vr = cold["visualrank"]
        print(
            f"{n:,}: VisualRank (streamed to scipy) {vr:.1f}s ({it_c} iterations; "
            f"warm {warm['visualrank']:.1f}s, {it_w})"
        )
        print(
            f"    scipy.sparse in memory {base:.1f}s ({base_it} iterations): ccvec is {vr / base:.0f}x slower"
        )
        print(
            f"    popularity [{bounds[0]:.3f}, {bounds[1]:.3f}], "
            f"authority [{bounds[2]:.3f}, {bounds[3]:.3f}] "
            f"for {bounds[4]:,} images; 15,000 host ranks loaded in {ranks_s:.1f}s"
        )


if __name__ == "__main__":
    main()
