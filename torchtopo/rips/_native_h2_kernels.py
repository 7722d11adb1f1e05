"""Numba kernels of the native H2 backend: dimensions 1 and 2 of one cloud at a time per thread.

Imported lazily by :mod:`torchtopo.rips.native_h2`, so ``import torchtopo`` works without numba.
The edge order, the cut at ``min(max_edge, enclosing radius)``, the spanning-tree clearing, the
apparent pairs and the reduction of dimension 1 are those of
:mod:`torchtopo.rips._native_kernels` (imported, not copied); this module adds dimension 2.

Order (extending the one of dimension 1):

- triangles by (rank of their longest edge, then the third vertex), the int64 key
  ``rank * n + c``, as in dimension 1;
- tetrahedra by (rank of their longest edge, then the two other vertices ``x < y`` in colex
  order: ``y``, then ``x``), the int64 key ``(rank * n + y) * n + x``.

Generators follow: the birth edge of a dimension-2 pair is the longest edge (by rank) of its
triangle, the death edge the longest edge of its tetrahedron.

With that order the pair (triangle ``(r, c)`` on edge ``{a, b}``, tetrahedron ``T``) is apparent
exactly when some vertex ``l < c`` has ``{a, l}``, ``{b, l}`` and ``{c, l}`` all earlier than
edge ``r``; ``T`` is then ``(r, c, smallest such l)`` and the pair has zero persistence. The
columns of dimension 2 (cohomology: columns are triangles in reverse order, rows tetrahedra) are
cleared where dimension 1 paired the triangle (its apparent pairs and the pivots of its reduced
columns) and skipped where apparent (:func:`_h2_columns`); of the rest, those whose first
cofacet has their diameter and is no other column's pivot pair up at once (ripser's emergent
pairs), the others are reduced with a pivot table and a bitmap (or heap) working column, their
coboundaries enumerated over the fourth vertex (no matrix is ever built: :func:`_reduce_h2`).
"""

from __future__ import annotations

import numba as nb
import numpy as np
from numba.cpython.unsafe.numbers import trailing_zeros

from ._native_kernels import (
    ABSENT,
    REDUCE,
    _emit,
    _filtration,
    _grow,
    _grow_rows,
    _heapify,
    _insert,
    _lookup,
    _mark_columns,
    _pivot,
    _push,
    _reduce,
    _store_column,
)


@nb.njit(cache=True, nogil=True)
def _tetrahedron(r, u, v, n):
    """Key of the tetrahedron with longest edge of rank ``r`` and other vertices ``u``, ``v``."""
    if u < v:
        return (np.int64(r) * n + v) * n + u
    return (np.int64(r) * n + u) * n + v


@nb.njit(cache=True, nogil=True)
def _cofacet(row_a, row_b, row_c, r, a, b, c, l, n):
    """Key of the tetrahedron ``{a, b, c, l}`` (triangle ``{a, b, c}`` whose longest edge
    ``{a, b}`` has rank ``r``); -1 if not in the filtration."""
    ra = row_a[l]
    rb = row_b[l]
    rc = row_c[l]
    if ra == ABSENT or rb == ABSENT or rc == ABSENT:  # also l in {a, b, c}
        return np.int64(-1)
    if ra < r and rb < r and rc < r:
        return _tetrahedron(r, c, l, n)
    if ra > rb and ra > rc:
        return _tetrahedron(ra, b, c, n)
    if rb > rc:
        return _tetrahedron(rb, a, c, n)
    return _tetrahedron(rc, a, b, n)


@nb.njit(cache=True, nogil=True, inline="always")
def _triangle(rank, src, dst, triangle, n):
    """The triangle of key ``r * n + c`` (longest edge ``{a, b}`` of rank ``r``, third vertex
    ``c``): ``(r, a, b, c)`` and the rows of ``rank`` at ``a``, ``b``, ``c`` that
    :func:`_cofacet` reads."""
    r = triangle // n
    c = triangle - r * n
    a = src[r]
    b = dst[r]
    return r, a, b, c, rank[a], rank[b], rank[c]


