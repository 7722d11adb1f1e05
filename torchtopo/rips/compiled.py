"""Compiled CPU paths of the native backend: the H0 pairing straight from points, exact edge
lengths, the gather of the diagrams, and the fused path that does all of it cloud by cloud.

:func:`h0_pairing_from_points` reads each cloud once, in one compiled pass (numba, GIL
released), while it is in cache: the finiteness and scale check (its largest coordinate), the
ordering distances, Prim's tree and the exact lengths of the tree's edges, which the gather
then reads instead of measuring them again (reading the points three times cost a third of
an H0 call at m = 64, d = 512);
:func:`compiled_edge_lengths` measures the edges a diagram uses without materialising their
end points; :func:`compiled_gather` turns a pairing into diagrams in one pass per homology
dimension, where the tensor form takes about twenty small operations (on one small cloud, as
long as the pairing itself). All run in the calling thread when the batch is small
(:func:`torchtopo.rips._numba_threads.run_on_threads`): a latency-bound call then neither waits
for other threads nor competes with torch's intra-op pool on a loaded machine.

CPU points with ``max_dim <= 1`` and no cut (:func:`is_fused_call`) take the fused path
instead: :func:`fused_diagrams` runs every stage of a cloud in one compiled pass, since at
m = 64 the staged path's glue (its Python and torch steps between three kernels) took twice as
long as the kernels. The staged functions serve the rest: a cut, H2, clouds that need scaling.
The kernels are imported lazily: ``import torchtopo`` works without numba.
"""

from __future__ import annotations

import math
from typing import Callable, NamedTuple

import numpy as np
import torch
from torch import Tensor

from ..diagrams import Diagrams
from ._numba_threads import run_on_threads, thread_count
from .distances import largest_unscaled, scale_exponent, smallest_unscaled
from .h0 import numba_available
from .native import BITMAP_BITS, OUTPUT_BYTES, h1_row_capacity, h1_work
from .pairing import Pairing

__all__ = [
    "H0Pass", "h0_pairing_from_points", "compiled_edge_lengths", "compiled_gather", "takes_points", "is_fused_call",
    "fused_diagrams",
]

# Point dtypes the compiled kernels take as they are (others go through the tensor paths), and
# numpy's for each.
_NUMPY_DTYPES = {torch.float32: np.dtype(np.float32), torch.float64: np.dtype(np.float64)}


def takes_points(points: Tensor) -> bool:
    """Whether the compiled kernels take ``points`` as they are: dense float32 or float64 on the
    CPU, numba installed."""
    return points.is_cpu and points.dtype in _NUMPY_DTYPES and points.layout == torch.strided and numba_available()


class H0Pass(NamedTuple):
    """What the compiled H0 pass reads off CPU points (:func:`h0_pairing_from_points`)."""

    #: ``(B, N, 2)`` long: the pairing of :func:`~torchtopo.rips.h0.h0_pairing`.
    birth_edges: Tensor
    #: ``(B, N, 2)`` long.
    death_edges: Tensor
    #: ``(B, N)`` bool.
    valid: Tensor
    #: ``(B, N)`` float64: the exact length of each death edge (0 where there is none).
    death_lengths: Tensor
    #: ``(B, N, N)`` in the dtype of the points: the direct-form distances the edges were ordered
    #: by (``inf`` in the rows and columns of masked points, 0 on the diagonal), to order the edges
    #: of H1 and H2 too; None unless asked for.
    distances: Tensor | None
    #: The largest absolute value of a real coordinate (``inf`` or NaN if one is not finite).
    magnitude: float


def _h0_work(batch: int, n: int, dim: int) -> int:
    """The work estimate of the H0 pass (see :func:`~torchtopo.rips._numba_threads.run_on_threads`)."""
    return batch * n * n * dim // 2


