"""The compiled CPU paths of the native Rips backend (torchtopo.rips.compiled): the H0 pairing
straight from points, the exact edge lengths and the gather agree with the tensor paths,
gradients included; small calls run in the calling thread, and a small batch's whole computation
in one compiled call gives the diagrams of the staged path."""

import math
import threading
import time
from dataclasses import replace
from functools import partial

import numpy as np
import pytest
import torch
from helpers import padded_batches
from hypothesis import given
from hypothesis import strategies as st

from torchtopo import Diagrams, rips_persistence
from torchtopo.rips import _numba_threads, compiled, core
from torchtopo.rips.compiled import compiled_edge_lengths, compiled_gather, h0_pairing_from_points
from torchtopo.rips.core import _native_pairing
from torchtopo.rips.distances import pairwise_distances
from torchtopo.rips.h0 import h0_pairing
from torchtopo.rips.pairing import Pairing, gather_diagrams


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
    points[1, 8] = float("nan")  # masked points are never read
    points[3, 2] = float("inf")
    births, deaths, valid, lengths, distances, magnitude = h0_pairing_from_points(points, mask)
    points = torch.where(mask.unsqueeze(-1), points, 0)
    expected = h0_pairing(pairwise_distances(points, mask), mask)
    assert magnitude == points.abs().max()
    assert lengths.dtype == torch.float64
    torch.testing.assert_close(lengths, torch.where(deaths[..., 0] >= 0, compiled_edge_lengths(points.double(), deaths), 0),
                               rtol=0, atol=0)
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


def test_h0_from_points_without_distances_gives_the_same_pairing():
    points = torch.randn(5, 13, 4, generator=torch.Generator().manual_seed(4))
    mask = torch.rand(5, 13, generator=torch.Generator().manual_seed(5)) < 0.8
    mask[:, 0] = True
    full = h0_pairing_from_points(points, mask)
    lean = h0_pairing_from_points(points, mask, keep_distances=False)
    assert lean.distances is None and lean.magnitude == full.magnitude
    for got, expected in zip(lean[:4], full[:4]):
        assert torch.equal(got, expected)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_h0_from_points_magnitude_flags_a_non_finite_real_coordinate(dtype, bad):
    points = torch.randn(3, 5, 4, dtype=dtype)
    points[1, 3, 2] = bad
    magnitude = h0_pairing_from_points(points, None).magnitude
    assert not math.isfinite(magnitude)
    points[1, 3, 2] = -7.5  # the largest absolute value, negative
    assert h0_pairing_from_points(points, None).magnitude == 7.5


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("max_dim", [1, 2])
@pytest.mark.parametrize("keep_infinite", [False, True])
@pytest.mark.parametrize("max_edge", [None, 1.9])
@pytest.mark.parametrize("measured", [True, False], ids=["h0-lengths-measured", "h0-lengths-gathered"])
def test_gather_matches_the_tensor_gather(dtype, max_dim, keep_infinite, max_edge, measured):
    generator = torch.Generator().manual_seed(3)
    points = torch.randn(3, 12, 3, generator=generator, dtype=dtype)
    points[0, 5] = points[0, 2]  # a duplicate point: zero-length edges, zero-persistence pairs
    points.requires_grad_(True)
    mask = torch.ones(3, 12, dtype=torch.bool)
    mask[1, 8:] = False
    mask[2, 1:] = False
    pairing = _native_pairing(points.detach(), True, mask, max_dim, max_edge)
    assert pairing.death_lengths is not None  # the H0 pass measured its death edges
    if not measured:
        pairing = replace(pairing, death_lengths=None)
    got = compiled_gather(points, pairing, keep_infinite=keep_infinite, max_edge=max_edge)
    # the tensor gather over the compiled lengths (each summed in float64, rounded once)
    expected = gather_diagrams(partial(compiled_edge_lengths, points), pairing, keep_infinite=keep_infinite,
                               max_edge=max_edge)
    weights = []
    for d in range(max_dim + 1):
        assert torch.equal(got.mask[d], expected.mask[d])
        assert torch.equal(got.birth_edges[d], expected.birth_edges[d])
        assert torch.equal(got.death_edges[d], expected.death_edges[d])
        torch.testing.assert_close(got.pairs[d], expected.pairs[d], rtol=0, atol=0)
        weights.append(torch.rand(expected.pairs[d].shape, generator=generator, dtype=dtype))
    if keep_infinite and max_edge is not None:
        assert any(torch.isinf(p).any() for p in got.pairs)  # the cut leaves infinite bars

    def loss(diagrams):
        return sum((torch.where(torch.isinf(p), 0, p) * w).sum() for p, w in zip(diagrams.pairs, weights))

    (grad,) = torch.autograd.grad(loss(got), points)
    (reference,) = torch.autograd.grad(loss(expected), points)
    torch.testing.assert_close(grad, reference)
    assert grad[~mask].abs().max() == 0


