"""`ccvec load`: the pipeline from files to rows.

    source items ─► skip those already embedded by this model
                 ─► fetch (thread pool: bounded concurrency for URLs)
                 ─► decode once → hash grid + model pixels (worker processes)
                 ─► batch: pHash (vectorised) + embedding (onnxruntime)
                 ─► COPY BINARY into a staging table → ccvec.ingest_batch(), one transaction

A bad input becomes a row in ccvec.load_error and the load goes on: manifest rows are checked one by
one (sources.py), and a batch the database refuses is retried row by row, so only the bad row is
recorded. Each batch is one transaction, so a crash or kill loses at most the batch in flight and a
rerun picks up where it stopped; between batches no transaction is left open.
"""

from __future__ import annotations

import contextlib
import ctypes
import itertools
import multiprocessing
import os
import signal
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import (
    FIRST_COMPLETED,
    Executor,
    Future,
    ProcessPoolExecutor,
    ThreadPoolExecutor,
    wait,
)
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt
import psycopg
from pgvector import HalfVector
from psycopg.types.json import Jsonb

from ccvec import db, defaults, migrate
from ccvec.decode import DEFAULT_MAX_PIXELS, DecodedImage, DecodeError, decode
from ccvec.errors import CcvecError, first_line
from ccvec.fetch import FetchError, FetchPolicy, fetch
from ccvec.models import registry
from ccvec.models.runtime import Embedder
from ccvec.models.spec import ModelSpec
from ccvec.phash import phash_from_pixels, to_signed
from ccvec.sources import (
    SKIPPED,
    WARNING,
    BadRow,
    SourceItem,
    clean_text,
    display_path,
    file_location,
    local_path,
    open_source,
)

# With an HNSW index in place, loading more than this fraction of the rows already indexed is
# faster as drop + load + rebuild than as load with the index maintained. Measured by bench/graph.py:
# maintained inserts cost ~2.8 ms each, a rebuild ~0.37 ms per indexed row; crossover ~0.15.
REBUILD_INDEX_ABOVE = 0.15

STAGE_COLUMNS = "identifier, phash, content_sha256, width, height, filesize, embedding, metadata"
STAGE_TYPES = ["uuid", "int8", "bytea", "int4", "int4", "int8", "halfvec", "jsonb"]


@dataclass(frozen=True)
class LoadOptions:
    model: str = registry.DEFAULT_MODEL
    batch_size: int = defaults.BATCH_SIZE
    workers: int = defaults.WORKERS  # decode processes; 0 = decode in threads
    inference_streams: int = defaults.INFERENCE_STREAMS  # batches embedded at once; 0 = one per core
    concurrency: int = defaults.CONCURRENCY  # fetches in flight
    max_pixels: int = DEFAULT_MAX_PIXELS
    fetch_policy: FetchPolicy = field(default_factory=FetchPolicy)
    write_catalog: bool = True  # also fill ccvec.image from the source's metadata


@dataclass
class LoadSummary:
    run_id: int
    total: int = 0
    loaded: int = 0
    skipped: int = 0
    failed: int = 0
    warnings: int = 0  # rows stored with something changed (text cut, NULs removed); in load_error
    not_images: int = 0  # files of a folder skipped as not images by their name; in load_error
    passed_over: int = 0  # hidden entries and system folders (@eaDir) not searched; in load_error
    updated: int = 0  # catalog rows loaded before whose columns a manifest changed (not re-embedded)
    restored: int = 0  # catalog rows deleted since their image was embedded, written again
    gone: int = 0  # images loaded before from this folder whose file is no longer there; in load_error
    changed: int = 0  # files of this folder whose size differs from the one loaded; in load_error
    seconds: float = 0.0

    @property
    def rate(self) -> float:
        return self.loaded / self.seconds if self.seconds else 0.0


@dataclass(frozen=True)
class Prepared:
    item: SourceItem
    image: DecodedImage
    filesize: int


@dataclass(frozen=True)
class Failed:
    source: str
    stage: str
    reason: str


ProgressHook = Callable[[int], None]  # called with the number of items just finished


# ---------------------------------------------------------------- per item (runs in workers)


