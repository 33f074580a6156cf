"""Cheap per-image signs of being a derivative, measured once at decode time.

`ccvec dedup` picks each group's canonical image after grouping, preferring the original over its
derivatives. What a derivative looks like, measurable from one decode in about a millisecond:

* border: share of the frame taken by flat bands along the edges (letterbox, added borders);
* detail: spectral energy of the finest octave relative to the octave below, at native resolution;
  an upscaled image has little (its finest octave is interpolated);
* clipped: share of pixels within 4 levels of 0 or 255 in some channel (pushing brightness,
  contrast or saturation adds clipped pixels, and so do black rotation corners);
* chroma: mean colourfulness (a greyscale copy of a colour picture has none);
* jpeg_quality: the libjpeg quality estimated from the luminance quantisation table (None: not JPEG).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from PIL import Image

# libjpeg's standard luminance table (Annex K), from which quality q tables are scaled.
_STD_LUMA = np.array(
    [
        16,
        11,
        10,
        16,
        24,
        40,
        51,
        61,
        12,
        12,
        14,
        19,
        26,
        58,
        60,
        55,
        14,
        13,
        16,
        24,
        40,
        57,
        69,
        56,
        14,
        17,
        22,
        29,
        51,
        87,
        80,
        62,
        18,
        22,
        37,
        56,
        68,
        109,
        103,
        77,
        24,
        35,
        55,
        64,
        81,
        104,
        113,
        92,
        49,
        64,
        78,
        87,
        103,
        121,
        120,
        101,
        72,
        92,
        95,
        98,
        112,
        100,
        103,
        99,
    ],
    dtype=np.float64,
)
SMALL = 128  # longest side of the sample that border, clipping and chroma are measured on
CROP = 256  # side of the native-resolution centre crop that detail is measured on
NEAR = 4  # levels from 0 or 255 that count as clipped
FLAT = 4.0  # a band row is flat when its pixels' spread (std, 0..255) is below this


@dataclass(frozen=True)
class ImageCues:
    border: float
    detail: float
    clipped: float
    chroma: float
    jpeg_quality: int | None


def jpeg_quality(tables: Mapping[int, Sequence[int]] | None) -> int | None:
    """libjpeg quality (1..100) whose scaled table is closest to the luminance table (Pillow's
    `image.quantization`)."""
    if not tables or 0 not in tables or len(tables[0]) != 64:
        return None
    scale = float(np.mean(np.asarray(tables[0], dtype=np.float64) / _STD_LUMA)) * 100
    quality = (200 - scale) / 2 if scale <= 100 else 5000 / scale
    return int(min(100, max(1, round(quality))))


def _flat_bands(rgb: np.ndarray) -> float:
    """Share of the frame covered by flat rows/columns running in from the four edges."""
    h, w = rgb.shape[:2]

    def run(lines: np.ndarray) -> int:  # lines: (n, length, 3) from the edge inwards
        flat = lines.reshape(len(lines), -1).std(axis=1) < FLAT
        return int(np.argmin(flat)) if not flat.all() else len(flat)

    top, bottom = run(rgb), run(rgb[::-1])
    left, right = run(rgb.transpose(1, 0, 2)), run(rgb.transpose(1, 0, 2)[::-1])
    rows = min(h, top + bottom)
    cols = min(w, left + right)
    return float(1 - (h - rows) * (w - cols) / (h * w))


def _detail(image: Image.Image) -> float:
    """Spectral energy in the top octave (0.25-0.5 cycles/pixel) over the octave below, on a
    windowed native-resolution centre crop. About 1 for natural images (power ~ 1/f^2 puts equal
    energy in each octave), 0.1-0.25 for a x2 upscale, whose top octave is interpolated."""
    w, h = image.size
    side = min(CROP, w, h)
    if side < 16:
        return 0.0
    left, top = (w - side) // 2, (h - side) // 2
    grey = np.asarray(image.crop((left, top, left + side, top + side)).convert("L"), dtype=np.float32)
    window, top_band, lower_band = _spectrum_masks(side)
    power = np.abs(np.fft.rfft2((grey - grey.mean()) * window)) ** 2
    top_octave = power[top_band].sum()
    below = power[lower_band].sum()
    return float(top_octave / below) if below > 0 else 0.0


Mask = npt.NDArray[np.bool_]


@functools.lru_cache(maxsize=8)
def _spectrum_masks(side: int) -> tuple[npt.NDArray[np.float32], Mask, Mask]:
    """The 2-D window and the two octave masks for a side x side crop (the same for every image of
    that size, so computed once)."""
    hann = np.hanning(side).astype(np.float32)
    fy = np.fft.fftfreq(side)[:, None]
    fx = np.fft.rfftfreq(side)[None, :]
    radius = np.hypot(fy, fx)
    # JPEG's 8-pixel blocks put energy on the multiples of 1/8 cycle/pixel: leave those lines out
    grid = (np.abs(fy * 8 - np.round(fy * 8)) * side < 1.5) | (np.abs(fx * 8 - np.round(fx * 8)) * side < 1.5)
    top_band = (radius > 0.25) & (radius <= 0.5) & ~grid
    lower_band = (radius > 0.125) & (radius <= 0.25) & ~grid
    return hann[:, None] * hann[None, :], top_band, lower_band


def image_cues(image: Image.Image, quantization: Mapping[int, Sequence[int]] | None = None) -> ImageCues:
    """The cues of one decoded (orientation-corrected) image; `quantization`: its JPEG tables."""
    w, h = image.size
    scale = min(1.0, SMALL / max(w, h))
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    # sampled, not averaged: averaging would hide clipped pixels and blur band edges
    rgb = np.asarray(image.resize(size, Image.Resampling.NEAREST).convert("RGB"), dtype=np.float32)
    # near 0 / 255 rather than exactly: re-encoding a white background moves it by a few levels
    clipped = float(((rgb <= NEAR) | (rgb >= 255 - NEAR)).any(axis=2).mean())
    chroma = float((np.abs(rgb[..., 0] - rgb[..., 1]) + np.abs(rgb[..., 1] - rgb[..., 2])).mean())
    return ImageCues(
        border=_flat_bands(rgb),
        detail=_detail(image),
        clipped=clipped,
        chroma=chroma,
        jpeg_quality=jpeg_quality(quantization or getattr(image, "quantization", None)),
    )
