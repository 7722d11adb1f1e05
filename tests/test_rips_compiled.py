"""The compiled CPU paths of the native Rips backend (torchtopo.rips.compiled): the H0 pairing
straight from points and the exact edge lengths agree with the tensor paths, gradients included;
small calls run in the calling thread."""

import threading

import pytest
import torch

from torchtopo.rips import _numba_threads
from torchtopo.rips.compiled import compiled_edge_lengths, h0_pairing_from_points
from torchtopo.rips.distances import pairwise_distances
from torchtopo.rips.h0 import h0_pairing


def _torch_lengths(points, edges):
    batch, n, dim = points.shape
    index = (edges.clamp_min(0) + (torch.arange(batch) * n).view(batch, 1, 1)).reshape(-1)
    ends = points.reshape(batch * n, dim).index_select(0, index).view(batch, -1, 2, dim)
    return torch.linalg.vector_norm(ends[:, :, 0] - ends[:, :, 1], dim=-1)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_edge_lengths_match_the_tensor_form(dtype):
    generator = torch.Generator().manual_seed(0)
    points = torch.randn(3, 9, 5, generator=generator, dtype=dtype)
    edges = torch.randint(0, 9, (3, 7, 2), generator=generator)
    edges[0, 0] = -1  # padding reads vertex 0 twice: length 0
    got = compiled_edge_lengths(points, edges)
    assert got.dtype == dtype and got.shape == (3, 7)
    torch.testing.assert_close(got, _torch_lengths(points, edges))
    assert got[0, 0] == 0


def test_edge_lengths_gradients_first_and_second_order():
    generator = torch.Generator().manual_seed(1)
    points = torch.randn(2, 6, 3, generator=generator, dtype=torch.float64, requires_grad=True)
    edges = torch.tensor([[[0, 1], [2, 3], [1, 4], [5, 0]], [[1, 5], [0, 2], [3, 4], [2, 5]]])
    assert torch.autograd.gradcheck(lambda p: compiled_edge_lengths(p, edges), points)
    assert torch.autograd.gradgradcheck(lambda p: compiled_edge_lengths(p, edges), points)


def test_edge_lengths_zero_length_edge_passes_no_gradient():
    points = torch.tensor([[[1.0, 2.0], [1.0, 2.0], [0.0, 0.0]]], requires_grad=True)
    edges = torch.tensor([[[0, 1], [-1, -1]]])
    (grad,) = torch.autograd.grad(compiled_edge_lengths(points, edges).sum(), points)
    assert torch.equal(grad, torch.zeros_like(grad))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_h0_from_points_matches_prim_on_the_product_form(dtype):
    generator = torch.Generator().manual_seed(2)
    points = torch.randn(4, 11, 6, generator=generator, dtype=dtype)
    mask = torch.ones(4, 11, dtype=torch.bool)
    mask[1, 7:] = False
    mask[2, 1:] = False  # a single real point: only the infinite bar
    mask[3, ::2] = False  # the root is not point 0
    births, deaths, valid, distances = h0_pairing_from_points(points, mask)
    expected = h0_pairing(pairwise_distances(points, mask), mask)
    assert torch.equal(valid, expected[2])
    # Values (exact lengths of the tree edges) agree; which edge wins a tie may not.
    torch.testing.assert_close(compiled_edge_lengths(points, deaths), compiled_edge_lengths(points, expected[1]))
    assert torch.equal(deaths[..., 0] < 0, expected[1][..., 0] < 0)
    assert torch.equal(births[..., 0] < 0, expected[0][..., 0] < 0)
    # The infinite bar is born at the first real point.
    assert births[3, mask[3].sum() - 1, 0] == 1
    real = mask.unsqueeze(2) & mask.unsqueeze(1)
    reference = torch.cdist(points.double(), points.double()).to(dtype)
    torch.testing.assert_close(distances[real], reference[real], rtol=1e-5, atol=1e-5)
    assert torch.isinf(distances[~real & ~torch.eye(11, dtype=torch.bool)]).all()
    assert (distances.diagonal(dim1=1, dim2=2) == 0).all()


def test_small_calls_run_in_the_calling_thread(monkeypatch):
    monkeypatch.setattr(torch, "get_num_threads", lambda: 2)
    seen = set()
    _numba_threads.run_on_threads(lambda start, stop: seen.add(threading.get_ident()), 8, work=10)
    assert seen == {threading.get_ident()}
    seen.clear()
    _numba_threads.run_on_threads(lambda start, stop: seen.add(threading.get_ident()), 8)
    assert threading.get_ident() not in seen
