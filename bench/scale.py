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

Every stage is also recorded as (time, disk, memory): disk is what the stage added to the database
(tables or indexes), memory the peak resident set of the server backend that ran it (VmHWM from
/proc, shared buffers it touched included; parallel maintenance workers not counted) or of this
process for client stages. The last table puts each stage side by side across sizes with the
growth exponent b of time ~ rows^b fitted between consecutive sizes.

`--sim-rows N` (e.g. 10000000) simulates the parts that scale with rows at N without loading N
embeddings: N pHash rows into image_feature (generated in SQL), the multi-index hash indexes and
their probes (measured in full), and the lean index partitioned into `--sim-partitions` hash
partitions of N / P rows each, of which `--sim-built` partitions are really filled with
binary-quantised vectors and built in parallel connections; the other partitions are extrapolated
(labelled) from those.
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

import itertools

import psycopg
import pyarrow as pa
import pyarrow.parquet as pq
from pgvector import HalfVector

from ccvec import db, defaults, graph, load_parquet, migrate, neardup, spark
from ccvec.decode import decode
from ccvec.models import registry
from ccvec.models.runtime import Embedder
from ccvec.phash import phash_from_pixels, to_signed
from ccvec.sources import IMAGE_EXTENSIONS

SHARED = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
ROWS_PER_FILE = 50_000
QUERIES = 200
SCAN_QUERIES = 10  # SQL scans timed beside the MIH probes
CANDIDATES = (100, 200, 400)
MAINTENANCE_WORK_MEM = "1GB"  # this benchmark's own builds; ccvec sizes its own (graph.build_memory)
STAGES: list[dict] = []  # (rows, stage, seconds, disk bytes, memory bytes, note)


def stage(n: int, name: str, seconds: float, disk: int | None, mem: int | None, note: str = "") -> None:
    STAGES.append({"n": n, "stage": name, "s": seconds, "disk": disk, "mem": mem, "note": note})
    d = f"{disk / 2**20:,.0f} MiB" if disk is not None else "-"
    m = f"{mem / 2**20:,.0f} MiB" if mem is not None else "-"
    print(f"  [{n:,}] {name}: {seconds:.1f}s, disk {d}, memory {m} {note}", flush=True)


def backend_peak(conn: psycopg.Connection) -> int | None:
    """Peak resident memory of the server process behind this connection (same machine)."""
    pid = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def client_peak() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def index_bytes(conn: psycopg.Connection, pattern: str) -> int:
    return int(
        conn.execute(
            "SELECT coalesce(sum(pg_relation_size(c.oid)), 0) FROM pg_class c JOIN pg_namespace n "
            "ON n.oid = c.relnamespace WHERE c.relkind IN ('i', 'I') AND c.relname LIKE %s",
            [pattern],
        ).fetchone()[0]
    )


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
    """Exact top k by inner product; the float16 matrix is widened 100k rows at a time, so 1M x 1280
    needs 2.5 GB for the vectors, not 5 GB more for a float32 copy (the first 1M run was OOM-killed)."""
    q = matrix[queries].astype(np.float32)
    sims = np.empty((len(q), len(matrix)), np.float32)
    for start in range(0, len(matrix), 100_000):
        sims[:, start : start + 100_000] = q @ matrix[start : start + 100_000].astype(np.float32).T
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


def lean_index(conn, model: str, dim: int, centre: str | None = None) -> tuple[float, int, int | None]:
    """The binary-quantised HNSW (Hamming distance). EfficientNet's pooled features are post-ReLU,
    all >= 0, so the raw sign bits say little; centring on the mean first makes them informative."""
    conn.execute(f"SET maintenance_work_mem = '{MAINTENANCE_WORK_MEM}'")
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
    size = conn.execute("SELECT pg_relation_size('ccvec.bench_bq')").fetchone()[0]
    return time.perf_counter() - start, size, backend_peak(conn)


def bq_rerank_sql(dim: int, c: int, table: str, where: str, centre: str | None = None) -> str:
    """C candidates by Hamming distance through the binary index, then the 10 nearest by cosine."""
    return (
        f"SELECT identifier FROM (SELECT identifier, embedding FROM {table} {where} "
        f"ORDER BY {bq_expression(dim, centre)} <~> {bq_expression(dim, centre, '%s')} LIMIT {c}) cand "
        f"ORDER BY embedding::halfvec({dim}) <=> %s::halfvec({dim}) LIMIT 10"
    )


