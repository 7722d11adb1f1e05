"""``rips_persistence``: input checks, backend dispatch and the differentiable gather."""

from __future__ import annotations

import math
import numbers
from dataclasses import replace
from functools import partial

import torch
from torch import Tensor, nn

from .._checks import check_choice, check_floating, check_int, check_mask, check_shape
from ..diagrams import Diagrams
from .compiled import (
    H0Pass, compiled_gather, fused_diagrams, h0_pairing_from_points, is_fused_call, takes_points,
)
from .distances import (
    edge_lengths, mask_distances, measure_near_threshold, pairwise_distances, scale_exponent, smallest_unscaled,
)
from .gudhi_backend import gudhi_pairing
from .h0 import h0_pairing, numba_available
from .pairing import Pairing, gather_diagrams
from .triton_support import MAX_POINTS, triton_available

__all__ = ["rips_persistence", "VietorisRips", "BACKENDS"]

#: The values of the ``backend`` argument of :func:`rips_persistence` and :class:`VietorisRips`
#: (what each computes is described there).
BACKENDS = ("auto", "native", "gudhi")


def _check_options(max_dim, max_edge, keep_infinite, backend, num_workers) -> float | None:
    """Check the arguments shared by :func:`rips_persistence` and :class:`VietorisRips`; returns
    ``max_edge`` as a float (``None`` for no cut, ``inf`` included)."""
    check_choice(backend, "backend", BACKENDS)
    check_int(max_dim, "max_dim", minimum=0)
    if not isinstance(keep_infinite, bool):
        raise TypeError(f"keep_infinite must be a bool, got {keep_infinite!r}")
    if num_workers is not None:
        check_int(num_workers, "num_workers", minimum=1)
    if max_edge is None:
        return None
    if isinstance(max_edge, bool) or not isinstance(max_edge, numbers.Real):
        raise TypeError(f"max_edge must be a number or None, got {max_edge!r}")
    if not max_edge >= 0:
        raise ValueError(f"max_edge must be a non-negative number or None, got {max_edge!r}")
    return None if math.isinf(max_edge) else float(max_edge)


def _working_dtype(dtype: torch.dtype) -> torch.dtype:
    """float16 and bfloat16 are paired and measured in float32; wider dtypes are kept."""
    return torch.promote_types(dtype, torch.float32)


def _times_power_of_two(x: Tensor, exponent: int) -> Tensor:
    """``x * 2**exponent``, exact (short of overflow and subnormals) and differentiable, in steps
    whose factors are representable."""
    while exponent:
        step = max(-1000, min(1000, exponent))
        x = x * 2.0**step
        exponent -= step
    return x


#: Inputs up to this many values are checked in the calling thread (a few milliseconds at most).
_SERIAL_CHECK = 1 << 24


def _extremes(values: Tensor) -> tuple[float, float]:
    """The smallest and largest value of ``values`` (NaN if it holds one), read back once."""
    if values.device.type == "cpu" and values.numel() <= _SERIAL_CHECK and values.dtype in (torch.float32, torch.float64):
        # NumPy runs in the calling thread; a torch reduction over more than 32768 values starts
        # the intra-op pool, and on a loaded machine a small call waits milliseconds for it.
        array = values.numpy()  # min and max propagate NaN; no temporary
        return float(array.min()), float(array.max())
    # aminmax propagates NaN and reads the tensor once: ten times cheaper than isfinite().all().
    low, high = torch.stack(torch.aminmax(values)).tolist()
    return low, high


def _real_points(points: Tensor, mask: Tensor | None) -> Tensor:
    """The points ``(B, N, D)`` in the working dtype, padding zeroed (it is never read, NaN allowed)."""
    if mask is not None:
        points = torch.where(mask.unsqueeze(-1), points, 0)
    return points.to(_working_dtype(points.dtype))


