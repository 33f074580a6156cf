"""Hash partitions on identifier for the tables that grow with the catalog (docs/scale.md).

`image_feature`, `image_embedding` and `knn_edge` can each be split into N hash partitions; N = 1 is
the plain layout. Everything else reads the parent tables, so partitioning changes where rows live,
not what any query answers. The part that gains from it is the HNSW build: one index per partition,
each built on its own connection, attached to an index on the parent; the planner then merges the
per-partition ordered index scans (an exact top-k merge of per-partition answers).
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import psycopg
from psycopg.conninfo import make_conninfo

from ccvec import db, defaults, graph
from ccvec.errors import CcvecError, from_database

TABLES = ("image_feature", "image_embedding", "knn_edge")
INDEX_KINDS = ("halfvec", "binary")
MAX_PARTITIONS = 1024


def layout(conn: psycopg.Connection) -> dict[str, int]:
    """Partitions per table (1 = plain)."""
    counts = {t: int(db.one_row(conn, "SELECT ccvec.partition_count(%s)", [t])[0]) for t in TABLES}
    conn.commit()
    return counts


def indexed_models(conn: psycopg.Connection, kind: str = "halfvec") -> list[str]:
    """Models whose HNSW index of `kind` exists: what a repartition must rebuild."""
    models = [str(r[0]) for r in conn.execute("SELECT ccvec.indexed_models(%s)", [kind])]
    conn.commit()
    return models


def repartition(conn: psycopg.Connection, partitions: int, jobs: int = defaults.INDEX_JOBS) -> list[str]:
    """Give every partitionable table `partitions` hash partitions, one table per transaction (so
    an interrupted run leaves each table whole, and rerunning finishes the rest), then rebuild the
    HNSW indexes the move dropped, one partition per connection. Returns the tables converted."""
    if not 1 <= partitions <= MAX_PARTITIONS:
        raise CcvecError(
            f"partition count {partitions} is out of range: use 1 (plain tables) to {MAX_PARTITIONS}"
        )
    models = indexed_models(conn)
    lean = indexed_models(conn, "binary")
    changed = []
    for table in TABLES:
        try:
            done = db.run_ddl(
                conn, "SELECT ccvec.repartition(%s, %s)", [table, partitions], f"partitioning {table}"
            )
        except psycopg.Error as exc:
            error = from_database(exc)
            if error is None:
                raise
            raise error from exc
        if done[0][0]:
            changed.append(table)
    for model in models:
        build_index(conn, model, jobs)
    for model in lean:
        build_index(conn, model, jobs, kind="binary")
    return changed


def _same_server(conn: psycopg.Connection) -> str:
    """A conninfo string that opens another session like `conn` (its password included)."""
    return make_conninfo("", **conn.info.get_parameters(), password=conn.info.password or "")


def _build_one(conninfo: str, kind: str, model: str, partition: str, settings: tuple[int, int, str]) -> None:
    m, ef_construction, memory = settings
    with psycopg.connect(conninfo) as other:
        other.execute("SELECT ccvec.index_build_settings(%s, 0)", [memory])
        other.execute(
            "SELECT ccvec.create_vector_index_partition(%s, %s, %s::regclass, %s, %s)",
            [kind, model, partition, m, ef_construction],
        )


def _build_memory(conn: psycopg.Connection, model: str, kind: str, parts: int, concurrent: int) -> str:
    """graph.build_memory for one partition's build (the whole table's when it is not partitioned);
    the floor for a server on another machine, whose RAM ccvec cannot see."""
    if not db.server_is_local(conn):
        return f"{defaults.INDEX_BUILD_MEMORY_MIN // 2**20}MB"
    rows = db.fetch_row(conn.execute("SELECT ccvec.embedding_count(%s)", [model]), "counting embeddings")[0]
    dim = db.fetch_row(db.execute_checked(conn, "SELECT ccvec.model_dim(%s)", [model]), "the model's size")[0]
    vector_bytes = 2 * dim if kind == "halfvec" else (dim + 7) // 8
    conn.commit()
    return graph.build_memory(-(-rows // max(parts, 1)), vector_bytes, concurrent)


def build_index(
    conn: psycopg.Connection,
    model: str,
    jobs: int = defaults.INDEX_JOBS,
    kind: str = "halfvec",
    m: int = graph.HNSW_M,
    ef_construction: int = graph.HNSW_EF_CONSTRUCTION,
    maintenance_work_mem: str | None = None,
    workers: int = graph.MAINTENANCE_WORKERS,
) -> None:
    """The model's HNSW index of `kind` (halfvec: ccvec's index; binary: the lean one). Plain
    table: one build with `workers` parallel maintenance workers. Partitioned: each partition's
    index on one of `jobs` connections at once, then all attached to the parent's index (a killed
    build keeps the finished partitions; the next one skips them)."""
    if kind not in INDEX_KINDS:
        raise CcvecError(f"unknown index kind {kind!r}: use {' or '.join(INDEX_KINDS)}")
    parts = [str(r[0]) for r in conn.execute("SELECT ccvec.table_partitions('image_embedding')::text")]
    conn.commit()
    concurrent = min(jobs, len(parts)) if len(parts) > 1 and jobs > 1 else 1
    memory = maintenance_work_mem or _build_memory(conn, model, kind, len(parts), concurrent)
    if concurrent > 1:
        conninfo = _same_server(conn)
        settings = (m, ef_construction, memory)
        with ThreadPoolExecutor(min(jobs, len(parts))) as pool:
            futures = [pool.submit(_build_one, conninfo, kind, model, p, settings) for p in parts]
            for future in futures:
                future.result()
    conn.execute("SELECT ccvec.index_build_settings(%s, %s)", [memory, workers])
    if kind == "halfvec":
        sql = "SELECT ccvec.create_embedding_index(%s, %s, %s), ccvec.index_rebuilt(%s)"
        db.run_ddl(conn, sql, [model, m, ef_construction, model], f"building the index of {model}")
    else:
        sql = "SELECT ccvec.create_vector_index('binary', %s, %s, %s)"
        db.run_ddl(conn, sql, [model, m, ef_construction], f"building the lean index of {model}")


def drop_lean_index(conn: psycopg.Connection, model: str) -> None:
    db.run_ddl(
        conn, "SELECT ccvec.drop_vector_index('binary', %s)", [model], f"dropping the lean index of {model}"
    )


def nearest_lean(
    conn: psycopg.Connection, model: str, query: object, k: int, candidates: int = defaults.LEAN_CANDIDATES
) -> list[tuple[object, float]]:
    """(identifier, cosine similarity) of the k nearest by the lean search: Hamming candidates
    through the binary index, reranked by cosine on the full vectors."""
    rows = conn.execute(
        "SELECT * FROM ccvec.nearest_lean(%s, %s, %s, %s)", [model, query, k, candidates]
    ).fetchall()
    conn.commit()
    return [(r[0], float(r[1])) for r in rows]
