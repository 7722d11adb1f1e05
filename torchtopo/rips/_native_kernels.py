"""Numba kernels of the native H1 backend: one cloud at a time per thread, cohomology with clearing.

Imported lazily by :mod:`torchtopo.rips.native`, so ``import torchtopo`` works without numba.

Order (the tie-break every reported generator follows):

- edges by (length, then combinatorial index ``C(j, 2) + i`` for ``i < j``), ripser's edge
  numbering; the position of an edge in that order is its *rank*;
- triangles by (rank of their longest edge, then the third vertex), encoded as the int64 key
  ``rank * n + k``. This refines the diameter order, and a triangle's maximal facet is read off
  its key.

With that order the pair (edge ``e = {i, j}``, triangle ``t``) is apparent exactly when some
vertex ``k`` has both ``{i, k}`` and ``{j, k}`` earlier than ``e``; ``t`` is then ``(rank(e),
smallest such k)`` and the pair has zero persistence. Edges longer than the enclosing radius
only ever give zero-persistence pairs (the complex is a cone there), so, as in ripser, the
filtration is cut at ``min(max_edge, enclosing radius)``.
"""

from __future__ import annotations

import numba as nb
import numpy as np
from numba.cpython.unsafe.numbers import leading_zeros, trailing_zeros

# Rank of an edge that is not in the (cut) filtration, and of the diagonal.
ABSENT = np.int32(2**31 - 1)
# Marks of a column (an edge, by rank) other than an apparent pair's third vertex ``k >= 0``.
REDUCE = np.int32(-1)  # to be reduced
CLEARED = np.int32(-2)  # a spanning-tree edge, paired in dimension 0


@nb.njit(cache=True, nogil=True)
def _find(parent, x):
    while parent[x] != x:
        parent[x] = parent[parent[x]]
        x = parent[x]
    return x


@nb.njit(cache=True, nogil=True)
def _grow(buffer, needed):
    if needed <= buffer.shape[0]:
        return buffer
    bigger = np.empty(max(needed, 2 * buffer.shape[0]), dtype=buffer.dtype)
    bigger[: buffer.shape[0]] = buffer
    return bigger


@nb.njit(cache=True, nogil=True)
def _push(heap, size, key):
    """Insert ``key`` in the binary min-heap ``heap[:size]`` (capacity checked by the caller)."""
    pos = size
    while pos > 0:
        up = (pos - 1) >> 1
        if heap[up] <= key:
            break
        heap[pos] = heap[up]
        pos = up
    heap[pos] = key
    return size + 1


@nb.njit(cache=True, nogil=True)
def _sift_down(heap, pos, size, key):
    """Place ``key`` at ``pos`` of ``heap[:size]`` and move it down to restore the heap order."""
    while True:
        child = 2 * pos + 1
        if child >= size:
            break
        if child + 1 < size and heap[child + 1] < heap[child]:
            child += 1
        if heap[child] >= key:
            break
        heap[pos] = heap[child]
        pos = child
    heap[pos] = key


@nb.njit(cache=True, nogil=True)
def _pop(heap, size):
    """Remove the minimum of ``heap[:size]``; the new size."""
    size -= 1
    if size > 0:
        _sift_down(heap, 0, size, heap[size])
    return size


