"""GPU kernel: distances and the minimum spanning tree of each cloud in one Triton launch.

One program per cloud runs Prim's algorithm with the cloud's ``best`` distances in registers and
computes each new vertex's distances on the fly, as exact differences (no ``(B, N, N)`` matrix
is ever written to memory). The steps, tie-breaks included, are those of the torch
implementation in :mod:`torchtopo.rips.h0`, so both give the same pairing on the same
distances. Triton is imported when the kernel is first used; the module is only loaded for CUDA
input (or under ``TRITON_INTERPRET=1`` in the tests).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl
from torch import Tensor

from .h0 import finish_h0_pairing
from .triton_support import MAX_POINTS

__all__ = ["h0_pairing_triton", "MAX_POINTS"]


@triton.jit
def _distances_to(points, cloud_offset, vertex, offs_n, in_range, n_dims, stride_n, stride_d, BLOCK_D: tl.constexpr):
    """Euclidean distances from point ``vertex`` to every point of the cloud, ``(BLOCK_N,)``."""
    total = tl.zeros(offs_n.shape, dtype=points.dtype.element_ty)
    for start in range(0, n_dims, BLOCK_D):
        offs_d = start + tl.arange(0, BLOCK_D)
        in_dims = offs_d < n_dims
        anchor = tl.load(points + cloud_offset + vertex * stride_n + offs_d * stride_d, mask=in_dims, other=0.0)
        block = tl.load(
            points + cloud_offset + offs_n[:, None] * stride_n + offs_d[None, :] * stride_d,
            mask=in_range[:, None] & in_dims[None, :],
            other=0.0,
        )
        diff = block - anchor[None, :]
        total += tl.sum(diff * diff, axis=1)
    return tl.sqrt(total)


@triton.jit
def _prim_kernel(
    points,
    mask,
    tree_edges,
    tree_lengths,
    roots,
    n_points,
    n_dims,
    stride_b,
    stride_n,
    stride_d,
    BLOCK_N: tl.constexpr,
    BLOCK_D: tl.constexpr,
):
    cloud = tl.program_id(0)
    cloud_offset = cloud.to(tl.int64) * stride_b
    offs_n = tl.arange(0, BLOCK_N)
    in_range = offs_n < n_points
    real = tl.load(mask + cloud * n_points + offs_n, mask=in_range, other=0) != 0
    # The first real point is the root, as in the torch implementation.
    root = tl.min(tl.where(real, offs_n, BLOCK_N), axis=0)
    tl.store(roots + cloud, root)
    outside = real & (offs_n != root)
    best = tl.where(outside, _distances_to(points, cloud_offset, root, offs_n, in_range, n_dims, stride_n, stride_d, BLOCK_D), float("inf"))
    parent = tl.zeros((BLOCK_N,), dtype=tl.int64) + root
    out = cloud.to(tl.int64) * (n_points - 1)
    for step in range(0, n_points - 1):
        # argmin with the lowest index among ties, like torch.argmin.
        smallest = tl.min(best, axis=0)
        vertex = tl.min(tl.where((best == smallest) & in_range, offs_n, BLOCK_N), axis=0)
        chosen = offs_n == vertex
        tl.store(tree_edges + (out + step) * 2, tl.sum(tl.where(chosen, parent, 0), axis=0))
        tl.store(tree_edges + (out + step) * 2 + 1, vertex.to(tl.int64))
        tl.store(tree_lengths + out + step, smallest)
        outside = outside & ~chosen
        candidate = _distances_to(points, cloud_offset, vertex, offs_n, in_range, n_dims, stride_n, stride_d, BLOCK_D)
        closer = outside & (candidate < best)
        best = tl.where(closer, candidate, tl.where(outside, best, float("inf")))
        parent = tl.where(closer, vertex.to(tl.int64), parent)


@torch.no_grad()
def h0_pairing_triton(points: Tensor, mask: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
    """Dimension-0 pairing of :func:`~torchtopo.rips.h0.h0_pairing`, computed from the points.

    Parameters
    ----------
    points : Tensor
        ``(B, N, D)`` float32 or float64 on a CUDA device (any device under ``TRITON_INTERPRET=1``),
        ``N <= MAX_POINTS``.
    mask : Tensor, optional
        ``(B, N)`` bool, True for real points.

    Returns
    -------
    The ``(birth_edges, death_edges, valid)`` triple of :func:`~torchtopo.rips.h0.h0_pairing`.
    """
    batch, n, dims = points.shape
    if n > MAX_POINTS:
        raise ValueError(f"points: the Triton H0 kernel takes at most {MAX_POINTS} points per cloud, got {n}")
    if mask is None:
        mask = torch.ones(batch, n, dtype=torch.bool, device=points.device)
    # Centring keeps the squared differences small relative to the coordinates, as on the torch path.
    weights = mask.to(points.dtype).unsqueeze(-1)
    centred = points - (points * weights).sum(1, keepdim=True) / weights.sum(1, keepdim=True).clamp_min(1)
    tree_edges = torch.empty(batch, max(n - 1, 0), 2, dtype=torch.long, device=points.device)
    tree_lengths = torch.empty(batch, max(n - 1, 0), dtype=points.dtype, device=points.device)
    roots = torch.empty(batch, dtype=torch.long, device=points.device)
    block_n = triton.next_power_of_2(n)
    block_d = max(1, min(triton.next_power_of_2(dims), max(1, 4096 // block_n)))
    _prim_kernel[(batch,)](
        centred,
        mask.to(torch.int8).contiguous(),
        tree_edges,
        tree_lengths,
        roots,
        n,
        dims,
        centred.stride(0),
        centred.stride(1),
        centred.stride(2),
        BLOCK_N=block_n,
        BLOCK_D=block_d,
    )
    return finish_h0_pairing(tree_edges, tree_lengths, roots, mask)
