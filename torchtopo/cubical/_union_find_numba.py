"""Numba kernel of the native union-find sweeps: one image at a time per thread.

The steps and tie-breaks are those of the torch implementation in
:mod:`torchtopo.cubical.union_find` (and of the Triton kernel), so all three give identical
pairings: pixels in the stable order of their values; at each pixel the components of its
present neighbours are found first, in the order of the neighbour table; the oldest survives
(the outside, in the dual sweep, wherever it appears), the others die in that order. Imported
lazily: ``import torchtopo`` works without numba.
"""

from __future__ import annotations

import numba as nb
import numpy as np
from numba.cpython.unsafe.numbers import trailing_zeros

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


# The forest is one int32 array: a pixel's parent (>= 0), or, at a root, ``-2 - elder`` (the
# step at which its component's oldest pixel entered; the outside node's elder is -1), or ABSENT
# for a pixel not yet swept. One array keeps the random accesses of large images in cache.
ABSENT = np.int32(2**31 - 1)


@nb.njit(cache=True, nogil=True)
def _find(forest, x):
    """The root of ``x``, halving the path on the way."""
    while True:
        up = forest[x]
        if up < 0:
            return x
        top = forest[up]
        if top < 0:
            return up
        forest[x] = top
        x = top


@nb.njit(cache=True, nogil=True)
def _sweep(values, order, cells, deltas, ring, border, dual, births, deaths, forest, roots):
    """One image: write its pairs to ``births``/``deaths`` and return how many.

    The forest lives on the image padded by one cell on each side with a boundary
    (``cells[i]``: the padded index of pixel ``order[i]``; ``deltas``: the padded index offsets
    of the neighbours), so neighbours need no bounds check. ``dual=False``: pixels in increasing
    order, the padding never present (dimension 0 of the sublevel filtration; row 0 is the
    infinite bar of the global minimum). ``dual=True``: pixels in decreasing order, the padding (``border``)
    present from the start as one outside component older than every pixel; the pair of a dying
    component is read as (merging pixel, the component's highest pixel).

    ``ring``: the neighbours go around the pixel, consecutive ones sharing an edge (the 8
    neighbours of 2-D images). Two present consecutive neighbours are then already joined, so
    one root per run of present neighbours is looked up (and the first neighbour's, to keep the
    order in which components are first met).
    """
    n = values.shape[0]
    outside = forest.shape[0] - 1
    forest[:] = ABSENT
    count = 0
    if dual:
        forest[outside] = -1  # a root of elder -1: older than every pixel
        for i in range(border.shape[0]):
            forest[border[i]] = outside
    else:
        births[0] = order[0]
        deaths[0] = -1
        count = 1
    for step in range(n):
        position = n - 1 - step if dual else step
        p = order[position]
        cell = cells[position]
        # A bit per present neighbour, without a branch per neighbour (their presence is random).
        present = np.uint64(0)
        for j in range(deltas.shape[0]):
            present |= np.uint64(forest[cell + deltas[j]] != ABSENT) << np.uint64(j)
        # One present neighbour, or (around the pixel) one run of them, is one component: the
        # pixel joins it through any of them, with no root to find and nothing dying.
        single = present & (present - np.uint64(1))
        if ring:
            single = present & ~(((present << np.uint64(1)) | (present >> np.uint64(7))) & np.uint64(255))
            single &= single - np.uint64(1)
        if present and not single:
            forest[cell] = cell + deltas[trailing_zeros(present)]
            continue
        if ring:
            present &= ~(present << np.uint64(1))  # one neighbour per run (and the first)
        k = 0  # the distinct roots of the present neighbours, in the order first met
        while present:
            j = trailing_zeros(present)
            present &= present - np.uint64(1)
            r = _find(forest, cell + deltas[j])
            seen = False
            for i in range(k):
                if roots[i] == r:
                    seen = True
                    break
            if not seen:
                roots[k] = r
                k += 1
        if k == 0:
            forest[cell] = -2 - step
            continue
        survivor = roots[0]
        for j in range(1, k):
            if forest[roots[j]] > forest[survivor]:  # -2 - elder: the larger, the older
                survivor = roots[j]
        value = values[p]
        for j in range(k):
            r = roots[j]
            if r == survivor:
                continue
            elder = -2 - forest[r]
            born = order[n - 1 - elder] if dual else order[elder]
            if values[born] != value:  # pairs of zero persistence are not points of the diagram
                births[count] = p if dual else born
                deaths[count] = born if dual else p
                count += 1
            forest[r] = survivor
        forest[cell] = survivor
    return count


@nb.njit(cache=True, nogil=True)
def sweep_batch(values, inner, border, deltas, dual_deltas, ring, births, deaths, counts, dual_births, dual_deaths,
                dual_counts, start, stop):
    """Images ``start .. stop - 1`` of ``values`` ``(B, P)``, without the GIL: the sublevel sweep
    into ``births``/``deaths`` ``(B, P)`` and ``counts`` ``(B,)``, then, when ``dual_deltas``
    has entries, the dual sweep into the ``dual_*`` arrays. One sort per image serves both;
    ``inner`` and ``border`` describe the padded layout and ``ring`` the sublevel neighbours
    (see :func:`_sweep`)."""
    padded = inner.shape[0] + border.shape[0]
    forest = np.empty(padded + 1, dtype=np.int32)
    roots = np.empty(deltas.shape[0] + dual_deltas.shape[0], dtype=np.int64)
    for b in range(start, stop):
        order = stable_order(values[b])
        cells = inner[order]  # gathered at once: the sweeps then read it in order
        counts[b] = _sweep(values[b], order, cells, deltas, ring, border, False, births[b], deaths[b], forest, roots)
        if dual_deltas.shape[0] > 0:
            dual_counts[b] = _sweep(values[b], order, cells, dual_deltas, False, border, True, dual_births[b],
                                    dual_deaths[b], forest, roots)