def build_parallel(url: str, statements: list[str], jobs: int = 2) -> tuple[float, int | None]:
    """Run index builds over `jobs` connections at once; (seconds, largest backend peak)."""
    from concurrent.futures import ThreadPoolExecutor

    def build(sql: str) -> int | None:
        with db.connection(url) as c:
            c.execute(f"SET maintenance_work_mem = '{MAINTENANCE_WORK_MEM}'")
            c.execute("SET max_parallel_maintenance_workers = 0")
            c.execute(sql)
            c.commit()
            return backend_peak(c)

    start = time.perf_counter()
    with ThreadPoolExecutor(jobs) as pool:  # this machine has 2 cores
        peaks = [m for m in pool.map(build, statements) if m is not None]
    return time.perf_counter() - start, max(peaks, default=None)


def partitioned(url: str, model: str, dim: int, parts: int, queries, truth, index_of, halfvec: bool) -> dict:
    """Hash partitions on identifier, one index per partition built over parallel connections, and
    queries on the parent: Postgres merges the per-partition index scans (Merge Append), an exact
    top-k merge of per-partition answers. The lean (binary) index always; halfvec HNSW when asked."""
    n = len(index_of)
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
        conn.execute("ANALYZE bench_part")
        conn.commit()
    out: dict = {"parts": parts}
    kinds = [("binary", f"(({bq_expression(dim, None)}) bit_hamming_ops)")]
    if halfvec:
        kinds.insert(0, ("halfvec", "(embedding halfvec_cosine_ops)"))
    for kind, expr in kinds:
        build_s, mem = build_parallel(
            url,
            [
                f"CREATE INDEX bench_part_{kind}_{i} ON bench_part_{i} USING hnsw {expr} "
                f"WITH (m = {graph.HNSW_M}, ef_construction = {graph.HNSW_EF_CONSTRUCTION})"
                for i in range(parts)
            ],
        )
        with db.connection(url) as conn:
            size = index_bytes(conn, f"bench_part_{kind}_%")
            stage(n, f"{parts} partitions: {kind} HNSW, 2 connections", build_s, size, mem)
            if kind == "halfvec":
                conn.execute(f"SET hnsw.ef_search = {defaults.EF_SEARCH}")
                sql = f"SELECT identifier FROM bench_part ORDER BY embedding <=> %s::halfvec({dim}) LIMIT 10"
                found, ms = sql_search(conn, sql, queries, index_of, lambda q: [q])
                out[kind] = [(kind, defaults.EF_SEARCH, build_s, size, recall(found, truth), ms)]
            else:
                out[kind] = []
                for c in CANDIDATES:
                    conn.execute(f"SET hnsw.ef_search = {max(c, defaults.EF_SEARCH)}")
                    sql = bq_rerank_sql(dim, c, "bench_part", "")
                    found, ms = sql_search(conn, sql, queries, index_of, lambda q: [q, q])
                    out[kind].append((kind, c, build_s, size, recall(found, truth), ms))
            plan = conn.execute(f"EXPLAIN {sql}", [HalfVector(queries[0])] * (1 if kind == "halfvec" else 2))
            out[f"{kind}_merge"] = any("Merge Append" in r[0] for r in plan.fetchall())
            conn.execute(f"DROP INDEX {', '.join(f'bench_part_{kind}_{i}' for i in range(parts))}")
            conn.commit()
    with db.connection(url) as conn:
        conn.execute("DROP TABLE bench_part")
        conn.commit()
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


