"""Native batched dimension-2 pairing of Vietoris–Rips filtrations (no gudhi).

Dimension 2 needs dimension 1's pairs (they clear its columns), so one compiled pass per cloud
computes both: the filtration, marks and reduction of :mod:`torchtopo.rips.native`, then
ripser's cohomology over triangles (clearing, apparent pairs found by an early-exit scan over
the fourth vertex, the remaining columns reduced with a heap and a pivot table, coboundaries
enumerated implicitly). Ranges of clouds run on threads with the GIL released. See
:mod:`torchtopo.rips._native_h2_kernels` for the order that breaks ties (it decides which
edges are reported as generators, never the values).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from ._numba_threads import run_on_threads
from .native import BITMAP_BITS

__all__ = ["h1_h2_pairing", "h2_pairing", "h2_apparent_share"]


def _kernels():
    try:
        from . import _native_h2_kernels
    except ImportError as error:  # numba absent or broken
        raise ImportError(
            "the native H2 backend needs the 'numba' package: pip install numba (or use backend='gudhi')"
        ) from error
    return _native_h2_kernels


def _padded(rows: list[np.ndarray], counts: np.ndarray) -> np.ndarray:
    """Rows of the clouds one after the other ``(sum(counts), 4)`` -> ``(B, K, 4)``, ``-1`` padding."""
    k = int(counts.max(initial=0))
    padded = np.full((counts.shape[0], k, 4), -1, dtype=np.int32)
    padded[np.arange(k) < counts[:, None]] = np.concatenate(rows) if rows else np.empty((0, 4), np.int32)
    return padded


def _h1_h2_arrays(
    distances: Tensor, mask: Tensor | None, max_edge: float | None, bitmap_bits: int = BITMAP_BITS
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Run the kernel: per dimension rows ``(B, K, 4)`` int32 and counts ``(B,)``, then the
    dimension-2 stats ``(B, 3)``. ``bitmap_bits``: the working-column bitmap limit per thread
    (clouds above it reduce with a heap)."""
    kernels = _kernels()
    batch, n = distances.shape[:2]
    # float64 holds every float32 exactly, so the order (ties included) is the input's.
    dist = distances.detach().to("cpu", torch.float64).contiguous().numpy()
    valid = (
        np.ones((batch, n), dtype=np.bool_)
        if mask is None
        else mask.detach().to("cpu").contiguous().numpy()
    )
    limit = float("inf") if max_edge is None else float(max_edge)
    ranges: dict[int, tuple] = {}

    def kernel(first: int, last: int) -> None:
        ranges[first] = kernels.h2_batch(dist, valid, limit, bitmap_bits, first, last)

    run_on_threads(kernel, batch)
    parts = [ranges[first] for first in sorted(ranges)]
    rows1, counts1, rows2, counts2, stats = (list(part) for part in zip(*parts))
    counts1 = np.concatenate(counts1)
    counts2 = np.concatenate(counts2)
    return _padded(rows1, counts1), counts1, _padded(rows2, counts2), counts2, np.concatenate(stats)


def _as_pairing(rows: np.ndarray, counts: np.ndarray, device: torch.device) -> tuple[Tensor, Tensor, Tensor]:
    edges = torch.from_numpy(rows).to(device=device, dtype=torch.long)
    slot = torch.arange(rows.shape[1], device=device).unsqueeze(0)
    valid = slot < torch.from_numpy(counts).to(device).unsqueeze(1)
    return edges[..., :2], edges[..., 2:], valid


@torch.no_grad()
def h1_h2_pairing(
    distances: Tensor, mask: Tensor | None, max_edge: float | None
) -> tuple[tuple[Tensor, Tensor, Tensor], tuple[Tensor, Tensor, Tensor]]:
    r"""Birth and death edges of the dimension-1 and dimension-2 Rips persistence pairs of a batch
    (numba, CPU), in one pass.

    Parameters
    ----------
    distances : Tensor
        ``(B, N, N)`` floating, symmetric, zero diagonal, any device (copied to the CPU); only
        the order of its values matters and only its upper triangle is read.
    mask : Tensor, optional
        ``(B, N)`` bool, True for real points; masked points are ignored entirely.
    max_edge : float, optional
        Edges longer than this are not in the filtration.

    Returns
    -------
    dim1, dim2 : tuple of Tensor
        Per dimension ``(birth_edges, death_edges, valid)``: ``(B, K, 2)`` long ``(i, j)`` with
        ``i < j`` on the device of ``distances`` (``-1`` for padding rows, and the death edge of
        an essential class, one still open at ``max_edge``) and ``(B, K)`` bool, True for the
        real rows. A birth edge is the longest edge of the simplex that creates the class, a
        death edge the longest edge of the one that kills it. Pairs of zero persistence are
        left out. The dimension-1 part equals :func:`torchtopo.rips.native.h1_pairing`'s.

    Examples
    --------
    >>> import torch
    >>> from torchtopo.rips.native_h2 import h1_h2_pairing
    >>> octahedron = torch.cat([torch.eye(3), -torch.eye(3)]).double()
    >>> _, (births, deaths, valid) = h1_h2_pairing(torch.cdist(octahedron, octahedron)[None], None, None)
    >>> valid.tolist()  # one void: born with the last edge of length sqrt(2), filled at 2
    [[True]]
    >>> births.tolist(), deaths.tolist()  # ties broken by the combinatorial index
    ([[[4, 5]]], [[[0, 3]]])
    """
    device = distances.device
    rows1, counts1, rows2, counts2, _ = _h1_h2_arrays(distances, mask, max_edge)
    return _as_pairing(rows1, counts1, device), _as_pairing(rows2, counts2, device)


def h2_pairing(distances: Tensor, mask: Tensor | None, max_edge: float | None) -> tuple[Tensor, Tensor, Tensor]:
    """The dimension-2 part of :func:`h1_h2_pairing`: ``(birth_edges, death_edges, valid)``."""
    return h1_h2_pairing(distances, mask, max_edge)[1]


def h2_apparent_share(distances: Tensor, mask: Tensor | None = None, max_edge: float | None = None) -> float:
    """Debug counter: the share of dimension-2 columns (triangles not paired in dimension 1, below
    the cut) that are apparent pairs, over the whole batch ``distances`` ``(B, N, N)``.

    Examples
    --------
    >>> import torch
    >>> from torchtopo.rips.native_h2 import h2_apparent_share
    >>> x = torch.randn(2, 24, 8, dtype=torch.float64)
    >>> 0.5 < h2_apparent_share(torch.cdist(x, x)) <= 1.0
    True
    """
    *_, stats = _h1_h2_arrays(distances, mask, max_edge)
    columns = int(stats[:, 0].sum())
    return 1.0 if columns == 0 else int(stats[:, 1].sum()) / columns
