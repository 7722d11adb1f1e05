"""Compiled CPU paths of the native backend: the H0 pairing straight from points, and exact
edge lengths.

:func:`h0_pairing_from_points` computes the ordering distances and Prim's tree of each cloud in
one compiled pass (numba, GIL released), instead of a chain of batched tensor operations;
:func:`compiled_edge_lengths` measures the edges a diagram uses without materialising their
end points. Both run in the calling thread when the batch is small
(:func:`torchtopo.rips._numba_threads.run_on_threads`): a latency-bound call then neither waits
for other threads nor competes with torch's intra-op pool on a loaded machine. Imported lazily:
``import torchtopo`` works without numba.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ._numba_threads import run_on_threads

__all__ = ["h0_pairing_from_points", "compiled_edge_lengths", "COMPILED_DTYPES"]

#: Point dtypes the compiled kernels take as they are (others go through the tensor paths).
COMPILED_DTYPES = (torch.float32, torch.float64)


@torch.no_grad()
def h0_pairing_from_points(points: Tensor, mask: Tensor | None) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    r"""The H0 pairing of :func:`torchtopo.rips.h0.h0_pairing` and the ordering distances, from
    CPU points.

    Parameters
    ----------
    points : Tensor
        ``(B, N, D)`` float32 or float64 on the CPU (no gradient is taken).
    mask : Tensor, optional
        ``(B, N)`` bool, True for real points.

    Returns
    -------
    birth_edges, death_edges : Tensor
        ``(B, N, 2)`` long, as :func:`~torchtopo.rips.h0.h0_pairing`.
    valid : Tensor
        ``(B, N)`` bool.
    distances : Tensor
        ``(B, N, N)`` in the dtype of ``points``: the direct-form distances the edges were
        ordered by (``inf`` in the rows and columns of masked points, 0 on the diagonal), to
        order the edges of H1 and H2 too.
    """
    from ._h0_numba import h0_from_points

    batch, n, dim = points.shape
    valid = torch.ones(batch, n, dtype=torch.bool) if mask is None else mask.cpu()
    distances = torch.empty(batch, n, n, dtype=points.dtype)
    birth_edges = torch.empty(batch, n, 2, dtype=torch.long)
    death_edges = torch.empty(batch, n, 2, dtype=torch.long)
    arrays = (points.contiguous().numpy(), valid.numpy(), distances.numpy(), birth_edges.numpy(), death_edges.numpy())
    run_on_threads(lambda start, stop: h0_from_points(*arrays, start, stop), batch, work=batch * n * n * dim // 2)
    counts = valid.sum(dim=1, keepdim=True)
    return birth_edges, death_edges, torch.arange(n) < counts, distances


class _EdgeLengths(torch.autograd.Function):
    # forward with ctx (not setup_context): apply then skips binding the arguments by signature.
    @staticmethod
    def forward(ctx, points: Tensor, edges: Tensor) -> Tensor:
        output = _lengths(points, edges)
        ctx.save_for_backward(points, edges, output)
        return output

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None]:
        # Tensor operations: a second derivative flows through them as well.
        points, edges, length = ctx.saved_tensors
        batch, n, dim = points.shape
        offsets = (torch.arange(batch) * n).view(batch, 1, 1)
        index = (edges.clamp_min(0) + offsets).reshape(-1)
        flat = points.reshape(batch * n, dim)
        ends = flat.index_select(0, index).view(batch, edges.shape[1], 2, dim)
        # The gradient of a zero-length edge is 0, as vector_norm's.
        scale = torch.where(length > 0, grad / length.clamp_min(torch.finfo(length.dtype).tiny), 0)
        push = (ends[:, :, 0] - ends[:, :, 1]) * scale.unsqueeze(-1)
        both = torch.stack([push, -push], dim=2).reshape(-1, dim)
        return torch.zeros_like(flat).index_add(0, index, both).view(batch, n, dim), None


def _lengths(points: Tensor, edges: Tensor) -> Tensor:
    from ._h0_numba import edge_lengths_batch

    batch, k = edges.shape[:2]
    out = torch.empty(batch, k, dtype=torch.float64)
    arrays = (points.detach().contiguous().numpy(), edges.contiguous().numpy(), out.numpy())
    # Weighted 4 per value read: the float64 sums cost about that much more than a distance's.
    run_on_threads(lambda start, stop: edge_lengths_batch(*arrays, start, stop), batch,
                   work=4 * batch * k * points.shape[2])
    return out.to(points.dtype)


def compiled_edge_lengths(points: Tensor, edges: Tensor) -> Tensor:
    """:func:`torchtopo.rips.distances.edge_lengths` by a compiled kernel: ``points``
    ``(B, N, D)`` float32 or float64 on the CPU, ``edges`` ``(B, K, 2)`` long (``-1`` reads vertex
    0); returns ``(B, K)``, differentiable. Each length is summed in float64 and rounded once to
    the dtype of ``points``."""
    if points.requires_grad and torch.is_grad_enabled():
        return _EdgeLengths.apply(points, edges)
    return _lengths(points, edges)
