"""Numba kernel of the CPU H0 path: Prim's algorithm, clouds split across threads.

The same steps and tie-breaks as the torch loop in :mod:`torchtopo.rips.h0` (lowest index among
equal candidates; after a cloud's real points are exhausted, steps pick vertex 0 at length
``inf``), so both give identical pairings. Imported lazily: ``import torchtopo`` works without
numba.
"""

from __future__ import annotations

import numba as nb
import numpy as np
from numba import types
from numba.extending import overload


@nb.njit(cache=True, nogil=True)
def _prim_cloud(dist, valid, tree_edges, tree_lengths):
    """Prim's tree of one cloud from its distances ``dist`` ``(N, N)``: ``tree_edges`` ``(N - 1, 2)``
    and ``tree_lengths`` ``(N - 1,)`` in the order the vertices join; returns the root (the first
    valid vertex)."""
    n = valid.shape[0]
    root = 0
    while root < n - 1 and not valid[root]:
        root += 1
    outside = valid.copy()
    outside[root] = False
    best = np.full(n, np.inf, dtype=dist.dtype)
    parent = np.full(n, root, dtype=np.int64)
    for j in range(n):
        if outside[j]:
            best[j] = dist[root, j]
    for step in range(n - 1):
        vertex = 0
        smallest = np.inf
        for j in range(n):
            if best[j] < smallest:
                smallest = best[j]
                vertex = j
        tree_edges[step, 0] = parent[vertex]
        tree_edges[step, 1] = vertex
        tree_lengths[step] = best[vertex]
        outside[vertex] = False
        best[vertex] = np.inf
        row = dist[vertex]
        for j in range(n):
            if outside[j] and row[j] < best[j]:
                best[j] = row[j]
                parent[j] = vertex
    return root


@nb.njit(cache=True, nogil=True)
def prim_batch(distances, valid, tree_edges, tree_lengths, roots, start, stop):
    """Fill ``tree_edges`` ``(B, N - 1, 2)``, ``tree_lengths`` ``(B, N - 1)`` and ``roots`` ``(B,)``
    for clouds ``start .. stop - 1``, without the GIL."""
    for b in range(start, stop):
        roots[b] = _prim_cloud(distances[b], valid[b], tree_edges[b], tree_lengths[b])


@nb.njit(cache=True, nogil=True, fastmath=True, inline="always")
def _distance(row_i, row_j):
    """Euclidean distance of two rows in the direct form, in their dtype."""
    total = row_i[0] - row_i[0]  # a zero of the points' dtype: the loop vectorises
    for t in range(row_i.shape[0]):
        diff = row_i[t] - row_j[t]
        total += diff * diff
    return np.sqrt(total)


@nb.njit(cache=True, nogil=True, fastmath=True)
def cloud_distances(points, valid, out):
    """Fill ``out`` ``(N, N)`` with the Euclidean distances of ``points`` ``(N, D)`` in the
    direct form (sum of squared differences, in the points' dtype): no product-form
    cancellation, so no centring is needed. Rows and columns of points that are not ``valid``
    are ``inf``; the diagonal is 0. Meant for ordering edges, as the product form.

    Two rows against four columns at a time: each load of a column row serves two sums and
    each load of the two rows four (the loop is bound by loads; eight sums still fit in
    registers), 20 % faster than one row against four at D = 512.
    """
    n = points.shape[0]
    i = 0
    while i < n:
        out[i, i] = 0
        if i + 1 == n:
            break
        p = points[i]
        q = points[i + 1]
        out[i + 1, i + 1] = 0
        out[i, i + 1] = _distance(p, q)
        j = i + 2
        while j + 3 < n:
            a = points[j]
            b = points[j + 1]
            c = points[j + 2]
            e = points[j + 3]
            zero = p[0] - p[0]
            pa, pb, pc, pe, qa, qb, qc, qe = zero, zero, zero, zero, zero, zero, zero, zero
            for t in range(p.shape[0]):
                x = p[t]
                y = q[t]
                pa += (x - a[t]) * (x - a[t])
                qa += (y - a[t]) * (y - a[t])
                pb += (x - b[t]) * (x - b[t])
                qb += (y - b[t]) * (y - b[t])
                pc += (x - c[t]) * (x - c[t])
                qc += (y - c[t]) * (y - c[t])
                pe += (x - e[t]) * (x - e[t])
                qe += (y - e[t]) * (y - e[t])
            out[i, j], out[i, j + 1], out[i, j + 2], out[i, j + 3] = np.sqrt(pa), np.sqrt(pb), np.sqrt(pc), np.sqrt(pe)
            out[i + 1, j], out[i + 1, j + 1] = np.sqrt(qa), np.sqrt(qb)
            out[i + 1, j + 2], out[i + 1, j + 3] = np.sqrt(qc), np.sqrt(qe)
            j += 4
        while j < n:
            out[i, j] = _distance(p, points[j])
            out[i + 1, j] = _distance(q, points[j])
            j += 1
        i += 2
    for i in range(n):
        for j in range(i + 1, n):
            if not (valid[i] and valid[j]):
                out[i, j] = np.inf
            out[j, i] = out[i, j]


