"""`ccvec load DIR` for a features dataset written by `ccvec spark features`: bulk load, no inference.

    DIR/kind=feature/*.parquet ─► split into slices ─► N connections in parallel, each:
        skip identifiers this model already has ─► COPY BINARY into the session's staging table
        ─► ccvec.ingest_batch() (the same function a normal load uses), one transaction per slice
    DIR/kind=error/*.parquet ─► ccvec.load_error (each (source, stage, reason) once)

Same tables and same resume rule as `ccvec load`: a slice is one transaction, and a rerun skips what
is in. The float16 embedding bytes are turned into pgvector's binary `halfvec` form with numpy (no
per-value Python), so the database, not the client, is what this is bound by.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import struct
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import numpy as np
import psycopg
from psycopg.types.json import Jsonb

from ccvec import db, defaults, migrate
from ccvec.errors import CcvecError
from ccvec.models import registry
from ccvec.models.registry import Model
from ccvec.models.spec import ModelSpec
from ccvec.sources import JSON_COLUMNS, NOTED, SKIPPED, WARNING
from ccvec.spark import ERROR_KIND, FEATURE_KIND, MANIFEST, TEXT_COLUMNS, FeaturesManifest, read_manifest

if TYPE_CHECKING:
    from ccvec.load import LoadSummary

SLICE_ROWS = 5_000  # rows per transaction: a crash loses at most this many per connection
DEFAULT_JOBS = defaults.LOAD_JOBS
STAGE_COLUMNS = "identifier, phash, content_sha256, width, height, filesize, embedding, metadata"
# The embedding goes in as ready-made halfvec binary: the server's halfvec_recv reads the bytes.
STAGE_TYPES = ["uuid", "int8", "bytea", "int4", "int4", "int8", "bytea", "jsonb"]


def is_features_dataset(source: str | Path) -> bool:
    """True for a folder written by `ccvec spark features`; any name the OS refuses is not one
    (the ordinary loader then reports it)."""
    try:
        path = Path(source).expanduser()
        return path.is_dir() and (path / MANIFEST).is_file()
    except (OSError, ValueError):
        return False


def _pyarrow() -> ModuleType:
    try:
        return importlib.import_module("pyarrow.parquet")
    except ImportError:
        raise CcvecError("loading a features dataset needs pyarrow: pip install 'ccvec[spark]'") from None


def halfvec_binary(embeddings: list[bytes], dim: int) -> list[bytes]:
    """float16 little-endian blobs → pgvector's binary halfvec (int16 dim, int16 0, big-endian halves)."""
    if not embeddings:
        return []
    matrix = np.frombuffer(b"".join(embeddings), dtype="<f2")
    if matrix.size != dim * len(embeddings):
        raise CcvecError(f"embedding bytes do not hold {len(embeddings)} x {dim} float16 values")
    header = struct.pack(">hh", dim, 0)
    rows = matrix.astype(">f2").reshape(len(embeddings), dim)
    return [header + row.tobytes() for row in rows]


def _metadata(row: Mapping[str, Any]) -> dict[str, Any]:
    meta = {c: row[c] for c in TEXT_COLUMNS if row.get(c) is not None}
    if row.get("watermarked") is not None:
        meta["watermarked"] = row["watermarked"]
    for column in JSON_COLUMNS:
        if row.get(column) is not None:
            meta[column] = json.loads(row[column])
    meta.setdefault("url", row["location"])
    return meta


def _model(conn: psycopg.Connection, manifest: FeaturesManifest) -> str:
    """The dataset's model, registered here, refusing a different file under the same name."""
    spec = ModelSpec.from_json(manifest["spec"])
    if spec.name == registry.DEFAULT_MODEL:
        local = registry.get_model(conn, spec.name)
        if local.sha256 != manifest["model_sha256"]:
            raise CcvecError(
                f"the dataset's {spec.name} (sha256 {manifest['model_sha256'][:12]}…) is not this "
                f"installation's (sha256 {local.sha256[:12]}…): vectors of different models never mix"
            )
        return spec.name
    registry.register(conn, Model(spec, Path(manifest.get("model_file", "")), manifest["model_sha256"]))
    return spec.name


def _slices(root: Path) -> Iterator[tuple[Path, int]]:
    """(file, row group) pairs: the units handed to connections (row groups hold ~SLICE_ROWS)."""
    pq = _pyarrow()
    for path in sorted((root / f"kind={FEATURE_KIND}").glob("*.parquet")):
        for group in range(pq.ParquetFile(path).num_row_groups):
            yield path, group


def _load_slice(
    url: str, model: str, dim: int, run_id: int, write_catalog: bool, part: tuple[Path, int]
) -> tuple[int, int]:
    """One row group on this thread's connection, SLICE_ROWS per transaction: (rows read, inserted)."""
    path, group = part
    conn = _connection(url)
    read = inserted = 0
    for batch in _pyarrow().ParquetFile(path).iter_batches(SLICE_ROWS, row_groups=[group]):
        rows: list[dict[str, Any]] = batch.to_pylist()
        read += len(rows)
        with conn.transaction():
            n = _write_rows(conn, model, dim, rows, write_catalog)
            conn.execute("SELECT ccvec.load_run_add(%s, %s)", [run_id, n])
        inserted += n
    return read, inserted


