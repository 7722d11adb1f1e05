"""rips_persistence input hardening: low precision, extreme scales, the max_edge rule, empty
batches, argument errors, the zero-diagonal rule and NaN in masked padding (issues 13 and 18)."""

from __future__ import annotations

import math

import gudhi
import numpy as np
import pytest
import torch
from helpers import assert_same_diagram, clouds, gudhi_diagrams, make_cloud
from hypothesis import example, given, settings
from hypothesis import strategies as st

from torchtopo import VietorisRips, rips_persistence
from torchtopo.rips.distances import edge_lengths, largest_unscaled, pairwise_distances, scale_exponent

BACKENDS = ["native", "gudhi"]


def finite_and_infinite(dgm, dim: int) -> tuple[torch.Tensor, int]:
    """The finite pairs of cloud 0 in dimension ``dim`` and the number of its infinite bars."""
    pairs = dgm.to_list(dim)[0].double()
    infinite = torch.isinf(pairs[:, 1])
    return pairs[~infinite], int(infinite.sum())


def gudhi_with_essential(distances: np.ndarray, max_dim: int, max_edge: float) -> list[tuple[np.ndarray, int]]:
    """Per dimension (finite pairs, number of infinite bars) of gudhi's Rips complex on ``distances``."""
    tree = gudhi.RipsComplex(distance_matrix=distances, max_edge_length=max_edge).create_simplex_tree(
        max_dimension=max_dim + 1
    )
    tree.compute_persistence(persistence_dim_max=True)
    out = []
    for d in range(max_dim + 1):
        bars = np.asarray(tree.persistence_intervals_in_dimension(d)).reshape(-1, 2)
        finite = np.isfinite(bars[:, 1])
        out.append((bars[finite], int((~finite).sum())))
    return out


# --------------------------------------------------------------------------- float16 / bfloat16
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("max_dim", [0, 1, 2])
@pytest.mark.parametrize("backend", BACKENDS)
def test_half_precision_equals_the_float32_result_rounded(dtype, max_dim, backend):
    points = torch.from_numpy(np.stack([make_cloud(k, 14, 3, seed=i) for i, k in enumerate(["circle", "sphere"])]))
    low = points.to(dtype).requires_grad_()
    dgm = rips_persistence(low, max_dim, backend=backend, keep_infinite=True)
    reference = rips_persistence(low.detach().float().requires_grad_(), max_dim, backend=backend, keep_infinite=True)
    for d in range(max_dim + 1):
        assert dgm.pairs[d].dtype == dtype
        assert torch.equal(dgm.mask[d], reference.mask[d])
        assert torch.equal(dgm.pairs[d], reference.pairs[d].to(dtype))
    dgm.persistence(0)[torch.isfinite(dgm.persistence(0))].sum().backward()
    assert low.grad.dtype == dtype and torch.isfinite(low.grad.float()).all() and low.grad.abs().sum() > 0


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_distance_matrix(dtype):
    x = torch.from_numpy(make_cloud("circle", 12, 2, seed=3))
    matrix = torch.cdist(x, x).to(dtype).requires_grad_()
    dgm = rips_persistence(distances=matrix, max_dim=1)
    reference = rips_persistence(distances=matrix.detach().float(), max_dim=1)
    for d in (0, 1):
        assert dgm.pairs[d].dtype == dtype
        assert torch.equal(dgm.pairs[d], reference.pairs[d].to(dtype))
    dgm.persistence(1).sum().backward()
    assert matrix.grad.dtype == dtype and matrix.grad.abs().sum() > 0


def test_half_precision_module_and_bars_too_long_for_float16():
    assert VietorisRips(max_dim=1)(torch.randn(2, 10, 3).half()).pairs[1].dtype == torch.float16
    # 120000 fits float32 but not float16 (largest 65504): refused, not inf.
    with pytest.raises(ValueError, match="longer than the largest torch.float16"):
        rips_persistence(torch.tensor([[-60000.0], [60000.0]], dtype=torch.float16), max_dim=0)


