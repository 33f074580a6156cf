"""Scale: the Parquet bulk load, bytes per row, and full vs memory-lean (binary-quantised) HNSW.

    python bench/scale.py [PHOTOS_DIR STAMPS_DIR] [--sizes 10000,100000] [--load-only 1000000]

Vectors: the real EfficientNet-Lite0 embeddings of both shared collections (computed here with
ccvec's own decode + embedder), then synthetic variants of them (a real vector plus Gaussian noise,
renormalised, cosine ~0.85 to its base; the same generator as bench/graph.py). pHashes: real ones,
then random. Per size, into a fresh database on the embedded server:

1. a features dataset in the exact format `ccvec spark features` writes (Parquet, float16), then
   `ccvec load DIR --jobs 1` and `--jobs 2` (the second into another fresh database);
2. bytes per row of each table and index;
3. ccvec's HNSW index on halfvec(1280) (m 16, ef_construction 64, ef_search 64) against a
   binary-quantised HNSW (`binary_quantize(embedding)::bit(1280)`, Hamming, m 16,
   ef_construction 64), searched for C candidates then reranked by cosine on the full vectors:
   build time, index size, recall@10 against exact search (numpy over the stored float16 values),
   mean query time; FAISS IndexHNSWFlat on the same vectors in memory (what a user would pick).

`--partitions P` adds, at the full sizes: the same vectors hash-partitioned on identifier into P
tables, one HNSW per partition built over 2 parallel connections, queried through the parent (Postgres
merges the per-partition ordered index scans: an exact top-k merge); recall against the same truth.

`--load-only` sizes run only steps 1 and 2 (the parts that scale with rows).
"""

from __future__ import annotations

import argparse
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

import psycopg
import pyarrow as pa
import pyarrow.parquet as pq
from pgvector import HalfVector

from ccvec import db, defaults, graph, load_parquet, migrate, spark
from ccvec.decode import decode
from ccvec.models import registry
from ccvec.models.runtime import Embedder
from ccvec.phash import phash_from_pixels, to_signed
from ccvec.sources import IMAGE_EXTENSIONS

SHARED = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
ROWS_PER_FILE = 50_000
QUERIES = 200
CANDIDATES = (40, 100, 200)


def real_base(folders: list[Path]) -> tuple[np.ndarray, np.ndarray]:
    """Embeddings and pHashes of every image in the folders, through ccvec's decode and embedder."""
    model = registry.build_default()
    embedder = Embedder(model)
    paths = sorted(p for f in folders for p in f.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS)
    if not paths:
        raise SystemExit(f"no images under {', '.join(map(str, folders))}: pass the photo folders")
    images = [decode(p.read_bytes(), model.spec) for p in paths]
    vectors = np.concatenate(
        [embedder.embed(np.stack([i.pixels for i in images[s : s + 32]])) for s in range(0, len(images), 32)]
    )
    return vectors, phash_from_pixels(np.stack([i.hash_grid for i in images]))


