"""Numba kernel of the exact bottleneck distance: a batch of diagram pairs, ranges of pairs on
threads (GIL released). Imported lazily by :func:`torchtopo.distances.bottleneck_distance`.

For one pair of finite diagrams ``X`` (n points) and ``Y`` (m points) under the L-infinity
ground metric, a threshold ``t`` is feasible when a partial matching of cost at most ``t`` exists:
every point of ``X`` whose distance to the diagonal exceeds ``t`` (a *heavy* point) must be
matched to a point of ``Y`` within ``t``, and the same for ``Y``; the other points go to the
diagonal. By the Mendelsohn-Dulmage theorem a matching covering the heavy points of both sides
exists as soon as one covers the heavy points of ``X`` and one those of ``Y``: two one-sided
bipartite matchings (Kuhn's augmenting paths) decide ``t``. The distance is the smallest feasible
candidate among the pairwise and diagonal distances, found by binary search between a lower
bound (every point must go somewhere) and an upper bound (everything to the diagonal).
"""

from __future__ import annotations

import numba as nb
import numpy as np


@nb.njit(cache=True, nogil=True)
def _cost(xb, xd, yb, yd):
    return max(abs(xb - yb), abs(xd - yd))


@nb.njit(cache=True, nogil=True)
def _diagonal(b, d):
    """L-infinity distance of (b, d) to the diagonal."""
    return abs(d - b) / 2


@nb.njit(cache=True, nogil=True)
def _augment(root, rows, cols, t, match_col, seen, stack_row, stack_pos):
    """Kuhn's augmenting path from the row ``root`` (iterative depth-first search); rows are the
    heavy points ``rows[:heavy_count]`` as (birth, death), columns every point of the other side.
    Returns whether ``root`` got matched."""
    m = cols.shape[0]
    top = 0
    stack_row[0] = root
    stack_pos[0] = 0
    while top >= 0:
        r = stack_row[top]
        j = stack_pos[top]
        advanced = False
        while j < m:
            if not seen[j] and _cost(rows[r, 0], rows[r, 1], cols[j, 0], cols[j, 1]) <= t:
                seen[j] = True
                stack_pos[top] = j + 1
                if match_col[j] < 0:
                    for k in range(top, -1, -1):
                        match_col[stack_pos[k] - 1] = stack_row[k]
                    return True
                top += 1
                stack_row[top] = match_col[j]
                stack_pos[top] = 0
                advanced = True
                break
            j += 1
        if not advanced:
            top -= 1
    return False


@nb.njit(cache=True, nogil=True)
def _covers_heavy(points, others, t, match_col, seen, stack_row, stack_pos, heavy):
    """Whether the points of ``points`` farther than ``t`` from the diagonal can all be matched
    to distinct points of ``others`` within ``t``."""
    count = 0
    for i in range(points.shape[0]):
        if _diagonal(points[i, 0], points[i, 1]) > t:
            heavy[count, 0] = points[i, 0]
            heavy[count, 1] = points[i, 1]
            count += 1
    if count > others.shape[0]:
        return False
    match_col[: others.shape[0]] = -1
    for r in range(count):
        seen[: others.shape[0]] = False
        if not _augment(r, heavy[:count], others, t, match_col, seen, stack_row, stack_pos):
            return False
    return True


@nb.njit(cache=True, nogil=True)
def _feasible(x, y, t, match_col, seen, stack_row, stack_pos, heavy):
    return (_covers_heavy(x, y, t, match_col, seen, stack_row, stack_pos, heavy)
            and _covers_heavy(y, x, t, match_col, seen, stack_row, stack_pos, heavy))


@nb.njit(cache=True, nogil=True)
def _pair(x, y, out_value, out_kind, out_i, out_j, b):
    """The bottleneck distance of one pair and the entry that attains it: kind 1 = the pair
    ``(i, j)``, 2 = point ``i`` of ``x`` to the diagonal, 3 = point ``j`` of ``y`` to the
    diagonal, 0 = none (both empty)."""
    n, m = x.shape[0], y.shape[0]
    # bounds: everything to the diagonal is feasible; each point goes at least as far as its
    # nearest option
    upper = 0.0
    lower = 0.0
    for i in range(n):
        diag = _diagonal(x[i, 0], x[i, 1])
        upper = max(upper, diag)
        nearest = diag
        for j in range(m):
            nearest = min(nearest, _cost(x[i, 0], x[i, 1], y[j, 0], y[j, 1]))
        lower = max(lower, nearest)
    for j in range(m):
        diag = _diagonal(y[j, 0], y[j, 1])
        upper = max(upper, diag)
        nearest = diag
        for i in range(n):
            nearest = min(nearest, _cost(x[i, 0], x[i, 1], y[j, 0], y[j, 1]))
        lower = max(lower, nearest)
    candidates = np.empty(n * m + n + m + 1)
    count = 0
    for i in range(n):
        for j in range(m):
            c = _cost(x[i, 0], x[i, 1], y[j, 0], y[j, 1])
            if lower <= c <= upper:
                candidates[count] = c
                count += 1
        c = _diagonal(x[i, 0], x[i, 1])
        if lower <= c <= upper:
            candidates[count] = c
            count += 1
    for j in range(m):
        c = _diagonal(y[j, 0], y[j, 1])
        if lower <= c <= upper:
            candidates[count] = c
            count += 1
    candidates[count] = upper  # 0 for two empty diagrams
    values = np.unique(candidates[: count + 1])
    size = max(n, m) + 1
    match_col = np.empty(size, dtype=np.int64)
    seen = np.empty(size, dtype=np.bool_)
    stack_row = np.empty(size, dtype=np.int64)
    stack_pos = np.empty(size, dtype=np.int64)
    heavy = np.empty((size, 2))
    lo, hi = 0, values.shape[0] - 1  # values[hi] = upper is feasible
    while lo < hi:
        mid = (lo + hi) // 2
        if _feasible(x, y, values[mid], match_col, seen, stack_row, stack_pos, heavy):
            hi = mid
        else:
            lo = mid + 1
    t = values[lo]
    out_value[b] = t
    out_kind[b] = 0
    out_i[b] = -1
    out_j[b] = -1
    for i in range(n):
        for j in range(m):
            if _cost(x[i, 0], x[i, 1], y[j, 0], y[j, 1]) == t:
                out_kind[b], out_i[b], out_j[b] = 1, i, j
                return
    for i in range(n):
        if _diagonal(x[i, 0], x[i, 1]) == t:
            out_kind[b], out_i[b] = 2, i
            return
    for j in range(m):
        if _diagonal(y[j, 0], y[j, 1]) == t:
            out_kind[b], out_j[b] = 3, j
            return


@nb.njit(cache=True, nogil=True)
def bottleneck_batch(x, nx, y, ny, out_value, out_kind, out_i, out_j, start, stop):
    """Pairs ``start .. stop - 1``: ``x`` ``(B, Kx, 2)`` float64 with ``nx[b]`` finite points at
    the front of row ``b`` (``y`` likewise); fills the value and the attaining entry per pair."""
    for b in range(start, stop):
        _pair(x[b, : nx[b]], y[b, : ny[b]], out_value, out_kind, out_i, out_j, b)
