"""Read a legacy (non-zip) `torch.save` state dict into numpy, without torch.

The legacy format is five pickles in a row (magic number, protocol version, system info, the object,
the list of storage keys) followed by each storage's raw bytes. The unpickler is restricted to the
few globals a state dict needs, so a malicious file cannot run code.
"""

from __future__ import annotations

import pickle
from collections import OrderedDict
from pathlib import Path
from typing import Any, BinaryIO, ClassVar

import numpy as np
import numpy.typing as npt

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
STORAGE_DTYPES: dict[str, type[np.generic]] = {
    "FloatStorage": np.float32,
    "DoubleStorage": np.float64,
    "HalfStorage": np.float16,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "CharStorage": np.int8,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}


class _StorageRef:
    def __init__(self, key: str, dtype: type[np.generic], numel: int) -> None:
        self.key, self.dtype, self.numel = key, dtype, numel


class _TensorRef:
    def __init__(
        self, storage: _StorageRef, offset: int, size: tuple[int, ...], stride: tuple[int, ...]
    ) -> None:
        self.storage, self.offset, self.size, self.stride = storage, offset, tuple(size), tuple(stride)


def _rebuild_tensor_v2(
    storage: _StorageRef,
    storage_offset: int,
    size: tuple[int, ...],
    stride: tuple[int, ...],
    *_ignored: object,
) -> _TensorRef:
    return _TensorRef(storage, storage_offset, size, stride)


class _RestrictedUnpickler(pickle.Unpickler):
    # What each allowed global unpickles to; storage classes become their names (persistent_load's key).
    ALLOWED: ClassVar[dict[tuple[str, str], object]] = {
        ("collections", "OrderedDict"): OrderedDict,
        ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
        **{("torch", name): name for name in STORAGE_DTYPES},
    }

    def find_class(self, module: str, name: str) -> object:
        try:
            return self.ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a weights file") from None

    def persistent_load(self, pid: object) -> _StorageRef:
        if not isinstance(pid, tuple) or len(pid) < 5:
            raise pickle.UnpicklingError(f"unsupported persistent id {pid!r}")
        kind, storage_type, key, _location, numel = pid[:5]
        if (
            kind != "storage"
            or not isinstance(storage_type, str)
            or storage_type not in STORAGE_DTYPES
            or not isinstance(key, str)
            or not isinstance(numel, int)
        ):
            raise pickle.UnpicklingError(f"unsupported storage {pid!r}")
        return _StorageRef(key, STORAGE_DTYPES[storage_type], numel)


def _read_storages(f: BinaryIO, keys: list[str], refs: dict[str, _StorageRef]) -> dict[str, npt.NDArray[Any]]:
    arrays: dict[str, npt.NDArray[Any]] = {}
    for key in keys:
        numel = int(np.frombuffer(f.read(8), "<i8")[0])
        dtype = np.dtype(refs[key].dtype) if key in refs else np.dtype(np.uint8)
        raw = f.read(numel * dtype.itemsize)
        if len(raw) != numel * dtype.itemsize:
            raise ValueError("weights file is truncated")
        arrays[key] = np.frombuffer(raw, dtype.newbyteorder("<"))
    return arrays


def load_legacy_state_dict(path: Path) -> dict[str, npt.NDArray[Any]]:
    """{parameter name: contiguous numpy array} from a legacy torch.save file."""
    with open(path, "rb") as f:
        if f.read(4) == b"PK\x03\x04":
            raise ValueError(f"{path} is a zip-format torch.save file; only the legacy format is supported")
        f.seek(0)
        # Every pickle in the file goes through the restricted unpickler, the header ones too.
        if _RestrictedUnpickler(f).load() != LEGACY_MAGIC:
            raise ValueError(f"{path} is not a legacy torch.save file")
        _RestrictedUnpickler(f).load()  # protocol version
        sys_info = _RestrictedUnpickler(f).load()
        if not isinstance(sys_info, dict) or not sys_info.get("little_endian", True):
            raise ValueError(f"{path} was not written on a little-endian machine")
        state = _RestrictedUnpickler(f).load()
        keys = _RestrictedUnpickler(f).load()
        refs = {t.storage.key: t.storage for t in state.values() if isinstance(t, _TensorRef)}
        storages = _read_storages(f, keys, refs)
    out: dict[str, npt.NDArray[Any]] = {}
    for name, ref in state.items():
        base = storages[ref.storage.key]
        itemsize = base.dtype.itemsize
        view = np.lib.stride_tricks.as_strided(
            base[ref.offset :], shape=ref.size, strides=[s * itemsize for s in ref.stride]
        )
        out[name] = np.ascontiguousarray(view)
    return out
