"""Diagram distances: agreement with gudhi (Wasserstein with POT, bottleneck, sliced Wasserstein)
on hypothesis diagrams, infinite bars, gradients through the matching, Sinkhorn's error bound,
padding, dtypes, errors."""

import math
import warnings

import gudhi
import numpy as np
import pytest
import torch
from gudhi.representations import SlicedWassersteinDistance
from gudhi.wasserstein import wasserstein_distance as gudhi_wasserstein
from hypothesis import example, given, settings
from hypothesis import strategies as st

from torchtopo import Diagrams
from torchtopo.distances import bottleneck_distance, sliced_wasserstein_distance, wasserstein_distance

INF = math.inf
# a few round values (ties, duplicates, points on the diagonal) and arbitrary ones
value = st.one_of(st.sampled_from([0.0, 0.5, 1.0, 1.5, 2.5]), st.floats(0.0, 3.0, allow_subnormal=False))
finite_pair = st.tuples(value, value).map(sorted)
essential_pair = st.one_of(value.map(lambda b: [b, INF]), value.map(lambda d: [-INF, d]), st.just([-INF, INF]))
diagram = st.lists(finite_pair, max_size=25)
with_essential = st.tuples(diagram, st.lists(essential_pair, max_size=3)).map(lambda t: t[0] + t[1])
batches = st.integers(1, 4).flatmap(lambda n: st.tuples(st.lists(diagram, min_size=n, max_size=n),
                                                        st.lists(diagram, min_size=n, max_size=n)))
ORDERS = [(1.0, INF), (2.0, INF), (1.0, 2.0), (2.0, 1.0), (1.5, 3.0)]
MANY = [[0.01 * i, 0.01 * i + 0.5 + 0.003 * (i % 7)] for i in range(150)]


def as_array(d):
    return np.array(d, dtype=np.float64).reshape(-1, 2)


def as_tensors(diagrams, dtype=torch.float64):
    return [torch.tensor(d, dtype=dtype).reshape(-1, 2) for d in diagrams]


def assert_equal_values(ours, reference, tol=1e-9):
    ours, reference = np.asarray(ours, dtype=np.float64), np.asarray(reference, dtype=np.float64)
    assert ours.shape == reference.shape
    assert (np.isinf(ours) == np.isinf(reference)).all(), (ours, reference)
    finite = np.isfinite(reference)
    np.testing.assert_allclose(ours[finite], reference[finite], rtol=tol, atol=tol)


def brute_bottleneck(a, b):
    """The bottleneck distance of two finite diagrams by brute force: the smallest candidate
    distance at which the (points + diagonal copies) bipartite graph has a perfect matching."""
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import maximum_bipartite_matching

    a, b = as_array(a), as_array(b)
    n, m = len(a), len(b)
    cost = np.abs(a[:, None, :] - b[None, :, :]).max(-1) if n and m else np.zeros((n, m))
    to_diag_a, to_diag_b = np.abs(a[:, 1] - a[:, 0]) / 2, np.abs(b[:, 1] - b[:, 0]) / 2
    for t in np.unique(np.concatenate([cost.ravel(), to_diag_a, to_diag_b, [0.0]])):
        edges = np.zeros((n + m, m + n), dtype=np.int8)
        edges[:n, :m] = cost <= t
        edges[np.arange(n), m + np.arange(n)] = to_diag_a <= t
        edges[n + np.arange(m), np.arange(m)] = to_diag_b <= t
        edges[n:, m:] = 1
        if (maximum_bipartite_matching(csr_matrix(edges), perm_type="column") >= 0).all():
            return float(t)


def gudhi_w(a, b, order, internal_p, keep=True):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Cardinality of essential parts differs"
        return gudhi_wasserstein(as_array(a), as_array(b), order=order, internal_p=internal_p,
                                 keep_essential_parts=keep)


