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
import scipy.fft
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


def _flat_bands(rgb: npt.NDArray[np.float32]) -> float:
    """Share of the frame covered by flat rows/columns running in from the four edges. The spread
    of every row and every column is computed once; the four runs read it from either end."""
    h, w = rgb.shape[:2]
    rows = rgb.reshape(h, -1).std(axis=1) < FLAT
    cols = rgb.transpose(1, 0, 2).reshape(w, -1).std(axis=1) < FLAT

    def run(flat: npt.NDArray[np.bool_]) -> int:  # flat lines from the edge inwards
        return int(np.argmin(flat)) if not flat.all() else len(flat)

    covered_rows = min(h, run(rows) + run(rows[::-1]))
    covered_cols = min(w, run(cols) + run(cols[::-1]))
    return float(1 - (h - covered_rows) * (w - covered_cols) / (h * w))


def _detail(grey: npt.NDArray[np.uint8]) -> float:
    """Spectral energy in the top octave (0.25-0.5 cycles/pixel) over the octave below, on a
    windowed native-resolution centre crop of the grey image. About 1 for natural images (power ~
    1/f^2 puts equal energy in each octave), 0.1-0.25 for a x2 upscale, whose top octave is
    interpolated. Single-precision FFT (scipy.fft): 10x numpy's double-precision rfft2 here, and
    the ratio is stored as a real anyway."""
    h, w = grey.shape
    side = min(CROP, w, h)
    if side < 16:
        return 0.0
    left, top = (w - side) // 2, (h - side) // 2
    crop = grey[top : top + side, left : left + side].astype(np.float32)
    window, top_band, lower_band = _spectrum_masks(side)
    crop -= np.float32(crop.mean(dtype=np.float64))  # a float32 scalar: float64 would promote
    spectrum = scipy.fft.rfft2(crop * window, overwrite_x=True)
    power = (spectrum.real**2 + spectrum.imag**2).ravel().astype(np.float64)
    # multiply-and-sum, not a dot product: BLAS threads would spin on the decode workers' cores
    top_octave = float((power * top_band).sum())
    below = float((power * lower_band).sum())
    return top_octave / below if below > 0 else 0.0


Weights = npt.NDArray[np.float64]


@functools.lru_cache(maxsize=8)
def _spectrum_masks(side: int) -> tuple[npt.NDArray[np.float32], Weights, Weights]:
    """The 2-D window and the two octave masks (as 0/1 weights over the flattened half spectrum,
    so a band's energy is one multiply-and-sum) for a side x side crop: the same for every image of
    that size, so computed once."""
    hann = np.hanning(side).astype(np.float32)
    fy = np.fft.fftfreq(side)[:, None]
    fx = np.fft.rfftfreq(side)[None, :]
    radius = np.hypot(fy, fx)
    # JPEG's 8-pixel blocks put energy on the multiples of 1/8 cycle/pixel: leave those lines out
    grid = (np.abs(fy * 8 - np.round(fy * 8)) * side < 1.5) | (np.abs(fx * 8 - np.round(fx * 8)) * side < 1.5)
    top_band = (radius > 0.25) & (radius <= 0.5) & ~grid
    lower_band = (radius > 0.125) & (radius <= 0.25) & ~grid
    return (
        hann[:, None] * hann[None, :],
        top_band.ravel().astype(np.float64),
        lower_band.ravel().astype(np.float64),
    )


def image_cues(
    image: Image.Image,
    quantization: Mapping[int, Sequence[int]] | None = None,
    grey: Image.Image | None = None,
) -> ImageCues:
    """The cues of one decoded (orientation-corrected) image; `quantization`: its JPEG tables;
    `grey`: its `convert("L")` when the caller has it already (decode makes it for the pHash)."""
    w, h = image.size
    scale = min(1.0, SMALL / max(w, h))
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    # sampled, not averaged: averaging would hide clipped pixels and blur band edges
    small = np.asarray(image.resize(size, Image.Resampling.NEAREST).convert("RGB"))
    # near 0 / 255 rather than exactly: re-encoding a white background moves it by a few levels
    extreme = (small <= NEAR) | (small >= 255 - NEAR)
    clipped = float((extreme[..., 0] | extreme[..., 1] | extreme[..., 2]).mean())  # any(axis=2), 8x faster
    channels = small.astype(np.int16)
    chroma = float(
        (np.abs(channels[..., 0] - channels[..., 1]) + np.abs(channels[..., 1] - channels[..., 2])).mean()
    )
    # the centre crop in Pillow before numpy: turning a whole image into an array copies it all
    side = min(CROP, w, h)
    box = ((w - side) // 2, (h - side) // 2, (w - side) // 2 + side, (h - side) // 2 + side)
    source = grey if grey is not None and grey.size == image.size else image
    centre = source.crop(box).convert("L")  # of the grey image: a copy of 256 x 256 bytes
    return ImageCues(
        border=_flat_bands(small.astype(np.float32)),
        detail=_detail(np.asarray(centre)),
        clipped=clipped,
        chroma=chroma,
        jpeg_quality=jpeg_quality(quantization or getattr(image, "quantization", None)),
    )