def _prepare(
    item: SourceItem, decoder: Executor | None, options: LoadOptions, spec: ModelSpec
) -> Prepared | Failed:
    """Fetch in this thread; decode in a worker process (or here when there is none)."""
    try:
        data = fetch(item.location, options.fetch_policy)
    except FetchError as exc:
        return Failed(item.source, "fetch", str(exc))
    except Exception as exc:  # a fetch bug on one odd input must not end the load
        return Failed(item.source, "fetch", f"unexpected {type(exc).__name__}: {exc}")
    try:
        if decoder is None:
            image = decode(data, spec, options.max_pixels)
        else:
            image = decoder.submit(decode, data, spec, options.max_pixels).result()
    except DecodeError as exc:
        return Failed(item.source, "decode", str(exc))
    except (BrokenProcessPool, RuntimeError) as exc:  # the pool itself, not this file
        raise CcvecError(
            f"decode worker processes failed ({type(exc).__name__}: {str(exc).strip().splitlines()[0]}); "
            "when calling ccvec.load.load() from a script, put the call under `if __name__ == '__main__':` "
            "(multiprocessing's rule), or use workers=0"
        ) from exc
    except Exception as exc:  # a decoder bug on one odd file must not end the load
        return Failed(item.source, "decode", f"unexpected {type(exc).__name__}: {exc}")
    return Prepared(item, image, len(data))


def _prepared_stream(
    items: list[SourceItem], options: LoadOptions, spec: ModelSpec
) -> Iterator[Prepared | Failed]:
    """Results as they complete, with a bounded number in flight."""
    context = multiprocessing.get_context("forkserver")
    decoder = (
        ProcessPoolExecutor(
            options.workers, mp_context=context, initializer=_worker_init, initargs=(os.getpid(),)
        )
        if options.workers > 0
        else None
    )
    in_flight_limit = max(options.concurrency, options.batch_size) * 2
    try:
        with ThreadPoolExecutor(max(1, options.concurrency)) as fetchers:
            queue = iter(items)
            pending = {
                fetchers.submit(_prepare, item, decoder, options, spec)
                for item in itertools.islice(queue, in_flight_limit)
            }
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    yield future.result()
                for item in itertools.islice(queue, len(done)):
                    pending.add(fetchers.submit(_prepare, item, decoder, options, spec))
    finally:
        if decoder is not None:
            decoder.shutdown(cancel_futures=True)


PR_SET_PDEATHSIG = 1