@pytest.mark.parametrize("order, internal_p", ORDERS)
@given(pairs=batches)
@example(pairs=([[]], [[]]))
@example(pairs=([[[0.0, 1.0], [0.0, 1.0], [1.0, 1.0]]], [[]]))
@example(pairs=([MANY], [MANY[::-1][:120]]))
def test_wasserstein_equals_gudhi(order, internal_p, pairs):
    a, b = pairs
    reference = [gudhi_w(x, y, order, internal_p) for x, y in zip(a, b)]
    assert_equal_values(wasserstein_distance(as_tensors(a), as_tensors(b), order=order, internal_p=internal_p),
                        reference)
    # a single pair as two (k, 2) tensors gives a scalar
    single = wasserstein_distance(as_tensors(a[:1])[0], as_tensors(b[:1])[0], order=order, internal_p=internal_p)
    assert single.shape == () and single.item() == pytest.approx(reference[0], rel=1e-9, abs=1e-9)


@given(pairs=batches)
@example(pairs=([[]], [[]]))
@example(pairs=([[[1.0, 1.0]]], [[[0.0, 2.0], [0.0, 2.0]]]))
@example(pairs=([MANY], [MANY[::-1][:120]]))
def test_bottleneck_equals_gudhi(pairs):
    a, b = pairs
    reference = [gudhi.bottleneck_distance(as_array(x), as_array(y), 0) for x, y in zip(a, b)]
    assert_equal_values(bottleneck_distance(as_tensors(a), as_tensors(b)), reference)


# Real-valued diagrams (no round values): the brute force is the oracle, since gudhi 3.13 errs on
# about 1% of such pairs, both its exact (e=0) and its default mode (the examples: e=0 gives
# 0.6718 on the first, the default 0.4845 on the second, both 0.017343 on the third, 0.016721).
real_value = st.floats(0.0, 2.0, allow_subnormal=False)
real_diagram = st.lists(st.tuples(real_value, real_value).map(sorted), max_size=6)


@given(pairs=st.integers(1, 3).flatmap(lambda n: st.tuples(st.lists(real_diagram, min_size=n, max_size=n),
                                                              st.lists(real_diagram, min_size=n, max_size=n))))
@example(pairs=([[[0.09642464, 1.20754985], [1.94264929, 1.99143097], [0.1006365, 0.28241232]]],
                [[[0.7935515, 1.30635836], [0.76818985, 1.81088672], [1.18173498, 1.58631759],
                  [1.31794511, 1.42560454], [0.70189733, 1.32170729]]]))
@example(pairs=([[[0.9193499065540498, 1.7909478142952961], [0.9702543513792807, 1.510236213120254],
                  [0.6343585533343592, 1.4174045228647676], [0.5314161374731663, 1.7797305272734076],
                  [0.01235365756855633, 1.442331572233684]]],
                [[[0.2876505445418469, 1.497799688976973], [0.858741386589525, 1.3374562595241097]]]))
@example(pairs=(  # H1 of two 50-point noisy circles (bench_distances, 128 pairs, pair 121): gudhi 0.017343
    [[[0.5960831714959958, 0.6127822793841586], [0.579707943780031, 1.504878585210741],
      [0.3550145612404582, 0.3581163842419212], [0.22425391573265607, 0.2264207065165173]]],
    [[[0.5859182105380324, 1.5208899592540452], [0.240785257774234, 0.27422698217868247],
      [0.22657996479418238, 0.2437637527614516], [0.16903924602173848, 0.1714415029173886]]]))
def test_bottleneck_equals_a_brute_force(pairs):
    a, b = pairs
    ours = bottleneck_distance(as_tensors(a), as_tensors(b))
    assert ours.tolist() == [brute_bottleneck(x, y) for x, y in zip(a, b)]  # (one of the input distances)


@pytest.mark.parametrize(
    "a, b, expected",
    [
        ([[], [[0.0, 1.0]], []], [[], [], [[0.0, 3.0], [1.0, 1.5]]], [0.0, 0.5, 1.5]),  # empty entries
        ([[[0.0, 1.0]]], [[[0.2, 1.1]]], [0.2]),  # one point each: matched
        ([[[0.0, 1.0]]], [[[5.0, 5.2]]], [0.5]),  # one point each: both to the diagonal
        ([[[0.0, INF], [1.0, INF], [0.0, 1.0]], [[0.0, INF]]], [[[0.5, INF], [3.0, INF]], [[0.0, 1.0]]], [2.0, INF]),
        ([[[-INF, 1.0], [-INF, INF], [INF, INF]]], [[[-INF, 4.0], [-INF, INF]]], [3.0]),
    ],
)
def test_bottleneck_small_lists(a, b, expected):
    assert bottleneck_distance(as_tensors(a), as_tensors(b)).tolist() == expected
    assert bottleneck_distance(as_tensors(b), as_tensors(a)).tolist() == expected
    assert_equal_values(expected, [gudhi.bottleneck_distance(as_array(x), as_array(y)) for x, y in zip(a, b)])


