"""cubical_persistence: exact agreement with gudhi, generators, gradients, the three union-find
implementations, masks, dispatch and errors."""

from __future__ import annotations

import gudhi
import numpy as np
import pytest
import torch
from helpers import needs_numba, needs_triton
from hypothesis import example, given, settings
from hypothesis import strategies as st

import torchtopo.cubical.core as core
import torchtopo.cubical.union_find as union_find
from torchtopo import CubicalComplex, cubical_persistence
from torchtopo.cubical.union_find import union_find_pairing

KINDS = ("uniform", "plateaus", "integers", "constant", "huge")


def make_image(kind: str, shape: tuple[int, ...], seed: int) -> np.ndarray:
    """A float64 image (or volume) of one of the adversarial ``KINDS``."""
    rng = np.random.default_rng(seed)
    if kind == "uniform":
        return rng.uniform(-1, 1, shape)
    if kind == "plateaus":  # three levels: large tied regions
        return rng.integers(0, 3, shape).astype(np.float64)
    if kind == "integers":
        return rng.integers(-5, 6, shape).astype(np.float64)
    if kind == "constant":
        return np.full(shape, 2.5)
    if kind == "huge":  # values far apart in scale, and negative zero
        image = rng.choice([-1e300, -1e-300, -0.0, 0.0, 1e-300, 1e300, 7.0], size=shape)
        return np.asarray(image, dtype=np.float64)
    raise ValueError(kind)


@st.composite
def images(draw, spatial_dims: int = 2, max_side: int = 12, batch: int = 1):
    """A batch of images of one adversarial kind: thin (1 x N, N x 1) and tiny shapes included."""
    side = st.integers(1, max_side)
    shape = tuple(draw(side) for _ in range(spatial_dims))
    kind = draw(st.sampled_from(KINDS))
    seed = draw(st.integers(0, 2**31 - 1))
    return np.stack([make_image(kind, shape, seed + b) for b in range(batch)])


def gudhi_intervals(image: np.ndarray, max_dim: int) -> list[np.ndarray]:
    """Every interval (infinite ones too) per dimension, from gudhi's cubical complex in float64;
    ``+inf`` pixels (masked) are outside the complex, so classes born there are not counted."""
    complex_ = gudhi.CubicalComplex(top_dimensional_cells=np.asarray(image, dtype=np.float64))
    complex_.compute_persistence(homology_coeff_field=2)
    out = []
    for d in range(max_dim + 1):
        intervals = complex_.persistence_intervals_in_dimension(d).reshape(-1, 2)
        out.append(intervals[np.isfinite(intervals[:, 0]) & (intervals[:, 1] > intervals[:, 0])])
    return out


def assert_same_pairs(ours: torch.Tensor, reference: np.ndarray) -> None:
    """Equal multisets, exactly (infinite bars included), hence bottleneck distance 0."""
    ours = ours.detach().double().cpu().numpy().reshape(-1, 2)
    ordered = lambda a: a[np.lexsort((a[:, 1], a[:, 0]))]  # noqa: E731
    assert np.array_equal(ordered(ours), ordered(reference)), f"\nours={ordered(ours)}\ngudhi={ordered(reference)}"
    finite = lambda a: a[np.isfinite(a[:, 1])]  # noqa: E731
    assert gudhi.bottleneck_distance(finite(ours), finite(reference), 0) == 0


def assert_generators_hold_the_values(dgm, values: torch.Tensor) -> None:
    """Birth and death pixels index the pixels whose values (of ``values``, flattened per image)
    are the pair; infinite deaths have no pixel."""
    flat = values.reshape(values.shape[0], -1)
    for d in range(dgm.max_dim + 1):
        mask, pairs = dgm.mask[d], dgm.pairs[d]
        births, deaths = dgm.birth_pixels[d], dgm.death_pixels[d]
        assert (births[mask] >= 0).all() and (births[~mask] == -1).all() and (deaths[~mask] == -1).all()
        rows = torch.arange(flat.shape[0]).unsqueeze(1).expand_as(births)
        assert torch.equal(flat[rows[mask], births[mask]], pairs[..., 0][mask])
        finite = mask & torch.isfinite(pairs[..., 1])
        assert torch.equal(flat[rows[finite], deaths[finite]], pairs[..., 1][finite])
        assert (deaths[mask & ~finite] == -1).all()


