"""Native batched dimension-1 pairing of Vietoris–Rips filtrations (no gudhi).

Dimension 0 is :func:`torchtopo.rips.h0.h0_pairing`; the dispatch in :mod:`torchtopo.rips.core`
puts both together. Dimension 1 runs ripser's method in numba, ranges of clouds on threads (GIL released): edges
radix-sorted per cloud, the filtration cut at the enclosing radius, the spanning tree cleared,
apparent pairs found by a branch-free minimum over the third vertex (m³ int32 comparisons per
cloud, vectorised, inside the same thread), and only the remaining columns reduced, in
cohomology, with a pivot table; a column's pivot is found the same way, its coboundary
enumerated only when an addition needs it; a column under reduction is a bitmap over
triangle keys (or a heap for clouds above about 640 points) and stored columns are kept as
their reductions, whose coboundaries are enumerated again when used. See
:mod:`torchtopo.rips._native_kernels` for the order that breaks ties (it decides which edges
are reported as generators, never the values).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from ._numba_threads import run_on_threads

__all__ = ["h1_pairing", "apparent_share", "reduce_marked_columns", "h1_work", "h1_row_capacity"]


def _kernels():
    try:
        from . import _native_kernels
    except ImportError as error:  # numba absent or broken
        raise ImportError(
            "the native H1 backend needs the 'numba' package: pip install numba "
            "(or use backend='gudhi')"
        ) from error
    return _native_kernels


# Working-column bitmap limit per thread (16 MiB): clouds up to about 640 points use it, larger
# ones reduce with a heap.
BITMAP_BITS = 1 << 27
# Output rows reserved per call: one per edge outside a spanning tree per cloud (a bound on the
# pairs), so large clouds go through the kernel a few at a time.
OUTPUT_BYTES = 1 << 28


def h1_work(batch: int, n: int) -> int:
    """The work estimate of the H1 reduction of ``batch`` clouds of ``n`` points (see
    :func:`~torchtopo.rips._numba_threads.run_on_threads`): about ``2 n^3`` operations a cloud
    (m = 64: 0.1 ms)."""
    return 2 * batch * n**3


def h1_row_capacity(n: int) -> int:
    """The output rows the H1 reduction reserves for a cloud of ``n`` points: one per edge
    outside a spanning tree (each pairs at most once), at least one. 16 bytes a row."""
    return max(1, n * (n - 1) // 2 - (n - 1))


def _run_in_chunks(batch: int, n: int, kernel) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Run ``kernel(offset, out, counts, stats, first, last)`` over ``batch`` clouds of ``n``
    points, a chunk of clouds at a time (``offset``: the chunk's first cloud; ``out``, ``counts``,
    ``stats``: the chunk's outputs) and ranges ``first .. last - 1`` of the chunk on threads.
    Returns the padded rows ``(B, K, 4)`` int32, ``counts`` ``(B,)`` and ``stats`` ``(B, 3)``."""
    cap = h1_row_capacity(n)
    chunk = max(torch.get_num_threads(), OUTPUT_BYTES // (16 * cap))
    counts = np.zeros(batch, dtype=np.int64)
    stats = np.zeros((batch, 3), dtype=np.int64)
    pieces = []
    for start in range(0, batch, chunk):
        stop = min(start + chunk, batch)
        # np.empty maps pages lazily: only the rows written are touched.
        out = np.empty((stop - start, cap, 4), dtype=np.int32)
        targets = (out, counts[start:stop], stats[start:stop])
        # Small batches run in the calling thread.
        run_on_threads(lambda first, last: kernel(start, *targets, first, last), stop - start,
                       work=h1_work(stop - start, n))
        pieces.append(out[:, : counts[start:stop].max(initial=0)])
    k = int(counts.max(initial=0))
    if len(pieces) == 1:
        rows = pieces[0]  # a view of the only chunk's output: no copy
    else:
        rows = np.full((batch, k, 4), -1, dtype=np.int32)
        for start, piece in zip(range(0, batch, chunk), pieces):
            rows[start : start + piece.shape[0], : piece.shape[1]] = piece
    rows[np.arange(k) >= counts[:, None]] = -1  # the unwritten rows of np.empty
    return rows, counts, stats


def _h1_arrays(
    distances: Tensor, mask: Tensor | None, max_edge: float | None, bitmap_bits: int = BITMAP_BITS
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Run the kernel: rows ``(B, K, 4)`` int32 (birth edge, death edge), counts ``(B,)``, stats ``(B, 3)``."""
    kernels = _kernels()
    batch, n = distances.shape[:2]
    # float32 and float64 go to the kernel as they are; float64 holds every other float exactly,
    # so the order (ties included) is always the input's.
    dtype = distances.dtype if distances.dtype in (torch.float32, torch.float64) else torch.float64
    dist = distances.detach().to("cpu", dtype).contiguous().numpy()
    valid = (
        np.ones((batch, n), dtype=np.bool_)
        if mask is None
        else mask.detach().to("cpu").contiguous().numpy()
    )
    limit = float("inf") if max_edge is None else float(max_edge)

    def kernel(offset, out, counts, stats, first, last):
        clouds = slice(offset, offset + out.shape[0])
        kernels.h1_batch(dist[clouds], valid[clouds], limit, bitmap_bits, out, counts, stats, first, last)

    return _run_in_chunks(batch, n, kernel)


def reduce_marked_columns(
    edge_rank: np.ndarray, columns: np.ndarray, n_edges: np.ndarray, n: int, bitmap_bits: int = BITMAP_BITS
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The reduction alone, for a filtration ordered and marked elsewhere (the GPU kernels of
    :mod:`torchtopo.rips.triton_h1`); see :func:`torchtopo.rips._native_kernels.h1_reduce_batch`
    for the arrays. Rows include pairs of zero persistence. Returns ``(rows, counts, stats)``
    as the CPU path does."""
    kernels = _kernels()

    def kernel(offset, out, counts, stats, first, last):
        clouds = slice(offset, offset + out.shape[0])
        kernels.h1_reduce_batch(
            edge_rank[clouds], columns[clouds], n_edges[clouds], n, bitmap_bits, out, counts, stats, first, last
        )

    return _run_in_chunks(edge_rank.shape[0], n, kernel)


@torch.no_grad()
def h1_pairing(distances: Tensor, mask: Tensor | None, max_edge: float | None) -> tuple[Tensor, Tensor, Tensor]:
    r"""Birth and death edges of the dimension-1 Rips persistence pairs of a batch (numba, CPU).

    Parameters
    ----------
    distances : Tensor
        ``(B, N, N)`` floating, symmetric, zero diagonal, any device (copied to the CPU); only
        the order of its values matters and only its upper triangle is read.
    mask : Tensor, optional
        ``(B, N)`` bool, True for real points; masked points are ignored entirely.
    max_edge : float, optional
        Edges longer than this are not in the filtration.

    Returns
    -------
    birth_edges, death_edges : Tensor
        ``(B, K, 2)`` long ``(i, j)`` with ``i < j``, on the device of ``distances``; ``-1`` for
        padding rows, and the death edge of an essential class (one still open at
        ``max_edge``). Pairs of zero persistence are left out.
    valid : Tensor
        ``(B, K)`` bool, True for the real rows.
    """
    device = distances.device
    out, counts, _ = _h1_arrays(distances, mask, max_edge)
    rows = torch.from_numpy(out).to(device=device, dtype=torch.long)
    valid = torch.from_numpy(np.arange(out.shape[1]) < counts[:, None]).to(device)
    return rows[..., :2], rows[..., 2:], valid


def apparent_share(distances: Tensor, mask: Tensor | None = None, max_edge: float | None = None) -> float:
    """Debug counter: the share of dimension-1 columns (edges outside the spanning tree, below the
    cut) that are apparent pairs, over the whole batch ``distances`` ``(B, N, N)``.

    Examples
    --------
    >>> import torch
    >>> from torchtopo.rips.native import apparent_share
    >>> x = torch.randn(2, 32, 8, dtype=torch.float64)
    >>> 0.5 < apparent_share(torch.cdist(x, x)) <= 1.0
    True
    """
    _, _, stats = _h1_arrays(distances, mask, max_edge)
    columns = int(stats[:, 0].sum())
    return 1.0 if columns == 0 else int(stats[:, 1].sum()) / columns
