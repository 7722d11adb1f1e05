"""One-line input checks shared by the modules; each names the offending argument."""

from __future__ import annotations

import math
from typing import Any, Sequence

import torch
from torch import Tensor


def check_floating(x: Tensor, name: str) -> None:
    if not isinstance(x, Tensor) or not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got {type(x).__name__}"
                        f"{'' if not isinstance(x, Tensor) else ' of dtype ' + str(x.dtype)}")


def check_shape(x: Tensor, name: str, shapes: str, ok: bool) -> None:
    if not ok:
        raise ValueError(f"{name} must have shape {shapes}, got {tuple(x.shape)}")


def check_mask(mask: Tensor | None, lead: torch.Size, name: str = "mask") -> None:
    if mask is not None and (not isinstance(mask, Tensor) or mask.dtype != torch.bool or mask.shape != lead):
        got = f"{mask.dtype} {tuple(mask.shape)}" if isinstance(mask, Tensor) else type(mask).__name__
        raise ValueError(f"{name} must be a bool tensor of shape {tuple(lead)}, got {got}")


def check_all(condition: Tensor, message: str) -> None:
    """Raise ``ValueError(message)`` unless the bool tensor ``condition`` is all True.

    On accelerators this is a device-side assert instead, so that a training step gets no host
    sync; the error then surfaces at the next synchronisation.
    """
    ok = condition.all()
    if condition.device.type == "cpu":
        if not ok:
            raise ValueError(message)
    else:
        torch._assert_async(ok, message)


def check_no_nan(x: Tensor, name: str) -> None:
    check_all(~torch.isnan(x), f"{name} contains NaN")


def check_positive(value: float, name: str) -> None:
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")


def check_choice(value: Any, name: str, choices: Sequence[Any]) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {list(choices)}, got {value!r}")