# --------------------------------------------------------------------------- overflow and underflow
def test_huge_distance_matrix_keeps_every_bar():
    """0.5 * (D + D^T) overflowed above 1.7e38 and lost the bar (0, 2e38) (giotto-ph has it)."""
    matrix = torch.tensor([[0, 1, 3e38], [1, 0, 2e38], [3e38, 2e38, 0]])
    dgm = rips_persistence(distances=matrix, max_dim=1, keep_infinite=True)
    assert torch.equal(dgm.pairs[0], torch.tensor([[0.0, 1.0], [0.0, 2e38], [0.0, math.inf]]))
    ours = sorted(map(tuple, dgm.pairs[0].double().tolist()))
    ripser = pytest.importorskip("ripser")
    reference = ripser.ripser(matrix.numpy(), maxdim=0, distance_matrix=True)["dgms"][0]
    assert sorted(map(tuple, reference.astype(np.float64).tolist())) == ours
    gph = pytest.importorskip("gph")
    reference = gph.ripser_parallel(matrix.double().numpy(), metric="precomputed", maxdim=0)["dgms"][0]
    assert sorted(map(tuple, reference.tolist())) == ours


@pytest.mark.parametrize(
    "scale,dtype",
    [(1e-23, torch.float32), (1e-40, torch.float64), (1e19, torch.float32), (1e36, torch.float32),
     (1e155, torch.float64), (1e300, torch.float64), (1e-300, torch.float64)],
)
@pytest.mark.parametrize("backend", BACKENDS)
def test_tiny_and_huge_clouds_give_the_exact_diagram(scale, dtype, backend):
    """Squared distances overflowed (empty or short diagrams) or fell into subnormals (wrong
    pairs: deaths 1e-23, 3e-23 for 1e-23 * [0, 1, 3])."""
    points = (torch.tensor([[0.0], [1.0], [3.0]], dtype=torch.float64) * scale).to(dtype)
    dgm = rips_persistence(points, max_dim=0, keep_infinite=True, backend=backend)
    deaths = [points[1, 0] - points[0, 0], points[2, 0] - points[1, 0], math.inf]  # the exact lengths
    assert torch.equal(dgm.pairs[0], torch.tensor([[0.0, d] for d in deaths], dtype=dtype))
    assert dgm.pairs[0][:2, 1].double().div(scale).tolist() == pytest.approx([1, 2], rel=1e-6)  # gudhi's


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
@pytest.mark.parametrize("dim", [1, 3, 512])
def test_scale_exponent_scales_exactly_the_clouds_whose_squares_would_overflow_or_go_subnormal(dtype, dim):
    finfo = torch.finfo(dtype)
    low, high = math.frexp(finfo.smallest_normal)[1] - 30, math.frexp(finfo.max)[1] + 1
    for magnitude in [0.0] + [math.ldexp(mantissa, e) for e in range(low, high) for mantissa in (0.5, 0.75)]:
        exponent = scale_exponent(magnitude, dim, dtype)
        # Unscaled: the product form's terms (below 16 D M^2) keep a factor 2 from overflow, and
        # lengths down to sqrt(eps) M stay normal numbers.
        fits = magnitude == 0 or finfo.smallest_normal / finfo.eps <= magnitude * magnitude <= finfo.max / (32 * dim)
        assert (exponent == 0) == fits, magnitude
        if exponent:
            assert 0.5 <= math.ldexp(magnitude, -exponent) < 1
        # The fused path stops pairing a cloud past largest_unscaled: exactly the large ones scaled.
        if magnitude >= 1:
            assert (magnitude > largest_unscaled(dim, dtype)) == (exponent != 0), magnitude


