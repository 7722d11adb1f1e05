"""ResNet50 for CIFAR: a 3×3 stride-1 stem (no max-pool) and bottleneck stages [3, 4, 6, 3]."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .base import CifarModel


class Bottleneck(nn.Module):
    """1×1 - 3×3 - 1×1 bottleneck with expansion 4; ``forward`` returns ``(out, preact)``."""

    expansion = 4

    def __init__(self, in_planes: int, planes: int, stride: int = 1):
        super().__init__()
        out_planes = planes * self.expansion
        self.conv1 = nn.Conv2d(in_planes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, out_planes, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_planes)
        self.shortcut = None
        if stride != 1 or in_planes != out_planes:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_planes, out_planes, 1, stride, bias=False), nn.BatchNorm2d(out_planes)
            )

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        preact = self.bn3(self.conv3(out)) + (x if self.shortcut is None else self.shortcut(x))
        return F.relu(preact), preact


class ResNet50(CifarModel):
    """ResNet50 with a CIFAR stem.

    Parameters
    ----------
    num_classes : int
        Number of logits.

    Features at 32×32: ``64@32, 256@32, 512@16, 1024@8, 2048@4``, pooled 2048.
    """

    def __init__(self, num_classes: int = 100):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        in_planes = 64
        setting = ((64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2))
        for i, (planes, n, stride) in enumerate(setting):
            blocks = []
            for j in range(n):
                blocks.append(Bottleneck(in_planes, planes, stride if j == 0 else 1))
                in_planes = planes * Bottleneck.expansion
            # RepDistiller's module names, so its checkpoints load
            setattr(self, f"layer{i + 1}", nn.Sequential(*blocks))
        self.linear = nn.Linear(2048, num_classes)
        self.stage_channels = [64, 256, 512, 1024, 2048]
        self.pooled_channels = 2048
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
        for layer in (self.layer1, self.layer2, self.layer3, self.layer4):
            for block in layer:
                out, pre = block(out)
            stages.append(out)
            preacts.append(pre)
        pooled = torch.flatten(F.adaptive_avg_pool2d(out, 1), 1)
        return stages, preacts, pooled

    def classify(self, pooled):
        return self.linear(pooled)


def resnet50(num_classes: int = 100) -> ResNet50:
    """ResNet50 with a 3×3 stride-1 stem for 32×32 inputs."""
    return ResNet50(num_classes)