def _magnitude(points: Tensor) -> float:
    """The largest absolute coordinate of ``points`` (NaN or ``inf`` if one is not finite)."""
    if points.numel() == 0:
        return 0.0
    low, high = _extremes(points.detach())
    return max(-low, high) if math.isfinite(low) and math.isfinite(high) else math.nan


def _scaled_cut(cut: float, exponent: int) -> float:
    """``cut * 2**-exponent``, the cut of points scaled by ``2**-exponent``; ``inf`` past the
    largest float (a cut that long keeps every edge), where ``math.ldexp`` raises."""
    try:
        return math.ldexp(cut, -exponent)
    except OverflowError:
        return math.inf


def _clouds_apart_in_scale(points: Tensor, mask: Tensor | None) -> bool:
    """Whether the scale of a batch ``points`` ``(B, N, D)`` (the one of its largest coordinate,
    :func:`~torchtopo.rips.distances.scale_exponent`) leaves a cloud of nonzero coordinates
    below :func:`~torchtopo.rips.distances.smallest_unscaled`, where its squared distances would
    lose their precision to subnormal numbers (in float32, a cloud of coordinates about 1 beside
    one of about 1e17 in 512 dimensions, or one of 1e-17 beside one of 1): such a batch is
    computed cloud by cloud, each at its own scale. False when a coordinate is not finite (the
    caller raises)."""
    work = _real_points(points.detach(), mask)
    magnitudes = work.abs().amax(dim=(1, 2))
    # One read back (one sync on an accelerator): the largest cloud and the smallest nonzero one.
    largest, least = torch.stack([magnitudes.max(), magnitudes.masked_fill(magnitudes == 0, math.inf).min()]).tolist()
    if not math.isfinite(largest) or least == math.inf:
        return False
    exponent = scale_exponent(largest, work.shape[-1], work.dtype)
    return math.ldexp(least, -exponent) < smallest_unscaled(work.dtype)


def _prepared_points(
    points: Tensor, mask: Tensor | None, native: bool, max_dim: int
) -> tuple[Tensor, int, bool, H0Pass | None]:
    """The checked points ``(B, N, D)`` to work on: ``(work, exponent, may_overflow, h0)``.

    ``work`` holds the real points in the working dtype times ``2**-exponent`` (see
    :func:`~torchtopo.rips.distances.scale_exponent`); ``may_overflow`` says whether a bar could be longer than the
    input dtype's largest number. For the native backend on CPU points, the compiled H0 pass
    (``h0``) runs first and checks the points as it reads them; it is run again on the scaled
    points in the rare case that they need scaling (``h0`` is then None).

    Raises
    ------
    ValueError
        If a real coordinate is NaN or infinite.
    """
    work = _real_points(points, mask)
    h0 = None
    if native and takes_points(work):  # the H0 pass reads the clouds once, the check included
        h0 = h0_pairing_from_points(work.detach(), mask, keep_distances=max_dim >= 1)
    magnitude = _magnitude(work) if h0 is None else h0.magnitude
    if not math.isfinite(magnitude):
        raise ValueError("points must be finite, got NaN or inf")
    exponent = scale_exponent(magnitude, work.shape[-1], work.dtype)
    if exponent:
        work, h0 = _times_power_of_two(work, -exponent), None
    # The longest edge is at most 2 magnitude sqrt(D): only then can a value overflow.
    may_overflow = 2 * magnitude * math.sqrt(work.shape[-1]) >= torch.finfo(points.dtype).max / 1.001
    return work, exponent, may_overflow, h0


def _diagonal_tolerance(dtype: torch.dtype) -> float:
    """Largest diagonal entry of ``distances`` accepted, relative to the cloud's largest entry:
    ``8 sqrt(eps)`` (a distance from a matrix product, as ``torch.cdist``'s, is about
    ``sqrt(eps)`` times the point's norm off on the diagonal), at most 1 %."""
    return min(8 * math.sqrt(torch.finfo(dtype).eps), 0.01)