def test_bottleneck_gradient_follows_the_bottleneck_edge():
    # per pair: the essential bars (1, inf) -> (3, inf) (births sorted and matched in order); a
    # point to the diagonal; a pair matched in its death column; different counts of essential
    # bars (inf, zero gradient)
    a = [torch.tensor([[0.0, INF], [1.0, INF], [0.0, 1.0]]), torch.tensor([[0.0, 1.0]]),
         torch.tensor([[0.0, 1.0], [2.0, 2.1]]), torch.tensor([[0.0, 1.0], [0.0, INF]])]
    b = [torch.tensor([[3.0, INF], [0.5, INF]]), torch.tensor([[5.0, 5.2]]),
         torch.tensor([[0.1, 1.3]]), torch.tensor([[0.0, 1.2]])]
    for t in a + b:
        t.requires_grad_(True)
    distance = bottleneck_distance(a, b)
    assert distance.tolist() == pytest.approx([2.0, 0.5, 0.3, INF])
    (distance[:3].sum() + distance[3] * 0).backward()  # (d inf / d x = 0: the last pair adds nothing)
    assert a[0].grad.tolist() == [[0.0, 0.0], [-1.0, 0.0], [0.0, 0.0]]
    assert b[0].grad.tolist() == [[1.0, 0.0], [0.0, 0.0]]
    assert a[1].grad.tolist() == [[-0.5, 0.5]] and b[1].grad.tolist() == [[0.0, 0.0]]
    assert a[2].grad.tolist() == [[0.0, -1.0], [0.0, 0.0]] and b[2].grad.tolist() == [[0.0, 1.0]]
    assert a[3].grad.tolist() == [[0.0, 0.0], [0.0, 0.0]] and b[3].grad.tolist() == [[0.0, 0.0]]


@pytest.mark.parametrize("call", [wasserstein_distance, bottleneck_distance, sliced_wasserstein_distance,
                                  lambda a, b: wasserstein_distance(a, b, method="sinkhorn")])
def test_an_empty_diagram_that_requires_grad_gives_a_result_that_does(call):
    a = torch.zeros(0, 2, requires_grad=True)
    distance = call(a, torch.tensor([[0.0, 1.0]]))
    assert distance.requires_grad and distance.item() > 0
    distance.backward()
    assert a.grad.shape == (0, 2)


def test_bottleneck_on_threads_equals_one_thread():
    # enough work per call (B Kx Ky (Kx + Ky)) for the pool: ranges of pairs on two threads
    rng = np.random.default_rng(3)
    a = [torch.from_numpy(np.sort(rng.uniform(0, 2, (150, 2)), 1)) for _ in range(6)]
    b = [torch.from_numpy(np.sort(rng.uniform(0, 2, (140, 2)), 1)) for _ in range(6)]
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = bottleneck_distance(a, b)
        torch.set_num_threads(2)
        two = bottleneck_distance(a, b)
    finally:
        torch.set_num_threads(before)
    assert torch.equal(one, two)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@given(pairs=batches, essential=st.lists(essential_pair, max_size=2))
def test_bottleneck_value_is_the_same_with_and_without_gradients(dtype, pairs, essential):
    # (without a gradient to follow, the edge's difference is taken in NumPy instead of torch)
    a, b = as_tensors([d + essential for d in pairs[0]], dtype), as_tensors(pairs[1], dtype)
    plain = bottleneck_distance(a, b)
    tracked = bottleneck_distance([t.requires_grad_(True) for t in a], b)
    assert tracked.requires_grad and plain.dtype == tracked.dtype == dtype
    assert torch.equal(plain, tracked.detach())


