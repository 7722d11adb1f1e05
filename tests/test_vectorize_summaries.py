"""Landscape, Silhouette, BettiCurve, PersistenceEntropy: agreement with gudhi.representations
(fit included), gradients, padding, half precision, the fit in state_dict, errors."""

import io
import json
import math
import warnings

import numpy as np
import pytest
import torch
from gudhi.representations import BettiCurve as GudhiBetti
from gudhi.representations import Entropy as GudhiEntropy
from gudhi.representations import Landscape as GudhiLandscape
from gudhi.representations import Silhouette as GudhiSilhouette
from hypothesis import example, given
from hypothesis import strategies as st
from torch import nn

from torchtopo import Diagrams
from torchtopo.vectorize import (
    BettiCurve,
    Landscape,
    PersistenceEntropy,
    PersistenceImage,
    PowerWeight,
    Silhouette,
    betti_curve,
    persistence_entropy,
    persistence_landscape,
    persistence_silhouette,
)

TOL = {torch.float32: 1e-5, torch.float64: 1e-9}
coord = st.floats(0.0, 3.0, width=32, allow_subnormal=False)  # float32 values, exact in float64
pair = st.tuples(coord, coord).map(sorted)
diagram_lists = st.lists(st.lists(pair, max_size=30), min_size=1, max_size=5)
# ties, duplicates, points on the diagonal, an empty diagram, many points
adversarial = [[[0.0, 1.0], [0.0, 1.0], [0.5, 0.5], [2.0, 3.0]], [], [[1.0, 1.0]]]
many = [[[0.01 * i, 0.01 * i + 0.5 + 0.003 * (i % 7)] for i in range(300)], [[0.0, 3.0]]]
NAN = float("nan")


def as_tensors(diagrams, dtype):
    return [torch.tensor(d, dtype=dtype).reshape(-1, 2) for d in diagrams]


def gudhi_fit_transform(ref, fitted_on, transformed):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # gudhi's own 0 / 0 warnings; the NaNs are handled below
        return ref.fit(fitted_on).transform(transformed)


# (our module, gudhi's estimator, whether gudhi's 0 log 0 / 0 / 0 must be taken out first)
CASES = {
    "landscape": lambda: (Landscape(3, 17), GudhiLandscape(3, 17)),
    "landscape-range": lambda: (Landscape(2, 9, (0.25, None)), GudhiLandscape(2, 9, [0.25, np.nan])),
    "landscape-endpoints": lambda: (Landscape(4, 6, keep_endpoints=True), GudhiLandscape(4, 6, keep_endpoints=True)),
    "silhouette": lambda: (Silhouette(resolution=13), GudhiSilhouette(resolution=13)),
    "silhouette-power": lambda: (Silhouette(PowerWeight(2), 11, (None, 3.0)),
                                 GudhiSilhouette(lambda x: (x[1] - x[0]) ** 2, 11, [np.nan, 3.0])),
    "betti": lambda: (BettiCurve(19), GudhiBetti(19)),
    "betti-exact": lambda: (BettiCurve(None), GudhiBetti(None)),
    "betti-endpoints": lambda: (BettiCurve(7, keep_endpoints=True), GudhiBetti(7, keep_endpoints=True)),
    "betti-grid": lambda: (BettiCurve(predefined_grid=[-np.inf, 0.0, 0.5, 1.0, 1.25, 3.0, np.inf]),
                           GudhiBetti(predefined_grid=np.array([-np.inf, 0.0, 0.5, 1.0, 1.25, 3.0, np.inf]))),
    "entropy": lambda: (PersistenceEntropy(), GudhiEntropy()),
    "entropy-vector": lambda: (PersistenceEntropy("vector", resolution=12), GudhiEntropy("vector", resolution=12)),
    "entropy-vector-raw": lambda: (PersistenceEntropy("vector", False, 7, (0.0, None)),
                                   GudhiEntropy("vector", False, 7, [0.0, np.nan])),
    "entropy-vector-endpoints": lambda: (PersistenceEntropy("vector", resolution=5, keep_endpoints=True),
                                         GudhiEntropy("vector", resolution=5, keep_endpoints=True)),
}


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("case", list(CASES))
@given(diagrams=diagram_lists)
@example(diagrams=adversarial)
@example(diagrams=many)
@example(diagrams=[[[0.5, 2.0]], [[0.5, 2.0]]])
def test_gudhi_agreement(case, dtype, diagrams):
    ours, ref = CASES[case]()
    if not any(diagrams) and ours._needs_fit() and case != "betti-exact":  # the exact grid is just -inf
        with pytest.raises(ValueError, match="no finite diagram point"):
            ours.fit(as_tensors(diagrams, dtype))
        return
    tensors = as_tensors(diagrams, dtype)
    exact = [t.double().numpy() for t in tensors]  # gudhi sees exactly our values
    values = np.concatenate(exact)
    data = (values[:, 0].min(initial=np.inf), values[:, 1].max(initial=-np.inf))
    lo, hi = (d if v is None else v for v, d in zip(ours.sample_range, data))
    if case.startswith("entropy-vector") and lo == hi:
        with pytest.raises(ValueError, match="single value"):  # gudhi divides by a zero step
            ours.fit(tensors)
        return
    # Documented departures where gudhi gives NaN: a pair of zero persistence has 0 log 0 = 0 (so
    # it is left out of gudhi's input), and a zero total weight or zero summary gives 0.
    kept = [d[d[:, 1] > d[:, 0]] for d in exact] if case.startswith("entropy") else exact
    expected = gudhi_fit_transform(ref, exact, kept)
    out = ours.fit(tensors)(tensors)
    assert out.dtype == dtype and out.shape[0] == len(diagrams)
    flat = out.flatten(1).double().numpy()
    assert flat.shape == expected.shape
    undefined = np.isnan(expected)
    assert (flat[undefined] == 0).all()
    scale = max(np.abs(expected[~undefined]).max(initial=0.0), 3.0)
    np.testing.assert_allclose(flat[~undefined], expected[~undefined], rtol=0, atol=TOL[dtype] * scale)


