"""Numba kernel of the native union-find sweeps: one image at a time per thread.

The steps and tie-breaks are those of the torch implementation in
:mod:`torchtopo.cubical.union_find` (and of the Triton kernel), so all three give identical
pairings: pixels in the stable order of their values; at each pixel the components of its
present neighbours are found first, in the order of the neighbour table (the outside last); the
oldest survives, the others die in that order. Imported lazily: ``import torchtopo`` works
without numba.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from ..rips._native_kernels import _argsort_lengths

_SIGN = np.uint64(1 << 63)


@nb.njit(cache=True, nogil=True)
def stable_order(values):
    """The stable argsort of float64 ``values`` (finite or ``+inf``), by radix sort.

    Each value becomes a uint64 key that orders like it (sign bit flipped for values >= 0, all
    bits for negative ones; ``-0.0`` as ``0.0``, to tie as comparisons do), and the Rips kernels'
    radix sort orders the keys: it reads only their bits, here handed to it as float64.
    """
    keys = np.empty(values.shape[0], dtype=np.uint64)
    bits = values.view(np.uint64)
    for i in range(values.shape[0]):
        if values[i] == 0.0:
            keys[i] = _SIGN
        elif bits[i] & _SIGN:
            keys[i] = ~bits[i]
        else:
            keys[i] = bits[i] | _SIGN
    return _argsort_lengths(keys.view(np.float64))


@nb.njit(cache=True, nogil=True)
def _find(parent, x):
    while parent[x] != x:
        parent[x] = parent[parent[x]]
        x = parent[x]
    return x


@nb.njit(cache=True, nogil=True)
def _sweep(values, order, shape, offsets, dual, boundary_z, births, deaths, parent, elder, roots):
    """One image: write its pairs to ``births``/``deaths`` and return how many.

    ``dual=False``: pixels in increasing order, neighbours of ``offsets`` (dimension 0 of the
    sublevel filtration; row 0 is the infinite bar of the global minimum). ``dual=True``: pixels
    in decreasing order plus an outside node, older than every pixel, next to every pixel of the
    box's boundary (``boundary_z``: whether the first axis has a boundary, False for 2-D images
    stored as one plane); the pair of a dying component is read as (merging pixel, the
    component's highest pixel).
    """
    n = values.shape[0]
    depth, height, width = shape[0], shape[1], shape[2]
    plane = height * width
    parent[:] = -1
    count = 0
    if dual:
        parent[n] = n
        elder[n] = -1
    else:
        births[0] = order[0]
        deaths[0] = -1
        count = 1
    for step in range(n):
        p = order[n - 1 - step] if dual else order[step]
        z = p // plane
        y = (p - z * plane) // width
        x = p - z * plane - y * width
        k = 0
        for j in range(offsets.shape[0]):
            zz = z + offsets[j, 0]
            yy = y + offsets[j, 1]
            xx = x + offsets[j, 2]
            if 0 <= zz < depth and 0 <= yy < height and 0 <= xx < width:
                q = zz * plane + yy * width + xx
                if parent[q] >= 0:
                    roots[k] = _find(parent, q)
                    k += 1
        if dual and (y == 0 or y == height - 1 or x == 0 or x == width - 1 or (boundary_z and (z == 0 or z == depth - 1))):
            roots[k] = n
            k += 1
        if k == 0:
            parent[p] = p
            elder[p] = step
            continue
        survivor = roots[0]
        for j in range(1, k):
            if elder[roots[j]] < elder[survivor]:
                survivor = roots[j]
        value = values[p]
        for j in range(k):
            r = roots[j]
            if r == survivor:
                continue
            seen = False
            for i in range(j):
                if roots[i] == r:
                    seen = True
                    break
            if seen:
                continue
            born = order[n - 1 - elder[r]] if dual else order[elder[r]]
            if values[born] != value:  # pairs of zero persistence are not points of the diagram
                births[count] = p if dual else born
                deaths[count] = born if dual else p
                count += 1
            parent[r] = survivor
        parent[p] = survivor
    return count


@nb.njit(cache=True, nogil=True)
def sweep_batch(values, shape, offsets, dual_offsets, boundary_z, births, deaths, counts, dual_births, dual_deaths,
                dual_counts, start, stop):
    """Images ``start .. stop - 1`` of ``values`` ``(B, P)``, without the GIL: the sublevel sweep
    into ``births``/``deaths`` ``(B, P)`` and ``counts`` ``(B,)``, then, when ``dual_offsets``
    has rows, the dual sweep into the ``dual_*`` arrays. One sort per image serves both."""
    n = values.shape[1]
    parent = np.empty(n + 1, dtype=np.int64)
    elder = np.empty(n + 1, dtype=np.int64)
    roots = np.empty(offsets.shape[0] + dual_offsets.shape[0] + 1, dtype=np.int64)
    for b in range(start, stop):
        order = stable_order(values[b])
        counts[b] = _sweep(values[b], order, shape, offsets, False, boundary_z, births[b], deaths[b], parent, elder, roots)
        if dual_offsets.shape[0] > 0:
            dual_counts[b] = _sweep(values[b], order, shape, dual_offsets, True, boundary_z, dual_births[b],
                                    dual_deaths[b], parent, elder, roots)