@pytest.mark.parametrize("num_directions", [2, 10, 33])
@given(pairs=batches)
@example(pairs=([[]], [[]]))
def test_sliced_wasserstein_equals_gudhi(num_directions, pairs):
    a, b = pairs
    metric = SlicedWassersteinDistance(num_directions=num_directions)
    reference = [metric(as_array(x), as_array(y)) for x, y in zip(a, b)]
    ours = sliced_wasserstein_distance(as_tensors(a), as_tensors(b), num_directions=num_directions)
    assert_equal_values(ours, reference)


@given(a=with_essential, b=with_essential)
@example(a=[[0.0, 1.0], [0.0, INF], [2.0, INF]], b=[[0.0, 1.5], [1.0, INF], [5.0, INF]])
@example(a=[[-INF, 1.0], [-INF, INF]], b=[[-INF, 3.0], [-INF, INF], [0.5, 0.75]])
@example(a=[[0.0, INF]], b=[])
def test_infinite_bars_as_gudhi_keep_essential_parts(a, b):
    ta, tb = as_tensors([a]), as_tensors([b])
    for order, internal_p in ORDERS[:3]:
        assert_equal_values(wasserstein_distance(ta, tb, order=order, internal_p=internal_p),
                            [gudhi_w(a, b, order, internal_p)])
    assert_equal_values(bottleneck_distance(ta, tb), [gudhi.bottleneck_distance(as_array(a), as_array(b), 0)])
    # infinite="drop" is gudhi on the finite parts
    fa, fb = (as_array(d)[np.isfinite(as_array(d)).all(1)] for d in (a, b))
    assert_equal_values(wasserstein_distance(ta, tb, order=2.0, infinite="drop"), [gudhi_w(fa, fb, 2.0, INF)])
    assert_equal_values(bottleneck_distance(ta, tb, infinite="drop"), [gudhi.bottleneck_distance(fa, fb, 0)])
    metric = SlicedWassersteinDistance(num_directions=10)
    assert_equal_values(sliced_wasserstein_distance(ta, tb), [metric(fa, fb)])


def test_points_at_infinity_on_the_diagonal_cost_nothing():
    a, b = [[0.0, 1.0], [INF, INF], [-INF, -INF]], [[0.0, 1.5]]
    reference = gudhi_w(a, b, 1.0, INF)
    assert wasserstein_distance(torch.tensor(a), torch.tensor(b)).item() == pytest.approx(reference)
    assert bottleneck_distance(torch.tensor(a), torch.tensor(b)).item() == pytest.approx(
        gudhi.bottleneck_distance(as_array(a), as_array(b), 0))


def test_different_counts_of_infinite_bars_give_inf_with_zero_gradient():
    a = torch.tensor([[0.0, 1.0], [0.0, INF]], requires_grad=True)
    b = torch.tensor([[0.0, 1.2]])
    for distance in (wasserstein_distance(a, b, order=2.0), bottleneck_distance(a, b)):
        assert distance.item() == INF
        a.grad = None
        distance.backward()
        assert a.grad.eq(0).all()


# Diagrams whose values are well apart: the optimal matching is unique and stays so under the
# finite differences, so the gradient of the distance is the gradient of its matching's cost.
SEPARATED_A = [[0.1, 1.3], [0.35, 0.9], [0.8, 2.2], [1.5, 1.62]]
SEPARATED_B = [[0.2, 1.1], [0.7, 2.45], [1.1, 1.95]]


@pytest.mark.parametrize("order, internal_p", ORDERS)
def test_wasserstein_gradcheck_where_the_matching_is_unique(order, internal_p):
    a = torch.tensor(SEPARATED_A, dtype=torch.float64, requires_grad=True)
    b = torch.tensor(SEPARATED_B, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x, y: wasserstein_distance(x, y, order=order, internal_p=internal_p),
                                    (a, b))