@nb.njit(cache=True, nogil=True)
def _push_coboundary(rank, src, dst, triangle, n, floor, heap, size):
    """Push the keys ``>= floor`` of the cofacets of ``triangle`` (key ``r * n + c``); ``heap``
    has room for ``n`` more."""
    r, a, b, c, row_a, row_b, row_c = _triangle(rank, src, dst, triangle, n)
    for l in range(n):
        key = _cofacet(row_a, row_b, row_c, r, a, b, c, l, n)
        if key >= floor:
            size = _push(heap, size, key)
    return size


@nb.njit(cache=True, nogil=True)
def _toggle_coboundary(rank, src, dst, triangle, n, floor, bits, summary, touched, n_touched):
    """Flip the bits of the cofacets ``>= floor`` of ``triangle``, mark their words in
    ``summary`` and note them in ``touched`` (room for ``n`` more); the new count of notes. The
    twin of :func:`_push_coboundary`, as in dimension 1."""
    r, a, b, c, row_a, row_b, row_c = _triangle(rank, src, dst, triangle, n)
    for l in range(n):
        key = _cofacet(row_a, row_b, row_c, r, a, b, c, l, n)
        if key >= floor:
            word = key >> 6
            bits[word] ^= np.int64(1) << (key & 63)
            summary[word >> 6] |= np.int64(1) << (word & 63)
            touched[n_touched] = word
            n_touched += 1
    return n_touched


@nb.njit(cache=True, nogil=True)
def _next_set(bits, summary, start):
    """The smallest set bit of ``bits`` at or after ``start``; -1 if none. ``summary`` has a bit
    for every word of ``bits`` that may be non-zero (cleared here when found zero)."""
    word = start >> 6
    found = bits[word] & (np.int64(-1) << (start & 63))
    if found != 0:
        return word * 64 + trailing_zeros(found)
    word += 1
    group = word >> 6
    if group == summary.shape[0]:
        return np.int64(-1)
    candidates = summary[group] & (np.int64(-1) << (word & 63))
    while True:
        while candidates != 0:
            word = group * 64 + trailing_zeros(candidates)
            if bits[word] != 0:
                return word * 64 + trailing_zeros(bits[word])
            summary[group] &= ~(np.int64(1) << (word & 63))
            candidates &= candidates - 1
        group += 1
        if group == summary.shape[0]:
            return np.int64(-1)
        candidates = summary[group]


@nb.njit(cache=True, nogil=True)
def _apparent_vertex(row_a, row_b, row_c, r, c):
    """The smallest ``l < c`` whose edges to the triangle ``(r, c)`` on ``{a, b}`` all come
    before edge ``r`` (the triangle's apparent cofacet is then ``(r, c, l)``); -1 if none."""
    for l in range(c):
        if row_a[l] < r and row_b[l] < r and row_c[l] < r:  # ABSENT (and l in {a, b}) fail
            return l
    return -1


