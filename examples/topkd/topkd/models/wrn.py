"""Wide ResNets (Zagoruyko & Komodakis 2016) for CIFAR, pre-activation blocks, no dropout.

wrn_d_k: ``(d - 4) / 6`` blocks per stage, widths ``[16, 16k, 32k, 64k]``.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .base import CifarModel


class WideBlock(nn.Module):
    """Pre-activation block: BN-ReLU-conv3×3-BN-ReLU-conv3×3 plus a shortcut (1×1 conv of the
    activated input when the width changes)."""

    def __init__(self, in_planes: int, planes: int, stride: int):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.equal = in_planes == planes
        self.convShortcut = None if self.equal else nn.Conv2d(in_planes, planes, 1, stride, bias=False)

    def forward(self, x):
        act = F.relu(self.bn1(x))
        out = self.conv2(F.relu(self.bn2(self.conv1(act))))
        return out + (x if self.equal else self.convShortcut(act))


class NetworkBlock(nn.Module):
    """A WRN stage: ``layer`` holds its blocks (RepDistiller's module names)."""

    def __init__(self, blocks):
        super().__init__()
        self.layer = nn.Sequential(*blocks)

    def forward(self, x):
        return self.layer(x)


class WideResNet(CifarModel):
    """WRN for 32×32 inputs.

    Parameters
    ----------
    depth : int
        ``6n + 4``.
    widen : int
        Width multiplier ``k``.
    num_classes : int
        Number of logits.

    Features: stem ``16@32``, stages ``16k@32``, ``32k@16``, ``64k@8`` (block outputs);
    pre-activation stages are the next block's ``bn1`` applied (the final BN for the last
    stage); pooled ``64k`` after the final BN-ReLU.
    """

    def __init__(self, depth: int, widen: int, num_classes: int = 100):
        super().__init__()
        if (depth - 4) % 6 != 0:
            raise ValueError(f"depth must be 6n + 4, got {depth}")
        n = (depth - 4) // 6
        widths = [16, 16 * widen, 32 * widen, 64 * widen]
        self.conv1 = nn.Conv2d(3, widths[0], 3, 1, 1, bias=False)
        in_planes = widths[0]
        for i, (w, s) in enumerate(zip(widths[1:], (1, 2, 2))):
            stage = []
            for j in range(n):
                stage.append(WideBlock(in_planes, w, s if j == 0 else 1))
                in_planes = w
            setattr(self, f"block{i + 1}", NetworkBlock(stage))
        self.bn1 = nn.BatchNorm2d(widths[3])
        self.fc = nn.Linear(widths[3], num_classes)
        self.stage_channels = widths
        self.pooled_channels = widths[3]
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.zeros_(m.bias)

    def forward_features(self, x):
        out = self.conv1(x)
        stages = [out]
        blocks = (self.block1, self.block2, self.block3)
        for block in blocks:
            out = block(out)
            stages.append(out)
        # the BN that follows each stage output (next block's bn1, or the final BN)
        following = [b.layer[0].bn1 for b in blocks] + [self.bn1]
        preacts = [bn(s) for bn, s in zip(following, stages)]
        pooled = torch.flatten(F.adaptive_avg_pool2d(F.relu(preacts[-1]), 1), 1)
        return stages, preacts, pooled

    def classify(self, pooled):
        return self.fc(pooled)


def _wrn(depth, widen):
    def build(num_classes: int = 100) -> WideResNet:
        return WideResNet(depth, widen, num_classes)

    build.__doc__ = f"WRN-{depth}-{widen} for CIFAR."
    return build


wrn_16_1 = _wrn(16, 1)
wrn_16_2 = _wrn(16, 2)
wrn_40_1 = _wrn(40, 1)
wrn_40_2 = _wrn(40, 2)