def _worker_init(loader_pid: int) -> None:
    """Decode workers die with the load: SIGKILL when their parent dies (Linux), and a thread
    that exits when the loader process is gone (any POSIX, and through the forkserver). Ctrl-C
    is the loader's to handle: workers ignore it and are shut down by the loader."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    threading.Thread(target=_exit_with, args=(loader_pid,), daemon=True).start()


def _exit_with(pid: int) -> None:
    while True:
        time.sleep(1.0)
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            os._exit(1)
        except PermissionError:
            pass


# ---------------------------------------------------------------- database side


def _start_run(conn: psycopg.Connection, source: str, model: str) -> int:
    run_id: int = db.one_row(conn, "SELECT ccvec.load_run_start(%s, %s)", [source, model])[0]
    conn.commit()
    return run_id


def _finish_run(conn: psycopg.Connection, summary: LoadSummary) -> None:
    conn.execute(
        "SELECT ccvec.load_run_finish(%s, %s, %s, %s)",
        [summary.run_id, summary.loaded, summary.skipped, summary.failed],
    )
    conn.commit()


def _missing(conn: psycopg.Connection, model: str, items: list[SourceItem]) -> list[SourceItem]:
    """Items this model has not embedded yet (duplicates within the input dropped)."""
    seen: set[uuid.UUID] = set()
    unique: list[SourceItem] = []
    for item in items:
        if item.identifier not in seen:
            seen.add(item.identifier)
            unique.append(item)
    keep: set[uuid.UUID] = set()
    for start in range(0, len(unique), 10_000):
        ids = [item.identifier for item in unique[start : start + 10_000]]
        keep.update(r[0] for r in conn.execute("SELECT ccvec.missing_embeddings(%s, %s)", [model, ids]))
    return [item for item in unique if item.identifier in keep]


GONE = (
    "no longer there (renamed, moved or deleted since it was loaded): left out of this folder's report; "
    "its rows stay in the database, in its duplicate groups and clusters"
)


def _folder_rows(conn: psycopg.Connection, source: str) -> list[tuple[uuid.UUID, Path, int | None]]:
    """When `source` is a folder: (identifier, path, size loaded) of each image loaded before from
    under it (ccvec.folder_images); else nothing."""
    root = Path(source).expanduser()
    try:
        if not root.is_dir():
            return []
        prefix = file_location(root).rstrip("/") + "/"
    except (OSError, ValueError):
        return []
    rows = []
    for identifier, url, size in conn.execute("SELECT * FROM ccvec.folder_images(%s)", [prefix]):
        path = local_path(url)
        if path is not None:
            rows.append((identifier, path, size))
    conn.commit()
    return rows


def gone_files(conn: psycopg.Connection, source: str, listed: set[uuid.UUID]) -> dict[uuid.UUID, str]:
    """Images loaded before from under the folder `source` whose file is gone now (renamed, moved
    or deleted: a new name is a new identifier): not `listed`, and nothing at their path; each with
    its path as the load's note (GONE) names it. The folder's report leaves them out."""
    return {i: display_path(path) for i, path, _ in _folder_rows(conn, source) if _gone(i, path, listed)}


def _gone(identifier: uuid.UUID, path: Path, listed: set[uuid.UUID]) -> bool:
    return identifier not in listed and not os.path.lexists(path)


def _folder_changes(
    conn: psycopg.Connection, source: str, items: list[SourceItem]
) -> tuple[list[Failed], int]:
    """When `source` is a folder: notes for the images loaded from under it before whose file is
    gone now (gone_files) and for listed files whose size is not the size loaded (content replaced
    under the same name, which a rerun does not read again). Returns (notes, how many of them are
    changed files)."""
    listed = {item.identifier for item in items}
    rows = _folder_rows(conn, source)
    gone = [Failed(display_path(path), WARNING, GONE) for i, path, _ in rows if _gone(i, path, listed)]
    changed: list[Failed] = []
    for identifier, path, size in rows:
        if identifier not in listed:
            continue
        try:
            now = os.stat(path).st_size
        except OSError:
            continue
        if size is not None and now != size:
            reason = (
                f"changed since it was loaded ({size:,} → {now:,} bytes): its pHash, embedding and "
                "thumbnail are still the first content's (a path loaded once is not read again; "
                "a new name loads the new content)"
            )
            changed.append(Failed(display_path(path), WARNING, reason))
    return sorted(gone, key=lambda f: f.source) + sorted(changed, key=lambda f: f.source), len(changed)


def _uncatalogued(
    conn: psycopg.Connection, items: list[SourceItem], todo: list[SourceItem]
) -> list[SourceItem]:
    """Items not in `todo` (embedded already) whose catalog row is gone (deleted since): loading
    them again writes the row; their features and embedding are kept as they are."""
    pending = {item.identifier for item in todo}
    embedded = list({item.identifier: item for item in items if item.identifier not in pending}.values())
    gone: set[uuid.UUID] = set()
    for start in range(0, len(embedded), 10_000):
        ids = [item.identifier for item in embedded[start : start + 10_000]]
        gone.update(r[0] for r in conn.execute("SELECT ccvec.missing_catalog_rows(%s)", [ids]))
    return [item for item in embedded if item.identifier in gone]


def _update_catalog(conn: psycopg.Connection, items: list[SourceItem]) -> int:
    """The catalog columns manifest rows give, onto the rows of images loaded before (a folder
    first, then its manifest: the same identifiers); what ccvec derived itself (a title from the
    file name) and what a row leaves empty are not written. Returns the rows changed."""
    given: dict[uuid.UUID, Jsonb] = {}
    for item in items:
        if item.origin is None or item.identifier in given:  # folder items carry no catalog
            continue
        columns = {k: v for k, v in item.metadata.items() if v is not None and k not in item.derived}
        given[item.identifier] = Jsonb(columns)
    ids, changed = list(given), 0
    for start in range(0, len(ids), 10_000):
        chunk = ids[start : start + 10_000]
        with conn.transaction():
            changed += db.one_row(
                conn, "SELECT ccvec.update_catalog(%s, %s)", [chunk, [given[i] for i in chunk]]
            )[0]
    return changed


def _write_batch(
    conn: psycopg.Connection,
    model: str,
    batch: list[Prepared],
    vectors: npt.NDArray[np.float32],
    failures: list[Failed],
    run_id: int,
    write_catalog: bool,
) -> tuple[int, int]:
    """(rows inserted, rows the database refused). The batch is one transaction; when the
    database refuses it, each row is retried alone, so one bad row never takes good ones down."""
    try:
        return _write_rows(conn, model, batch, vectors, failures, run_id, write_catalog), 0
    except (psycopg.OperationalError, psycopg.InterfaceError):
        raise  # the server or connection, not the data: a rerun resumes
    except (psycopg.Error, ValueError, TypeError):  # data Postgres or the encoder refuses
        pass  # retried row by row below
    inserted, refused = 0, []
    for prepared, vector in zip(batch, vectors, strict=True):
        try:
            inserted += _write_rows(conn, model, [prepared], vector[None], [], run_id, write_catalog)
        except (psycopg.OperationalError, psycopg.InterfaceError):
            raise
        except (psycopg.Error, ValueError, TypeError) as exc:
            reason = f"database refused the row: {first_line(exc)}"
            refused.append(Failed(prepared.item.source, "store", reason))
    _write_rows(conn, model, [], vectors[:0], [*failures, *refused], run_id, write_catalog)
    return inserted, len(refused)


def _write_rows(
    conn: psycopg.Connection,
    model: str,
    batch: list[Prepared],
    vectors: npt.NDArray[np.float32],
    failures: list[Failed],
    run_id: int,
    write_catalog: bool,
) -> int:
    """One transaction: stage by COPY BINARY, ingest, record failures."""
    hashes = (
        phash_from_pixels(np.stack([p.image.hash_grid for p in batch]))
        if batch
        else np.empty(0, dtype=np.uint64)
    )
    with conn.transaction():
        if batch:
            with conn.cursor().copy(
                f"COPY ccvec_load_stage ({STAGE_COLUMNS}) FROM STDIN WITH (FORMAT BINARY)"
            ) as copy:
                copy.set_types(STAGE_TYPES)
                for p, h, v in zip(batch, hashes, vectors, strict=True):
                    copy.write_row(
                        [
                            p.item.identifier,
                            to_signed(h),
                            p.image.sha256,
                            p.image.width,
                            p.image.height,
                            p.filesize,
                            HalfVector(v),
                            Jsonb(p.item.metadata),
                        ]
                    )
            inserted: int = db.one_row(conn, "SELECT ccvec.ingest_batch(%s, %s)", [model, write_catalog])[0]
            _write_cues(conn, batch)
        else:
            inserted = 0
        _record(conn, run_id, failures)
        conn.execute(
            "SELECT ccvec.load_run_add(%s, %s, %s)",
            [run_id, inserted, len(failures)],
        )
    return inserted


def _record(conn: psycopg.Connection, run_id: int, entries: list[Failed]) -> None:
    """Rows of ccvec.load_error (text cleaned: a NUL in a file name must not lose the record;
    passwords in URLs redacted, as in every message: `user:***@`, `password=***`)."""
    if entries:
        conn.cursor().executemany(
            "SELECT ccvec.add_load_error(%s, %s, %s, %s)",
            [
                (run_id, db.redact(clean_text(f.source)[0]), f.stage, db.redact(clean_text(f.reason)[0]))
                for f in entries
            ],
        )


def _write_cues(conn: psycopg.Connection, batch: list[Prepared]) -> None:
    """Derivative cues (ccvec/cues.py) for choosing canonical duplicates; refreshed on reload."""
    rows = [
        (p.item.identifier, c.border, c.detail, c.clipped, c.chroma, c.jpeg_quality)
        for p in batch
        if (c := p.image.cues) is not None
    ]
    if rows:
        conn.cursor().executemany("SELECT ccvec.put_image_cue(%s, %s, %s, %s, %s, %s)", rows)


# ---------------------------------------------------------------- the pipeline


def _split(
    entries: Iterable[SourceItem | BadRow],
) -> tuple[list[SourceItem], list[Failed], list[Failed], tuple[int, int]]:
    """(items to load, rows refused before loading, notes: rows stored changed and files skipped,
    (how many files were skipped, how many hidden or system entries passed over): a counted row
    stands for many)."""
    items: list[SourceItem] = []
    bad: list[Failed] = []
    notes: list[Failed] = []
    skipped_files = passed = 0
    for entry in entries:
        if isinstance(entry, BadRow) and entry.stage == SKIPPED:
            notes.append(Failed(entry.source, entry.stage, entry.reason))
            skipped_files += entry.files
            passed += entry.passed
        elif isinstance(entry, BadRow):
            bad.append(Failed(entry.source, entry.stage, entry.reason))
        else:
            items.append(entry)
            if entry.warnings:
                notes.append(Failed(entry.source, WARNING, "; ".join(entry.warnings)))
    return items, bad, notes, (skipped_files, passed)


class _Writer:
    """Writes batches on its own connection in a background thread, one batch behind inference,
    so the next batch is embedded while Postgres ingests the previous one."""

    def __init__(self, url: str, model: str, run_id: int, write_catalog: bool) -> None:
        self.conn = db.connect(url)
        self.conn.execute("SELECT ccvec.create_load_stage()")
        self.conn.commit()
        self.model, self.run_id, self.write_catalog = model, run_id, write_catalog
        self.thread = ThreadPoolExecutor(1, thread_name_prefix="ccvec-writer")
        self.previous: Future[tuple[int, int]] | None = None

    def submit(
        self, batch: list[Prepared], vectors: npt.NDArray[np.float32], failures: list[Failed]
    ) -> tuple[int, int]:
        """Queue a batch; returns (inserted, refused) of the batch before it ((0, 0) for the first)."""
        done = self.wait()
        self.previous = self.thread.submit(
            _write_batch, self.conn, self.model, batch, vectors, failures, self.run_id, self.write_catalog
        )
        return done

    def wait(self) -> tuple[int, int]:
        inserted = self.previous.result() if self.previous is not None else (0, 0)
        self.previous = None
        return inserted

    def close(self) -> None:
        self.thread.shutdown(wait=True)
        self.conn.close()


def load(
    source: str,
    options: LoadOptions = LoadOptions(),
    on_start: Callable[[int], None] | None = None,
    on_progress: ProgressHook | None = None,
    entries: Iterable[SourceItem | BadRow] | None = None,
) -> LoadSummary:
    """Load every image of `source` (folder or manifest) that this model has not embedded yet;
    `entries`, when given, is the source's listing already read (`ccvec run` reads it once).

    The main connection never sits in an open transaction while images are processed (another
    load's DDL would wait on it); index DDL waits for locks with a timeout and retries."""
    from ccvec.load_parquet import is_features_dataset, load_dataset

    if is_features_dataset(source):  # the output of `ccvec spark features`: bulk load, no inference
        bulk: LoadSummary = load_dataset(
            source, write_catalog=options.write_catalog, on_start=on_start, on_progress=on_progress
        )
        return bulk
    started = time.perf_counter()
    url = db.resolve_url()
    with db.connection(url) as conn, contextlib.ExitStack() as held:
        migrate.require_current(conn)
        # One load of a source at a time (a second one would embed the same images again, then find
        # them stored); loads of different sources run at once, and a refresh waits for them (and
        # they for it). In this order only: nothing waits for a source while holding the catalog.
        held.enter_context(db.job(conn, f"load {_source_key(source)}", f"loading {source}"))
        held.enter_context(db.job(conn, "catalog", f"loading {source}", shared=True))
        model = registry.get_model(conn, options.model)
        conn.commit()  # no transaction stays open while the manifest is read
        if entries is None:
            entries = open_source(source, options.fetch_policy.remote_only)
        items, failures, notes, (not_images, passed_over) = _split(entries)
        summary = LoadSummary(_start_run(conn, source, model.name), total=len(items) + len(failures))
        summary.not_images, summary.passed_over = not_images, passed_over
        summary.warnings = sum(note.stage == WARNING for note in notes)
        folder_notes, summary.changed = _folder_changes(conn, source, items)
        summary.gone = len(folder_notes) - summary.changed
        with conn.transaction():
            _record(conn, summary.run_id, notes + folder_notes)
        if options.write_catalog:
            summary.updated = _update_catalog(conn, items)
        todo = _missing(conn, model.name, items)
        restore = _uncatalogued(conn, items, todo) if options.write_catalog else []
        conn.commit()
        todo += restore
        summary.skipped = len(items) - len(todo)
        if on_start:
            on_start(len(todo) + len(failures))
        rebuild_index = _drop_index_for_bulk_load(conn, model.name, len(todo) - len(restore), summary.run_id)
        rebuild_index = rebuild_index or model.name in missing_indexes(conn)
        streams, threads = inference_streams(options.inference_streams)
        embedder = Embedder(model, threads=threads)
        inference = ThreadPoolExecutor(streams, thread_name_prefix="ccvec-embed")
        writer = _Writer(url, model.name, summary.run_id, options.write_catalog)
        batch: list[Prepared] = []
        embedding: deque[tuple[Future[npt.NDArray[np.float32]], list[Prepared], list[Failed]]] = deque()

        def count(done: tuple[int, int]) -> None:
            summary.loaded += done[0]
            summary.failed += done[1]

        def write_oldest() -> None:
            vectors, written, failed = embedding.popleft()
            count(writer.submit(written, vectors.result(), failed))
            summary.failed += len(failed)
            if on_progress:
                on_progress(len(written) + len(failed))

        def flush() -> None:
            pixels = _model_pixels(batch) if batch else None
            embedding.append(
                (
                    inference.submit(_embed, embedder, pixels),
                    list(batch),
                    list(failures),
                )
            )
            while len(embedding) >= streams:  # at most `streams` batches in inference
                write_oldest()
            batch.clear()
            failures.clear()

        try:
            for result in _prepared_stream(todo, options, model.spec):
                if isinstance(result, Prepared):
                    batch.append(result)
                else:
                    failures.append(result)
                if len(batch) >= options.batch_size or len(failures) >= options.batch_size:
                    flush()
            flush()
            while embedding:
                write_oldest()
            count(writer.wait())
            if restore:
                summary.restored = len(restore) - len(_uncatalogued(conn, restore, []))
                conn.commit()
            # Every input ends loaded, restored, failed or skipped: rows another load stored since
            # `_missing` (two loads of one source at once) were already loaded, not lost.
            summary.skipped = summary.total - summary.loaded - summary.restored - summary.failed
        finally:
            inference.shutdown(wait=True, cancel_futures=True)
            writer.close()
        if rebuild_index:
            from ccvec.graph import ensure_index

            ensure_index(conn, model.name)
        summary.seconds = time.perf_counter() - started
        _finish_run(conn, summary)
    return summary


def _source_key(source: str) -> str:
    """The same folder or manifest however it is named (relative, ~, symlinked); a URL as given."""
    path = Path(source).expanduser()
    return str(path.resolve()) if path.exists() else source


def inference_streams(streams: int) -> tuple[int, int]:
    """(batches embedded at once, onnxruntime threads for each). Separate batches on single-threaded
    runs beat one batch split over the cores when decode workers share those cores: a split op
    waits for its slowest thread, and on a busy core that thread is late (bench/ingest_ab.py)."""
    cores = os.cpu_count() or 1
    streams = max(1, min(streams or cores, cores))
    return streams, max(1, cores // streams)


def _embed(embedder: Embedder, pixels: npt.NDArray[np.uint8] | None) -> npt.NDArray[np.float32]:
    if pixels is None:
        return np.empty((0, 0), dtype=np.float32)
    return embedder.embed(pixels)


def _model_pixels(batch: list[Prepared]) -> npt.NDArray[np.uint8]:
    """The batch's model input, stacked (decode made pixels: it was given the model's spec)."""
    pixels: list[npt.NDArray[np.uint8]] = []
    for p in batch:
        if p.image.pixels is None:
            raise CcvecError(f"{p.item.source}: decoded without the model's pixels")
        pixels.append(p.image.pixels)
    return np.stack(pixels)


def missing_indexes(conn: psycopg.Connection) -> list[str]:
    """Models whose HNSW index a load dropped and nothing rebuilt yet (a killed load)."""
    models = [r[0] for r in conn.execute("SELECT model FROM ccvec.missing_indexes()")]
    conn.commit()
    return models


def _drop_index_for_bulk_load(conn: psycopg.Connection, model: str, incoming: int, run_id: int) -> bool:
    """Drop the model's HNSW index when rebuilding it after the load is the faster way. The run
    records the drop first, so a load killed before its rebuild leaves a trace the next command
    (`ccvec load`, `graph`, `dedup --semantic`) acts on and `ccvec db status` reports."""
    if not incoming or not db.one_row(conn, "SELECT ccvec.has_embedding_index(%s)", [model])[0]:
        conn.commit()
        return False
    indexed: int = db.one_row(conn, "SELECT ccvec.embedding_count(%s)", [model])[0]
    conn.commit()
    if incoming <= REBUILD_INDEX_ABOVE * indexed:
        return False
    conn.execute("SELECT ccvec.load_run_index_dropped(%s)", [run_id])
    conn.commit()
    db.run_ddl(conn, "SELECT ccvec.drop_embedding_index(%s)", [model], f"dropping the index of {model}")
    return True
