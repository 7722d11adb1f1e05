"""ImageNet-1K for the suite: torchvision's ResNet-18/34/50 and MobileNetV2 with the suite's
``(logits, features)`` interface and the standard ``ImageFolder`` data pipeline.

The models subclass torchvision's own classes, so their state-dict keys are torchvision's: a
teacher file such as ``resnet34-b627a593.pth`` (a bare state dict) loads as is with
:func:`topkd.engine.load_model_weights`, and a student trained here loads into
``torchvision.models.resnet18()``.

Features, for a 224×224 input (channels@side):

=============  ===============================================================  ======
model          ``stages`` (stem first)                                          pooled
=============  ===============================================================  ======
resnet18/34    64@112, 64@56, 128@28, 256@14, 512@7                             512
resnet50       64@112, 256@56, 512@28, 1024@14, 2048@7                          2048
mobilenet_v2   32@112, 24@56, 32@28, 96@14, 320@7 (the KD literature's cuts)    1280
=============  ===============================================================  ======

``preact_stages`` are the same tensors before the stage's last ReLU (ResNets: the last block's
``bn + shortcut``; the stem: ``bn1``); MobileNetV2's stages end in linear bottlenecks, so only
its stem differs.
"""
from __future__ import annotations

import os
from typing import Callable, Dict, Optional

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Dataset
from torchvision.models import mobilenetv2 as tv_mobilenet
from torchvision.models import resnet as tv_resnet

from .models.base import CifarModel

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
NORMS = ("batch", "sync", "frozen")


# ------------------------------------------------------------------------------------ models

def _block_forward(block: nn.Module, x: torch.Tensor):
    """``(relu(preact), preact)`` of a torchvision BasicBlock/Bottleneck (its own forward
    applies the ReLU in place and loses ``preact``)."""
    identity = x if block.downsample is None else block.downsample(x)
    out = block.relu(block.bn1(block.conv1(x)))
    if isinstance(block, tv_resnet.Bottleneck):
        out = block.relu(block.bn2(block.conv2(out)))
        preact = block.bn3(block.conv3(out)) + identity
    else:
        preact = block.bn2(block.conv2(out)) + identity
    return F.relu(preact), preact


class ImageNetResNet(CifarModel, tv_resnet.ResNet):
    """torchvision ResNet returning ``(logits (B, num_classes), features)``.

    Parameters
    ----------
    block : type
        ``torchvision.models.resnet.BasicBlock`` or ``Bottleneck``.
    layers : list of int
        Blocks per stage.
    num_classes : int
    norm_layer : callable, optional
        BatchNorm class (default ``nn.BatchNorm2d``).
    """

    def __init__(self, block, layers, num_classes: int = 1000,
                 norm_layer: Optional[Callable[..., nn.Module]] = None):
        super().__init__(block, layers, num_classes=num_classes, norm_layer=norm_layer)
        width = 1 if block is tv_resnet.BasicBlock else 4
        self.stage_channels = [64] + [c * width for c in (64, 128, 256, 512)]
        self.pooled_channels = 512 * width

    def forward_features(self, x: torch.Tensor):
        """``(stages, preact_stages, pooled)`` for images ``(B, 3, H, W)``."""
        pre = self.bn1(self.conv1(x))
        out = F.relu(pre)
        stages, preacts = [out], [pre]
        out = self.maxpool(out)
        for layer in (self.layer1, self.layer2, self.layer3, self.layer4):
            out = layer[:-1](out)
            out, pre = _block_forward(layer[-1], out)
            stages.append(out)
            preacts.append(pre)
        return stages, preacts, torch.flatten(self.avgpool(out), 1)

    def classify(self, pooled: torch.Tensor) -> torch.Tensor:
        """``(B, C_pooled)`` -> logits ``(B, num_classes)``."""
        return self.fc(pooled)


class ImageNetMobileNetV2(CifarModel, tv_mobilenet.MobileNetV2):
    """torchvision MobileNetV2 (width 1.0, dropout 0.2) returning ``(logits, features)``.

    Parameters
    ----------
    num_classes : int
    norm_layer : callable, optional
    """

    # features[i] closing each stage after the stem (resolution 56, 28, 14, 7)
    STAGE_ENDS = (3, 6, 13, 17)

    def __init__(self, num_classes: int = 1000,
                 norm_layer: Optional[Callable[..., nn.Module]] = None):
        super().__init__(num_classes=num_classes, norm_layer=norm_layer)
        self.stage_channels = [32, 24, 32, 96, 320]
        self.pooled_channels = self.last_channel

    def forward_features(self, x: torch.Tensor):
        """``(stages, preact_stages, pooled)`` for images ``(B, 3, H, W)``."""
        stem = self.features[0]
        pre = stem[1](stem[0](x))
        out = stem[2](pre)
        stages, preacts = [out], [pre]
        start = 1
        for end in self.STAGE_ENDS:
            out = self.features[start:end + 1](out)
            stages.append(out)
            preacts.append(out)
            start = end + 1
        out = self.features[start:](out)
        return stages, preacts, torch.flatten(F.adaptive_avg_pool2d(out, 1), 1)

    def classify(self, pooled: torch.Tensor) -> torch.Tensor:
        """``(B, 1280)`` -> logits ``(B, num_classes)`` (dropout in training mode)."""
        return self.classifier(pooled)


