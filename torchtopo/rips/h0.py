"""Native batched dimension-0 persistence: a minimum spanning tree per cloud by batched Prim."""

from __future__ import annotations

import importlib.util
from functools import lru_cache

import torch
from torch import Tensor

__all__ = ["h0_pairing", "finish_h0_pairing", "numba_available"]


@lru_cache(maxsize=None)
def numba_available() -> bool:
    """Whether the compiled CPU kernels can be used (numba is installed)."""
    return importlib.util.find_spec("numba") is not None


@torch.no_grad()
def h0_pairing(
    distances: Tensor, mask: Tensor | None = None, *, implementation: str = "auto"
) -> tuple[Tensor, Tensor, Tensor]:
    r"""Dimension-0 persistence pairs of the Rips filtrations of a batch, by batched Prim.

    Every point is born at 0; each minimum-spanning-tree edge kills one class at its length, and
    one class per cloud never dies. Prim's algorithm grows all ``B`` trees at once: ``N - 1``
    steps of ``(B, N)`` tensor operations, with no loop over the clouds, on the device of
    ``distances``.

    On the CPU, when numba is installed, the same steps run compiled, clouds split across threads
    (``implementation="auto"``); the tensor loop is the path for every other device.

    Parameters
    ----------
    distances : Tensor
        ``(B, N, N)`` symmetric distances with a zero diagonal (only used to order edges).
    mask : Tensor, optional
        ``(B, N)`` bool, True for real points; masked points are ignored.
    implementation : {"auto", "torch", "numba"}
        Force one implementation (both give identical results).

    Returns
    -------
    birth_edges : Tensor
        ``(B, N, 2)`` long: ``(v, v)`` for the vertex ``v`` whose class the pair describes.
    death_edges : Tensor
        ``(B, N, 2)`` long: the spanning-tree edge that kills the class, sorted by length;
        the last real row of each cloud is the infinite bar (``-1``).
    valid : Tensor
        ``(B, N)`` bool: True for the ``n_b`` rows (spanning-tree edges, then the infinite bar)
        of a cloud with ``n_b`` real points.

    Convention
    ----------
    When lengths tie, the edge Prim meets first wins; the multiset of death values does not
    depend on that choice.
    """
    batch, n = distances.shape[:2]
    device = distances.device
    if mask is None:
        mask = torch.ones(batch, n, dtype=torch.bool, device=device)
    if implementation not in ("auto", "torch", "numba"):
        raise ValueError(f"implementation must be 'auto', 'torch' or 'numba', got {implementation!r}")
    if implementation == "numba" or (implementation == "auto" and device.type == "cpu" and numba_available()):
        return _h0_pairing_numba(distances, mask)
    rows = torch.arange(batch, device=device)
    inf = torch.tensor(float("inf"), dtype=distances.dtype, device=device)

    root = mask.to(torch.int8).argmax(dim=1)  # first real point of each cloud
    outside = mask.clone()
    outside[rows, root] = False
    best = torch.where(outside, distances[rows, root], inf)
    parent = root.unsqueeze(1).expand(batch, n).clone()
    tree_edges = torch.empty(batch, max(n - 1, 0), 2, dtype=torch.long, device=device)
    tree_lengths = torch.empty(batch, max(n - 1, 0), dtype=distances.dtype, device=device)
    for step in range(n - 1):
        vertex = best.argmin(dim=1)
        tree_edges[:, step, 0] = parent[rows, vertex]
        tree_edges[:, step, 1] = vertex
        tree_lengths[:, step] = best[rows, vertex]
        outside[rows, vertex] = False
        candidate = distances[rows, vertex]
        closer = outside & (candidate < best)
        best = torch.where(closer, candidate, torch.where(outside, best, inf))
        parent = torch.where(closer, vertex.unsqueeze(1), parent)

    return finish_h0_pairing(tree_edges, tree_lengths, root, mask)


def _h0_pairing_numba(distances: Tensor, mask: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    from ._h0_numba import prim_batch
    from ._numba_threads import run_on_threads

    batch, n = mask.shape
    tree_edges = torch.empty(batch, max(n - 1, 0), 2, dtype=torch.long)
    tree_lengths = torch.empty(batch, max(n - 1, 0), dtype=distances.dtype)
    roots = torch.empty(batch, dtype=torch.long)
    arrays = (
        distances.detach().cpu().contiguous().numpy(),
        mask.cpu().numpy(),
        tree_edges.numpy(),
        tree_lengths.numpy(),
        roots.numpy(),
    )
    run_on_threads(lambda start, stop: prim_batch(*arrays, start, stop), batch)
    return finish_h0_pairing(tree_edges, tree_lengths, roots, mask.cpu())


def finish_h0_pairing(tree_edges: Tensor, tree_lengths: Tensor, root: Tensor, mask: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """From Prim's steps to the H0 pairing of :func:`h0_pairing`.

    ``tree_edges`` ``(B, N - 1, 2)`` and ``tree_lengths`` ``(B, N - 1)`` are the edges in the order
    Prim added them (steps past a cloud's own ``n_b - 1`` have length ``inf``), ``root`` ``(B,)``
    the vertex each tree started from. Shared by the torch and Triton implementations.
    """
    batch, n = mask.shape
    device = mask.device
    counts = mask.sum(dim=1)
    # Steps past a cloud's own n_b - 1 picked padding (their length is inf): sort them last.
    order = tree_lengths.argsort(dim=1, stable=True)
    tree_edges = tree_edges.gather(1, order.unsqueeze(-1).expand(-1, -1, 2))
    infinite = torch.full((batch, 1, 2), -1, dtype=torch.long, device=device)
    death_edges = torch.cat([tree_edges, infinite], dim=1)
    slot = torch.arange(n, device=device).unsqueeze(0)
    valid = slot < counts.unsqueeze(1)
    is_infinite_row = slot == (counts - 1).clamp_min(0).unsqueeze(1)
    # The infinite bar moves to row n_b - 1, right after the cloud's real tree edges.
    death_edges = torch.where(is_infinite_row.unsqueeze(-1), infinite, death_edges)
    born = torch.where(is_infinite_row, root.unsqueeze(1), death_edges[..., 1])
    birth_edges = torch.stack([born, born], dim=-1).masked_fill(~valid.unsqueeze(-1), -1)
    death_edges = death_edges.masked_fill(~valid.unsqueeze(-1), -1)
    return birth_edges, death_edges, valid
