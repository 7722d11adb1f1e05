"""GPU part of the native H1 backend: filtration order, spanning forest and apparent pairs on the
device; only the remaining columns are reduced on the CPU (the split of Ripser++).

For a batch of distance matrices on a CUDA device:

1. torch sorts each cloud's edges (stable, in combinatorial order ``(j, i)``, so the same order
   as the CPU path's radix sort) after cutting the filtration at ``min(max_edge, enclosing
   radius)``, and scatters the ranks into a ``(B, N, N)`` int32 matrix;
2. :func:`_apparent_kernel` finds, for every edge of every cloud at once, the smallest third
   vertex ``k`` whose two other edges both come earlier (the apparent pair of that column), a
   tile of edges per program;
3. :func:`_spanning_forest_kernel` runs Prim on the ranks, one program per cloud; ranks are
   distinct, so its forest is the unique minimum one, Kruskal's forest of the CPU path, and those
   columns are cleared;
4. the ranks and column marks go to the CPU, where
   :func:`~torchtopo.rips.native.reduce_marked_columns` reduces the ``REDUCE`` columns with the
   code of the CPU path; pairs of zero persistence are dropped on the device.

Every mark equals the CPU path's, so the pairs (generators included) are identical. The kernels
run under ``TRITON_INTERPRET=1`` on CPU tensors, which is how the tests check them without a GPU.
"""

from __future__ import annotations

import numpy as np
import torch
import triton
import triton.language as tl
from torch import Tensor

from .native import reduce_marked_columns
from .triton_support import MAX_POINTS

__all__ = ["h1_pairing_triton", "mark_columns_triton", "MAX_POINTS"]

# Entries of the (clouds, N, N) int32 rank matrix per chunk of clouds (1 GiB), which bounds the
# device memory of a call whatever the batch size.
MARK_ELEMENTS = 1 << 28

# The constants of :mod:`torchtopo.rips._native_kernels` (which needs numba, not imported here):
# the rank of an edge outside the filtration (also "no third vertex yet"), and the column marks.
ABSENT = 2**31 - 1
_ABSENT = tl.constexpr(ABSENT)
_REDUCE = tl.constexpr(-1)
_CLEARED = tl.constexpr(-2)
_TILE = 32


@triton.jit
def _apparent_kernel(rank, columns, n_points, n_pairs, BLOCK: tl.constexpr):
    """Mark the edges of a ``BLOCK x BLOCK`` tile of one cloud: apparent ``k`` or ``REDUCE``."""
    cloud = tl.program_id(0).to(tl.int64)
    tile_i = tl.program_id(1)
    tile_j = tl.program_id(2)
    if tile_i <= tile_j:  # tiles below the diagonal hold no edge i < j
        base = cloud * n_points * n_points
        offs_i = tile_i * BLOCK + tl.arange(0, BLOCK)
        offs_j = tile_j * BLOCK + tl.arange(0, BLOCK)
        in_i = offs_i < n_points
        in_j = offs_j < n_points
        edge = tl.load(
            rank + base + offs_i[:, None] * n_points + offs_j[None, :],
            mask=in_i[:, None] & in_j[None, :],
            other=_ABSENT,
        )
        wanted = (offs_i[:, None] < offs_j[None, :]) & (edge != _ABSENT)
        third = tl.full((BLOCK, BLOCK), _ABSENT, dtype=tl.int32)
        for k in range(0, n_points):
            # Row k of the symmetric rank matrix holds the edges {i, k} and {j, k}, contiguously.
            to_i = tl.load(rank + base + k * n_points + offs_i, mask=in_i, other=_ABSENT)
            to_j = tl.load(rank + base + k * n_points + offs_j, mask=in_j, other=_ABSENT)
            closes = (to_i[:, None] < edge) & (to_j[None, :] < edge)
            third = tl.minimum(third, tl.where(closes, k, _ABSENT))
        mark = tl.where(third < n_points, third, _REDUCE)
        tl.store(columns + cloud * n_pairs + edge, mark, mask=wanted)


@triton.jit
def _spanning_forest_kernel(rank, columns, n_points, n_pairs, BLOCK_N: tl.constexpr):
    """Prim on one cloud's ranks, restarting at the first unreached vertex when no edge is left;
    mark the forest's columns ``CLEARED``."""
    cloud = tl.program_id(0).to(tl.int64)
    base = cloud * n_points * n_points
    offs = tl.arange(0, BLOCK_N)
    outside = (offs < n_points) & (offs != 0)
    best = tl.load(rank + base + offs, mask=outside, other=_ABSENT)
    for _ in range(0, n_points - 1):
        smallest = tl.min(tl.where(outside, best, _ABSENT), axis=0)
        # Ranks are distinct, so one vertex holds `smallest`; with none left, the first outside.
        vertex = tl.min(tl.where(outside & (best == smallest), offs, BLOCK_N), axis=0)
        tl.store(columns + cloud * n_pairs + smallest, _CLEARED, mask=smallest != _ABSENT)
        outside = outside & (offs != vertex)
        row = tl.load(rank + base + vertex * n_points + offs, mask=outside, other=_ABSENT)
        best = tl.minimum(best, row)