@torch.no_grad()
def h0_pairing_from_points(points: Tensor, mask: Tensor | None, *, keep_distances: bool = True) -> H0Pass:
    r"""The H0 pairing of :func:`torchtopo.rips.h0.h0_pairing`, the ordering distances, the exact
    lengths of the death edges and the largest coordinate, from CPU points, each cloud read once.

    Parameters
    ----------
    points : Tensor
        ``(B, N, D)`` float32 or float64 on the CPU (no gradient is taken).
    mask : Tensor, optional
        ``(B, N)`` bool, True for real points (the others are never read).
    keep_distances : bool
        Return the distances (H1 and H2 order their edges by them); without, each cloud's stay
        in a small scratch matrix that fits in cache.

    Returns
    -------
    H0Pass
        The pairing is meaningless when ``magnitude`` is not finite: check it first.
    """
    from ._h0_numba import h0_from_points

    batch, n, dim = points.shape
    cloud, valid = points.contiguous().numpy(), None if mask is None else mask.cpu().numpy()
    distances = np.empty((batch if keep_distances else 0, n, n), dtype=cloud.dtype)
    birth_edges, death_edges = np.empty((batch, n, 2), dtype=np.int64), np.empty((batch, n, 2), dtype=np.int64)
    real_rows = np.empty((batch, n), dtype=np.bool_)
    death_lengths = np.empty((batch, n), dtype=np.float64)
    largest = np.zeros(batch, dtype=cloud.dtype)
    arrays = (cloud, valid, distances, birth_edges, death_edges, real_rows, death_lengths, largest)
    run_on_threads(lambda start, stop: h0_from_points(*arrays, start, stop), batch, work=_h0_work(batch, n, dim))
    magnitude = float(largest.max(initial=0))
    tensors = [torch.from_numpy(a) for a in (birth_edges, death_edges, real_rows, death_lengths, distances)]
    return H0Pass(*tensors[:4], tensors[4] if keep_distances else None, magnitude)


class _EdgeLengths(torch.autograd.Function):
    """Lengths measured by a compiled kernel, differentiable: ``measure()`` returns a tuple of
    value tensors (any shapes) and a tuple of int64 arrays ``ends``, one per value tensor, of
    its shape plus ``(2,)``: the rows of ``points.reshape(B * N, D)`` at the two ends of each
    value's edge (one row twice for a value that is not a length: no gradient); they become
    tensors only for the backward pass. Its outputs are the value tensors."""

    # forward with ctx (not setup_context): apply then skips binding the arguments by signature.
    @staticmethod
    def forward(ctx, points: Tensor, measure: Callable[[], tuple[tuple[Tensor, ...], tuple[np.ndarray, ...]]]
                ) -> tuple[Tensor, ...]:
        values, ctx.ends = measure()
        ctx.save_for_backward(points, *values)
        return values

    @staticmethod
    def backward(ctx, *grads: Tensor) -> tuple[Tensor, None]:
        # Tensor operations: a second derivative flows through them as well.
        points, *values = ctx.saved_tensors
        dim = points.shape[-1]
        flat = points.reshape(-1, dim)
        index = torch.from_numpy(np.concatenate([e.reshape(-1) for e in ctx.ends])).to(points.device)
        pair = flat.index_select(0, index).view(-1, 2, dim)
        length = torch.cat([v.reshape(-1) for v in values])
        grad = torch.cat([g.reshape(-1) for g in grads])
        # The gradient of a zero-length edge (or of an infinite value) is 0, as vector_norm's.
        scale = torch.where((length > 0) & (length < math.inf), grad / length.clamp_min(torch.finfo(length.dtype).tiny), 0)
        push = (pair[:, 0] - pair[:, 1]) * scale.unsqueeze(-1)
        both = torch.stack([push, -push], dim=1).reshape(-1, dim)
        return torch.zeros_like(flat).index_add(0, index, both).view_as(points), None


def _measured(points: Tensor, measure: Callable[[], tuple[tuple[Tensor, ...], tuple[np.ndarray, ...]]]
              ) -> tuple[Tensor, ...]:
    """The value tensors of ``measure`` (see :class:`_EdgeLengths`), differentiable when ``points`` is."""
    if points.requires_grad and torch.is_grad_enabled():
        return _EdgeLengths.apply(points, measure)
    return measure()[0]