def synthetic(base: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """bench/graph.py's generator: a real vector plus noise, renormalised; the real ones come first.
    Made in chunks, as float16, so 1M x 1280 stays within 2.5 GiB."""
    out = np.empty((n, base.shape[1]), np.float16)
    for start in range(0, n, 50_000):
        stop = min(n, start + 50_000)
        picks = base[rng.integers(0, len(base), stop - start)]
        noisy = picks + rng.normal(0, 0.017, picks.shape).astype(np.float32)
        out[start:stop] = noisy / np.linalg.norm(noisy, axis=1, keepdims=True)
    out[: min(n, len(base))] = base[: min(n, len(base))]
    return out


def write_dataset(out: Path, vectors: np.ndarray, hashes: np.ndarray, rng: np.random.Generator) -> list[str]:
    """A features dataset exactly as the Spark job writes it (kind=feature part files + manifest)."""
    model = registry.build_default()
    spark._write_manifest(out, model)
    folder = out / f"kind={spark.FEATURE_KIND}"
    folder.mkdir(parents=True, exist_ok=True)
    ids = [str(uuid.UUID(bytes=rng.bytes(16), version=4)) for _ in range(len(vectors))]
    for part, start in enumerate(range(0, len(vectors), ROWS_PER_FILE)):
        stop = min(start + ROWS_PER_FILE, len(vectors))
        rows = {
            "identifier": ids[start:stop],
            "location": [f"https://images.example.org/{i}.jpg" for i in ids[start:stop]],
            "url": [f"https://images.example.org/{i}.jpg" for i in ids[start:stop]],
            "provider": ["flickr"] * (stop - start),
            "license": ["by"] * (stop - start),
            "title": [f"image {i}" for i in range(start, stop)],
            "phash": [to_signed(h) for h in hashes[start:stop]],
            "content_sha256": [rng.bytes(32) for _ in range(start, stop)],
            "width": [640] * (stop - start),
            "height": [480] * (stop - start),
            "filesize": [120_000] * (stop - start),
            "embedding": [v.astype("<f2").tobytes() for v in vectors[start:stop]],
            "model": [model.name] * (stop - start),
            "model_sha256": [model.sha256] * (stop - start),
        }
        pq.write_table(pa.table(rows), folder / f"part-{part:05d}.parquet", compression="zstd")
    return ids


def _with_db(url: str, name: str) -> str:
    """The same server URL (postgresql://…/NAME?host=…) with another database name."""
    head, _, tail = url.partition("?")
    return f"{head.rsplit('/', 1)[0]}/{name}" + (f"?{tail}" if tail else "")


def fresh_database(server: str) -> str:
    name = f"scale_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(_with_db(server, "postgres"), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = _with_db(server, name)
    migrate.upgrade(url)
    return url


def drop_database(server: str, url: str) -> None:
    name = url.partition("?")[0].rsplit("/", 1)[1]
    with psycopg.connect(_with_db(server, "postgres"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


def timed_load(url: str, dataset: Path, jobs: int) -> float:
    os.environ["DATABASE_URL"] = url
    start = time.perf_counter()
    summary = load_parquet.load_dataset(dataset, jobs=jobs)
    assert summary.failed == 0
    return time.perf_counter() - start


def table_bytes(conn: psycopg.Connection) -> dict[str, int]:
    sql = (
        "SELECT c.relname, pg_total_relation_size(c.oid) FROM pg_class c JOIN pg_namespace n "
        "ON n.oid = c.relnamespace WHERE n.nspname = 'ccvec' AND c.relname IN "
        "('image', 'image_feature', 'image_embedding')"
    )
    return dict(conn.execute(sql).fetchall())


def exact_top(matrix: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    sims = matrix[queries] @ matrix.T
    return np.argsort(-sims, axis=1)[:, :k]


def recall(found: list[list[int]], truth: np.ndarray) -> float:
    return float(np.mean([len(set(f) & set(t)) / len(t) for f, t in zip(found, truth, strict=True)]))


def sql_search(conn, sql: str, queries: np.ndarray, index_of: dict, params) -> tuple[list[list[int]], float]:
    found, start = [], time.perf_counter()
    for q in queries:
        rows = conn.execute(sql, params(HalfVector(q))).fetchall()
        found.append([index_of[r[0]] for r in rows])
    return found, (time.perf_counter() - start) / len(queries) * 1000


def bq_expression(dim: int, centre: str | None, column: str = "embedding") -> str:
    """bit(dim) from the sign of each dimension, of the vector or of the vector minus a centre."""
    value = f"{column}::halfvec({dim})" + (f" - '{centre}'::halfvec({dim})" if centre else "")
    return f"binary_quantize({value})::bit({dim})"


def lean_index(conn, model: str, dim: int, centre: str | None = None) -> tuple[float, int]:
    """The binary-quantised HNSW (Hamming distance). EfficientNet's pooled features are post-ReLU,
    all >= 0, so the raw sign bits say little; centring on the mean first makes them informative."""
    conn.execute(f"SET maintenance_work_mem = '{graph.MAINTENANCE_WORK_MEM}'")
    conn.execute("SET max_parallel_maintenance_workers = 2")
    start = time.perf_counter()
    conn.execute("DROP INDEX IF EXISTS ccvec.bench_bq")
    conn.commit()
    conn.execute(
        f"CREATE INDEX bench_bq ON ccvec.image_embedding USING hnsw "
        f"(({bq_expression(dim, centre)}) bit_hamming_ops) "
        f"WITH (m = {graph.HNSW_M}, ef_construction = {graph.HNSW_EF_CONSTRUCTION}) WHERE model = '{model}'"
    )
    conn.commit()
    return time.perf_counter() - start, conn.execute("SELECT pg_relation_size('ccvec.bench_bq')").fetchone()[
        0
    ]


def partitioned(url: str, model: str, dim: int, parts: int, queries, truth, index_of) -> dict:
    """Hash partitions on identifier, one HNSW per partition built over parallel connections, and
    queries on the parent: Postgres merges the per-partition index scans (Merge Append), an exact
    top-k merge of per-partition answers."""
    from concurrent.futures import ThreadPoolExecutor

    with db.connection(url) as conn:
        conn.execute(
            f"CREATE TABLE bench_part (identifier uuid, embedding halfvec({dim})) "
            "PARTITION BY HASH (identifier)"
        )
        for i in range(parts):
            conn.execute(
                f"CREATE TABLE bench_part_{i} PARTITION OF bench_part "
                f"FOR VALUES WITH (MODULUS {parts}, REMAINDER {i})"
            )
        conn.execute(
            f"INSERT INTO bench_part SELECT identifier, embedding::halfvec({dim}) FROM ccvec.image_embedding "
            f"WHERE model = '{model}'"
        )
        conn.commit()

    def build(i: int) -> None:
        with db.connection(url) as c:
            c.execute(f"SET maintenance_work_mem = '{graph.MAINTENANCE_WORK_MEM}'")
            c.execute("SET max_parallel_maintenance_workers = 0")
            c.execute(
                f"CREATE INDEX ON bench_part_{i} USING hnsw (embedding halfvec_cosine_ops) "
                f"WITH (m = {graph.HNSW_M}, ef_construction = {graph.HNSW_EF_CONSTRUCTION})"
            )
            c.commit()

    start = time.perf_counter()
    with ThreadPoolExecutor(2) as pool:  # this machine has 2 cores
        list(pool.map(build, range(parts)))
    out = {"parts": parts, "build_s": time.perf_counter() - start}
    with db.connection(url) as conn:
        out["bytes"] = conn.execute(
            "SELECT sum(pg_relation_size(indexrelid)) FROM pg_index "
            "WHERE indrelid::regclass::text LIKE 'bench_part_%'"
        ).fetchone()[0]
        conn.execute(f"SET hnsw.ef_search = {defaults.EF_SEARCH}")
        sql = f"SELECT identifier FROM bench_part ORDER BY embedding <=> %s::halfvec({dim}) LIMIT 10"
        found, out["ms"] = sql_search(conn, sql, queries, index_of, lambda q: [q])
        out["recall"] = recall(found, truth)
        plan = conn.execute(f"EXPLAIN {sql}", [HalfVector(queries[0])]).fetchall()
        out["merge"] = any("Merge Append" in r[0] for r in plan)
    return out


def faiss_hnsw(matrix: np.ndarray, queries: np.ndarray, truth: np.ndarray) -> tuple[float, float, float]:
    import faiss

    start = time.perf_counter()
    index = faiss.IndexHNSWFlat(matrix.shape[1], graph.HNSW_M, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = graph.HNSW_EF_CONSTRUCTION
    index.add(matrix)
    build = time.perf_counter() - start
    index.hnsw.efSearch = defaults.EF_SEARCH
    start = time.perf_counter()
    _, found = index.search(matrix[queries], 10)
    return build, (time.perf_counter() - start) / len(queries) * 1000, recall(found.tolist(), truth)


def run_size(
    server: str,
    work: Path,
    base: tuple[np.ndarray, np.ndarray],
    n: int,
    lean: bool,
    out: list,
    partitions: int,
) -> None:
    rng = np.random.default_rng(n)
    vectors = synthetic(base[0], n, rng)
    hashes = np.concatenate([base[1], rng.integers(0, 2**63, max(0, n - len(base[1])), dtype=np.uint64)])[:n]
    dataset = work / f"features-{n}"
    start = time.perf_counter()
    ids = write_dataset(dataset, vectors, hashes, rng)
    t_write = time.perf_counter() - start
    parquet_bytes = sum(p.stat().st_size for p in dataset.rglob("*.parquet"))
    url1 = fresh_database(server)
    t_load1 = timed_load(url1, dataset, 1)
    drop_database(server, url1)
    url = fresh_database(server)
    t_load2 = timed_load(url, dataset, 2)
    row = {"n": n, "write": t_write, "parquet": parquet_bytes / n, "load1": t_load1, "load2": t_load2}
    model, dim = defaults.MODEL, vectors.shape[1]
    with db.connection(url) as conn:
        row["tables"] = {k: v / n for k, v in table_bytes(conn).items()}
        if lean:
            start = time.perf_counter()
            graph.ensure_index(conn, model)
            row["hnsw_s"] = time.perf_counter() - start
            name = conn.execute("SELECT ccvec.embedding_index_name(%s)", [model]).fetchone()[0]
            row["hnsw_bytes"] = conn.execute("SELECT pg_relation_size(%s)", [f"ccvec.{name}"]).fetchone()[0]
            matrix = vectors.astype(np.float32)
            queries = rng.choice(n, min(QUERIES, n), replace=False)
            truth = exact_top(matrix, queries, 10)
            start = time.perf_counter()
            exact_top(matrix, queries, 10)
            row["numpy_ms"] = (time.perf_counter() - start) / len(queries) * 1000
            index_of = {uuid.UUID(i): j for j, i in enumerate(ids)}
            conn.execute(f"SET hnsw.ef_search = {defaults.EF_SEARCH}")
            full_sql = (
                f"SELECT identifier FROM ccvec.image_embedding WHERE model = '{model}' "
                f"ORDER BY embedding::halfvec({dim}) <=> %s::halfvec({dim}) LIMIT 10"
            )
            found, ms = sql_search(conn, full_sql, matrix[queries], index_of, lambda q: [q])
            row["hnsw_recall"], row["hnsw_ms"] = recall(found, truth), ms
            conn.execute("SELECT ccvec.drop_embedding_index(%s)", [model])  # the BQ index alone answers
            conn.commit()
            row["bq"] = []
            # The centre: the mean of a sample of the stored vectors (a fit on data, like a PCA would be).
            sample = ", ".join(
                f"{x:.5f}" for x in matrix[rng.choice(n, min(n, 10_000), replace=False)].mean(0)
            )
            for label, centre in (("binary", None), ("centred binary", f"[{sample}]")):
                build_s, size = lean_index(conn, model, dim, centre)
                for c in CANDIDATES:
                    conn.execute(f"SET hnsw.ef_search = {max(c, defaults.EF_SEARCH)}")
                    bq_sql = (
                        f"SELECT identifier FROM (SELECT identifier, embedding FROM ccvec.image_embedding "
                        f"WHERE model = '{model}' ORDER BY {bq_expression(dim, centre)} <~> "
                        f"{bq_expression(dim, centre, '%s')} LIMIT {c}) cand "
                        f"ORDER BY embedding::halfvec({dim}) <=> %s::halfvec({dim}) LIMIT 10"
                    )
                    found, ms = sql_search(conn, bq_sql, matrix[queries], index_of, lambda q: [q, q])
                    row["bq"].append((label, c, build_s, size, recall(found, truth), ms))
            row["faiss"] = faiss_hnsw(matrix, queries, truth)
            if partitions:
                row["part"] = partitioned(url, model, dim, partitions, matrix[queries], truth, index_of)
    drop_database(server, url)
    shutil.rmtree(dataset, ignore_errors=True)
    out.append(row)
    print(f"size {n:,} done", flush=True)
    report([row])  # as it comes, so a later size that fails costs nothing already measured


def report(rows: list[dict]) -> None:
    print("\nParquet features dataset -> Postgres (ccvec load DIR), and bytes per row")
    print(
        f"{'rows':>10s} {'write s':>8s} {'Parquet B/row':>13s} {'load j1 s':>9s} {'rows/s':>8s} "
        f"{'load j2 s':>9s} {'rows/s':>8s} {'j2/j1':>6s} {'image B/row':>11s} {'feature B/row':>13s} "
        f"{'embedding B/row':>15s}"
    )
    for r in rows:
        t = r["tables"]
        print(
            f"{r['n']:>10,} {r['write']:8.1f} {r['parquet']:13.0f} "
            f"{r['load1']:9.1f} {r['n'] / r['load1']:8.0f} "
            f"{r['load2']:9.1f} {r['n'] / r['load2']:8.0f} {r['load1'] / r['load2']:5.2f}x "
            f"{t.get('image', 0):11.0f} {t.get('image_feature', 0):13.0f} {t.get('image_embedding', 0):15.0f}"
        )
    lean = [r for r in rows if "hnsw_s" in r]
    if not lean:
        return
    print("\nkNN index: ccvec's halfvec HNSW vs binary-quantised HNSW + cosine rerank (k=10, 200 queries)")
    print(
        f"{'rows':>10s} {'index':<28s} {'build s':>8s} {'MiB':>7s} {'B/row':>6s} {'recall@10':>9s} "
        f"{'ms/query':>8s} {'vs halfvec HNSW':>15s}"
    )
    for r in lean:
        n = r["n"]
        mib = r["hnsw_bytes"] / 2**20
        print(
            f"{n:>10,} {'halfvec HNSW (default)':<28s} {r['hnsw_s']:8.1f} {mib:7.1f} "
            f"{r['hnsw_bytes'] / n:6.0f} "
            f"{r['hnsw_recall']:9.3f} {r['hnsw_ms']:8.2f} {'1.00x size':>15s}"
        )
        for label, c, build_s, size, rec, ms in r["bq"]:
            print(
                f"{n:>10,} {f'{label} HNSW, rerank {c}':<28s} {build_s:8.1f} {size / 2**20:7.1f} "
                f"{size / n:6.0f} {rec:9.3f} {ms:8.2f} {size / r['hnsw_bytes']:>10.2f}x size"
            )
        fb, fms, frec = r["faiss"]
        print(
            f"{n:>10,} {'FAISS IndexHNSWFlat (RAM)':<28s} {fb:8.1f} {'':>7s} {'':>6s} {frec:9.3f} {fms:8.2f}"
        )
        if "part" in r:
            p = r["part"]
            label = f"{p['parts']} hash partitions, HNSW each"
            print(
                f"{n:>10,} {label:<28s} {p['build_s']:8.1f} {p['bytes'] / 2**20:7.1f} {p['bytes'] / n:6.0f} "
                f"{p['recall']:9.3f} {p['ms']:8.2f} {p['bytes'] / r['hnsw_bytes']:>10.2f}x size"
                + ("" if p["merge"] else "  (no Merge Append in the plan)")
            )
        print(
            f"{n:>10,} {'numpy exact (RAM)':<28s} {'':>8s} {'':>7s} {'':>6s} {1.0:9.3f} {r['numpy_ms']:8.2f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="*", type=Path, default=[SHARED / "photos", SHARED / "stamps"])
    parser.add_argument("--sizes", default="10000,100000", help="sizes with every step")
    parser.add_argument("--load-only", default="", help="sizes with the load and bytes-per-row steps only")
    parser.add_argument("--partitions", type=int, default=0, help="also measure P hash partitions (0: skip)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ccvec-scale-"))
    os.environ["CCVEC_HOME"] = str(work / "home")
    started = time.perf_counter()
    try:
        base = real_base(args.folders)
        print(f"{len(base[0])} real embeddings from {', '.join(map(str, args.folders))}", flush=True)
        server = db.start_embedded(work / "home" / "pgdata")
        rows: list[dict] = []
        for n in [int(s) for s in args.sizes.split(",") if s]:
            run_size(server, work, base, n, True, rows, args.partitions)
        for n in [int(s) for s in args.load_only.split(",") if s]:
            run_size(server, work, base, n, False, rows, 0)
        report(rows)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"\ntotal {time.perf_counter() - started:.0f}s; peak RSS of this process {peak:.0f} MiB")
    finally:
        db.stop_embedded(work / "home" / "pgdata")
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
