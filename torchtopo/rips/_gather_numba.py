"""Numba kernel of the compiled gather: the values, masks and generators of one homology
dimension of a batch of diagrams, measured from the points in one pass.

It applies the rules of :func:`torchtopo.rips.pairing.gather_diagrams` row by row (see
:func:`torchtopo.rips.compiled.compiled_gather`). Imported lazily: ``import torchtopo`` works
without numba.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from ._h0_numba import edge_length


@nb.njit(cache=True, nogil=True)
def gather_dimension(points, births, deaths, real, death_lengths, dimension_zero, max_edge, keep_infinite,
                     values, ends, births_out, deaths_out, keep, start, stop):
    """Clouds ``start .. stop - 1`` of one homology dimension.

    Inputs: ``points`` ``(B, N, D)``; the pairing's ``births``, ``deaths`` ``(B, K, 2)`` int64
    (``-1``: padding, and the death of an infinite bar) and ``real`` ``(B, K)`` bool;
    ``death_lengths``: ``(B, K)`` float64, the exact lengths of the death edges when the pairing
    measured them already (they are read instead of measured), or ``(0, 0)``;
    ``dimension_zero``: births are 0 and ``max_edge`` (float64, ``inf`` for no cut) cuts the
    deaths, compared after rounding to the dtype of ``points``.

    Outputs: ``values`` ``(B, K, 2)`` (dtype of ``points``): the pairs, ``(0, 0)`` where not
    kept and death ``inf`` for a kept infinite bar; ``ends`` ``(B, K, 2, 2)`` int64: for each
    value, the rows of ``points.reshape(B * N, D)`` of its edge's two ends (twice the cloud's
    first row for a value that is not an edge length, so its gradient is 0); ``births_out``,
    ``deaths_out`` ``(B, K, 2)`` int64: the generators, ``-1`` where not kept (the death also
    for an infinite bar); ``keep`` ``(B, K)`` bool.
    """
    n = points.shape[1]
    measured = death_lengths.shape[0] > 0
    for b in range(start, stop):
        cloud = points[b]
        first = b * n
        for k in range(births.shape[1]):
            finite = deaths[b, k, 0] >= 0
            values[b, k, 0] = 0.0 if dimension_zero else edge_length(cloud, births[b, k, 0], births[b, k, 1])
            if not finite:
                values[b, k, 1] = 0.0
            elif measured:
                values[b, k, 1] = death_lengths[b, k]
            else:
                values[b, k, 1] = edge_length(cloud, deaths[b, k, 0], deaths[b, k, 1])
            if dimension_zero and finite and not np.float64(values[b, k, 1]) <= max_edge:
                finite = False  # a spanning-tree edge past the cut: the class never dies
            finite_keep = finite and real[b, k] and values[b, k, 1] > values[b, k, 0]
            kept = finite_keep or (keep_infinite and real[b, k] and not finite)
            if not kept:
                values[b, k, 0] = 0.0
                values[b, k, 1] = 0.0
            elif not finite:
                values[b, k, 1] = np.inf
            for side in range(2):
                ends[b, k, side, 0] = first
                ends[b, k, side, 1] = first
                births_out[b, k, side] = births[b, k, side] if kept else -1
                deaths_out[b, k, side] = deaths[b, k, side] if finite_keep else -1
            if kept and not dimension_zero:
                ends[b, k, 0, 0] = first + max(births[b, k, 0], 0)
                ends[b, k, 0, 1] = first + max(births[b, k, 1], 0)
            if finite_keep:
                ends[b, k, 1, 0] = first + deaths[b, k, 0]
                ends[b, k, 1, 1] = first + deaths[b, k, 1]
            keep[b, k] = kept
