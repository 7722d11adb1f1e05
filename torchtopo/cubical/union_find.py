"""Native batched union-find sweeps: dimension 0, and the top dimension by duality.

Dimension 0 of the sublevel filtration of a T-construction cubical complex (pixels are the top
cells; a lower cell enters with the smallest of its cofaces) is a union-find over the pixels in
increasing order: two pixels that share a vertex are joined as soon as both are present, so the
connectivity is 8 (2-D) or 26 (3-D); at each merge the younger component (the later minimum)
dies at the merging pixel.

The top dimension (loops of a 2-D image, voids of a volume) is the same sweep on the complement,
by Alexander duality (Bleile, Garin, Heiss, Maggs, Robins, "The persistent homology of dual
digital image constructions", 2022): a hole of the sublevel set at level ``t`` is a bounded
component of its complement, the pixels above ``t`` joined through shared edges (2-D) or faces
(3-D): connectivity 4 or 6. So the pixels are swept in *decreasing* order with that connectivity
and an outside node, older than every pixel (a padding cell at ``+inf``), next to every pixel of
the boundary; when a component dies at pixel ``p``, its highest pixel ``q`` gives the pair
``(birth, death) = (value[p], value[q])``.

Three implementations give identical pairings (same order, same tie-breaks): numba on the CPU,
images split across threads; a Triton kernel for CUDA tensors
(:mod:`torchtopo.cubical.triton_union_find`); and tensor operations on any device, a loop over
the pixels with the whole batch at each step (the path of the CPU without numba and of other
accelerators; slow on large images).
"""

from __future__ import annotations

import itertools
import math
from functools import lru_cache

import numpy as np
import torch
from torch import Tensor

from ..rips.h0 import numba_available

__all__ = ["neighbour_offsets", "union_find_pairing", "finish_rows", "IMPLEMENTATIONS"]

IMPLEMENTATIONS = ("auto", "numba", "torch", "triton")


def neighbour_offsets(spatial_dims: int, dual: bool) -> np.ndarray:
    """``(L, 3)`` int64 offsets ``(dz, dy, dx)`` of the neighbours a pixel is joined to.

    Sublevel sweep: every pixel sharing a vertex (8 in 2-D, in turn around the pixel; 26 in 3-D).
    Dual sweep: every pixel sharing an edge (2-D: 4) or a face (3-D: 6). 2-D images are one
    plane, ``dz = 0``. The order is the order in which dying components are reported.
    """
    if spatial_dims == 2 and not dual:
        # Around the pixel, so that consecutive neighbours (and the last and the first) share an
        # edge: the numba sweep finds one root per run of present neighbours.
        offsets = [(0, -1, -1), (0, -1, 0), (0, -1, 1), (0, 0, 1), (0, 1, 1), (0, 1, 0), (0, 1, -1), (0, 0, -1)]
        return np.array(offsets, dtype=np.int64)
    steps = [(0,), (-1, 0, 1), (-1, 0, 1)] if spatial_dims == 2 else [(-1, 0, 1)] * 3
    offsets = [o for o in itertools.product(*steps) if any(o)]
    if dual:
        offsets = [o for o in offsets if sum(map(abs, o)) == 1]
    return np.array(offsets, dtype=np.int64).reshape(-1, 3)


def _implementation(values: Tensor, implementation: str) -> str:
    from ..rips.triton_support import triton_available

    if implementation not in IMPLEMENTATIONS:
        raise ValueError(f"implementation must be one of {IMPLEMENTATIONS}, got {implementation!r}")
    if implementation != "auto":
        return implementation
    if values.is_cuda and triton_available():
        return "triton"
    if values.device.type == "cpu" and numba_available():
        return "numba"
    return "torch"


