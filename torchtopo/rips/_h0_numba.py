"""Numba kernel of the CPU H0 path: Prim's algorithm, clouds split across threads.

The same steps and tie-breaks as the torch loop in :mod:`torchtopo.rips.h0` (lowest index among
equal candidates; after a cloud's real points are exhausted, steps pick vertex 0 at length
``inf``), so both give identical pairings. Imported lazily: ``import torchtopo`` works without
numba.
"""

from __future__ import annotations

import numba as nb
import numpy as np


@nb.njit(cache=True, nogil=True)
def prim_batch(distances, valid, tree_edges, tree_lengths, roots, start, stop):
    """Fill ``tree_edges`` ``(B, N - 1, 2)``, ``tree_lengths`` ``(B, N - 1)`` and ``roots`` ``(B,)``
    for clouds ``start .. stop - 1``, without the GIL."""
    n = valid.shape[1]
    for b in range(start, stop):
        root = 0
        while root < n - 1 and not valid[b, root]:
            root += 1
        roots[b] = root
        outside = valid[b].copy()
        outside[root] = False
        best = np.full(n, np.inf, dtype=distances.dtype)
        parent = np.full(n, root, dtype=np.int64)
        for j in range(n):
            if outside[j]:
                best[j] = distances[b, root, j]
        for step in range(n - 1):
            vertex = 0
            smallest = np.inf
            for j in range(n):
                if best[j] < smallest:
                    smallest = best[j]
                    vertex = j
            tree_edges[b, step, 0] = parent[vertex]
            tree_edges[b, step, 1] = vertex
            tree_lengths[b, step] = best[vertex]
            outside[vertex] = False
            best[vertex] = np.inf
            row = distances[b, vertex]
            for j in range(n):
                if outside[j] and row[j] < best[j]:
                    best[j] = row[j]
                    parent[j] = vertex