def test_a_cut_past_the_float_range_after_scaling_keeps_every_edge():
    # A tiny cloud is scaled up by a power of two, and its cut with it: a cut of 1e300 becomes
    # about 2^1600, past float64 (math.ldexp raised OverflowError); it keeps every edge.
    points = torch.tensor([[0.0, 0.0], [3.0, 0.0], [3.0, 4.0], [0.0, 4.0]], dtype=torch.float64) * 2.0**-600
    dgm = rips_persistence(points, max_dim=1, max_edge=1e300)
    assert dgm.to_list(1)[0].tolist() == [[4 * 2.0**-600, 5 * 2.0**-600]]


def test_a_bar_that_overflows_the_dtype_is_refused():
    with pytest.raises(ValueError, match="longer than the largest torch.float32"):
        rips_persistence(torch.tensor([[-3e38], [3e38]]), max_dim=0)
    # the same bar fits float64
    assert rips_persistence(torch.tensor([[-3e38], [3e38]], dtype=torch.float64), max_dim=0).to_list(0)[0].tolist() == [
        [0.0, 6e38]
    ]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@settings(max_examples=30, deadline=None)
@given(cloud=clouds(max_points=12, kinds=("gaussian", "circle", "grid", "duplicates")), data=st.data())
@example(cloud=np.array([[0.0], [1.0], [3.0]]), data=None)
def test_scaling_by_a_power_of_two_scales_the_diagram(cloud, dtype, data):
    """dgm(2^k x) = 2^k dgm(x) across the whole range of the dtype (native H0 to H2)."""
    top = {torch.float32: 100, torch.float64: 900}[dtype]
    exponent = data.draw(st.integers(-top, top)) if data is not None else -top
    x = torch.tensor(cloud, dtype=dtype)
    scaled = torch.ldexp(x, torch.tensor(exponent))
    ours = rips_persistence(scaled, max_dim=2, keep_infinite=True)
    reference = rips_persistence(x, max_dim=2, keep_infinite=True)
    rtol = {torch.float32: 1e-5, torch.float64: 1e-12}[dtype]
    for d in range(3):
        finite, infinite = finite_and_infinite(ours, d)
        ref_finite, ref_infinite = finite_and_infinite(reference, d)
        assert infinite == ref_infinite
        assert_same_diagram(finite * 2.0**-exponent, ref_finite.numpy(), rtol)


# --------------------------------------------------------------------------- max_edge: exact lengths decide
ISSUE_CLOUD = [[105.12, 109.5], [101.44, 109.49], [103.12, 104.23], [108.28, 104.09], [105.5, 100.28], [107.54, 105.38]]


@pytest.mark.parametrize("backend", BACKENDS)
def test_an_edge_exactly_max_edge_long_is_in_the_filtration(backend):
    x = torch.tensor(ISSUE_CLOUD, dtype=torch.float64)
    max_edge = float(torch.linalg.norm(x[1] - x[2]))
    assert max_edge == 5.5217750769114025
    dgm = rips_persistence(x, max_dim=1, max_edge=max_edge, keep_infinite=True, backend=backend)
    h1 = np.array(sorted(map(tuple, dgm.to_list(1)[0].tolist())))
    assert len(h1) == 2 and tuple(h1[1]) == (max_edge, math.inf)
    # gudhi on the points (its own float64 distances), ripser and giotto-ph give the same bars
    tree = gudhi.RipsComplex(points=ISSUE_CLOUD, max_edge_length=max_edge).create_simplex_tree(max_dimension=2)
    tree.compute_persistence()
    references = [(tree.persistence_intervals_in_dimension(1), 1e-12)]
    ripser = pytest.importorskip("ripser")
    # ripser and giotto-ph keep filtration values in float32: the same bars, to float32's rounding
    references.append((ripser.ripser(np.array(ISSUE_CLOUD), maxdim=1, thresh=max_edge)["dgms"][1], 1e-7))
    gph = pytest.importorskip("gph")
    references.append((gph.ripser_parallel(np.array(ISSUE_CLOUD), maxdim=1, thresh=max_edge)["dgms"][1], 1e-7))
    for reference, rtol in references:
        np.testing.assert_allclose(np.array(sorted(map(tuple, reference.tolist()))), h1, rtol=rtol)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), n=st.integers(3, 11), dim=st.sampled_from([2, 3, 8]), data=st.data())
