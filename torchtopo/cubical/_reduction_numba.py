"""Numba kernel of dimension 1 of volumes: cohomology reduction with clearing, one volume at a
time per thread.

Cells live on the doubled grid ``(2D + 1, 2H + 1, 2W + 1)``: a cell's dimension is the number of
its odd coordinates, the cubes (voxels) are the all-odd cells, and a cell's value is the
smallest value of the cubes that contain it (gudhi's ``top_dimensional_cells`` filtration).
Edges, then faces, are ranked by (value, grid index); with vertices before edges before faces
at equal values this is a filtration order, and it is the tie-break every reported generator
follows. Edges that join two components in that order (Kruskal) kill a dimension-0 class: their
columns are cleared. The other edges are reduced in decreasing order, as ripser does: a column
is the edge's coboundary (at most four faces), its pivot its first face; a column that needed
additions is stored, the others are recomputed when used. Imported lazily: ``import torchtopo``
works without numba.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from ._union_find_numba import stable_order


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
def _coordinates(cell, strides):
    """The grid coordinates ``(c0, c1, c2)`` of ``cell``."""
    c0 = cell // strides[0]
    c1 = (cell - c0 * strides[0]) // strides[1]
    return c0, c1, cell - c0 * strides[0] - c1 * strides[1]


@nb.njit(cache=True, nogil=True)
def _lowest_cube(cell, dims, strides, cubes, shape):
    """The cube of smallest value (then smallest flat index) containing ``cell``: the pixel whose
    value is the cell's."""
    coord = _coordinates(cell, strides)
    low = np.empty(3, dtype=np.int64)
    high = np.empty(3, dtype=np.int64)
    for a in range(3):
        odd = coord[a] % 2 == 1
        low[a] = coord[a] if odd else max(coord[a] - 1, 1)
        high[a] = coord[a] if odd else min(coord[a] + 1, dims[a] - 2)
    best = -1
    for c0 in range(low[0], high[0] + 1, 2):
        for c1 in range(low[1], high[1] + 1, 2):
            for c2 in range(low[2], high[2] + 1, 2):
                cube = ((c0 // 2) * shape[1] + c1 // 2) * shape[2] + c2 // 2
                if best < 0 or cubes[cube] < cubes[best] or (cubes[cube] == cubes[best] and cube < best):
                    best = cube
    return best


@nb.njit(cache=True, nogil=True)
def _coboundary(cell, dims, strides, face_rank, out):
    """Ranks of the faces containing edge ``cell``, increasing; returns how many (at most 4)."""
    coord = _coordinates(cell, strides)
    count = 0
    for a in range(3):
        if coord[a] % 2 == 1:
            continue
        if coord[a] > 0:
            out[count] = face_rank[cell - strides[a]]
            count += 1
        if coord[a] < dims[a] - 1:
            out[count] = face_rank[cell + strides[a]]
            count += 1
    for i in range(1, count):  # insertion sort of at most four ranks
        key = out[i]
        j = i - 1
        while j >= 0 and out[j] > key:
            out[j + 1] = out[j]
            j -= 1
        out[j + 1] = key
    return count


@nb.njit(cache=True, nogil=True)
def _symmetric_difference(a, na, b, nb_, out):
    """Sorted ``a[:na]`` xor sorted ``b[:nb_]`` into ``out``; returns its length."""
    i = j = k = 0
    while i < na and j < nb_:
        if a[i] < b[j]:
            out[k] = a[i]
            i += 1
            k += 1
        elif b[j] < a[i]:
            out[k] = b[j]
            j += 1
            k += 1
        else:
            i += 1
            j += 1
    while i < na:
        out[k] = a[i]
        i += 1
        k += 1
    while j < nb_:
        out[k] = b[j]
        j += 1
        k += 1
    return k


@nb.njit(cache=True, nogil=True)
def _volume_h1(cubes, shape, births, deaths):
    """Dimension-1 pairs of one volume (``cubes`` flat, ``shape`` ``(D, H, W)``) as
    (birth pixel, death pixel) rows; returns how many. Pairs of zero persistence are left out."""
    dims = np.array([2 * shape[0] + 1, 2 * shape[1] + 1, 2 * shape[2] + 1], dtype=np.int64)
    strides = np.array([dims[1] * dims[2], dims[2], 1], dtype=np.int64)
    size = dims[0] * dims[1] * dims[2]
    # Values of every cell: the smallest value of the cubes containing it.
    value = np.full(size, np.inf)
    for z in range(shape[0]):
        for y in range(shape[1]):
            for x in range(shape[2]):
                v = cubes[(z * shape[1] + y) * shape[2] + x]
                centre = (2 * z + 1) * strides[0] + (2 * y + 1) * strides[1] + 2 * x + 1
                for dz in (-1, 0, 1):
                    for dy in (-1, 0, 1):
                        for dx in (-1, 0, 1):
                            cell = centre + dz * strides[0] + dy * strides[1] + dx
                            if v < value[cell]:
                                value[cell] = v
    n_edges = 0
    n_faces = 0
    kind = np.empty(size, dtype=np.int8)  # number of odd coordinates
    cell = 0
    for c0 in range(dims[0]):
        for c1 in range(dims[1]):
            for c2 in range(dims[2]):
                odd = c0 % 2 + c1 % 2 + c2 % 2
                kind[cell] = odd
                cell += 1
                if odd == 1:
                    n_edges += 1
                elif odd == 2:
                    n_faces += 1
    edges = np.empty(n_edges, dtype=np.int64)
    faces = np.empty(n_faces, dtype=np.int64)
    e = f = 0
    for cell in range(size):
        if kind[cell] == 1:
            edges[e] = cell
            e += 1
        elif kind[cell] == 2:
            faces[f] = cell
            f += 1
    edges = edges[stable_order(value[edges])]
    faces = faces[stable_order(value[faces])]
    face_rank = np.empty(size, dtype=np.int64)
    for r in range(n_faces):
        face_rank[faces[r]] = r
    # Clearing: the edges of the spanning forest, in edge order, pair in dimension 0.
    parent = np.empty(size, dtype=np.int64)
    for cell in range(size):
        parent[cell] = cell
    cleared = np.zeros(n_edges, dtype=np.bool_)
    for r in range(n_edges):
        cell = edges[r]
        coord = _coordinates(cell, strides)
        axis = 0 if coord[0] % 2 == 1 else (1 if coord[1] % 2 == 1 else 2)
        u = _find(parent, cell - strides[axis])
        w = _find(parent, cell + strides[axis])
        if u != w:
            parent[u] = w
            cleared[r] = True
    pivot_column = np.full(n_faces, -1, dtype=np.int64)
    stored_start = np.full(n_edges, -1, dtype=np.int64)
    stored_length = np.zeros(n_edges, dtype=np.int64)
    pool = np.empty(1024, dtype=np.int64)
    used = 0
    column = np.empty(64, dtype=np.int64)
    other = np.empty(64, dtype=np.int64)
    scratch = np.empty(64, dtype=np.int64)
    count = 0
    for r in range(n_edges - 1, -1, -1):
        if cleared[r]:
            continue
        length = _coboundary(edges[r], dims, strides, face_rank, column)
        added = False
        while length > 0:
            j = pivot_column[column[0]]
            if j < 0:
                break
            if stored_start[j] >= 0:
                other_length = stored_length[j]
                other = _grow(other, other_length)
                other[:other_length] = pool[stored_start[j] : stored_start[j] + other_length]
            else:
                other_length = _coboundary(edges[j], dims, strides, face_rank, other)
            scratch = _grow(scratch, length + other_length)
            length = _symmetric_difference(column, length, other, other_length, scratch)
            column, scratch = scratch, column
            added = True
        if length == 0:  # the box is contractible: every unclear edge column has a pivot
            continue
        pivot_column[column[0]] = r
        if added:
            pool = _grow(pool, used + length)
            pool[used : used + length] = column[:length]
            stored_start[r] = used
            stored_length[r] = length
            used += length
        face = faces[column[0]]
        if value[face] != value[edges[r]]:
            births[count] = _lowest_cube(edges[r], dims, strides, cubes, shape)
            deaths[count] = _lowest_cube(face, dims, strides, cubes, shape)
            count += 1
    return count


@nb.njit(cache=True, nogil=True)
def h1_batch(values, shape, births, deaths, counts, start, stop):
    """Volumes ``start .. stop - 1`` of ``values`` ``(B, P)`` into ``births``/``deaths``
    ``(B, capacity)`` and ``counts`` ``(B,)``, without the GIL."""
    for b in range(start, stop):
        counts[b] = _volume_h1(values[b], shape, births[b], deaths[b])