IMAGENET_MODELS: Dict[str, Callable[..., CifarModel]] = {
    "resnet18": lambda **kw: ImageNetResNet(tv_resnet.BasicBlock, [2, 2, 2, 2], **kw),
    "resnet34": lambda **kw: ImageNetResNet(tv_resnet.BasicBlock, [3, 4, 6, 3], **kw),
    "resnet50": lambda **kw: ImageNetResNet(tv_resnet.Bottleneck, [3, 4, 6, 3], **kw),
    "mobilenet_v2": lambda **kw: ImageNetMobileNetV2(**kw),
}


def norm_layer(norm: str) -> Callable[..., nn.Module]:
    """BatchNorm class of a ``train.norm`` setting.

    ``"batch"`` and ``"sync"`` give ``nn.BatchNorm2d`` (``"sync"`` is converted to
    ``nn.SyncBatchNorm`` after building, see :func:`topkd.distributed.convert_sync_batchnorm`);
    ``"frozen"`` gives ``torchvision.ops.FrozenBatchNorm2d`` (fixed statistics and affine: for
    fine-tuning, and for exactness checks where per-rank batch statistics must not matter).
    """
    if norm not in NORMS:
        raise ValueError(f"norm must be one of {NORMS}, got {norm!r}")
    if norm == "frozen":
        from torchvision.ops import FrozenBatchNorm2d

        return FrozenBatchNorm2d
    return nn.BatchNorm2d


def build_imagenet_model(name: str, num_classes: int = 1000, norm: str = "batch") -> CifarModel:
    """Build ``resnet18``, ``resnet34``, ``resnet50`` or ``mobilenet_v2`` (torchvision's V2,
    not the V1 several KD papers ran under that name).

    Parameters
    ----------
    name : str
    num_classes : int
    norm : {"batch", "sync", "frozen"}
        See :func:`norm_layer`.

    Returns
    -------
    CifarModel
        Maps ``(B, 3, H, W)`` to ``(logits (B, num_classes), features)``; any ``H, W >= 32``.

    Raises
    ------
    ValueError
        Unknown name or norm, bad ``num_classes``.
    """
    if name not in IMAGENET_MODELS:
        raise ValueError(f"unknown ImageNet model {name!r}; known: {', '.join(IMAGENET_MODELS)}")
    if not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive int, got {num_classes!r}")
    return IMAGENET_MODELS[name](num_classes=num_classes, norm_layer=norm_layer(norm))


# -------------------------------------------------------------------------------------- data

def imagenet_transforms(train: bool, input_size: int = 224, resize: int = 256):
    """The standard ImageNet transforms: RandomResizedCrop(``input_size``) + horizontal flip
    for training, Resize(``resize``) + CenterCrop(``input_size``) for evaluation, then
    ToTensor and normalisation with :data:`IMAGENET_MEAN` / :data:`IMAGENET_STD`."""
    from torchvision import transforms as T

    for arg, value in (("input_size", input_size), ("resize", resize)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{arg} must be a positive int, got {value!r}")
    norm = [T.ToTensor(), T.Normalize(IMAGENET_MEAN, IMAGENET_STD)]
    if train:
        return T.Compose([T.RandomResizedCrop(input_size), T.RandomHorizontalFlip()] + norm)
    return T.Compose([T.Resize(resize), T.CenterCrop(input_size)] + norm)


def image_folder(root: str, split: str, train: bool, input_size: int = 224,
                 resize: int = 256) -> Dataset:
    """``torchvision.datasets.ImageFolder`` over ``root/split`` (one sub-folder per class) with
    :func:`imagenet_transforms`.

    Raises
    ------
    FileNotFoundError
        When ``root/split`` does not exist (the message says which layout is expected).
    """
    from torchvision.datasets import ImageFolder

    folder = os.path.join(os.path.expanduser(root), split)
    if not os.path.isdir(folder):
        raise FileNotFoundError(
            f"ImageNet folder {folder!r} not found: dataset.root must hold train/ and val/, each "
            "with one sub-folder of images per class (val/ reorganised into class folders, e.g. "
            "with the usual valprep.sh)")
    return ImageFolder(folder, transform=imagenet_transforms(train, input_size, resize))
