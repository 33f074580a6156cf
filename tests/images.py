"""Real test images: skimage's bundled photos, and variants made from them in every Pillow mode."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image
from skimage import data

PHOTOS = ("chelsea", "coffee", "astronaut", "rocket", "camera", "horse", "coins", "page", "moon")


def photo(name: str) -> Image.Image:
    array = getattr(data, name)()
    if array.dtype == bool:
        array = array.astype(np.uint8) * 255
    return Image.fromarray(array.astype(np.uint8))


def encode(image: Image.Image, fmt: str = "PNG", **params) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **params)
    return buffer.getvalue()


def in_every_mode(base: Image.Image) -> dict[str, Image.Image]:
    """The same photo in each Pillow mode a catalog meets."""
    rgb = base.convert("RGB")
    rgba = rgb.copy()
    alpha = Image.linear_gradient("L").resize(rgb.size)
    rgba.putalpha(alpha)
    p_transparent = rgb.quantize(64)
    p_transparent.info["transparency"] = 0
    grey16 = Image.fromarray(np.asarray(rgb.convert("L"), np.uint16) * 257)
    return {
        "RGB": rgb,
        "RGBA": rgba,
        "P+transparency": p_transparent,
        "L": rgb.convert("L"),
        "LA": rgba.convert("LA"),
        "1": rgb.convert("1"),
        "I;16": grey16,
        "CMYK": rgb.convert("CMYK"),
    }


def write_photos(folder: Path, names=PHOTOS, fmt: str = "JPEG") -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in names:
        path = folder / f"{name}.{fmt.lower()}"
        photo(name).convert("RGB").save(path, fmt)
        paths.append(path)
    return paths


def broken_files(folder: Path, good: bytes) -> dict[str, str]:
    """20 kinds of broken input, as files; returns {file name: expected reason fragment}."""
    folder.mkdir(parents=True, exist_ok=True)
    cases: dict[str, tuple[bytes, str]] = {
        "empty.jpg": (b"", "empty file"),
        "text.jpg": (b"this is not an image at all\n" * 10, "not an image"),
        "html.png": (b"<html><body>404 not found</body></html>", "not an image"),
        "zeros.png": (bytes(4096), "not an image"),
        "random.gif": (np.random.default_rng(1).bytes(5000), "not an image"),
    }
    for i, cut in enumerate((0.1, 0.3, 0.5, 0.7, 0.9)):
        cases[f"truncated_{i}.jpg"] = (good[: int(len(good) * cut)], "cannot decode")
    png = encode(photo("coffee").convert("RGB"), "PNG")
    for i, cut in enumerate((0.2, 0.4, 0.6, 0.8)):
        cases[f"truncated_{i}.png"] = (png[: int(len(png) * cut)], "cannot decode")
    header_only = good[:200]
    cases["header_only.jpg"] = (header_only, "cannot decode")
    corrupt = bytearray(good)
    corrupt[400:4000] = bytes(3600)
    cases["corrupt_body.jpg"] = (bytes(corrupt), "cannot decode")
    bad_png = bytearray(png)
    bad_png[100:300] = b"\xff" * 200
    cases["bad_crc.png"] = (bytes(bad_png), "cannot decode")
    cases["png_signature_only.png"] = (b"\x89PNG\r\n\x1a\n", "")
    cases["gif_header_only.gif"] = (b"GIF89a\x10\x00\x10\x00", "")
    cases["bmp_truncated.bmp"] = (encode(photo("camera"), "BMP")[:1000], "cannot decode")
    for name, (blob, _) in cases.items():
        (folder / name).write_bytes(blob)
    return {name: reason for name, (_, reason) in cases.items()}
