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
def gather_cloud(cloud, births, deaths, real, death_lengths, dimension_zero, max_edge, keep_infinite, first,
                 values, ends, births_out, deaths_out, keep):
    """One cloud ``cloud`` ``(N, D)`` of one homology dimension: the pairing's ``births``,
    ``deaths`` ``(K, 2)`` int64 and ``real`` ``(K,)`` bool in, ``values`` ``(K, 2)``, ``ends``
    ``(K, 2, 2)``, ``births_out``, ``deaths_out`` ``(K, 2)`` and ``keep`` ``(K,)`` out, as
    :func:`gather_dimension` describes them; ``death_lengths`` ``(K,)`` float64 when measured
    already, else empty; ``first``: the cloud's first row in the flattened batch."""
    measured = death_lengths.shape[0] > 0
    for k in range(births.shape[0]):
        finite = deaths[k, 0] >= 0
        values[k, 0] = 0.0 if dimension_zero else edge_length(cloud, births[k, 0], births[k, 1])
        if not finite:
            values[k, 1] = 0.0
        elif measured:
            values[k, 1] = death_lengths[k]
        else:
            values[k, 1] = edge_length(cloud, deaths[k, 0], deaths[k, 1])
        if dimension_zero and finite and not np.float64(values[k, 1]) <= max_edge:
            finite = False  # a spanning-tree edge past the cut: the class never dies
        finite_keep = finite and real[k] and values[k, 1] > values[k, 0]
        kept = finite_keep or (keep_infinite and real[k] and not finite)
        if not kept:
            values[k, 0] = 0.0
            values[k, 1] = 0.0
        elif not finite:
            values[k, 1] = np.inf
        for side in range(2):
            ends[k, side, 0] = first
            ends[k, side, 1] = first
            births_out[k, side] = births[k, side] if kept else -1
            deaths_out[k, side] = deaths[k, side] if finite_keep else -1
        if kept and not dimension_zero:
            ends[k, 0, 0] = first + max(births[k, 0], 0)
            ends[k, 0, 1] = first + max(births[k, 1], 0)
        if finite_keep:
            ends[k, 1, 0] = first + deaths[k, 0]
            ends[k, 1, 1] = first + deaths[k, 1]
        keep[k] = kept


@nb.njit(cache=True, nogil=True)
def gather_dimension(points, births, deaths, real, death_lengths, dimension_zero, max_edge, keep_infinite,
                     values, ends, births_out, deaths_out, keep, start, stop):
    """Clouds ``start .. stop - 1`` of one homology dimension (:func:`gather_cloud` each).

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
    unmeasured = np.empty(0, dtype=np.float64)
    for b in range(start, stop):
        lengths = death_lengths[b] if death_lengths.shape[0] > 0 else unmeasured
        gather_cloud(points[b], births[b], deaths[b], real[b], lengths, dimension_zero, max_edge, keep_infinite,
                     b * n, values[b], ends[b], births_out[b], deaths_out[b], keep[b])