def test_gather_of_unmatched_rows_and_infinite_bars():
    """Hand-made pairing: a padding row, an infinite H0 bar, an H1 pair of zero persistence and
    an H1 pair whose death edge is absent (infinite)."""
    points = torch.tensor([[[0.0, 0.0], [3.0, 0.0], [0.0, 4.0], [3.0, 4.0]]], dtype=torch.float64,
                          requires_grad=True)
    births0 = torch.tensor([[[1, 1], [0, 0], [-1, -1]]])
    deaths0 = torch.tensor([[[0, 1], [-1, -1], [-1, -1]]])
    births1 = torch.tensor([[[0, 3], [1, 2]]])  # diagonal edges: length 5
    deaths1 = torch.tensor([[[1, 2], [-1, -1]]])  # the same length: zero persistence
    pairing = Pairing((births0, births1), (deaths0, deaths1), (torch.tensor([[True, True, False]]),
                                                               torch.tensor([[True, True]])))
    dgm = compiled_gather(points, pairing, keep_infinite=True, max_edge=None)
    assert dgm.pairs[0].tolist() == [[[0.0, 3.0], [0.0, float("inf")], [0.0, 0.0]]]
    assert dgm.mask[0].tolist() == [[True, True, False]]
    assert dgm.death_edges[0].tolist() == [[[0, 1], [-1, -1], [-1, -1]]]
    assert dgm.pairs[1].tolist() == [[[0.0, 0.0], [5.0, float("inf")]]]
    assert dgm.mask[1].tolist() == [[False, True]]
    assert dgm.birth_edges[1].tolist() == [[[-1, -1], [1, 2]]]
    (grad,) = torch.autograd.grad(dgm.pairs[0][0, 0, 1] + dgm.pairs[1][0, 1, 0], points)
    # d|p0 - p1| = (-1, 0) at p0, (1, 0) at p1; d|p1 - p2| = (0.6, -0.8) at p1, (-0.6, 0.8) at p2
    torch.testing.assert_close(grad, torch.tensor([[[-1.0, 0.0], [1.6, -0.8], [-0.6, 0.8], [0.0, 0.0]]],
                                                  dtype=torch.float64))


def test_small_calls_run_in_the_calling_thread(monkeypatch):
    monkeypatch.setattr(torch, "get_num_threads", lambda: 2)
    seen = set()
    _numba_threads.run_on_threads(lambda start, stop: seen.add(threading.get_ident()), 8, work=10)
    assert seen == {threading.get_ident()}


def test_large_calls_share_the_ranges_between_the_caller_and_the_pool(monkeypatch):
    monkeypatch.setattr(torch, "get_num_threads", lambda: 2)
    calls = []

    def kernel(start, stop):
        calls.append((threading.get_ident(), start, stop))
        time.sleep(0.01)  # long enough for the pool thread to wake and take ranges too

    _numba_threads.run_on_threads(kernel, 50)
    covered = sorted(index for _, start, stop in calls for index in range(start, stop))
    assert covered == list(range(50))  # every cloud once
    assert len(calls) == 8 and max(stop - start for _, start, stop in calls) == 7  # ranges of ceil(50 / 8)
    threads = {ident for ident, _, _ in calls}
    assert threading.get_ident() in threads and len(threads) == 2


def test_an_error_in_a_range_reaches_the_caller(monkeypatch):
    monkeypatch.setattr(torch, "get_num_threads", lambda: 2)

    def kernel(start, stop):
        if start == 0:
            raise RuntimeError("range 0")

    with pytest.raises(RuntimeError, match="range 0"):
        _numba_threads.run_on_threads(kernel, 16)


def _diagrams_and_gradient(points, mask, max_dim, keep_infinite, *, fused, monkeypatch):
    """``rips_persistence`` with the fused path on or off, and the gradient of a loss that reads
    every kept value."""
    monkeypatch.setattr(core, "is_fused_call", compiled.is_fused_call if fused else lambda *_: False)
    points = points.clone().requires_grad_()
    dgm = rips_persistence(points, max_dim, mask=mask, keep_infinite=keep_infinite)
    finite = [torch.where(m.unsqueeze(-1), p, 0).nan_to_num(posinf=0.0) for p, m in zip(dgm.pairs, dgm.mask)]
    (grad,) = torch.autograd.grad(sum((p[..., 1] - p[..., 0]).square().sum() for p in finite), points)
    return dgm, grad


def _on_threads(monkeypatch) -> None:
    """Send every batch of more than one cloud through the fused path's threads."""
    monkeypatch.setattr(_numba_threads, "SERIAL_WORK", 0)
    assert torch.get_num_threads() >= 2