def _magnitude_bits(points):
    """``points`` viewed as integers of their width, and the integer that clears the sign bit;
    compiled code only (see the overload below)."""
    raise TypeError("_magnitude_bits is called from compiled code only")


@overload(_magnitude_bits)
def _magnitude_bits_compiled(points):
    if points.dtype == types.float32:
        return lambda points: (points.view(np.int32), np.int32(0x7FFFFFFF))
    if points.dtype == types.float64:
        return lambda points: (points.view(np.int64), np.int64(0x7FFFFFFFFFFFFFFF))
    return None


@nb.njit(cache=True, nogil=True)
def largest_magnitude(points, valid):
    """The largest absolute coordinate of the real rows (``valid``) of one cloud ``points``
    ``(N, D)``, C-contiguous float32 or float64: ``inf`` or NaN exactly when a real coordinate
    is not finite. Computed as one integer max over the coordinates' bits with the sign bit
    cleared, which order like the absolute values (NaN above ``inf``): it vectorises, where a
    float max that must propagate NaN does not."""
    bits, magnitude_mask = _magnitude_bits(points)
    largest = bits[0, 0] & 0
    for i in range(valid.shape[0]):
        if valid[i]:
            row = bits[i]
            for t in range(row.shape[0]):
                largest = max(largest, row[t] & magnitude_mask)
    as_float = np.empty(1, dtype=bits.dtype)
    as_float[0] = largest
    return as_float.view(points.dtype)[0]


@nb.njit(cache=True, nogil=True, inline="always")
def real_points(mask, batch, n):
    """``mask`` ``(B, N)`` bool, True for real points, or all True ``(batch, n)`` when it is None."""
    if mask is None:
        return np.ones((batch, n), dtype=np.bool_)
    return mask