def _write_rows(
    conn: psycopg.Connection, model: str, dim: int, rows: list[dict[str, Any]], write_catalog: bool
) -> int:
    """Stage by COPY BINARY the rows this model lacks, then ccvec.ingest_batch()."""
    ids = [r["identifier"] for r in rows]
    sql = "SELECT ccvec.missing_embeddings(%s, %s::uuid[])"
    missing = {str(r[0]) for r in conn.execute(sql, [model, ids])}
    rows = [r for r in rows if r["identifier"] in missing]
    if not rows:
        return 0
    vectors = halfvec_binary([r["embedding"] for r in rows], dim)
    with conn.cursor().copy(
        f"COPY ccvec_load_stage ({STAGE_COLUMNS}) FROM STDIN WITH (FORMAT BINARY)"
    ) as copy:
        copy.set_types(STAGE_TYPES)
        for r, v in zip(rows, vectors, strict=True):
            copy.write_row(
                [
                    uuid.UUID(r["identifier"]),
                    r["phash"],
                    r["content_sha256"],
                    r["width"],
                    r["height"],
                    r["filesize"],
                    v,
                    Jsonb(_metadata(r)),
                ]
            )
    inserted: int = db.one_row(conn, "SELECT ccvec.ingest_batch(%s, %s)", [model, write_catalog])[0]
    return inserted


_THREAD_CONNECTIONS: dict[int, psycopg.Connection] = {}


def _connection(url: str) -> psycopg.Connection:
    """One connection per loader thread, with its own staging table."""
    import threading

    key = threading.get_ident()
    if key not in _THREAD_CONNECTIONS:
        conn = db.connect(url)
        conn.execute("SELECT ccvec.create_load_stage()")
        conn.commit()
        _THREAD_CONNECTIONS[key] = conn
    return _THREAD_CONNECTIONS[key]


def _close_connections() -> None:
    while _THREAD_CONNECTIONS:
        _, conn = _THREAD_CONNECTIONS.popitem()
        conn.close()


def _error_rows(root: Path) -> dict[tuple[str, str, str], int]:
    """The job's error rows: (source, stage, reason) -> the inputs the row stands for (more than one
    for a counted row of skipped files; datasets written before the `files` column have one each).
    Passwords in URLs are redacted, as in every message."""
    pq = _pyarrow()
    rows: dict[tuple[str, str, str], int] = {}
    for path in sorted((root / f"kind={ERROR_KIND}").glob("*.parquet")):
        columns = ["identifier", "location", "stage", "reason"]
        columns += ["files"] if "files" in pq.read_schema(path).names else []
        for r in pq.read_table(path, columns=columns).to_pylist():
            source = db.redact(r["location"] or r["identifier"] or "?")  # as `ccvec load` records it
            rows[(source, r["stage"], db.redact(r["reason"]))] = r.get("files") or 1
    return rows


def _load_errors(conn: psycopg.Connection, root: Path, run_id: int) -> tuple[int, int, int]:
    """The job's error rows into ccvec.load_error, each (source, stage, reason) once across reruns:
    (inputs that failed, files skipped as not images, rows stored with changes), counted as
    `ccvec load` counts them."""
    rows = _error_rows(root)
    if not rows:
        return 0, 0, 0
    with conn.transaction():
        conn.execute("SELECT ccvec.create_error_stage()")
        with conn.cursor().copy("COPY ccvec_error_stage FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        conn.execute("SELECT ccvec.ingest_load_errors(%s)", [run_id])
    added = conn.execute("SELECT source, stage, reason FROM ccvec.load_errors(%s)", [run_id]).fetchall()
    failed = sum(stage not in NOTED for _, stage, _ in added)
    changed = sum(stage == WARNING for _, stage, _ in added)
    return failed, sum(rows.get(row, 1) for row in added if row[1] == SKIPPED), changed


def load_dataset(
    source: str | Path,
    jobs: int = DEFAULT_JOBS,
    write_catalog: bool = True,
    on_start: Callable[[int], None] | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> LoadSummary:
    """Bulk-load a features dataset over `jobs` connections; returns a `ccvec.load.LoadSummary`."""
    from ccvec.load import LoadSummary, _drop_index_for_bulk_load, _start_run  # `ccvec load`'s own steps

    started = time.perf_counter()
    root = Path(source).expanduser().resolve()
    manifest = read_manifest(root)
    if manifest is None:
        raise CcvecError(f"{source}: not a ccvec features dataset (no {MANIFEST})")
    url = db.resolve_url()
    with db.connection(url) as conn, contextlib.ExitStack() as held:
        migrate.require_current(conn)
        held.enter_context(db.job(conn, "catalog", f"loading {source}", shared=True))  # as ccvec.load
        model = _model(conn, manifest)
        run_id = _start_run(conn, str(root), model)
        summary = LoadSummary(run_id)
        parts = list(_slices(root))
        pq = _pyarrow()
        incoming = sum(pq.ParquetFile(p).metadata.row_group(g).num_rows for p, g in parts)
        if on_start:
            on_start(incoming)
        rebuild = _drop_index_for_bulk_load(conn, model, incoming, run_id)  # `ccvec load`'s rule
        try:
            with ThreadPoolExecutor(max(1, jobs), thread_name_prefix="ccvec-copy") as pool:
                load = lambda part: _load_slice(url, model, manifest["dim"], run_id, write_catalog, part)  # noqa: E731
                for read, inserted in pool.map(load, parts):
                    summary.total += read
                    summary.loaded += inserted
                    summary.skipped += read - inserted
                    if on_progress:
                        on_progress(read)
        finally:
            _close_connections()
        summary.failed, summary.not_images, summary.warnings = _load_errors(conn, root, run_id)
        summary.total += summary.failed
        if rebuild:
            from ccvec.graph import ensure_index

            ensure_index(conn, model)
        summary.seconds = time.perf_counter() - started
        conn.execute(  # failed: ccvec.ingest_load_errors counted the notes (skipped files) as failures
            "SELECT ccvec.load_run_finish(%s, NULL, %s, %s)",
            [run_id, summary.skipped, summary.failed],
        )
        conn.commit()
    return summary
