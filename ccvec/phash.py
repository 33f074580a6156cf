"""64-bit perceptual hash, bit for bit `imagehash.phash`, vectorised over batches.

Definition (imagehash 4.x): greyscale (`Image.convert("L")`), 32x32 LANCZOS resize, 2-D DCT-II
(scipy.fftpack, unnormalised), top-left 8x8 including DC, bit = coefficient > median of those 64,
bit [0, 0] most significant. Stored in Postgres as the same 64-bit pattern in a signed bigint.
The DCT runs through the same scipy.fftpack routine imagehash uses, over a whole batch at once, so
every coefficient (and thus every bit) is identical.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import scipy.fftpack
from PIL import Image

HASH_SIZE = 8
IMAGE_SIZE = 32
_BIT_WEIGHTS = (np.uint64(1) << np.arange(63, -1, -1, dtype=np.uint64)).astype(np.uint64)


def hash_pixels(grey: Image.Image) -> npt.NDArray[np.uint8]:
    """The 32x32 uint8 grid a hash is computed from (mode L input, as imagehash makes it)."""
    if grey.mode != "L":
        grey = grey.convert("L")
    return np.asarray(grey.resize((IMAGE_SIZE, IMAGE_SIZE), Image.Resampling.LANCZOS))


def phash_from_pixels(pixels: npt.ArrayLike) -> npt.NDArray[np.uint64]:
    """(N, 32, 32) uint8 grids -> (N,) uint64 hashes."""
    pixels = np.asarray(pixels)
    if pixels.ndim != 3 or pixels.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE):
        raise ValueError(f"expected (N, 32, 32) pixels, got {pixels.shape}")
    if len(pixels) == 0:
        return np.zeros(0, np.uint64)
    dct = scipy.fftpack.dct(scipy.fftpack.dct(pixels, axis=1), axis=2)
    low = dct[:, :HASH_SIZE, :HASH_SIZE].reshape(len(pixels), -1)
    bits = low > np.median(low, axis=1, keepdims=True)
    hashes: npt.NDArray[np.uint64] = (bits.astype(np.uint64) * _BIT_WEIGHTS).sum(axis=1, dtype=np.uint64)
    return hashes


def phash_images(images: Sequence[Image.Image]) -> npt.NDArray[np.uint64]:
    """Hashes of PIL images of any mode, as imagehash.phash would compute them."""
    return phash_from_pixels(
        np.stack([hash_pixels(im) for im in images]) if images else np.zeros((0, 32, 32))
    )


def to_hex(value: int | np.integer) -> str:
    """imagehash's 16-character hex form."""
    return f"{int(value) & 0xFFFFFFFFFFFFFFFF:016x}"


def from_hex(text: str) -> int:
    """Parse imagehash's hex form to the unsigned 64-bit value."""
    text = text.strip().lower()
    if len(text) != 16 or any(c not in "0123456789abcdef" for c in text):
        raise ValueError(f"a pHash is 16 hex characters, not {text!r}")
    return int(text, 16)


def to_signed(value: int | np.integer) -> int:
    """Unsigned 64-bit pattern -> the signed int64 Postgres stores in a bigint."""
    value = int(value) & 0xFFFFFFFFFFFFFFFF
    return value - (1 << 64) if value >= 1 << 63 else value


def from_signed(value: int) -> int:
    """Signed bigint from Postgres -> unsigned 64-bit pattern."""
    return int(value) & 0xFFFFFFFFFFFFFFFF


def hamming(a: int, b: int) -> int:
    return ((int(a) ^ int(b)) & 0xFFFFFFFFFFFFFFFF).bit_count()
