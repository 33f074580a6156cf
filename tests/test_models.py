"""Embedders: the torch-free EfficientNet-Lite0 (classes, PyTorch cross-check), custom ONNX models."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import psycopg
import pytest
from PIL import Image

from ccvec.decode import decode
from ccvec.errors import CcvecError
from ccvec.models import registry
from ccvec.models.efficientnet_lite import SPEC
from ccvec.models.runtime import Embedder
from ccvec.models.spec import ModelSpec, preprocess
from ccvec.models.torch_weights import load_legacy_state_dict

from .images import encode, photo
from .tiny_model import build_tiny_model, tiny_spec

DATA = Path(__file__).parent / "data"
CATS = set(range(281, 288))  # ImageNet: tabby, tiger cat, Persian, Siamese, Egyptian cat, ...


@pytest.fixture(scope="session")
def lite0(ccvec_home) -> Embedder:
    return Embedder(registry.build_default())


def top1(embedder: Embedder, name: str) -> int:
    """Through the loader's path: JPEG bytes -> decode -> pixels -> ONNX logits."""
    pixels = decode(encode(photo(name).convert("RGB"), "JPEG", quality=95), SPEC).pixels
    (logits,) = embedder.run(pixels[None], ["logits"])
    return int(logits[0].argmax())


@pytest.mark.parametrize(
    ("name", "expected"),
    [("chelsea", CATS), ("coffee", {967}), ("camera", {872}), ("rocket", {657, 744, 812})],
    ids=["chelsea=cat", "coffee=espresso", "camera=tripod", "rocket=missile/projectile/shuttle"],
)
def test_top1_class(lite0: Embedder, name: str, expected: set[int]) -> None:
    assert top1(lite0, name) in expected


def test_matches_pytorch_reference(lite0: Embedder) -> None:
    """tools/torch_reference.py ran the same weights in PyTorch; features must agree to 1e-4."""
    ref = np.load(DATA / "torch_reference.npz")
    inputs = np.stack([preprocess(photo(str(n)).convert("RGB"), SPEC) for n in ref["names"]])
    features, logits = lite0.session.run(["features", "logits"], {"input": inputs})
    assert features.shape == (len(ref["names"]), 1280)
    assert np.abs(features - ref["features"]).max() < 1e-4
    assert np.abs(logits - ref["logits"]).max() < 1e-3
    assert (logits.argmax(1) == ref["logits"].argmax(1)).all()


def test_embeddings_are_unit_length_and_discriminative(lite0: Embedder) -> None:
    names = ["chelsea", "coffee", "astronaut"]
    pixels = np.stack([decode(encode(photo(n).convert("RGB")), SPEC).pixels for n in names])
    vectors = lite0.embed(pixels)
    assert vectors.shape == (3, 1280)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)
    resized = decode(encode(photo("chelsea").convert("RGB").resize((300, 200))), SPEC).pixels
    same_cat = float(lite0.embed(resized[None])[0] @ vectors[0])
    assert same_cat > float(vectors[0] @ vectors[1]) and same_cat > 0.9


def test_batches_equal_single_runs(lite0: Embedder) -> None:
    pixels = np.stack([decode(encode(photo(n).convert("RGB")), SPEC).pixels for n in ("coffee", "horse")])
    together = lite0.embed(pixels)
    alone = np.concatenate([lite0.embed(pixels[:1]), lite0.embed(pixels[1:])])
    assert np.abs(together - alone).max() < 1e-5


def test_onnx_file_is_cached_with_its_sha(ccvec_home) -> None:
    first = registry.build_default()
    mtime = first.path.stat().st_mtime_ns
    again = registry.build_default()
    assert again.sha256 == first.sha256 == registry.file_sha256(first.path)
    assert again.path.stat().st_mtime_ns == mtime  # not rebuilt
    assert first.path.is_relative_to(ccvec_home)


def test_restricted_unpickler_refuses_code(tmp_path: Path) -> None:
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    path = tmp_path / "evil.pth"
    with open(path, "wb") as f:
        for obj in (0x1950A86A20F9469CFC6C, 1001, {"little_endian": True}, {"w": Evil()}, []):
            pickle.dump(obj, f, protocol=2)
    with pytest.raises(pickle.UnpicklingError, match=r"refusing to load (__builtin__|builtins)\.print"):
        load_legacy_state_dict(path)


def test_zip_format_is_refused_clearly(tmp_path: Path) -> None:
    path = tmp_path / "new.pth"
    path.write_bytes(b"PK\x03\x04" + bytes(100))
    with pytest.raises(ValueError, match=r"zip-format torch\.save file"):
        load_legacy_state_dict(path)


def test_code_in_the_header_pickles_is_refused_too(tmp_path: Path) -> None:
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    path = tmp_path / "evil_header.pth"
    path.write_bytes(pickle.dumps(Evil(), protocol=2))
    with pytest.raises(pickle.UnpicklingError, match="refusing to load"):
        load_legacy_state_dict(path)


# ------------------------------------------------------------ any other ONNX model


def test_custom_model_through_a_spec(conn: psycopg.Connection, tmp_path: Path) -> None:
    onnx_file = build_tiny_model(tmp_path / "tiny.onnx")
    model = registry.add_model(conn, onnx_file, tiny_spec())
    assert registry.get_model(conn, "tiny").spec == tiny_spec()
    embedder = Embedder(model)
    image = Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 48, 3), np.uint8))
    pixels = decode(encode(image), model.spec).pixels
    assert pixels.shape == (32, 32, 3)
    vector = embedder.embed(pixels[None])[0]
    # independent computation: normalise, 4x4 average pool, project with the model's own weights
    import onnx
    from onnx import numpy_helper

    proj = numpy_helper.to_array(onnx.load(onnx_file).graph.initializer[0])
    x = (pixels.astype(np.float32) / 255 - 0.5) / 0.25
    pooled = x.transpose(2, 0, 1).reshape(3, 8, 4, 8, 4).mean(axis=(2, 4)).reshape(-1)
    expected = pooled @ proj
    assert np.allclose(vector, expected / np.linalg.norm(expected), atol=1e-5)


def test_spec_mismatches_are_refused(conn: psycopg.Connection, tmp_path: Path) -> None:
    onnx_file = build_tiny_model(tmp_path / "tiny.onnx")
    spec = tiny_spec()
    with pytest.raises(CcvecError, match="spec says dim 16"):
        registry.add_model(conn, onnx_file, ModelSpec(**{**spec.to_json(), "dim": 16}))
    with pytest.raises(CcvecError, match="has no output 'features'"):
        registry.add_model(conn, onnx_file, ModelSpec(**{**spec.to_json(), "output_name": "features"}))
    with pytest.raises(CcvecError, match="has no input"):
        registry.add_model(conn, onnx_file, ModelSpec(**{**spec.to_json(), "input_name": "image"}))


def test_other_weights_under_a_used_name_are_refused(conn: psycopg.Connection, tmp_path: Path) -> None:
    registry.add_model(conn, build_tiny_model(tmp_path / "a.onnx"), tiny_spec())
    other = build_tiny_model(tmp_path / "b.onnx", size=64)
    with pytest.raises(CcvecError, match="different ONNX file"):
        registry.add_model(
            conn, other, ModelSpec(**{**tiny_spec().to_json(), "input_size": 64, "resize": 64})
        )


def test_unknown_model_is_a_clear_error(conn: psycopg.Connection) -> None:
    with pytest.raises(CcvecError, match="no model named 'nope'"):
        registry.get_model(conn, "nope")
