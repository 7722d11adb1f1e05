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
_BYTE = np.uint64(255)


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


@nb.njit(cache=True, nogil=True, inline="always")
def _scatter_pass(keys, spare_keys, order, spare_order, counts, shift, mask):
    """One stable LSD pass on the digit ``(key >> shift) & mask``, whose histogram ``counts`` is
    turned into start slots in place; ``keys``/``order`` are copied, permuted, to the spares."""
    total = 0
    for digit in range(counts.shape[0]):
        here = counts[digit]
        counts[digit] = total
        total += here
    for t in range(keys.shape[0]):
        key = keys[t]
        digit = (key >> shift) & mask
        slot = counts[digit]
        counts[digit] = slot + 1
        spare_order[slot] = order[t]
        spare_keys[slot] = key


@nb.njit(cache=True, nogil=True)
def _radix32(keys, spare_keys, order, spare_order):
    """Stable LSD radix sort of uint32 ``keys`` in three passes of 11 bits (passes whose digit is
    the same in every key are skipped): returns the array, ``order`` or ``spare_order``, that
    holds the permutation; the ``spare_*`` arrays are work space."""
    n = keys.shape[0]
    histogram = np.zeros((3, 2048), dtype=np.int32)
    for t in range(n):
        key = keys[t]
        histogram[0, key & 2047] += 1
        histogram[1, (key >> 11) & 2047] += 1
        histogram[2, key >> 22] += 1
    for t in range(n):
        order[t] = t
    for p in range(3):
        if histogram[p].max() == n:
            continue
        _scatter_pass(keys, spare_keys, order, spare_order, histogram[p], 11 * p, 2047)
        order, spare_order = spare_order, order
        keys, spare_keys = spare_keys, keys
    return order


@nb.njit(cache=True, nogil=True)
def _radix64(keys, spare_keys, order, spare_order):
    """:func:`_radix32` for uint64 ``keys``, in eight passes of one byte."""
    n = keys.shape[0]
    histogram = np.zeros((8, 256), dtype=np.int32)
    for t in range(n):
        key = keys[t]
        for byte in range(8):
            histogram[byte, (key >> np.uint64(8 * byte)) & _BYTE] += 1
    for t in range(n):
        order[t] = t
    for byte in range(8):
        if histogram[byte].max() == n:
            continue
        _scatter_pass(keys, spare_keys, order, spare_order, histogram[byte], np.uint64(8 * byte), _BYTE)
        order, spare_order = spare_order, order
        keys, spare_keys = spare_keys, keys
    return order


@nb.njit(cache=True, nogil=True)
def _sorted_cells(values, bits, sign, inner, keys, spare_keys, order, spare_order, cells):
    """Sort one image: returns the stable argsort of ``values`` (int32; in ``order`` or
    ``spare_order``) and writes ``cells``, the padded index of each pixel in that order.

    ``bits`` are the values' bits as unsigned integers of their width (uint32 for float32,
    uint64 for float64) and ``sign`` their sign bit; each becomes a key of that width that orders
    like the value (the sign bit flipped for values >= 0, every bit for negative ones, ``-0.0``
    as ``0.0`` so that it ties as comparisons do), sorted by an LSD radix sort. ``keys``,
    ``spare_*``: work arrays.
    """
    n = values.shape[0]
    for t in range(n):
        b = bits[t]
        if values[t] == 0.0:
            keys[t] = sign
        elif b & sign:
            keys[t] = ~b
        else:
            keys[t] = b | sign
    if keys.itemsize == 4:
        order = _radix32(keys, spare_keys, order, spare_order)
    else:
        order = _radix64(keys, spare_keys, order, spare_order)
    for t in range(n):
        cells[t] = inner[order[t]]
    return order


