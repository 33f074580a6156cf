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


def test_fast_cues_equal_their_plain_definitions() -> None:
    """Single-precision FFT, one spread per row and column, the pHash's grey image reused: the
    same cues as the plain double-precision computation on the image itself."""
    import numpy as np

    from ccvec import cues

    image = photo("coffee").convert("RGB")  # 600 x 400
    w, h = image.size
    side = min(cues.CROP, w, h)
    left, top = (w - side) // 2, (h - side) // 2
    grey = np.asarray(image.crop((left, top, left + side, top + side)).convert("L"), dtype=np.float64)
    hann = np.hanning(side)
    power = np.abs(np.fft.rfft2((grey - grey.mean()) * np.outer(hann, hann))) ** 2
    fy, fx = np.fft.fftfreq(side)[:, None], np.fft.rfftfreq(side)[None, :]
    radius = np.hypot(fy, fx)
    grid = (np.abs(fy * 8 - np.round(fy * 8)) * side < 1.5) | (np.abs(fx * 8 - np.round(fx * 8)) * side < 1.5)
    top_octave = power[(radius > 0.25) & (radius <= 0.5) & ~grid].sum()
    below = power[(radius > 0.125) & (radius <= 0.25) & ~grid].sum()

    small = np.asarray(image.resize((128, 85), Image.Resampling.NEAREST), dtype=np.float64)

    def run(lines: np.ndarray) -> int:
        flat = lines.reshape(len(lines), -1).std(axis=1) < cues.FLAT
        return int(np.argmin(flat)) if not flat.all() else len(flat)

    rows = min(85, run(small) + run(small[::-1]))
    cols = min(128, run(small.transpose(1, 0, 2)) + run(small.transpose(1, 0, 2)[::-1]))

    framed = ImageOps.expand(image, border=30, fill=(0, 0, 0))
    for shown, given in ((image, None), (image, image.convert("L")), (framed, framed.convert("L"))):
        got = image_cues(shown, None, given)
        if shown is image:
            assert got.detail == pytest.approx(top_octave / below, rel=1e-5)
            assert got.border == pytest.approx(1 - (85 - rows) * (128 - cols) / (85 * 128))
            chroma = (np.abs(small[..., 0] - small[..., 1]) + np.abs(small[..., 1] - small[..., 2])).mean()
            assert got.chroma == pytest.approx(chroma, rel=1e-6)
        assert got == image_cues(shown)  # the grey image given or not: the same cues
    assert image_cues(framed).border > image_cues(image).border + 0.1
