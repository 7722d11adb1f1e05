"""Native dimension 1 of volumes: cohomology reduction with clearing (numba, CPU).

Dimension 1 of a volume is not a union-find on either side of the duality (it is its own dual),
so it is reduced as ripser reduces dimension 1 of a Rips filtration: edges in decreasing
filtration order, each column the edge's coboundary, the spanning-forest edges cleared first.
See :mod:`torchtopo.cubical._reduction_numba` for the order that breaks ties.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from ..rips._numba_threads import run_on_threads
from .union_find import finish_rows

__all__ = ["h1_pairing_volumes"]


def _kernels():
    try:
        from . import _reduction_numba
    except ImportError as error:  # numba absent or broken
        raise ImportError(
            "dimension 1 of volumes needs the 'numba' package: pip install numba (or use backend='gudhi')"
        ) from error
    return _reduction_numba


@torch.no_grad()
def h1_pairing_volumes(values: Tensor, shape: tuple[int, int, int]) -> tuple[Tensor, Tensor, Tensor]:
    """Pixel generators of dimension 1 of a batch of volumes, volumes split across threads.

    Parameters
    ----------
    values : Tensor
        ``(B, P)`` floating filtration values of the voxels (``+inf`` outside the complex), any
        device (copied to the CPU in float64).
    shape : tuple of int
        ``(D, H, W)``, ``P = D * H * W``.

    Returns
    -------
    ``(birth_pixels, death_pixels, valid)``: ``(B, K)`` long flat voxel indices (``-1`` for
    padding) and ``(B, K)`` bool, on the device of ``values``. Pairs of zero persistence are
    left out.
    """
    kernels = _kernels()
    batch = values.shape[0]
    array = values.detach().to("cpu", torch.float64).contiguous().numpy()
    depth, height, width = shape
    # At most one pair per edge outside the spanning forest; np.empty maps pages lazily.
    capacity = max(1, depth * (height + 1) * (width + 1) + (depth + 1) * height * (width + 1)
                   + (depth + 1) * (height + 1) * width)
    births = np.empty((batch, capacity), dtype=np.int64)
    deaths = np.empty((batch, capacity), dtype=np.int64)
    counts = np.zeros(batch, dtype=np.int64)
    dims = np.array(shape, dtype=np.int64)
    run_on_threads(lambda start, stop: kernels.h1_batch(array, dims, births, deaths, counts, start, stop), batch)
    rows = finish_rows(torch.from_numpy(births), torch.from_numpy(deaths), torch.from_numpy(counts))
    return tuple(t.to(values.device) for t in rows)
