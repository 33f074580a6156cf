"""What ccvec needs to know to run any ONNX image model: input, preprocessing, output, dimension.

A spec is stored as JSON in the model registry, so every vector row can be traced to the model and
preprocessing that made it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from PIL import Image

RESAMPLE = {
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "lanczos": Image.Resampling.LANCZOS,
    "nearest": Image.Resampling.NEAREST,
}


@dataclass(frozen=True)
class ModelSpec:
    """An ONNX image model and its preprocessing.

    Images are converted to RGB, resized so the shorter side is `resize` (or straight to a square
    when `crop` is False), centre-cropped to `input_size`, scaled to [0, 1], then normalised per
    channel: (x - mean) / std. Input layout NCHW, float32.
    """

    name: str
    version: str
    dim: int
    input_size: int = 224
    resize: int = 224
    crop: bool = True
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)
    resample: str = "bilinear"
    input_name: str = "input"
    output_name: str = "features"
    extra: dict[str, object] = field(default_factory=dict)  # free-form, kept in the registry

    def __post_init__(self) -> None:
        if self.resample not in RESAMPLE:
            raise ValueError(f"resample must be one of {sorted(RESAMPLE)}, not {self.resample!r}")
        if not 1 <= self.dim <= 4000:
            raise ValueError(f"dim must be in 1..4000 (halfvec's index limit), not {self.dim}")
        if self.input_size > self.resize and self.crop:
            raise ValueError("input_size cannot exceed resize when cropping")
        object.__setattr__(self, "mean", tuple(float(v) for v in self.mean))
        object.__setattr__(self, "std", tuple(float(v) for v in self.std))

    def to_json(self) -> dict[str, object]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ModelSpec:
        """A spec from decoded JSON (values are json.loads's Any); a missing or unknown field is a
        ValueError that names it (not the dataclass's own TypeError about __init__)."""
        if not isinstance(data, Mapping):
            raise ValueError(f"a model spec is a JSON object, not {type(data).__name__}")
        known = {f.name for f in fields(cls)}
        if unknown := sorted(set(data) - known):
            raise ValueError(f"unknown field(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        if missing := [name for name in ("name", "version", "dim") if name not in data]:
            raise ValueError(f"missing field(s) {', '.join(missing)}")
        # Checked here: a dim of "x" would otherwise be a TypeError from a comparison in __post_init__.
        # (Only dim: a spec registered with a numeric version must still load.)
        if not isinstance(data["dim"], int) or isinstance(data["dim"], bool):
            raise ValueError(f"dim must be an integer, not {data['dim']!r}")
        return cls(**data)

    @classmethod
    def from_file(cls, path: Path) -> ModelSpec:
        return cls.from_json(json.loads(Path(path).read_text()))


def crop_pixels(rgb: Image.Image, spec: ModelSpec) -> npt.NDArray[np.uint8]:
    """Resize (shorter side to `resize`) and centre-crop: (S, S, 3) uint8. Runs in decode workers.

    Only the source box that survives the crop is resampled (Pillow's `box`), which is the same
    result as resize-then-crop up to the sub-pixel placement of the box, at ~3/4 of the cost for
    4:3 photos.
    """
    resample = RESAMPLE[spec.resample]
    size = (spec.input_size, spec.input_size)
    if not spec.crop:
        return np.asarray(rgb.resize(size, resample))
    w, h = rgb.size
    scale = spec.resize / min(w, h)
    side = min(spec.input_size / scale, w, h)
    left, top = max(0.0, (w - side) / 2), max(0.0, (h - side) / 2)
    return np.asarray(rgb.resize(size, resample, box=(left, top, min(w, left + side), min(h, top + side))))


def normalise(pixels: npt.NDArray[np.uint8], spec: ModelSpec) -> npt.NDArray[np.float32]:
    """(N, S, S, 3) uint8 -> (N, 3, S, S) float32 model input. Batched: one numpy pass."""
    x = pixels.astype(np.float32) * np.float32(1 / 255)
    x -= np.asarray(spec.mean, np.float32)
    x /= np.asarray(spec.std, np.float32)
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))


def preprocess(rgb: Image.Image, spec: ModelSpec) -> npt.NDArray[np.float32]:
    """One RGB image -> float32 (3, S, S), the same path the loader takes."""
    return normalise(crop_pixels(rgb, spec)[None], spec).squeeze(0)
