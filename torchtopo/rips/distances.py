"""Pairwise Euclidean distances: a fast form to order edges, an exact form for the values."""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["pairwise_distances", "mask_distances", "edge_lengths"]


def pairwise_distances(points: Tensor, mask: Tensor | None = None) -> Tensor:
    r"""All pairwise Euclidean distances of a batch of clouds, by one batched matrix product.

    The clouds are centred on the mean of their real points first: the expansion
    :math:`\|x\|^2 + \|y\|^2 - 2\langle x, y\rangle` loses accuracy in proportion to
    :math:`\|x\|^2`, so centring removes the error that comes from the clouds' position. The
    result is meant for *ordering* edges; the lengths of the edges a diagram uses are recomputed
    exactly by :func:`edge_lengths`.

    Parameters
    ----------
    points : Tensor
        ``(B, N, D)`` floating.
    mask : Tensor, optional
        ``(B, N)`` bool, True for real points. Rows and columns of masked points are ``inf``
        (the diagonal stays 0).

    Returns
    -------
    Tensor
        ``(B, N, N)``, symmetric with a zero diagonal.
    """
    if mask is None:
        center = points.mean(dim=1, keepdim=True)
    else:
        weights = mask.to(points.dtype).unsqueeze(-1)
        center = (points * weights).sum(1, keepdim=True) / weights.sum(1, keepdim=True).clamp_min(1)
    centred = points - center
    sq_norms = centred.square().sum(-1)
    gram = torch.bmm(centred, centred.transpose(1, 2))
    squared = (sq_norms.unsqueeze(2) + sq_norms.unsqueeze(1) - 2 * gram).clamp_min_(0)
    distances = squared.sqrt_()
    # Symmetrise and pin the diagonal: rounding in the product must not make d(i, j) != d(j, i).
    distances = torch.minimum(distances, distances.transpose(1, 2))
    distances.diagonal(dim1=1, dim2=2).zero_()
    return distances if mask is None else mask_distances(distances, mask)


def mask_distances(distances: Tensor, mask: Tensor) -> Tensor:
    """Set the rows and columns of masked points of ``distances`` ``(B, N, N)`` to ``inf`` (diagonal kept)."""
    real = mask.unsqueeze(2) & mask.unsqueeze(1)
    eye = torch.eye(distances.shape[1], dtype=torch.bool, device=distances.device)
    return distances.masked_fill(~(real | eye), float("inf"))


def edge_lengths(points: Tensor, edges: Tensor) -> Tensor:
    """Exact, differentiable lengths of the edges ``edges`` ``(B, K, 2)`` of clouds ``points`` ``(B, N, D)``.

    Entries of ``-1`` (padding) read vertex 0 and give a length of 0. Returns ``(B, K)``.
    """
    if points.device.type == "cpu" and edges.device.type == "cpu":
        from .compiled import COMPILED_DTYPES, compiled_edge_lengths
        from .h0 import numba_available

        if points.dtype in COMPILED_DTYPES and numba_available():
            return compiled_edge_lengths(points, edges)  # no (B, K, 2, D) temporary
    batch, n, dim = points.shape
    # One index_select on the flattened clouds: the fastest gather on the CPU, and its backward
    # (index_add) is as well.
    offsets = (torch.arange(batch, device=points.device) * n).view(batch, 1, 1)
    index = (edges.clamp_min(0) + offsets).reshape(-1)
    ends = points.reshape(batch * n, dim).index_select(0, index).view(batch, -1, 2, dim)
    # In place where autograd allows, and a fused norm: every large temporary costs page faults
    # on the CPU. vector_norm's gradient at a zero-length edge (duplicate points) is 0, not NaN.
    return torch.linalg.vector_norm(ends[:, :, 0].sub_(ends[:, :, 1]), dim=-1)
