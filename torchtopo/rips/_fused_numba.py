"""Numba kernels of the fused path: the whole H0 (and H1) computation of a cloud in one pass.

Per cloud, in one compiled function: the check of the coordinates, the distances, Prim's tree,
the H1 reduction, and at the end the gather of both dimensions, with the same kernels as the
staged path (:mod:`torchtopo.rips._h0_numba`, :mod:`torchtopo.rips._native_kernels`,
:mod:`torchtopo.rips._gather_numba`), so both give identical diagrams. The staged path calls
three kernels from Python, each with its own arrays and tensors: at m = 64 its glue took twice
as long as the kernels, and on a batch each of its threaded stages waits for its slowest
thread. Here a cloud's distances live in one ``(N, N)`` scratch of its thread (the staged path
keeps the batch's) while the cloud is in cache.

:func:`diagrams_at_address` runs a batch in the calling thread; :func:`pair_clouds_at_address`
pairs ranges of clouds (on threads at once) into a :func:`pairing_workspace`, which
:func:`gather_clouds_at_address` then turns into diagrams. All three read the points where
their tensor holds them. Imported lazily: ``import torchtopo`` works without numba.
"""

from __future__ import annotations

import numba as nb
import numpy as np
from numba.core import cgutils, types
from numba.extending import intrinsic

from ._gather_numba import gather_cloud
from ._h0_numba import cloud_distances, h0_cloud, largest_magnitude, real_points
from ._native_kernels import _h1_cloud


@intrinsic
def _pointer(typingctx, address):
    """The integer ``address`` as a ``void*``, for :func:`numba.carray`."""

    def codegen(context, builder, signature, args):
        return builder.inttoptr(args[0], cgutils.voidptr_t)

    return types.voidptr(address), codegen


@nb.njit(cache=True, nogil=True)
def diagrams_at_address(address, batch, n, dim, dtype, mask, with_h1, keep_infinite, bitmap_bits, limit):
    """:func:`diagrams_from_points` of the C-contiguous points ``(batch, n, dim)`` of numpy
    ``dtype`` that start at ``address`` (a tensor's ``data_ptr()``, the tensor kept alive by the
    caller): no array is made in Python (after other work, ``detach().numpy()`` alone took a
    tenth of a call on one small cloud)."""
    points = nb.carray(_pointer(address), (batch, n, dim), dtype)
    return diagrams_from_points(points, mask, with_h1, keep_infinite, bitmap_bits, limit)


@nb.njit(cache=True, nogil=True)
def pair_clouds_at_address(address, batch, n, dim, dtype, mask, with_h1, bitmap_bits, limit, workspace, start,
                           stop):
    """:func:`pair_clouds` of the points at ``address``, as :func:`diagrams_at_address` reads them."""
    points = nb.carray(_pointer(address), (batch, n, dim), dtype)
    pair_clouds(points, mask, with_h1, bitmap_bits, limit, workspace, start, stop)


@nb.njit(cache=True, nogil=True)
def gather_clouds_at_address(address, batch, n, dim, dtype, keep_infinite, limit, workspace):
    """:func:`gather_clouds` of the points at ``address``, as :func:`diagrams_at_address` reads them."""
    points = nb.carray(_pointer(address), (batch, n, dim), dtype)
    return gather_clouds(points, keep_infinite, limit, workspace)


@nb.njit(cache=True, nogil=True)
def diagrams_from_points(points, mask, with_h1, keep_infinite, bitmap_bits, limit):
    """The diagrams of dimension 0 and, when ``with_h1``, 1 of ``points`` ``(B, N, D)``
    (float32 or float64, ``B >= 1``, C-contiguous), no cut, in the calling thread:
    :func:`pair_clouds` of every cloud, then :func:`gather_clouds`.

    Inputs: ``mask`` ``(B, N)`` bool, True for real points (None: all are); ``keep_infinite``
    as for the gather; ``bitmap_bits`` as for :func:`~torchtopo.rips._native_kernels.h1_batch`;
    ``limit`` as for :func:`pair_clouds`. Returns what :func:`gather_clouds` returns.
    """
    batch, n = points.shape[:2]
    workspace = pairing_workspace(batch, n, with_h1)
    pair_clouds(points, mask, with_h1, bitmap_bits, limit, workspace, 0, batch)
    return gather_clouds(points, keep_infinite, limit, workspace)