def test_bottleneck_and_sliced_gradcheck():
    a = torch.tensor(SEPARATED_A, dtype=torch.float64, requires_grad=True)
    b = torch.tensor(SEPARATED_B, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(bottleneck_distance, (a, b))
    assert torch.autograd.gradcheck(lambda x, y: sliced_wasserstein_distance(x, y, num_directions=7), (a, b))


def test_exact_gradients_on_a_hand_made_pair():
    # W2 with the Euclidean ground metric: (0, 2) matched to (0, 3) costs 1; (1, 1.5) goes to the
    # diagonal at distance 0.5 / sqrt(2). W2^2 = 1 + 1/8 =: w^2, and d w = d(w^2) / (2 w).
    a = torch.tensor([[0.0, 2.0], [1.0, 1.5]], dtype=torch.float64, requires_grad=True)
    b = torch.tensor([[0.0, 3.0]], dtype=torch.float64, requires_grad=True)
    distance = wasserstein_distance(a, b, order=2.0, internal_p=2.0)
    w = math.sqrt(1.125)
    assert distance.item() == pytest.approx(w, rel=1e-15)
    distance.backward()
    # (2 - d_b)^2: +2 for the death of b, -2 for the death of a; (d - b)^2 / 2: (-(d - b), d - b)
    torch.testing.assert_close(b.grad, torch.tensor([[0.0, 1 / w]], dtype=torch.float64))
    torch.testing.assert_close(a.grad, torch.tensor([[0.0, -1 / w], [-0.25 / w, 0.25 / w]], dtype=torch.float64))
    # bottleneck: the edge (0, 2) -> (0, 3) of length 1 decides
    a.grad = b.grad = None
    bottleneck_distance(a, b).backward()
    assert b.grad.tolist() == [[0.0, 1.0]] and a.grad.tolist() == [[0.0, -1.0], [0.0, 0.0]]


@settings(max_examples=15)
@given(pairs=batches)
@example(pairs=([MANY], [MANY[::-1][:120]]))
def test_sinkhorn_is_an_upper_bound_close_to_the_exact_distance(pairs):
    a, b = as_tensors(pairs[0]), as_tensors(pairs[1])
    exact = wasserstein_distance(a, b)
    approx = wasserstein_distance(a, b, method="sinkhorn")
    # the cost of a true plan (rounded onto the marginals): never below the optimum
    assert (approx >= exact * (1 - 1e-9) - 1e-12).all()
    # the documented accuracy of the defaults (1e-2 of the distance at worst), plus what the
    # regularisation leaves between identical diagrams, a fraction of their size
    size = wasserstein_distance(a, [torch.zeros(0, 2)] * len(a)) + wasserstein_distance(b, [torch.zeros(0, 2)] * len(b))
    assert (approx <= exact * 1.03 + 1e-6 * size).all(), (approx, exact)


def test_sinkhorn_converges_to_the_exact_distance_as_epsilon_shrinks():
    rng = np.random.default_rng(5)
    a = [torch.from_numpy(np.sort(rng.uniform(0, 2, (n, 2)), 1)) for n in (12, 20, 3)]
    b = [torch.from_numpy(np.sort(rng.uniform(0, 2, (n, 2)), 1)) for n in (15, 18, 0)]
    exact = wasserstein_distance(a, b, order=2.0)
    errors = [float(((wasserstein_distance(a, b, order=2.0, method="sinkhorn", epsilon=eps, max_iter=3000, tol=1e-4)
                      - exact) / exact).max()) for eps in (1e-1, 1e-2, 1e-3)]
    assert errors[0] > errors[1] > errors[2] >= 0 and errors[2] < 3e-3, errors


def test_sinkhorn_gradient_matches_the_exact_one_where_the_matching_is_unique():
    a = torch.tensor(SEPARATED_A, dtype=torch.float64, requires_grad=True)
    b = torch.tensor(SEPARATED_B, dtype=torch.float64)
    exact = torch.autograd.grad(wasserstein_distance(a, b, order=2.0), a)[0]
    approx = torch.autograd.grad(wasserstein_distance(a, b, order=2.0, method="sinkhorn", epsilon=1e-3,
                                                      max_iter=5000, tol=1e-7), a)[0]
    torch.testing.assert_close(approx, exact, rtol=0, atol=2e-2)


@pytest.mark.parametrize("method", ["exact", "sinkhorn", "bottleneck", "sliced"])
@settings(max_examples=15)
@given(data=st.data(), pairs=batches)
def test_padding_and_permutation_never_change_a_result(method, data, pairs):
    call = {
        "exact": wasserstein_distance,
        "sinkhorn": lambda x, y: wasserstein_distance(x, y, method="sinkhorn", epsilon=0.05),
        "bottleneck": bottleneck_distance,
        "sliced": sliced_wasserstein_distance,
    }[method]
    a, b = as_tensors(pairs[0]), as_tensors(pairs[1])
    reference = torch.stack([call(x, y) for x, y in zip(a, b)])

    def padded(diagrams):
        k = max(t.shape[0] for t in diagrams) + 2
        pairs_, mask = torch.full((len(diagrams), k, 2), math.nan, dtype=torch.float64), torch.zeros(
            len(diagrams), k, dtype=torch.bool)
        for i, t in enumerate(diagrams):
            order = torch.tensor(data.draw(st.permutations(range(k))))
            rows = torch.cat([t, torch.full((k - t.shape[0], 2), math.nan, dtype=torch.float64)])
            pairs_[i], mask[i] = rows[order], (torch.arange(k) < t.shape[0])[order]
        edges = torch.full((len(diagrams), k, 2), -1)
        return Diagrams((pairs_,), (mask,), (edges,), (edges.clone(),))

    # (Sinkhorn's pairs run alone in a batch: padding changes only the rounding)
    tol = 1e-9 if method == "sinkhorn" else 1e-12
    torch.testing.assert_close(call(padded(a), padded(b)), reference, rtol=tol, atol=tol)
    if method != "sinkhorn":  # (whose two sides are updated in turn: symmetric only approximately)
        torch.testing.assert_close(call(b, a), reference, rtol=1e-12, atol=1e-12)


def test_diagrams_input_with_dims():
    dgm_a = Diagrams.from_list([[torch.tensor([[0.0, 1.0]])], [torch.tensor([[0.2, 0.9], [0.3, 0.4]])]])
    dgm_b = Diagrams.from_list([[torch.tensor([[0.0, 2.0]])], [torch.tensor([[0.2, 0.7]])]])
    h1 = wasserstein_distance(dgm_a, dgm_b, dim=1)
    assert h1.shape == (1,)
    assert h1.item() == pytest.approx(gudhi_w([[0.2, 0.9], [0.3, 0.4]], [[0.2, 0.7]], 1.0, INF))
    assert wasserstein_distance(dgm_a.unbatch(), dgm_b.unbatch(), dim=0).item() == pytest.approx(1.0)
    with pytest.raises(ValueError, match="dim is required"):
        bottleneck_distance(dgm_a, dgm_b)
    with pytest.raises(ValueError, match="dim must be in"):
        sliced_wasserstein_distance(dgm_a, dgm_b, dim=2)


@pytest.mark.parametrize("half", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("call", [wasserstein_distance, bottleneck_distance, sliced_wasserstein_distance,
                                  lambda a, b: wasserstein_distance(a, b, method="sinkhorn")])
def test_half_precision_is_computed_in_float32(half, call):
    a = torch.tensor([[0.0, 1.0], [0.25, 1.5]], dtype=half, requires_grad=True)
    b = torch.tensor([[0.0, 2.0]], dtype=half)
    out = call(a, b)
    assert out.dtype == half
    torch.testing.assert_close(out, call(a.detach().float(), b.float()).to(half), rtol=0, atol=0)
    out.float().backward()
    assert a.grad.dtype == half and torch.isfinite(a.grad.float()).all()


def test_float32_agrees_with_float64():
    rng = np.random.default_rng(0)
    a = [np.sort(rng.uniform(0, 2, (n, 2)), 1) for n in (7, 0, 12)]
    b = [np.sort(rng.uniform(0, 2, (n, 2)), 1) for n in (5, 9, 0)]
    for call in (wasserstein_distance, bottleneck_distance, sliced_wasserstein_distance):
        single = call(as_tensors(a, torch.float32), as_tensors(b, torch.float32))
        double = call(as_tensors(a), as_tensors(b))
        assert single.dtype == torch.float32
        torch.testing.assert_close(single.double(), double, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda: wasserstein_distance([torch.zeros(1, 2)], [torch.zeros(1, 2)] * 2), ValueError, "same number"),
        (lambda: wasserstein_distance(torch.zeros(1, 2), [torch.zeros(1, 2)]), ValueError, "same number"),
        (lambda: wasserstein_distance(torch.zeros(2, 1, 2), torch.zeros(1, 2)), ValueError, r"\(k, 2\)"),
        (lambda: wasserstein_distance(torch.zeros(1, 2, dtype=torch.long), torch.zeros(1, 2)), TypeError, "floating"),
        (lambda: wasserstein_distance("a", torch.zeros(1, 2)), TypeError, "Diagrams"),
        (lambda: wasserstein_distance([], [torch.zeros(1, 2)]), ValueError, "empty"),
        (lambda: wasserstein_distance(torch.zeros(1, 2), torch.zeros(1, 2), order=0.5), ValueError, "order"),
        (lambda: wasserstein_distance(torch.zeros(1, 2), torch.zeros(1, 2), order=INF), ValueError, "order"),
        (lambda: wasserstein_distance(torch.zeros(1, 2), torch.zeros(1, 2), internal_p=0.5), ValueError, "internal_p"),
        (lambda: wasserstein_distance(torch.zeros(1, 2), torch.zeros(1, 2), method="emd"), ValueError, "method"),
        (lambda: wasserstein_distance(torch.zeros(1, 2), torch.zeros(1, 2), method="sinkhorn", epsilon=0),
         ValueError, "epsilon"),
        (lambda: wasserstein_distance(torch.zeros(1, 2), torch.zeros(1, 2), method="sinkhorn", max_iter=2.5),
         TypeError, "max_iter"),
        (lambda: wasserstein_distance(torch.zeros(1, 2), torch.zeros(1, 2), infinite="raise"), ValueError, "infinite"),
        (lambda: wasserstein_distance(torch.tensor([[0.0, math.nan]]), torch.zeros(1, 2)), ValueError, "NaN"),
        (lambda: bottleneck_distance(torch.tensor([[INF, 1.0]]), torch.zeros(1, 2)), ValueError, "not a diagram"),
        (lambda: bottleneck_distance(torch.tensor([[0.0, -INF]]), torch.zeros(1, 2)), ValueError, "not a diagram"),
        # every pair is checked before any is solved; a's NaN is named before b's
        (lambda: bottleneck_distance([torch.zeros(1, 2), torch.tensor([[INF, 1.0]])],
                                     [torch.tensor([[0.0, math.nan]]), torch.zeros(1, 2)]),
         ValueError, "^a contains a"),
        (lambda: bottleneck_distance([torch.zeros(1, 2), torch.tensor([[INF, 1.0]])],
                                     [torch.zeros(1, 2), torch.tensor([[0.0, math.nan]])], infinite="drop"),
         ValueError, "^a contains a"),
        (lambda: bottleneck_distance([torch.zeros(1, 2)] * 2, [torch.zeros(1, 2), torch.tensor([[0.0, math.nan]])]),
         ValueError, "^b contains NaN"),
        (lambda: bottleneck_distance([torch.zeros(1, 2), torch.zeros(2)], [torch.zeros(1, 2)] * 2), ValueError,
         r"a\[1\] must be a \(k, 2\)"),
        (lambda: wasserstein_distance([torch.zeros(1, 2)] * 2, [torch.zeros(1, 2), torch.zeros(1, 2).long()]),
         TypeError, r"b\[1\] must be a floating"),
        (lambda: sliced_wasserstein_distance(torch.zeros(1, 2), torch.zeros(1, 2), num_directions=1), ValueError,
         "num_directions"),
        (lambda: sliced_wasserstein_distance(torch.tensor([[0.0, INF]]), torch.zeros(1, 2), infinite="raise"),
         ValueError, "infinite"),
    ],
)
def test_bad_input_raises(call, error, match):
    with pytest.raises(error, match=match):
        call()
