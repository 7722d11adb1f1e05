"""Pixel pairings and the differentiable gather of cubical diagrams.

A backend finds, without gradients, which pixel creates and which destroys each class (a
:class:`PixelPairing`); :func:`gather_diagrams` reads their values from the differentiable
pixel values, so every backend gets gradients the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from ..diagrams import Diagrams
from ..rips.h0 import numba_available

__all__ = ["PixelPairing", "gather_diagrams", "pad_pixel_lists"]


@dataclass(frozen=True)
class PixelPairing:
    """Generators of a batch of cubical diagrams, per homology dimension.

    ``birth_pixels[d]`` and ``death_pixels[d]`` are ``(B, K_d)`` long flat pixel indices (``-1``
    for padding; ``death_pixels`` also ``-1`` for an infinite bar), ``mask[d]`` is ``(B, K_d)``
    bool.
    """

    birth_pixels: tuple[Tensor, ...]
    death_pixels: tuple[Tensor, ...]
    mask: tuple[Tensor, ...]


def pad_pixel_lists(per_image: list[tuple[Tensor, Tensor]], device: torch.device) -> tuple[Tensor, Tensor, Tensor]:
    """Pad per-image ``(birth (k,), death (k,))`` long pixel lists into ``(B, K)`` tensors and a mask."""
    k = max((b.shape[0] for b, _ in per_image), default=0)
    births = torch.full((len(per_image), k), -1, dtype=torch.long)
    deaths = torch.full((len(per_image), k), -1, dtype=torch.long)
    for i, (b, d) in enumerate(per_image):
        births[i, : b.shape[0]] = b
        deaths[i, : d.shape[0]] = d
    return births.to(device), deaths.to(device), births.to(device) >= 0


def gather_diagrams(values: Tensor, pairing: PixelPairing, *, keep_infinite: bool) -> Diagrams:
    """Diagrams whose values are those of the pairing's pixels.

    Parameters
    ----------
    values : Tensor
        ``(B, P)`` differentiable filtration values of the pixels, ``+inf`` outside the complex
        (masked pixels).
    pairing
        The generators found by a backend.
    keep_infinite
        Infinite bars (a death pixel of ``-1``, or one outside the complex) get death ``inf``
        and death pixel ``-1`` when True, and are masked out otherwise.

    Zero-persistence pairs are masked out. Masked rows keep their slot (no compaction), so shapes
    depend on the pairing only. Every dimension goes through one sequence of operations (their
    rows side by side), then is split off as contiguous tensors; on the CPU with numba, the index
    work is one compiled pass and the values are read by one gather.
    """
    sizes = [births.shape[1] for births in pairing.birth_pixels]
    births, deaths = torch.cat(pairing.birth_pixels, 1), torch.cat(pairing.death_pixels, 1)
    valid = torch.cat(pairing.mask, 1)
    if values.device.type == "cpu" and numba_available():
        pairs, keep, births, deaths = _select_numba(values, births, deaths, valid, keep_infinite)
    else:
        pairs, keep, births, deaths = _select_torch(values, births, deaths, valid, keep_infinite)
    split = lambda t: tuple(part.contiguous() for part in t.split(sizes, dim=1))  # noqa: E731
    return Diagrams(split(pairs), split(keep), birth_pixels=split(births), death_pixels=split(deaths))


def _select_torch(values: Tensor, births: Tensor, deaths: Tensor, valid: Tensor, keep_infinite: bool):
    """``(pairs (B, K, 2), keep (B, K), birth pixels, death pixels)`` by tensor operations."""
    total = births.shape[1]
    both = values.gather(1, torch.cat([births, deaths], 1).clamp_min(0))
    birth, death = both[:, :total], both[:, total:]
    infinite = valid & ((deaths < 0) | torch.isinf(death))
    finite_keep = (death > birth) & valid & ~infinite
    keep = finite_keep | infinite if keep_infinite else finite_keep
    dropped = ~keep
    pairs = torch.stack([birth, death.masked_fill(infinite, float("inf"))], dim=-1).masked_fill(dropped.unsqueeze(-1), 0)
    return pairs, keep, births.masked_fill(dropped, -1), deaths.masked_fill(~finite_keep, -1)


def _select_numba(values: Tensor, births: Tensor, deaths: Tensor, valid: Tensor, keep_infinite: bool):
    """:func:`_select_torch` with the index work in one compiled pass (CPU tensors)."""
    from ._union_find_numba import select_pairs

    array = values.detach()
    if array.dtype in (torch.float16, torch.bfloat16):  # NumPy has no bfloat16; float32 orders them alike
        array = array.float()
    index, filled, fill, keep, births, deaths = (torch.from_numpy(a) for a in select_pairs(
        array.contiguous().numpy(), births.contiguous().numpy(), deaths.contiguous().numpy(),
        valid.contiguous().numpy(), keep_infinite))
    pairs = torch.where(filled, fill.to(values.dtype), values.gather(1, index.flatten(1)).view(index.shape))
    return pairs, keep, births, deaths