@torch.no_grad()
def mark_columns_triton(
    distances: Tensor, mask: Tensor | None, max_edge: float | None
) -> tuple[Tensor, Tensor, Tensor]:
    """Filtration order and column marks of a batch, on the device of ``distances``.

    Parameters
    ----------
    distances : Tensor
        ``(B, N, N)`` floating, symmetric, zero diagonal; CUDA (any device under
        ``TRITON_INTERPRET=1``), ``N <= MAX_POINTS``.
    mask : Tensor, optional
        ``(B, N)`` bool, True for real points.
    max_edge : float, optional
        Edges longer than this are not in the filtration.

    Returns
    -------
    edge_rank : Tensor
        ``(B, E)`` int32, ``E = N (N - 1) / 2``: the rank of each edge ``(i, j)``, ``i < j``,
        in combinatorial order (by ``j``, then ``i``); ranks ``>= n_edges`` are edges outside
        the filtration.
    columns : Tensor
        ``(B, E)`` int32 marks by rank: ``-2`` cleared (a spanning-forest edge), ``k >= 0`` the
        third vertex of an apparent pair, ``-1`` a column to reduce (also past ``n_edges``).
    n_edges : Tensor
        ``(B,)`` long, edges in each cloud's filtration.
    """
    batch, n = distances.shape[:2]
    if n > MAX_POINTS:
        raise ValueError(f"distances: the Triton H1 kernels take at most {MAX_POINTS} points per cloud, got {n}")
    device = distances.device
    valid = torch.ones(batch, n, dtype=torch.bool, device=device) if mask is None else mask
    # The enclosing radius (over real points): past it the complex is a cone, as on the CPU path.
    row_max = distances.masked_fill(~valid.unsqueeze(1), float("-inf")).amax(dim=2)
    cut = row_max.masked_fill(~valid, float("inf")).amin(dim=1).double()
    if max_edge is not None:
        cut = cut.clamp_max(float(max_edge))
    j, i = torch.tril_indices(n, n, -1, device=device)  # combinatorial order: by j, then i
    lengths = distances[:, i, j] + 0.0  # no -0.0
    present = valid[:, i] & valid[:, j] & (lengths.double() <= cut.unsqueeze(1))
    order = lengths.masked_fill(~present, float("inf")).sort(dim=1, stable=True).indices
    pairs = order.shape[1]
    edge_rank = torch.empty(batch, pairs, dtype=torch.int32, device=device)
    edge_rank.scatter_(1, order, torch.arange(pairs, dtype=torch.int32, device=device).expand(batch, pairs))
    rank = torch.full((batch, n, n), ABSENT, dtype=torch.int32, device=device)
    in_filtration = edge_rank.masked_fill(~present, ABSENT)
    rank[:, i, j] = in_filtration
    rank[:, j, i] = in_filtration
    columns = torch.full((batch, max(pairs, 1)), -1, dtype=torch.int32, device=device)
    if batch and n > 1:
        tiles = triton.cdiv(n, _TILE)
        _apparent_kernel[(batch, tiles, tiles)](rank, columns, n, columns.shape[1], BLOCK=_TILE)
        _spanning_forest_kernel[(batch,)](rank, columns, n, columns.shape[1], BLOCK_N=triton.next_power_of_2(n))
    return edge_rank, columns[:, :pairs], present.sum(dim=1)


@torch.no_grad()
def h1_pairing_triton(distances: Tensor, mask: Tensor | None, max_edge: float | None) -> tuple[Tensor, Tensor, Tensor]:
    """Dimension-1 pairing of :func:`~torchtopo.rips.native.h1_pairing`, marks computed on the GPU.

    Same arguments and returns (``(B, K, 2)`` birth and death edges and a ``(B, K)`` mask, on the
    device of ``distances``), and the same pairs.
    """
    batch, n = distances.shape[:2]
    # A chunk of clouds at a time, so the (chunk, N, N) rank matrix stays within MARK_ELEMENTS.
    chunk = max(1, MARK_ELEMENTS // (n * n))
    pieces, counts = [], []
    for start in range(0, batch, chunk):
        clouds = slice(start, start + chunk)
        marks = mark_columns_triton(distances[clouds], None if mask is None else mask[clouds], max_edge)
        rows, piece_counts, _ = reduce_marked_columns(*(t.cpu().numpy() for t in marks), n)
        pieces.append(rows)
        counts.append(piece_counts)
    width = max(piece.shape[1] for piece in pieces) if pieces else 0
    rows = np.concatenate(
        [np.pad(piece, ((0, 0), (0, width - piece.shape[1]), (0, 0)), constant_values=-1) for piece in pieces]
    ) if pieces else np.full((0, 0, 4), -1, dtype=np.int32)
    counts = np.concatenate(counts) if counts else np.zeros(0, dtype=np.int64)
    device = distances.device
    rows = torch.from_numpy(rows).to(device=device, dtype=torch.long)
    births, deaths = rows[..., :2], rows[..., 2:]
    slot = torch.arange(rows.shape[1], device=device).unsqueeze(0)
    keep = slot < torch.from_numpy(counts).to(device).unsqueeze(1)
    # The reduction wrote the pairs of zero persistence too: drop them (an essential class stays).
    cloud = torch.arange(batch, device=device).unsqueeze(1)
    birth_length = distances[cloud, births[..., 0].clamp_min(0), births[..., 1].clamp_min(0)]
    death_length = distances[cloud, deaths[..., 0].clamp_min(0), deaths[..., 1].clamp_min(0)]
    keep &= (deaths[..., 0] < 0) | (death_length > birth_length)
    # Kept rows first, in the reduction's order, as the CPU path writes them.
    order = (~keep).to(torch.int8).argsort(dim=1, stable=True)
    width = int(keep.sum(dim=1).max()) if batch else 0
    order = order[:, :width]
    births = births.gather(1, order.unsqueeze(-1).expand(-1, -1, 2))
    deaths = deaths.gather(1, order.unsqueeze(-1).expand(-1, -1, 2))
    keep = keep.gather(1, order)
    births = births.masked_fill(~keep.unsqueeze(-1), -1)
    deaths = deaths.masked_fill(~keep.unsqueeze(-1), -1)
    return births, deaths, keep