@nb.njit(cache=True, nogil=True)
def _h2_columns(rank, src, dst, columns, pivots):
    """The dimension-2 columns of one cloud to reduce: ``(todo, shortcut, stats)``.

    ``todo`` ``(k,)`` int64: their triangle keys in increasing order; ``shortcut`` ``(k,)``
    int32: for a column whose first cofacet ``(r, l, c)`` has its diameter and is no apparent
    column's pivot, that vertex ``l`` (the pair is then emergent unless a reduced column took
    the pivot first), else -1; ``stats`` ``(3,)``: columns, apparent columns, columns to reduce.

    ``columns`` and ``pivots`` are dimension 1's column marks and the pivots of its reduced
    columns: the triangles they pair are cleared. The triangles are visited by increasing key
    while the edges enter one by one, so the neighbours of every vertex by earlier edges are a
    bitset: the triangles on edge ``{a, b}`` are the bits of ``adj[a] & adj[b]``, and the one
    with third vertex ``c`` is apparent when ``adj[a] & adj[b] & adj[c]`` has a bit below ``c``.
    One loop on purpose: the clearing test and the apparent/emergent classification as helpers
    (inlined or not) measured 2.2 times slower, the work per triangle being a few word operations.
    """
    n = rank.shape[0]
    n_edges = src.shape[0]
    # The triangles that dimension 1's reduced columns end on, flagged per longest edge (the
    # apparent ones are ``(r, columns[r])``).
    cleared_head = np.full(n_edges, -1, dtype=np.int32)
    cleared_k = np.empty(n_edges, dtype=np.int32)
    cleared_next = np.empty(n_edges, dtype=np.int32)
    n_cleared = 0
    for e in range(n_edges):
        if columns[e] == REDUCE and pivots[e] >= 0:
            top = pivots[e] // n
            cleared_k[n_cleared] = pivots[e] - top * n
            cleared_next[n_cleared] = cleared_head[top]
            cleared_head[top] = n_cleared
            n_cleared += 1
    words = (n + 63) >> 6
    adj = np.zeros((n, words), dtype=np.uint64)
    todo = np.empty(64, dtype=np.int64)
    shortcut = np.empty(64, dtype=np.int32)
    stats = np.zeros(3, dtype=np.int64)
    for r in range(n_edges):
        a = src[r]
        b = dst[r]
        for w in range(words):
            common = adj[a, w] & adj[b, w]
            while common != 0:
                c = w * 64 + trailing_zeros(common)
                common &= common - np.uint64(1)
                if columns[r] == c:
                    continue  # paired in dimension 1 as apparent
                cleared = cleared_head[r]
                while cleared >= 0 and cleared_k[cleared] != c:
                    cleared = cleared_next[cleared]
                if cleared >= 0:
                    continue
                stats[0] += 1
                # The fourth vertices whose tetrahedra have the diameter of the triangle: one
                # below c makes the triangle apparent.
                last = c >> 6
                below = np.uint64(0)
                for v in range(last):
                    below = adj[a, v] & adj[b, v] & adj[c, v]
                    if below != 0:
                        break
                word = adj[a, last] & adj[b, last] & adj[c, last]
                low = (np.uint64(1) << np.uint64(c & 63)) - np.uint64(1)
                if below != 0 or word & low != 0:
                    stats[1] += 1
                    continue
                # Otherwise the smallest one above c (if any) gives the column's pivot, (r, l, c),
                # unless an earlier column takes it: the apparent column of triangle (r, l) does
                # when c is its own smallest such vertex; or one of the reduced columns.
                emergent = np.int32(-1)
                word &= ~low
                v = last
                while word == 0 and v + 1 < words:
                    v += 1
                    word = adj[a, v] & adj[b, v] & adj[c, v]
                if word != 0:
                    l = v * 64 + trailing_zeros(word)
                    for u in range(words):
                        other = adj[a, u] & adj[b, u] & adj[l, u]
                        if other != 0:
                            if u * 64 + trailing_zeros(other) != c:
                                emergent = np.int32(l)
                            break
                todo = _grow(todo, stats[2] + 1)
                shortcut = _grow(shortcut, stats[2] + 1)
                todo[stats[2]] = np.int64(r) * n + c
                shortcut[stats[2]] = emergent
                stats[2] += 1
        adj[a, b >> 6] |= np.uint64(1) << np.uint64(b & 63)
        adj[b, a >> 6] |= np.uint64(1) << np.uint64(a & 63)
    return todo[: stats[2]], shortcut[: stats[2]], stats


@nb.njit(cache=True, nogil=True)
def _coboundary(rank, src, dst, triangle, n, out):
    """Write the keys of the cofacets of ``triangle`` (key ``r * n + c``) to ``out`` (room for
    ``n``); their count."""
    r, a, b, c, row_a, row_b, row_c = _triangle(rank, src, dst, triangle, n)
    count = 0
    for l in range(n):
        key = _cofacet(row_a, row_b, row_c, r, a, b, c, l, n)
        if key >= 0:
            out[count] = key
            count += 1
    return count


