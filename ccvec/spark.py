"""`ccvec spark features`: pHash + embeddings for a whole catalog on an Apache Spark cluster.

    source rows ─► SourceItems (driver for folders and CSV/JSONL manifests; executors for Parquet/TSV
                   catalog dumps) ─► drop identifiers already in DIR ─► repartition
                ─► mapInPandas: fetch (same `fetch` and policy as `ccvec load`) → decode → pHash →
                   embedding (one onnxruntime session per Python worker, model file shipped with the
                   job through SparkFiles and checked against its sha256)
                ─► DIR/kind=feature/*.parquet and DIR/kind=error/*.parquet (one pass, `partitionBy`)

The per-image work calls the loader's own functions (`ccvec.fetch.fetch`, `ccvec.decode.decode`,
`ccvec.phash`, `ccvec.models.runtime.Embedder`), so a Spark run and `ccvec load` give the same pHash
bit for bit and the same vector up to float rounding. `ccvec load DIR` then bulk-loads the result
(`ccvec.load_parquet`). PySpark is an optional extra: `pip install 'ccvec[spark]'`.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import shlex
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NotRequired, TypedDict, cast

import numpy as np
import numpy.typing as npt

from ccvec.errors import CcvecError
from ccvec.models import registry
from ccvec.models.registry import Model
from ccvec.models.spec import ModelSpec
from ccvec.sources import (
    BOOL_COLUMNS,
    CATALOG_COLUMNS,
    IMAGE_EXTENSIONS,
    JSON_COLUMNS,
    NOTED,
    SKIPPED,
    WARNING,
    BadRow,
    SourceItem,
    display_path,
    open_source,
    row_to_item,
)

if TYPE_CHECKING:
    import pandas as pd
    from pyspark.sql import DataFrame, SparkSession

    from ccvec.decode import DecodedImage
    from ccvec.models.runtime import Embedder

    PandasMapFunction = Callable[[Iterable[pd.DataFrame]], Iterator[pd.DataFrame]]

FORMAT = "ccvec-features"
FORMAT_VERSION = 1
MANIFEST = "_ccvec.json"
EMBEDDING = "float16 little-endian"  # the manifest's name for how `embedding` is stored
# The manifest's keys: the JSON types each may hold, and how a message names them.
MANIFEST_KEYS: dict[str, tuple[tuple[type, ...], str]] = {
    "model": ((str,), "a string"),
    "model_sha256": ((str,), "a string"),
    "weights_sha256": ((str, type(None)), "a string or null"),
    "dim": ((int,), "a whole number"),
    "spec": ((dict,), "an object"),
    "embedding": ((str,), "a string"),
}
OPTIONAL_MANIFEST_KEYS = {"model_file": ((str,), "a string")}
FEATURE_KIND, ERROR_KIND = "feature", "error"
FETCH_THREADS = 8  # fetches in flight per Python worker (URLs wait on the network, not the CPU)
LOOPBACK = "127.0.0.1"
DRIVER_ADDRESS_KEYS = frozenset({"spark.driver.host", "spark.driver.bindAddress"})
LOCAL_MASTER = re.compile(r"local(\[(\*|[0-9]+)(\s*,\s*[0-9]+)?\])?")
ROWS_PER_ARROW_BATCH = 256  # rows handed to one mapInPandas call: bounds a worker's memory
# Catalog columns carried through as columns of their own (JSON ones as JSON text).
TEXT_COLUMNS = tuple(CATALOG_COLUMNS)
OUTPUT_SCHEMA = ", ".join(
    [
        "kind string",
        "identifier string",
        "location string",
        *[f"{c} string" for c in TEXT_COLUMNS],
        *[f"{c} boolean" for c in sorted(BOOL_COLUMNS)],
        *[f"{c} string" for c in sorted(JSON_COLUMNS)],
        "phash long",
        "content_sha256 binary",
        "width int",
        "height int",
        "filesize long",
        "embedding binary",  # float16 little-endian, `dim` values (Spark has no float16 type)
        "model string",
        "model_sha256 string",
        "stage string",
        "reason string",
        "files int",  # inputs an error row stands for: null is 1 (a counted row of skipped files is more)
    ]
)
# A bad row also carries the stage and file count `ccvec load` would record it with; an item, what
# sanitising changed in its row (`note`: a `warning` row, as `ccvec load` records it).
ITEM_SCHEMA = ", ".join(
    [
        *("identifier string", "location string", "metadata string", "where_ string", "reason string"),
        *("stage string", "files int", "note string"),
    ]
)


@dataclass(frozen=True)
class FeatureJob:
    source: str
    out: Path
    master: str | None = None
    partitions: int | None = None
    model: Model | None = None  # None: the default model, built locally from its wheel


@dataclass
class FeatureSummary:
    candidates: int = 0
    skipped: int = 0
    features: int = 0
    errors: int = 0
    not_images: int = 0  # a folder's files skipped as not images by their name (noted, not failed)
    warnings: int = 0  # rows whose text was changed to be stored (noted, not failed)
    seconds: float = 0.0


class FeaturesManifest(TypedDict):
    """The `_ccvec.json` of a features dataset."""

    format: str
    version: int
    model: str
    model_sha256: str
    weights_sha256: str | None
    dim: int
    spec: dict[str, object]
    embedding: str
    model_file: NotRequired[str]


class ItemRow(TypedDict):
    """One row of ITEM_SCHEMA: an item (identifier, location, metadata JSON) or a bad row (where_,
    reason, and the stage and file count `ccvec load` would record it with). `where_` names the
    input in error rows as `ccvec load` does (manifest row and location); `note` is what sanitising
    changed in an item's row (text cut, NULs removed), None when nothing."""

    identifier: str | None
    location: str | None
    metadata: str | None
    where_: str | None
    reason: str | None
    stage: str | None
    files: int | None
    note: str | None