def compiled_edge_lengths(points: Tensor, edges: Tensor) -> Tensor:
    """:func:`torchtopo.rips.distances.edge_lengths` by a compiled kernel: ``points``
    ``(B, N, D)`` float32 or float64 on the CPU, ``edges`` ``(B, K, 2)`` long (``-1`` reads vertex
    0); returns ``(B, K)``, differentiable. Each length is summed in float64 and rounded once to
    the dtype of ``points``."""
    from ._h0_numba import edge_lengths_batch

    batch, k = edges.shape[:2]

    def measure() -> tuple[tuple[Tensor], tuple[np.ndarray]]:
        out = torch.empty(batch, k, dtype=torch.float64)
        arrays = (points.detach().contiguous().numpy(), edges.contiguous().numpy(), out.numpy())
        # Weighted 4 per value read: the float64 sums cost about that much more than a distance's.
        run_on_threads(lambda start, stop: edge_lengths_batch(*arrays, start, stop), batch,
                       work=4 * batch * k * points.shape[2])
        ends = np.maximum(arrays[1], 0) + (np.arange(batch) * points.shape[1]).reshape(batch, 1, 1)
        return (out.to(points.dtype),), (ends,)

    return _measured(points, measure)[0]


# ``death_lengths`` of :func:`~torchtopo.rips._gather_numba.gather_dimension` when they are measured there.
_NOT_MEASURED = np.empty((0, 0), dtype=np.float64)


def compiled_gather(points: Tensor, pairing: Pairing, *, keep_infinite: bool, max_edge: float | None) -> Diagrams:
    """:func:`torchtopo.rips.pairing.gather_diagrams` of CPU points, compiled: one kernel pass per
    homology dimension measures the edges and applies its rules (values, masks, generators),
    and one autograd node serves every dimension.

    Parameters
    ----------
    points : Tensor
        ``(B, N, D)`` float32 or float64 on the CPU, differentiable.
    pairing : Pairing
        CPU tensors, as the backends give them.
    keep_infinite, max_edge
        As in :func:`~torchtopo.rips.pairing.gather_diagrams`.

    Returns
    -------
    Diagrams
        Equal to ``gather_diagrams(partial(edge_lengths, points), pairing, ...)``, gradients included.
    """
    from ._gather_numba import gather_dimension

    batch, n, dim = points.shape
    cloud = points.detach().contiguous().numpy()
    limit = math.inf if max_edge is None else float(max_edge)
    sizes = [births.shape[1] for births in pairing.birth_edges]
    births_out = [np.empty((batch, k, 2), dtype=np.int64) for k in sizes]
    deaths_out = [np.empty((batch, k, 2), dtype=np.int64) for k in sizes]
    keep = [np.empty((batch, k), dtype=np.bool_) for k in sizes]

    def measure() -> tuple[tuple[Tensor, ...], tuple[np.ndarray, ...]]:
        values = [np.empty((batch, k, 2), dtype=cloud.dtype) for k in sizes]
        ends = [np.empty((batch, k, 2, 2), dtype=np.int64) for k in sizes]
        for d, k in enumerate(sizes):
            measured = d == 0 and pairing.death_lengths is not None
            lengths = pairing.death_lengths.numpy() if measured else _NOT_MEASURED
            arrays = (
                cloud, pairing.birth_edges[d].numpy(), pairing.death_edges[d].numpy(), pairing.mask[d].numpy(),
                lengths, d == 0, limit, keep_infinite, values[d], ends[d], births_out[d], deaths_out[d], keep[d],
            )
            run_on_threads(lambda start, stop: gather_dimension(*arrays, start, stop), batch,
                           work=(1 if measured else 8 * dim) * batch * k)
        return tuple(map(torch.from_numpy, values)), tuple(ends)

    pairs = _measured(points, measure)
    births, deaths, kept = (tuple(map(torch.from_numpy, arrays)) for arrays in (births_out, deaths_out, keep))
    return Diagrams(pairs, kept, births, deaths)


def is_fused_call(points: Tensor, max_dim: int) -> bool:
    """Whether :func:`fused_diagrams` takes ``points`` ``(B, N, D)`` (or one cloud, ``(N, D)``)
    for ``max_dim``: CPU points the compiled kernels take, ``max_dim <= 1``, and one cloud or a
    batch whose H1 output rows (:func:`~torchtopo.rips.native.h1_row_capacity` a cloud) fit in
    ``OUTPUT_BYTES``; a larger batch goes through the staged path, which reduces a chunk of
    clouds at a time."""
    *lead, n, dim = points.shape
    batch = lead[0] if lead else 1
    rows = batch * h1_row_capacity(n) if max_dim == 1 else 0
    return max_dim <= 1 and (batch == 1 or 0 < batch and 16 * rows <= OUTPUT_BYTES) and takes_points(points)