@nb.njit(cache=True, nogil=True, inline="always")
def _column_of_pivot(rank, src, dst, head, entries, top, rest):
    """The column to add to one whose pivot is the tetrahedron ``top * n * n + rest``: ``(start,
    length)`` of its reduction in ``stored`` (see :func:`~torchtopo.rips._native_kernels._lookup`),
    ``(-1, 1)`` for the apparent column of triangle ``(top, rest // n)`` (its reduction is that
    triangle alone), ``(0, 0)`` for none (a new pivot). ``rank`` ``(n, n)``, ``src``, ``dst``
    ``(n_edges,)``: as from :func:`~torchtopo.rips._native_kernels._filtration`."""
    entry = _lookup(head, entries, top, rest)
    if entry >= 0:
        return entries[entry, 2], entries[entry, 3]
    n = rank.shape[0]
    y = rest // n
    if _apparent_vertex(rank[src[top]], rank[dst[top]], rank[y], top, y) == rest - y * n:
        return np.int64(-1), np.int64(1)
    return np.int64(0), np.int64(0)


@nb.njit(cache=True, nogil=True, inline="always")
def _reduce_with_bitmap(
    rank, src, dst, head, entries, stored, triangle, scratch, size, bits, summary, touched, reduction
):
    """Reduce the column of ``triangle`` (its coboundary keys in ``scratch[:size]``) by the columns
    of the pivot table, with a bitmap working column: ``(pivot, reduction, n_reduction,
    touched)``, the final pivot key (-1 for a cocycle never hit) and the triangle keys whose
    coboundaries sum to the column (``triangle`` first), ``reduction`` and ``touched`` maybe grown.

    The column is the plain ``scratch`` until its first addition; then ``bits`` (all zero, one
    bit per tetrahedron key) holds it, ``summary`` one bit per word of ``bits``: an addition
    flips bits, the pivot is the next set bit (pivots only grow) and the summary skips empty
    words. The words flipped are noted in ``touched`` and zeroed again at the end (summary too).
    """
    n = rank.shape[0]
    n2 = np.int64(n) * n
    pivot = scratch[:size].min() if size > 0 else np.int64(-1)
    reduction[0] = triangle
    n_reduction = 1
    n_touched = 0  # also: no addition yet (the first one notes at least the pivot's word)
    while pivot >= 0:
        top = pivot // n2
        rest = pivot - top * n2
        start, length = _column_of_pivot(rank, src, dst, head, entries, top, rest)
        if length == 0:
            break  # a new pivot
        if n_touched == 0:
            touched = _grow(touched, size)
            for t in range(size):
                key = scratch[t]
                bits[key >> 6] ^= np.int64(1) << (key & 63)
                summary[key >> 12] |= np.int64(1) << ((key >> 6) & 63)
                touched[t] = key >> 6
            n_touched = size
        reduction = _grow(reduction, n_reduction + length)
        for t in range(length):
            other = top * n + rest // n if start < 0 else stored[start + t]
            touched = _grow(touched, n_touched + n)
            n_touched = _toggle_coboundary(rank, src, dst, other, n, pivot, bits, summary, touched, n_touched)
            reduction[n_reduction] = other
            n_reduction += 1
        pivot = _next_set(bits, summary, pivot)
    for t in range(n_touched):
        bits[touched[t]] = 0
        summary[touched[t] >> 6] = 0
    return pivot, reduction, n_reduction, touched


