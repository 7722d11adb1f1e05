"""CIFAR ResNets of the KD literature (He et al. 2016, as in RepDistiller/CRD).

resnet{8,14,20,32,44,56,110}: widths [16, 16, 32, 64], resnet8x4/resnet32x4: widths
[32, 64, 128, 256]; ``(depth - 2) / 6`` basic blocks per stage; 1×1 conv + BN shortcut when
the shape changes.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .base import CifarModel


class BasicBlock(nn.Module):
    """Two 3×3 conv-BN layers with an identity (or 1×1 conv + BN) shortcut.

    ``forward`` returns ``(out, preact)``: the block output and its value before the final ReLU.
    """

    def __init__(self, in_planes: int, planes: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = None
        if stride != 1 or in_planes != planes:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_planes, planes, 1, stride, bias=False), nn.BatchNorm2d(planes)
            )

    def forward(self, x: torch.Tensor):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        preact = out + (x if self.downsample is None else self.downsample(x))
        return F.relu(preact), preact


class CifarResNet(CifarModel):
    """ResNet for 32×32 inputs.

    Parameters
    ----------
    depth : int
        ``6n + 2``.
    widths : sequence of 4 int
        Stem width, then the three stage widths.
    num_classes : int
        Number of logits.

    Features: stem ``widths[0]@32``, stages ``widths[1]@32``, ``widths[2]@16``,
    ``widths[3]@8``; pooled ``widths[3]``.
    """

    def __init__(self, depth: int, widths, num_classes: int = 100):
        super().__init__()
        if (depth - 2) % 6 != 0:
            raise ValueError(f"depth must be 6n + 2, got {depth}")
        n = (depth - 2) // 6
        self.conv1 = nn.Conv2d(3, widths[0], 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        in_planes = widths[0]
        for i, (w, s) in enumerate(zip(widths[1:], (1, 2, 2))):
            blocks = []
            for j in range(n):
                blocks.append(BasicBlock(in_planes, w, s if j == 0 else 1))
                in_planes = w
            # RepDistiller's module names, so its checkpoints load
            setattr(self, f"layer{i + 1}", nn.Sequential(*blocks))
        self.fc = nn.Linear(widths[3], num_classes)
        self.stage_channels = list(widths)
        self.pooled_channels = widths[3]
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward_features(self, x):
        pre = self.bn1(self.conv1(x))
        out = F.relu(pre)
        stages, preacts = [out], [pre]
        for layer in (self.layer1, self.layer2, self.layer3):
            for block in layer:
                out, pre = block(out)
            stages.append(out)
            preacts.append(pre)
        pooled = torch.flatten(F.adaptive_avg_pool2d(out, 1), 1)
        return stages, preacts, pooled

    def classify(self, pooled):
        return self.fc(pooled)


def _resnet(depth, widths):
    def build(num_classes: int = 100) -> CifarResNet:
        return CifarResNet(depth, widths, num_classes)

    build.__doc__ = f"CIFAR ResNet, depth {depth}, widths {widths}."
    return build


resnet8 = _resnet(8, (16, 16, 32, 64))
resnet14 = _resnet(14, (16, 16, 32, 64))
resnet20 = _resnet(20, (16, 16, 32, 64))
resnet32 = _resnet(32, (16, 16, 32, 64))
resnet44 = _resnet(44, (16, 16, 32, 64))
resnet56 = _resnet(56, (16, 16, 32, 64))
resnet110 = _resnet(110, (16, 16, 32, 64))
resnet8x4 = _resnet(8, (32, 64, 128, 256))
resnet32x4 = _resnet(32, (32, 64, 128, 256))