# --------------------------------------------------------------------------- agreement with gudhi
@pytest.mark.parametrize("superlevel", [False, True])
@given(batch=images(2, batch=2))
@example(batch=make_image("plateaus", (12, 12), 0)[None])
@example(batch=make_image("constant", (1, 9), 0)[None])
@example(batch=make_image("integers", (9, 1), 1)[None])
@example(batch=np.array([[[0.0, 5.0], [5.0, 0.0]]]))  # diagonal pixels touch: one component
def test_images_match_gudhi(batch, superlevel):
    dgm = cubical_persistence(torch.tensor(batch), 1, superlevel=superlevel, keep_infinite=True)
    for b, image in enumerate(batch):
        reference = gudhi_intervals(-image if superlevel else image, 1)
        for d in (0, 1):
            assert_same_pairs(dgm.to_list(d)[b], reference[d])
    assert_generators_hold_the_values(dgm, torch.tensor(-batch if superlevel else batch))


@settings(max_examples=25)
@given(batch=images(3, max_side=6, batch=2))
@example(batch=make_image("plateaus", (6, 6, 6), 2)[None])
@example(batch=make_image("integers", (1, 1, 7), 3)[None])
def test_volumes_match_gudhi(batch):
    dgm = cubical_persistence(torch.tensor(batch), 2, keep_infinite=True)
    for b, volume in enumerate(batch):
        reference = gudhi_intervals(volume, 2)
        for d in range(3):
            assert_same_pairs(dgm.to_list(d)[b], reference[d])
    assert_generators_hold_the_values(dgm, torch.tensor(batch))


@pytest.mark.parametrize("shape", [(1, 40, 37), (2, 13, 17, 11)])
def test_larger_random_and_tied_inputs_match_gudhi(shape):
    """Sizes where the reduction of volumes stores reduced columns and sweeps cross many trees."""
    for kind in ("uniform", "plateaus"):
        batch = make_image(kind, shape, seed=len(shape))
        max_dim = len(shape) - 2
        dgm = cubical_persistence(torch.tensor(batch), max_dim, keep_infinite=True)
        for b, image in enumerate(batch):
            reference = gudhi_intervals(image, max_dim)
            for d in range(max_dim + 1):
                assert_same_pairs(dgm.to_list(d)[b], reference[d])


def test_float32_images_give_float32_pairs_equal_to_gudhi():
    batch = torch.rand(3, 20, 20, generator=torch.Generator().manual_seed(0))
    dgm = cubical_persistence(batch, 1)
    assert all(p.dtype == torch.float32 for p in dgm.pairs)
    for b, image in enumerate(batch.double().numpy()):
        reference = gudhi_intervals(image, 1)
        for d in (0, 1):
            assert_same_pairs(dgm.to_list(d)[b], reference[d][np.isfinite(reference[d][:, 1])])


@pytest.mark.parametrize("spatial_dims", [2, 3])
def test_gudhi_backend_gives_the_same_diagrams_and_valid_generators(spatial_dims):
    shape = (3, 9, 8) if spatial_dims == 2 else (2, 5, 4, 6)
    for kind in ("uniform", "plateaus"):
        batch = torch.tensor(make_image(kind, shape, seed=7))
        native = cubical_persistence(batch, spatial_dims - 1, keep_infinite=True)
        via_gudhi = cubical_persistence(batch, spatial_dims - 1, keep_infinite=True, backend="gudhi")
        for d in range(spatial_dims):
            for a, b in zip(native.to_list(d), via_gudhi.to_list(d)):
                assert_same_pairs(a, b.numpy())
        assert_generators_hold_the_values(via_gudhi, batch)


# --------------------------------------------------------------------------- conventions, shapes
def test_loop_around_a_peak_and_its_exact_gradient():
    # Ring values increase around the centre; the loop closes at 8 and fills at 9.
    image = torch.tensor([[1.0, 2.0, 3.0], [8.0, 9.0, 4.0], [7.0, 6.0, 5.0]], dtype=torch.float64, requires_grad=True)
    dgm = cubical_persistence(image)
    assert dgm.to_list(0)[0].numel() == 0 and dgm.to_list(1)[0].tolist() == [[8.0, 9.0]]
    (grad,) = torch.autograd.grad(dgm.persistence(1).sum(), image)
    expected = torch.zeros(3, 3, dtype=torch.float64)
    expected[1, 1], expected[1, 0] = 1.0, -1.0
    assert torch.equal(grad, expected)


