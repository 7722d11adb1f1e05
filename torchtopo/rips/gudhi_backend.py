"""CPU backend: gudhi's flag persistence generators, one cloud per task on a thread pool."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
from torch import Tensor

from .pairing import Pairing, pad_edge_lists

__all__ = ["gudhi_pairing"]


def _import_gudhi():
    try:
        import gudhi
    except ImportError as error:  # pragma: no cover - gudhi is a declared dependency
        raise ImportError("backend='gudhi' needs the gudhi package: pip install gudhi") from error
    return gudhi


def _cloud_generators(distances: np.ndarray, max_dim: int, max_edge: float | None):
    """Per-dimension ``(birth_edges (k, 2), death_edges (k, 2))`` of one cloud, as gudhi gives them."""
    gudhi = _import_gudhi()
    threshold = float("inf") if max_edge is None else max_edge
    # No edge collapse: it keeps the diagram but raises the filtration values of surviving edges,
    # so its generators are no longer the edges whose lengths are the values (tested).
    tree = gudhi.RipsComplex(distance_matrix=distances, max_edge_length=threshold).create_simplex_tree(
        max_dimension=max_dim + 1
    )
    # gudhi skips the complex's top dimension unless asked: needed when that dimension is one we
    # report (a lone vertex), wasted when it is the triangles of an H1 computation.
    tree.compute_persistence(persistence_dim_max=tree.dimension() <= max_dim)
    regular_0, regular_higher, essential_0, essential_higher = tree.flag_persistence_generators()
    regular_0 = np.asarray(regular_0, dtype=np.int64).reshape(-1, 3)
    essential_0 = np.asarray(essential_0, dtype=np.int64).reshape(-1)
    per_dim = []
    births = np.concatenate([np.repeat(regular_0[:, :1], 2, 1), np.repeat(essential_0[:, None], 2, 1)])
    deaths = np.concatenate([regular_0[:, 1:], np.full((essential_0.shape[0], 2), -1, np.int64)])
    per_dim.append((births, deaths))
    for d in range(1, max_dim + 1):
        regular = np.asarray(regular_higher[d - 1] if d - 1 < len(regular_higher) else [], np.int64).reshape(-1, 4)
        essential = np.asarray(essential_higher[d - 1] if d - 1 < len(essential_higher) else [], np.int64).reshape(-1, 2)
        births = np.concatenate([regular[:, :2], essential])
        deaths = np.concatenate([regular[:, 2:], np.full((essential.shape[0], 2), -1, np.int64)])
        per_dim.append((births, deaths))
    return per_dim


def gudhi_pairing(
    distances: Tensor,
    mask: Tensor | None,
    max_dim: int,
    max_edge: float | None,
    *,
    num_workers: int | None = None,
) -> Pairing:
    """Persistence generators of each cloud from ``gudhi.SimplexTree.flag_persistence_generators``.

    The clouds are processed in parallel by a thread pool of ``num_workers`` threads (default:
    ``os.cpu_count()``); gudhi releases the GIL while it builds and reduces the complex, so the
    threads run on separate cores.

    Parameters
    ----------
    distances : Tensor
        ``(B, N, N)`` distances; copied to the CPU in float64.
    mask : Tensor, optional
        ``(B, N)`` bool, True for real points.
    max_dim : int
        Highest homology dimension computed.
    max_edge : float, optional
        Edges longer than this are left out of the filtration.
    """
    matrices = distances.detach().to("cpu", torch.float64).numpy()
    index = [np.arange(distances.shape[1])] * distances.shape[0]
    if mask is not None:
        index = [np.flatnonzero(m) for m in mask.cpu().numpy()]

    def run(b: int):
        real = index[b]
        per_dim = _cloud_generators(matrices[b][np.ix_(real, real)], max_dim, max_edge)
        # Back from the real points' local numbering to the padded one; -1 stays -1.
        lookup = np.append(real, -1)
        return [(torch.from_numpy(lookup[births]), torch.from_numpy(lookup[deaths])) for births, deaths in per_dim]

    workers = num_workers or os.cpu_count() or 1
    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = list(pool.map(run, range(distances.shape[0])))
    births, deaths, masks = [], [], []
    for d in range(max_dim + 1):
        b, e, m = pad_edge_lists([cloud[d] for cloud in results], distances.device)
        births.append(b)
        deaths.append(e)
        masks.append(m)
    return Pairing(tuple(births), tuple(deaths), tuple(masks))
