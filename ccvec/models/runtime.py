"""Run an ONNX image model in batches with onnxruntime; vectors come out L2-normalised."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import numpy.typing as npt

from ccvec.models.registry import Model
from ccvec.models.spec import normalise


class Embedder:
    def __init__(self, model: Model, threads: int | None = None) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or os.cpu_count() or 1
        # Decode workers share the cores: idle inference threads must sleep, not spin.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.model = model
        self.spec = model.spec
        self.session = ort.InferenceSession(str(model.path), options, providers=["CPUExecutionProvider"])

    def run(self, pixels: npt.NDArray[np.uint8], outputs: list[str] | None = None) -> list[npt.NDArray[Any]]:
        """Raw outputs for (N, S, S, 3) uint8 pixels (of whatever dtype each output has)."""
        x = normalise(pixels, self.spec)
        found = self.session.run(outputs or [self.spec.output_name], {self.spec.input_name: x})
        return [np.asarray(out) for out in found]  # already arrays; asarray gives them a type

    def embed(self, pixels: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
        """(N, S, S, 3) uint8 -> (N, dim) float32, unit length (zero vectors stay zero)."""
        if len(pixels) == 0:
            return np.zeros((0, self.spec.dim), np.float32)
        (raw,) = self.run(pixels)
        features = raw.reshape(len(pixels), -1).astype(np.float32)
        norms = np.linalg.norm(features, axis=1, keepdims=True)
        # In place: `features` is astype's own copy (and stays float32 for the type checker too).
        np.divide(features, np.where(norms > 0, norms, 1), out=features)
        return features
