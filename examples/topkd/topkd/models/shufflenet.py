"""ShuffleNetV1 (groups 3) and ShuffleNetV2 (size 1) for CIFAR as in the KD literature."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .base import CifarModel


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """Shuffle ``(B, C, H, W)`` channels across ``groups`` (C divisible by ``groups``)."""
    b, c, h, w = x.shape
    return x.view(b, groups, c // groups, h, w).transpose(1, 2).reshape(b, c, h, w)


class V1Bottleneck(nn.Module):
    """ShuffleNetV1 unit: grouped 1×1, shuffle, depthwise 3×3, grouped 1×1; stride 2 units
    concatenate an average-pooled shortcut. ``forward`` returns ``(out, preact)``."""

    def __init__(self, in_planes: int, out_planes: int, stride: int, groups: int):
        super().__init__()
        mid = out_planes // 4
        self.g1 = 1 if in_planes == 24 else groups
        self.stride = stride
        self.conv1 = nn.Conv2d(in_planes, mid, 1, groups=self.g1, bias=False)
        self.bn1 = nn.BatchNorm2d(mid)
        self.conv2 = nn.Conv2d(mid, mid, 3, stride, 1, groups=mid, bias=False)
        self.bn2 = nn.BatchNorm2d(mid)
        self.conv3 = nn.Conv2d(mid, out_planes, 1, groups=groups, bias=False)
        self.bn3 = nn.BatchNorm2d(out_planes)

    def forward(self, x):
        out = channel_shuffle(F.relu(self.bn1(self.conv1(x))), self.g1)
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        if self.stride == 2:
            preact = torch.cat([out, F.avg_pool2d(x, 3, 2, 1)], 1)
        else:
            preact = out + x
        return F.relu(preact), preact


class ShuffleNetV1(CifarModel):
    """ShuffleNetV1 for 32×32 inputs.

    Parameters
    ----------
    out_planes : sequence of 3 int
        Stage widths (``[240, 480, 960]`` for groups 3).
    num_blocks : sequence of 3 int
        Units per stage (``[4, 8, 4]``).
    groups : int
        Group count of the 1×1 convolutions.
    num_classes : int
        Number of logits.

    Features at 32×32: ``24@32, 240@16, 480@8, 960@4``, pooled 960.
    """

    def __init__(self, out_planes=(240, 480, 960), num_blocks=(4, 8, 4), groups: int = 3,
                 num_classes: int = 100):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 24, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(24)
        in_planes = 24
        for i, (planes, n) in enumerate(zip(out_planes, num_blocks)):
            units = []
            for j in range(n):
                # the stride-2 unit concatenates its input, so it produces the difference
                units.append(V1Bottleneck(in_planes, planes - (in_planes if j == 0 else 0),
                                          2 if j == 0 else 1, groups))
                in_planes = planes
            # RepDistiller's module names, so its checkpoints load
            setattr(self, f"layer{i + 1}", nn.Sequential(*units))
        self.linear = nn.Linear(out_planes[-1], num_classes)
        self.stage_channels = [24] + list(out_planes)
        self.pooled_channels = out_planes[-1]

    def forward_features(self, x):
        pre = self.bn1(self.conv1(x))
        out = F.relu(pre)
        stages, preacts = [out], [pre]
        for layer in (self.layer1, self.layer2, self.layer3):
            for unit in layer:
                out, pre = unit(out)
            stages.append(out)
            preacts.append(pre)
        pooled = torch.flatten(F.adaptive_avg_pool2d(out, 1), 1)
        return stages, preacts, pooled

    def classify(self, pooled):
        return self.linear(pooled)


class V2Basic(nn.Module):
    """ShuffleNetV2 basic unit: split channels in half, transform one half, concat, shuffle.
    ``forward`` returns ``(out, preact)``."""

    def __init__(self, channels: int):
        super().__init__()
        c = channels // 2
        self.conv1 = nn.Conv2d(c, c, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c)
        self.conv2 = nn.Conv2d(c, c, 3, 1, 1, groups=c, bias=False)
        self.bn2 = nn.BatchNorm2d(c)
        self.conv3 = nn.Conv2d(c, c, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(c)

    def forward(self, x):
        x1, x2 = x.chunk(2, dim=1)
        branch = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x2)))))
        branch = self.bn3(self.conv3(branch))
        out = channel_shuffle(torch.cat([x1, F.relu(branch)], 1), 2)
        return out, torch.cat([x1, branch], 1)


class V2Down(nn.Module):
    """ShuffleNetV2 stride-2 unit: two branches, each producing half of ``out_channels``."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        mid = out_channels // 2
        # left branch: conv1-2; right branch: conv3-5 (RepDistiller's names)
        self.conv1 = nn.Conv2d(in_channels, in_channels, 3, 2, 1, groups=in_channels, bias=False)
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.conv2 = nn.Conv2d(in_channels, mid, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(mid)
        self.conv3 = nn.Conv2d(in_channels, mid, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(mid)
        self.conv4 = nn.Conv2d(mid, mid, 3, 2, 1, groups=mid, bias=False)
        self.bn4 = nn.BatchNorm2d(mid)
        self.conv5 = nn.Conv2d(mid, mid, 1, bias=False)
        self.bn5 = nn.BatchNorm2d(mid)

    def forward(self, x):
        left = F.relu(self.bn2(self.conv2(self.bn1(self.conv1(x)))))
        right = F.relu(self.bn3(self.conv3(x)))
        right = F.relu(self.bn5(self.conv5(self.bn4(self.conv4(right)))))
        return channel_shuffle(torch.cat([left, right], 1), 2)


class ShuffleNetV2(CifarModel):
    """ShuffleNetV2 for 32×32 inputs.

    Parameters
    ----------
    out_channels : sequence of 4 int
        Three stage widths, then the width of the final 1×1 conv (size 1:
        ``(116, 232, 464, 1024)``).
    num_blocks : sequence of 3 int
        Basic units per stage after its stride-2 unit (``(3, 7, 3)``).
    num_classes : int
        Number of logits.

    Features at 32×32: ``24@32, 116@16, 232@8, 464@4``, pooled 1024.
    """

    def __init__(self, out_channels=(116, 232, 464, 1024), num_blocks=(3, 7, 3),
                 num_classes: int = 100):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 24, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(24)
        in_ch = 24
        for i, (ch, n) in enumerate(zip(out_channels[:3], num_blocks)):
            setattr(self, f"layer{i + 1}",
                    nn.Sequential(V2Down(in_ch, ch), *[V2Basic(ch) for _ in range(n)]))
            in_ch = ch
        self.conv2 = nn.Conv2d(in_ch, out_channels[3], 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels[3])
        self.linear = nn.Linear(out_channels[3], num_classes)
        self.stage_channels = [24] + list(out_channels[:3])
        self.pooled_channels = out_channels[3]

    def forward_features(self, x):
        pre = self.bn1(self.conv1(x))
        out = F.relu(pre)
        stages, preacts = [out], [pre]
        for layer in (self.layer1, self.layer2, self.layer3):
            out = layer[0](out)
            pre = out
            for unit in layer[1:]:
                out, pre = unit(out)
            stages.append(out)
            preacts.append(pre)
        out = F.relu(self.bn2(self.conv2(out)))
        pooled = torch.flatten(F.adaptive_avg_pool2d(out, 1), 1)
        return stages, preacts, pooled

    def classify(self, pooled):
        return self.linear(pooled)


def shufflenet_v1(num_classes: int = 100) -> ShuffleNetV1:
    """ShuffleNetV1, groups 3, widths [240, 480, 960], units [4, 8, 4]."""
    return ShuffleNetV1(num_classes=num_classes)


def shufflenet_v2(num_classes: int = 100) -> ShuffleNetV2:
    """ShuffleNetV2 size 1, widths (116, 232, 464, 1024), units (3, 7, 3)."""
    return ShuffleNetV2(num_classes=num_classes)
