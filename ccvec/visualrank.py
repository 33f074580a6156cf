"""VisualRank by streaming: edges out of PostgreSQL with binary COPY, power iteration in scipy,
ranks back with binary COPY.

Same definition as the SQL function `ccvec.visualrank` (sql/0005_scores.up.sql): PageRank over the
column-normalised similarity matrix of a kNN run, negative similarities carry no vote, dangling
images spread their rank evenly, warm start from the previous ranks, stop when the L1 change is
below the tolerance. In SQL every iteration is a hash join and aggregate over all edges written to
a new table (about 24 s per iteration at 10M edges); here an iteration is one sparse
matrix-vector product (about 0.1 s), and the transfer costs two sequential COPY passes.
bench/visualrank.py measures both.

The input is the run's adjacency by position (ccvec.knn_adjacency), which the graph's writers store
once (store_adjacency): reading it costs a tenth of packing the edges' UUIDs in the server and
mapping them here. When the edges changed since, the edges are read as before, and the adjacency
is stored anew for the next refresh.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, LiteralString

import numpy as np
import psycopg

from ccvec import db
from ccvec.errors import CcvecError

# a stored adjacency part: at most 64 MB of targets and weights, 64 MB of ids; far from bytea's 1 GB
PART_EDGES = 8_000_000
PART_NODES = 4_000_000
Source = Literal["adjacency", "uuid", "node"]
_MIX = np.uint64(0x9E3779B97F4A7C15)


def _fetch_packed(conn: psycopg.Connection, sql: LiteralString, params: list[object]) -> bytes:
    """Rows packed server-side by a ccvec.*_packed function (`sql` calls it), concatenated.

    COPY TO STDOUT sends one message per row, and the client pays a Python round per message
    (4 s per million edges); aggregated bytea values arrive at network speed. The functions
    return one value per few million rows, each a whole number of rows, so none nears the 1 GB
    bytea limit.
    """
    cursor = conn.cursor(binary=True)
    return b"".join(bytes(row[0]) for row in cursor.execute(sql, params) if row[0] is not None)


def _rows(data: bytes, fields: list[tuple[str, str]]) -> np.ndarray:
    """Packed fixed-width rows (big-endian, as the *send functions write them) as a record array."""
    row = np.dtype(fields)
    if len(data) % row.itemsize:
        raise CcvecError("unexpected packed row size: cannot stream VisualRank input")
    return np.frombuffer(data, row)


def _uuid_words(column: np.ndarray) -> np.ndarray:
    """(n,) 16-byte UUIDs -> (n, 2) big-endian uint64 words."""
    return np.frombuffer(column.tobytes(), ">u8").reshape(-1, 2).astype(np.uint64)


def _hash(words: np.ndarray) -> np.ndarray:
    """64-bit hash of (n, 2) UUID words: first word times an odd constant xor the second, then the
    splitmix64 finaliser, so sequential UUIDs spread over the whole range (_lookup buckets on the
    top bits). Every step is a bijection, so for a fixed second word the hash is injective."""
    with np.errstate(over="ignore"):
        h: np.ndarray = words[:, 0] * _MIX ^ words[:, 1]
        h ^= h >> np.uint64(30)
        h *= np.uint64(0xBF58476D1CE4E5B9)
        h ^= h >> np.uint64(27)
        h *= np.uint64(0x94D049BB133111EB)
        h ^= h >> np.uint64(31)
    return h


def _lookup(keys: np.ndarray, needles: np.ndarray) -> np.ndarray:
    """np.searchsorted(keys, needles) for sorted, distinct 64-bit hashes (uniform over the range),
    for needles that are mostly keys.

    Bucketed on the top bits, four to eight buckets per key, so a needle that is a key is nearly
    always its bucket's first key: one gather finds it, and only the others (about one in eight)
    step forward within their bucket. 0.35 s for 10M needles into 1M keys, where a search that
    stepped every needle took 1.7 s and np.searchsorted's random binary searches, missing the cache
    at every level, several seconds (docs/benchmarks.md, VisualRank round 4).
    """
    bits = int(np.ceil(np.log2(max(len(keys), 2)))) + 2
    shift = np.uint64(64 - bits)
    edges = np.arange(2**bits + 1, dtype=np.uint64)
    starts = np.searchsorted(keys >> shift, edges).astype(np.int64, copy=False)
    bucket = (needles >> shift).astype(np.int64)
    pos: np.ndarray = starts[bucket]
    last = len(keys) - 1
    todo = np.flatnonzero(keys[np.minimum(pos, last)] != needles)
    if todo.size:
        ends, at, wanted = starts[bucket[todo] + 1], pos[todo], needles[todo]
        while True:
            step = (at < ends) & (keys[np.minimum(at, last)] < wanted)
            if not step.any():
                break
            at = at + step
        pos[todo] = at
    return pos


def _index(src: np.ndarray, dst: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct UUIDs of both ends ((m, 2) words) and each edge end's position among them.

    Sources arrive in runs (one run of k edges per image), so only the run heads are hashed and
    sorted; targets are hashed (64 bits) and found by a bucketed search (_lookup). The keys are
    then checked: equal hashes and equal second words imply equal UUIDs (the hash is an odd
    multiple of the first word xor the second, a bijection), so a collision is detected and falls
    back to an exact sort of the full keys.
    """
    heads = np.flatnonzero(np.r_[True, (src[1:] != src[:-1]).any(axis=1)])
    keys, first, head_at = np.unique(_hash(src[heads]), return_index=True, return_inverse=True)
    distinct = src[heads[first]]
    src_at = np.repeat(head_at.reshape(-1), np.diff(np.r_[heads, len(src)]))
    hd = _hash(dst)
    dst_at = np.minimum(_lookup(keys, hd), len(keys) - 1)
    missing = keys[dst_at] != hd  # images only ever listed as a neighbour
    if missing.any():
        _, extra_first, extra_at = np.unique(hd[missing], return_index=True, return_inverse=True)
        dst_at[missing] = len(keys) + extra_at.reshape(-1)
        distinct = np.concatenate([distinct, dst[missing][extra_first]])
    low = np.ascontiguousarray(distinct[:, 1])  # hashes already match: runs by construction, targets above
    if (low[src_at] == src[:, 1]).all() and (low[dst_at] == dst[:, 1]).all():
        return distinct, src_at.astype(np.int64), dst_at.astype(np.int64)
    distinct, inverse = np.unique(np.concatenate([src, dst]), axis=0, return_inverse=True)
    inverse = inverse.reshape(-1).astype(np.int64)
    return distinct, inverse[: len(src)], inverse[len(src) :]


