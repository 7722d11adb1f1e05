"""VGG with BatchNorm for CIFAR as in the KD literature (RepDistiller).

Five conv blocks (configs S = vgg8, A = vgg11, B = vgg13, D = vgg16, E = vgg19), the last ReLU
of each block moved out of the block (so pre-activation features exist), max-pooling between
blocks except before the fifth at 32 px, global average pooling and one ``Linear(512, C)``.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .base import CifarModel

CONFIGS = {
    "S": [[64], [128], [256], [512], [512]],
    "A": [[64], [128], [256, 256], [512, 512], [512, 512]],
    "B": [[64, 64], [128, 128], [256, 256], [512, 512], [512, 512]],
    "D": [[64, 64], [128, 128], [256, 256, 256], [512, 512, 512], [512, 512, 512]],
    "E": [[64, 64], [128, 128], [256, 256, 256, 256], [512, 512, 512, 512], [512, 512, 512, 512]],
}


def _block(widths, in_channels):
    layers = []
    for w in widths:
        layers += [nn.Conv2d(in_channels, w, 3, padding=1), nn.BatchNorm2d(w), nn.ReLU(inplace=True)]
        in_channels = w
    return nn.Sequential(*layers[:-1])


class VGG(CifarModel):
    """VGG-BN for CIFAR.

    Parameters
    ----------
    cfg : str
        One of ``"S", "A", "B", "D", "E"``.
    num_classes : int
        Number of logits.

    Features at 32×32: ``64@32, 128@16, 256@8, 512@4, 512@4``, pooled 512.
    """

    def __init__(self, cfg: str, num_classes: int = 100):
        super().__init__()
        if cfg not in CONFIGS:
            raise ValueError(f"cfg must be one of {sorted(CONFIGS)}, got {cfg!r}")
        widths = CONFIGS[cfg]
        in_ch = 3
        for i, w in enumerate(widths):
            # RepDistiller's module names, so its checkpoints load
            setattr(self, f"block{i}", _block(w, in_ch))
            in_ch = w[-1]
        self.classifier = nn.Linear(512, num_classes)
        self.stage_channels = [w[-1] for w in widths]
        self.pooled_channels = 512
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)

    def forward_features(self, x):
        in_size = x.shape[2]
        stages, preacts = [], []
        out = x
        for i in range(5):
            block = getattr(self, f"block{i}")
            # pools after blocks 0-2; the fourth pool only for inputs larger than 32 px
            if i in (1, 2, 3) or (i == 4 and in_size > 32):
                out = F.max_pool2d(out, 2)
            pre = block(out)
            out = F.relu(pre)
            preacts.append(pre)
            stages.append(out)
        pooled = torch.flatten(F.adaptive_avg_pool2d(out, 1), 1)
        return stages, preacts, pooled

    def classify(self, pooled):
        return self.classifier(pooled)


def _vgg(cfg, depth):
    def build(num_classes: int = 100) -> VGG:
        return VGG(cfg, num_classes)

    build.__doc__ = f"VGG{depth}-BN for CIFAR (config {cfg})."
    return build


vgg8 = _vgg("S", 8)
vgg11 = _vgg("A", 11)
vgg13 = _vgg("B", 13)
vgg16 = _vgg("D", 16)
vgg19 = _vgg("E", 19)