class ErrorRow(TypedDict):
    """An error row of OUTPUT_SCHEMA (the columns it leaves out are null)."""

    kind: str
    identifier: str | None
    location: str | None
    stage: str
    reason: str
    files: int | None


# ---------------------------------------------------------------- the dataset's manifest


def read_manifest(out: Path) -> FeaturesManifest | None:
    """The dataset's `_ccvec.json`, None when there is none; refused in one line when this ccvec
    cannot read it, so no reader of it meets a missing key or a value of the wrong type."""
    path = Path(out) / MANIFEST
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:  # invalid JSON or UTF-8 are ValueErrors
        raise CcvecError(f"{path}: unreadable features manifest ({exc})") from None
    if problem := _manifest_problem(data):
        raise CcvecError(f"{path}: {problem}")
    return cast(FeaturesManifest, data)


def _manifest_problem(data: object) -> str | None:
    """What makes a decoded `_ccvec.json` unusable (None: nothing). The version comes first: a
    newer format may name its keys differently."""
    if not isinstance(data, dict):
        return f"not a features manifest: a JSON {_json_kind(data)}, not an object"
    if data.get("format") != FORMAT:
        return f"not a ccvec features dataset (format {data.get('format')!r})"
    if "version" not in data:
        return "missing key 'version'"
    if data["version"] != FORMAT_VERSION or isinstance(data["version"], bool):
        return f"unknown version {data['version']!r}: this ccvec reads version {FORMAT_VERSION} of {FORMAT}"
    if missing := [key for key in MANIFEST_KEYS if key not in data]:
        return f"missing key(s) {', '.join(map(repr, missing))}"
    for key, (kinds, expected) in {**MANIFEST_KEYS, **OPTIONAL_MANIFEST_KEYS}.items():
        if key in data and (not isinstance(data[key], kinds) or isinstance(data[key], bool)):
            return f"{key!r} is a JSON {_json_kind(data[key])}, expected {expected}"
    return _manifest_model_problem(data)


def _manifest_model_problem(data: dict[str, Any]) -> str | None:
    """A spec the loader can build, agreeing with the manifest's own model name, dim and encoding."""
    if data["embedding"] != EMBEDDING:
        return f"unknown embedding encoding {data['embedding']!r}: this ccvec reads {EMBEDDING!r}"
    try:
        spec = ModelSpec.from_json(data["spec"])
    except (ValueError, TypeError) as exc:
        return f"'spec' is not a model spec: {exc}"
    if (spec.name, spec.dim) != (data["model"], data["dim"]):
        mine = f"model {data['model']!r} of dim {data['dim']}"
        return f"'spec' names model {spec.name!r} of dim {spec.dim}, the manifest {mine}"
    return None


def _json_kind(value: object) -> str:
    """A decoded JSON value's type, in JSON's words."""
    if value is None or isinstance(value, bool):
        return {None: "null", True: "true", False: "false"}[value]
    kinds = {str: "string", int: "number", float: "number", list: "array", dict: "object"}
    return kinds.get(type(value), type(value).__name__)