def fused_diagrams(points: Tensor, mask: Tensor | None, max_dim: int, *, keep_infinite: bool) -> Diagrams | None:
    """The diagrams of :func:`~torchtopo.rips.rips_persistence` (no cut) of the clouds
    :func:`is_fused_call` takes, each computed whole in one compiled pass
    (:mod:`torchtopo.rips._fused_numba`, which reads the points where their tensor holds them),
    or None when a real coordinate is not finite or the clouds need scaling
    (:func:`~torchtopo.rips.distances.scale_exponent`; one cloud's, among larger ones, may be
    too small for the batch's scale): the staged path raises or scales.

    A call of little work (one cloud, or one thread by
    :func:`~torchtopo.rips._numba_threads.thread_count`) runs in the calling thread in one
    compiled call: on a small call, fixed costs dominate. Otherwise ranges of clouds are
    paired on threads (:func:`~torchtopo.rips._numba_threads.run_on_threads`) and the calling
    thread then gathers them all: one wait for the threads, where the staged path waits three
    times (for its H0 pass, its H1 reduction and its gather), which under load is what costs.

    Parameters
    ----------
    points : Tensor
        ``(B, N, D)`` (``B >= 1``) or ``(N, D)`` (diagrams without the batch axis) float32 or
        float64 on the CPU, padding zeroed, differentiable.
    mask : Tensor, optional
        ``(B, N)`` (or ``(N,)``) bool, True for real points.
    max_dim : int
        0 or 1.
    keep_infinite : bool
        As in :func:`~torchtopo.rips.pairing.gather_diagrams`.

    Returns
    -------
    Diagrams or None
        The diagrams equal those of the staged path (:func:`h0_pairing_from_points`,
        :func:`~torchtopo.rips.native.h1_pairing`, :func:`compiled_gather`), gradients included.
    """
    from ._fused_numba import diagrams_at_address, gather_clouds_at_address, pair_clouds_at_address, pairing_workspace

    shape, dtype = points.shape, points.dtype
    batched = len(shape) == 3
    batch, n, dim = shape if batched else (1, *shape)
    source = points if points.is_contiguous() else points.contiguous()
    mask_array = None if mask is None else mask.numpy().reshape(batch, n)
    cloud = (source.data_ptr(), batch, n, dim, _NUMPY_DTYPES[dtype])
    with_h1 = max_dim == 1
    limit = largest_unscaled(dim, dtype)
    work = _h0_work(batch, n, dim) + (h1_work(batch, n) if with_h1 else 0)
    if batch == 1 or thread_count(batch, work) == 1:
        values, ends, births, deaths, keep, magnitude, least = diagrams_at_address(
            *cloud, mask_array, with_h1, keep_infinite, BITMAP_BITS, limit)
    else:
        workspace = pairing_workspace(batch, n, with_h1)
        run_on_threads(lambda start, stop: pair_clouds_at_address(
            *cloud, mask_array, with_h1, BITMAP_BITS, limit, workspace, start, stop), batch, work=work)
        values, ends, births, deaths, keep, magnitude, least = gather_clouds_at_address(
            *cloud, keep_infinite, limit, workspace)
    if not math.isfinite(magnitude) or scale_exponent(magnitude, dim, dtype) or least < smallest_unscaled(dtype):
        return None
    # Tensors of the dimensions asked for (of the only cloud, unbatched), without a torch
    # operation, in one flat comprehension: on a small call after other work, every Python
    # frame and tensor operation here costs about a percent of the call. The ends index the
    # rows of ``points.reshape(-1, dim)``, batched or not.
    count = max_dim + 1
    tensors = [torch.from_numpy(a if batched else a[0])
               for group in (values, births, deaths, keep) for a in group[:count]]
    pairs = _measured(points, lambda: (tuple(tensors[:count]), ends[:count]))
    return Diagrams.unchecked(pairs, tuple(tensors[3 * count:]), tuple(tensors[count:2 * count]),
                              tuple(tensors[2 * count:3 * count]))
