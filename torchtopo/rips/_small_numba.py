"""Numba kernel of a small batch's whole H0 (and H1) computation, in one call.

A call of ``rips_persistence`` on one or a few small clouds (a training step's) is bound by
its fixed costs, not by arithmetic: at m = 64 the kernels of the staged path (the H0 pass, the
H1 reduction and the gather, each a call from Python with its own arrays and tensors) took a
third of the call and the glue between them the rest. :func:`diagrams_from_points` runs every
stage per cloud in the calling thread: the check of the coordinates, the distances, Prim's tree,
the H1 reduction and the gather of both dimensions, with the same kernels as the staged path
(:mod:`torchtopo.rips._h0_numba`, :mod:`torchtopo.rips._native_kernels`,
:mod:`torchtopo.rips._gather_numba`), so both give identical diagrams. Imported lazily:
``import torchtopo`` works without numba. Python calls it through :func:`diagrams_at_address`,
which reads the points where their tensor holds them.
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
def diagrams_at_address(address, batch, n, dim, dtype, mask, with_h1, keep_infinite, bitmap_bits):
    """:func:`diagrams_from_points` of the C-contiguous points ``(batch, n, dim)`` of numpy
    ``dtype`` that start at ``address`` (a tensor's ``data_ptr()``, the tensor kept alive by the
    caller): no array is made in Python (after other work, ``detach().numpy()`` alone took a
    tenth of a call on one small cloud)."""
    points = nb.carray(_pointer(address), (batch, n, dim), dtype)
    return diagrams_from_points(points, mask, with_h1, keep_infinite, bitmap_bits)


@nb.njit(cache=True, nogil=True)
def diagrams_from_points(points, mask, with_h1, keep_infinite, bitmap_bits):
    """The diagrams of dimension 0 and, when ``with_h1``, 1 of ``points`` ``(B, N, D)``
    (float32 or float64, ``B >= 1``, C-contiguous), no cut.

    Inputs: ``mask`` ``(B, N)`` bool, True for real points (None: all are); ``keep_infinite``
    as for the gather; ``bitmap_bits`` as for :func:`~torchtopo.rips._native_kernels.h1_batch`.

    Returns ``(values, ends, births, deaths, keep, magnitude)``: the first five hold an array
    for each of dimensions 0 and 1, written as :func:`~torchtopo.rips._gather_numba.gather_cloud`
    writes them, ``values`` ``(B, K_d, 2)`` in the dtype of ``points``, ``ends``
    ``(B, K_d, 2, 2)`` int64, ``births`` and ``deaths`` ``(B, K_d, 2)`` int64 and ``keep``
    ``(B, K_d)`` bool, where ``K_0 = N`` and ``K_1`` is the most H1 pairs of a cloud (0 without
    H1); ``magnitude`` is the largest absolute real coordinate as a float, ``inf`` if one is not
    finite (the diagrams are then meaningless, and the caller raises).
    """
    batch, n = points.shape[:2]
    valid = real_points(mask, batch, n)
    # H1 pairs of a cloud: at most one per edge outside a spanning tree.
    cap = max(1, n * (n - 1) // 2 - (n - 1)) if with_h1 else 0
    dist = np.empty((n, n), dtype=points.dtype)
    tree_edges = np.empty((max(n - 1, 0), 2), dtype=np.int64)
    tree_lengths = np.empty(max(n - 1, 0), dtype=points.dtype)
    h0_births = np.empty((batch, n, 2), dtype=np.int64)
    h0_deaths = np.empty((batch, n, 2), dtype=np.int64)
    h0_real = np.empty((batch, n), dtype=np.bool_)
    h0_lengths = np.empty((batch, n), dtype=np.float64)
    # The rows of every cloud wait until the most rows of a cloud are known (16 bytes a row, as
    # the staged path's output).
    h1_rows = np.empty((batch, cap, 4), dtype=np.int32)
    unmeasured = np.empty(0, dtype=np.float64)
    stats = np.empty(3, dtype=np.int64)
    counts = np.zeros(batch, dtype=np.int64)
    largest = 0.0
    for b in range(batch):
        magnitude = np.float64(largest_magnitude(points[b], valid[b]))
        if not magnitude <= largest:
            largest = magnitude if magnitude == magnitude else np.inf  # NaN: not finite either
        cloud_distances(points[b], valid[b], dist)
        h0_cloud(points[b], valid[b], dist, h0_births[b], h0_deaths[b], h0_real[b], h0_lengths[b], tree_edges,
                 tree_lengths)
        if with_h1:
            counts[b] = _h1_cloud(dist, valid[b], np.inf, bitmap_bits, h1_rows[b], stats)
    most = counts.max()
    values = (np.empty((batch, n, 2), dtype=points.dtype), np.empty((batch, most, 2), dtype=points.dtype))
    ends = (np.empty((batch, n, 2, 2), dtype=np.int64), np.empty((batch, most, 2, 2), dtype=np.int64))
    births = (np.empty((batch, n, 2), dtype=np.int64), np.empty((batch, most, 2), dtype=np.int64))
    deaths = (np.empty((batch, n, 2), dtype=np.int64), np.empty((batch, most, 2), dtype=np.int64))
    keep = (np.empty((batch, n), dtype=np.bool_), np.empty((batch, most), dtype=np.bool_))
    h1_births = np.empty((most, 2), dtype=np.int64)
    h1_deaths = np.empty((most, 2), dtype=np.int64)
    h1_real = np.empty(most, dtype=np.bool_)
    for b in range(batch):
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
    return values, ends, births, deaths, keep, largest