# The forest is one int32 array: a pixel's parent (>= 0), or, at a root, ``-2 - elder`` (the
# step at which its component's oldest pixel entered; the outside node's elder is -1), or ABSENT
# for a pixel not yet swept. One array keeps the random accesses of large images in cache.
ABSENT = np.int32(2**31 - 1)
YOUNGEST = np.int32(-(2**31))  # below every root's -2 - elder


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
def _sweep(values, order, cells, ring, runs, deltas, border, dual, births, deaths, forest, roots):
    """One image: write its pairs to ``births``/``deaths`` and return how many.

    The forest lives on the image padded by one cell on each side with a boundary
    (``cells[i]``: the padded index of pixel ``order[i]``; ``deltas``: the padded index offsets
    of the neighbours), so neighbours need no bounds check. ``dual=False``: pixels in increasing
    order, the padding never present (dimension 0 of the sublevel filtration; row 0 is the
    infinite bar of the global minimum). ``dual=True``: pixels in decreasing order, the padding (``border``)
    present from the start as one outside component older than every pixel; the pair of a dying
    component is read as (merging pixel, the component's highest pixel).

    ``ring`` (2-D images; empty for volumes): the offsets of the 8 cells around a pixel, in turn,
    so that consecutive ones share an edge. Two present consecutive ones are then in one
    component (in both sweeps: a pixel is joined to its present neighbours when it enters, and
    every padding cell is the outside), so a run of present ring cells is one component:
    ``runs[m]``, for the bit mask ``m`` of the present ring cells, has a bit per neighbour of
    ``deltas`` whose root is looked up, the first neighbour (in table order) of each run that
    holds one; this keeps the order in which components are first met. Without a ring every
    present neighbour is looked up.
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
    around = ring.shape[0] > 0
    for step in range(n):
        position = n - 1 - step if dual else step
        cell = cells[position]
        # A bit per present cell, without a branch per cell (their presence is random).
        look = np.uint64(0)
        if around:
            present = 0
            for j in range(ring.shape[0]):
                present |= (forest[cell + ring[j]] != ABSENT) << j
            look = np.uint64(runs[present])
        else:
            for j in range(deltas.shape[0]):
                look |= np.uint64(forest[cell + deltas[j]] != ABSENT) << np.uint64(j)
        if look == 0:
            forest[cell] = -2 - step
            continue
        if not (look & (look - np.uint64(1))):
            # One component around: the pixel joins it, with no root to find and nothing dying
            # (under the neighbour's parent, which keeps the trees shallow).
            neighbour = cell + deltas[trailing_zeros(look)]
            up = forest[neighbour]
            forest[cell] = up if up >= 0 else neighbour
            continue
        k = 0  # the distinct roots of the components around, in the order first met
        survivor = -1  # the oldest of them: forest[root] is -2 - elder, the larger the older
        oldest = YOUNGEST
        while look:
            j = trailing_zeros(look)
            look &= look - np.uint64(1)
            r = _find(forest, cell + deltas[j])
            seen = False
            for i in range(k):
                if roots[i] == r:
                    seen = True
                    break
            if not seen:
                roots[k] = r
                k += 1
                if forest[r] > oldest:
                    survivor, oldest = r, forest[r]
        if k == 1:  # the runs around were one component already
            forest[cell] = survivor
            continue
        p = order[position]
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
def sweep_batch(values, bits, sign, inner, border, ring, runs, deltas, dual_runs, dual_deltas, births, deaths, counts,
                dual_births, dual_deaths, dual_counts, start, stop):
    """Images ``start .. stop - 1`` of ``values`` ``(B, P)`` (``bits``: the same memory as
    unsigned integers of the values' width, ``sign`` their sign bit), without the GIL: the
    sublevel sweep into ``births``/``deaths`` ``(B, P)`` and ``counts`` ``(B,)``, then, when
    ``dual_deltas`` has entries, the dual sweep into the ``dual_*`` arrays. One sort per image
    serves both; ``inner`` and ``border`` describe the padded layout, ``ring``, ``runs`` and
    ``dual_runs`` the runs of present cells around a pixel (see :func:`_sweep`)."""
    n = values.shape[1]
    padded = inner.shape[0] + border.shape[0]
    forest = np.empty(padded + 1, dtype=np.int32)
    roots = np.empty(max(deltas.shape[0], dual_deltas.shape[0]), dtype=np.int32)
    keys = np.empty(n, dtype=bits.dtype)
    spare_keys = np.empty(n, dtype=bits.dtype)
    order = np.empty(n, dtype=np.int32)
    spare_order = np.empty(n, dtype=np.int32)
    cells = np.empty(n, dtype=np.int32)
    for b in range(start, stop):
        image = values[b]
        sorted_ = _sorted_cells(image, bits[b], sign, inner, keys, spare_keys, order, spare_order, cells)
        counts[b] = _sweep(image, sorted_, cells, ring, runs, deltas, border, False, births[b], deaths[b], forest,
                           roots)
        if dual_deltas.shape[0] > 0:
            dual_counts[b] = _sweep(image, sorted_, cells, ring, dual_runs, dual_deltas, border, True, dual_births[b],
                                    dual_deaths[b], forest, roots)


@nb.njit(cache=True, nogil=True)
def padded_rows(births, deaths, counts):
    """The first ``counts[b]`` entries of each row of ``births``/``deaths`` ``(B, capacity)`` as
    ``(B, K)`` int64 rows, ``K`` the largest count, ``-1`` past each row's count."""
    batch = counts.shape[0]
    k = counts.max() if batch else 0
    births_out = np.full((batch, k), -1, dtype=np.int64)
    deaths_out = np.full((batch, k), -1, dtype=np.int64)
    for b in range(batch):
        for i in range(counts[b]):
            births_out[b, i] = births[b, i]
            deaths_out[b, i] = deaths[b, i]
    return births_out, deaths_out


@nb.njit(cache=True, nogil=True)
def select_pairs(values, births, deaths, valid, keep_infinite):
    """The index work of :func:`torchtopo.cubical.pairing.gather_diagrams` in one pass.

    ``values`` ``(B, P)``; ``births``, ``deaths`` ``(B, K)`` int64 pixels (``-1``: none) and
    ``valid`` ``(B, K)`` bool. Returns ``index`` ``(B, K, 2)``, the pixels to read (``0`` for
    none); ``filled`` ``(B, K, 2)`` bool, the entries of the pairs not read but set to ``fill``
    ``(B, K, 2)`` (in the type of ``values``: 0 in the rows not kept, ``inf`` for the death of a
    kept infinite bar); ``keep`` ``(B, K)``; and the birth and death pixels of the diagram
    (``-1`` in the rows not kept and for infinite deaths).
    """
    batch, size = births.shape
    index = np.empty((batch, size, 2), dtype=np.int64)
    filled = np.empty((batch, size, 2), dtype=np.bool_)
    fill = np.zeros((batch, size, 2), dtype=values.dtype)
    keep = np.empty((batch, size), dtype=np.bool_)
    births_out = np.empty((batch, size), dtype=np.int64)
    deaths_out = np.empty((batch, size), dtype=np.int64)
    for b in range(batch):
        for i in range(size):
            born, dead = births[b, i], deaths[b, i]
            index[b, i, 0] = max(born, 0)
            index[b, i, 1] = max(dead, 0)
            death = values[b, max(dead, 0)]
            unbounded = valid[b, i] and (dead < 0 or np.isinf(death))
            finite = valid[b, i] and not unbounded and death > values[b, max(born, 0)]
            kept = finite or (unbounded and keep_infinite)
            keep[b, i] = kept
            filled[b, i, 0] = not kept
            filled[b, i, 1] = not finite
            if kept and unbounded:
                fill[b, i, 1] = np.inf
            births_out[b, i] = born if kept else -1
            deaths_out[b, i] = dead if finite else -1
    return index, filled, fill, keep, births_out, deaths_out