def test_a_void_in_a_volume():
    volume = torch.full((3, 3, 3), 1.0)
    volume[1, 1, 1] = 5.0
    dgm = cubical_persistence(volume, 2, spatial_dims=3)
    assert dgm.to_list(2)[0].tolist() == [[1.0, 5.0]] and dgm.to_list(1)[0].numel() == 0


def test_superlevel_is_the_sublevel_filtration_of_the_negated_images():
    image = torch.tensor([[[3.0, 0.0, 2.0], [1.0, 0.0, 0.0]]])
    dgm = cubical_persistence(image, superlevel=True, keep_infinite=True)
    # Components appear at the maxima 3 and 2; the one of 2 joins the other at 0.
    assert sorted(dgm.to_list(0)[0].tolist()) == [[-3.0, float("inf")], [-2.0, 0.0]]
    assert_generators_hold_the_values(dgm, -image)


def test_unbatched_input_and_spatial_dims():
    volume = torch.tensor(make_image("uniform", (4, 5, 6), seed=1))
    as_images = cubical_persistence(volume, 1)  # default: a batch of four 5 x 6 images
    assert as_images.is_batched and as_images.batch_size == 4 and as_images.max_dim == 1
    as_volume = cubical_persistence(volume, 2, spatial_dims=3, keep_infinite=True)
    assert not as_volume.is_batched and as_volume.pairs[0].dim() == 2 and as_volume.birth_pixels[0].dim() == 1
    reference = gudhi_intervals(volume.numpy(), 2)
    for d in range(3):
        assert_same_pairs(as_volume.to_list(d)[0], reference[d])
    single = cubical_persistence(volume[0], 1)
    for d in (0, 1):
        assert torch.equal(single.pairs[d], as_images.pairs[d][0][: single.pairs[d].shape[0]])
    assert cubical_persistence(volume[None], 2).batch_size == 1  # (B, D, H, W) needs no argument


def test_a_volume_of_one_plane_is_the_image():
    image = torch.tensor(make_image("plateaus", (2, 7, 9), seed=4))
    flat = cubical_persistence(image, 1, keep_infinite=True)
    thick = cubical_persistence(image.unsqueeze(1), 2, keep_infinite=True)
    for d in (0, 1):
        for a, b in zip(flat.to_list(d), thick.to_list(d)):
            assert_same_pairs(a, b.numpy())
    assert not thick.mask[2].any()


@given(batch=images(2, batch=1))
def test_transposes_and_flips_keep_the_diagrams(batch):
    image = torch.tensor(batch[0])
    dgm = cubical_persistence(image, keep_infinite=True)
    for moved in (image.T, image.flip(0), image.flip(1)):
        other = cubical_persistence(moved.contiguous(), keep_infinite=True)
        for d in (0, 1):
            assert_same_pairs(other.to_list(d)[0], dgm.to_list(d)[0].numpy())


def test_results_do_not_depend_on_the_thread_count():
    batch = torch.tensor(make_image("plateaus", (9, 11, 10), seed=5))
    threads = torch.get_num_threads()
    try:
        runs = []
        for count in (1, 3):
            torch.set_num_threads(count)
            runs.append(cubical_persistence(batch, 1))
    finally:
        torch.set_num_threads(threads)
    for d in (0, 1):
        assert torch.equal(runs[0].pairs[d], runs[1].pairs[d])
        assert torch.equal(runs[0].birth_pixels[d], runs[1].birth_pixels[d])


# --------------------------------------------------------------------------- masks and padding
@given(batch=images(2, max_side=9, batch=2), data=st.data())
def test_padding_never_changes_a_result(batch, data):
    """Each image, padded at the bottom right with decoys (NaN and inf among them) and masked, has
    its crop's diagrams."""
    b, h, w = batch.shape
    ph, pw = data.draw(st.integers(0, 3)), data.draw(st.integers(0, 3))
    padded = np.random.default_rng(h * w).choice([-10.0, 10.0, np.nan, np.inf], (b, h + ph, w + pw))
    padded[:, :h, :w] = batch
    mask = torch.zeros(b, h + ph, w + pw, dtype=torch.bool)
    mask[:, :h, :w] = True
    dgm = cubical_persistence(torch.tensor(padded), 1, mask=mask, keep_infinite=True)
    crop = cubical_persistence(torch.tensor(batch), 1, keep_infinite=True)
    for d in (0, 1):
        for a, c in zip(dgm.to_list(d), crop.to_list(d)):
            assert_same_pairs(a, c.numpy())
    # Generators index the padded images.
    masked = torch.where(mask, torch.tensor(padded), torch.tensor(float("inf"), dtype=torch.float64))
    assert_generators_hold_the_values(dgm, masked)


