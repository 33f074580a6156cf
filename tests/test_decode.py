"""Decoding once: orientation, modes, animation, bombs, broken input."""

from __future__ import annotations

import io

import imagehash
import numpy as np
import pytest
from PIL import Image

from ccvec import phash
from ccvec.decode import DecodeError, decode, to_rgb
from ccvec.models.efficientnet_lite import SPEC

from .images import broken_files, encode, in_every_mode, photo


def hash_hex(data: bytes) -> str:
    return phash.to_hex(phash.phash_from_pixels(decode(data, None).hash_grid[None])[0])


def test_exif_orientation_is_applied() -> None:
    upright = photo("astronaut").convert("RGB").resize((300, 200))
    stored = upright.transpose(Image.Transpose.ROTATE_270)  # what a camera writes, sideways
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    data = encode(stored, "JPEG", exif=exif, quality=95)
    decoded = decode(data, SPEC)
    assert (decoded.width, decoded.height) == (300, 200)
    shown = Image.open(io.BytesIO(data))
    from PIL import ImageOps

    assert hash_hex(data) == str(imagehash.phash(ImageOps.exif_transpose(shown)))
    assert hash_hex(data) != str(imagehash.phash(Image.open(io.BytesIO(data))))


def test_animated_image_uses_first_frame() -> None:
    frames = [photo("chelsea").convert("RGB"), photo("coffee").convert("RGB").resize((451, 300))]
    frames[1] = frames[1].resize(frames[0].size)
    buffer = io.BytesIO()
    frames[0].save(buffer, "GIF", save_all=True, append_images=frames[1:], duration=100)
    first = Image.open(io.BytesIO(buffer.getvalue()))
    assert getattr(first, "n_frames", 1) == 2
    assert hash_hex(buffer.getvalue()) == str(imagehash.phash(first))
    assert hash_hex(buffer.getvalue()) != hash_hex(encode(frames[1].quantize(256), "GIF"))


def test_decompression_bomb_is_refused() -> None:
    big = encode(Image.new("L", (4000, 3000)), "PNG")
    with pytest.raises(DecodeError, match="decompression bomb"):
        decode(big, SPEC, max_pixels=10_000_000)
    assert decode(big, None, max_pixels=13_000_000).width == 4000  # the limit is configurable


@pytest.mark.parametrize("max_pixels", [10_000_000, 8_000_000, 5_000_000])
def test_a_refused_image_says_its_size_the_limit_and_how_to_load_it(max_pixels: int) -> None:
    """Past the limit (Pillow's warning), past twice the limit (Pillow's error) and in between: one
    message with the image's size and the limit asked for (not Pillow's doubled one), and the option."""
    big = encode(Image.new("L", (4000, 3000)), "PNG")
    before = Image.MAX_IMAGE_PIXELS
    with pytest.raises(DecodeError) as refused:
        decode(big, SPEC, max_pixels=max_pixels)
    assert before == Image.MAX_IMAGE_PIXELS  # the process's limit put back (the next open failed)
    assert str(refused.value) == (
        f"refused as a decompression bomb: 4000x3000 = 12,000,000 pixels > limit {max_pixels:,} "
        "(--max-pixels N reads larger images)"
    )


def test_model_pixels_shape_and_modes() -> None:
    for mode, image in in_every_mode(photo("chelsea")).items():
        pixels = decode(encode(image, "TIFF" if mode == "CMYK" else "PNG"), SPEC).pixels
        assert pixels.shape == (224, 224, 3) and pixels.dtype == np.uint8, mode


def test_transparent_pixels_become_white() -> None:
    image = Image.new("RGBA", (10, 10), (255, 0, 0, 0))
    assert to_rgb(image).getpixel((5, 5)) == (255, 255, 255)
    assert to_rgb(Image.new("LA", (4, 4), (0, 255))).getpixel((0, 0)) == (0, 0, 0)


def test_sixteen_bit_is_scaled_not_clipped() -> None:
    mid_grey = Image.fromarray(np.full((8, 8), 32768, np.uint16))
    assert to_rgb(mid_grey).getpixel((0, 0)) == (128, 128, 128)


def test_sha256_is_of_the_file_bytes() -> None:
    import hashlib

    data = encode(photo("camera"), "PNG")
    assert decode(data, None).sha256 == hashlib.sha256(data).digest()


def test_every_broken_file_gets_a_readable_reason(tmp_path) -> None:
    good = encode(photo("chelsea").convert("RGB"), "JPEG", quality=90)
    expected = broken_files(tmp_path, good)
    assert len(expected) == 20
    for name, fragment in expected.items():
        with pytest.raises(DecodeError) as caught:
            decode((tmp_path / name).read_bytes(), SPEC)
        reason = str(caught.value)
        assert fragment in reason, (name, reason)
        assert reason.startswith(("empty file", "not an image", "cannot decode")), reason
        assert len(reason) < 300
