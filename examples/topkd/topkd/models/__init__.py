"""The CIFAR-100 model zoo of the KD literature and its registry.

>>> from topkd.models import build_model
>>> model = build_model("resnet20", num_classes=100)
>>> model.feature_channels()
{'stages': [16, 16, 32, 64], 'pooled': 64}
"""
from __future__ import annotations

from typing import Callable, Dict

from .base import CifarModel
from .mobilenetv2 import mobile_half
from .resnet import (resnet8, resnet8x4, resnet14, resnet20, resnet32, resnet32x4, resnet44,
                     resnet56, resnet110)
from .resnet50 import resnet50
from .shufflenet import shufflenet_v1, shufflenet_v2
from .vgg import vgg8, vgg11, vgg13, vgg16, vgg19
from .wrn import wrn_16_1, wrn_16_2, wrn_40_1, wrn_40_2

MODELS: Dict[str, Callable[..., CifarModel]] = {
    "resnet8": resnet8, "resnet14": resnet14, "resnet20": resnet20, "resnet32": resnet32,
    "resnet44": resnet44, "resnet56": resnet56, "resnet110": resnet110,
    "resnet8x4": resnet8x4, "resnet32x4": resnet32x4,
    "wrn_16_1": wrn_16_1, "wrn_16_2": wrn_16_2, "wrn_40_1": wrn_40_1, "wrn_40_2": wrn_40_2,
    "vgg8": vgg8, "vgg11": vgg11, "vgg13": vgg13, "vgg16": vgg16, "vgg19": vgg19,
    "ResNet50": resnet50, "MobileNetV2": mobile_half, "ShuffleV1": shufflenet_v1,
    "ShuffleV2": shufflenet_v2,
}
ALIASES = {"resnet50": "ResNet50", "mobile_half": "MobileNetV2", "mobilenetv2": "MobileNetV2",
           "shufflev1": "ShuffleV1", "shufflev2": "ShuffleV2"}


def canonical_name(name: str) -> str:
    """Registry name of ``name`` (accepts RepDistiller's aliases such as ``mobile_half``).

    Raises
    ------
    ValueError
        If ``name`` is not a known model.
    """
    if not isinstance(name, str):
        raise TypeError(f"model name must be a str, got {type(name).__name__}")
    if name in MODELS:
        return name
    if name.lower() in ALIASES:
        return ALIASES[name.lower()]
    raise ValueError(f"unknown model {name!r}; known: {', '.join(sorted(MODELS))}")


def build_model(name: str, num_classes: int = 100) -> CifarModel:
    """Build a zoo model by name.

    Parameters
    ----------
    name : str
        A key of :data:`MODELS` or an alias (``mobile_half``, ``resnet50``, ...).
    num_classes : int
        Number of logits (100 for CIFAR-100, 10 for digits).

    Returns
    -------
    CifarModel
        Maps ``(B, 3, 32, 32)`` to ``(logits (B, num_classes), features)``.
    """
    if not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive int, got {num_classes!r}")
    return MODELS[canonical_name(name)](num_classes=num_classes)


__all__ = ["CifarModel", "MODELS", "build_model", "canonical_name"]