def _write_manifest(out: Path, model: Model) -> None:
    existing = read_manifest(out)
    if existing and existing["model_sha256"] != model.sha256:
        raise CcvecError(
            f"{out} holds features of model {existing['model']!r} (sha256 {existing['model_sha256'][:12]}…); "
            f"this run uses {model.name!r} (sha256 {model.sha256[:12]}…): write to another folder"
        )
    if existing:
        return
    out.mkdir(parents=True, exist_ok=True)
    manifest: FeaturesManifest = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "model": model.name,
        "model_sha256": model.sha256,
        "weights_sha256": model.weights_sha256,
        "dim": model.spec.dim,
        "spec": model.spec.to_json(),
        "embedding": EMBEDDING,
    }
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")


def model_from_files(onnx_file: Path, spec_file: Path) -> Model:
    """A non-default model for the job: its ONNX file and its spec JSON, validated here once."""
    spec = ModelSpec.from_file(spec_file)
    registry.validate(Path(onnx_file), spec)
    return Model(spec, Path(onnx_file).resolve(), registry.file_sha256(Path(onnx_file)))


# ---------------------------------------------------------------- rows → items


def _frame(rows: Sequence[Mapping[str, object]], columns: list[str]) -> pd.DataFrame:
    """Rows as an all-object pandas frame with None (not NaN) for gaps: a column that is all NaN
    would be float64, and PySpark fails casting float64 to a string column."""
    import pandas as pd

    frame = pd.DataFrame(rows, columns=columns, dtype=object)
    return frame.where(frame.notna(), None)


def _item_row(entry: SourceItem | BadRow) -> ItemRow:
    if isinstance(entry, BadRow):
        return {
            "identifier": None,
            "location": None,
            "metadata": None,
            "where_": entry.source,
            "reason": entry.reason,
            "stage": entry.stage,  # "skipped" for a folder's file that is not an image: a note, not a failure
            "files": entry.files,
            "note": None,
        }
    return {
        "identifier": str(entry.identifier),
        "location": entry.location,
        "metadata": json.dumps(entry.metadata),
        "where_": entry.source,
        "reason": None,
        "stage": None,
        "files": None,
        "note": "; ".join(entry.warnings) or None,
    }


def _is_catalog_dump(path: Path) -> bool:
    """Parquet (file or folder of part files) or TSV: read by Spark itself, row conversion on executors."""
    if path.is_file():
        return path.suffix.lower() in (".parquet", ".tsv")
    if path.is_dir():
        files = [p for p in path.rglob("*") if p.is_file()]
        return any(p.suffix == ".parquet" for p in files) and not any(
            p.suffix.lower() in IMAGE_EXTENSIONS for p in files
        )
    return False