def _assert_same_diagrams(got: Diagrams, expected: Diagrams) -> None:
    assert got.birth_pixels is None and got.death_pixels is None
    for name in ("pairs", "mask", "birth_edges", "death_edges"):
        for ours, theirs in zip(getattr(got, name), getattr(expected, name), strict=True):
            assert ours.shape == theirs.shape and ours.dtype == theirs.dtype, name
            assert torch.equal(ours, theirs), name


@given(batch=padded_batches(max_points=20), masked=st.booleans(), max_dim=st.sampled_from([0, 1]),
       keep_infinite=st.booleans(), dtype=st.sampled_from([torch.float32, torch.float64]), threaded=st.booleans())
def test_fused_path_equals_the_staged_path(batch, masked, max_dim, keep_infinite, dtype, threaded):
    points, mask = batch
    points = torch.from_numpy(points).to(dtype)
    mask = torch.from_numpy(mask) if masked else None
    if mask is not None:  # padding is never read: NaN there changes nothing
        points = points.masked_fill(~mask.unsqueeze(-1), float("nan"))
    assert compiled.is_fused_call(points, max_dim)
    with pytest.MonkeyPatch.context() as monkeypatch:
        if threaded:
            _on_threads(monkeypatch)
        got, got_grad = _diagrams_and_gradient(points, mask, max_dim, keep_infinite, fused=True,
                                               monkeypatch=monkeypatch)
        expected, expected_grad = _diagrams_and_gradient(points, mask, max_dim, keep_infinite, fused=False,
                                                         monkeypatch=monkeypatch)
    _assert_same_diagrams(got, expected)
    assert torch.equal(got_grad, expected_grad)
    if mask is not None:
        assert not got_grad[~mask].any()


@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("max_dim", [0, 1])
@pytest.mark.parametrize("n", [25, 300])  # 300 points: past the serial-work bound, one cloud still goes in one call
def test_fused_path_unbatched_input(max_dim, n, masked, monkeypatch):
    points = torch.from_numpy(np.random.default_rng(3).normal(size=(n, 3)))
    mask = torch.arange(n) % 5 != 2 if masked else None
    got, got_grad = _diagrams_and_gradient(points, mask, max_dim, False, fused=True, monkeypatch=monkeypatch)
    expected, expected_grad = _diagrams_and_gradient(points, mask, max_dim, False, fused=False,
                                                     monkeypatch=monkeypatch)
    assert not got.is_batched and got.pairs[0].shape == (n, 2)
    _assert_same_diagrams(got, expected)
    assert torch.equal(got_grad, expected_grad)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_fused_path_takes_strided_points_and_masks(dtype, monkeypatch):
    # Points and masks that are views with strides (a transposed feature map, every other row
    # of a larger mask) give what their contiguous copies give, with the gradient in place.
    features = torch.from_numpy(np.random.default_rng(5).normal(size=(2, 7, 24))).to(dtype)
    points = features.transpose(1, 2)
    mask = torch.ones(4, 24, dtype=torch.bool)
    mask[:, 20:] = False
    for mask_view in (None, mask[::2]):
        assert not points.is_contiguous() and (mask_view is None or not mask_view.is_contiguous())
        got, got_grad = _diagrams_and_gradient(points, mask_view, 1, False, fused=True, monkeypatch=monkeypatch)
        expected, expected_grad = _diagrams_and_gradient(points.contiguous(), None if mask_view is None else
                                                         mask_view.contiguous(), 1, False, fused=False,
                                                         monkeypatch=monkeypatch)
        _assert_same_diagrams(got, expected)
        assert torch.equal(got_grad, expected_grad)


def test_fused_path_runs_one_kernel_for_a_small_call_and_ranges_on_threads_for_more_work(monkeypatch):
    from torchtopo.rips import _fused_numba

    calls = []
    for name in ("diagrams_at_address", "pair_clouds_at_address", "gather_clouds_at_address"):
        kernel = getattr(_fused_numba, name)
        monkeypatch.setattr(_fused_numba, name, lambda *args, name=name, kernel=kernel: calls.append(name) or
                            kernel(*args))
    points = torch.randn(2, 30, 16)
    rips_persistence(points, 1)
    assert calls == ["diagrams_at_address"]
    # A cut or dimension 2 go the staged way.
    rips_persistence(points, 1, max_edge=3.0)
    rips_persistence(points, 2)
    assert calls == ["diagrams_at_address"]
    # Past the serial work: ranges of clouds on threads, then one gather.
    calls.clear()
    rips_persistence(torch.randn(16, 48, 512), 1)
    assert calls.count("pair_clouds_at_address") > 1 and calls[-1] == "gather_clouds_at_address"
    assert "diagrams_at_address" not in calls
    # A batch whose H1 rows would pass OUTPUT_BYTES goes the staged way, which reduces in chunks;
    # one cloud always takes the fused path (threads would not split it).
    assert not compiled.is_fused_call(torch.empty(64, 1024, 3), 1)
    assert compiled.is_fused_call(torch.empty(64, 1024, 3), 0)
    assert compiled.is_fused_call(torch.empty(1, 4096, 3), 1)


