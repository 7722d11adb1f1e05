"""Pairwise Euclidean distances: a fast form to order edges, an exact form for the values."""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = ["pairwise_distances", "mask_distances", "edge_lengths", "measure_near_threshold", "scale_exponent",
           "largest_unscaled", "smallest_unscaled"]


def _unscaled_range(dtype: torch.dtype) -> tuple[float, float]:
    """The bounds of :func:`scale_exponent` for ``dtype``: ``sqrt(tiny / eps)`` and ``sqrt(max / 32)``."""
    finfo = torch.finfo(dtype)
    return math.sqrt(finfo.tiny / finfo.eps), math.sqrt(finfo.max / 32)


# A dictionary, not a cached function: on a small call after other work, every Python frame
# costs about a percent.
_UNSCALED_RANGES = {dtype: _unscaled_range(dtype) for dtype in (torch.float16, torch.bfloat16, torch.float32,
                                                                 torch.float64)}


def scale_exponent(magnitude: float, dim: int, dtype: torch.dtype) -> int:
    """``e`` such that clouds times ``2**-e`` have coordinates of magnitude about 1, or 0 when
    their squared distances neither overflow nor lose precision to subnormals in ``dtype``.

    The product form (:func:`pairwise_distances`) squares centred coordinates up to twice the
    largest magnitude ``M`` of a coordinate: its terms stay below ``16 D M**2`` (``D = dim``),
    which must not overflow; and ``M**2 * sqrt(eps)`` must stay above the smallest normal
    number, so that lengths down to ``sqrt(eps) M`` keep their precision. ``magnitude`` is
    ``M``, finite; ``dtype`` is floating.
    """
    smallest, largest = _UNSCALED_RANGES[dtype]
    if magnitude == 0 or smallest <= magnitude <= largest / math.sqrt(dim):
        return 0
    return math.frexp(magnitude)[1]


def largest_unscaled(dim: int, dtype: torch.dtype) -> float:
    """The largest coordinate magnitude that :func:`scale_exponent` leaves unscaled for clouds
    in ``dim`` dimensions of floating ``dtype``: ``sqrt(max / (32 dim))``."""
    return _UNSCALED_RANGES[dtype][1] / math.sqrt(dim)


def smallest_unscaled(dtype: torch.dtype) -> float:
    """The smallest nonzero coordinate magnitude that :func:`scale_exponent` leaves unscaled in
    floating ``dtype``: ``sqrt(tiny / eps)``. A cloud below it beside larger ones (one scale
    serves a batch) loses the precision of its squared distances to subnormal numbers."""
    return _UNSCALED_RANGES[dtype][0]


def _centred(points: Tensor, mask: Tensor | None) -> Tensor:
    """``points`` ``(B, N, D)`` minus the mean of each cloud's real points."""
    if mask is None:
        center = points.mean(dim=1, keepdim=True)
    else:
        # where, not a product with the mask: padding is never read, NaN included
        real = torch.where(mask.unsqueeze(-1), points, 0)
        center = real.sum(1, keepdim=True) / mask.sum(1, keepdim=True).unsqueeze(-1).clamp_min(1).to(points.dtype)
    return points - center


