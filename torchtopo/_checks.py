"""One family of input checks, shared by every module; each names the offending argument.

The rules every public function follows:

- a wrong *type* or *dtype* (not a tensor, an integer tensor where floats are needed, a mask
  that is not bool, a float where an int is needed) is a ``TypeError``;
- a wrong *shape* or *value* (rank, sizes, NaN or inf, out of range) is a ``ValueError``;
- padding, i.e. the entries a ``mask`` marks False, may hold anything, NaN and inf included: it
  is never read, so it is never checked.
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Sequence

import torch
from torch import Tensor


def _describe(x: Any) -> str:
    return f"a tensor of dtype {x.dtype}" if isinstance(x, Tensor) else type(x).__name__


def check_tensor(x: Any, name: str) -> None:
    """``x`` must be a dense tensor that holds values (strided, not on the ``meta`` device)."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.layout != torch.strided:
        raise TypeError(f"{name} must be a dense (strided) tensor, got layout {x.layout}; call .to_dense() first")
    if x.is_meta:
        raise ValueError(f"{name} is on the 'meta' device, which holds no values; move it to a real device")


def check_floating(x: Any, name: str) -> None:
    """``x`` must be a floating-point tensor that holds values."""
    check_tensor(x, name)
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got {_describe(x)}; call .float() first")


def check_shape(x: Tensor, name: str, shapes: str, ok: bool) -> None:
    if not ok:
        raise ValueError(f"{name} must have shape {shapes}, got {tuple(x.shape)}")


def check_mask(mask: Tensor | None, lead: Sequence[int], *, masks: tuple[str, Tensor], name: str = "mask") -> None:
    """``mask`` must be None or a bool tensor of shape ``lead`` on the device of the tensor it
    masks (``masks``: that tensor's name and the tensor)."""
    if mask is None:
        return
    check_tensor(mask, name)
    if mask.dtype != torch.bool:
        raise TypeError(f"{name} must be a bool tensor (True = real entry), got {_describe(mask)}")
    if tuple(mask.shape) != tuple(lead):
        raise ValueError(f"{name} must have shape {tuple(lead)}, got {tuple(mask.shape)}")
    masked_name, masked = masks
    if mask.device != masked.device:
        raise ValueError(f"{name} must be on the device of {masked_name} ({masked.device}), got {mask.device}")


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


def _real(x: Tensor, mask: Tensor | None) -> Tensor:
    """``x`` with its padding (``mask`` False, broadcast over trailing axes) replaced by zeros."""
    if mask is None:
        return x
    return torch.where(mask.reshape(*mask.shape, *([1] * (x.dim() - mask.dim()))), x, 0)


def check_no_nan(x: Tensor, name: str, mask: Tensor | None = None) -> None:
    """No NaN among the real entries of ``x`` (infinities are allowed, e.g. infinite deaths)."""
    check_all(~torch.isnan(_real(x.detach(), mask)), f"{name} contains NaN")


def check_finite(x: Tensor, name: str, mask: Tensor | None = None) -> None:
    """No NaN and no infinity among the real entries of ``x`` (``mask`` True, leading axes).

    On the CPU a finite sum settles it in one reduction (a NaN or an infinity makes the sum NaN or
    infinite); only a sum that is not finite (an overflow, or a bad entry) is checked entry by entry.
    """
    real = _real(x.detach(), mask)
    if real.device.type == "cpu" and real.is_floating_point() and torch.isfinite(real.sum()):
        return
    check_all(torch.isfinite(real), f"{name} must be finite, got NaN or inf")


def check_int(value: Any, name: str, minimum: int | None = None) -> int:
    """``value`` as an int: refuses floats (``2.5`` and ``2.0`` alike), bools and strings with a
    ``TypeError`` and values below ``minimum`` with a ``ValueError``."""
    # A plain int first: the check against the abstract class costs as much as a small call's checks.
    if type(value) is not int and (isinstance(value, bool) or not isinstance(value, numbers.Integral)):
        raise TypeError(f"{name} must be an int, got {value!r}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value!r}")
    return int(value)


def check_ints(values: Any, name: str, length: int, minimum: int | None = None) -> tuple[int, ...]:
    """A sequence of exactly ``length`` ints, each checked as :func:`check_int`."""
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or len(values) != length:
        raise ValueError(f"{name} must be a sequence of {length} ints, got {values!r}")
    return tuple(check_int(v, f"{name}[{i}]", minimum) for i, v in enumerate(values))


def check_number(value: Any, name: str) -> float:
    """``value`` as a finite float: ``TypeError`` for non-numbers (strings, None), ``ValueError``
    for NaN and infinities."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number, got {value!r}")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return float(value)


def check_positive(value: Any, name: str) -> float:
    """``value`` as a positive finite float."""
    if check_number(value, name) <= 0:
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")
    return float(value)


def check_choice(value: Any, name: str, choices: Sequence[Any]) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {list(choices)}, got {value!r}")


def check_range(values: Any, name: str, n: int, *, allow_unset: bool = False) -> tuple[float | None, ...]:
    """``values`` as ``n`` floats, in (min, max) pairs with ``max >= min``.

    With ``allow_unset``, ``None`` or NaN entries are unset (returned as ``None``; a fit fills
    them) and ``values=None`` means all unset. A non-sequence or a non-number entry is a
    ``TypeError``; a wrong length, an infinite entry or a maximum below its minimum a
    ``ValueError``.
    """
    if values is None and allow_unset:
        return (None,) * n
    expected = f"{n} finite numbers{' or None' if allow_unset else ''}"
    if isinstance(values, (str, bytes)) or not isinstance(values, (Sequence, Tensor)) and not hasattr(values, "__array__"):
        raise TypeError(f"{name} must be a sequence of {expected}, got {values!r}")
    items = list(values.tolist() if hasattr(values, "tolist") else values)
    if len(items) != n:
        raise ValueError(f"{name} must hold {expected}, got {len(items)} entries: {values!r}")
    out: list[float | None] = []
    for i, v in enumerate(items):
        if allow_unset and (v is None or isinstance(v, numbers.Real) and math.isnan(v)):
            out.append(None)
        else:
            out.append(check_number(v, f"{name}[{i}]"))
    for lo, hi in zip(out[::2], out[1::2]):
        if lo is not None and hi is not None and hi < lo:
            raise ValueError(f"{name}: each maximum must be >= its minimum, got {values!r}")
    return tuple(out)
