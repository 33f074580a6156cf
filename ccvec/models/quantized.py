"""`efficientnet-lite0-int8`: the default model with int8 weights and activations.

onnxruntime static quantisation (QDQ, per-channel int8 weights, uint8 activations) of the fp32
EfficientNet-Lite0 graph. Activation ranges are calibrated on images generated here from a fixed
seed (1/f colour noise with shapes and blur, the statistics of natural photos without shipping or
downloading any), so the same wheel versions rebuild the same file. Calibrating on real photos
instead was measured and gained nothing (bench/embedder.py, docs/benchmarks.md).

It is a different model in the registry: its vectors live under their own name, get their own
HNSW index, and are never compared with the fp32 model's.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import tempfile
from pathlib import Path

import numpy as np

from ccvec.models import efficientnet_lite
from ccvec.models.spec import ModelSpec, normalise

NAME = "efficientnet-lite0-int8"
RECIPE = "qdq-perchannel-percentile-synthetic64-seed0-v1"
CALIBRATION_IMAGES = 64
CALIBRATION_BATCH = 8

SPEC: ModelSpec = dataclasses.replace(
    efficientnet_lite.SPEC,
    name=NAME,
    version=f"{efficientnet_lite.SPEC.version}-int8",
    extra={**efficientnet_lite.SPEC.extra, "quantized_from": efficientnet_lite.SPEC.name, "recipe": RECIPE},
)


def calibration_pixels(n: int = CALIBRATION_IMAGES, seed: int = 0, size: int = 224) -> np.ndarray:
    """(n, size, size, 3) uint8 synthetic photographs: 1/f-spectrum colour noise, shapes, blur."""
    from PIL import Image, ImageDraw, ImageFilter

    rng = np.random.default_rng(seed)
    fy, fx = np.fft.fftfreq(size)[:, None], np.fft.fftfreq(size)[None, :]
    radius = fy**2 + fx**2
    radius[0, 0] = 1.0
    out = np.empty((n, size, size, 3), np.uint8)
    for i in range(n):
        amplitude = radius ** (-rng.uniform(0.9, 1.4) / 2)
        phases = np.exp(2j * np.pi * rng.random((3, size, size)))
        noise = np.real(np.fft.ifft2(amplitude * phases))
        noise = (noise - noise.mean(axis=(1, 2), keepdims=True)) / noise.std(axis=(1, 2), keepdims=True)
        mix = rng.normal(size=(3, 3)) * 0.4 + np.eye(3)  # correlated channels, like real colour
        x = np.tensordot(mix, noise, 1) * rng.uniform(20, 60) + rng.uniform(60, 200, size=(3, 1, 1))
        image = Image.fromarray(np.clip(x, 0, 255).astype(np.uint8).transpose(1, 2, 0))
        draw = ImageDraw.Draw(image)
        for _ in range(rng.integers(0, 12)):
            x0, x1 = sorted(rng.integers(0, size, 2))
            y0, y1 = sorted(rng.integers(0, size, 2))
            colour = tuple(int(v) for v in rng.integers(0, 256, 3))
            shape = draw.ellipse if rng.random() < 0.5 else draw.rectangle
            shape([int(x0), int(y0), int(x1), int(y1)], fill=colour)
        if rng.random() < 0.5:
            image = image.filter(ImageFilter.GaussianBlur(rng.uniform(0.5, 3)))
        out[i] = np.asarray(image)
    return out


def quantize(fp32_path: Path, target: Path, pixels: np.ndarray | None = None) -> None:
    """Write the int8 model for `fp32_path` to `target`, calibrated on `pixels` (synthetic by default)."""
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    batches = pixels if pixels is not None else calibration_pixels()
    step = CALIBRATION_BATCH
    inputs = [normalise(batches[i : i + step], SPEC) for i in range(0, len(batches), step)]

    class Reader(CalibrationDataReader):  # type: ignore[misc]
        def __init__(self) -> None:
            self.items = iter(inputs)

        def get_next(self) -> dict[str, np.ndarray] | None:
            batch = next(self.items, None)
            return None if batch is None else {SPEC.input_name: batch}

    with tempfile.TemporaryDirectory(prefix="ccvec-quant-") as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        quant_pre_process(str(fp32_path), str(prepared), skip_symbolic_shape=True)
        with contextlib.redirect_stdout(io.StringIO()):  # its calibration progress print()s
            quantize_static(
                str(prepared),
                str(target),
                Reader(),
                quant_format=QuantFormat.QDQ,
                per_channel=True,
                activation_type=QuantType.QUInt8,
                weight_type=QuantType.QInt8,
                calibrate_method=CalibrationMethod.Percentile,
            )
