"""Decode an image once and derive everything ccvec needs from that one decode.

From the file's bytes: the content sha256, the orientation-corrected image (EXIF applied, first frame
of animations), the 32x32 grey grid the pHash is computed from (via `convert("L")` exactly as
imagehash does) and the model-ready RGB pixels (alpha composited on white, 16-bit and float modes
scaled to 8 bits rather than clipped). Anything wrong with the input raises `DecodeError` with a
reason a person can read.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import struct
import threading
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ccvec import defaults
from ccvec.cues import ImageCues, image_cues
from ccvec.models.spec import ModelSpec, crop_pixels
from ccvec.phash import hash_pixels

DEFAULT_MAX_PIXELS = defaults.MAX_PIXELS


class DecodeError(Exception):
    """The input is not a usable image; the message says why."""


@dataclass(frozen=True)
class DecodedImage:
    sha256: bytes
    width: int  # after EXIF orientation
    height: int
    format: str | None
    hash_grid: np.ndarray  # (32, 32) uint8
    pixels: np.ndarray | None  # (S, S, 3) uint8 for the model, None when no model asked
    cues: ImageCues | None = None  # signs of being a derivative, for choosing canonical copies


# Pillow's bomb limit and the warnings filter are process-wide, and decoding runs in threads (the
# loader's fetchers, the Spark job's): each set-and-open holds this lock, so no open sees another's
# limit (Image.open reads the header only; the pixels are decoded after, outside it).
_PILLOW_LIMIT = threading.Lock()


def _open(data: bytes, max_pixels: int) -> Image.Image:
    if not data:
        raise DecodeError("empty file (0 bytes)")
    try:
        with _PILLOW_LIMIT, warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            # Pillow's own bomb check follows --max-pixels, above its default as well as below,
            # and the process's limit is put back: other code's Pillow calls keep theirs.
            saved, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, max_pixels
            try:
                image = Image.open(io.BytesIO(data))
            finally:
                Image.MAX_IMAGE_PIXELS = saved
    except UnidentifiedImageError:
        raise DecodeError(_unreadable(data)) from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        # Pillow's text gives twice the limit past 2x and no way out: say it as ccvec's own check does
        raise DecodeError(_too_many_pixels(_header_size(data), max_pixels)) from None
    except (OSError, SyntaxError, ValueError, EOFError, struct.error, IndexError) as exc:
        raise DecodeError(f"cannot decode image header: {exc}") from None
    w, h = image.size
    if w * h > max_pixels:
        raise DecodeError(_too_many_pixels((w, h), max_pixels))
    if w == 0 or h == 0:
        raise DecodeError(f"image has no pixels ({w}x{h})")
    try:
        image.seek(0)  # animated GIF/PNG/WebP: the first frame
        image.load()
    except (OSError, SyntaxError, ValueError, EOFError, struct.error, IndexError) as exc:
        raise DecodeError(f"cannot decode {image.format or 'image'} data: {exc}") from None
    return image


# ISO-BMFF brands of HEIF files (iPhone photos since 2017) that carry HEVC: Pillow has no decoder.
_HEIF_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"hevm", b"hevs", b"mif1", b"msf1"}


def _unreadable(data: bytes) -> str:
    """Why Pillow identified no image: a format it cannot decode is named as such."""
    if data[4:8] == b"ftyp":
        size = int.from_bytes(data[:4], "big")
        brands = {data[i : i + 4] for i in range(8, min(max(size, 16), 64), 4)} - {data[12:16]}
        if brands & _HEIF_BRANDS and not brands & {b"avif", b"avis"}:
            return (
                "HEIC/HEIF image: format not supported (Pillow has no HEVC decoder; convert it to JPEG, "
                "e.g. set the phone to 'Most Compatible')"
            )
    return "not an image Pillow can read (unknown or corrupt header)"


def _header_size(data: bytes) -> tuple[int, int] | None:
    """An image's size from its header alone (no pixels decoded), past Pillow's bomb check."""
    with _PILLOW_LIMIT:
        limit = Image.MAX_IMAGE_PIXELS
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                Image.MAX_IMAGE_PIXELS = None
                with Image.open(io.BytesIO(data)) as image:
                    return image.size
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError, struct.error, IndexError):
            return None  # the size only improves the message
        finally:
            Image.MAX_IMAGE_PIXELS = limit


def _too_many_pixels(size: tuple[int, int] | None, max_pixels: int) -> str:
    shown = f"{size[0]}x{size[1]} = {size[0] * size[1]:,} pixels" if size else "more pixels"
    return (
        f"refused as a decompression bomb: {shown} > limit {max_pixels:,} "
        "(--max-pixels N reads larger images)"
    )


HIGH_DEPTH_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I", "F")


def for_display(image: Image.Image) -> Image.Image:
    """RGB, or RGBA when the image has transparency, for a thumbnail a person looks at: 16-bit and
    float images scaled as the embedder sees them (`convert("RGB")` clips them to white or black)."""
    if image.mode in HIGH_DEPTH_MODES:
        return to_rgb(image)
    if image.mode in ("RGB", "RGBA"):
        return image
    return image.convert("RGBA" if "transparency" in image.info or "A" in image.mode else "RGB")


def to_rgb(image: Image.Image) -> Image.Image:
    """RGB for the embedder: transparency composited on white, high bit depths scaled, not clipped."""
    if image.mode in HIGH_DEPTH_MODES:
        arr = np.asarray(image, dtype=np.float64)
        top = 65535.0 if image.mode.startswith("I;16") else max(float(arr.max()), 1.0)
        grey = np.clip(arr / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return Image.fromarray(grey).convert("RGB")
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return image if image.mode == "RGB" else image.convert("RGB")


def decode(data: bytes, spec: ModelSpec | None, max_pixels: int = DEFAULT_MAX_PIXELS) -> DecodedImage:
    """Everything ccvec stores about one image, from its bytes, with a single decode."""
    image = _open(data, max_pixels)
    fmt = image.format
    quantization = getattr(image, "quantization", None)  # EXIF transposing may drop it
    with contextlib.suppress(Exception):  # a malformed EXIF block must not cost us the image
        # in place: without an orientation tag (most images) nothing is copied
        ImageOps.exif_transpose(image, in_place=True)
    try:
        grey = image.convert("L")
        grid = hash_pixels(grey)
        pixels = crop_pixels(to_rgb(image), spec) if spec is not None else None
    except (OSError, ValueError) as exc:
        raise DecodeError(f"cannot convert {image.mode} image: {exc}") from None
    cues = None
    with contextlib.suppress(Exception):  # optional: an odd mode must not cost us the image
        cues = image_cues(image, quantization, grey)
    return DecodedImage(
        sha256=hashlib.sha256(data).digest(),
        width=image.width,
        height=image.height,
        format=fmt,
        hash_grid=grid,
        pixels=pixels,
        cues=cues,
    )
