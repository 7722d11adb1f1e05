"""``rips_persistence``: input checks, backend dispatch and the differentiable gather."""

from __future__ import annotations

from functools import partial

import numpy as np
import torch
from torch import Tensor, nn

from ..diagrams import Diagrams
from .compiled import COMPILED_DTYPES, h0_pairing_from_points
from .distances import edge_lengths, mask_distances, pairwise_distances
from .gudhi_backend import gudhi_pairing
from .h0 import h0_pairing, numba_available
from .pairing import Pairing, gather_diagrams

__all__ = ["rips_persistence", "VietorisRips", "BACKENDS"]

#: The values of the ``backend`` argument of :func:`rips_persistence` and :class:`VietorisRips`
#: (what each computes is described there).
BACKENDS = ("auto", "native", "gudhi")


def _check_points(points: Tensor) -> None:
    if not isinstance(points, Tensor):
        raise TypeError(f"points must be a torch.Tensor, got {type(points).__name__}")
    if not points.is_floating_point():
        raise TypeError(f"points must be a floating tensor, got {points.dtype}; call points.float() first")
    if points.dim() not in (2, 3):
        raise ValueError(f"points must be (B, N, D) or (N, D), got shape {tuple(points.shape)}")
    if points.shape[-2] == 0 or points.shape[-1] == 0:
        raise ValueError(f"points must hold at least one point of dimension >= 1, got shape {tuple(points.shape)}")
    if not _all_finite(points.detach()):
        raise ValueError("points must be finite, got NaN or inf")


#: Inputs up to this many values are checked in the calling thread (a few milliseconds at most).
_SERIAL_CHECK = 1 << 24


def _all_finite(values: Tensor) -> bool:
    """Whether ``values`` holds no NaN or inf, reading one value back from the device."""
    if values.device.type == "cpu" and values.numel() <= _SERIAL_CHECK and values.dtype in COMPILED_DTYPES:
        # NumPy runs in the calling thread; a torch reduction over more than 32768 values starts
        # the intra-op pool, and on a loaded machine a small call waits milliseconds for it.
        array = values.numpy()  # min and max propagate NaN and meet any inf; no temporary
        return bool(np.isfinite(array.min()) and np.isfinite(array.max()))
    # aminmax propagates NaN and reads the tensor once: ten times cheaper than isfinite().all().
    return bool(torch.isfinite(torch.stack(torch.aminmax(values))).all())


def _check_distances(distances: Tensor) -> None:
    if not isinstance(distances, Tensor):
        raise TypeError(f"distances must be a torch.Tensor, got {type(distances).__name__}")
    if not distances.is_floating_point():
        raise TypeError(f"distances must be a floating tensor, got {distances.dtype}")
    if distances.dim() not in (2, 3) or distances.shape[-1] != distances.shape[-2]:
        raise ValueError(f"distances must be (B, N, N) or (N, N), got shape {tuple(distances.shape)}")
    if distances.shape[-1] == 0:
        raise ValueError("distances must describe at least one point, got N = 0")
    if not torch.isfinite(distances).all() or (distances < 0).any():
        raise ValueError("distances must be finite and non-negative")
    scale = distances.detach().abs().amax()
    if not torch.allclose(distances, distances.transpose(-1, -2), rtol=1e-4, atol=1e-6 * float(scale)):
        raise ValueError("distances must be symmetric")


def _symmetrised(distances: Tensor) -> Tensor:
    """``(D + D^T) / 2`` with a zero diagonal, differentiably: ``torch.cdist`` output is neither
    exactly symmetric nor exactly zero on the diagonal (its matrix-product form rounds)."""
    off_diagonal = 1 - torch.eye(distances.shape[-1], dtype=distances.dtype, device=distances.device)
    return 0.5 * (distances + distances.transpose(-1, -2)) * off_diagonal


def _check_mask(mask: Tensor, batch: int, n: int) -> None:
    if not isinstance(mask, Tensor) or mask.dtype != torch.bool:
        raise TypeError(f"mask must be a bool tensor, got {getattr(mask, 'dtype', type(mask).__name__)}")
    if tuple(mask.shape) != (batch, n):
        raise ValueError(f"mask must have shape (B, N) = {(batch, n)}, got {tuple(mask.shape)}")
    if not mask.any(dim=1).all():
        raise ValueError("mask must keep at least one point of every cloud, got an all-False row")


def _matrix_lengths(distances: Tensor, edges: Tensor) -> Tensor:
    index = edges.clamp_min(0)
    batch = torch.arange(distances.shape[0], device=distances.device).unsqueeze(1)
    return distances[batch, index[..., 0], index[..., 1]]