@nb.njit(cache=True, nogil=True)
def h0_cloud(points, valid, dist, birth_edges, death_edges, real_rows, death_lengths, tree_edges, tree_lengths):
    """The H0 pairing of one cloud ``points`` ``(N, D)`` from its distances ``dist`` ``(N, N)``
    (:func:`cloud_distances`): ``birth_edges``, ``death_edges`` ``(N, 2)`` int64, ``real_rows``
    ``(N,)`` bool and the exact lengths of the death edges (:func:`edge_length`) into
    ``death_lengths`` ``(N,)`` float64 (0 in rows without one); ``tree_edges`` ``(N - 1, 2)``
    int64 and ``tree_lengths`` ``(N - 1,)`` are scratch.

    The rows are those of :func:`torchtopo.rips.h0.finish_h0_pairing`: tree edges sorted by
    length (stable), then the infinite bar ``-1`` born at the root, then ``-1`` (rows past the
    real points' count).
    """
    n = valid.shape[0]
    root = _prim_cloud(dist, valid, tree_edges, tree_lengths)
    order = np.argsort(tree_lengths, kind="mergesort")
    count = 0
    for j in range(n):
        if valid[j]:
            count += 1
    for row in range(n):
        real_rows[row] = row < count
        death_lengths[row] = 0.0
        if row < count - 1:
            edge = order[row]
            death_edges[row, 0] = tree_edges[edge, 0]
            death_edges[row, 1] = tree_edges[edge, 1]
            birth_edges[row, 0] = tree_edges[edge, 1]
            birth_edges[row, 1] = tree_edges[edge, 1]
            death_lengths[row] = edge_length(points, tree_edges[edge, 0], tree_edges[edge, 1])
        elif row == count - 1:
            death_edges[row, 0] = -1
            death_edges[row, 1] = -1
            birth_edges[row, 0] = root
            birth_edges[row, 1] = root
        else:
            death_edges[row, 0] = -1
            death_edges[row, 1] = -1
            birth_edges[row, 0] = -1
            birth_edges[row, 1] = -1


@nb.njit(cache=True, nogil=True)
def h0_from_points(points, mask, dist, birth_edges, death_edges, real_rows, death_lengths, largest, start, stop):
    """The H0 pass over clouds ``start .. stop - 1`` of ``points`` ``(B, N, D)`` (C-contiguous)
    with real points ``mask`` ``(B, N)`` bool (None: all), each cloud read once while it is in
    cache, without the GIL: the largest magnitude of its real coordinates
    (:func:`largest_magnitude`, into ``largest`` ``(B,)`` of the points' dtype: the finiteness
    and scale check), the distances (:func:`cloud_distances`, into ``dist`` ``(B, N, N)``, or
    into a scratch matrix when ``dist`` is ``(0, N, N)``), then :func:`h0_cloud` into
    ``birth_edges``, ``death_edges`` ``(B, N, 2)`` int64, ``real_rows`` ``(B, N)`` bool and
    ``death_lengths`` ``(B, N)`` float64. A cloud with a non-finite real coordinate gets a
    meaningless pairing: the caller raises on ``largest`` first.
    """
    batch, n = points.shape[:2]
    valid = real_points(mask, batch, n)
    tree_edges = np.empty((max(n - 1, 0), 2), dtype=np.int64)
    tree_lengths = np.empty(max(n - 1, 0), dtype=dist.dtype)
    scratch = np.empty((n, n), dtype=dist.dtype)
    for b in range(start, stop):
        largest[b] = largest_magnitude(points[b], valid[b])
        cloud = dist[b] if dist.shape[0] > 0 else scratch
        cloud_distances(points[b], valid[b], cloud)
        h0_cloud(points[b], valid[b], cloud, birth_edges[b], death_edges[b], real_rows[b], death_lengths[b],
                 tree_edges, tree_lengths)


@nb.njit(cache=True, nogil=True, fastmath=True)
def edge_length(cloud, i, j):
    """Euclidean length of the edge ``{i, j}`` of ``cloud`` ``(N, D)`` (``-1`` read as vertex 0),
    summed in float64: the difference of two float32 is exact in float64."""
    row_i = cloud[max(i, 0)]
    row_j = cloud[max(j, 0)]
    total = 0.0
    for t in range(cloud.shape[1]):
        diff = np.float64(row_i[t]) - np.float64(row_j[t])
        total += diff * diff
    return np.sqrt(total)


@nb.njit(cache=True, nogil=True)
def edge_lengths_batch(points, edges, out, start, stop):
    """``out[b, k]`` = :func:`edge_length` of edge ``edges[b, k]`` of cloud ``points[b]``
    (``(B, N, D)``; ``edges`` ``(B, K, 2)`` int64). Clouds ``start .. stop - 1``."""
    for b in range(start, stop):
        for k in range(edges.shape[1]):
            out[b, k] = edge_length(points[b], edges[b, k, 0], edges[b, k, 1])
