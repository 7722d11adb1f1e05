"""PersistenceImage: agreement with gudhi and persim, gradients, invariances, errors, config."""

import json
import math

import numpy as np
import pytest
import torch
from gudhi.representations import PersistenceImage as GudhiPI
from hypothesis import example, given
from hypothesis import strategies as st
from persim import PersistenceImager
from scipy.spatial.distance import pdist

from torchtopo.diagrams import Diagrams
from torchtopo.vectorize import (
    ConstantWeight,
    PersistenceImage,
    PowerWeight,
    TopKDWeight,
    get_weight,
    persistence_curve,
    persistence_image,
)

TOL = {torch.float32: 1e-6, torch.float64: 1e-12}
GUDHI_WEIGHTS = {  # our name -> gudhi's weight on a (birth, persistence) point
    "constant": lambda x: 1.0,
    "linear": lambda x: x[1],
    "topkd": lambda x: 10 * np.tanh(x[1]) + 10 * np.log1p(100 * x[0]),  # log1p: exact for tiny births
}

coord = st.floats(0.0, 3.0, width=32, allow_subnormal=False)  # float32 values; subnormals carry no relative precision
pair = st.tuples(coord, coord).map(sorted)
diagram_lists = st.lists(st.lists(pair, max_size=40), min_size=1, max_size=5)
many_points = [[[0.01 * i, 0.01 * i + 0.5 + 0.003 * (i % 7)] for i in range(300)], []]


def as_tensors(diagrams, dtype):
    return [torch.tensor(d, dtype=dtype).reshape(-1, 2) for d in diagrams]


def assert_close_to_peak(out: np.ndarray, ref: np.ndarray, dtype: torch.dtype, flushable: float = 0.0) -> None:
    """``|out - ref| <= TOL * peak`` plus what the documented flush may remove: axis kernel values
    below ``sqrt(finfo.tiny)`` are 0, at most ``sqrt(tiny) * flushable`` per pixel, where
    ``flushable`` is a diagram's total weight times the kernel's normalisation."""
    allowed = TOL[dtype] * np.abs(ref).max() + torch.finfo(dtype).tiny ** 0.5 * flushable
    assert np.abs(out - ref).max() <= allowed


