"""The int8 build of the default model: close to fp32, and a separate model whose vectors never mix."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import psycopg
import pytest

from ccvec import graph
from ccvec.decode import decode
from ccvec.errors import CcvecError
from ccvec.load import LoadOptions, load
from ccvec.models import quantized, registry
from ccvec.models.runtime import Embedder

from .images import PHOTOS, encode, photo, write_photos

CATS = set(range(281, 288))


@pytest.fixture(scope="session")
def int8(ccvec_home) -> registry.Model:
    return registry.build_int8()


def pixels_of(names) -> np.ndarray:
    spec = quantized.SPEC
    return np.stack([decode(encode(photo(n).convert("RGB"), "JPEG", quality=95), spec).pixels for n in names])


def test_int8_is_close_to_fp32_and_classifies_the_same(int8: registry.Model) -> None:
    fp32 = Embedder(registry.build_default(), threads=2)
    small = Embedder(int8, threads=2)
    pixels = pixels_of(PHOTOS)
    cosine = (fp32.embed(pixels) * small.embed(pixels)).sum(axis=1)
    assert cosine.min() >= 0.95, cosine
    assert cosine.mean() >= 0.98, cosine
    (logits,) = small.run(pixels_of(["chelsea"]), ["logits"])
    assert int(logits[0].argmax()) in CATS


def test_int8_build_is_deterministic(
    int8: registry.Model, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """Same fp32 file, recipe and onnxruntime: the same bytes, so a rebuild matches the registry.
    The build prints nothing on stdout (onnxruntime's calibration chatter would land in a user's
    `--format json` output)."""
    capfd.readouterr()
    quantized.quantize(registry.build_default().path, tmp_path / "again.onnx")
    assert capfd.readouterr().out == ""
    assert registry.file_sha256(tmp_path / "again.onnx") == int8.sha256


def test_int8_is_its_own_registered_model(conn: psycopg.Connection, int8: registry.Model) -> None:
    model = registry.get_model(conn, "efficientnet-lite0-int8")
    fp32 = registry.get_model(conn, registry.DEFAULT_MODEL)
    assert model.sha256 == int8.sha256 != fp32.sha256
    names = {r[0]: r[3] for r in registry.list_models(conn)}
    assert names == {"efficientnet-lite0": fp32.sha256, "efficientnet-lite0-int8": int8.sha256}
    with pytest.raises(CcvecError, match="built-in model name"):
        registry.add_model(conn, fp32.path, quantized.SPEC)
    with pytest.raises(CcvecError, match="different ONNX file"):
        registry.register(conn, registry.Model(quantized.SPEC, fp32.path, fp32.sha256))


def test_int8_and_fp32_vectors_never_share_an_index_or_a_comparison(
    conn: psycopg.Connection, int8: registry.Model, tmp_path: Path
) -> None:
    both = write_photos(tmp_path / "both", PHOTOS[:6])
    fp32_only = write_photos(tmp_path / "fp32-only", PHOTOS[6:])
    for model in ("efficientnet-lite0", "efficientnet-lite0-int8"):
        assert load(str(tmp_path / "both"), LoadOptions(model=model, workers=0)).loaded == len(both)
    assert load(str(tmp_path / "fp32-only"), LoadOptions(workers=0)).loaded == len(fp32_only)

    runs = {m: graph.build(conn, k=3, model=m) for m in ("efficientnet-lite0", "efficientnet-lite0-int8")}
    # one partial HNSW index per model, each restricted to its own rows
    defs = {
        m: conn.execute(
            "SELECT indexdef FROM pg_indexes WHERE schemaname = 'ccvec' "
            "AND indexname = ccvec.embedding_index_name(%s)",
            [m],
        ).fetchone()[0]
        for m in runs
    }
    assert defs["efficientnet-lite0"] != defs["efficientnet-lite0-int8"]
    for m, d in defs.items():
        assert f"WHERE (model = '{m}'::text)" in d
    # every edge of the int8 graph joins two int8 vectors, with their own cosine
    rows = conn.execute(
        "SELECT e.similarity, (a.embedding <=> b.embedding), a.model, b.model FROM ccvec.knn_edge e "
        "JOIN ccvec.knn_run r ON r.id = e.run_id "
        "JOIN ccvec.image_embedding a ON a.identifier = e.identifier AND a.model = r.model "
        "JOIN ccvec.image_embedding b ON b.identifier = e.neighbour AND b.model = r.model "
        "WHERE e.run_id = %s",
        [runs["efficientnet-lite0-int8"].id],
    ).fetchall()
    total = conn.execute(
        "SELECT count(*) FROM ccvec.knn_edge WHERE run_id = %s", [runs["efficientnet-lite0-int8"].id]
    ).fetchone()[0]
    assert len(rows) == total == len(both) * 3
    assert all(abs(sim - (1 - dist)) < 1e-3 for sim, dist, *_ in rows)
    # images only the fp32 model embedded are invisible to int8 search, and vice versa by name
    fp32_ids = {
        r[0]
        for r in conn.execute(
            "SELECT identifier FROM ccvec.image_embedding WHERE model = 'efficientnet-lite0' EXCEPT "
            "SELECT identifier FROM ccvec.image_embedding WHERE model = 'efficientnet-lite0-int8'"
        )
    }
    assert len(fp32_ids) == len(fp32_only)
    some = conn.execute(
        "SELECT identifier FROM ccvec.image_embedding WHERE model = 'efficientnet-lite0-int8' LIMIT 1"
    ).fetchone()[0]
    found = {r[0] for r in graph.similar(conn, some, 20, "efficientnet-lite0-int8")}
    assert found and not found & fp32_ids
    assert len(found) == len(both) - 1
    with pytest.raises(CcvecError, match="no efficientnet-lite0-int8 embedding"):
        graph.similar(conn, next(iter(fp32_ids)), 3, "efficientnet-lite0-int8")