def mih_stage(conn: psycopg.Connection, n: int, hashes: list[int]) -> dict:
    """ccvec's multi-index hash indexes over image_feature, and probes at ccvec's default radius."""
    start = time.perf_counter()
    chunks = neardup.configure(conn)
    build_s = time.perf_counter() - start
    size = index_bytes(conn, "image_feature_mih_%")
    stage(n, f"MIH indexes ({chunks} chunks)", build_s, size, backend_peak(conn))
    conn.execute("ANALYZE ccvec.image_feature")
    conn.commit()
    radius = neardup.DEFAULT_RADIUS
    start = time.perf_counter()
    found = 0
    for h in hashes:
        found += len(neardup.neighbours(conn, h, radius))
    ms = (time.perf_counter() - start) / len(hashes) * 1000
    start = time.perf_counter()
    for h in hashes[:SCAN_QUERIES]:  # what the probe saves: the scan it replaces
        conn.execute(
            "SELECT count(*) FROM ccvec.image_feature WHERE ccvec.hamming(phash, %s) <= %s",
            [to_signed(h), radius],
        )
    scan_ms = (time.perf_counter() - start) / len(hashes[:SCAN_QUERIES]) * 1000
    note = f"({ms:.2f} ms per query; SQL scan {scan_ms:.0f} ms, {scan_ms / ms:.0f}x)"
    stage(n, f"MIH probe, radius {radius} (per query)", ms / 1000, None, backend_peak(conn), note)
    return {"chunks": chunks, "build_s": build_s, "bytes": size, "ms": ms, "found": found / len(hashes)}


def run_size(
    server: str,
    work: Path,
    base: tuple[np.ndarray, np.ndarray],
    n: int,
    lean: bool,
    out: list,
    partitions: int,
    args: argparse.Namespace,
) -> None:
    rng = np.random.default_rng(n)
    start = time.perf_counter()
    vectors = synthetic(base[0], n, rng)
    hashes = np.concatenate([base[1], rng.integers(0, 2**63, max(0, n - len(base[1])), dtype=np.uint64)])[:n]
    dataset = work / f"features-{n}"
    ids = write_dataset(dataset, vectors, hashes, rng)
    t_write = time.perf_counter() - start
    parquet_bytes = sum(p.stat().st_size for p in dataset.rglob("*.parquet"))
    stage(n, "generate + write Parquet dataset", t_write, parquet_bytes, client_peak(), "(client)")
    t_load1 = None
    if n <= args.jobs1_max:
        url1 = fresh_database(server)
        t_load1 = timed_load(url1, dataset, 1)
        drop_database(server, url1)
    url = fresh_database(server)
    t_load2 = timed_load(url, dataset, 2)
    row = {"n": n, "write": t_write, "parquet": parquet_bytes / n, "load1": t_load1, "load2": t_load2}
    model, dim = defaults.MODEL, vectors.shape[1]
    with db.connection(url) as conn:
        row["tables"] = {k: v / n for k, v in table_bytes(conn).items()}
        stage(n, "ccvec load DIR --jobs 2", t_load2, sum(table_bytes(conn).values()), None)
        row["mih"] = mih_stage(conn, n, [int(h) for h in hashes[: args.probes]])
    if lean:
        with db.connection(url) as conn:
            conn.execute("SELECT ccvec.index_build_settings(%s, %s)", [MAINTENANCE_WORK_MEM, 2])
            start = time.perf_counter()
            sql = "SELECT ccvec.create_embedding_index(%s, %s, %s)"
            conn.execute(sql, [model, graph.HNSW_M, graph.HNSW_EF_CONSTRUCTION])
            conn.commit()
            row["hnsw_s"] = time.perf_counter() - start
            name = conn.execute("SELECT ccvec.embedding_index_name(%s)", [model]).fetchone()[0]
            row["hnsw_bytes"] = conn.execute("SELECT pg_relation_size(%s)", [f"ccvec.{name}"]).fetchone()[0]
            stage(n, "halfvec HNSW (ccvec default)", row["hnsw_s"], row["hnsw_bytes"], backend_peak(conn))
        with db.connection(url) as conn:
            matrix = vectors  # float16; exact_top widens it in chunks
            queries = rng.choice(n, min(QUERIES, n), replace=False)
            start = time.perf_counter()
            truth = exact_top(matrix, queries, 10)
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
            variants: list[tuple[str, str | None]] = [("binary", None)]
            if args.centred:
                # The centre: the mean of a sample of the stored vectors (a fit on data, like a PCA).
                picked = matrix[rng.choice(n, min(n, 10_000), replace=False)].astype(np.float32)
                sample = ", ".join(f"{x:.5f}" for x in picked.mean(0))
                variants.append(("centred binary", f"[{sample}]"))
            for label, centre in variants:
                build_s, size, mem = lean_index(conn, model, dim, centre)
                stage(n, f"{label} HNSW (lean)", build_s, size, mem)
                for c in CANDIDATES:
                    conn.execute(f"SET hnsw.ef_search = {max(c, defaults.EF_SEARCH)}")
                    sql = bq_rerank_sql(dim, c, "ccvec.image_embedding", f"WHERE model = '{model}'", centre)
                    found, ms = sql_search(conn, sql, matrix[queries], index_of, lambda q: [q, q])
                    row["bq"].append((label, c, build_s, size, recall(found, truth), ms))
            conn.execute("DROP INDEX ccvec.bench_bq")
            conn.commit()
        if n <= args.faiss_max:
            row["faiss"] = faiss_hnsw(matrix.astype(np.float32), queries, truth)
        if partitions:
            row["part"] = partitioned(
                url, model, dim, partitions, matrix[queries], truth, index_of, n <= args.faiss_max
            )
    drop_database(server, url)
    shutil.rmtree(dataset, ignore_errors=True)
    out.append(row)
    print(f"size {n:,} done", flush=True)
    report([row])  # as it comes, so a later size that fails costs nothing already measured