@nb.njit(cache=True, nogil=True)
def pairing_workspace(batch, n, with_h1):
    """The arrays :func:`pair_clouds` writes and :func:`gather_clouds` reads, for ``batch``
    clouds of ``n`` points: ``(h0_births, h0_deaths, h0_real, h0_lengths, h1_rows, counts,
    magnitudes)`` as :func:`~torchtopo.rips._h0_numba.h0_cloud` and
    :func:`~torchtopo.rips._native_kernels._h1_cloud` write them, a cloud's rows of each at its
    index: ``h1_rows`` ``(B, cap, 4)`` int32 has room for every edge outside a spanning tree
    (one H1 pair at most each; 16 bytes a row, as the staged path's output), ``counts``
    ``(B,)`` the H1 pairs of each cloud and ``magnitudes`` ``(B,)`` its largest absolute real
    coordinate."""
    cap = max(1, n * (n - 1) // 2 - (n - 1)) if with_h1 else 0  # h1_row_capacity(n)
    return (np.empty((batch, n, 2), dtype=np.int64), np.empty((batch, n, 2), dtype=np.int64),
            np.empty((batch, n), dtype=np.bool_), np.empty((batch, n), dtype=np.float64),
            np.empty((batch, cap, 4), dtype=np.int32), np.zeros(batch, dtype=np.int64),
            np.zeros(batch, dtype=np.float64))


@nb.njit(cache=True, nogil=True)
def pair_clouds(points, mask, with_h1, bitmap_bits, limit, workspace, start, stop):
    """The H0 (and, when ``with_h1``, H1) pairings of clouds ``start .. stop - 1`` of ``points``
    ``(B, N, D)`` into ``workspace`` (:func:`pairing_workspace`), one cloud after the other with
    scratch of its own: ranges of one batch may run on threads at once (without the GIL).

    A cloud with a real coordinate of magnitude over ``limit``
    (:func:`~torchtopo.rips.distances.largest_unscaled`), or not finite, ends the range after
    its magnitude is written: its diagrams would be scaled or refused, so no further work is
    done (and none on NaN distances)."""
    batch, n = points.shape[:2]
    h0_births, h0_deaths, h0_real, h0_lengths, h1_rows, counts, magnitudes = workspace
    valid = real_points(mask, batch, n)
    dist = np.empty((n, n), dtype=points.dtype)
    tree_edges = np.empty((max(n - 1, 0), 2), dtype=np.int64)
    tree_lengths = np.empty(max(n - 1, 0), dtype=points.dtype)
    stats = np.empty(3, dtype=np.int64)
    for b in range(start, stop):
        magnitudes[b] = largest_magnitude(points[b], valid[b])
        if not magnitudes[b] <= limit:  # NaN included
            return
        cloud_distances(points[b], valid[b], dist)
        h0_cloud(points[b], valid[b], dist, h0_births[b], h0_deaths[b], h0_real[b], h0_lengths[b], tree_edges,
                 tree_lengths)
        if with_h1:
            counts[b] = _h1_cloud(dist, valid[b], np.inf, bitmap_bits, h1_rows[b], stats)


@nb.njit(cache=True, nogil=True)
def gather_clouds(points, keep_infinite, limit, workspace):
    """The diagrams of the pairings in ``workspace`` (:func:`pair_clouds` of every cloud of
    ``points`` ``(B, N, D)`` with ``limit``), ``keep_infinite`` as for the gather.

    Returns ``(values, ends, births, deaths, keep, magnitude, least)``: the first five hold an array
    for each of dimensions 0 and 1, written as :func:`~torchtopo.rips._gather_numba.gather_cloud`
    writes them, ``values`` ``(B, K_d, 2)`` in the dtype of ``points``, ``ends``
    ``(B, K_d, 2, 2)`` int64, ``births`` and ``deaths`` ``(B, K_d, 2)`` int64 and ``keep``
    ``(B, K_d)`` bool, where ``K_0 = N`` and ``K_1`` is the most H1 pairs of a cloud (0 without
    H1); ``magnitude`` is the largest absolute real coordinate as a float, ``inf`` if one is not
    finite, and ``least`` the smallest nonzero magnitude of a cloud (its largest absolute real
    coordinate; ``inf`` if every cloud is 0). Past ``limit`` (a cloud's pairing may be missing)
    the arrays are left unwritten, with no H1 rows: the caller scales the clouds or raises.
    """
    batch, n = points.shape[:2]
    h0_births, h0_deaths, h0_real, h0_lengths, h1_rows, counts, magnitudes = workspace
    largest, least = 0.0, np.inf
    for magnitude in magnitudes:
        if not magnitude <= largest:
            largest = magnitude if magnitude == magnitude else np.inf  # NaN: not finite either
        if 0 < magnitude < least:
            least = magnitude
    paired = largest <= limit
    most = counts.max() if paired else 0
    values = (np.empty((batch, n, 2), dtype=points.dtype), np.empty((batch, most, 2), dtype=points.dtype))
    ends = (np.empty((batch, n, 2, 2), dtype=np.int64), np.empty((batch, most, 2, 2), dtype=np.int64))
    births = (np.empty((batch, n, 2), dtype=np.int64), np.empty((batch, most, 2), dtype=np.int64))
    deaths = (np.empty((batch, n, 2), dtype=np.int64), np.empty((batch, most, 2), dtype=np.int64))
    keep = (np.empty((batch, n), dtype=np.bool_), np.empty((batch, most), dtype=np.bool_))
    h1_births = np.empty((most, 2), dtype=np.int64)
    h1_deaths = np.empty((most, 2), dtype=np.int64)
    h1_real = np.empty(most, dtype=np.bool_)
    unmeasured = np.empty(0, dtype=np.float64)
    for b in range(batch if paired else 0):
        gather_cloud(points[b], h0_births[b], h0_deaths[b], h0_real[b], h0_lengths[b], True, np.inf, keep_infinite,
                     b * n, values[0][b], ends[0][b], births[0][b], deaths[0][b], keep[0][b])
        # Rows past the cloud's count are padding (edges -1, not real): the gather pads them.
        for k in range(most):
            real = k < counts[b]
            for side in range(2):
                h1_births[k, side] = h1_rows[b, k, side] if real else -1
                h1_deaths[k, side] = h1_rows[b, k, 2 + side] if real else -1
            h1_real[k] = real
        gather_cloud(points[b], h1_births, h1_deaths, h1_real, unmeasured, False, np.inf, keep_infinite, b * n,
                     values[1][b], ends[1][b], births[1][b], deaths[1][b], keep[1][b])
    return values, ends, births, deaths, keep, largest, least