def _check_distances(distances: Tensor, mask: Tensor | None) -> Tensor:
    """The real entries of ``distances`` ``(B, N, N)`` checked and symmetrised in the working dtype."""
    dtype = distances.dtype
    if mask is not None:
        distances = torch.where(mask.unsqueeze(2) & mask.unsqueeze(1), distances, 0)
    distances = distances.to(_working_dtype(dtype))
    if distances.numel() == 0:
        return distances
    low, high = _extremes(distances.detach())
    if not (math.isfinite(low) and math.isfinite(high)) or low < 0:
        raise ValueError("distances must be finite and non-negative")
    detached = distances.detach()
    if not torch.allclose(detached, detached.transpose(-1, -2), rtol=1e-4, atol=1e-6 * high):
        raise ValueError("distances must be symmetric")
    scale = detached.amax(dim=(1, 2))
    diagonal = detached.diagonal(dim1=1, dim2=2).amax(dim=1)
    tolerance = _diagonal_tolerance(dtype)
    if not bool((diagonal <= tolerance * scale).all()):
        worst = float((diagonal / scale.clamp_min(torch.finfo(scale.dtype).tiny)).max())
        raise ValueError(
            "distances must have a zero diagonal (a vertex enters the Rips filtration at 0; vertex "
            f"birth times are not supported), got a diagonal entry {worst:.3g} times the cloud's largest "
            f"distance, above the rounding tolerance {tolerance:.3g}. torch.cdist's matrix-product form "
            "leaves such a diagonal (and errors as large off it) for clouds far from the origin: centre "
            "the clouds, use compute_mode='donot_use_mm_for_euclid_dist', or pass the points instead"
        )
    return _symmetrised(distances)


def _symmetrised(distances: Tensor) -> Tensor:
    """``(D + D^T) / 2`` with a zero diagonal, differentiably: ``torch.cdist`` output is neither
    exactly symmetric nor exactly zero on the diagonal (its matrix-product form rounds). Written
    ``min + (max - min) / 2`` so that it is exactly symmetric and cannot overflow."""
    transposed = distances.transpose(-1, -2)
    low, high = torch.minimum(distances, transposed), torch.maximum(distances, transposed)
    eye = torch.eye(distances.shape[-1], dtype=torch.bool, device=distances.device)
    return (low + 0.5 * (high - low)).masked_fill(eye, 0)


def _matrix_lengths(distances: Tensor, edges: Tensor) -> Tensor:
    index = edges.clamp_min(0)
    batch = torch.arange(distances.shape[0], device=distances.device).unsqueeze(1)
    return distances[batch, index[..., 0], index[..., 1]]


def _use_triton(source: Tensor | None) -> bool:
    """The Triton kernels run on CUDA input (points for H0, distances for H1) of at most
    ``MAX_POINTS`` points per cloud when Triton is installed."""
    return source is not None and source.is_cuda and source.shape[1] <= MAX_POINTS and triton_available()


def _native_pairing(
    source: Tensor, from_points: bool, mask: Tensor | None, max_dim: int, max_edge: float | None,
    h0: H0Pass | None = None,
) -> Pairing:
    """Native pairing of dimensions 0 (to 2) of the detached ``source`` (points ``(B, N, D)`` or
    distances ``(B, N, N)``).

    H0: for CPU points, the ordering distances and Prim's tree in one compiled pass per cloud
    (``h0``, the result of :func:`~torchtopo.rips.compiled.h0_pairing_from_points` when the caller
    ran it already); for CUDA points, the Triton kernel; otherwise batched Prim over
    :func:`_ordering_distances`. H1 by the compiled
    cohomology reduction on the CPU over the same ordering distances, its order, spanning forest
    and apparent pairs computed by the Triton kernels first for CUDA input; H1 and H2 together by
    the compiled kernels of :mod:`torchtopo.rips.native_h2` on the CPU. ``max_edge`` cuts
    dimensions 1 and 2 here; dimension 0 is cut by the gather."""
    order = None
    if from_points and _use_triton(source):
        from .triton_h0 import h0_pairing_triton

        per_dim = [h0_pairing_triton(source, mask)]
    elif from_points and takes_points(source):
        h0 = h0_pairing_from_points(source, mask, keep_distances=max_dim >= 1) if h0 is None else h0
        per_dim = [(h0.birth_edges, h0.death_edges, h0.valid)]
        order = h0.distances
        if max_dim >= 1 and max_edge is not None:
            order = measure_near_threshold(order, source, mask, max_edge)
    else:
        order = _ordering_distances(source, from_points, mask, max_edge)
        per_dim = [h0_pairing(order, mask)]
    if max_dim >= 1 and order is None:
        order = _ordering_distances(source, from_points, mask, max_edge)
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
    return Pairing(births, deaths, valid, None if h0 is None else h0.death_lengths)


