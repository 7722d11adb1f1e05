"""MobileNetV2 for CIFAR as in the KD literature ("mobile_half": expansion 6, width 0.5)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .base import CifarModel

# expansion t, channels c, repeats n, first stride s
SETTING = [(1, 16, 1, 1), (6, 24, 2, 1), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
           (6, 160, 3, 2), (6, 320, 1, 1)]


def _conv_bn_relu(inp, oup, kernel, stride):
    return nn.Sequential(
        nn.Conv2d(inp, oup, kernel, stride, kernel // 2, bias=False), nn.BatchNorm2d(oup),
        nn.ReLU(inplace=True),
    )


class InvertedResidual(nn.Module):
    """Pointwise expand - depthwise 3×3 - pointwise linear, residual when shapes agree."""

    def __init__(self, inp: int, oup: int, stride: int, expand: int):
        super().__init__()
        hidden = inp * expand
        self.use_res = stride == 1 and inp == oup
        self.conv = nn.Sequential(
            nn.Conv2d(inp, hidden, 1, bias=False), nn.BatchNorm2d(hidden), nn.ReLU(inplace=True),
            nn.Conv2d(hidden, hidden, 3, stride, 1, groups=hidden, bias=False),
            nn.BatchNorm2d(hidden), nn.ReLU(inplace=True),
            nn.Conv2d(hidden, oup, 1, bias=False), nn.BatchNorm2d(oup),
        )

    def forward(self, x):
        return x + self.conv(x) if self.use_res else self.conv(x)


class MobileNetV2(CifarModel):
    """MobileNetV2 with a stride-2 stem for 32×32 inputs.

    Parameters
    ----------
    expansion : int
        Expansion ratio ``T`` of all but the first group.
    width_mult : float
        Channel multiplier (0.5 for "mobile_half").
    num_classes : int
        Number of logits.

    Features at 32×32 for width 0.5: ``16@16, 12@16, 16@8, 48@4, 160@2``, pooled 1280.
    Stage outputs end with a linear bottleneck, so ``preact_stages`` equals ``stages`` except
    for the stem (its value before the ReLU).
    """

    def __init__(self, expansion: int = 6, width_mult: float = 0.5, num_classes: int = 100):
        super().__init__()
        in_ch = int(32 * width_mult)
        # RepDistiller's module names (conv1, blocks, conv2, classifier), so its checkpoints load
        self.conv1 = _conv_bn_relu(3, in_ch, 3, 2)
        groups = []
        for t, c, n, s in SETTING:
            out_ch = int(c * width_mult)
            layers = []
            for j in range(n):
                layers.append(InvertedResidual(in_ch, out_ch, s if j == 0 else 1,
                                               t if t == 1 else expansion))
                in_ch = out_ch
            groups.append(nn.Sequential(*layers))
        self.blocks = nn.ModuleList(groups)
        self.last_channel = 1280
        self.conv2 = _conv_bn_relu(in_ch, self.last_channel, 1, 1)
        self.classifier = nn.Sequential(nn.Linear(self.last_channel, num_classes))
        self.stage_channels = [int(32 * width_mult)] + [int(c * width_mult) for c in (24, 32, 96, 320)]
        self.pooled_channels = self.last_channel
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)

    def forward_features(self, x):
        pre = self.conv1[1](self.conv1[0](x))
        out = F.relu(pre)
        stages, preacts = [out], [pre]
        # stage boundaries of the KD literature: after groups 1, 2, 4 and 6
        for i, group in enumerate(self.blocks):
            out = group(out)
            if i in (1, 2, 4, 6):
                stages.append(out)
                preacts.append(out)
        pooled = torch.flatten(F.adaptive_avg_pool2d(self.conv2(out), 1), 1)
        return stages, preacts, pooled

    def classify(self, pooled):
        return self.classifier(pooled)


def mobile_half(num_classes: int = 100) -> MobileNetV2:
    """MobileNetV2, expansion 6, width 0.5 (the KD literature's "mobile_half")."""
    return MobileNetV2(6, 0.5, num_classes)