def total_weight(diagrams: list[np.ndarray], weight) -> float:
    """The largest sum of |w| over the points of one diagram."""
    return max((sum(abs(weight((b, d - b))) for b, d in dgm) for dgm in diagrams), default=0.0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("weight", list(GUDHI_WEIGHTS))
@given(
    diagrams=diagram_lists,
    bandwidth=st.floats(0.05, 2.0),
    resolution=st.tuples(st.integers(1, 25), st.integers(1, 25)),
    fitted=st.booleans(),
)
@example(diagrams=[[], []], bandwidth=0.3, resolution=(5, 4), fitted=False)
@example(diagrams=many_points, bandwidth=0.05, resolution=(25, 25), fitted=True)
@example(diagrams=[[[1.0, 1.0], [1.0, 1.0]]], bandwidth=0.1, resolution=(3, 3), fitted=True)
@example(diagrams=[[[0.0, 1.0]]], bandwidth=0.0625, resolution=(1, 1), fitted=False)  # peak at u = 16
@example(diagrams=[[[0.2, 1.0]]], bandwidth=0.125, resolution=(1, 3), fitted=False)  # peak at u = 1.6
@example(diagrams=[[[0.0, 1.375]]], bandwidth=0.05078125, resolution=(1, 1), fitted=False)  # float64 flush
@example(diagrams=[[[1.121350516782027e-12] * 2]], bandwidth=1.0, resolution=(1, 1), fitted=False)  # tiny birth
def test_gudhi_agreement(dtype, weight, diagrams, bandwidth, resolution, fitted):
    tensors = as_tensors(diagrams, dtype)
    exact = [t.double().numpy() for t in tensors]  # gudhi sees exactly our input values
    fitted = fitted and any(len(d) for d in diagrams)
    im_range = [np.nan] * 4 if fitted else [0.0, 3.0, 0.0, 3.0]  # holds every point
    if dtype == torch.float32:
        # float32 holds exp's argument -u^2/2 to ~1e-7 of itself, so a pixel u sigmas away from
        # every point is off by ~u^2 1e-7 of its value (documented). Keep the peak within ~1 sigma
        # of a point, as in any useful image: sigma >= half the grid spacing.
        bandwidth = max(bandwidth, 3.0 / (2 * max(min(resolution) - 1, 1)))
    ref = GudhiPI(bandwidth, GUDHI_WEIGHTS[weight], list(resolution), im_range).fit_transform(exact)
    pi = PersistenceImage(resolution, bandwidth, weight, None if fitted else im_range).fit(tensors)
    out = pi(tensors)
    assert out.dtype == dtype and out.shape == (len(diagrams), resolution[1], resolution[0])
    flushable = total_weight(exact, GUDHI_WEIGHTS[weight]) / (2 * math.pi * bandwidth**2)
    assert_close_to_peak(out.flatten(1).double().numpy(), ref, dtype, flushable)


unit = st.floats(0, 1, allow_subnormal=False)
unit_lists = st.lists(st.lists(st.tuples(unit, unit), max_size=40), min_size=1, max_size=5)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@given(
    unit_points=unit_lists,
    bandwidth=st.floats(0.05, 2.0),
    n_birth=st.integers(1, 20),
    n_pers=st.integers(1, 20),
    origin=st.tuples(st.integers(-8, 4), st.integers(0, 4)),  # persistence >= 0, as in any diagram
    power=st.sampled_from([1.0, 2.0]),
)
@example(unit_points=[[]], bandwidth=1.0, n_birth=3, n_pers=2, origin=(0, 0), power=1.0)
@example(unit_points=[[(0.5, 0.5)]], bandwidth=1.75, n_birth=1, n_pers=1, origin=(1, 2), power=1.0)  # narrow pixel
@example(unit_points=[[(i / 300, (i % 7) / 7) for i in range(300)], []], bandwidth=0.05, n_birth=20, n_pers=20,
         origin=(0, 0), power=1.0)
def test_persim_agreement(dtype, unit_points, bandwidth, n_birth, n_pers, origin, power):
    pixel = 0.25  # a power of two: persim's own edge arithmetic is then exact
    birth_range = (origin[0] * pixel, (origin[0] + n_birth) * pixel)
    pers_range = (origin[1] * pixel, (origin[1] + n_pers) * pixel)
    if dtype == torch.float32:
        bandwidth = max(bandwidth, pixel / 2)  # see test_gudhi_agreement
    tensors = []
    for cloud in unit_points:  # (birth, persistence) inside the image, so that every point counts
        u = torch.tensor(cloud, dtype=torch.float64).reshape(-1, 2)
        birth = birth_range[0] + u[:, 0] * n_birth * pixel
        tensors.append(torch.stack([birth, birth + pers_range[0] + u[:, 1] * n_pers * pixel], 1).to(dtype))
    imager = PersistenceImager(birth_range=birth_range, pers_range=pers_range, pixel_size=pixel,
                               weight_params={"n": power}, kernel_params={"sigma": bandwidth**2})
    ref = np.stack([imager.transform(t.double().numpy()) for t in tensors])  # (B, birth, pers)
    pi = PersistenceImage((n_birth, n_pers), bandwidth, PowerWeight(power), birth_range + pers_range,
                          convention="persim")
    out = pi(tensors).transpose(1, 2).double().numpy()
    assert out.shape == ref.shape
    assert_close_to_peak(out, ref, dtype, total_weight([t.double().numpy() for t in tensors], lambda x: x[1] ** power))


@pytest.mark.parametrize("convention", ["gudhi", "persim"])
@given(deaths=st.lists(coord, max_size=30), bandwidth=st.floats(0.05, 1.0), n=st.integers(1, 30))
@example(deaths=[1.90625], bandwidth=0.05, n=1)  # a subnormal curve
def test_curve_is_the_image_without_birth_axis(convention, deaths, bandwidth, n):
    h0 = torch.tensor([[0.0, d] for d in deaths], dtype=torch.float64).reshape(-1, 2)
    curve = persistence_curve(h0, pers_range=(0, 3), resolution=n, bandwidth=bandwidth, convention=convention)
    # A single birth pixel: gudhi samples the birth Gaussian at its mean, 1 / (sqrt(2 pi) sigma);
    # persim integrates it over a pixel wide enough to hold all its mass.
    birth = (0.0, 0.0) if convention == "gudhi" else (-50.0, 50.0)
    image = persistence_image(h0, im_range=birth + (0, 3), resolution=(1, n), bandwidth=bandwidth,
                              convention=convention)
    factor = 1 / (math.sqrt(2 * math.pi) * bandwidth) if convention == "gudhi" else 1.0
    atol = max(1e-12 * curve.abs().max().item(), 1e-300)  # subnormal peaks keep no relative precision
    torch.testing.assert_close(image[:, 0], curve * factor, rtol=1e-12, atol=atol)


def test_h0_curve_matches_gudhi_image_column():
    h0 = torch.tensor([[0.0, 0.3], [0.0, 0.8], [0.0, 0.8], [0.0, math.inf]])
    pi = PersistenceImage((20, 20), 0.1, "topkd", dims=(0,)).fit(Diagrams.from_list([[h0]]))
    curve = pi(Diagrams.from_list([[h0]]))
    gudhi = GudhiPI(0.1, GUDHI_WEIGHTS["topkd"], [20, 20], list(pi.range_[0])).fit_transform([h0[:3].double().numpy()])
    column = gudhi.reshape(20, 20)[:, 0] * math.sqrt(2 * math.pi) * 0.1
    assert curve.shape == (1, 20)
    assert_close_to_peak(curve[0].double().numpy(), column, torch.float32)


@pytest.mark.parametrize("convention", ["gudhi", "persim"])
def test_gradcheck(convention):
    dgm = torch.tensor([[[0.1, 0.9], [0.3, 0.5], [0.2, 0.2]], [[0.0, 1.2], [0.4, 0.7], [0.0, 0.0]]],
                       dtype=torch.float64, requires_grad=True)
    mask = torch.tensor([[True, True, True], [True, True, False]])
    kw = dict(bandwidth=0.3, convention=convention)
    assert torch.autograd.gradcheck(
        lambda d: persistence_image(d, mask=mask, im_range=(0, 0.5, 0, 1), resolution=(4, 3), weight="topkd", **kw), dgm)
    assert torch.autograd.gradcheck(
        lambda d: persistence_curve(d, mask=mask, pers_range=(0, 1), resolution=5, weight="linear", **kw), dgm)


@given(data=st.data(), diagrams=diagram_lists)
def test_padding_and_permutation_invariance(data, diagrams):
    tensors = as_tensors(diagrams, torch.float64)
    kw = dict(im_range=(0, 3, 0, 3), resolution=(7, 6), bandwidth=0.4, weight="topkd")
    reference = torch.stack([persistence_image(t, **kw) for t in tensors])
    k = max(t.shape[0] for t in tensors) + 3
    padded = torch.full((len(tensors), k, 2), math.nan, dtype=torch.float64)  # garbage padding
    mask = torch.zeros(len(tensors), k, dtype=torch.bool)
    for b, t in enumerate(tensors):
        order = torch.tensor(data.draw(st.permutations(range(k))))
        rows = torch.cat([t, torch.full((k - t.shape[0], 2), math.nan, dtype=torch.float64)])
        padded[b], mask[b] = rows[order], (torch.arange(k) < t.shape[0])[order]
    torch.testing.assert_close(persistence_image(padded, mask=mask, **kw), reference, rtol=1e-12, atol=1e-12)


def test_infinite_bars_dropped_or_raise():
    dgm = torch.tensor([[0.0, 1.0], [0.2, math.inf]], requires_grad=True)
    kw = dict(im_range=(0, 1, 0, 1), resolution=(5, 5), bandwidth=0.3, weight="linear")
    image = persistence_image(dgm, **kw)
    torch.testing.assert_close(image, persistence_image(dgm[:1], **kw))
    image.sum().backward()
    assert torch.isfinite(dgm.grad).all() and dgm.grad[1].eq(0).all()
    with pytest.raises(ValueError, match="infinite deaths"):
        persistence_image(dgm, infinite="raise", **kw)


def test_unbatched_list_and_diagrams_inputs_agree():
    a, b = torch.tensor([[0.0, 1.0], [0.1, 0.4]]), torch.tensor([[0.2, 0.5]])
    pi = PersistenceImage((6, 4), 0.2, im_range=(0, 1, 0, 1), dims=(0,), h0="image")
    batch = pi([a, b])
    assert pi(a).shape == (4, 6)
    torch.testing.assert_close(batch[0], pi(a))
    torch.testing.assert_close(pi(Diagrams.from_list([[a, b]])), batch)
    torch.testing.assert_close(pi(Diagrams.from_list([[a]]).unbatch()), pi(a))


def test_several_dims_concatenate_in_order():
    h0, h1 = torch.tensor([[0.0, 0.5], [0.0, 0.9]]), torch.tensor([[0.3, 0.6]])
    dgm = Diagrams.from_list([[h0], [h1]])
    pi = PersistenceImage((5, 4), 0.2, im_range=(0, 1, 0, 1), dims=(0, 1))
    out = pi(dgm)
    assert out.shape == (1, pi.num_features) == (1, 4 + 20)
    torch.testing.assert_close(out[0, :4], persistence_curve(h0, pers_range=(0, 1), resolution=4, bandwidth=0.2))
    torch.testing.assert_close(out[0, 4:], persistence_image(h1, im_range=(0, 1, 0, 1), resolution=(5, 4), bandwidth=0.2).flatten())
    assert pi(dgm.unbatch()).shape == (24,)


def test_dtype_device_follow_input_and_default_weight_is_gudhis():
    dgm = torch.tensor([[0.0, 1.0]], dtype=torch.float64)
    out = PersistenceImage((3, 3), im_range=(0, 1, 0, 1))(dgm)
    assert out.dtype == torch.float64 and out.device == dgm.device
    assert out.max().item() == pytest.approx(1 / (2 * math.pi))  # unit weight, sigma 1, peak on the grid


def test_fit_quantile_bandwidth_range_and_normalize():
    rng = np.random.default_rng(0)
    diagrams = [np.sort(rng.uniform(0, 2, (n, 2)), 1) for n in (5, 0, 9)]
    tensors = as_tensors(diagrams, torch.float64)
    pi = PersistenceImage((8, 8), "quantile", im_range=(0.0, None, None, 2.0), quantile=0.3, normalize=True).fit(tensors)
    points = np.concatenate([np.stack([d[:, 0], d[:, 1] - d[:, 0]], 1) for d in diagrams])
    assert pi.bandwidth_[0] == pytest.approx(np.quantile(pdist(points), 0.3), rel=1e-12)
    assert pi.range_[0] == (0.0, points[:, 0].max(), points[:, 1].min(), 2.0)
    assert pi(tensors).max().item() == pytest.approx(1.0)
    with pytest.raises(RuntimeError, match="not fitted"):
        PersistenceImage(bandwidth="quantile", im_range=(0, 1, 0, 1))(tensors)
    with pytest.raises(ValueError, match="no finite diagram point"):
        PersistenceImage().fit([torch.zeros(0, 2), torch.tensor([[0.0, math.inf]])])


def test_topkd_bandwidth_is_the_official_rule():
    """``bandwidth="topkd"``: the official dg_to_PI, a full distance matrix of the first 200
    stacked points, distances above 1e-5, numpy's 0.2-quantile; ``"quantile"`` uses every
    point and leaves out only exact ties. H0-like diagrams with tied deaths exercise both."""
    from scipy.spatial.distance import cdist

    rng = np.random.default_rng(3)
    deaths = [np.round(rng.gamma(2.0, 1.0, 63), 1) for _ in range(5)]  # ties from the rounding
    diagrams = [np.stack([np.zeros(63), d], 1) for d in deaths]
    tensors = as_tensors(diagrams, torch.float64)
    points = np.concatenate(diagrams)  # birth 0: (birth, persistence) = (birth, death)
    official = cdist(points[:200], points[:200]).flatten()
    official = np.quantile(official[official > 1e-5], 0.2)
    fitted = PersistenceImage((1, 20), "topkd", dims=(0,), h0="image").fit(tensors)
    assert fitted.bandwidth_[0] == pytest.approx(official, rel=1e-12)
    everything = pdist(points)
    fitted = PersistenceImage((1, 20), "quantile", dims=(0,)).fit(tensors)
    assert fitted.bandwidth_[0] == pytest.approx(np.quantile(everything[everything > 0], 0.2), rel=1e-12)
    assert PersistenceImage.topkd(faithful=True).bandwidth == "topkd"
    assert PersistenceImage.topkd(faithful=False).bandwidth == "quantile"
    with pytest.raises(ValueError, match="two distinct diagram points"):
        PersistenceImage((1, 20), "quantile", dims=(0,)).fit([torch.tensor([[0.0, 1.0], [0.0, 1.0]])])


def test_config_round_trip_is_json_and_exact():
    dgm = Diagrams.from_list([[torch.tensor([[0.0, 0.4], [0.0, 1.1], [0.0, 0.7]])]])
    pi = PersistenceImage.topkd(faithful=True).fit(dgm)
    config = json.loads(json.dumps(pi.to_config()))
    clone = PersistenceImage.from_config(config)
    assert clone.to_config() == pi.to_config() and clone.weight == TopKDWeight()
    assert torch.equal(clone(dgm), pi(dgm))
    unfitted = PersistenceImage.from_config(PersistenceImage(weight=PowerWeight(2)).to_config())
    assert unfitted.weight == PowerWeight(2.0) and not hasattr(unfitted, "range_")
    with pytest.raises(TypeError, match="plain-callable"):
        PersistenceImage(weight=lambda b, p: p).to_config()


def test_topkd_presets():
    dgm = Diagrams.from_list([[torch.tensor([[0.0, 0.4], [0.0, 1.1], [0.0, 0.7]])]])
    faithful = PersistenceImage.topkd(faithful=True).fit(dgm)(dgm)
    assert faithful.shape == (1, 20, 20) and faithful.max().item() == pytest.approx(1.0)
    # TopKD's known defect: every birth is 0, so the 20 columns are identical
    assert torch.equal(faithful, faithful[..., :1].expand_as(faithful))
    corrected = PersistenceImage.topkd(faithful=False).fit(dgm)(dgm)
    assert corrected.shape == (1, 20)
    # The curve is one column of the image fitted with the same bandwidth rule.
    image = PersistenceImage((20, 20), "quantile", "topkd", dims=(0,), h0="image", normalize=True).fit(dgm)(dgm)
    torch.testing.assert_close(corrected, image[..., 0])


def test_weights_are_tensor_functions():
    birth, pers = torch.tensor([0.0, 0.5]), torch.tensor([1.0, 2.0])
    assert ConstantWeight(2.0)(birth, pers).tolist() == [2.0, 2.0]
    assert PowerWeight(2.0)(birth, pers).tolist() == [1.0, 4.0]
    # TopKD's official 10 tanh(p) + 10 log(100 b + 1) at points where it is known in closed form:
    # tanh(atanh(t)) = t and log(100 b + 1) = k at b = (e^k - 1) / 100.
    birth = torch.tensor([0.0, (math.e - 1) / 100, (math.e**2 - 1) / 100], dtype=torch.float64)
    pers = torch.tensor([math.atanh(0.5), 0.0, math.atanh(0.25)], dtype=torch.float64)
    torch.testing.assert_close(TopKDWeight()(birth, pers), torch.tensor([5.0, 10.0, 22.5], dtype=torch.float64),
                               rtol=1e-15, atol=0)
    dgm = torch.tensor([[0.1, 0.9], [0.3, 0.5]])
    kw = dict(im_range=(0, 1, 0, 1), resolution=(4, 4))
    torch.testing.assert_close(persistence_image(dgm, weight=lambda b, p: p * p, **kw),
                               persistence_image(dgm, weight=PowerWeight(2), **kw))


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda: persistence_image(torch.zeros(3, 2, dtype=torch.long), im_range=(0, 1, 0, 1)), TypeError, "floating"),
        (lambda: persistence_image([[0.0, 1.0]], im_range=(0, 1, 0, 1)), TypeError, "diagrams"),
        (lambda: persistence_image(torch.zeros(3, 3), im_range=(0, 1, 0, 1)), ValueError, r"\(B, K, 2\)"),
        (lambda: persistence_image(torch.zeros(1, 1, 3, 2), im_range=(0, 1, 0, 1)), ValueError, "shape"),
        (lambda: persistence_image(torch.tensor([[0.0, math.nan]]), im_range=(0, 1, 0, 1)), ValueError, "NaN"),
        (lambda: persistence_image(torch.tensor([[math.inf, math.inf]]), im_range=(0, 1, 0, 1)), ValueError, "births"),
        (lambda: persistence_image(torch.zeros(2, 3, 2), mask=torch.ones(2, 3), im_range=(0, 1, 0, 1)), TypeError, "mask"),
        (lambda: persistence_image(torch.zeros(2, 3, 2), mask=torch.ones(3, 2, dtype=torch.bool), im_range=(0, 1, 0, 1)),
         ValueError, "mask"),
        (lambda: persistence_image(torch.zeros(3, 2), im_range=(0, 1, 0)), ValueError, "im_range"),
        (lambda: persistence_image(torch.zeros(3, 2), im_range=(1, 0, 0, 1)), ValueError, "im_range"),
        (lambda: persistence_image(torch.zeros(3, 2), im_range=(0, 1, 0, 1), bandwidth=0.0), ValueError, "bandwidth"),
        (lambda: persistence_image(torch.zeros(3, 2), im_range=(0, 1, 0, 1), resolution=(0, 4)), ValueError, "resolution"),
        (lambda: persistence_image(torch.zeros(3, 2), im_range=(0, 1, 0, 1), convention="x"), ValueError, "convention"),
        (lambda: persistence_image(torch.zeros(3, 2), im_range=(0, 1, 0, 1), weight=lambda b, p: 1.0), ValueError,
         "weight must return"),
        (lambda: persistence_curve(torch.zeros(3, 2), pers_range=(0, 1), infinite="keep"), ValueError, "infinite"),
        (lambda: get_weight("nope"), ValueError, "unknown name"),
        (lambda: get_weight(3), TypeError, "weight"),
        (lambda: PowerWeight(0), ValueError, "positive"),
        (lambda: PersistenceImage(dims=()), ValueError, "dims"),
        (lambda: PersistenceImage(h0="flat"), ValueError, "h0"),
        (lambda: PersistenceImage(im_range=(0, 1)), ValueError, "im_range"),
        (lambda: PersistenceImage(im_range=0), TypeError, "im_range"),
        (lambda: PersistenceImage(im_range=("str", 0, 0, 1)), TypeError, "im_range"),
        (lambda: PersistenceImage(im_range=(0, 1, 2, 1)), ValueError, "im_range"),
        (lambda: PersistenceImage(resolution=(2.7, 5)), TypeError, r"resolution\[0\]"),
        (lambda: PersistenceImage(resolution=5), ValueError, "resolution"),
        (lambda: PersistenceImage(dims=(1.5,)), TypeError, "dims"),
        (lambda: persistence_image(torch.zeros(3, 2), im_range=(0, 1, 0, 1), resolution=(4, 2.0)), TypeError,
         "resolution"),
        (lambda: persistence_curve(torch.zeros(3, 2), pers_range=(0, 1), resolution=2.7), TypeError, "resolution"),
        (lambda: persistence_image(torch.zeros(3, 2), im_range=(0, 1, 0, math.inf)), ValueError, "im_range"),
        (lambda: PersistenceImage(dims=(0, 1), im_range=(0, 1, 0, 1))(torch.zeros(3, 2)), ValueError, "Diagrams"),
        (lambda: PersistenceImage(dims=(2,), im_range=(0, 1, 0, 1))(Diagrams.from_list([[torch.zeros(1, 2)]])),
         ValueError, "max_dim"),
        (lambda: PersistenceImage(im_range=(0, 1, 0, 1))("x"), TypeError, "diagrams"),
    ],
)
def test_bad_input_raises(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_module_repr_names_its_arguments():
    text = repr(PersistenceImage((5, 4), 0.2, "linear", (0, 1, 0, 1), dims=(0, 1), convention="persim"))
    assert text.startswith("PersistenceImage(resolution=(5, 4), bandwidth=0.2, weight=PowerWeight(n=1.0)")
    assert "convention='persim'" in text


@pytest.mark.parametrize("half", [torch.float16, torch.bfloat16])
def test_half_precision_is_computed_in_float32(half):
    dgm = torch.tensor([[0.0, 1.0], [0.25, 1.5]], dtype=half, requires_grad=True)
    kw = dict(bandwidth=0.3, weight="linear")
    image = persistence_image(dgm, im_range=(0, 1, 0, 2), resolution=(4, 5), **kw)
    curve = persistence_curve(dgm, pers_range=(0, 2), resolution=5, **kw)
    assert image.dtype == curve.dtype == half
    reference = dgm.detach().float()
    torch.testing.assert_close(image, persistence_image(reference, im_range=(0, 1, 0, 2), resolution=(4, 5), **kw)
                               .to(half), rtol=0, atol=0)
    torch.testing.assert_close(curve, persistence_curve(reference, pers_range=(0, 2), resolution=5, **kw).to(half),
                               rtol=0, atol=0)
    (image.float().sum() + curve.float().sum()).backward()
    assert dgm.grad.dtype == half and torch.isfinite(dgm.grad.float()).all()
    assert PersistenceImage((4, 5), 0.3, im_range=(0, 1, 0, 2))([dgm.detach()]).dtype == half


def test_weight_registry_takes_named_classes_only_and_refuses_taken_names():
    from torchtopo.vectorize import Weight

    class Unnamed(Weight):  # an abstract intermediate: no name, not registered, no error
        pass

    class Halved(Unnamed):
        name = "test-halved"

        def __call__(self, birth, persistence):
            return persistence / 2

    assert get_weight("test-halved").to_config() == {"name": "test-halved"}
    assert "Unnamed" not in {cls.__name__ for cls in Weight._registry.values()}
    for taken in ("constant", "linear", "test-halved"):
        with pytest.raises(ValueError, match="taken"):
            type("Impostor", (Weight,), {"name": taken, "__call__": lambda self, b, p: p})
    assert type(get_weight("constant")) is ConstantWeight
    with pytest.raises(TypeError, match="not a registered weight"):
        type("Anonymous", (Unnamed,), {"__call__": lambda self, b, p: p})().to_config()