def _positions(distinct: np.ndarray, words: np.ndarray) -> np.ndarray:
    """Position of each row of `words` in `distinct` (from _index), or -1 when absent."""
    if not len(words):
        return np.zeros(0, np.int64)
    keys = _hash(distinct)
    order = np.argsort(keys, kind="stable")
    hashed = _hash(words)
    pos = order[np.minimum(np.searchsorted(keys[order], hashed), len(distinct) - 1)]
    found = (distinct[pos] == words).all(axis=1)
    return np.where(found, pos, -1)


def power_iteration(
    n: int,
    src: np.ndarray,
    dst: np.ndarray,
    w: np.ndarray,
    start: np.ndarray,
    d: float,
    tol: float,
    max_it: int,
) -> tuple[np.ndarray, int, float]:
    """PageRank as the SQL function defines it: (ranks, iterations, last L1 change)."""
    import scipy.sparse as sp

    w = np.maximum(w.astype(np.float64), 0)
    total = np.bincount(src, weights=w, minlength=n)
    keep = w > 0
    src, dst, w = src[keep], dst[keep], w[keep] / total[src[keep]]
    matrix = sp.csr_matrix((w, (dst, src)), shape=(n, n))
    dangling = np.bincount(src, minlength=n) == 0
    r = start / start.sum()
    it, delta = 0, 1.0
    while delta > tol and it < max_it:
        new = (1 - d) / n + d * (matrix @ r + r[dangling].sum() / n)
        delta = float(np.abs(new - r).sum())
        r = new
        it += 1
    return r, it, delta


def percent_rank(r: np.ndarray) -> np.ndarray:
    """SQL's percent_rank() OVER (ORDER BY r): (number of smaller values) / (n - 1)."""
    if len(r) < 2:
        return np.zeros(len(r), np.float32)
    below = np.searchsorted(np.sort(r), r, side="left")
    return (below / (len(r) - 1)).astype(np.float32)