@pytest.mark.parametrize("spatial_dims", [2, 3])
@settings(max_examples=20)
@given(data=st.data())
def test_any_mask_matches_gudhi_with_infinite_values(spatial_dims, data):
    """Masked pixels are outside the complex: gudhi's complex with +inf there; holes of the mask
    make infinite loops, separate regions infinite components."""
    image = data.draw(images(spatial_dims, max_side=8 if spatial_dims == 2 else 5))[0]
    rng = np.random.default_rng(data.draw(st.integers(0, 2**31 - 1)))
    mask = rng.random(image.shape) < 0.7
    mask.flat[rng.integers(0, mask.size)] = True
    dgm = cubical_persistence(torch.tensor(image), spatial_dims - 1, spatial_dims=spatial_dims,
                              mask=torch.tensor(mask), keep_infinite=True)
    reference = gudhi_intervals(np.where(mask, image, np.inf), spatial_dims - 1)
    for d in range(spatial_dims):
        assert_same_pairs(dgm.to_list(d)[0], reference[d])


@needs_numba
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32, torch.bfloat16])
@settings(max_examples=25)
@given(batch=images(2, max_side=8, batch=2), keep_infinite=st.booleans(), data=st.data())
def test_compiled_and_tensor_selection_of_pairs_agree(dtype, batch, keep_infinite, data):
    """gather_diagrams' two paths (numba on the CPU, tensor operations elsewhere) give the same
    diagrams and gradients, masked pixels (``+inf``, infinite bars) and zero persistence included."""
    from torchtopo.cubical.pairing import _select_numba, _select_torch

    rng = np.random.default_rng(data.draw(st.integers(0, 2**31 - 1)))
    values = torch.tensor(batch).flatten(1).to(dtype)
    values[torch.from_numpy(rng.random(values.shape) < 0.2)] = float("inf")
    h0, h1 = union_find_pairing(values, (1, *batch.shape[1:]), 2, True)
    births, deaths, valid = (torch.cat([a, b], 1) for a, b in zip(h0, h1))
    results = []
    for select in (_select_numba, _select_torch):
        x = values.clone().requires_grad_(True)
        pairs, keep, birth_pixels, death_pixels = select(x, births, deaths, valid, keep_infinite)
        weight = torch.arange(pairs.numel(), dtype=dtype).reshape(pairs.shape)
        (grad,) = torch.autograd.grad(torch.where(torch.isinf(pairs), 0, pairs * weight).sum(), x)
        results.append((pairs, keep, birth_pixels, death_pixels, grad))
    for a, b in zip(*results):
        assert a.dtype == b.dtype and torch.equal(a, b)


def test_a_ring_shaped_mask_has_an_infinite_loop():
    image = torch.arange(25, dtype=torch.float64).reshape(5, 5)
    mask = torch.ones(5, 5, dtype=torch.bool)
    mask[2, 2] = False
    dgm = cubical_persistence(image, mask=mask, keep_infinite=True)
    # The loop closes at 17: pixels 13 and 17, at (2, 3) and (3, 2), share a corner.
    assert dgm.to_list(1)[0].tolist() == [[17.0, float("inf")]]
    assert cubical_persistence(image, mask=mask).to_list(1)[0].numel() == 0


# --------------------------------------------------------------------------- gradients
def test_gradcheck_in_float64():
    image = torch.tensor(make_image("uniform", (2, 6, 7), seed=11), requires_grad=True)

    def summary(x):
        dgm = cubical_persistence(x, 1)
        return torch.stack([dgm.persistence(0).square().sum(), dgm.persistence(1).square().sum(),
                            (dgm.pairs[1][..., 0] * dgm.mask[1]).sum()])

    assert torch.autograd.gradcheck(summary, (image,), eps=1e-7, atol=1e-6)
    volume = torch.tensor(make_image("uniform", (1, 4, 4, 4), seed=12), requires_grad=True)
    assert torch.autograd.gradcheck(lambda x: cubical_persistence(x, 2).persistence(1).sum() +
                                    cubical_persistence(x, 2).persistence(2).sum(), (volume,), eps=1e-7, atol=1e-6)