@nb.njit(cache=True, nogil=True)
def _heapify(heap, size):
    for pos in range(size // 2 - 1, -1, -1):
        _sift_down(heap, pos, size, heap[pos])


@nb.njit(cache=True, nogil=True)
def _pivot(heap, size):
    """Cancel equal keys at the top (coefficients mod 2); the size, ``heap[0]`` being the pivot."""
    while size > 1:
        top = heap[0]
        second = heap[1] if size == 2 or heap[1] < heap[2] else heap[2]
        if second != top:
            break
        size = _pop(heap, size)
        size = _pop(heap, size)
    return size


@nb.njit(cache=True, nogil=True, inline="always")
def _cofacet_key(a, b, r32, i, j, k, n):
    """The key of triangle ``{i, j, k}`` from ``a``, ``b``, the ranks of edges ``{i, k}`` and
    ``{j, k}``, and ``r32``, that of ``{i, j}`` (int32): the rank of its longest edge times
    ``n`` plus the vertex opposite that edge. Without a branch (a loop over ``k`` vectorises);
    meaningless when ``max(a, b)`` is ``ABSENT`` (no such triangle)."""
    longest = max(a, b)
    opposite = np.int64(k) if longest < r32 else (np.int64(j) if a > b else np.int64(i))
    return np.int64(max(longest, r32)) * n + opposite


@nb.njit(cache=True, nogil=True)
def _cofacet(row_i, row_j, r, i, j, k, n):
    """Key of the triangle ``{i, j, k}`` (edge ``{i, j}`` of rank ``r``; :func:`_cofacet_key`);
    -1 if not in the filtration."""
    a = row_i[k]
    b = row_j[k]
    if max(a, b) == ABSENT:  # also k == i or k == j: the diagonal is ABSENT
        return np.int64(-1)
    return _cofacet_key(a, b, np.int32(r), i, j, k, n)


@nb.njit(cache=True, nogil=True, inline="always")
def _smallest_cofacet(rank, r, i, j):
    """The smallest key of a cofacet of edge ``{i, j}`` (rank ``r``), as :func:`_cofacet_key`
    keys them; -1 if it has none. Branch-free over every third vertex ``k`` (it vectorises): the
    pivot of a column that needs no addition, without enumerating its coboundary."""
    row_i = rank[i]
    row_j = rank[j]
    n = row_i.shape[0]
    r32 = np.int32(r)
    none = np.int64(1) << 62  # above every key: ranks and n are below 2**31
    smallest = none
    for k in range(n):
        a = row_i[k]
        b = row_j[k]
        key = _cofacet_key(a, b, r32, i, j, k, n)
        smallest = min(smallest, key if max(a, b) != ABSENT else none)
    # -1 for none, as arithmetic: written as a test, it stops the loop from vectorising.
    return smallest - (smallest >> 62) * (none + 1)


@nb.njit(cache=True, nogil=True)
def _coboundary(rank, r, i, j, n, out):
    """Write the keys of the cofacets of edge ``{i, j}`` (rank ``r``) to ``out``; their count."""
    count = 0
    row_i = rank[i]
    row_j = rank[j]
    for k in range(n):
        key = _cofacet(row_i, row_j, r, i, j, k, n)
        if key >= 0:
            out[count] = key
            count += 1
    return count


@nb.njit(cache=True, nogil=True)
def _push_coboundary(rank, r, i, j, n, floor, heap, size):
    """Push the keys ``>= floor`` of the cofacets of edge ``{i, j}`` (rank ``r``); ``heap`` has
    room for ``n``."""
    row_i = rank[i]
    row_j = rank[j]
    for k in range(n):
        key = _cofacet(row_i, row_j, r, i, j, k, n)
        if key >= floor:
            size = _push(heap, size, key)
    return size


@nb.njit(cache=True, nogil=True)
def _toggle_coboundary(rank, r, i, j, n, floor, bits, touched, n_touched, keys):
    """Flip the bits of the cofacets ``>= floor`` of edge ``{i, j}`` (rank ``r``) and note their
    words; ``touched`` has room for ``n`` more notes, ``keys`` ``(n,)`` int64 is scratch.

    Two passes: the keys of every third vertex ``k`` first (:func:`_cofacet_key`, -1 where ``k``
    gives no cofacet above ``floor``; it vectorises), then the flips. One branchy pass measured
    15-20 % slower on whole H1 reductions of Gaussian clouds (m = 64 to 256, d = 512)."""
    row_i = rank[i]
    row_j = rank[j]
    r32 = np.int32(r)
    for k in range(n):
        a = row_i[k]
        b = row_j[k]
        key = _cofacet_key(a, b, r32, i, j, k, n)
        keys[k] = key if (max(a, b) != ABSENT) & (key >= floor) else np.int64(-1)
    for k in range(n):
        key = keys[k]
        if key >= 0:
            word = key >> 6
            bits[word] ^= np.int64(1) << (key & 63)
            touched[n_touched] = word
            n_touched += 1
    return n_touched


@nb.njit(cache=True, nogil=True)
def _first_set(bits, start):
    """The smallest set bit at or after ``start``; -1 if none."""
    word_index = start >> 6
    word = bits[word_index] & (np.int64(-1) << (start & 63))
    while word == 0:
        word_index += 1
        if word_index == bits.shape[0]:
            return np.int64(-1)
        word = bits[word_index]
    return word_index * 64 + trailing_zeros(word)


@nb.njit(cache=True, nogil=True)
def _argsort_lengths(lengths):
    """Stable argsort of non-negative float64 ``lengths`` by LSD radix sort on their bits.

    The bits of a non-negative IEEE double order like its value. Only the span of bits that
    differ between keys is sorted on (float32 data leaves the low 29 bits zero, and the edges of
    a cloud mostly share their exponent), a digit at a time, 8 bits wide for fewer than 4096
    keys (a cloud of 64 points sorts in 60 % of the time 11-bit digits take) and 11 bits above;
    a digit that is the same everywhere is skipped.
    """
    count = lengths.shape[0]
    keys = lengths.view(np.uint64)
    order = np.arange(count)
    varying = np.uint64(0)
    for t in range(count):
        varying |= keys[t] ^ keys[0]
    if varying == 0:
        return order
    low = np.int64(trailing_zeros(varying))
    high = np.int64(63 - leading_zeros(varying))
    width = 8 if count < 4096 else 11
    digits = np.uint64((1 << width) - 1)
    position = np.empty(1 << width, dtype=np.int64)
    current = keys.copy()
    next_order = np.empty(count, dtype=np.int64)
    next_keys = np.empty(count, dtype=np.uint64)
    for shift in range(low, high + 1, width):
        position[:] = 0
        for t in range(count):
            position[(current[t] >> np.uint64(shift)) & digits] += 1
        if position.max() == count:
            continue
        total = 0
        for digit in range(position.shape[0]):
            size = position[digit]
            position[digit] = total
            total += size
        for t in range(count):
            digit = (current[t] >> np.uint64(shift)) & digits
            slot = position[digit]
            position[digit] = slot + 1
            next_order[slot] = order[t]
            next_keys[slot] = current[t]
        order, next_order = next_order, order
        current, next_keys = next_keys, current
    return order


@nb.njit(cache=True, nogil=True)
def _cancel_pairs(values, count):
    """Sort ``values[:count]`` and drop equal pairs (a sum mod 2), in place; the new count.

    A column's reduction is mostly a few edges: below 32 an insertion sort, where the general
    sort's fixed cost made storing a column a quarter of an H1 reduction at m = 64."""
    if count < 32:
        for t in range(1, count):
            value = values[t]
            u = t
            while u > 0 and values[u - 1] > value:
                values[u] = values[u - 1]
                u -= 1
            values[u] = value
    else:
        values[:count].sort()
    kept = 0
    t = 0
    while t < count:
        if t + 1 < count and values[t] == values[t + 1]:
            t += 2
        else:
            values[kept] = values[t]
            kept += 1
            t += 1
    return kept


@nb.njit(cache=True, nogil=True)
def _filtration(dist, valid, max_edge):
    """The edges of one cloud in filtration order.

    Returns ``(idx, rank, src, dst, sorted_lengths)``: the real points' indices ``(n,)``,
    ``rank`` ``(n, n)`` int32 (``ABSENT`` on the diagonal and for edges past the cut), and the
    endpoints ``src < dst`` and lengths of the edges by rank.
    """
    idx = np.nonzero(valid)[0]
    n = idx.shape[0]
    # Only the upper triangle is read (the one the gather reads too): exact symmetry either way.
    # The enclosing radius: the shortest of the longest edges at each vertex.
    farthest = np.zeros(n, dtype=np.float64)
    for j in range(1, n):
        for i in range(j):
            length = np.float64(dist[idx[i], idx[j]])
            farthest[i] = max(farthest[i], length)
            farthest[j] = max(farthest[j], length)
    cut = min(max_edge, farthest.min())

    lengths = np.empty(n * (n - 1) // 2, dtype=np.float64)
    ends = np.empty((n * (n - 1) // 2, 2), dtype=np.int32)
    n_edges = 0
    for j in range(1, n):  # combinatorial order: the tie-break of the stable sort below
        for i in range(j):
            # Written branch-free, kept when not past the cut (no -0.0: its sign bit would sort it last).
            length = np.float64(dist[idx[i], idx[j]])
            lengths[n_edges] = length + 0.0
            ends[n_edges, 0] = i
            ends[n_edges, 1] = j
            n_edges += length <= cut
    lengths = lengths[:n_edges]
    order = _argsort_lengths(lengths)
    src = np.empty(n_edges, dtype=np.int32)
    dst = np.empty(n_edges, dtype=np.int32)
    rank = np.full((n, n), ABSENT, dtype=np.int32)
    sorted_lengths = np.empty(n_edges, dtype=np.float64)
    for r in range(n_edges):
        i = ends[order[r], 0]
        j = ends[order[r], 1]
        src[r] = i
        dst[r] = j
        sorted_lengths[r] = lengths[order[r]]
        rank[i, j] = r
        rank[j, i] = r

    return idx, rank, src, dst, sorted_lengths


@nb.njit(cache=True, nogil=True, inline="always")
def _first_closing_vertex(row_i, row_j, r):
    """The smallest ``k`` whose edges to both ends of edge ``r`` (rows ``row_i``, ``row_j`` of
    ``rank``) are earlier than ``r``; ``n`` if none. A branch-free minimum over every ``k`` in
    int32: it vectorises, and measured twice as fast as a scan that stops at the first hit."""
    n = np.int32(row_i.shape[0])
    r32 = np.int32(r)
    first = n
    for k in range(row_i.shape[0]):
        k32 = np.int32(k)
        first = min(first, k32 if max(row_i[k], row_j[k]) < r32 else n)
    return first


@nb.njit(cache=True, nogil=True)
def _mark_columns(rank, src, dst):
    """``(n_edges,)`` int32 column marks: ``CLEARED``, an apparent pair's third vertex, or ``REDUCE``."""
    n = rank.shape[0]
    n_edges = src.shape[0]
    columns = np.full(n_edges, REDUCE, dtype=np.int32)
    # Kruskal in the same order: its edges are paired in dimension 0, so their columns clear.
    parent = np.arange(n, dtype=np.int32)
    merges = 0
    for r in range(n_edges):
        if merges == n - 1:
            break
        ru = _find(parent, src[r])
        rv = _find(parent, dst[r])
        if ru != rv:
            parent[max(ru, rv)] = min(ru, rv)
            columns[r] = CLEARED
            merges += 1
    # Apparent pairs: the first k (smallest index) closing a triangle whose longest edge is r.
    for r in range(n_edges):
        if columns[r] != CLEARED:
            k = _first_closing_vertex(rank[src[r]], rank[dst[r]], r)
            if k < n:
                columns[r] = k
    return columns


@nb.njit(cache=True, nogil=True)
def _count_columns(columns, stats):
    """Count the marks ``columns`` ``(n_edges,)`` into ``stats`` ``(3,)``: columns outside the
    spanning tree, apparent columns, columns to reduce; the last of these."""
    n_columns = 0
    n_residual = 0
    for r in range(columns.shape[0]):
        n_columns += columns[r] != CLEARED
        n_residual += columns[r] == REDUCE
    stats[0] = n_columns
    stats[1] = n_columns - n_residual
    stats[2] = n_residual
    return n_residual


@nb.njit(cache=True, nogil=True)
def _grow_rows(rows, needed):
    """``rows`` ``(cap, w)`` with room for ``needed`` rows (the first ``cap`` kept)."""
    if needed <= rows.shape[0]:
        return rows
    bigger = np.empty((max(needed, 2 * rows.shape[0]), rows.shape[1]), dtype=rows.dtype)
    bigger[: rows.shape[0]] = rows
    return bigger


@nb.njit(cache=True, nogil=True, inline="always")
def _lookup(head, entries, top, rest):
    """The entry of the pivot table ``(head, entries)`` whose pivot key splits into ``top`` (the
    rank of its longest edge) and ``rest``; -1 if none.

    ``head`` ``(n_edges,)``: the first entry per ``top`` (-1: none); ``entries`` ``(cap, 4)``
    int64 rows (``rest``, next entry with the same ``top``, start and length of the column's
    reduction in the caller's ``stored``).
    """
    entry = head[top]
    while entry >= 0 and entries[entry, 0] != rest:
        entry = entries[entry, 1]
    return entry


@nb.njit(cache=True, nogil=True, inline="always")
def _insert(head, entries, n_entries, top, rest, start, length):
    """Add the column stored at ``stored[start : start + length]`` with pivot key ``(top, rest)``
    to the pivot table as entry ``n_entries`` (see :func:`_lookup`); the (maybe grown) ``entries``."""
    entries = _grow_rows(entries, n_entries + 1)
    entries[n_entries, 0] = rest
    entries[n_entries, 1] = head[top]
    entries[n_entries, 2] = start
    entries[n_entries, 3] = length
    head[top] = n_entries
    return entries


@nb.njit(cache=True, nogil=True, inline="always")
def _store_column(head, entries, n_entries, top, rest, stored, n_stored, reduction, n_reduction):
    """Append the reduction ``reduction[:n_reduction]`` of a column with the new pivot ``(top,
    rest)`` to ``stored`` (its repeated entries cancelled: a sum mod 2) and enter it as entry
    ``n_entries`` of the pivot table (see :func:`_lookup`); ``(entries, stored, n_stored)``, the
    arrays maybe grown."""
    n_reduction = _cancel_pairs(reduction, n_reduction)
    stored = _grow(stored, n_stored + n_reduction)
    stored[n_stored : n_stored + n_reduction] = reduction[:n_reduction]
    entries = _insert(head, entries, n_entries, top, rest, n_stored, n_reduction)
    return entries, stored, n_stored + n_reduction


@nb.njit(cache=True, nogil=True, inline="always")
def _column_of_pivot(columns, head, entries, top, k):
    """The column to add to one whose pivot is triangle ``(top, k)``: ``(start, length)`` of its
    reduction in ``stored`` (see :func:`_lookup`), ``(-1, 1)`` for the apparent column of edge
    ``top`` (its reduction is that edge alone), ``(0, 0)`` for none (a new pivot).
    ``columns`` ``(n_edges,)``: the marks of :func:`_mark_columns`."""
    if columns[top] == k:
        return np.int64(-1), np.int64(1)
    entry = _lookup(head, entries, top, k)
    if entry < 0:
        return np.int64(0), np.int64(0)
    return entries[entry, 2], entries[entry, 3]


@nb.njit(cache=True, nogil=True, inline="always")
def _reduce_with_bitmap(rank, src, dst, columns, head, entries, stored, r, bits, touched, keys, reduction):
    """Reduce the column of edge ``r`` (rank) by the columns of the pivot table, with a bitmap
    working column: ``(pivot, reduction, n_reduction, touched)``, the final pivot key (-1 for a
    cocycle never hit) and the edges whose coboundaries sum to the column (``r`` first),
    ``reduction`` and ``touched`` maybe grown.

    Until its first addition only the column's pivot is known (:func:`_smallest_cofacet`); then
    ``bits`` (all zero, one bit per triangle key ``rank * n + k``) holds it: its coboundary and
    each addition flip bits, the pivot is the next set bit (pivots only grow). The words flipped
    are noted in ``touched`` and zeroed again at the end; ``keys`` ``(n,)`` is scratch of
    :func:`_toggle_coboundary`. ``rank`` ``(n, n)``, ``src``, ``dst``, ``columns``
    ``(n_edges,)``: as from :func:`_filtration` and :func:`_mark_columns`; ``head``, ``entries``,
    ``stored``: the table.
    """
    n = rank.shape[0]
    pivot = _smallest_cofacet(rank, r, src[r], dst[r])
    reduction[0] = r
    n_reduction = 1
    n_touched = 0  # also: no addition yet (the first one notes at least the pivot's word)
    while pivot >= 0:
        top = pivot // n
        start, length = _column_of_pivot(columns, head, entries, top, pivot - top * n)
        if length == 0:
            break  # a new pivot
        if n_touched == 0:
            touched = _grow(touched, n)
            n_touched = _toggle_coboundary(rank, r, src[r], dst[r], n, 0, bits, touched, 0, keys)
        reduction = _grow(reduction, n_reduction + length)
        for t in range(length):
            edge = top if start < 0 else stored[start + t]
            touched = _grow(touched, n_touched + n)
            n_touched = _toggle_coboundary(rank, edge, src[edge], dst[edge], n, pivot, bits, touched, n_touched, keys)
            reduction[n_reduction] = edge
            n_reduction += 1
        pivot = _first_set(bits, pivot)
    for t in range(n_touched):
        bits[touched[t]] = 0
    return pivot, reduction, n_reduction, touched


@nb.njit(cache=True, nogil=True, inline="always")
def _reduce_with_heap(rank, src, dst, columns, head, entries, stored, r, heap, size, reduction):
    """:func:`_reduce_with_bitmap` with a heap working column, for clouds whose triangle keys do
    not fit the bitmap: ``(pivot, reduction, n_reduction, heap)``.

    The column is the plain ``heap[:size]`` (the coboundary of edge ``r``) until its first
    addition, then a binary min-heap of every added cofacet key whose equal keys cancel when
    they reach the top (:func:`_pivot`); ``heap`` grows as needed.
    """
    n = rank.shape[0]
    pivot = heap[:size].min() if size > 0 else np.int64(-1)
    reduction[0] = r
    n_reduction = 1
    added = False
    while pivot >= 0:
        top = pivot // n
        start, length = _column_of_pivot(columns, head, entries, top, pivot - top * n)
        if length == 0:
            break  # a new pivot
        if not added:
            added = True
            _heapify(heap, size)
        reduction = _grow(reduction, n_reduction + length)
        for t in range(length):
            edge = top if start < 0 else stored[start + t]
            heap = _grow(heap, size + n)
            size = _push_coboundary(rank, edge, src[edge], dst[edge], n, pivot, heap, size)
            reduction[n_reduction] = edge
            n_reduction += 1
        size = _pivot(heap, size)
        pivot = heap[0] if size > 0 else np.int64(-1)
    return pivot, reduction, n_reduction, heap


@nb.njit(cache=True, nogil=True, inline="always")
def _emit(out, n_pairs, idx, src, dst, birth, death):
    """Write the pair (edge ``birth``, edge ``death``; ranks, ``death`` -1 for an essential
    class) as row ``n_pairs`` of ``out`` ``(cap, 4)`` (birth i, j, death i, j, as ``idx``
    entries, -1 for none); the new count of rows."""
    out[n_pairs, 0] = idx[src[birth]]
    out[n_pairs, 1] = idx[dst[birth]]
    if death < 0:
        out[n_pairs, 2] = -1
        out[n_pairs, 3] = -1
    else:
        out[n_pairs, 2] = idx[src[death]]
        out[n_pairs, 3] = idx[dst[death]]
    return n_pairs + 1


@nb.njit(cache=True, nogil=True)
def _reduce(rank, src, dst, columns, sorted_lengths, keep_all, idx, bitmap_bits, out, stats, pivots=None):
    """Reduce the ``REDUCE`` columns of one cloud; its pairs into ``out`` ``(cap, 4)`` rows (birth
    i, j, death i, j, as ``idx`` entries); their count.

    With ``keep_all`` every pair is written, zero persistence included (the caller filters them;
    ``sorted_lengths`` is not read); otherwise only pairs whose death is longer than their birth
    by ``sorted_lengths``, the edge lengths by rank. ``stats``
    receives (columns outside the spanning tree, apparent columns, reduced columns). ``pivots``,
    when given (``(n_edges,)`` int64), receives the pivot triangle key of each reduced column
    (-1 for an essential class): the triangles that clear dimension 2.

    Columns are reduced in reverse filtration order (cohomology). The pivot table of the reduced
    columns is chained per longest edge of the pivot triangle (:func:`_lookup`); a column is
    stored as its reduction (the edges whose coboundaries sum to it), recomputed when used, as
    ripser does: storing the keys instead costs a sort per column and measured slower. The
    working column is a bitmap over all triangle keys where it fits in ``bitmap_bits``
    (:func:`_reduce_with_bitmap`), else a heap (:func:`_reduce_with_heap`). Those and the pivot
    table helpers are inlined (``inline="always"``): left as calls, the reduction of Gaussian
    clouds (m = 64, 128) measured about 5 % slower.
    """
    n = rank.shape[0]
    n_edges = src.shape[0]
    n_residual = _count_columns(columns, stats)
    head = np.full(n_edges, -1, dtype=np.int32)
    entries = np.empty((n_residual, 4), dtype=np.int64)
    stored = np.empty(max(16, n_residual), dtype=np.int32)
    n_stored = 0
    reduction = np.empty(16, dtype=np.int32)
    use_bits = np.int64(n_edges) * n <= bitmap_bits
    bits = np.zeros((np.int64(n_edges) * n + 63) // 64 if use_bits else 1, dtype=np.int64)
    touched = np.empty(4 * n, dtype=np.int64)
    keys = np.empty(n, dtype=np.int64)
    heap = np.empty(4 * n, dtype=np.int64)
    n_entries = 0
    n_pairs = 0
    for r in range(n_edges - 1, -1, -1):
        if columns[r] != REDUCE:
            continue
        if use_bits:
            pivot, reduction, n_reduction, touched = _reduce_with_bitmap(
                rank, src, dst, columns, head, entries, stored, r, bits, touched, keys, reduction
            )
        else:
            size = _coboundary(rank, r, src[r], dst[r], n, heap)
            pivot, reduction, n_reduction, heap = _reduce_with_heap(
                rank, src, dst, columns, head, entries, stored, r, heap, size, reduction
            )
        if pivots is not None:
            pivots[r] = pivot
        if pivot < 0:  # a cocycle never hit: an essential class (only below the cut)
            n_pairs = _emit(out, n_pairs, idx, src, dst, r, -1)
            continue
        top = pivot // n
        entries, stored, n_stored = _store_column(
            head, entries, n_entries, top, pivot - top * n, stored, n_stored, reduction, n_reduction
        )
        n_entries += 1
        if keep_all or sorted_lengths[top] > sorted_lengths[r]:
            n_pairs = _emit(out, n_pairs, idx, src, dst, r, top)
    return n_pairs


@nb.njit(cache=True, nogil=True)
def _h1_cloud(dist, valid, max_edge, bitmap_bits, out, stats):
    """H1 pairs of one cloud from its distances into ``out`` ``(cap, 4)`` rows; their count."""
    stats[:] = 0
    if np.count_nonzero(valid) < 3:
        return 0
    idx, rank, src, dst, sorted_lengths = _filtration(dist, valid, max_edge)
    columns = _mark_columns(rank, src, dst)
    return _reduce(rank, src, dst, columns, sorted_lengths, False, idx, bitmap_bits, out, stats)


@nb.njit(cache=True, nogil=True)
def h1_batch(dist, valid, max_edge, bitmap_bits, out, counts, stats, start, stop):
    """H1 pairs of clouds ``start .. stop - 1``, one after the other, without the GIL (the caller
    runs several ranges on threads: :func:`torchtopo.rips._numba_threads.run_on_threads`).

    Parameters
    ----------
    dist : ndarray
        ``(B, N, N)`` float64 distances.
    valid : ndarray
        ``(B, N)`` bool, True for real points.
    max_edge : float
        Longest edge in the filtration (``inf`` for none).
    bitmap_bits : int
        Largest working-column bitmap (bits, one per triangle key, per thread); clouds needing
        more reduce with a heap instead.
    out : ndarray
        ``(B, cap, 4)`` int32 output rows (birth edge, death edge; ``-1`` death for an
        essential class), ``cap`` at least the number of edges outside a spanning tree.
    counts : ndarray
        ``(B,)`` int64 output: rows written per cloud.
    stats : ndarray
        ``(B, 3)`` int64 output: columns outside the spanning tree, apparent, reduced.
    start, stop : int
        The clouds to process.
    """
    for b in range(start, stop):
        counts[b] = _h1_cloud(dist[b], valid[b], max_edge, bitmap_bits, out[b], stats[b])


@nb.njit(cache=True, nogil=True)
def h1_reduce_batch(edge_rank, columns, n_edges, n, bitmap_bits, out, counts, stats, start, stop):
    """The reduction alone, for clouds whose filtration and column marks were computed elsewhere
    (by the GPU kernels of :mod:`torchtopo.rips.triton_h1`); clouds ``start .. stop - 1``.

    Parameters
    ----------
    edge_rank : ndarray
        ``(B, E)`` int32, ``E = N (N - 1) / 2``: the rank of each edge ``(i, j)``, ``i < j``,
        listed in combinatorial order (by ``j``, then ``i``); ranks ``>= n_edges[b]`` are edges
        outside the filtration.
    columns : ndarray
        ``(B, E)`` int32 marks by rank (``CLEARED``, ``REDUCE`` or an apparent pair's ``k``).
    n_edges : ndarray
        ``(B,)`` int64 edges in each cloud's filtration.
    n : int
        Points per cloud ``N`` (masked ones have no edge in the filtration).
    bitmap_bits, out, counts, stats, start, stop
        As for :func:`h1_batch`; every pair is written, zero persistence included.
    """
    idx = np.arange(n)
    no_lengths = np.empty(0, dtype=np.float64)
    for b in range(start, stop):
        size = n_edges[b]
        rank = np.full((n, n), ABSENT, dtype=np.int32)
        src = np.empty(size, dtype=np.int32)
        dst = np.empty(size, dtype=np.int32)
        e = 0
        for j in range(1, n):
            for i in range(j):
                r = edge_rank[b, e]
                if r < size:
                    rank[i, j] = r
                    rank[j, i] = r
                    src[r] = i
                    dst[r] = j
                e += 1
        counts[b] = _reduce(rank, src, dst, columns[b, :size], no_lengths, True, idx, bitmap_bits, out[b], stats[b])