def visualrank(
    conn: psycopg.Connection,
    knn_run: int,
    damping: float | None = None,
    tolerance: float | None = None,
    timings: dict[str, float] | None = None,
    source: Source = "adjacency",
) -> int:
    """Compute and store VisualRank for a kNN run; returns the visualrank_run id. One transaction.

    `source` = "adjacency" reads the run's stored adjacency (ccvec.knn_adjacency) when it is
    current; otherwise it streams the edges' UUIDs, and stores the adjacency when no other session
    is writing edges at that moment (ccvec.knn_adjacency_begin without waiting). "uuid" always
    streams the UUIDs (36 bytes per edge) and maps them to positions here; "node" streams pairs of
    ccvec.image_node ids (12 bytes per edge), which the server finds by two hash joins per edge:
    both slower at 1M images (bench/visualrank.py measures the three; docs/benchmarks.md).
    `timings`, when given, receives seconds per step (read, index, iterate, store).
    """
    clock = [time.perf_counter()]

    def step(name: str) -> None:
        now = time.perf_counter()
        if timings is not None:
            timings[name] = timings.get(name, 0.0) + now - clock[0]
        clock[0] = now

    settings = conn.execute(
        "SELECT * FROM ccvec.visualrank_settings(%s, %s)", [damping, tolerance]
    ).fetchone()
    assert settings is not None
    d, tol, max_it = settings
    inserted = conn.execute("SELECT ccvec.visualrank_run_start(%s, %s, %s)", [knn_run, d, tol]).fetchone()
    assert inserted is not None
    run = int(inserted[0])
    readers = {"adjacency": _graph_by_position, "uuid": _graph_by_uuid, "node": _graph_by_node}
    if source not in readers:
        raise CcvecError(f"unknown VisualRank source {source!r}: adjacency, uuid or node")
    nodes, src, dst, weights, start = readers[source](conn, knn_run, step)
    n = len(nodes)
    ranks, iterations, delta = power_iteration(n, src, dst, weights, start, d, tol, int(max_it))
    step("iterate")
    _store(conn, run, nodes, ranks)
    step("store (COPY)")
    conn.execute("SELECT ccvec.visualrank_run_finish(%s, %s, %s, %s)", [run, iterations, delta, n])
    return run


Step = Callable[[str], None]
Graph = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]  # weights: power_iteration widens
Edges = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]


@dataclass(frozen=True)
class Adjacency:
    """A kNN run's edges by position: nodes in identifier order, as (n, 2) big-endian UUID words;
    each node's out-degree; its edges' neighbour positions and similarities, in node order."""

    nodes: np.ndarray
    degrees: np.ndarray
    targets: np.ndarray
    weights: np.ndarray

    def sources(self) -> np.ndarray:
        """The source position of every edge."""
        return np.repeat(np.arange(len(self.nodes), dtype=np.int32), self.degrees)


def _edges_by_uuid(conn: psycopg.Connection, knn_run: int, step: Step) -> Edges:
    """(node UUIDs as (n, 2) words, src, dst, weights as float32) from the edges' UUIDs."""
    edges = _rows(
        _fetch_packed(conn, "SELECT * FROM ccvec.knn_edges_packed(%s)", [knn_run]),
        [("src", "V16"), ("dst", "V16"), ("w", ">f4")],
    )
    if not len(edges):
        raise CcvecError(f"kNN run {knn_run} has no edges")
    step("fetch edges")
    nodes, src, dst = _index(_uuid_words(edges["src"]), _uuid_words(edges["dst"]))
    step("index UUIDs")
    return nodes, src, dst, edges["w"].astype(np.float32)


def _by_position(nodes: np.ndarray, src: np.ndarray, dst: np.ndarray, weights: np.ndarray) -> Adjacency:
    """The edges renumbered in identifier order (PostgreSQL's uuid order: the words' order) and
    grouped by source, as stored."""
    n = len(nodes)
    if n >= 2**31:
        raise CcvecError(f"a graph of {n:,} images is too large for 32-bit positions")
    order = np.lexsort((nodes[:, 1], nodes[:, 0]))
    position = np.empty(n, np.int64)
    position[order] = np.arange(n)
    src, dst = position[src], position[dst]
    by_source = np.argsort(src, kind="stable")
    return Adjacency(
        nodes[order],
        np.bincount(src, minlength=n).astype(np.int32),
        dst[by_source].astype(np.int32),
        weights[by_source].astype(np.float32, copy=False),
    )


def adjacency_from_edges(conn: psycopg.Connection, knn_run: int, step: Step | None = None) -> Adjacency:
    """The run's adjacency made from its edges (read as UUIDs, in the caller's snapshot)."""
    nodes, src, dst, weights = _edges_by_uuid(conn, knn_run, step or (lambda name: None))
    return _by_position(nodes, src, dst, weights)


