"""pHash: bit for bit imagehash.phash, on real photos in every Pillow mode; conversions."""

from __future__ import annotations

import imagehash
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from ccvec import phash
from ccvec.decode import decode

from .images import PHOTOS, encode, in_every_mode, photo


def reference(image: Image.Image) -> str:
    return str(imagehash.phash(image))


@pytest.mark.parametrize("name", PHOTOS)
def test_equals_imagehash_on_real_photos(name: str) -> None:
    image = photo(name)
    assert phash.to_hex(phash.phash_images([image])[0]) == reference(image)


@pytest.mark.parametrize("mode", list(in_every_mode(photo("chelsea"))))
def test_equals_imagehash_in_every_mode(mode: str) -> None:
    for name in ("chelsea", "astronaut", "coffee"):
        image = in_every_mode(photo(name))[mode]
        assert image.mode == mode.split("+")[0]
        assert phash.to_hex(phash.phash_images([image])[0]) == reference(image), (name, mode)


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "P+transparency", "L", "LA", "1", "I;16"])
def test_decode_path_equals_imagehash_on_saved_files(mode: str) -> None:
    """Through the loader's own path: bytes -> decode -> hash grid -> batch hash."""
    image = in_every_mode(photo("coffee"))[mode]
    data = encode(image, "PNG")
    ours = phash.phash_from_pixels(decode(data, None).hash_grid[None])[0]
    assert phash.to_hex(ours) == reference(Image.open(__import__("io").BytesIO(data)))


def test_batch_equals_one_by_one() -> None:
    images = [photo(n) for n in PHOTOS]
    batch = phash.phash_images(images)
    assert [phash.to_hex(h) for h in batch] == [reference(im) for im in images]
    assert len(set(batch.tolist())) == len(images)  # different photos, different hashes


def test_flat_and_tiny_images() -> None:
    for image in (
        Image.new("L", (50, 40), 0),
        Image.new("RGB", (1, 1), (200, 10, 10)),
        Image.new("RGB", (3000, 2), (9, 9, 9)),
        Image.linear_gradient("L"),
    ):
        assert phash.to_hex(phash.phash_images([image])[0]) == reference(image)


@given(st.integers(min_value=0, max_value=2**64 - 1))
def test_hex_and_signed_round_trip(value: int) -> None:
    text = phash.to_hex(value)
    assert len(text) == 16 and phash.from_hex(text) == value
    signed = phash.to_signed(value)
    assert -(2**63) <= signed < 2**63
    assert phash.from_signed(signed) == value
    assert np.int64(signed).view(np.uint64) == np.uint64(value)


def test_hex_matches_imagehash_string_form() -> None:
    h = imagehash.phash(photo("astronaut"))
    value = phash.from_hex(str(h))
    assert imagehash.hex_to_hash(phash.to_hex(value)) == h
    bits = h.hash.flatten()
    assert bool(bits[0]) == bool(value >> 63)  # bit [0,0] is the most significant


def test_bad_hex_is_refused() -> None:
    for bad in ("", "123", "zz00000000000000", "00000000000000000"):
        with pytest.raises(ValueError, match="16 hex"):
            phash.from_hex(bad)


def test_hamming() -> None:
    assert phash.hamming(0, 2**64 - 1) == 64
    assert phash.hamming(phash.to_signed(2**63), 2**63) == 0
    assert phash.hamming(0b1011, 0b0001) == 2