@given(diagrams=diagram_lists, data=st.data())
def test_functional_forms_match_gudhi_on_explicit_grids(diagrams, data):
    resolution = data.draw(st.integers(2, 30))
    lo = data.draw(st.floats(-1, 2))
    hi = lo + data.draw(st.floats(0.1, 3))
    tensors = as_tensors(diagrams, torch.float64)
    exact = [t.numpy() for t in tensors]
    padded = Diagrams.from_list([tensors])
    pairs, mask = padded.pairs[0], padded.mask[0]
    kw = dict(sample_range=(lo, hi), resolution=resolution)
    checks = [
        (persistence_landscape(pairs, mask=mask, num_landscapes=3, **kw), GudhiLandscape(3, resolution, [lo, hi])),
        (persistence_silhouette(pairs, mask=mask, weight="linear", **kw),
         GudhiSilhouette(lambda x: x[1] - x[0], resolution, [lo, hi])),
        (betti_curve(pairs, mask=mask, **kw), GudhiBetti(resolution, [lo, hi])),
        (persistence_entropy(pairs, mask=mask, mode="vector", normalized=False, **kw),
         GudhiEntropy("vector", False, resolution, [lo, hi])),
    ]
    kept = [d[d[:, 1] > d[:, 0]] for d in exact]
    for out, ref in checks:
        expected = gudhi_fit_transform(ref, exact, kept if isinstance(ref, GudhiEntropy) else exact)
        expected = np.where(np.isnan(expected), 0.0, expected)
        np.testing.assert_allclose(out.flatten(1).numpy(), expected, rtol=0, atol=1e-9 * max(1.0, np.abs(expected).max()))