@pytest.mark.parametrize("threaded", [False, True])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_fused_path_hands_clouds_that_need_scaling_to_the_staged_path(dtype, threaded, monkeypatch):
    # Coordinates whose squared distances overflow (float32) or fall into subnormals: the staged
    # path scales them by a power of two and measures the exact lengths. Large coordinates need
    # it in any one cloud of a batch (here the last two of four, after two whose coordinates do
    # not); small ones in every cloud (one scale follows the largest coordinate of the batch).
    if threaded:
        _on_threads(monkeypatch)
    base = torch.tensor([[0.0, 0.0], [3.0, 0.0], [3.0, 4.0], [0.0, 4.0]], dtype=torch.float64)
    h0 = torch.tensor([[0.0, 3.0], [0.0, 3.0], [0.0, 4.0]], dtype=torch.float64)
    h1 = torch.tensor([[4.0, 5.0]], dtype=torch.float64)
    for scale in (2.0**100, 2.0**-100) if dtype == torch.float32 else (2.0**600, 2.0**-600):
        scales = (scale / 2.0**50 if scale > 1 else scale / 2,) * 2 + (scale,) * 2
        points = torch.stack([base * size for size in scales]).to(dtype)
        assert compiled.is_fused_call(points, 1)
        dgm = rips_persistence(points, 1)
        for cloud, size in enumerate(scales):
            for pairs, mask, expected in zip(dgm.pairs, dgm.mask, (h0, h1)):
                torch.testing.assert_close(pairs[cloud, mask[cloud]].double(), expected * size, rtol=1e-6, atol=0)


@pytest.mark.parametrize(("max_dim", "cut"), [(1, False), (1, True), (2, False)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_clouds_no_one_scale_serves_are_computed_each_at_its_own(dtype, max_dim, cut):
    # A cloud of coordinates about 1 beside one of 2^100 (float32; 2^600 in float64), or one of
    # 2^-100 beside one of 1: at the batch's one scale, the small cloud's squared distances
    # would vanish (the diagrams of a square would come out wrong, with no error).
    base = torch.tensor([[0.0, 0.0], [3.0, 0.0], [3.0, 4.0], [0.0, 4.0]], dtype=torch.float64)
    h0 = torch.tensor([[0.0, 3.0], [0.0, 3.0], [0.0, 4.0]], dtype=torch.float64)
    h1 = torch.tensor([[4.0, 5.0]], dtype=torch.float64)
    far = 100 if dtype == torch.float32 else 600
    options = dict(max_dim=max_dim, max_edge=2.0 ** (far + 4) if cut else None)  # a cut that keeps every edge
    for scales in ((1.0, 2.0**far, 1.0), (2.0**-far, 1.0, 2.0**-far)):
        points = torch.stack([base * size for size in scales]).to(dtype).requires_grad_()
        mask = torch.ones(3, 4, dtype=torch.bool)
        for masked in (None, mask):
            dgm = rips_persistence(points, mask=masked, **options)
            for cloud, size in enumerate(scales):
                for d, expected in enumerate((h0, h1)):
                    torch.testing.assert_close(dgm.to_list(d)[cloud].double(), expected * size, rtol=1e-6, atol=0)
        # The gradient reaches every cloud: each bar's length grows with its cloud's scale.
        (grad,) = torch.autograd.grad(sum(p[..., 1].nan_to_num(posinf=0.0).sum() for p in dgm.pairs), points)
        assert torch.isfinite(grad).all() and all(grad[cloud].abs().sum() > 0 for cloud in range(3))


@pytest.mark.parametrize("threaded", [False, True])
@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_fused_path_refuses_a_non_finite_coordinate(bad, threaded, monkeypatch):
    if threaded:
        _on_threads(monkeypatch)
    points = torch.randn(6, 10, 3)
    points[3, 4, 1] = bad
    with pytest.raises(ValueError, match="points must be finite"):
        rips_persistence(points, 1)


def test_unchecked_diagrams_equal_checked_ones():
    dgm = rips_persistence(torch.randn(2, 12, 3), 1)
    fields = (dgm.pairs, dgm.mask, dgm.birth_edges, dgm.death_edges)
    assert Diagrams.unchecked(*fields) == Diagrams(*fields)