def pairwise_distances(points: Tensor, mask: Tensor | None = None) -> Tensor:
    r"""All pairwise Euclidean distances of a batch of clouds, by one batched matrix product.

    The clouds are centred on the mean of their real points first: the expansion
    :math:`\|x\|^2 + \|y\|^2 - 2\langle x, y\rangle` loses accuracy in proportion to
    :math:`\|x\|^2`, so centring removes the error that comes from the clouds' position. The
    result is meant for *ordering* edges; the lengths of the edges a diagram uses are recomputed
    exactly by :func:`edge_lengths`. The squares must not overflow: coordinates up to about
    ``sqrt(finfo.max / (16 D))`` (:func:`~torchtopo.rips_persistence` rescales larger clouds).

    Parameters
    ----------
    points : Tensor
        ``(B, N, D)`` floating.
    mask : Tensor, optional
        ``(B, N)`` bool, True for real points. Rows and columns of masked points are ``inf``
        (the diagonal stays 0); masked points are never read (they may hold NaN).

    Returns
    -------
    Tensor
        ``(B, N, N)``, symmetric with a zero diagonal.
    """
    centred = _centred(points, mask)
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
    if edges.device.type == "cpu":
        from .compiled import compiled_edge_lengths, takes_points

        if takes_points(points):
            return compiled_edge_lengths(points, edges)  # no (B, K, 2, D) temporary
    batch, n, dim = points.shape
    # One index_select on the flattened clouds: the fastest gather on the CPU, and its backward
    # (index_add) is as well.
    offsets = (torch.arange(batch, device=points.device) * n).view(batch, 1, 1)
    index = (edges.clamp_min(0) + offsets).reshape(-1)
    ends = points.reshape(batch * n, dim).index_select(0, index).view(batch, edges.shape[1], 2, dim)
    # In place where autograd allows, and a fused norm: every large temporary costs page faults
    # on the CPU. vector_norm's gradient at a zero-length edge (duplicate points) is 0, not NaN.
    return torch.linalg.vector_norm(ends[:, :, 0].sub_(ends[:, :, 1]), dim=-1)


@torch.no_grad()
def measure_near_threshold(distances: Tensor, points: Tensor, mask: Tensor | None, threshold: float) -> Tensor:
    """``distances`` (from :func:`pairwise_distances`) with every edge that may lie on the other
    side of ``threshold`` than its exact length re-measured by :func:`edge_lengths`.

    The product form is a few ulps of the clouds' squared radius off, so an edge exactly
    ``threshold`` long (a ``max_edge`` taken from the data) can come out longer than the cut. The
    entries whose square is within a rigorous bound of that error from ``threshold**2`` are
    replaced by the exact lengths, in place, so a filtration cut at ``threshold`` keeps exactly
    the edges whose exact length is at most ``threshold``; the others keep their order.

    Parameters
    ----------
    distances : Tensor
        ``(B, N, N)`` ordering distances of ``points``, modified in place and returned; any
        floating dtype at least as wide as ``points``'.
    points : Tensor
        ``(B, N, D)`` the clouds, finite.
    mask : Tensor, optional
        ``(B, N)`` bool, True for real points (masked ones are never re-measured).
    threshold : float
        The cut.
    """
    batch, n, dim = points.shape
    centred = _centred(points, mask)
    radius2 = centred.square().sum(-1)
    if mask is not None:
        radius2 = radius2.masked_fill(~mask, 0)
    radius2 = radius2.amax(1) if n else radius2.new_zeros(batch)
    if batch == 0 or threshold > 2.01 * math.sqrt(float(radius2.max())):
        return distances  # every edge (at most twice the largest radius long) is well inside the cut
    eps = torch.finfo(points.dtype).eps
    squared = threshold * threshold
    # |fl(|x|^2 + |y|^2 - 2<x, y>) - d^2| <= (D + 2) eps (|x| + |y|)^2 <= 4 (D + 2) eps R^2 (a dot
    # product's bound), plus the rounding of the exact norm and of sqrt and square: doubled.
    band = 8 * (dim + 4) * eps * radius2.to(distances.dtype) + 8 * eps * squared
    near = (distances.square() - squared).abs() <= band.view(batch, 1, 1)
    near = torch.triu(near, diagonal=1)
    cloud, i, j = near.nonzero(as_tuple=True)
    if cloud.numel():
        # One flattened cloud: the same vector_norm over each edge as the gather computes.
        edges = torch.stack([cloud * n + i, cloud * n + j], dim=-1).unsqueeze(0)
        exact = edge_lengths(points.reshape(1, batch * n, dim), edges)[0].to(distances.dtype)
        distances[cloud, i, j] = exact
        distances[cloud, j, i] = exact
    return distances
