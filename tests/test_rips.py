"""rips_persistence: agreement with gudhi, invariances, gradients, edge cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from helpers import assert_same_diagram, clouds, gudhi_diagrams, make_cloud
from hypothesis import example, given, settings
from hypothesis import strategies as st

from torchtopo import Diagrams, VietorisRips, rips_persistence
from torchtopo.rips import pairwise_distances

DTYPES = [(torch.float32, 1e-5), (torch.float64, 1e-10)]


# --------------------------------------------------------------------------- agreement with gudhi
@pytest.mark.parametrize("dtype,rtol", DTYPES)
@given(cloud=clouds(max_points=40))
@example(cloud=make_cloud("grid", 40, 2, seed=0))
@example(cloud=make_cloud("duplicates", 12, 3, seed=1))
def test_h0_native_matches_gudhi(cloud, dtype, rtol):
    ours = rips_persistence(torch.tensor(cloud, dtype=dtype), max_dim=0)
    assert ours.pairs[0].dtype == dtype
    reference = gudhi_diagrams(cloud.astype(np.float32) if dtype == torch.float32 else cloud, 0)
    assert_same_diagram(ours.to_list(0)[0], reference[0], rtol)


@pytest.mark.parametrize("backend", ["native", "gudhi"])
@pytest.mark.parametrize("dtype,rtol", DTYPES)
@settings(max_examples=25)
@given(cloud=clouds(max_points=25))
@example(cloud=make_cloud("grid", 25, 2, seed=3))
@example(cloud=make_cloud("circle", 25, 2, seed=4))
def test_h0_h1_matches_gudhi(cloud, dtype, rtol, backend):
    ours = rips_persistence(torch.tensor(cloud, dtype=dtype), max_dim=1, backend=backend)
    reference = gudhi_diagrams(cloud.astype(np.float32) if dtype == torch.float32 else cloud, 1)
    for d in (0, 1):
        assert_same_diagram(ours.to_list(d)[0], reference[d], rtol)


def test_batch_of_mixed_clouds_matches_gudhi_cloud_by_cloud():
    kinds = ["gaussian", "circle", "grid", "duplicates", "collinear"]
    batch = np.stack([make_cloud(k, 30, 3, seed=i) for i, k in enumerate(kinds)])
    for backend, max_dim in [("native", 0), ("native", 1), ("gudhi", 1)]:
        ours = rips_persistence(torch.tensor(batch), max_dim=max_dim, backend=backend)
        for b, cloud in enumerate(batch):
            reference = gudhi_diagrams(cloud, max_dim)
            for d in range(max_dim + 1):
                assert_same_diagram(ours.to_list(d)[b], reference[d], 1e-10)


@pytest.mark.parametrize("backend,max_dim", [("native", 0), ("native", 1), ("gudhi", 1)])
def test_max_edge_matches_gudhi_and_makes_bars_infinite(backend, max_dim):
    cloud = make_cloud("circle", 30, 2, seed=5)
    ours = rips_persistence(torch.tensor(cloud), max_dim=max_dim, max_edge=0.3, backend=backend, keep_infinite=True)
    reference = gudhi_diagrams(cloud, max_dim, max_edge=0.3)
    for d in range(max_dim + 1):
        pairs = ours.to_list(d)[0]
        finite = pairs[torch.isfinite(pairs[:, 1])]
        assert_same_diagram(finite, reference[d], 1e-10)
        assert (finite[:, 1] <= 0.3 + 1e-12).all()
    assert torch.isinf(ours.to_list(0)[0][:, 1]).sum() >= 2  # the cut splits the circle


def test_large_offset_keeps_float32_accuracy():
    """The product form of distances loses accuracy far from the origin; centring fixes it."""
    cloud = make_cloud("gaussian", 64, 16, seed=6) + 1e4
    ours = rips_persistence(torch.tensor(cloud, dtype=torch.float32), max_dim=0)
    reference = gudhi_diagrams(cloud.astype(np.float32), 0)
    assert_same_diagram(ours.to_list(0)[0], reference[0], 1e-5)


def test_fast_distances_are_accurate_after_centring():
    points = torch.randn(4, 50, 512) + 1e3
    fast = pairwise_distances(points)
    exact = torch.cdist(points.double(), points.double(), compute_mode="donot_use_mm_for_euclid_dist")
    assert torch.allclose(fast.double(), exact, rtol=1e-5, atol=0)
    assert torch.equal(fast, fast.transpose(1, 2))


# --------------------------------------------------------------------------- invariances
def _sorted(pairs: torch.Tensor) -> torch.Tensor:
    order = np.lexsort((pairs[:, 1].detach().numpy(), pairs[:, 0].detach().numpy()))
    return pairs[torch.from_numpy(order)]


@pytest.mark.parametrize("max_dim,backend", [(0, "native"), (1, "native"), (1, "gudhi")])
@settings(max_examples=15)
@given(seed=st.integers(0, 10_000), kind=st.sampled_from(["gaussian", "circle", "grid"]))
def test_invariant_under_permutation_rigid_motion_and_scales(seed, kind, max_dim, backend):
    cloud = torch.tensor(make_cloud(kind, 24, 3, seed))
    base = rips_persistence(cloud, max_dim, backend=backend)
    generator = torch.Generator().manual_seed(seed)
    rotation, _ = torch.linalg.qr(torch.randn(3, 3, dtype=torch.float64, generator=generator))
    moved = cloud[torch.randperm(24, generator=generator)] @ rotation.T + torch.randn(3, dtype=torch.float64, generator=generator)
    scaled = rips_persistence(cloud * 2.5, max_dim, backend=backend)
    other = rips_persistence(moved, max_dim, backend=backend)
    for d in range(max_dim + 1):
        # Rotating a grid turns exact ties into near-ties: compare as multisets up to rounding.
        reference = base.to_list(d)[0].numpy()
        assert_same_diagram(other.to_list(d)[0], reference, 1e-12)
        assert_same_diagram(scaled.to_list(d)[0], 2.5 * reference, 1e-12)


@pytest.mark.parametrize("max_dim,backend", [(0, "native"), (1, "native"), (1, "gudhi")])
def test_padding_with_masked_points_never_changes_the_result(max_dim, backend):
    sizes = [5, 17, 1, 30, 2]
    generator = torch.Generator().manual_seed(0)
    batch = 1e6 * torch.randn(len(sizes), 30, 4, generator=generator, dtype=torch.float64)  # garbage padding
    mask = torch.zeros(len(sizes), 30, dtype=torch.bool)
    singles = []
    for b, n in enumerate(sizes):
        index = torch.randperm(30, generator=generator)[:n]  # real points scattered among the padding
        cloud = torch.randn(n, 4, generator=generator, dtype=torch.float64)
        batch[b, index] = cloud
        mask[b, index] = True
        singles.append(rips_persistence(cloud, max_dim, backend=backend, keep_infinite=True))
    padded = rips_persistence(batch, max_dim, mask=mask, backend=backend, keep_infinite=True)
    for b, single in enumerate(singles):
        for d in range(max_dim + 1):
            assert torch.equal(_sorted(padded.to_list(d)[b]), _sorted(single.to_list(d)[0]))


def test_batch_of_one_matches_unbatched_call():
    cloud = torch.randn(20, 3)
    single = rips_persistence(cloud, 1)
    batched = rips_persistence(cloud.unsqueeze(0), 1)
    assert not single.is_batched and batched.is_batched
    for d in (0, 1):
        assert torch.equal(single.pairs[d], batched.pairs[d][0])
        assert torch.equal(single.death_edges[d], batched.death_edges[d][0])


def test_distance_matrix_input_equals_points_input():
    cloud = torch.randn(3, 40, 5, dtype=torch.float64)
    matrix = torch.cdist(cloud, cloud)  # the product form: slightly asymmetric, nonzero diagonal
    for max_dim in (0, 1):
        a = rips_persistence(cloud, max_dim)
        b = rips_persistence(distances=matrix, max_dim=max_dim)
        for d in range(max_dim + 1):
            for x, y in zip(a.to_list(d), b.to_list(d)):
                assert torch.allclose(_sorted(x), _sorted(y), atol=1e-9)


def test_distance_matrix_gradients_reach_both_triangles():
    matrix = torch.tensor([[0.0, 1.0, 2.0], [1.0, 0.0, 1.5], [2.0, 1.5, 0.0]], dtype=torch.float64, requires_grad=True)
    dgm = rips_persistence(distances=matrix, max_dim=0)
    dgm.pairs[0].sum().backward()
    expected = torch.tensor([[0.0, 0.5, 0.0], [0.5, 0.0, 0.5], [0.0, 0.5, 0.0]], dtype=torch.float64)
    assert torch.equal(matrix.grad, expected)


# --------------------------------------------------------------------------- gradients
def test_unit_square_has_the_exact_h1_bar_and_gradients():
    square = torch.tensor([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]], dtype=torch.float64, requires_grad=True)
    dgm = rips_persistence(square, max_dim=1)
    (bar,) = dgm.to_list(1)[0]
    assert torch.allclose(bar, torch.tensor([1.0, math.sqrt(2)], dtype=torch.float64))
    # The death value is a diagonal's length: its gradient pulls that diagonal's ends apart
    # along the diagonal, with unit norm in total; the birth value is a side's length.
    (death_grad,) = torch.autograd.grad(bar[1], square, retain_graph=True)
    i, j = dgm.death_edges[1][dgm.mask[1]][0].tolist()
    assert {i, j} in ({0, 2}, {1, 3})
    direction = (square[i] - square[j]).detach() / math.sqrt(2)
    expected = torch.zeros(4, 2, dtype=torch.float64)
    expected[i], expected[j] = direction, -direction
    assert torch.allclose(death_grad, expected)
    (birth_grad,) = torch.autograd.grad(bar[0], square)
    assert torch.allclose(birth_grad.sum(0), torch.zeros(2, dtype=torch.float64))
    assert torch.allclose(birth_grad.norm(dim=1).sum(), torch.tensor(2.0, dtype=torch.float64))


def test_h0_gradient_of_two_points_is_the_unit_direction():
    points = torch.tensor([[0.0, 0.0], [3.0, 4.0]], dtype=torch.float64, requires_grad=True)
    (death,) = rips_persistence(points, 0).to_list(0)[0][:, 1]
    death.backward()
    assert torch.allclose(points.grad, torch.tensor([[-0.6, -0.8], [0.6, 0.8]], dtype=torch.float64))


@pytest.mark.parametrize("max_dim,backend", [(0, "native"), (1, "native"), (1, "gudhi")])
def test_gradcheck_on_generic_clouds(max_dim, backend):
    cloud = torch.tensor(make_cloud("circle", 12, 2, seed=7), requires_grad=True)

    def values(points):
        dgm = rips_persistence(points, max_dim, backend=backend)
        return torch.cat([dgm.pairs[d][dgm.mask[d]].flatten() for d in range(max_dim + 1)])

    assert values(cloud).numel() >= 2 * (11 + max_dim)  # all H0 bars, and at least one loop
    assert torch.autograd.gradcheck(values, (cloud,), eps=1e-7, atol=1e-6)


def test_duplicate_points_give_finite_gradients():
    points = torch.tensor([[0.0, 0.0], [0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]], requires_grad=True)
    dgm = rips_persistence(points, 1)
    total = sum(dgm.pairs[d].sum() for d in range(2))
    total.backward()
    assert torch.isfinite(points.grad).all()


# --------------------------------------------------------------------------- edge cases and errors
def test_one_point_two_points_identical_points():
    one = rips_persistence(torch.zeros(1, 3), 1, keep_infinite=True)
    assert one.to_list(0)[0].tolist() == [[0.0, float("inf")]]
    assert one.to_list(1)[0].shape == (0, 2)
    two = rips_persistence(torch.tensor([[0.0], [2.0]]), 1)
    assert two.to_list(0)[0].tolist() == [[0.0, 2.0]]
    same = rips_persistence(torch.ones(6, 2), 1)
    assert same.to_list(0)[0].shape == (0, 2) and same.to_list(1)[0].shape == (0, 2)


def test_output_follows_input_dtype_and_device():
    for dtype in (torch.float32, torch.float64):
        dgm = rips_persistence(torch.randn(2, 10, 3, dtype=dtype), 1)
        assert all(p.dtype == dtype and p.device.type == "cpu" for p in dgm.pairs)
        assert all(e.dtype == torch.long for e in dgm.death_edges)


@pytest.mark.parametrize(
    "kwargs,error,match",
    [
        (dict(points=torch.zeros(2, 0, 3)), ValueError, "points"),
        (dict(points=torch.zeros(4)), ValueError, "points"),
        (dict(points=torch.tensor([[0.0, float("nan")]])), ValueError, "points must be finite"),
        (dict(points=torch.tensor([[0.0, float("inf")]])), ValueError, "points must be finite"),
        (dict(points=torch.zeros(3, 2, dtype=torch.long)), TypeError, "floating"),
        (dict(points=[[0.0, 1.0]]), TypeError, "points must be a torch.Tensor"),
        (dict(points=torch.zeros(2, 3, 2), mask=torch.zeros(2, 3, dtype=torch.bool)), ValueError, "all-False"),
        (dict(points=torch.zeros(2, 3, 2), mask=torch.ones(2, 4, dtype=torch.bool)), ValueError, "mask must have shape"),
        (dict(points=torch.zeros(2, 3, 2), mask=torch.ones(2, 3)), TypeError, "mask must be a bool"),
        (dict(points=torch.zeros(3, 2), backend="ripser++"), ValueError, "backend"),
        (dict(points=torch.zeros(3, 2), max_dim=-1), ValueError, "max_dim"),
        (dict(points=torch.zeros(3, 2), max_edge=-1.0), ValueError, "max_edge"),
        (dict(distances=torch.tensor([[0.0, 1.0], [2.0, 0.0]])), ValueError, "symmetric"),
        (dict(distances=torch.zeros(2, 3)), ValueError, "distances must have shape"),
        (dict(), ValueError, "exactly one"),
    ],
)
def test_bad_input_raises_a_clear_error(kwargs, error, match):
    with pytest.raises(error, match=match):
        rips_persistence(**kwargs)


def test_module_wraps_the_function():
    layer = VietorisRips(max_dim=1, keep_infinite=True)
    points = torch.randn(3, 15, 2)
    mask = torch.ones(3, 15, dtype=torch.bool)
    mask[1, 10:] = False
    out = layer(points, mask)
    expected = rips_persistence(points, 1, mask=mask, keep_infinite=True)
    assert isinstance(out, Diagrams)
    for d in (0, 1):
        assert torch.equal(out.pairs[d], expected.pairs[d])
    assert "max_dim=1" in repr(layer)
    with pytest.raises(ValueError, match="backend"):
        VietorisRips(backend="fast")


# --------------------------------------------------------------------------- H0 implementations
@settings(max_examples=20)
@given(seed=st.integers(0, 10_000), n=st.integers(1, 40), kind=st.sampled_from(["gaussian", "grid", "duplicates"]))
def test_h0_torch_loop_and_numba_kernel_agree_exactly(seed, n, kind):
    from torchtopo.rips.h0 import h0_pairing

    generator = torch.Generator().manual_seed(seed)
    clouds_ = torch.from_numpy(np.stack([make_cloud(kind, n, 2, seed + b) for b in range(3)]))
    mask = torch.rand(3, n, generator=generator) > 0.4
    mask[:, n // 2] = True
    distances = pairwise_distances(clouds_, mask)
    expected = h0_pairing(distances, mask, implementation="torch")
    got = h0_pairing(distances, mask, implementation="numba")
    for a, b in zip(got, expected):
        assert torch.equal(a, b)
    with pytest.raises(ValueError, match="implementation"):
        h0_pairing(distances, mask, implementation="cuda")


@pytest.mark.parametrize("max_dim", [0, 1])
def test_torch_thread_setting_survives_the_compiled_kernels(max_dim):
    """numba's OpenMP layer would reset torch's thread count (training slowed 10-30x)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        rips_persistence(torch.randn(4, 20, 3), max_dim, backend="native" if max_dim == 0 else "auto")
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_concurrent_calls_from_python_threads_agree_with_sequential_ones():
    """numba's workqueue layer aborts on concurrent launches: the kernels must serialise them."""
    from concurrent.futures import ThreadPoolExecutor

    batches = [torch.randn(4, 24, 3, generator=torch.Generator().manual_seed(s)) for s in range(6)]
    sequential = [rips_persistence(b, 1) for b in batches]
    with ThreadPoolExecutor(max_workers=3) as pool:
        concurrent = list(pool.map(lambda b: rips_persistence(b, 1), batches))
    for a, b in zip(sequential, concurrent):
        for d in (0, 1):
            assert torch.equal(a.pairs[d], b.pairs[d])


@pytest.mark.parametrize("kind", ["gaussian", "circle"])
def test_native_and_gudhi_backends_give_equal_gradients(kind):
    """Without ties both backends pick the same generators, so the gradients agree exactly."""
    cloud = torch.tensor(make_cloud(kind, 30, 3, seed=8))
    weights = torch.linspace(0.5, 1.5, 2, dtype=torch.float64)
    grads = []
    for backend in ("native", "gudhi"):
        points = cloud.clone().requires_grad_(True)
        dgm = rips_persistence(points, 1, backend=backend)
        # A loss that is not symmetric in birth and death, summed over both dimensions.
        total = sum((dgm.pairs[d] * weights).sum() + dgm.persistence(d).square().sum() for d in (0, 1))
        (grad,) = torch.autograd.grad(total, points)
        grads.append(grad)
    assert grads[0].abs().sum() > 0
    assert torch.allclose(grads[0], grads[1], atol=1e-12)
