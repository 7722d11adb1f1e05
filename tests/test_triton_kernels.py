"""Triton kernels agree exactly with the torch path (under TRITON_INTERPRET=1 without a GPU)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import make_cloud

from torchtopo.rips.distances import edge_lengths, pairwise_distances
from torchtopo.rips.h0 import h0_pairing
from torchtopo.rips.pairing import Pairing, gather_diagrams
from torchtopo.rips.triton_h0 import h0_pairing_triton

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"


def _random_mask(batch: int, n: int, generator: torch.Generator) -> torch.Tensor:
    mask = torch.rand(batch, n, generator=generator) > 0.3
    mask[torch.arange(batch), torch.randint(0, n, (batch,), generator=generator)] = True
    return mask


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("shape", [(3, 7, 5), (2, 33, 17), (1, 1, 4), (2, 2, 1), (2, 20, 130)])
@pytest.mark.parametrize("masked", [False, True])
def test_h0_kernel_equals_torch_prim_on_generic_clouds(shape, dtype, masked):
    generator = torch.Generator().manual_seed(sum(shape))
    points = torch.randn(*shape, generator=generator, dtype=torch.float64).to(dtype)
    mask = _random_mask(shape[0], shape[1], generator) if masked else None
    expected = h0_pairing(pairwise_distances(points, mask), mask)
    got = h0_pairing_triton(points.to(DEVICE), None if mask is None else mask.to(DEVICE))
    for a, b in zip(got, expected):
        assert torch.equal(a.cpu(), b)


def test_h0_kernel_gives_the_same_values_on_tied_grids():
    """With exact ties the chosen edges may differ, the diagram values may not."""
    points = torch.from_numpy(np.stack([make_cloud("grid", 30, 2, seed=s) for s in range(3)]))
    values = []
    for births, deaths, valid in (h0_pairing_triton(points.to(DEVICE)), h0_pairing(pairwise_distances(points))):
        pairing = Pairing((births.cpu(),), (deaths.cpu(),), (valid.cpu(),))
        dgm = gather_diagrams(lambda e: edge_lengths(points, e), pairing, keep_infinite=False)
        values.append([d[:, 1].sort().values for d in dgm.to_list(0)])
    for a, b in zip(*values):
        assert torch.equal(a, b)


def test_h0_kernel_refuses_too_many_points():
    from torchtopo.rips.triton_h0 import MAX_POINTS

    with pytest.raises(ValueError, match="points"):
        h0_pairing_triton(torch.zeros(1, MAX_POINTS + 1, 2, device=DEVICE))