@given(batch=images(2, max_side=7, batch=1), pixel=st.integers(0, 48))
def test_gradients_equal_finite_differences_where_values_are_distinct(batch, pixel):
    image = torch.tensor(np.random.default_rng(int(batch.sum() * 1e6) % 2**31).permutation(batch.size)
                         .reshape(batch.shape[1:]).astype(np.float64))  # distinct values: unique pairs
    pixel %= image.numel()
    x = image.clone().requires_grad_(True)
    total = lambda dgm: dgm.persistence(0).sum() + 2 * dgm.persistence(1).sum()  # noqa: E731
    (grad,) = torch.autograd.grad(total(cubical_persistence(x)), x)
    step = torch.zeros_like(image).flatten()
    step[pixel] = 1e-3  # far below the gap of 1 between values: the pairing does not change
    step = step.reshape(image.shape)
    slope = (total(cubical_persistence(image + step)) - total(cubical_persistence(image - step))) / 2e-3
    assert torch.isclose(grad.flatten()[pixel], slope, atol=1e-9)


# --------------------------------------------------------------------------- implementations
def _pairings_equal(values: torch.Tensor, shape, spatial_dims: int, implementations) -> None:
    results = [union_find_pairing(values, shape, spatial_dims, True, implementation=i) for i in implementations]
    for other in results[1:]:
        for sweep_a, sweep_b in zip(results[0], other):
            for a, b in zip(sweep_a, sweep_b):
                assert torch.equal(a.cpu(), b.cpu())


@needs_numba
@settings(max_examples=25)
@given(batch=images(2, max_side=9, batch=3))
def test_torch_sweeps_equal_numba_sweeps(batch):
    values = torch.tensor(batch).flatten(1)
    _pairings_equal(values, (1, *batch.shape[1:]), 2, ["numba", "torch"])


@needs_numba
@settings(max_examples=10)
@given(batch=images(3, max_side=4, batch=2))
def test_torch_sweeps_equal_numba_sweeps_on_volumes(batch):
    values = torch.tensor(batch).flatten(1)
    _pairings_equal(values, batch.shape[1:], 3, ["numba", "torch"])


@needs_triton
@needs_numba
@pytest.mark.parametrize(("spatial_dims", "shape", "kind"), [
    (2, (1, 5, 6), "uniform"),
    (2, (1, 6, 5), "plateaus"),
    (2, (1, 1, 7), "integers"),
    (2, (1, 4, 1), "constant"),
    (3, (2, 3, 4), "plateaus"),
])
def test_triton_sweeps_equal_numba_sweeps(spatial_dims, shape, kind):
    """The Triton kernel (under TRITON_INTERPRET=1 without a GPU), masked pixels included."""
    batch = make_image(kind, (2, int(np.prod(shape))), seed=len(kind))
    batch[1, ::3] = np.inf
    device = "cuda" if torch.cuda.is_available() else "cpu"
    values = torch.tensor(batch, device=device)
    _pairings_equal(values, shape, spatial_dims, ["numba", "triton", "torch"])


@needs_triton
def test_cuda_input_goes_through_the_triton_kernel(monkeypatch):
    """The dispatch for CUDA input (forced here on CPU tensors under the interpreter): the same
    diagrams, generators and gradients as the CPU path."""
    image = torch.tensor(make_image("plateaus", (2, 5, 5), seed=3), requires_grad=True)
    results = []
    for forced in ("numba", "triton"):
        monkeypatch.setattr(union_find, "_implementation", lambda values, implementation, forced=forced: forced)
        dgm = cubical_persistence(image, 1)
        (grad,) = torch.autograd.grad(dgm.persistence(0).sum() + dgm.persistence(1).sum(), image)
        results.append((dgm, grad))
    (cpu, cpu_grad), (gpu, gpu_grad) = results
    for d in (0, 1):
        for name in ("pairs", "mask", "birth_pixels", "death_pixels"):
            assert torch.equal(getattr(gpu, name)[d], getattr(cpu, name)[d])
    assert torch.equal(gpu_grad, cpu_grad)