def store_adjacency(
    conn: psycopg.Connection, knn_run: int, *, wait: bool = True, step: Step | None = None
) -> Adjacency | None:
    """Make kNN run `knn_run`'s adjacency from its edges and store it (ccvec.knn_adjacency) in the
    caller's transaction, valid until knn_edge next changes; returns it, or None when the run has no
    edges, outside READ COMMITTED (the edges would be read in a snapshot older than the lock) or,
    with `wait` false, when another session is writing edges or an adjacency (nothing stored then).
    The graph's writers call it when they finish (ccvec/graph.py)."""
    edge_change = db.one_row(conn, "SELECT ccvec.knn_adjacency_begin(%s)", [wait])[0]
    if edge_change is None:
        return None
    if conn.execute("SELECT 1 FROM ccvec.knn_edge WHERE run_id = %s LIMIT 1", [knn_run]).fetchone() is None:
        return None
    adjacency = adjacency_from_edges(conn, knn_run, step)
    _put(conn, knn_run, int(edge_change), adjacency)
    if step:
        step("store adjacency")
    return adjacency


def _put(conn: psycopg.Connection, knn_run: int, edge_change: int, adjacency: Adjacency) -> None:
    """Store `adjacency` in parts of whole nodes, at most PART_NODES nodes and about PART_EDGES
    edges each (one node with more edges is a part of its own)."""
    ends = np.cumsum(adjacency.degrees, dtype=np.int64)
    first = 0
    while first < len(adjacency.nodes):
        edges_before = int(ends[first - 1]) if first else 0
        by_edges = int(np.searchsorted(ends, edges_before + PART_EDGES, side="right"))
        last = max(first + 1, min(by_edges, first + PART_NODES))
        edge_slice = slice(edges_before, int(ends[last - 1]))
        conn.execute(
            "SELECT ccvec.knn_adjacency_put(%s, %s, %s, %b, %b, %b, %b)",
            [
                knn_run,
                first,
                edge_change,
                adjacency.nodes[first:last].astype(">u8").tobytes(),
                adjacency.degrees[first:last].astype("<i4").tobytes(),
                adjacency.targets[edge_slice].astype("<i4").tobytes(),
                adjacency.weights[edge_slice].astype("<f4").tobytes(),
            ],
        )
        first = last


def stored_adjacency(conn: psycopg.Connection, knn_run: int) -> Adjacency | None:
    """The run's stored adjacency when it is current (ccvec.knn_adjacency_current) and whole, else
    None: parts that do not follow one another, or edges that do not add up to the degrees or point
    past the last node, are read as stale (the caller reads the edges and stores it anew)."""
    query = "SELECT * FROM ccvec.knn_adjacency_current(%s)"
    parts = conn.cursor(binary=True).execute(query, [knn_run]).fetchall()
    count = 0
    for first_node, ids, _, _, _ in parts:
        if first_node != count:
            return None
        count += len(ids) // 16
    adjacency = Adjacency(
        np.frombuffer(b"".join(p[1] for p in parts), ">u8").reshape(-1, 2).astype(np.uint64),
        np.frombuffer(b"".join(p[2] for p in parts), "<i4"),
        np.frombuffer(b"".join(p[3] for p in parts), "<i4"),
        np.frombuffer(b"".join(p[4] for p in parts), "<f4"),
    )
    targets = adjacency.targets
    adds_up = int(adjacency.degrees.sum(dtype=np.int64)) == len(targets)
    inside = not len(targets) or (int(targets.min()) >= 0 and int(targets.max()) < count)
    return adjacency if count and adds_up and inside else None


def _graph_by_position(conn: psycopg.Connection, knn_run: int, step: Step) -> Graph:
    """(node UUIDs as (n, 2) words, src, dst, weights, start ranks) from the stored adjacency, or
    from the edges' UUIDs when it is not current (storing it then, if no one else writes edges)."""
    adjacency = stored_adjacency(conn, knn_run)
    step("read adjacency")
    if adjacency is None:
        # a graph build or add in progress stores it when it ends: its next batch would make this stale
        writing = db.one_row(conn, "SELECT EXISTS (SELECT FROM ccvec.job_holder('graph'))", [])[0]
        adjacency = None if writing else store_adjacency(conn, knn_run, wait=False, step=step)
        if adjacency is None:  # not stored (edges being written, or not READ COMMITTED): read them
            adjacency = adjacency_from_edges(conn, knn_run, step)
    start = _start_ranks(conn, adjacency.nodes)
    step("fetch previous ranks")  # else counted in "iterate"
    return adjacency.nodes, adjacency.sources(), adjacency.targets, adjacency.weights, start