def _use_triton(source: Tensor | None) -> bool:
    """The Triton kernels run on CUDA input (points for H0, distances for H1) of at most 2048
    points per cloud when Triton is installed."""
    from .triton_support import triton_available

    return source is not None and source.is_cuda and source.shape[1] <= 2048 and triton_available()


def _native_pairing(
    points: Tensor | None, matrix: Tensor | None, mask: Tensor | None, lengths, max_dim: int, max_edge: float | None
) -> Pairing:
    """Native pairing of dimensions 0 (to 2): H0 by the Triton kernel on CUDA points or batched
    Prim; H1 by the compiled cohomology reduction on the CPU, its order, spanning forest and
    apparent pairs computed by the Triton kernels first for CUDA input; H1 and H2 together by
    the compiled kernels of :mod:`torchtopo.rips.native_h2` on the CPU."""
    compiled = (
        points is not None and points.device.type == "cpu" and points.dtype in COMPILED_DTYPES and numba_available()
    )
    triton_h0 = _use_triton(points)
    order = None
    if compiled:
        # One compiled pass per cloud: direct-form ordering distances and Prim's tree.
        births, deaths, valid, order = h0_pairing_from_points(points, mask)
    else:
        if max_dim >= 1 or not triton_h0:
            # Edges are ordered by the product-form distances (fast); values are re-measured exactly.
            if points is not None:
                order = pairwise_distances(points, mask)
            else:
                order = matrix if mask is None else mask_distances(matrix, mask)
        if triton_h0:
            from .triton_h0 import h0_pairing_triton

            births, deaths, valid = h0_pairing_triton(points, mask)
        else:
            births, deaths, valid = h0_pairing(order, mask)
    if max_edge is not None:
        # Tree edges longer than max_edge are not in the filtration: their classes never die.
        too_long = lengths(deaths).detach() > max_edge
        deaths = deaths.masked_fill(too_long.unsqueeze(-1), -1)
    per_dim = [(births, deaths, valid)]
    if max_dim == 1:
        if _use_triton(order):
            from .triton_h1 import h1_pairing_triton as h1_pairing
        else:
            from .native import h1_pairing
        per_dim.append(h1_pairing(order, mask, max_edge))
    elif max_dim == 2:
        from .native_h2 import h1_h2_pairing

        per_dim.extend(h1_h2_pairing(order, mask, max_edge))
    births, deaths, valid = zip(*per_dim)
    return Pairing(births, deaths, valid)


