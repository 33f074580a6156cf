"""Derivative cues measured at decode time, on real photos and edits of them."""

from __future__ import annotations

import io

import pytest
from PIL import Image, ImageEnhance, ImageOps

from ccvec.cues import image_cues, jpeg_quality
from ccvec.decode import decode

from .images import photo


def jpeg(image: Image.Image, quality: int) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


@pytest.mark.parametrize("quality", [30, 50, 75, 90])
def test_jpeg_quality_is_estimated_from_the_tables(quality: int) -> None:
    image = Image.open(io.BytesIO(jpeg(photo("coffee").convert("RGB"), quality)))
    assert abs(jpeg_quality(image.quantization) - quality) <= 2
    assert jpeg_quality(None) is None


def test_cues_tell_derivatives_from_the_original() -> None:
    original = photo("astronaut").convert("RGB")  # 512 x 512
    w, h = original.size
    frame = Image.new("RGB", (w * 16 // 9, h))
    frame.paste(original, ((frame.width - w) // 2, 0))
    base = image_cues(original)
    letterbox = image_cues(frame)
    bordered = image_cues(ImageOps.expand(original, border=40, fill=(255, 255, 255)))
    upscaled = image_cues(original.resize((w * 2, h * 2), Image.Resampling.BICUBIC))
    grey = image_cues(ImageOps.grayscale(original))
    bright = image_cues(ImageEnhance.Brightness(original).enhance(1.4))
    assert base.border < 0.02 and letterbox.border > 0.35 and bordered.border > 0.2
    assert upscaled.detail < 0.5 * base.detail
    assert grey.chroma < 1 < 10 < base.chroma
    assert bright.clipped > base.clipped + 0.03


def test_decode_carries_cues_and_the_jpeg_quality_survives_exif_rotation() -> None:
    image = photo("chelsea").convert("RGB")
    exif = Image.Exif()
    exif[0x0112] = 6  # rotated: decode transposes, which drops Pillow's quantization tables
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=40, exif=exif)
    decoded = decode(buffer.getvalue(), None)
    assert (decoded.width, decoded.height) == (image.height, image.width)
    assert decoded.cues is not None and abs(decoded.cues.jpeg_quality - 40) <= 2