@torch.no_grad()
def union_find_pairing(
    values: Tensor, shape: tuple[int, int, int], spatial_dims: int, dual: bool, *, implementation: str = "auto"
) -> tuple[tuple[Tensor, Tensor, Tensor], tuple[Tensor, Tensor, Tensor] | None]:
    r"""Pixel generators of dimension 0 and, with ``dual``, of the top dimension, for a batch.

    Parameters
    ----------
    values : Tensor
        ``(B, P)`` floating, the filtration value of every pixel (flattened row-major from
        ``shape``); ``+inf`` for pixels outside the complex. Only the order of the values is
        used.
    shape : tuple of int
        ``(D, H, W)`` of each image, ``D = 1`` for 2-D images.
    spatial_dims : {2, 3}
    dual : bool
        Also sweep the complement: dimension 1 of 2-D images, 2 of volumes.
    implementation : {"auto", "numba", "torch", "triton"}
        ``"auto"``: Triton for CUDA tensors, numba on the CPU, tensor operations otherwise.

    Returns
    -------
    ``(birth_pixels, death_pixels, valid)`` for dimension 0 and for the dual (None without
    ``dual``): ``(B, K)`` long flat pixel indices (``-1`` for padding and for the death of the
    infinite bar, row 0 of dimension 0) and ``(B, K)`` bool, on the device of ``values``. Pairs
    of zero persistence are left out.
    """
    kind = _implementation(values, implementation)
    offsets = neighbour_offsets(spatial_dims, False)
    dual_offsets = neighbour_offsets(spatial_dims, True) if dual else np.zeros((0, 3), dtype=np.int64)
    boundary_z = spatial_dims == 3
    if kind == "numba":
        results = [tuple(t.to(values.device) for t in rows)
                   for rows in _pairing_numba(values, shape, offsets, dual_offsets, boundary_z)]
        return results[0], (results[1] if dual else None)
    order = torch.sort(values, dim=1, stable=True).indices
    sweep = _sweep_torch
    if kind == "triton":
        from .triton_union_find import sweep_triton as sweep
    found = [sweep(values, order, shape, offsets, False, boundary_z)]
    if dual:
        found.append(sweep(values, order, shape, dual_offsets, True, boundary_z))
    results = [tuple(t.to(values.device) for t in finish_rows(*rows)) for rows in found]
    return results[0], (results[1] if dual else None)