def test_without_numba_images_use_torch_and_volumes_gudhi(monkeypatch):
    from torchtopo.cubical import gudhi_backend

    batch = torch.tensor(make_image("plateaus", (2, 4, 5, 3), seed=9))
    expected, expected_images = cubical_persistence(batch, 1), cubical_persistence(batch[0], 1)
    monkeypatch.setattr(union_find, "numba_available", lambda: False)
    monkeypatch.setattr(core, "numba_available", lambda: False)
    assert union_find._implementation(batch, "auto") == "torch"
    calls, original = [], gudhi_backend.gudhi_pairing
    monkeypatch.setattr(gudhi_backend, "gudhi_pairing", lambda *a, **k: calls.append(1) or original(*a, **k))
    got = cubical_persistence(batch, 1)  # dimension 1 of volumes: gudhi
    assert calls == [1]
    for d in (0, 1):
        for a, b in zip(got.to_list(d), expected.to_list(d)):
            assert_same_pairs(a, b.numpy())
    images = cubical_persistence(batch[0], 1)  # images: the torch sweeps, the numba pairing
    assert calls == [1]
    for d in (0, 1):
        assert torch.equal(images.pairs[d], expected_images.pairs[d])
        assert torch.equal(images.death_pixels[d], expected_images.death_pixels[d])


# --------------------------------------------------------------------------- module and errors
def test_module_calls_the_function():
    layer = CubicalComplex(max_dim=0, superlevel=True, keep_infinite=True)
    images = torch.rand(3, 8, 8)
    expected = cubical_persistence(images, 0, superlevel=True, keep_infinite=True)
    assert torch.equal(layer(images).pairs[0], expected.pairs[0])
    assert "superlevel=True" in repr(layer)
    mask = torch.ones(3, 8, 8, dtype=torch.bool)
    assert torch.equal(layer(images, mask=mask).pairs[0], expected.pairs[0])


@pytest.mark.parametrize(("call", "error", "match"), [
    (lambda: cubical_persistence(torch.zeros(4, 4, dtype=torch.long)), TypeError, "floating"),
    (lambda: cubical_persistence([[0.0]]), TypeError, "images"),
    (lambda: cubical_persistence(torch.zeros(4)), ValueError, "images"),
    (lambda: cubical_persistence(torch.zeros(2, 2, 2, 2, 2)), ValueError, "images"),
    (lambda: cubical_persistence(torch.zeros(2, 0, 3)), ValueError, "at least one pixel"),
    (lambda: cubical_persistence(torch.tensor([[0.0, float("nan")]])), ValueError, "finite"),
    (lambda: cubical_persistence(torch.tensor([[0.0, float("inf")]])), ValueError, "finite"),
    (lambda: cubical_persistence(torch.zeros(3, 3), max_dim=2), ValueError, "max_dim"),
    (lambda: cubical_persistence(torch.zeros(3, 3), max_dim=-1), ValueError, "max_dim"),
    (lambda: cubical_persistence(torch.zeros(3, 3), max_dim=1.0), TypeError, "max_dim"),
    (lambda: cubical_persistence(torch.zeros(3, 3), spatial_dims=2.0), TypeError, "spatial_dims"),
    (lambda: cubical_persistence(torch.zeros(3, 3, device="meta")), ValueError, "meta"),
    (lambda: cubical_persistence(torch.eye(3).to_sparse()), TypeError, "images must be a dense"),
    (lambda: cubical_persistence(torch.zeros(2, 3, 3, 3), max_dim=3), ValueError, "max_dim"),
    (lambda: cubical_persistence(torch.zeros(3, 3), spatial_dims=3), ValueError, "spatial_dims=3"),
    (lambda: cubical_persistence(torch.zeros(3, 3), spatial_dims=4), ValueError, "spatial_dims"),
    (lambda: cubical_persistence(torch.zeros(3, 3), backend="ripser"), ValueError, "backend"),
    (lambda: cubical_persistence(torch.zeros(3, 3), mask=torch.ones(3, 3)), TypeError, "mask"),
    (lambda: cubical_persistence(torch.zeros(3, 3), mask=torch.ones(3, 2, dtype=torch.bool)), ValueError, "mask"),
    (lambda: cubical_persistence(torch.zeros(2, 3, 3), mask=torch.zeros(2, 3, 3, dtype=torch.bool)), ValueError,
     "all-False"),
    (lambda: CubicalComplex(backend="cuda"), ValueError, "backend"),
])
def test_bad_input_raises(call, error, match):
    with pytest.raises(error, match=match):
        call()