def rips_persistence(
    points: Tensor | None = None,
    max_dim: int = 1,
    *,
    mask: Tensor | None = None,
    distances: Tensor | None = None,
    max_edge: float | None = None,
    keep_infinite: bool = False,
    backend: str = "auto",
    num_workers: int | None = None,
) -> Diagrams:
    r"""Persistence diagrams of the Vietoris–Rips filtrations of a batch of point clouds.

    Convention:
        The filtration value of an edge is the Euclidean distance between its points (the
        *diameter* convention of gudhi and ripser, not the radius); a simplex enters with its
        longest edge. Every class of dimension 0 is born at 0. Infinite bars (one per cloud in
        dimension 0, more with ``max_edge``) are dropped unless ``keep_infinite``. Pairs of zero
        persistence are not points of the diagram: they are masked out.

    Only *which* edges pair up is computed without gradients (by a backend); each birth and
    death value is then the length of its edge, recomputed exactly from ``points`` (or read from
    ``distances``), so gradients flow to the input.

    Parameters
    ----------
    points : Tensor
        ``(B, N, D)`` or ``(N, D)`` floating. Integer tensors are refused with a ``TypeError``.
    max_dim : int
        Highest homology dimension (0: connected components, 1: loops, 2: voids).
    mask : Tensor, optional
        ``(B, N)`` bool, True for real points, for clouds of different sizes. Masked points
        never change the result.
    distances : Tensor, optional
        ``(B, N, N)`` or ``(N, N)`` precomputed distance matrix, instead of ``points``. It must be
        symmetric up to rounding; it is used as ``(D + D^T) / 2`` with a zero diagonal (so
        ``torch.cdist`` output, which is neither exactly, works).
    max_edge : float, optional
        Leave out edges longer than this (classes alive at ``max_edge`` become infinite).
    keep_infinite : bool
        Keep infinite bars, with death ``inf``.
    backend : {"auto", "native", "gudhi"}
        ``"native"`` (dimensions 0 to 2): H0 by batched Prim on the input's device (a Triton
        kernel for CUDA points, a numba kernel on the CPU, tensor operations elsewhere); H1 by
        ripser's cohomology reduction with clearing and apparent pairs, compiled with numba,
        clouds split across threads on the CPU (for CUDA input, Triton kernels order the edges
        and find the spanning forest and the apparent pairs on the GPU first). With
        ``max_dim=2``, H1 and H2 come from one compiled pass per cloud on the CPU (any input
        device): H2 by the same method over triangles, its columns cleared by the H1 pairs,
        apparent pairs found from bitsets of neighbours, the rest reduced with coboundaries
        enumerated over the fourth vertex; the birth edge of an H2 point is the longest edge
        of its triangle, the death edge that of its tetrahedron. ``"gudhi"``: gudhi's
        ``flag_persistence_generators`` on the CPU, one cloud per thread; any ``max_dim``.
        ``"auto"``: native for ``max_dim <= 2`` (H1 and H2 need numba), gudhi otherwise.
    num_workers : int, optional
        Threads of the gudhi backend (default: all cores).

    Returns
    -------
    Diagrams
        Per dimension ``d``: ``pairs[d]`` ``(B, K_d, 2)`` in the dtype and on the device of the
        input, with ``mask[d]``, ``birth_edges[d]`` and ``death_edges[d]``. Unbatched input
        gives unbatched diagrams.

    Raises
    ------
    TypeError
        If ``points``, ``distances`` or ``mask`` has the wrong type or dtype.
    ValueError
        On a wrong shape, no point, NaN or inf, an all-False mask row or an unknown backend.
        (The finiteness check reads one value back from the device.)

    Examples
    --------
    >>> import torch
    >>> from torchtopo import rips_persistence
    >>> square = torch.tensor([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]])
    >>> dgm = rips_persistence(square, max_dim=1)
    >>> dgm.to_list(0)[0].tolist()
    [[0.0, 1.0], [0.0, 1.0], [0.0, 1.0]]
    >>> [round(v, 4) for v in dgm.to_list(1)[0].flatten().tolist()]
    [1.0, 1.4142]
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if not isinstance(max_dim, int) or max_dim < 0:
        raise ValueError(f"max_dim must be a non-negative int, got {max_dim!r}")
    if max_edge is not None and not max_edge >= 0:
        raise ValueError(f"max_edge must be a non-negative number or None, got {max_edge!r}")
    if (points is None) == (distances is None):
        raise ValueError("pass exactly one of points and distances")

    source = points if points is not None else distances
    if points is not None:
        _check_points(points)
    else:
        _check_distances(distances)
        source = _symmetrised(distances)
    batched = source.dim() == 3
    if not batched:
        source = source.unsqueeze(0)
    if mask is not None:
        if isinstance(mask, Tensor) and not batched:
            mask = mask.unsqueeze(0)
        _check_mask(mask, source.shape[0], source.shape[1])

    detached = source.detach()
    lengths = partial(edge_lengths if points is not None else _matrix_lengths, source)
    native = backend == "native" or (backend == "auto" and (max_dim == 0 or (max_dim <= 2 and numba_available())))
    if native:
        if max_dim > 2:
            raise ValueError(f"backend='native' computes dimensions 0 to 2, got max_dim={max_dim}; use backend='gudhi'")
        pairing = _native_pairing(
            detached if points is not None else None,
            detached if points is None else None,
            mask,
            lengths,
            max_dim,
            max_edge,
        )
    else:
        # gudhi gets float64 distances (it reads the real points of each cloud only).
        order = pairwise_distances(detached.double()) if points is not None else detached
        pairing = gudhi_pairing(order, mask, max_dim, max_edge, num_workers=num_workers)

    diagrams = gather_diagrams(lengths, pairing, keep_infinite=keep_infinite)
    return diagrams if batched else diagrams.unbatch()


class VietorisRips(nn.Module):
    r"""Module form of :func:`rips_persistence`: points ``(B, N, D)`` [+ mask ``(B, N)``] -> :class:`Diagrams`.

    Examples
    --------
    >>> import torch
    >>> from torchtopo import VietorisRips
    >>> layer = VietorisRips(max_dim=0)
    >>> layer(torch.randn(8, 32, 3)).pairs[0].shape
    torch.Size([8, 32, 2])
    """

    def __init__(
        self,
        max_dim: int = 1,
        *,
        max_edge: float | None = None,
        keep_infinite: bool = False,
        backend: str = "auto",
        num_workers: int | None = None,
    ) -> None:
        super().__init__()
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
        self.max_dim = max_dim
        self.max_edge = max_edge
        self.keep_infinite = keep_infinite
        self.backend = backend
        self.num_workers = num_workers

    def forward(self, points: Tensor, mask: Tensor | None = None) -> Diagrams:
        return rips_persistence(
            points,
            self.max_dim,
            mask=mask,
            max_edge=self.max_edge,
            keep_infinite=self.keep_infinite,
            backend=self.backend,
            num_workers=self.num_workers,
        )

    def extra_repr(self) -> str:
        return (
            f"max_dim={self.max_dim}, max_edge={self.max_edge}, keep_infinite={self.keep_infinite}, "
            f"backend={self.backend!r}"
        )