def _dump_rows_to_items(base_dir: str, label: str) -> PandasMapFunction:
    """mapInPandas function: catalog rows (any Openverse columns) → item rows, bad rows kept."""

    def convert(frames: Iterable[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for frame in frames:
            frame = frame.astype(object).where(frame.notna(), None)
            out: list[ItemRow] = []
            for i, row in enumerate(frame.to_dict("records")):
                try:
                    out.append(_item_row(row_to_item(row, Path(base_dir))))
                except ValueError as exc:
                    ident = row.get("identifier") or f"row {i}"
                    out.append(_item_row(BadRow(f"{label}:{ident}", str(exc))))
            yield _frame(out, [c.split()[0] for c in ITEM_SCHEMA.split(", ")])

    return convert


def list_source(source: str) -> list[ItemRow] | None:
    """The item rows of a folder or CSV/JSONL manifest, read on the driver before Spark starts (a
    missing or empty source costs no JVM start); None for a catalog dump, which Spark reads itself."""
    if _is_catalog_dump(Path(source).expanduser()):
        return None
    rows = [_item_row(entry) for entry in open_source(source)]
    if not rows:
        raise CcvecError(f"{source}: no images or rows found")
    return rows


def source_items(spark: SparkSession, source: str, listed: list[ItemRow] | None = None) -> DataFrame:
    """A DataFrame of item rows (identifier, location, metadata JSON) and bad rows (where_, reason);
    `listed`: the source's `list_source` rows, when the caller read them already."""
    listed = listed if listed is not None else list_source(source)
    if listed is not None:
        return spark.createDataFrame(listed, ITEM_SCHEMA)
    path = Path(source).expanduser()
    if path.suffix.lower() == ".tsv":
        raw = spark.read.option("header", True).option("sep", "\t").option("quote", "\u0000").csv(str(path))
    else:
        raw = spark.read.parquet(str(path))
    base = str((path if path.is_dir() else path.parent).resolve())
    return raw.mapInPandas(_dump_rows_to_items(base, str(path)), ITEM_SCHEMA)


# ---------------------------------------------------------------- per image, on the executors

_EMBEDDERS: dict[str, Embedder] = {}  # one onnxruntime session per Python worker, reused across tasks


def _embedder(model_file: str, sha256: str, spec_json: str) -> Embedder:
    if sha256 not in _EMBEDDERS:
        from pyspark import SparkFiles

        from ccvec.models.runtime import Embedder

        path = Path(SparkFiles.get(model_file))
        if registry.file_sha256(path) != sha256:
            raise RuntimeError(f"shipped model file {path} does not match sha256 {sha256[:12]}…")
        model = Model(ModelSpec.from_json(json.loads(spec_json)), path, sha256)
        # Spark already runs one task per core: one inference thread per worker.
        _EMBEDDERS[sha256] = Embedder(model, threads=int(os.environ.get("CCVEC_SPARK_ORT_THREADS", "1")))
    return _EMBEDDERS[sha256]


def _error(row: ItemRow, stage: str, reason: str) -> ErrorRow:
    return {
        "kind": ERROR_KIND,
        "identifier": row.get("identifier"),
        "location": row.get("where_"),
        "stage": stage,
        "reason": reason,
        "files": row.get("files"),
    }


def _prepare(row: ItemRow, spec: ModelSpec) -> ErrorRow | tuple[DecodedImage, int]:
    """Fetch and decode one item with the loader's functions; a failure becomes an error row."""
    from ccvec.decode import decode
    from ccvec.fetch import FetchError, fetch
    from ccvec.load import LoadOptions

    options = LoadOptions()
    try:
        location = row["location"]
        if location is None:
            raise ValueError("item row without a location")
        data = fetch(location, options.fetch_policy)
    except FetchError as exc:
        return _error(row, "fetch", str(exc))
    except Exception as exc:  # one odd URL must not fail the task (and so the job)
        return _error(row, "fetch", f"unexpected {type(exc).__name__}: {exc}")
    try:
        return decode(data, spec, options.max_pixels), len(data)
    except Exception as exc:
        from ccvec.decode import DecodeError

        reason = str(exc) if isinstance(exc, DecodeError) else f"unexpected {type(exc).__name__}: {exc}"
        return _error(row, "decode", reason)


def _feature_row(
    row: ItemRow,
    image: DecodedImage,
    filesize: int,
    phash: int | np.integer[Any],
    vector: npt.NDArray[np.float32],
    model: str,
    sha: str,
) -> dict[str, object]:
    from ccvec.phash import to_signed

    if row["metadata"] is None:
        raise ValueError(f"item row {row['identifier']} without metadata")
    metadata = json.loads(row["metadata"])
    out: dict[str, object] = {
        "kind": FEATURE_KIND,
        "identifier": row["identifier"],
        "location": row["location"],
    }
    for column in TEXT_COLUMNS:
        out[column] = metadata.get(column)
    for column in BOOL_COLUMNS:
        out[column] = metadata.get(column)
    for column in JSON_COLUMNS:
        out[column] = None if metadata.get(column) is None else json.dumps(metadata[column])
    out.update(
        phash=to_signed(phash),
        content_sha256=image.sha256,
        width=image.width,
        height=image.height,
        filesize=filesize,
        embedding=vector.astype("<f2").tobytes(),
        model=model,
        model_sha256=sha,
    )
    return out


def _pixels(image: DecodedImage) -> npt.NDArray[np.uint8]:
    """The model input of an image decoded with a spec (decode leaves it None only without one)."""
    if image.pixels is None:
        raise ValueError("image decoded without model pixels")
    return image.pixels


def _compute_features(model_file: str, sha256: str, spec_json: str, model_name: str) -> PandasMapFunction:
    """mapInPandas function: item rows → feature rows and error rows."""

    def compute(frames: Iterable[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        from ccvec.phash import phash_from_pixels

        spec = ModelSpec.from_json(json.loads(spec_json))
        columns = [c.split()[0] for c in OUTPUT_SCHEMA.split(", ")]
        with ThreadPoolExecutor(FETCH_THREADS) as pool:
            for frame in frames:
                rows: list[ItemRow] = frame.astype(object).where(frame.notna(), None).to_dict("records")
                out: list[Mapping[str, object]] = []
                good: list[tuple[ItemRow, DecodedImage, int]] = []
                for row in rows:
                    if row["reason"] is not None:
                        out.append(_error(row, row["stage"] or "manifest", row["reason"]))
                    elif row["note"] is not None:  # stored with changes: noted, as `ccvec load` does
                        out.append(_error(row, WARNING, row["note"]))
                for row, result in zip(
                    items := [r for r in rows if r["reason"] is None],
                    pool.map(lambda r: _prepare(r, spec), items),
                    strict=True,
                ):
                    (out.append(result) if isinstance(result, dict) else good.append((row, *result)))
                if good:
                    pixels = np.stack([_pixels(g[1]) for g in good])
                    vectors = _embedder(model_file, sha256, spec_json).embed(pixels)
                    hashes = phash_from_pixels(np.stack([g[1].hash_grid for g in good]))
                    for (row, image, size), h, v in zip(good, hashes, vectors, strict=True):
                        out.append(_feature_row(row, image, size, h, v, model_name, sha256))
                yield _frame(out, columns)

    return compute


# ---------------------------------------------------------------- the job


def session(master: str | None = None, app: str = "ccvec-features") -> SparkSession:
    """A SparkSession; in local mode the workers run this very Python (the one with ccvec in it)."""
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise CcvecError("the Spark job needs PySpark: pip install 'ccvec[spark]'") from None
    if not master or master.startswith("local"):
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = SparkSession.builder.appName(app)
    for key, value in session_config(master, os.environ).items():
        builder = builder.config(key, value)
    return builder.getOrCreate()


def session_config(master: str | None, env: Mapping[str, str]) -> dict[str, str]:
    """The settings `session` gives Spark, from the master asked for and the environment: a function
    of its own so that what the job asks of Spark can be checked without starting it."""
    conf = {
        "spark.sql.execution.arrow.maxRecordsPerBatch": str(ROWS_PER_ARROW_BATCH),
        "spark.ui.enabled": "false",
        "spark.sql.shuffle.partitions": "8",
    }
    if master or not env.get("SPARK_HOME"):  # with SPARK_HOME, its spark-defaults.conf may name one
        conf["spark.master"] = master or "local[*]"
    if not master or master.startswith("local"):
        conf["spark.pyspark.python"] = env.get("PYSPARK_PYTHON", sys.executable)
    user = user_spark_conf(env)
    if is_local_master(conf.get("spark.master") or user.get("spark.master") or "local[*]"):
        conf.update(_loopback_driver(user, env))
    return conf


def is_local_master(master: str) -> bool:
    """`local`, `local[*]`, `local[N]` (and `local[N,F]`): the driver and its executors in one JVM."""
    return LOCAL_MASTER.fullmatch(master.strip()) is not None


def _loopback_driver(user: Mapping[str, str], env: Mapping[str, str]) -> dict[str, str]:
    """The driver on 127.0.0.1: unset, Spark binds it to the machine's first non-loopback address
    (eth0), open to the network though nothing outside this JVM needs it. Left to the user when they
    chose an address themselves (SPARK_LOCAL_IP, SPARK_LOCAL_HOSTNAME, either setting)."""
    if env.get("SPARK_LOCAL_IP") or env.get("SPARK_LOCAL_HOSTNAME") or DRIVER_ADDRESS_KEYS & set(user):
        return {}
    return dict.fromkeys(DRIVER_ADDRESS_KEYS, LOOPBACK)


def user_spark_conf(env: Mapping[str, str]) -> dict[str, str]:
    """spark.* settings the user made outside ccvec: `spark-defaults.conf` (in SPARK_CONF_DIR or
    SPARK_HOME/conf) and `--conf k=v` / `--master` in PYSPARK_SUBMIT_ARGS (the later wins)."""
    conf: dict[str, str] = {}
    folder = env.get("SPARK_CONF_DIR") or (env.get("SPARK_HOME") and str(Path(env["SPARK_HOME"]) / "conf"))
    defaults = Path(folder) / "spark-defaults.conf" if folder else None
    if defaults and defaults.is_file():
        for line in defaults.read_text(errors="replace").splitlines():
            key, _, value = line.strip().replace("=", " ", 1).partition(" ")
            if key.startswith("spark."):
                conf[key] = value.strip()
    for flag, value in itertools.pairwise(_submit_words(env.get("PYSPARK_SUBMIT_ARGS", ""))):
        if flag in ("--conf", "-c") and "=" in value:
            key, _, setting = value.partition("=")
            conf[key.strip()] = setting
        elif flag == "--master":
            conf["spark.master"] = value
    return conf


def _submit_words(args: str) -> list[str]:
    """PYSPARK_SUBMIT_ARGS as words, `--conf=k=v` split like `--conf k=v` (PySpark reports bad quoting)."""
    try:
        words = shlex.split(args)
    except ValueError:
        return []
    return [part for word in words for part in (word.split("=", 1) if word.startswith("--") else [word])]


def _done_identifiers(spark: SparkSession, out: Path) -> DataFrame | None:
    features = out / f"kind={FEATURE_KIND}"
    if not features.is_dir() or not any(features.glob("*.parquet")):
        return None
    return spark.read.parquet(str(features)).select("identifier").distinct()


def run_features(job: FeatureJob, spark: SparkSession | None = None) -> FeatureSummary:
    """Compute features for every item of `job.source` not yet in `job.out`; append to `job.out`."""
    started = time.perf_counter()
    out = _output_folder(job.out)
    listed = list_source(job.source)  # a wrong source is refused before the model or Spark start
    model = job.model or registry.build_default()
    _write_manifest(out, model)
    own_session = spark is None
    spark = spark or session(job.master)
    try:
        spark.sparkContext.addFile(str(model.path))
        items = source_items(spark, job.source, listed).cache()
        summary = FeatureSummary(candidates=items.count())
        good, bad = (
            items.filter("reason IS NULL").dropDuplicates(["identifier"]),
            items.filter("reason IS NOT NULL"),
        )
        done = _done_identifiers(spark, out)
        if done is not None:
            before = good.count()
            good = good.join(done, "identifier", "left_anti")
            summary.skipped = before - good.count()
        todo = good.unionByName(bad)
        partitions = job.partitions or max(spark.sparkContext.defaultParallelism, 1)
        compute = _compute_features(
            model.path.name, model.sha256, json.dumps(model.spec.to_json()), model.name
        )
        outputs_before = _count_outputs(spark, out)
        result = todo.repartition(partitions).mapInPandas(compute, OUTPUT_SCHEMA)
        # One pass writes both datasets (appending: part-file names carry a fresh job id per run).
        result.write.mode("append").option("compression", "zstd").partitionBy("kind").parquet(str(out))
        outputs = _count_outputs(spark, out)
        summary.features, summary.errors, summary.not_images, summary.warnings = (
            now - before for now, before in zip(outputs, outputs_before, strict=True)
        )
        items.unpersist()
    finally:
        if own_session:
            spark.stop()
    summary.seconds = time.perf_counter() - started
    return summary


def _output_folder(out: Path) -> Path:
    """`--out` resolved, refused in one line when it is an existing file (a features dataset is a folder)."""
    path = Path(out).expanduser().resolve()
    if path.exists() and not path.is_dir():
        raise CcvecError(f"--out {display_path(path)}: is a file; --out must be a folder (made when missing)")
    return path


def _count_outputs(spark: SparkSession, out: Path) -> tuple[int, int, int, int]:
    """(feature rows, failures, files skipped as not images, rows stored with changes) in `out`:
    notes are not failures, and a counted row of skipped files stands for `files` of them."""
    from pyspark.sql import functions as F

    features, errors = (out / f"kind={kind}" for kind in (FEATURE_KIND, ERROR_KIND))
    done = spark.read.parquet(str(features)).count() if any(features.glob("*.parquet")) else 0
    if not any(errors.glob("*.parquet")):
        return done, 0, 0, 0
    rows = spark.read.option("mergeSchema", "true").parquet(str(errors))  # older parts lack `files`
    files = F.coalesce(F.col("files"), F.lit(1)) if "files" in rows.columns else F.lit(1)
    counted = rows.select(
        F.sum(F.when(~F.col("stage").isin(*NOTED), 1).otherwise(0)).alias("failed"),
        F.sum(F.when(F.col("stage") == SKIPPED, files).otherwise(0)).alias("skipped"),
        F.sum(F.when(F.col("stage") == WARNING, 1).otherwise(0)).alias("changed"),
    ).collect()[0]
    failed, skipped, changed = (int(counted[name] or 0) for name in ("failed", "skipped", "changed"))
    return done, failed, skipped, changed