def _ordering_distances(
    source: Tensor, from_points: bool, mask: Tensor | None, max_edge: float | None, dtype: torch.dtype | None = None
) -> Tensor:
    """Detached ``(B, N, N)`` distances that order the edges (in ``dtype`` when given), from the
    detached ``source``: for points ``(B, N, D)``, the product form with the edges near
    ``max_edge`` measured exactly, so that their exact lengths decide the cut as they do in
    dimension 0 (:func:`gather_diagrams`); for a matrix, the matrix itself."""
    if not from_points:
        return source if mask is None else mask_distances(source, mask)
    order = pairwise_distances(source if dtype is None else source.to(dtype), mask)
    return order if max_edge is None else measure_near_threshold(order, source, mask, max_edge)


def _overflowing(diagrams: Diagrams) -> bool:
    """Whether a finite bar's death came out infinite (its length overflows the dtype)."""
    return any(
        bool((mask & (deaths[..., 0] >= 0) & torch.isinf(pairs[..., 1])).any())
        for pairs, mask, deaths in zip(diagrams.pairs, diagrams.mask, diagrams.death_edges)
    )


def _plain_call(points, max_dim, mask, distances, max_edge, keep_infinite, backend, num_workers) -> Diagrams | None:
    """The diagrams of the most common call, the arguments of :func:`rips_persistence` given;
    None for any other call, which the full path checks and computes.

    A plain call: dense CPU float32 or float64 ``points`` ``(B, N, D)`` or ``(N, D)``, ``N, D >= 1``,
    that :func:`~torchtopo.rips.compiled.is_fused_call` sends to the fused path; ``max_dim``
    0 or 1 as an int; a bool ``keep_infinite``; the automatic or native backend; no mask,
    distances, cut or worker count. Every check of the full path passes on such a call, so
    none runs: after other work, those checks (a dozen Python calls and reads of tensor
    attributes) took a sixth of a call on one cloud of 64 points. A call whose coordinates need
    scaling, or are not finite, goes on to the full path all the same, which tries the fused
    path once more before it goes staged: a rare case, left simple (the fused kernel stops at
    the first cloud with a coordinate too large or not finite, so only clouds that are all
    tiny are paired twice).
    """
    if not (isinstance(points, Tensor) and mask is None and distances is None and max_edge is None
            and num_workers is None and backend in ("auto", "native") and type(max_dim) is int and 0 <= max_dim <= 1
            and type(keep_infinite) is bool):
        return None
    shape = points.shape
    if len(shape) not in (2, 3) or shape[-2] == 0 or shape[-1] == 0 or not is_fused_call(points, max_dim):
        return None
    return fused_diagrams(points, None, max_dim, keep_infinite=keep_infinite)


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

    Precision: float16 and bfloat16 input is paired and measured in float32 and the values come
    back rounded to the input's dtype. Clouds whose squared distances would overflow or fall
    into subnormals (float32 coordinates beyond about ``1e18`` or below ``1e-16``, float64 beyond
    ``1e153`` or below ``1e-146``) are scaled by a power of two first, which is exact, so the
    values are still the exact lengths (a batch at one scale, or cloud by cloud when no one scale
    serves every cloud); a diagram whose values do not fit in the input's dtype
    (a bar longer than its largest number) raises a ``ValueError`` instead of an infinite or
    wrong value.

    Parameters
    ----------
    points : Tensor
        ``(B, N, D)`` or ``(N, D)`` floating (float16 to float64). Integer tensors are refused
        with a ``TypeError``. ``B = 0`` gives empty diagrams (``pairs[d]`` ``(0, K_d, 2)``).
    max_dim : int
        Highest homology dimension (0: connected components, 1: loops, 2: voids).
    mask : Tensor, optional
        ``(B, N)`` bool, True for real points, for clouds of different sizes. Masked points
        (rows and columns of ``distances``) are never read: they may hold anything, NaN and inf
        included, never change the result and get zero gradients.
    distances : Tensor, optional
        ``(B, N, N)`` or ``(N, N)`` precomputed distance matrix, instead of ``points``: finite,
        non-negative, symmetric up to rounding (relative ``1e-4``) and zero on the diagonal up
        to rounding: a diagonal entry may be at most ``min(8 sqrt(eps), 0.01)`` times the
        cloud's largest entry (``eps`` of its dtype: ``2.8e-3`` in float32, ``1.2e-7`` in
        float64), the error of a matrix-product distance such as ``torch.cdist``'s for clouds
        within a few diameters of the origin (centre others); a larger one (ripser reads the
        diagonal as vertex birth times, which this function does not support) raises a
        ``ValueError``. It is used as ``(D + D^T) / 2`` with a zero diagonal.
    max_edge : float, optional
        Leave out edges longer than this (classes alive at ``max_edge`` become infinite). The
        exact length of an edge (its value in the diagram) decides, in every dimension and
        with every backend, so an edge exactly ``max_edge`` long is kept. ``inf``: no cut.
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
        of its triangle, the death edge that of its tetrahedron. CPU points with dimensions 0
        and 1 and no cut take a fused path with the same result: each cloud's distances, tree,
        H1 reduction and diagrams in one compiled pass while it is in cache, clouds on threads
        (a small call, as a training step's few clouds, in the calling thread). ``"gudhi"``: gudhi's
        ``flag_persistence_generators`` on the CPU, one cloud per thread; any ``max_dim``.
        ``"auto"``: native for ``max_dim <= 2`` (H1 and H2 need numba), gudhi otherwise.
    num_workers : int, optional
        Threads of the gudhi backend, ``>= 1`` (default: all cores).

    Returns
    -------
    Diagrams
        Per dimension ``d``: ``pairs[d]`` ``(B, K_d, 2)`` in the dtype and on the device of the
        input, with ``mask[d]``, ``birth_edges[d]`` and ``death_edges[d]``. Unbatched input
        gives unbatched diagrams.

    Raises
    ------
    TypeError
        If ``points``, ``distances`` or ``mask`` has the wrong type or dtype, or ``max_dim``,
        ``max_edge``, ``keep_infinite`` or ``num_workers`` the wrong type.
    ValueError
        On a wrong shape, no point, NaN or inf among the real entries, a tensor on the
        ``meta`` device, an all-False mask row, an asymmetric matrix or one with a non-zero
        diagonal, a negative ``max_dim``, a negative or NaN ``max_edge``, ``num_workers < 1``,
        an unknown backend or a diagram that overflows the input's dtype. (The finiteness check
        reads two values back from the device.)

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
    diagrams = _plain_call(points, max_dim, mask, distances, max_edge, keep_infinite, backend, num_workers)
    if diagrams is not None:
        return diagrams
    cut = _check_options(max_dim, max_edge, keep_infinite, backend, num_workers)
    if (points is None) == (distances is None):
        raise ValueError("pass exactly one of points and distances")
    # The shape is read once: on one small cloud, each read of a tensor attribute costs a percent.
    if points is not None:
        check_floating(points, "points")
        shape = points.shape
        check_shape(points, "points", "(B, N, D) or (N, D)", len(shape) in (2, 3))
        if shape[-2] == 0 or shape[-1] == 0:
            raise ValueError(f"points must hold at least one point of dimension >= 1, got shape {tuple(shape)}")
        source = points
    else:
        check_floating(distances, "distances")
        shape = distances.shape
        check_shape(distances, "distances", "(B, N, N) or (N, N)", len(shape) in (2, 3) and shape[-1] == shape[-2])
        if shape[-1] == 0:
            raise ValueError("distances must describe at least one point, got N = 0")
        source = distances
    if mask is not None:
        check_mask(mask, shape[:-1], masks=("points" if points is not None else "distances", source))
    batched = len(shape) == 3
    if not batched:
        source = source.unsqueeze(0)
        mask = None if mask is None else mask.unsqueeze(0)
    if mask is not None and not bool(mask.any(dim=1).all()):
        raise ValueError("mask must keep at least one point of every cloud, got an all-False row")

    dtype = source.dtype
    from_points = points is not None
    native = backend == "native" or (backend == "auto" and (max_dim == 0 or (max_dim <= 2 and numba_available())))
    if native and max_dim > 2:
        raise ValueError(f"backend='native' computes dimensions 0 to 2, got max_dim={max_dim}; use backend='gudhi'")
    if from_points and native and cut is None and is_fused_call(source, max_dim):
        # The fused path; None when the coordinates are not finite or need scaling (the batch's,
        # or a cloud's of its own), which the staged path below raises on or does.
        real = source if mask is None else _real_points(source, mask)
        cloud_input = (real, mask) if batched else (real[0], None if mask is None else mask[0])
        diagrams = fused_diagrams(*cloud_input, max_dim, keep_infinite=keep_infinite)
        if diagrams is not None:
            return diagrams
    if from_points and len(source) > 1 and _clouds_apart_in_scale(source, mask):
        # One scale cannot serve every cloud (rare: magnitudes some 1e16 apart in float32).
        return Diagrams.cat([
            rips_persistence(source[b:b + 1], max_dim, mask=None if mask is None else mask[b:b + 1], max_edge=max_edge,
                             keep_infinite=keep_infinite, backend=backend, num_workers=num_workers)
            for b in range(len(source))
        ])
    exponent = 0
    may_overflow = False
    h0 = None
    if from_points:
        work, exponent, may_overflow, h0 = _prepared_points(source, mask, native, max_dim)
        cut = None if cut is None else _scaled_cut(cut, exponent)
    else:
        work = _check_distances(source, mask)
    detached = work.detach()
    if native:
        pairing = _native_pairing(detached, from_points, mask, max_dim, cut, h0)
    else:
        # gudhi gets float64 distances (it reads the real points of each cloud only).
        order = _ordering_distances(detached, from_points, mask, cut, dtype=torch.float64)
        pairing = gudhi_pairing(order, mask, max_dim, cut, num_workers=num_workers)

    if from_points and takes_points(work):
        diagrams = compiled_gather(work, pairing, keep_infinite=keep_infinite, max_edge=cut)
    else:
        lengths = partial(edge_lengths if from_points else _matrix_lengths, work)
        diagrams = gather_diagrams(lengths, pairing, keep_infinite=keep_infinite, max_edge=cut)
    if exponent or dtype != work.dtype:
        diagrams = replace(diagrams, pairs=tuple(_times_power_of_two(p, exponent).to(dtype) for p in diagrams.pairs))
        if may_overflow and _overflowing(diagrams):
            raise ValueError(
                f"points: a bar of the diagram is longer than the largest {dtype} "
                f"({torch.finfo(dtype).max:.4g}); pass the points in a wider dtype"
            )
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
        _check_options(max_dim, max_edge, keep_infinite, backend, num_workers)
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