@nb.njit(cache=True, nogil=True, inline="always")
def _reduce_with_heap(rank, src, dst, head, entries, stored, triangle, heap, size, reduction):
    """:func:`_reduce_with_bitmap` with a heap working column, for clouds whose tetrahedron keys
    do not fit the bitmap: ``(pivot, reduction, n_reduction, heap)``.

    The column is the plain ``heap[:size]`` (the coboundary of ``triangle``) until its first
    addition, then a binary min-heap of every added cofacet key whose equal keys cancel when
    they reach the top; ``heap`` grows as needed.
    """
    n = rank.shape[0]
    n2 = np.int64(n) * n
    pivot = heap[:size].min() if size > 0 else np.int64(-1)
    reduction[0] = triangle
    n_reduction = 1
    added = False
    while pivot >= 0:
        top = pivot // n2
        rest = pivot - top * n2
        start, length = _column_of_pivot(rank, src, dst, head, entries, top, rest)
        if length == 0:
            break  # a new pivot
        if not added:
            added = True
            _heapify(heap, size)
        reduction = _grow(reduction, n_reduction + length)
        for t in range(length):
            other = top * n + rest // n if start < 0 else stored[start + t]
            heap = _grow(heap, size + n)
            size = _push_coboundary(rank, src, dst, other, n, pivot, heap, size)
            reduction[n_reduction] = other
            n_reduction += 1
        size = _pivot(heap, size)
        pivot = heap[0] if size > 0 else np.int64(-1)
    return pivot, reduction, n_reduction, heap


@nb.njit(cache=True, nogil=True)
def _reduce_h2(rank, src, dst, todo, shortcut, sorted_lengths, idx, bits, summary, rows, n_rows):
    """Reduce the dimension-2 columns ``todo`` of one cloud (see :func:`_h2_columns`); its pairs
    of positive persistence (and essential classes) appended to the growable ``rows`` ``(cap, 4)``
    int32 after ``n_rows`` (birth i, j, death i, j, as ``idx`` entries; death -1 for an
    essential class). Returns ``(rows, n_rows)``.

    Columns are reduced in reverse filtration order (cohomology). The pivot table of the reduced
    columns is chained per longest edge of the pivot tetrahedron
    (:func:`~torchtopo.rips._native_kernels._lookup`); a column is stored as its reduction
    (triangle keys), its coboundary recomputed when used. The working column is a bitmap over
    all tetrahedron keys when ``bits`` (all zero, one bit per key, and ``summary`` one bit per
    word of ``bits``) holds them (:func:`_reduce_with_bitmap`), else a heap
    (:func:`_reduce_with_heap`).
    """
    n = rank.shape[0]
    n2 = np.int64(n) * n
    head = np.full(src.shape[0], -1, dtype=np.int64)
    entries = np.empty((64, 4), dtype=np.int64)
    n_entries = 0
    stored = np.empty(64, dtype=np.int64)
    n_stored = 0
    reduction = np.empty(16, dtype=np.int64)
    heap = np.empty(4 * n, dtype=np.int64)
    use_bits = np.int64(src.shape[0]) * n2 <= 64 * bits.shape[0]
    touched = np.empty(4 * n, dtype=np.int64)
    for column in range(todo.shape[0] - 1, -1, -1):
        triangle = todo[column]
        r = triangle // n
        if shortcut[column] >= 0:
            # An emergent pair (zero persistence) unless a column already ends on its pivot.
            rest = _tetrahedron(r, triangle - r * n, shortcut[column], n) - r * n2
            if _lookup(head, entries, r, rest) < 0:
                stored = _grow(stored, n_stored + 1)
                stored[n_stored] = triangle
                entries = _insert(head, entries, n_entries, r, rest, n_stored, 1)
                n_entries += 1
                n_stored += 1
                continue
        size = _coboundary(rank, src, dst, triangle, n, heap)
        if use_bits:
            pivot, reduction, n_reduction, touched = _reduce_with_bitmap(
                rank, src, dst, head, entries, stored, triangle, heap, size, bits, summary, touched, reduction
            )
        else:
            pivot, reduction, n_reduction, heap = _reduce_with_heap(
                rank, src, dst, head, entries, stored, triangle, heap, size, reduction
            )
        rows = _grow_rows(rows, n_rows + 1)
        if pivot < 0:  # a cocycle never hit: an essential class (only below the cut)
            n_rows = _emit(rows, n_rows, idx, src, dst, r, -1)
            continue
        top = pivot // n2
        entries, stored, n_stored = _store_column(
            head, entries, n_entries, top, pivot - top * n2, stored, n_stored, reduction, n_reduction
        )
        n_entries += 1
        if sorted_lengths[top] > sorted_lengths[r]:
            n_rows = _emit(rows, n_rows, idx, src, dst, r, top)
    return rows, n_rows