def test_max_edge_set_at_an_edge_length_matches_gudhi_on_exact_distances(backend, dtype, seed, n, dim, data):
    rng = np.random.default_rng(seed)
    x = torch.tensor(rng.normal(size=(n, dim)) * 10 + 100, dtype=dtype)  # offset: the product form rounds
    i, j = torch.triu_indices(n, n, 1)
    exact = edge_lengths(x[None], torch.stack([i, j], -1)[None])[0]
    max_edge = float(exact[data.draw(st.integers(0, exact.numel() - 1))])
    dgm = rips_persistence(x, max_dim=2, max_edge=max_edge, keep_infinite=True, backend=backend)
    matrix = np.zeros((n, n))
    matrix[i, j] = matrix[j, i] = exact.double().numpy()
    reference = gudhi_with_essential(matrix, 2, max_edge)
    for d in range(3):
        finite, infinite = finite_and_infinite(dgm, d)
        assert infinite == reference[d][1], f"dimension {d}"
        assert_same_diagram(finite, reference[d][0], 1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
def test_max_edge_rule_is_the_same_for_a_distance_matrix(backend):
    x = torch.tensor(ISSUE_CLOUD, dtype=torch.float64)
    matrix = torch.cdist(x, x, compute_mode="donot_use_mm_for_euclid_dist")
    max_edge = float(matrix[1, 2])
    from_points = rips_persistence(x, max_dim=1, max_edge=max_edge, keep_infinite=True, backend=backend)
    from_matrix = rips_persistence(distances=matrix, max_dim=1, max_edge=max_edge, keep_infinite=True, backend=backend)
    for d in (0, 1):
        assert sorted(from_points.to_list(d)[0].tolist()) == sorted(from_matrix.to_list(d)[0].tolist())


# --------------------------------------------------------------------------- empty batches
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("max_dim", [0, 1, 2])
def test_an_empty_batch_gives_empty_diagrams(backend, max_dim):
    points = torch.randn(0, 10, 3, requires_grad=True)
    for dgm in (
        rips_persistence(points, max_dim, backend=backend),
        rips_persistence(distances=torch.zeros(0, 10, 10), max_dim=max_dim, backend=backend),
        rips_persistence(points, max_dim, mask=torch.zeros(0, 10, dtype=torch.bool), backend=backend),
    ):
        assert dgm.batch_size == 0 and len(dgm.pairs) == max_dim + 1
        for pairs, mask in zip(dgm.pairs, dgm.mask):
            assert pairs.shape[0] == 0 and pairs.shape[2] == 2 and mask.shape == pairs.shape[:2]
    dgm = rips_persistence(points, max_dim, backend=backend)
    dgm.pairs[0].sum().backward()
    assert points.grad.shape == points.shape


# --------------------------------------------------------------------------- argument errors
@pytest.mark.parametrize(
    "kwargs,error,match",
    [
        (dict(max_edge="a"), TypeError, "max_edge must be a number"),
        (dict(max_edge=None, max_dim=1.0), TypeError, "max_dim must be an int"),
        (dict(max_dim="1"), TypeError, "max_dim must be an int"),
        (dict(max_dim=-1), ValueError, "max_dim must be >= 0"),
        (dict(max_dim=True), TypeError, "max_dim must be an int"),
        (dict(keep_infinite=np.True_), TypeError, "keep_infinite must be a bool"),
        (dict(max_edge=float("nan")), ValueError, "max_edge must be a non-negative"),
        (dict(max_edge=-0.5), ValueError, "max_edge must be a non-negative"),
        (dict(backend="gudhi", num_workers=-1), ValueError, "num_workers must be >= 1"),
        (dict(backend="gudhi", num_workers=0), ValueError, "num_workers must be >= 1"),
        (dict(backend="gudhi", num_workers=2.5), TypeError, "num_workers must be an int"),
        (dict(keep_infinite="yes"), TypeError, "keep_infinite must be a bool"),
        (dict(backend="fast"), ValueError, "backend must be one of"),
        (dict(mask=torch.ones(2, 5)), TypeError, "mask must be a bool tensor"),
        (dict(mask=torch.ones(2, 5, dtype=torch.bool, device="meta")), ValueError, "mask is on the 'meta' device"),
    ],
)
def test_errors_name_the_argument(kwargs, error, match):
    with pytest.raises(error, match=match):
        rips_persistence(torch.randn(2, 5, 3), **kwargs)


@pytest.mark.parametrize(
    "kwargs,error,match",
    [
        (dict(points=torch.empty(2, 5, 3, device="meta")), ValueError, "points is on the 'meta' device"),
        (dict(distances=torch.empty(2, 5, 5, device="meta")), ValueError, "distances is on the 'meta' device"),
        (dict(distances=torch.zeros(3, 3, dtype=torch.long)), TypeError, "distances must be a floating-point"),
        (dict(distances=torch.zeros(2, 3, 4)), ValueError, "distances must have shape"),
        (dict(points=torch.zeros(2, 3, 4, 5)), ValueError, "points must have shape"),
        (dict(points=torch.zeros(2, 3, 4, dtype=torch.long)), TypeError, "points must be a floating-point"),
        (dict(points=[[0.0, 1.0], [1.0, 0.0]]), TypeError, "points must be a torch.Tensor"),
        (dict(points=torch.zeros(2, 0, 4)), ValueError, "points must hold at least one point"),
        (dict(points=torch.zeros(3, 0)), ValueError, "points must hold at least one point"),
        (dict(points=torch.randn(5, 3).to_sparse()), TypeError, "points must be a dense"),
        (dict(distances=torch.ones(4, 4).fill_diagonal_(0).to_sparse()), TypeError, "distances must be a dense"),
        (dict(points=torch.randn(2, 5, 3), mask=torch.ones(2, 5, dtype=torch.bool).to_sparse()), TypeError,
         "mask must be a dense"),
    ],
)
def test_tensor_errors_name_the_argument(kwargs, error, match):
    with pytest.raises(error, match=match):
        rips_persistence(**kwargs)


def test_a_mask_on_another_device_than_what_it_masks_is_refused():
    # Every public function with a mask checks it with check_mask, which names both tensors; the
    # meta device stands in for an accelerator here (a CPU mask beside CUDA points).
    from torchtopo._checks import check_mask

    mask = torch.ones(2, 5, dtype=torch.bool)
    with pytest.raises(ValueError, match=r"mask must be on the device of points \(meta\), got cpu"):
        check_mask(mask, (2, 5), masks=("points", torch.empty(2, 5, 3, device="meta")))
    check_mask(mask, (2, 5), masks=("points", torch.empty(2, 5, 3)))


def test_module_checks_its_arguments_at_construction():
    with pytest.raises(TypeError, match="max_edge"):
        VietorisRips(max_edge="a")
    with pytest.raises(ValueError, match="num_workers"):
        VietorisRips(backend="gudhi", num_workers=0)
    with pytest.raises(TypeError, match="max_dim"):
        VietorisRips(max_dim=1.5)


def test_infinite_max_edge_is_no_cut():
    x = torch.randn(2, 12, 3)
    for d in (0, 1):
        assert torch.equal(rips_persistence(x, 1, max_edge=math.inf).pairs[d], rips_persistence(x, 1).pairs[d])


# --------------------------------------------------------------------------- the diagonal of a matrix
def test_cdist_output_is_accepted_and_a_non_zero_diagonal_refused():
    x = torch.randn(3, 60, 16) * 10 + 50  # cdist's matrix-product form: diagonal ~1e-3 of the scale
    matrix = torch.cdist(x, x)
    assert matrix.diagonal(dim1=1, dim2=2).abs().max() > 0
    dgm = rips_persistence(distances=matrix, max_dim=1)
    reference = rips_persistence(x, max_dim=1)
    assert torch.allclose(dgm.pairs[0], reference.pairs[0], rtol=1e-2, atol=1e-2)
    births = matrix.clone()
    births[1, 4, 4] = 0.05 * matrix[1].max()  # ripser would read a vertex birth time
    with pytest.raises(ValueError, match="zero diagonal"):
        rips_persistence(distances=births)
    double = torch.cdist(x.double(), x.double())
    double[0, 0, 0] = 1e-5 * double[0].max()  # far above float64 rounding
    with pytest.raises(ValueError, match="zero diagonal"):
        rips_persistence(distances=double)
    # far from the origin, cdist's rounding (on and off the diagonal) is a few percent of the
    # distances: refused, with what to do
    far = torch.randn(2, 50, 16) + 100
    with pytest.raises(ValueError, match="centre the clouds"):
        rips_persistence(distances=torch.cdist(far, far))
    exact = torch.cdist(far, far, compute_mode="donot_use_mm_for_euclid_dist")
    assert torch.allclose(rips_persistence(distances=exact).pairs[0], rips_persistence(far).pairs[0], rtol=1e-5)


# --------------------------------------------------------------------------- NaN in masked padding
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("max_dim", [0, 1, 2])
def test_masked_padding_is_never_read_nan_included(backend, max_dim):
    real = torch.from_numpy(make_cloud("circle", 12, 3, seed=7))
    points = torch.cat([torch.full((3, 3), float("nan")), real, torch.full((2, 3), float("inf"))]).requires_grad_()
    mask = torch.zeros(17, dtype=torch.bool)
    mask[3:15] = True
    dgm = rips_persistence(points, max_dim, mask=mask, backend=backend)
    reference = rips_persistence(real, max_dim, backend=backend)
    for d in range(max_dim + 1):
        assert_same_diagram(dgm.to_list(d)[0], reference.to_list(d)[0].numpy(), 1e-12)
    sum(dgm.persistence(d).sum() for d in range(max_dim + 1)).backward()
    assert torch.isfinite(points.grad).all() and (points.grad[~mask] == 0).all()

    matrix = torch.cdist(real, real, compute_mode="donot_use_mm_for_euclid_dist")
    padded = torch.full((17, 17), float("nan"), dtype=torch.float64)
    padded[3:15, 3:15] = matrix
    from_matrix = rips_persistence(distances=padded, max_dim=max_dim, mask=mask, backend=backend)
    for d in range(max_dim + 1):
        assert_same_diagram(from_matrix.to_list(d)[0], reference.to_list(d)[0].numpy(), 1e-12)
    with pytest.raises(ValueError, match="points must be finite"):
        rips_persistence(points.detach(), max_dim, backend=backend)  # NaN in a real point


def test_pairwise_distances_never_read_masked_points():
    real = torch.randn(1, 9, 4, dtype=torch.float64)
    padded = torch.cat([real, torch.full((1, 3, 4), float("nan"), dtype=torch.float64)], dim=1)
    mask = torch.arange(12).unsqueeze(0) < 9
    got = pairwise_distances(padded, mask)
    torch.testing.assert_close(got[:, :9, :9], pairwise_distances(real), rtol=1e-12, atol=1e-12)
    assert torch.isinf(got[:, 9:, :9]).all() and (got.diagonal(dim1=1, dim2=2) == 0).all()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("max_dim", [0, 1])
def test_a_max_edge_far_beyond_every_edge_is_no_cut(dtype, max_dim):
    x = torch.randn(2, 10, 3, dtype=dtype)
    for max_edge in (1e30, 1e200, 1.7e308):
        dgm = rips_persistence(x, max_dim, max_edge=max_edge)
        for d in range(max_dim + 1):
            assert torch.equal(dgm.pairs[d], rips_persistence(x, max_dim).pairs[d])
