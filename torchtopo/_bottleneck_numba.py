"""Numba kernel of the exact bottleneck distance: a batch of diagram pairs, ranges of pairs on
threads (GIL released). Imported lazily by :func:`torchtopo.distances.bottleneck_distance`.

Each pair is read straight from the padded batch: the kernel checks and sorts the points by kind
(finite; gudhi's essential kinds ``(-inf, d)``, ``(b, +inf)``, ``(-inf, +inf)``; ``(+-inf,
+-inf)`` on the diagonal), matches the essential ones in sorted order, and solves the finite part
as below. It returns, per pair, the coordinates whose difference is the distance, so that the
caller evaluates that one difference from its tensors (and the gradient follows it).

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
def _finite_pair(x, y):
    """The bottleneck distance of two finite diagrams ``x`` ``(n, 2)`` and ``y`` ``(m, 2)`` and
    the entry that attains it: ``(t, kind, i, j)``, kind 1 = the pair ``(i, j)``, 2 = point ``i``
    of ``x`` to the diagonal, 3 = point ``j`` of ``y`` to the diagonal, 0 = none (both empty)."""
    n, m = x.shape[0], y.shape[0]
    if n == 0 and m == 0:
        return 0.0, 0, -1, -1
    if n == 1 and m == 1:  # (the two points matched, or both on the diagonal)
        c, dx, dy = _cost(x[0, 0], x[0, 1], y[0, 0], y[0, 1]), _diagonal(x[0, 0], x[0, 1]), _diagonal(y[0, 0], y[0, 1])
        if c < max(dx, dy):
            return c, 1, 0, 0
        return (dx, 2, 0, -1) if dx >= dy else (dy, 3, -1, 0)
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
    t = upper
    if lower < upper:  # (equal bounds, as for one empty side, leave nothing to search)
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
        candidates[count] = upper
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
    for i in range(n):
        for j in range(m):
            if _cost(x[i, 0], x[i, 1], y[j, 0], y[j, 1]) == t:
                return t, 1, i, j
    for i in range(n):
        if _diagonal(x[i, 0], x[i, 1]) == t:
            return t, 2, i, -1
    for j in range(m):
        if _diagonal(y[j, 0], y[j, 1]) == t:
            return t, 3, -1, j
    return t, 0, -1, -1  # (not reached: t is one of the distances above)


@nb.njit(cache=True, nogil=True)
def _sort_kinds(pairs, mask, b, finite, rows, no_birth, no_death, error_nan, error_point):
    """Row ``b`` of ``pairs`` ``(B, K, 2)`` (real where ``mask`` ``(B, K)``) by kind: the finite
    points copied to ``finite`` ``(K, 2)`` and their rows to ``rows`` ``(K,)``; the rows of the
    points ``(-inf, d)`` and ``(b, +inf)`` to ``no_birth`` and ``no_death`` ``(K,)``, sorted by
    their finite coordinate. Returns the counts of the four kinds (finite, no birth, no death,
    neither) and the error bits: ``error_nan`` for a NaN, ``error_point`` for a point ``(+inf,
    d)`` or ``(b, -inf)``."""
    n_finite = n_birth = n_death = n_neither = 0
    error = 0
    for k in range(pairs.shape[1]):
        if not mask[b, k]:
            continue
        u, v = pairs[b, k, 0], pairs[b, k, 1]
        if np.isnan(u) or np.isnan(v):
            error |= error_nan
        elif np.isfinite(u) and np.isfinite(v):
            finite[n_finite, 0] = u
            finite[n_finite, 1] = v
            rows[n_finite] = k
            n_finite += 1
        elif u == -np.inf and np.isfinite(v):
            no_birth[n_birth] = k
            n_birth += 1
        elif np.isfinite(u) and v == np.inf:
            no_death[n_death] = k
            n_death += 1
        elif u == -np.inf and v == np.inf:
            n_neither += 1
        elif u != v:  # ((+-inf, +-inf) lies on the diagonal)
            error |= error_point
    if n_birth > 1:  # (sorting allocates: most diagrams have no essential point)
        no_birth[:n_birth] = no_birth[:n_birth][np.argsort(pairs[b, no_birth[:n_birth], 1])]
    if n_death > 1:
        no_death[:n_death] = no_death[:n_death][np.argsort(pairs[b, no_death[:n_death], 0])]
    return n_finite, n_birth, n_death, n_neither, error


@nb.njit(cache=True, nogil=True)
def _essential(x, rows_x, y, rows_y, b, count, column):
    """gudhi's essential part of one kind in pair ``b``: the ``count`` rows of ``x`` (sorted by
    their finite ``column``) matched in order to those of ``y``. Returns the largest gap and its
    two rows."""
    gap, i, j = -1.0, -1, -1
    for k in range(count):
        g = abs(x[b, rows_x[k], column] - y[b, rows_y[k], column])
        if g > gap:
            gap, i, j = g, rows_x[k], rows_y[k]
    return gap, i, j


@nb.njit(cache=True, nogil=True)
def _edge(out_index, out_scale, b, p, q, scale):
    """Pair ``b``'s distance is ``scale * |c[p] - c[q]|`` (see :func:`bottleneck_batch`)."""
    out_index[0, b] = p
    out_index[1, b] = q
    out_scale[b, 0] = scale


