"""Numba kernel of the CPU landscape path: the largest tents at each sample and their pairs,
diagrams split across threads (GIL released). Imported lazily by
:func:`torchtopo.vectorize.persistence_landscape`.

The tent of a pair ``(b, d)`` is positive only at samples between ``b`` and ``d``; on a sorted
grid a binary search finds them, so the work is the number of (pair, sample) couples where the
tent is positive, not ``K x R``. At each sample the ``L`` largest tents are kept by insertion into
a sorted list. No ``(B, R, K)`` temporary.
"""

from __future__ import annotations

import numba as nb
import numpy as np


@nb.njit(cache=True, nogil=True)
def top_tents(birth, death, keep, grid, index, value, start, stop):
    """Fill ``index`` and ``value`` ``(B, L, R)`` for diagrams ``start .. stop - 1``: the pair
    whose tent ``(d - b) / 2 - |x - (b + d) / 2|`` (gudhi's arithmetic) is the ``l``-th largest
    positive one at ``grid[r]`` and that tent, or -1 and 0 where fewer than ``l + 1`` tents are
    positive."""
    levels, samples = index.shape[1], grid.shape[0]
    ordered = True
    for r in range(samples - 1):
        ordered = ordered and grid[r] <= grid[r + 1]
    values = np.empty((samples, levels))
    rows = np.empty((samples, levels), dtype=np.int64)
    for b in range(start, stop):
        values[:] = 0.0
        rows[:] = -1
        for k in range(birth.shape[1]):
            if not keep[b, k]:
                continue
            mid, height = (birth[b, k] + death[b, k]) / 2, (death[b, k] - birth[b, k]) / 2
            first, last = 0, samples
            if ordered:  # the samples between b and d, one more on each side for rounding
                first = max(np.searchsorted(grid, birth[b, k]) - 1, 0)
                last = min(np.searchsorted(grid, death[b, k], side="right") + 1, samples)
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
        index[b] = rows.T
        value[b] = values.T