@pytest.mark.parametrize("module", ["landscape", "curves"])
@given(diagrams=diagram_lists, data=st.data())
def test_tensor_path_of_accelerators_equals_the_compiled_cpu_path(module, diagrams, data):
    """Off the CPU, landscapes and silhouettes are tensor operations (topk, a weighted sum) instead
    of numba kernels: the same numbers, and the same gradients."""
    import torchtopo.vectorize.curves
    import torchtopo.vectorize.landscape

    grid = sorted(data.draw(st.lists(st.floats(-0.5, 3.5), min_size=1, max_size=20)))
    if data.draw(st.booleans()):
        grid = grid[::-1]  # an unsorted grid takes the kernels' other branch
    dgm = [t.requires_grad_(True) for t in as_tensors(diagrams, torch.float64)]
    fn = (lambda d: persistence_landscape(d, grid=grid, num_landscapes=3)) if module == "landscape" else (
        lambda d: persistence_silhouette(d, grid=grid, weight=PowerWeight(2)))
    results = []
    for kernel in (True, False):
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(getattr(torchtopo.vectorize, module), "compiled", lambda x: kernel)
            out = torch.stack([fn(d) for d in dgm])
            grads = torch.autograd.grad(out.sum(), dgm, allow_unused=True, materialize_grads=True)
        results.append((out.detach(), torch.cat(grads)))
    torch.testing.assert_close(results[0][0], results[1][0], rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(results[0][1], results[1][1], rtol=1e-12, atol=1e-12)


def test_landscape_gradient_is_exact_on_a_hand_made_pair():
    # One pair (b, d) = (1, 3): at x = 1.5 (left of the midpoint) lambda_1 = sqrt(2) (x - b).
    dgm = torch.tensor([[1.0, 3.0]], dtype=torch.float64, requires_grad=True)
    value = persistence_landscape(dgm, grid=[1.5], num_landscapes=1)[0, 0]
    assert value.item() == pytest.approx(math.sqrt(2) * 0.5, rel=1e-15)
    value.backward()
    assert dgm.grad.tolist() == [[-math.sqrt(2), 0.0]]


def test_entropy_closed_forms():
    # Bars of persistence 1, 1, 2: p = (1/4, 1/4, 1/2), E = 1.5 log 2.
    dgm = torch.tensor([[0.0, 1.0], [1.0, 2.0], [0.0, 2.0]], dtype=torch.float64, requires_grad=True)
    value = persistence_entropy(dgm)
    assert value.shape == (1,) and value.item() == pytest.approx(1.5 * math.log(2), rel=1e-15)
    # dE/dl_j = -(log p_j + E) / L with L = 4 the total persistence; death +, birth -.
    value.backward()
    grad = torch.tensor([-(math.log(p) + 1.5 * math.log(2)) / 4 for p in (0.25, 0.25, 0.5)], dtype=torch.float64)
    torch.testing.assert_close(dgm.grad, torch.stack([-grad, grad], 1), rtol=1e-14, atol=1e-15)
    # a bar of zero persistence: 0 log 0 = 0 and a zero (not NaN) gradient
    flat = torch.tensor([[0.0, 1.0], [0.5, 0.5]], requires_grad=True)
    persistence_entropy(flat).backward()
    assert persistence_entropy(flat).item() == 0.0 and torch.isfinite(flat.grad).all()


@pytest.mark.parametrize("fn, kw", [
    (persistence_landscape, dict(num_landscapes=2)),
    (persistence_silhouette, dict(weight=PowerWeight(2))),
    (persistence_entropy, dict(mode="vector", normalized=True, resolution=6)),
    (persistence_entropy, dict(mode="scalar")),
])
def test_gradcheck(fn, kw):
    dgm = torch.tensor([[[0.1, 0.9], [0.3, 0.55], [0.2, 0.25]], [[0.0, 1.2], [0.4, 0.7], [0.0, 0.0]]],
                       dtype=torch.float64, requires_grad=True)
    mask = torch.tensor([[True, True, True], [True, True, False]])
    # no pair on an entropy sample boundary (0.03 + 0.2 i): the summary jumps there
    grid = dict(sample_range=(0.03, 1.03)) if fn is persistence_entropy and kw["mode"] == "vector" else {}
    if fn is not persistence_entropy:
        grid = dict(grid=[0.05, 0.33, 0.47, 0.61, 0.8])
    assert torch.autograd.gradcheck(lambda d: fn(d, mask=mask, **grid, **kw), dgm)


@pytest.mark.parametrize("make", [
    lambda: Landscape(3, 8, (0.0, 3.0)),
    lambda: Silhouette("linear", 8, (0.0, 3.0)),
    lambda: BettiCurve(8, (0.0, 3.0)),
    lambda: PersistenceEntropy("vector", resolution=8, sample_range=(0.0, 3.0)),
    lambda: PersistenceEntropy(),
])
@given(data=st.data(), diagrams=diagram_lists)
def test_padding_and_permutation_never_change_a_result(make, data, diagrams):
    module = make()
    tensors = as_tensors(diagrams, torch.float64)
    reference = torch.stack([module(t) for t in tensors])
    k = max(t.shape[0] for t in tensors) + 3
    padded = torch.full((len(tensors), k, 2), math.nan, dtype=torch.float64)  # garbage padding
    mask = torch.zeros(len(tensors), k, dtype=torch.bool)
    for b, t in enumerate(tensors):
        order = torch.tensor(data.draw(st.permutations(range(k))))
        rows = torch.cat([t, torch.full((k - t.shape[0], 2), math.nan, dtype=torch.float64)])
        padded[b], mask[b] = rows[order], (torch.arange(k) < t.shape[0])[order]
    torch.testing.assert_close(module(padded, mask=mask), reference, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("make", [
    lambda: PersistenceImage((4, 3), 0.5, dims=(0, 1)),
    lambda: Landscape(2, 5, dims=(0, 1)),
    lambda: Silhouette(resolution=5, dims=(0, 1)),
    lambda: BettiCurve(None, dims=(0, 1)),
    lambda: PersistenceEntropy("vector", resolution=5, dims=(0, 1)),
])
def test_fit_survives_state_dict_of_a_parent_module(make):
    dgm = Diagrams.from_list([[torch.tensor([[0.0, 0.5], [0.0, 1.5]]), torch.tensor([[0.0, 0.9]])],
                              [torch.tensor([[0.3, 0.6]]), torch.tensor([[0.2, 1.1], [0.4, 0.5]])]])
    parent = nn.Sequential(nn.Linear(2, 2), make().fit(dgm))
    buffer = io.BytesIO()
    torch.save(parent.state_dict(), buffer)
    buffer.seek(0)
    clone = nn.Sequential(nn.Linear(2, 2), make())
    with pytest.raises(RuntimeError, match="not fitted"):
        clone[1](dgm)
    clone.load_state_dict(torch.load(buffer, weights_only=True))
    assert clone[1].is_fitted
    torch.testing.assert_close(clone[1](dgm), parent[1](dgm), rtol=0, atol=0)
    assert clone[1](dgm).shape == (2, clone[1].num_features)
    # an unfitted state unfits; a state of the wrong number of dimensions is refused
    clone.load_state_dict(nn.Sequential(nn.Linear(2, 2), make()).state_dict())
    assert not clone[1].is_fitted
    state = parent.state_dict()
    state["1._extra_state"] = {"fitted": {k: v[:1] for k, v in state["1._extra_state"]["fitted"].items()}}
    with pytest.raises(ValueError, match="one entry per dimension"):
        clone.load_state_dict(state)


@pytest.mark.parametrize("make", [
    lambda: Landscape(3, 7, (None, 2.0), keep_endpoints=True, dims=(0,)),
    lambda: Silhouette(PowerWeight(1.5), 7),
    lambda: BettiCurve(predefined_grid=[0.0, 1.0]),
    lambda: BettiCurve(None),
    lambda: PersistenceEntropy("vector", False, 9, infinite="raise"),
])
def test_config_round_trip_is_json_and_exact(make):
    dgms = [torch.tensor([[0.0, 0.4], [0.1, 1.1]]), torch.tensor([[0.2, 0.7]])]
    module = make().fit(dgms)
    config = json.loads(json.dumps(module.to_config()))
    clone = type(module).from_config(config)
    assert clone.to_config() == module.to_config()
    assert torch.equal(clone(dgms), module(dgms))
    assert repr(clone) == repr(module)


@pytest.mark.parametrize("fn, kw", [
    (persistence_landscape, dict(sample_range=(0, 2), resolution=9)),
    (persistence_silhouette, dict(sample_range=(0, 2), resolution=9, weight="linear")),
    (betti_curve, dict(sample_range=(0, 2), resolution=9)),
    (persistence_entropy, dict(mode="vector", sample_range=(0, 2), resolution=9)),
    (persistence_entropy, dict()),
])
@pytest.mark.parametrize("half", [torch.float16, torch.bfloat16])
def test_half_precision_is_computed_in_float32(fn, kw, half):
    dgm = torch.tensor([[0.0, 1.0], [0.25, 1.5], [0.5, 0.75]], dtype=half, requires_grad=True)
    out = fn(dgm, **kw)
    assert out.dtype == half
    torch.testing.assert_close(out, fn(dgm.detach().float(), **kw).to(half), rtol=0, atol=0)
    if fn is not betti_curve:
        out.float().sum().backward()
        assert dgm.grad.dtype == half and torch.isfinite(dgm.grad.float()).all()


def test_infinite_bars_are_dropped_or_raise():
    dgm = torch.tensor([[0.0, 1.0], [0.2, math.inf]])
    for module in (Landscape(2, 5, (0, 1)), Silhouette(resolution=5, sample_range=(0, 1)),
                   BettiCurve(5, (0, 1)), PersistenceEntropy()):
        torch.testing.assert_close(module(dgm), module(dgm[:1]))
        with pytest.raises(ValueError, match="infinite deaths"):
            type(module).from_config({**module.to_config(), "infinite": "raise"})(dgm)
    fitted = Landscape(2, 5).fit([dgm])
    assert fitted.sample_range_ == [(0.0, 1.0)]


def test_several_dims_concatenate_in_order_and_unbatched_input():
    h0, h1 = torch.tensor([[0.0, 0.5], [0.0, 0.9]]), torch.tensor([[0.3, 0.6]])
    dgm = Diagrams.from_list([[h0], [h1]])
    landscape = Landscape(2, 4, (0, 1), dims=(1, 0))
    out = landscape(dgm)
    assert out.shape == (1, landscape.num_features) == (1, 16)
    torch.testing.assert_close(out[0, :8], persistence_landscape(h1, sample_range=(0, 1), resolution=4,
                                                                 num_landscapes=2).flatten())
    assert landscape(dgm.unbatch()).shape == (16,)
    assert Landscape(2, 4, (0, 1))(h1).shape == (2, 4)
    assert PersistenceEntropy()(h1).shape == (1,)


def test_betti_curve_counts_from_birth_to_death():
    dgm = torch.tensor([[0.0, 1.0], [0.5, 1.0], [1.0, 2.0]])
    assert betti_curve(dgm, grid=[-1.0, 0.0, 0.5, 1.0, 2.0, math.inf]).tolist() == [0, 1, 2, 1, 0, 0]


def test_silhouette_of_zero_weights_is_zero():
    flat = torch.tensor([[[0.5, 0.5]], [[0.0, 0.0]]])
    out = persistence_silhouette(flat, grid=[0.0, 0.5, 1.0], weight="linear")
    assert out.eq(0).all()


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda: Landscape(resolution=2.7), TypeError, "resolution"),
        (lambda: Landscape(num_landscapes=0), ValueError, "num_landscapes"),
        (lambda: Landscape(sample_range=0), TypeError, "sample_range"),
        (lambda: Landscape(sample_range=("a", 1)), TypeError, "sample_range"),
        (lambda: Landscape(sample_range=(2, 1)), ValueError, "sample_range"),
        (lambda: Silhouette(resolution=True), TypeError, "resolution"),
        (lambda: BettiCurve(predefined_grid=[]), ValueError, "predefined_grid"),
        (lambda: BettiCurve(predefined_grid=[0.0, NAN]), ValueError, "NaN"),
        (lambda: PersistenceEntropy("vector", resolution=1), ValueError, "resolution"),
        (lambda: PersistenceEntropy("matrix"), ValueError, "mode"),
        (lambda: Landscape(dims=(0, 0)), ValueError, "dims"),
        (lambda: Landscape(dims=(0.5,)), TypeError, "dims"),
        (lambda: Landscape(infinite="keep"), ValueError, "infinite"),
        (lambda: Landscape()(torch.zeros(1, 2)), RuntimeError, "not fitted"),
        (lambda: Landscape().fit([torch.zeros(0, 2)]), ValueError, "no finite diagram point"),
        (lambda: persistence_landscape(torch.zeros(1, 2)), ValueError, "sample_range"),
        (lambda: persistence_landscape(torch.zeros(1, 2), sample_range=(0, 1), grid=[0.0]), ValueError, "exactly one"),
        (lambda: persistence_landscape(torch.zeros(1, 2), grid=[[0.0]]), ValueError, "grid"),
        (lambda: persistence_landscape(torch.zeros(1, 3), grid=[0.0]), ValueError, "shape"),
        (lambda: persistence_landscape(torch.zeros(1, 2, dtype=torch.long), grid=[0.0]), TypeError, "floating"),
        (lambda: persistence_landscape(torch.tensor([[NAN, 1.0]]), grid=[0.0]), ValueError, "NaN"),
        (lambda: persistence_silhouette(torch.zeros(1, 2), grid=[0.0], weight=lambda b, p: 1.0), ValueError,
         "weight must return"),
        (lambda: betti_curve(torch.zeros(2, 2), mask=torch.ones(2), grid=[0.0]), TypeError, "mask"),
        (lambda: persistence_entropy(torch.tensor([[1.0, 0.0]])), ValueError, "death >= birth"),
        (lambda: persistence_entropy(torch.zeros(1, 2), mode="vector"), ValueError, "sample_range"),
        (lambda: persistence_entropy(torch.zeros(1, 2), mode="vector", sample_range=(1, 1), resolution=3),
         ValueError, "positive length"),
        (lambda: Silhouette(weight=lambda b, p: p).to_config(), TypeError, "plain-callable"),
    ],
)
def test_bad_input_raises(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_a_tent_of_height_zero_has_no_gradient_on_either_path():
    """Regression (hypothesis, CI stop 19): a pair on the diagonal sampled at its own birth; the
    tensor path's clamp passed a gradient through the tent's 0, the compiled path did not."""
    import torchtopo.vectorize.landscape

    for kernel in (True, False):
        dgm = torch.zeros(1, 2, dtype=torch.float64, requires_grad=True)
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(torchtopo.vectorize.landscape, "compiled", lambda x: kernel)
            (grad,) = torch.autograd.grad(persistence_landscape(dgm, grid=[0.0], num_landscapes=3).sum(), dgm)
        assert torch.equal(grad, torch.zeros_like(grad))
