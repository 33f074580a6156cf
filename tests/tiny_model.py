"""A small real ONNX image model, built by the tests themselves (no download, no weights file)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import psycopg
from onnx import TensorProto, helper, numpy_helper

from ccvec.models.spec import ModelSpec

TINY_DIM = 8
TINY_SIZE = 32


def build_tiny_model(path: Path, dim: int = TINY_DIM, size: int = TINY_SIZE) -> Path:
    """pixels (N,3,S,S) -> 4x4 average pool -> fixed random projection -> 'embedding' (N, dim)."""
    rng = np.random.default_rng(7)
    flat = 3 * (size // 4) ** 2
    weights = rng.standard_normal((flat, dim)).astype(np.float32)
    nodes = [
        helper.make_node("AveragePool", ["pixels"], ["pooled"], kernel_shape=[4, 4], strides=[4, 4]),
        helper.make_node("Flatten", ["pooled"], ["flat"], axis=1),
        helper.make_node("MatMul", ["flat", "proj"], ["embedding"]),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info("pixels", TensorProto.FLOAT, ["n", 3, size, size])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["n", dim])],
        [numpy_helper.from_array(weights, "proj")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return path


def tiny_spec(name: str = "tiny") -> ModelSpec:
    return ModelSpec(
        name=name,
        version="test",
        dim=TINY_DIM,
        input_size=TINY_SIZE,
        resize=TINY_SIZE,
        mean=(0.5, 0.5, 0.5),
        std=(0.25, 0.25, 0.25),
        input_name="pixels",
        output_name="embedding",
    )


def register_tiny(conn: psycopg.Connection, folder: Path, name: str) -> Path:
    """Build the tiny model in `folder`, register it as `name` and commit; returns its ONNX file."""
    from ccvec.models import registry

    onnx_file = build_tiny_model(folder / "tiny.onnx")
    registry.add_model(conn, onnx_file, tiny_spec(name))
    conn.commit()
    return onnx_file