def finish_rows(births: Tensor, deaths: Tensor, counts: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Rows ``(B, capacity)`` and counts ``(B,)`` -> ``(B, K)`` rows, ``K`` the largest count
    (one host read on accelerators), with ``-1`` past each image's count."""
    k = int(counts.max()) if counts.numel() else 0
    valid = torch.arange(k, device=counts.device) < counts.unsqueeze(1)
    births, deaths = births[:, :k].long(), deaths[:, :k].long()
    return births.masked_fill(~valid, -1), deaths.masked_fill(~valid, -1), valid


@lru_cache(maxsize=64)
def _padded_layout(shape: tuple[int, int, int], boundary_z: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pixels on a grid padded by one cell on each side that has a boundary (not the plane axis of
    2-D images): ``inner`` ``(P,)`` int32 the padded index of each pixel, ``border`` the padding
    cells, and the row-major ``strides`` of the padded grid (read-only: cached per shape)."""
    depth, height, width = shape
    pad_z = 1 if boundary_z else 0
    padded = (depth + 2 * pad_z, height + 2, width + 2)
    index = np.arange(int(np.prod(padded)), dtype=np.int32).reshape(padded)
    inner = index[pad_z : pad_z + depth, 1 : height + 1, 1 : width + 1].ravel()
    is_border = np.ones(index.size, dtype=bool)
    is_border[inner] = False
    strides = np.array([padded[1] * padded[2], padded[2], 1], dtype=np.int64)
    layout = (inner.copy(), np.flatnonzero(is_border), strides)
    for array in layout:
        array.flags.writeable = False
    return layout


@lru_cache(maxsize=None)
def _runs_table(ring: tuple[tuple[int, ...], ...], table: tuple[tuple[int, ...], ...]) -> np.ndarray:
    """``(256,)`` uint8: for each bit mask of the present cells of ``ring`` (the 8 cells around a
    pixel, in turn), a bit per neighbour of ``table`` to look up: the first, in table order, of
    each run of consecutive present ring cells that holds a neighbour of the table (read-only)."""
    where = {offset: i for i, offset in enumerate(ring)}
    runs = np.zeros(256, dtype=np.uint8)
    for mask in range(1, 256):
        present = [bool(mask >> i & 1) for i in range(8)]
        # Label the runs: a run starts at a present cell whose predecessor (cyclically) is absent.
        label, run = [-1] * 8, -1
        start = next((i for i in range(8) if present[i] and not present[i - 1]), 0)
        for i in range(start, start + 8):
            if not present[i % 8]:
                continue
            if not present[(i - 1) % 8] or run < 0:
                run += 1
            label[i % 8] = run
        first: dict[int, int] = {}
        for j, offset in enumerate(table):
            if present[where[offset]]:
                first.setdefault(label[where[offset]], j)
        for j in first.values():
            runs[mask] |= 1 << j
    runs.flags.writeable = False
    return runs


def _pairing_numba(values: Tensor, shape, offsets: np.ndarray, dual_offsets: np.ndarray, boundary_z: bool):
    """The sweeps of :mod:`torchtopo.cubical._union_find_numba`, images split across threads: per
    sweep, ``(birth_pixels, death_pixels, valid)`` ``(B, K)`` CPU tensors as :func:`union_find_pairing`."""
    from . import _union_find_numba as kernels
    from ..rips._numba_threads import run_on_threads

    batch, n = values.shape
    # Sorted (and swept) in their own type: float32 keys are half as long to sort as float64 ones.
    dtype = torch.float32 if values.dtype in (torch.float16, torch.bfloat16, torch.float32) else torch.float64
    array = values.detach().to("cpu", dtype).contiguous().numpy()
    unsigned = np.uint32 if dtype == torch.float32 else np.uint64
    bits, sign = array.view(unsigned), unsigned(1 << (8 * unsigned().itemsize - 1))
    inner, border, strides = _padded_layout(tuple(shape), boundary_z)
    deltas, dual_deltas = offsets @ strides, dual_offsets @ strides
    if boundary_z:  # volumes: every present neighbour is looked up
        ring, runs, dual_runs = np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.uint8), np.zeros(0, dtype=np.uint8)
    else:  # 2-D images: the sublevel neighbours are the ring
        ring = deltas
        table = tuple(map(tuple, offsets.tolist()))
        runs = _runs_table(table, table)
        dual_runs = _runs_table(table, tuple(map(tuple, dual_offsets.tolist())))
    sweeps = 2 if dual_offsets.shape[0] else 1
    # np.empty maps pages lazily: only the rows written are touched.
    rows = [np.empty((batch, n) if i < 2 * sweeps else (0, 0), dtype=np.int32) for i in range(4)]
    counts = [np.zeros(batch, dtype=np.int64) for _ in range(2)]

    def kernel(start: int, stop: int) -> None:
        kernels.sweep_batch(array, bits, sign, inner, border, ring, runs, deltas, dual_runs, dual_deltas, rows[0],
                            rows[1], counts[0], rows[2], rows[3], counts[1], start, stop)

    # The work estimate, for run_on_threads to keep small batches in the calling thread: about 50
    # operations per pixel sorted and 15 per neighbour looked at in each sweep.
    run_on_threads(kernel, batch, work=array.size * (50 + 15 * (offsets.shape[0] + dual_offsets.shape[0])))
    results = []
    for i in range(sweeps):
        births, deaths = (torch.from_numpy(a) for a in kernels.padded_rows(rows[2 * i], rows[2 * i + 1], counts[i]))
        results.append((births, deaths, births >= 0))
    return results


def _sweep_torch(values: Tensor, order: Tensor, shape, offsets: np.ndarray, dual: bool, boundary_z: bool):
    """The sweep of :mod:`torchtopo.cubical._union_find_numba` with the whole batch at each step.

    Union by size bounds the depth of every tree by ``log2(P + 1)``, so a fixed number of pointer
    jumps finds each root without reading anything back from the device; the oldest root
    (``elder``, its birth position) is kept at each tree's root.
    """
    batch, n = values.shape
    device = values.device
    depth, height, width = shape
    outside, dump = n, n + 1  # the outside node of the dual sweep; a slot written by no-ops
    rows = torch.arange(batch, device=device)
    parent = torch.full((batch, n + 2), -1, dtype=torch.long, device=device)
    size = torch.zeros(batch, n + 2, dtype=torch.long, device=device)
    elder = torch.full((batch, n + 2), n, dtype=torch.long, device=device)
    births = torch.full((batch, n + 1), -1, dtype=torch.long, device=device)
    deaths = torch.full((batch, n + 1), -1, dtype=torch.long, device=device)
    counts = torch.zeros(batch, dtype=torch.long, device=device)
    if dual:
        parent[:, outside], size[:, outside], elder[:, outside] = outside, 1, -1
    else:
        births[:, 0] = order[:, 0]
        counts += 1
    table = torch.as_tensor(offsets, device=device)
    lanes = table.shape[0] + (1 if dual else 0)
    earlier = torch.ones(lanes, lanes, dtype=torch.bool, device=device).tril(-1)
    jumps = math.ceil(math.log2(n + 2)) + 1
    plane = height * width
    for step in range(n):
        position = n - 1 - step if dual else step
        p = order[:, position]
        z, y, x = p // plane, (p % plane) // width, p % width
        zz, yy, xx = (c.unsqueeze(1) + table[:, i] for i, c in enumerate((z, y, x)))
        inside = (zz >= 0) & (zz < depth) & (yy >= 0) & (yy < height) & (xx >= 0) & (xx < width)
        q = torch.where(inside, zz * plane + yy * width + xx, dump)
        if dual:
            edge = (y == 0) | (y == height - 1) | (x == 0) | (x == width - 1)
            if boundary_z:
                edge |= (z == 0) | (z == depth - 1)
            q = torch.cat([q, torch.where(edge, outside, dump).unsqueeze(1)], 1)
            inside = torch.cat([inside, edge.unsqueeze(1)], 1)
        valid = inside & (parent.gather(1, q) >= 0)
        root = q
        for _ in range(jumps):
            root = torch.where(valid, parent.gather(1, root), root)
        age = torch.where(valid, elder.gather(1, root), n + 1)
        oldest = age.argmin(1, keepdim=True)
        survivor = root.gather(1, oldest)
        first = valid & ~((root.unsqueeze(2) == root.unsqueeze(1)) & valid.unsqueeze(1) & earlier).any(2)
        dying = first & (root != survivor)
        born_at = age.clamp(0, n - 1)
        born = order.gather(1, n - 1 - born_at if dual else born_at)
        record = dying & (values.gather(1, born) != values.gather(1, p.unsqueeze(1)))
        slot = torch.where(record, counts.unsqueeze(1) + record.cumsum(1) - 1, n)
        pixel = p.unsqueeze(1).expand_as(born)
        births.scatter_(1, slot, born if not dual else pixel)
        deaths.scatter_(1, slot, pixel if not dual else born)
        counts += record.sum(1)
        # Union by size: every distinct root (and the new pixel) under the largest tree.
        sizes = torch.where(first, size.gather(1, root), 0)
        joined = first.any(1)
        big = torch.where(joined, root.gather(1, sizes.argmax(1, keepdim=True)).squeeze(1), p)
        parent.scatter_(1, torch.where(first, root, dump), big.unsqueeze(1).expand_as(root))
        parent[rows, p] = big
        size[rows, big] = sizes.sum(1) + 1
        elder[rows, big] = torch.where(joined, age.gather(1, oldest).squeeze(1), step)
    return births[:, :n], deaths[:, :n], counts