@nb.njit(cache=True, nogil=True)
def bottleneck_batch(x, mx, y, my, keep, out_index, out_scale, out_error, start, stop):
    """Pairs ``start .. stop - 1`` of ``x`` ``(B, Kx, 2)`` float64, real where ``mx`` ``(B, Kx)``
    (``y``, ``my`` likewise); ``keep``: gudhi's ``keep_essential_parts``.

    The distance of pair ``b`` is ``out_scale[b, 0] * |c[out_index[0, b]] - c[out_index[1, b]]|
    + out_scale[b, 1]`` over the coordinates ``c = concat(x.ravel(), y.ravel(), [0])``: the two
    coordinates of the bottleneck edge (of a point and its diagonal projection at scale 1/2), or
    the final zero with an offset of ``inf`` when the pair has different numbers of essential
    points of one kind (``keep``). ``out_error[b]`` has bit 1 for a NaN in ``x``, 2 for a point
    ``(+inf, d)`` or ``(b, -inf)`` in ``x``, 4 and 8 for those in ``y`` (0: none; the pair is then
    not solved)."""
    kx, ky = x.shape[1], y.shape[1]
    zero = x.size + y.size
    finite_x, finite_y = np.empty((kx, 2)), np.empty((ky, 2))
    rows_x, no_birth_x, no_death_x = np.empty(kx, np.int64), np.empty(kx, np.int64), np.empty(kx, np.int64)
    rows_y, no_birth_y, no_death_y = np.empty(ky, np.int64), np.empty(ky, np.int64), np.empty(ky, np.int64)
    for b in range(start, stop):
        n, nb_x, nd_x, nn_x, error_x = _sort_kinds(x, mx, b, finite_x, rows_x, no_birth_x, no_death_x, 1, 2)
        m, nb_y, nd_y, nn_y, error_y = _sort_kinds(y, my, b, finite_y, rows_y, no_birth_y, no_death_y, 4, 8)
        out_error[b] = error_x | error_y
        _edge(out_index, out_scale, b, zero, zero, 0.0)
        out_scale[b, 1] = 0.0
        if out_error[b]:
            continue
        if keep and (nb_x != nb_y or nd_x != nd_y or nn_x != nn_y):
            out_scale[b, 1] = np.inf
            continue
        t, kind, i, j = _finite_pair(finite_x[:n], finite_y[:m])
        if kind == 1:
            i, j = rows_x[i], rows_y[j]
            column = 0 if abs(x[b, i, 0] - y[b, j, 0]) >= abs(x[b, i, 1] - y[b, j, 1]) else 1
            _edge(out_index, out_scale, b, (b * kx + i) * 2 + column, x.size + (b * ky + j) * 2 + column, 1.0)
        elif kind == 2:
            i = rows_x[i]
            _edge(out_index, out_scale, b, (b * kx + i) * 2 + 1, (b * kx + i) * 2, 0.5)
        elif kind == 3:
            j = rows_y[j]
            _edge(out_index, out_scale, b, x.size + (b * ky + j) * 2 + 1, x.size + (b * ky + j) * 2, 0.5)
        if keep:  # gudhi's essential parts: (-inf, d) matched by d (column 1), (b, +inf) by b (column 0)
            gap, i, j = _essential(x, no_birth_x, y, no_birth_y, b, nb_x, 1)
            if gap > t:
                t = gap
                _edge(out_index, out_scale, b, (b * kx + i) * 2 + 1, x.size + (b * ky + j) * 2 + 1, 1.0)
            gap, i, j = _essential(x, no_death_x, y, no_death_y, b, nd_x, 0)
            if gap > t:
                _edge(out_index, out_scale, b, (b * kx + i) * 2, x.size + (b * ky + j) * 2, 1.0)
