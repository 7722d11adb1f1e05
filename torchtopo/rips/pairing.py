"""Index-only persistence pairings: which edges give birth to and kill each class.

A backend computes a :class:`Pairing` without gradients; :func:`gather_diagrams` then reads the
values from the differentiable distance tensor, so every backend gets gradients the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import Tensor

from ..diagrams import Diagrams

__all__ = ["Pairing", "gather_diagrams", "pad_edge_lists"]


@dataclass(frozen=True)
class Pairing:
    """Generators of a batch of diagrams, per homology dimension.

    ``birth_edges[d]`` and ``death_edges[d]`` are ``(B, K_d, 2)`` long vertex indices (``-1`` for
    padding; ``death_edges`` also ``-1`` for an infinite bar), ``mask[d]`` is ``(B, K_d)`` bool.
    ``death_lengths``, when the backend measured them while the points were at hand, are the
    exact float64 lengths ``(B, K_0)`` of ``death_edges[0]`` (any value where there is none);
    the compiled gather reads them instead of measuring those edges again.
    """

    birth_edges: tuple[Tensor, ...]
    death_edges: tuple[Tensor, ...]
    mask: tuple[Tensor, ...]
    death_lengths: Tensor | None = None


def pad_edge_lists(per_cloud: list[tuple[Tensor, Tensor]], device: torch.device) -> tuple[Tensor, Tensor, Tensor]:
    """Pad per-cloud ``(birth (k, 2), death (k, 2))`` long edge lists into ``(B, K, 2)`` tensors and a mask."""
    k = max((b.shape[0] for b, _ in per_cloud), default=0)
    n = len(per_cloud)
    births = torch.full((n, k, 2), -1, dtype=torch.long)
    deaths = torch.full((n, k, 2), -1, dtype=torch.long)
    mask = torch.zeros(n, k, dtype=torch.bool)
    for i, (b, d) in enumerate(per_cloud):
        births[i, : b.shape[0]] = b
        deaths[i, : d.shape[0]] = d
        mask[i, : b.shape[0]] = True
    return births.to(device), deaths.to(device), mask.to(device)


def gather_diagrams(
    lengths: Callable[[Tensor], Tensor], pairing: Pairing, *, keep_infinite: bool, max_edge: float | None = None
) -> Diagrams:
    """Diagrams whose values are the lengths of the pairing's edges.

    Parameters
    ----------
    lengths
        Maps edges ``(B, K, 2)`` long to their differentiable lengths ``(B, K)``; entries of
        ``-1`` may give any finite value. See :func:`~torchtopo.rips.distances.edge_lengths`.
    pairing
        The generators found by a backend.
    keep_infinite
        Infinite bars (a real pair whose death edge is ``-1``) get death ``inf`` when True and
        are masked out otherwise.
    max_edge
        The cut of the filtration, applied here to dimension 0: a class whose death edge is
        longer than ``max_edge`` (by the exact length gathered, compared in float64) never dies.
        Higher dimensions are cut by the backend, which must order edges so that the same
        exact lengths decide (:func:`~torchtopo.rips.distances.measure_near_threshold`).

    Zero-persistence pairs are masked out (they are not points of a diagram). Masked rows keep
    their slot (no compaction), so shapes never depend on values and no host sync is needed.
    """
    # Few tensor operations: on one small cloud each costs about as much as the pairing itself.
    pairs, masks, births_out, deaths_out = [], [], [], []
    for dim, (births, deaths, mask) in enumerate(zip(pairing.birth_edges, pairing.death_edges, pairing.mask)):
        finite = deaths[..., 0] >= 0
        if dim == 0:  # every vertex enters a Rips filtration at 0: no (v, v) edge to measure
            death = lengths(deaths)
            birth = torch.zeros_like(death)
            if max_edge is not None:
                # Spanning-tree edges past the cut are not in the filtration: their classes never die.
                finite = finite & (death.detach().double() <= max_edge)
        else:  # one gather for both ends of every pair
            both = lengths(torch.cat([births, deaths], dim=1))
            birth, death = both[:, : births.shape[1]], both[:, births.shape[1] :]
        finite_keep = finite & mask & (death > birth)
        keep = finite_keep
        if keep_infinite:
            infinite = mask & ~finite
            keep = finite_keep | infinite
            death = death.masked_fill(infinite, float("inf"))
        dropped = ~keep.unsqueeze(-1)
        pairs.append(torch.stack([birth, death], dim=-1).masked_fill(dropped, 0))
        masks.append(keep)
        births_out.append(births.masked_fill(dropped, -1))
        deaths_out.append(deaths.masked_fill(~finite_keep.unsqueeze(-1), -1))
    return Diagrams(tuple(pairs), tuple(masks), tuple(births_out), tuple(deaths_out))
