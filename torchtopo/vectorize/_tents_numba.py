"""Numba kernels of the CPU landscape and silhouette paths, diagrams split across threads (GIL
released). Imported lazily by :func:`torchtopo.vectorize.persistence_landscape` and
:func:`torchtopo.vectorize.persistence_silhouette`.

The tent ``(d - b) / 2 - |x - (b + d) / 2|`` of a pair ``(b, d)`` (gudhi's arithmetic) is
positive only at samples between ``b`` and ``d``; on a sorted grid a binary search finds them,
so the work is the number of (pair, sample) couples where the tent is positive, not ``K x R``,
and there is no ``(B, R, K)`` temporary.
"""

from __future__ import annotations

import numba as nb
import numpy as np


@nb.njit(cache=True, nogil=True)
def _ordered(grid):
    for r in range(grid.shape[0] - 1):
        if grid[r] > grid[r + 1]:
            return False
    return True


@nb.njit(cache=True, nogil=True)
def _samples(grid, ordered, birth, death):
    """The range of samples where the tent of ``(birth, death)`` may be positive: those between
    them on a sorted grid, one more on each side for rounding; every sample otherwise."""
    if not ordered:
        return 0, grid.shape[0]
    first = max(np.searchsorted(grid, birth) - 1, 0)
    return first, min(np.searchsorted(grid, death, side="right") + 1, grid.shape[0])


@nb.njit(cache=True, nogil=True)
def top_tents(birth, death, keep, grid, value, index, start, stop):
    """Fill ``value`` ``(B, L, R)`` for diagrams ``start .. stop - 1`` with the ``l``-th largest
    positive tent at ``grid[r]`` (0 where fewer than ``l + 1`` tents are positive) and, unless
    ``index`` is empty, ``index`` ``(B, L, R)`` with its pair (-1 there)."""
    levels, samples = value.shape[1], grid.shape[0]
    with_index = index.shape[0] > 0
    ordered = _ordered(grid)
    values = np.empty((samples, levels))
    rows = np.empty((samples, levels), dtype=np.int64)
    for b in range(start, stop):
        values[:] = 0.0
        rows[:] = -1
        for k in range(birth.shape[1]):
            if not keep[b, k]:
                continue
            mid, height = (birth[b, k] + death[b, k]) / 2, (death[b, k] - birth[b, k]) / 2
            first, last = _samples(grid, ordered, birth[b, k], death[b, k])
            for r in range(first, last):
                tent = height - abs(grid[r] - mid)
                if tent <= values[r, levels - 1]:
                    continue
                slot = levels - 1
                while slot > 0 and values[r, slot - 1] < tent:
                    values[r, slot] = values[r, slot - 1]
                    rows[r, slot] = rows[r, slot - 1]
                    slot -= 1
                values[r, slot] = tent
                rows[r, slot] = k
        value[b] = values.T
        if with_index:
            index[b] = rows.T


@nb.njit(cache=True, nogil=True)
def weighted_tents(birth, death, share, keep, grid, out, start, stop):
    """Fill ``out`` ``(B, R)`` for diagrams ``start .. stop - 1`` with ``sum_k share[b, k] *
    max(tent_k(grid[r]), 0)`` (the silhouette before gudhi's factor sqrt(2))."""
    ordered = _ordered(grid)
    for b in range(start, stop):
        out[b] = 0.0
        for k in range(birth.shape[1]):
            if not keep[b, k] or share[b, k] == 0:
                continue
            mid, height = (birth[b, k] + death[b, k]) / 2, (death[b, k] - birth[b, k]) / 2
            first, last = _samples(grid, ordered, birth[b, k], death[b, k])
            for r in range(first, last):
                tent = height - abs(grid[r] - mid)
                if tent > 0:
                    out[b, r] += share[b, k] * tent