def _start_ranks(conn: psycopg.Connection, nodes: np.ndarray) -> np.ndarray:
    """The stored ranks of `nodes` (uniform for nodes without one): the warm start."""
    previous = _rows(
        _fetch_packed(conn, "SELECT * FROM ccvec.visual_ranks_packed()", []),
        [("id", "V16"), ("rank", ">f8")],
    )
    n = len(nodes)
    start = np.full(n, 1.0 / n)
    if len(previous):
        at = _positions(nodes, _uuid_words(previous["id"]))
        start[at[at >= 0]] = previous["rank"][at >= 0]
    return start


def _graph_by_uuid(conn: psycopg.Connection, knn_run: int, step: Step) -> Graph:
    """(node UUIDs as (n, 2) words, src, dst, weights, start ranks) from the edges' UUIDs."""
    nodes, src, dst, weights = _edges_by_uuid(conn, knn_run, step)
    start = _start_ranks(conn, nodes)
    step("fetch previous ranks")
    return nodes, src, dst, weights, start


def _graph_by_node(conn: psycopg.Connection, knn_run: int, step: Step) -> Graph:
    """As _graph_by_uuid, from the edges as integer node pairs: nodes are numbered densely by
    ccvec.image_node, so the graph's nodes are found by marking an array, not by sorting keys."""
    conn.execute("SELECT ccvec.image_node_sync()")
    fields = [("src", ">i4"), ("dst", ">i4"), ("w", ">f4")]
    query = "SELECT * FROM ccvec.knn_edges_packed_nodes(%s)"
    edges = _rows(_fetch_packed(conn, query, [knn_run]), fields)
    if len(edges) and (min(edges["src"].min(), edges["dst"].min()) < 0):  # graph images not in the catalog
        conn.execute("SELECT ccvec.image_node_sync(%s)", [knn_run])
        edges = _rows(_fetch_packed(conn, query, [knn_run]), fields)
    if not len(edges):
        raise CcvecError(f"kNN run {knn_run} has no edges")
    step("fetch edges")
    table = _rows(
        _fetch_packed(conn, "SELECT * FROM ccvec.image_nodes_packed()", []), [("node", ">i4"), ("id", "V16")]
    )
    size = int(max(table["node"].max(), edges["src"].max(), edges["dst"].max())) + 1
    present = np.zeros(size, bool)
    present[edges["src"]] = True
    present[edges["dst"]] = True
    position = np.cumsum(present) - 1  # node id -> position among the graph's nodes
    src, dst = position[edges["src"]], position[edges["dst"]]
    weights = edges["w"].astype(np.float64)
    del edges
    words = np.zeros((size, 2), np.uint64)
    words[table["node"]] = _uuid_words(table["id"])
    graph_nodes = np.flatnonzero(present)
    nodes = words[graph_nodes]
    step("node ids")
    n = len(nodes)
    previous = _rows(
        _fetch_packed(conn, "SELECT * FROM ccvec.visual_ranks_packed_nodes()", []),
        [("node", ">i4"), ("rank", ">f8")],
    )
    start = np.full(n, 1.0 / n)
    if len(previous):
        node = previous["node"].astype(np.int64)
        inside = node < size
        inside[inside] = present[node[inside]]
        start[position[node[inside]]] = previous["rank"][inside]
    step("fetch previous ranks")
    return nodes, src, dst, weights, start


def _store(conn: psycopg.Connection, run: int, nodes: np.ndarray, ranks: np.ndarray) -> None:
    """Replace ccvec.visual_rank with one binary COPY (TRUNCATE: readers wait for the commit)."""
    n = len(nodes)
    row = np.dtype(
        [
            ("count", ">i2"),
            ("id_len", ">i4"),
            ("id", ">u8", 2),
            ("rank_len", ">i4"),
            ("rank", ">f8"),
            ("score_len", ">i4"),
            ("score", ">f4"),
            ("run_len", ">i4"),
            ("run", ">i8"),
        ]
    )
    out = np.empty(n, row)
    out["count"], out["id_len"], out["rank_len"], out["score_len"], out["run_len"] = 4, 16, 8, 4, 8
    order = np.lexsort((nodes[:, 1], nodes[:, 0]))  # in key order: the primary key grows at its right edge
    out["id"] = nodes[order]
    out["rank"] = ranks[order]
    out["score"] = percent_rank(ranks)[order]
    out["run"] = run
    conn.execute("SELECT ccvec.visual_rank_clear()")
    sql = "COPY ccvec.visual_rank (identifier, rank, score, run_id) FROM STDIN (FORMAT BINARY)"
    with conn.cursor().copy(sql) as copy:
        copy.write(b"PGCOPY\n\xff\r\n\x00" + b"\x00" * 8)
        copy.write(out.tobytes())
        copy.write(b"\xff\xff")
