"""CPU backend: gudhi's ``CubicalComplex`` and its ``cofaces_of_persistence_pairs``, one image
per task on a thread pool."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
from torch import Tensor

from .pairing import PixelPairing, pad_pixel_lists

__all__ = ["gudhi_pairing"]


def _image_generators(image: np.ndarray, max_dim: int) -> list[tuple[Tensor, Tensor]]:
    """Per dimension ``(birth pixels (k,), death pixels (k,))`` of one image, as gudhi gives them."""
    import gudhi

    # gudhi numbers the cells of an array column-major; those of the reversed-axes array are the
    # row-major indices of ``image`` (and the complex is the same up to isometry).
    complex_ = gudhi.CubicalComplex(top_dimensional_cells=image.T)
    complex_.compute_persistence(homology_coeff_field=2)
    regular, essential = complex_.cofaces_of_persistence_pairs()
    per_dim = []
    for d in range(max_dim + 1):
        pairs = np.asarray(regular[d] if d < len(regular) else [], dtype=np.int64).reshape(-1, 2)
        lone = np.asarray(essential[d] if d < len(essential) else [], dtype=np.int64).reshape(-1)
        births = np.concatenate([pairs[:, 0], lone])
        deaths = np.concatenate([pairs[:, 1], np.full(lone.shape[0], -1, dtype=np.int64)])
        per_dim.append((torch.from_numpy(births), torch.from_numpy(deaths)))
    return per_dim


def gudhi_pairing(
    values: Tensor, shape: tuple[int, ...], max_dim: int, *, num_workers: int | None = None
) -> PixelPairing:
    """Pixel generators of each image from gudhi (any dimension up to the images').

    Parameters
    ----------
    values : Tensor
        ``(B, P)`` filtration values (``+inf`` outside the complex); copied to the CPU in
        float64, gudhi's type.
    shape : tuple of int
        The spatial shape of an image, ``(H, W)`` or ``(D, H, W)``; ``P`` is its product.
    max_dim : int
        Highest homology dimension reported.
    num_workers : int, optional
        Threads (default: all cores); gudhi releases the GIL while it computes.
    """
    images = values.detach().to("cpu", torch.float64).numpy().reshape(values.shape[0], *shape)
    with ThreadPoolExecutor(max_workers=num_workers or os.cpu_count() or 1) as pool:
        results = list(pool.map(lambda image: _image_generators(image, max_dim), images))
    births, deaths, masks = zip(*(pad_pixel_lists([r[d] for r in results], values.device) for d in range(max_dim + 1)))
    return PixelPairing(births, deaths, masks)