@nb.njit(cache=True, nogil=True)
def h2_batch(dist, valid, max_edge, bitmap_bits, start, stop):
    """Dimension-1 and dimension-2 pairs of clouds ``start .. stop - 1``, one after the other,
    without the GIL (the caller runs several ranges on threads:
    :func:`torchtopo.rips._numba_threads.run_on_threads`).

    Parameters
    ----------
    dist : ndarray
        ``(B, N, N)`` float64 distances.
    valid : ndarray
        ``(B, N)`` bool, True for real points.
    max_edge : float
        Longest edge in the filtration (``inf`` for none).
    bitmap_bits : int
        Largest working-column bitmap (bits, one per triangle key in dimension 1 and per
        tetrahedron key in dimension 2, per thread); clouds needing more reduce with a heap.
    start, stop : int
        The clouds to process.

    Returns
    -------
    rows1, counts1, rows2, counts2 : ndarray
        Per dimension, the rows of the clouds one after the other (``(sum(counts), 4)`` int32:
        birth edge, death edge, ``-1`` death for an essential class; pairs of positive
        persistence only) and ``(stop - start,)`` int64 rows per cloud.
    stats : ndarray
        ``(stop - start, 3)`` int64: dimension-2 columns (triangles not paired in dimension 1),
        apparent ones, reduced ones.
    """
    clouds = stop - start
    counts1 = np.zeros(clouds, dtype=np.int64)
    counts2 = np.zeros(clouds, dtype=np.int64)
    stats = np.zeros((clouds, 3), dtype=np.int64)
    rows1 = np.empty((64, 4), dtype=np.int32)
    rows2 = np.empty((64, 4), dtype=np.int32)
    n_rows1 = 0
    n_rows2 = 0
    stats1 = np.zeros(3, dtype=np.int64)
    bits = np.zeros(1, dtype=np.int64)  # grown on demand up to bitmap_bits, reused across clouds
    summary = np.zeros(1, dtype=np.int64)
    for b in range(start, stop):
        if np.count_nonzero(valid[b]) < 3:
            continue
        idx, rank, src, dst, sorted_lengths = _filtration(dist[b], valid[b], max_edge)
        columns = _mark_columns(rank, src, dst)
        n_residual = 0
        for r in range(src.shape[0]):
            n_residual += columns[r] == REDUCE
        rows1 = _grow_rows(rows1, n_rows1 + n_residual)
        pivots = np.empty(src.shape[0], dtype=np.int64)
        found = _reduce(rank, src, dst, columns, sorted_lengths, False, idx, bitmap_bits, rows1[n_rows1:], stats1, pivots)
        n_rows1 += found
        counts1[b - start] = found
        todo, shortcut, cloud_stats = _h2_columns(rank, src, dst, columns, pivots)
        stats[b - start] = cloud_stats
        n = rank.shape[0]
        keys = np.int64(src.shape[0]) * n * n
        if 64 * bits.shape[0] < keys <= bitmap_bits:
            bits = np.zeros((keys + 63) >> 6, dtype=np.int64)
            summary = np.zeros((bits.shape[0] + 63) >> 6, dtype=np.int64)
        before = n_rows2
        rows2, n_rows2 = _reduce_h2(
            rank, src, dst, todo, shortcut, sorted_lengths, idx, bits, summary, rows2, n_rows2
        )
        counts2[b - start] = n_rows2 - before
    return rows1[:n_rows1], counts1, rows2[:n_rows2], counts2, stats