def simulate(server: str, base: np.ndarray, n: int, parts: int, built: int, probes: int) -> dict:
    """The parts that scale with rows, at n rows without n embeddings: pHash rows + MIH in full;
    the lean index as `parts` hash partitions of n / parts rows, `built` of them really built."""
    url = fresh_database(server)
    out: dict = {"n": n, "parts": parts, "built": built}
    with db.connection(url) as conn:
        start = time.perf_counter()
        conn.execute(
            "INSERT INTO ccvec.image_feature (identifier, phash, content_sha256, width, height) "
            # all 64 bits uniform (a float from random() times 2^64 would leave the low ~12 bits 0:
            # the low chunk would hold few values and every probe there would match ~20k rows)
            "SELECT gen_random_uuid(), ('x' || left(md5(g::text), 16))::bit(64)::bigint, "
            "sha256(int8send(g)), 640, 480 FROM generate_series(1, %s) g",
            [n],
        )
        conn.commit()
        size = conn.execute("SELECT pg_total_relation_size('ccvec.image_feature')").fetchone()[0]
        stage(n, "pHash rows into image_feature (SQL)", time.perf_counter() - start, size, backend_peak(conn))
        hashes = [
            int(r[0]) % 2**64
            for r in conn.execute(
                "SELECT phash FROM ccvec.image_feature TABLESAMPLE SYSTEM (1) LIMIT %s", [probes]
            )
        ]
    with db.connection(url) as conn:
        out["mih"] = mih_stage(conn, n, hashes)
    if not built:
        drop_database(server, url)
        return out
    per = n // parts
    rng = np.random.default_rng(n)
    with db.connection(url) as conn:
        # Standalone tables of n / parts rows stand in for partitions: the same rows, index and
        # build; Postgres routes a partition's rows by a hash this script cannot compute.
        for i in range(built):
            conn.execute(f"CREATE TABLE bench_bits_{i} (identifier uuid, bits bit({base.shape[1]}))")
        conn.commit()
        start = time.perf_counter()
        for i in range(built):  # rows that hash to partition i only: write them there directly
            with conn.cursor().copy(f"COPY bench_bits_{i} (identifier, bits) FROM STDIN") as copy:
                for s in range(0, per, 50_000):
                    v = synthetic(base, min(50_000, per - s), rng)
                    text = ((v > 0).astype(np.uint8) + 48).tobytes().decode()
                    d = v.shape[1]
                    for r in range(len(v)):
                        copy.write_row([uuid.UUID(bytes=rng.bytes(16), version=4), text[r * d : (r + 1) * d]])
        conn.commit()
        stage(
            n,
            f"binary vectors, {built} partitions of {parts} (sampled)",
            time.perf_counter() - start,
            None,
            None,
            f"({per:,} rows each, as standalone tables)",
        )
    build_s, mem = build_parallel(
        url,
        [
            f"CREATE INDEX bench_bits_hnsw_{i} ON bench_bits_{i} USING hnsw (bits bit_hamming_ops) "
            f"WITH (m = {graph.HNSW_M}, ef_construction = {graph.HNSW_EF_CONSTRUCTION})"
            for i in range(built)
        ],
        jobs=min(built, 2),
    )
    with db.connection(url) as conn:
        size = index_bytes(conn, "bench_bits_hnsw_%")
        stage(
            n,
            f"binary HNSW, {built} of {parts} partitions, {min(built, 2)} connections",
            build_s,
            size,
            mem,
            f"({per:,} rows each)",
        )
        rounds = -(-parts // 2)
        out.update({"per": per, "build_s": build_s, "bytes": size, "mem": mem})
        stage(
            n,
            f"binary HNSW, all {parts} partitions (EXTRAPOLATED)",
            build_s * rounds / -(-built // 2),
            size * parts // built,
            None,
            f"({rounds} rounds of 2 connections)",
        )
    drop_database(server, url)
    return out


def report(rows: list[dict]) -> None:
    print("\nParquet features dataset -> Postgres (ccvec load DIR), and bytes per row")
    print(
        f"{'rows':>10s} {'write s':>8s} {'Parquet B/row':>13s} {'load j1 s':>9s} {'rows/s':>8s} "
        f"{'load j2 s':>9s} {'rows/s':>8s} {'j2/j1':>6s} {'image B/row':>11s} {'feature B/row':>13s} "
        f"{'embedding B/row':>15s}"
    )
    for r in rows:
        t = r["tables"]
        j1 = f"{r['load1']:9.1f} {r['n'] / r['load1']:8.0f}" if r["load1"] else f"{'(not run)':>9s} {'':>8s}"
        ratio = f"{r['load1'] / r['load2']:5.2f}x" if r["load1"] else f"{'':>6s}"
        print(
            f"{r['n']:>10,} {r['write']:8.1f} {r['parquet']:13.0f} {j1} "
            f"{r['load2']:9.1f} {r['n'] / r['load2']:8.0f} {ratio} "
            f"{t.get('image', 0):11.0f} {t.get('image_feature', 0):13.0f} {t.get('image_embedding', 0):15.0f}"
        )
    lean = [r for r in rows if "hnsw_s" in r]
    if not lean:
        return
    print("\nkNN index: ccvec's halfvec HNSW vs binary-quantised HNSW + cosine rerank (k=10, 200 queries)")
    print(
        f"{'rows':>10s} {'index':<36s} {'build s':>8s} {'MiB':>7s} {'B/row':>6s} {'recall@10':>9s} "
        f"{'ms/query':>8s} {'vs halfvec HNSW':>15s}"
    )
    for r in lean:
        n = r["n"]
        mib = r["hnsw_bytes"] / 2**20
        print(
            f"{n:>10,} {'halfvec HNSW (default)':<36s} {r['hnsw_s']:8.1f} {mib:7.1f} "
            f"{r['hnsw_bytes'] / n:6.0f} "
            f"{r['hnsw_recall']:9.3f} {r['hnsw_ms']:8.2f} {'1.00x size':>15s}"
        )
        part = r.get("part", {})
        listed = [(label, row) for label, row in (("", b) for b in r["bq"])]
        for kind in ("halfvec", "binary"):
            listed += [(f"{part['parts']} partitions, ", b) for b in part.get(kind, [])]
        for prefix, (label, c, build_s, size, rec, ms) in listed:
            what = f"{prefix}{label} HNSW" + (f", rerank {c}" if label != "halfvec" else "")
            print(
                f"{n:>10,} {what:<36s} {build_s:8.1f} {size / 2**20:7.1f} "
                f"{size / n:6.0f} {rec:9.3f} {ms:8.2f} {size / r['hnsw_bytes']:>10.2f}x size"
            )
        if "faiss" in r:
            fb, fms, frec = r["faiss"]
            print(
                f"{n:>10,} {'FAISS IndexHNSWFlat (RAM)':<36s} {fb:8.1f} {'':>7s} {'':>6s} "
                f"{frec:9.3f} {fms:8.2f}"
            )
        else:
            print(f"{n:>10,} {'FAISS IndexHNSWFlat (RAM)':<36s} (not run at this size)")
        for kind in ("halfvec", "binary"):
            if f"{kind}_merge" in part and not part[f"{kind}_merge"]:
                print(f"{'':>10s} ({kind} partitions: no Merge Append in the plan)")
        print(
            f"{n:>10,} {'numpy exact (RAM)':<36s} {'':>8s} {'':>7s} {'':>6s} {1.0:9.3f} {r['numpy_ms']:8.2f}"
        )


def report_stages() -> None:
    """Every stage side by side across sizes: time, disk, memory, and the fitted growth exponent."""
    sizes = sorted({s["n"] for s in STAGES})
    names = list(dict.fromkeys(s["stage"] for s in STAGES))
    by = {(s["stage"], s["n"]): s for s in STAGES}
    print("\nStages: time s / disk MiB / memory MiB per size; b = growth exponent of time ~ rows^b")
    head = "".join(f" {f'{n:,} rows':>24s}" for n in sizes)
    print(f"{'stage':<58s}{head}  b (fitted)")
    for name in names:
        cells, points = "", []
        for n in sizes:
            s = by.get((name, n))
            if s is None:
                cells += f" {'':>24s}"
                continue
            d = f"{s['disk'] / 2**20:,.0f}" if s["disk"] is not None else "-"
            m = f"{s['mem'] / 2**20:,.0f}" if s["mem"] is not None else "-"
            secs = s["s"]
            cells += f" {f'{secs:.3g} / {d} / {m}':>24s}"
            points.append((n, s["s"]))
        fits = [
            f"{np.log(t2 / t1) / np.log(n2 / n1):.2f}"
            for (n1, t1), (n2, t2) in itertools.pairwise(points)
            if t1 > 0 and t2 > 0
        ]
        print(f"{name[:58]:<58s}{cells}  {' -> '.join(fits) if fits else ''}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="*", type=Path, default=[SHARED / "photos", SHARED / "stamps"])
    parser.add_argument("--sizes", default="10000,100000", help="sizes with every step")
    parser.add_argument("--load-only", default="", help="sizes with the load and bytes-per-row steps only")
    parser.add_argument("--partitions", type=int, default=0, help="also measure P hash partitions (0: skip)")
    parser.add_argument(
        "--jobs1-max", type=int, default=100_000, help="largest size also loaded with --jobs 1"
    )
    parser.add_argument(
        "--faiss-max",
        type=int,
        default=100_000,
        help="largest size with FAISS (and partitioned halfvec HNSW)",
    )
    parser.add_argument("--centred", action="store_true", help="also the centred binary index")
    parser.add_argument("--probes", type=int, default=100, help="MIH probe queries per size")
    parser.add_argument("--sim-rows", type=int, default=0, help="row-scaling simulation at N rows (0: skip)")
    parser.add_argument("--sim-partitions", type=int, default=16)
    parser.add_argument(
        "--sim-built", type=int, default=2, help="partitions built in the simulation (0: pHash and MIH only)"
    )
    parser.add_argument("--maintenance-work-mem", default="1GB")
    args = parser.parse_args()
    for folder in args.folders:
        if not folder.is_dir():
            parser.error(f"{folder}: no such folder")
    global MAINTENANCE_WORK_MEM
    MAINTENANCE_WORK_MEM = args.maintenance_work_mem
    work = Path(tempfile.mkdtemp(prefix="ccvec-scale-"))
    os.environ["CCVEC_HOME"] = str(work / "home")
    started = time.perf_counter()
    try:
        base = real_base(args.folders)
        print(f"{len(base[0])} real embeddings from {', '.join(map(str, args.folders))}", flush=True)
        server = db.start_embedded(work / "home" / "pgdata")
        rows: list[dict] = []
        for n in [int(s) for s in args.sizes.split(",") if s]:
            run_size(server, work, base, n, True, rows, args.partitions, args)
            report_stages()
        for n in [int(s) for s in args.load_only.split(",") if s]:
            run_size(server, work, base, n, False, rows, 0, args)
        if args.sim_rows:
            simulate(server, base[0], args.sim_rows, args.sim_partitions, args.sim_built, args.probes)
        report(rows)
        report_stages()
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"\ntotal {time.perf_counter() - started:.0f}s; peak RSS of this process {peak:.0f} MiB")
    finally:
        db.discard_embedded(work / "home" / "pgdata")
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
