"""TopologyLoss: gradient routing, frozen RipsNet, exact, signature and cubical modes, errors."""

import itertools
import math

import gudhi
import numpy as np
import pytest
import torch

from torchtopo import Diagrams, PersistenceImage, RipsNet, TopologyLoss
from torchtopo.functional import signature_loss, topology_loss
from torchtopo.losses import mean_feature_map


def ripsnet(in_dim=8, out_dim=6):
    torch.manual_seed(0)
    return RipsNet(in_dim, out_dim, phi=(8, 8), rho=(8,))


def features(n=24, d_s=5, d_t=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d_s, generator=g, requires_grad=True), torch.randn(n, d_t, generator=g, requires_grad=True)


def test_ripsnet_mode_gradients_reach_student_and_projection_only():
    net = ripsnet()
    loss = TopologyLoss("ripsnet", net, cloud_size=8, student_dim=5, teacher_dim=8)
    trainable = [name for name, p in loss.named_parameters() if p.requires_grad]
    assert trainable == ["projection.weight", "projection.bias"]
    student, teacher = features()
    value = loss(student, teacher)
    value.backward()
    assert value.item() > 0 and student.grad.abs().sum() > 0 and teacher.grad is None
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in loss.projection.parameters())
    assert all(p.grad is None and p.requires_grad for p in net.parameters())  # the caller's net is untouched
    assert all(p.grad is None for p in loss.ripsnet.parameters()) and not loss.ripsnet.training


def test_ripsnet_mode_is_topkds_formula():
    net = ripsnet(5, 6)
    student, teacher = features(d_s=5, d_t=5)
    expected = torch.nn.functional.mse_loss(net(student.unsqueeze(0)), net(teacher.unsqueeze(0)))
    torch.testing.assert_close(TopologyLoss("ripsnet", net)(student, teacher), expected)
    clouds = topology_loss(student, teacher, ripsnet=net, cloud_size=8, reduction="none")
    per_cloud = ((net(student.reshape(3, 8, 5)) - net(teacher.reshape(3, 8, 5))) ** 2).mean(-1)
    torch.testing.assert_close(clouds, per_cloud)
    torch.testing.assert_close(topology_loss(student, teacher, ripsnet=net, cloud_size=8, reduction="sum"),
                               per_cloud.sum())


def test_ripsnet_frozen_even_when_it_requires_grad_in_the_functional():
    net = ripsnet(5, 6)
    student, teacher = features(d_s=5, d_t=5)
    topology_loss(student, teacher, ripsnet=net).backward()
    assert all(p.requires_grad and p.grad is None for p in net.parameters())
    assert student.grad is not None and teacher.grad is None


def test_a_short_last_cloud_is_masked():
    net = ripsnet(5, 6)
    student, teacher = features(n=20, d_s=5, d_t=5)
    per_cloud = topology_loss(student, teacher, ripsnet=net, cloud_size=8, reduction="none")
    last = topology_loss(student[16:], teacher[16:], ripsnet=net, reduction="none")
    assert per_cloud.shape == (3,)
    torch.testing.assert_close(per_cloud[2:], last)


def test_module_moves_the_frozen_ripsnet_with_it():
    loss = TopologyLoss("ripsnet", ripsnet(5, 6)).double()
    assert loss.ripsnet.phi[0].weight.dtype == torch.float64
    student, teacher = features(d_s=5, d_t=5)
    assert loss(student.double(), teacher.double()).dtype == torch.float64


def test_exact_mode_matches_images_of_gudhi_diagrams():
    student, teacher = features(n=12, d_s=3, d_t=4)
    pi = PersistenceImage((6, 5), 0.4, "linear", (0, 3, 0, 3), dims=(0, 1))
    value = topology_loss(student, teacher, "exact", vectorizer=pi)

    def image(points):  # gudhi's diagrams (zero-length bars weigh 0 with the linear weight)
        tree = gudhi.RipsComplex(points=points.detach().double().numpy()).create_simplex_tree(max_dimension=2)
        tree.persistence()
        return pi(Diagrams.from_list([[torch.tensor(tree.persistence_intervals_in_dimension(d)).reshape(-1, 2)]
                                      for d in (0, 1)]))[0]

    expected = (image(student) - image(teacher)).square().mean()
    torch.testing.assert_close(value.double(), expected, rtol=1e-5, atol=1e-8)
    value.backward()
    assert student.grad.abs().sum() > 0 and teacher.grad is None


def test_exact_mode_gradcheck():
    g = torch.Generator().manual_seed(3)
    student = torch.randn(7, 2, dtype=torch.float64, generator=g, requires_grad=True)
    teacher = torch.randn(7, 3, dtype=torch.float64, generator=g)
    pi = PersistenceImage((4, 5), 0.5, "linear", (0, 2, 0, 3), dims=(0, 1))
    assert torch.autograd.gradcheck(lambda s: topology_loss(s, teacher, "exact", vectorizer=pi), student)


def test_signature_mode_is_moor_et_al_on_a_hand_made_cloud():
    # Student: 3 collinear points 0, 1, 3 (mean distance 2); teacher: the same scaled by 10.
    student = torch.tensor([[0.0], [1.0], [3.0]], requires_grad=True)
    teacher = 10 * student.detach()
    assert topology_loss(student, teacher, "signature").item() == 0  # scale-free
    # Teacher 0, 2, 3 (mean 2): its tree edges (0,1), (1,2) have normalised lengths 1, 0.5; the
    # student's (0,1), (1,2) have 0.5, 1. Both pairings see the same edges: L = 2 * 1/2 * mean(0.25, 0.25).
    other = torch.tensor([[0.0], [2.0], [3.0]])
    value = topology_loss(student, other, "signature")
    assert value.item() == pytest.approx(0.25)
    value.backward()
    assert student.grad.abs().sum() > 0


def test_signature_loss_invariant_to_rotation():
    student, teacher = features(n=16, d_s=3, d_t=3)
    q, _ = torch.linalg.qr(torch.randn(3, 3, generator=torch.Generator().manual_seed(1)))
    base = topology_loss(student, teacher, "signature", dims=(0, 1))
    torch.testing.assert_close(topology_loss(student @ q, teacher, "signature", dims=(0, 1)), base)


def _gudhi_pairing_edges(points: np.ndarray, dims) -> list[tuple[int, int]]:
    """gudhi's pairing edges of a cloud in general position: the death edges in dimension 0, the
    birth edges and the longest edges of the death triangles in dimension 1 (Moor et al.)."""
    distances = np.sqrt(((points[:, None] - points[None]) ** 2).sum(-1))
    tree = gudhi.RipsComplex(distance_matrix=distances).create_simplex_tree(max_dimension=2)
    tree.compute_persistence(homology_coeff_field=2)
    longest = lambda simplex: max(itertools.combinations(simplex, 2), key=lambda e: distances[e])  # noqa: E731
    edges = []
    for birth, death in tree.persistence_pairs():
        if len(birth) == 1 and 0 in dims and death:
            edges.append(tuple(death))
        elif len(birth) == 2 and 1 in dims:
            edges += [tuple(birth), longest(death)]
    return edges


@pytest.mark.parametrize("dims", [(0,), (1,), (0, 1)])
def test_signature_loss_is_moor_et_al_on_gudhis_pairings(dims):
    # Gaussian clouds (no tied lengths: one pairing); the loss written from the formula with
    # gudhi's H0 and H1 pairings and numpy's distances.
    rng = np.random.default_rng(3)
    student, teacher = rng.normal(size=(3, 14, 3)), rng.normal(size=(3, 14, 6))
    expected = []
    for s, t in zip(student, teacher):
        a_s, a_t = (np.sqrt(((x[:, None] - x[None]) ** 2).sum(-1)) for x in (s, t))
        a_s, a_t = a_s / (a_s.sum() / (14 * 13)), a_t / (a_t.sum() / (14 * 13))
        expected.append(sum(0.5 * np.mean([(a_t[e] - a_s[e]) ** 2 for e in _gudhi_pairing_edges(x, dims)])
                            for x in (s, t)))
    ours = signature_loss(torch.from_numpy(student), torch.from_numpy(teacher), dims=dims)
    np.testing.assert_allclose(ours.numpy(), expected, rtol=1e-12)


def test_signature_gradcheck_and_duplicate_points():
    g = torch.Generator().manual_seed(5)
    student = torch.randn(6, 2, dtype=torch.float64, generator=g, requires_grad=True)
    teacher = torch.randn(6, 4, dtype=torch.float64, generator=g)
    assert torch.autograd.gradcheck(lambda s: signature_loss(s.unsqueeze(0), teacher.unsqueeze(0)), student)
    twins = torch.cat([student[:3], student[:3]]).detach().requires_grad_()
    topology_loss(twins, teacher, "signature").backward()
    assert torch.isfinite(twins.grad).all()
    # a last cloud of one sample (and one of identical samples) has no edges and no scale
    lone = student.detach().clone().requires_grad_()
    per_cloud = topology_loss(lone, teacher, "signature", cloud_size=5, reduction="none")
    assert per_cloud[1].item() == 0 and per_cloud.isfinite().all()
    per_cloud.sum().backward()
    assert lone.grad.isfinite().all()
    same = student[:1].detach().expand(4, 2).clone().requires_grad_()
    topology_loss(same, teacher[:4], "signature").backward()
    assert same.grad.isfinite().all()


def test_projection_learns_and_default_is_linear():
    loss = TopologyLoss("signature", student_dim=5, teacher_dim=8)
    assert isinstance(loss.projection, torch.nn.Linear) and loss.projection.in_features == 5
    assert TopologyLoss("signature", student_dim=8, teacher_dim=8).projection is None
    student, teacher = features()
    loss(student, teacher).backward()
    assert loss.projection.weight.grad.abs().sum() > 0


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda s, t: topology_loss(s, t, ripsnet=ripsnet()), ValueError, "projection"),
        (lambda s, t: topology_loss(s[:5], t, "signature"), ValueError, "same n"),
        (lambda s, t: topology_loss(s[0], t[0], "signature"), ValueError, r"\(n, D\)"),
        (lambda s, t: topology_loss(s.long(), t, "signature"), TypeError, "floating"),
        (lambda s, t: topology_loss(s.detach() * math.nan, t, "signature"), ValueError, "NaN"),
        (lambda s, t: topology_loss(s, t * math.nan, "signature"), ValueError, "teacher must be finite"),
        (lambda s, t: topology_loss(s, t * math.inf, "signature"), ValueError, "teacher must be finite"),
        (lambda s, t: topology_loss(s.detach() * math.inf, t, ripsnet=ripsnet(5)), ValueError, "student must be finite"),
        (lambda s, t: TopologyLoss("signature", student_dim=4, teacher_dim=8)(s, t), ValueError, "student features must be 4"),
        (lambda s, t: TopologyLoss("signature", student_dim=5, teacher_dim=7)(s, t), ValueError, "teacher features must be 7"),
        (lambda s, t: TopologyLoss("signature", student_dim=5.0, teacher_dim=8), TypeError, "student_dim"),
        (lambda s, t: signature_loss(s[None], t[None], mask=torch.ones(1, 24)), TypeError, "mask"),
        (lambda s, t: topology_loss(s, t, "ripsnet"), ValueError, "ripsnet="),
        (lambda s, t: topology_loss(s, t, "exact"), ValueError, "vectorizer="),
        (lambda s, t: topology_loss(s, t, "bottleneck"), ValueError, "mode"),
        (lambda s, t: topology_loss(s, t, "signature", reduction="max"), ValueError, "reduction"),
        (lambda s, t: topology_loss(s, t, "signature", cloud_size=0), ValueError, "cloud_size"),
        (lambda s, t: TopologyLoss("ripsnet"), ValueError, "ripsnet="),
        (lambda s, t: TopologyLoss("exact"), ValueError, "vectorizer="),
        (lambda s, t: TopologyLoss("signature", cloud_size=2.5), TypeError, "cloud_size"),
        (lambda s, t: topology_loss(s, t, "signature", dims=(2,)), ValueError, "dims"),
        (lambda s, t: signature_loss(s[None], t[None, :5]), ValueError, r"same \(B, m\)"),
        (lambda s, t: signature_loss(s, t), ValueError, r"\(B, m, D\)"),
    ],
)
def test_bad_input_raises(call, error, match):
    student, teacher = features()
    with pytest.raises(error, match=match):
        call(student, teacher)


def test_repr():
    text = repr(TopologyLoss("ripsnet", ripsnet(), cloud_size=64, student_dim=4, teacher_dim=8))
    assert "mode='ripsnet', cloud_size=64" in text and "(ripsnet): RipsNet(" in text and "Linear(in_features=4" in text


def test_state_dict_round_trip_keeps_the_frozen_ripsnet():
    loss = TopologyLoss("ripsnet", ripsnet(), cloud_size=8, student_dim=5, teacher_dim=8)
    fresh = TopologyLoss("ripsnet", RipsNet(8, 6, phi=(8, 8), rho=(8,)), cloud_size=8, student_dim=5, teacher_dim=8)
    student, teacher = features()
    assert not torch.equal(fresh(student, teacher), loss(student, teacher))
    fresh.load_state_dict(loss.state_dict())
    torch.testing.assert_close(fresh(student, teacher), loss(student, teacher))
    fresh.train()
    assert fresh.projection.training and not fresh.ripsnet.training
    assert not any(p.requires_grad for p in fresh.ripsnet.parameters())


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("mode", ["ripsnet", "signature", "exact"])
def test_half_precision_features_are_compared_in_float32(mode, dtype):
    student, teacher = features(d_s=8, d_t=8)
    kwargs = dict(ripsnet=ripsnet()) if mode == "ripsnet" else {}
    if mode == "exact":
        kwargs = dict(vectorizer=PersistenceImage((6, 5), 0.4, "linear", (0, 3, 0, 3), dims=(0, 1)))
    low = student.detach().to(dtype).requires_grad_()
    value = topology_loss(low, teacher.detach().to(dtype), mode, cloud_size=8, **kwargs)
    assert value.dtype == dtype
    # the same as the float32 loss of the rounded features, rounded
    reference = topology_loss(low.detach().float(), teacher.detach().to(dtype).float(), mode, cloud_size=8, **kwargs)
    assert value.item() == reference.to(dtype).item()
    value.backward()
    assert low.grad.dtype == dtype and torch.isfinite(low.grad.float()).all()


def test_signature_padding_may_hold_nan():
    student, teacher = features(n=10, d_s=3, d_t=3)
    mask = torch.tensor([[True] * 8 + [False] * 2])
    dirty_s = torch.cat([student[:8], torch.full((2, 3), math.nan)]).detach().requires_grad_()
    dirty_t = torch.cat([teacher[:8], torch.full((2, 3), math.inf)]).detach()
    value = signature_loss(dirty_s[None], dirty_t[None], mask=mask)
    torch.testing.assert_close(value, signature_loss(student[None, :8], teacher[None, :8].detach()))
    value.sum().backward()
    assert torch.isfinite(dirty_s.grad).all() and (dirty_s.grad[8:] == 0).all()


# --------------------------------------------------------------------------- feature maps (cubical)
def maps(n=4, c_s=3, c_t=5, side=9, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(n, c_s, side, side, generator=g, dtype=torch.float64, requires_grad=True),
            torch.randn(n, c_t, side, side, generator=g, dtype=torch.float64, requires_grad=True))


def map_images(dims=(0, 1)):
    return PersistenceImage(resolution=(6, 6), bandwidth=0.5, dims=dims, im_range=(-4.0, 4.0, 0.0, 8.0))


def test_cubical_mode_matches_images_of_gudhi_superlevel_diagrams():
    """An independent path: the channel mean standardised by hand, gudhi's cubical complex of its
    negation (the superlevel filtration), finite pairs into the same vectoriser."""
    student, teacher = maps()
    pi = map_images()
    loss = topology_loss(student, teacher, "cubical", vectorizer=pi, reduction="none")

    def reference_images(x):
        m = x.detach().mean(1)
        m = (m - m.mean((1, 2), keepdim=True)) / m.std((1, 2), unbiased=False, keepdim=True)
        per_dim = [[], []]
        for image in m.numpy():
            complex_ = gudhi.CubicalComplex(top_dimensional_cells=-image)
            complex_.compute_persistence(homology_coeff_field=2)
            for d in (0, 1):
                pairs = complex_.persistence_intervals_in_dimension(d).reshape(-1, 2)
                per_dim[d].append(torch.from_numpy(pairs[pairs[:, 1] < math.inf]))
        return pi(Diagrams.from_list(per_dim, dtype=torch.float64)).flatten(1)

    expected = (reference_images(student) - reference_images(teacher)).square().mean(-1)
    assert torch.allclose(loss, expected, rtol=1e-9, atol=1e-12)


def test_cubical_mode_is_zero_for_the_same_maps_at_any_scale_and_gradients_reach_the_student_only():
    student, teacher = maps(c_s=5)
    pi = map_images()
    same = topology_loss(teacher.detach().clone().requires_grad_(True), teacher, "cubical", vectorizer=pi)
    assert same.item() == 0.0
    rescaled = topology_loss(3 * teacher.detach() + 1, teacher, "cubical", vectorizer=pi)
    assert rescaled.item() < 1e-20
    value = topology_loss(student, teacher, "cubical", vectorizer=pi)
    value.backward()
    assert value.item() > 0 and student.grad.abs().sum() > 0 and teacher.grad is None


def test_cubical_module_projects_channels_with_a_1x1_convolution():
    student, teacher = maps(c_s=3, c_t=5)
    loss = TopologyLoss("cubical", vectorizer=map_images(), student_dim=3, teacher_dim=5).double()
    assert isinstance(loss.projection, torch.nn.Conv2d) and loss.projection.kernel_size == (1, 1)
    loss(student, teacher).backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in loss.projection.parameters())
    with pytest.raises(ValueError, match="student features must be 3 wide"):
        loss(teacher, teacher)
    assert loss(student, teacher).shape == () and TopologyLoss(
        "cubical", vectorizer=map_images(), reduction="none")(student, teacher).shape == (4,)


def test_cubical_mode_gradcheck():
    student, teacher = maps(n=2, side=6, seed=3)
    pi = map_images(dims=(1,))
    assert torch.autograd.gradcheck(lambda s: topology_loss(s, teacher, "cubical", vectorizer=pi), (student,))


def test_mean_feature_map_of_a_constant_map_is_zero_with_finite_gradients():
    features = torch.ones(1, 2, 3, 3, requires_grad=True)
    out = mean_feature_map(features)
    assert torch.equal(out, torch.zeros(1, 3, 3))
    out.sum().backward()
    assert torch.isfinite(features.grad).all()


def test_cubical_mode_keeps_half_precision_out():
    student, teacher = (x.detach().half() for x in maps())
    assert topology_loss(student, teacher, "cubical", vectorizer=map_images()).dtype == torch.float16


@pytest.mark.parametrize("call,error,match", [
    (lambda s, t: topology_loss(s, t[:, :, :5], "cubical", vectorizer=map_images()), ValueError, "same n samples"),
    (lambda s, t: topology_loss(s[:2], t, "cubical", vectorizer=map_images()), ValueError, "same n samples"),
    (lambda s, t: topology_loss(s, t, "cubical"), ValueError, "vectorizer"),
    (lambda s, t: topology_loss(s, t, "cubical", vectorizer=map_images(), cloud_size=2), ValueError, "cloud_size"),
    (lambda s, t: topology_loss(s.mean((2, 3)), t.mean((2, 3)), "cubical", vectorizer=map_images()), ValueError,
     "student"),
    (lambda s, t: topology_loss(s.long(), t, "cubical", vectorizer=map_images()), TypeError, "student"),
    (lambda s, t: topology_loss(s, t.detach().index_fill(0, torch.tensor([0]), math.nan), "cubical",
                                vectorizer=map_images()), ValueError, "teacher"),
    (lambda s, t: topology_loss(s, t, "cubical", vectorizer=map_images(dims=(2,))), ValueError, "dimensions 0 and 1"),
    (lambda s, t: TopologyLoss("cubical"), ValueError, "vectorizer"),
    (lambda s, t: mean_feature_map(s[0]), ValueError, "features"),
])
def test_cubical_mode_bad_input_raises(call, error, match):
    student, teacher = maps()
    with pytest.raises(error, match=match):
        call(student, teacher)


# --------------------------------------------------------------------------- wasserstein mode


def gudhi_diagram(points, dim):
    """Finite pairs of dimension ``dim`` of gudhi's Rips complex of ``points``."""
    tree = gudhi.RipsComplex(points=points.detach().double().numpy()).create_simplex_tree(max_dimension=dim + 1)
    tree.persistence()
    pairs = tree.persistence_intervals_in_dimension(dim)
    return pairs[pairs[:, 1] < math.inf].reshape(-1, 2)


@pytest.mark.parametrize("order", [1.0, 2.0])
def test_wasserstein_mode_is_gudhis_distance_between_gudhis_diagrams(order):
    pytest.importorskip("ot", reason="the oracle gudhi.wasserstein needs POT (a test dependency, not a core one)")
    from gudhi.wasserstein import wasserstein_distance as gudhi_wasserstein

    student, teacher = features(n=24, d_s=3, d_t=4)
    student = student.detach().double().requires_grad_()
    teacher = teacher.detach().double()
    value = topology_loss(student, teacher, "wasserstein", cloud_size=12, dims=(0, 1), order=order, reduction="none")
    expected = [sum(gudhi_wasserstein(gudhi_diagram(s, d), gudhi_diagram(t, d), order=order) for d in (0, 1))
                for s, t in zip(student.split(12), teacher.split(12))]
    torch.testing.assert_close(value, torch.tensor(expected, dtype=torch.float64), rtol=1e-9, atol=1e-12)
    value.sum().backward()
    assert student.grad.abs().sum() > 0


def test_wasserstein_mode_gradcheck_and_teacher_detached():
    g = torch.Generator().manual_seed(5)
    student = torch.randn(7, 2, dtype=torch.float64, generator=g, requires_grad=True)
    teacher = torch.randn(7, 3, dtype=torch.float64, generator=g, requires_grad=True)
    assert torch.autograd.gradcheck(lambda s: topology_loss(s, teacher, "wasserstein", dims=(0, 1), order=2.0),
                                    student)
    loss = TopologyLoss("wasserstein", dims=(0, 1), student_dim=2, teacher_dim=3).double()
    loss(student, teacher).backward()
    assert teacher.grad is None and all(p.grad is not None for p in loss.projection.parameters())
    assert repr(loss).startswith("TopologyLoss(\n  mode='wasserstein', cloud_size=None, reduction='mean', dims=(0, 1), "
                                 "order=1.0")


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_wasserstein_mode_half_precision_is_computed_in_float32(dtype):
    student, teacher = features(d_s=8, d_t=8)
    low = student.detach().to(dtype).requires_grad_()
    value = topology_loss(low, teacher.detach().to(dtype), "wasserstein", cloud_size=8)
    reference = topology_loss(low.detach().float(), teacher.detach().to(dtype).float(), "wasserstein", cloud_size=8)
    assert value.dtype == dtype and value.item() == reference.to(dtype).item()
    value.backward()
    assert low.grad.dtype == dtype and torch.isfinite(low.grad.float()).all()


def test_exact_mode_keeps_its_fitted_vectorizer_through_state_dict():
    """Issue 13, item 9: a TopologyLoss holding a fitted PersistenceImage, saved and loaded,
    comes back fitted."""
    import io

    student, teacher = features(n=16, d_s=4, d_t=4)
    with torch.no_grad():
        from torchtopo import rips_persistence

        dgm = rips_persistence(teacher.reshape(2, 8, 4), 1)
    loss = TopologyLoss("exact", vectorizer=PersistenceImage((5, 5), "quantile", dims=(0, 1)).fit(dgm), cloud_size=8)
    buffer = io.BytesIO()
    torch.save(loss.state_dict(), buffer)
    buffer.seek(0)
    fresh = TopologyLoss("exact", vectorizer=PersistenceImage((5, 5), "quantile", dims=(0, 1)), cloud_size=8)
    with pytest.raises(RuntimeError, match="not fitted"):
        fresh(student, teacher)
    fresh.load_state_dict(torch.load(buffer, weights_only=True))
    assert fresh.vectorizer.bandwidth_ == loss.vectorizer.bandwidth_
    torch.testing.assert_close(fresh(student, teacher), loss(student, teacher), rtol=0, atol=0)


# --------------------------------------------------------------------------- summary statistics


def test_summary_statistics_are_the_total_persistence_of_gudhis_diagrams():
    from torchtopo import SummaryStatisticLoss, rips_persistence
    from torchtopo.functional import summary_statistic_loss

    g = torch.Generator().manual_seed(2)
    clouds = torch.randn(3, 20, 2, dtype=torch.float64, generator=g)
    targets = torch.randn(3, 20, 2, dtype=torch.float64, generator=g)
    dgm, target = rips_persistence(clouds, 1), rips_persistence(targets, 1)

    def total(points, dims, p):
        return [sum(float((np.abs(np.diff(gudhi_diagram(c, d), axis=1)) ** p).sum()) for d in dims) for c in points]

    import numpy as np

    for p in (1.0, 2.0, 0.5):
        expected = torch.tensor(total(clouds, (0, 1), p), dtype=torch.float64)
        torch.testing.assert_close(summary_statistic_loss(dgm, p=p, dims=(0, 1), reduction="none"), expected)
        per_dim = [torch.tensor(total(c, (d,), p), dtype=torch.float64) for c in (clouds, targets) for d in (0, 1)]
        gap = (per_dim[0] - per_dim[2]).abs() + (per_dim[1] - per_dim[3]).abs()
        torch.testing.assert_close(summary_statistic_loss(dgm, target, p=p, dims=(0, 1), reduction="sum"), gap.sum())
        norm = torch.tensor(total(clouds, (1,), p), dtype=torch.float64) ** (1 / p)
        torch.testing.assert_close(SummaryStatisticLoss("p_norm", p, dims=(1,))(dgm), norm.mean())


def test_summary_statistic_gradients():
    from torchtopo.functional import summary_statistic_loss

    pairs = torch.tensor([[[0.0, 1.0], [0.5, 0.7], [0.2, 0.2]], [[0.1, 0.4], [0.0, 0.0], [0.0, 0.0]]],
                         dtype=torch.float64, requires_grad=True)
    mask = torch.tensor([[True, True, True], [True, False, False]])
    edges = torch.full((2, 3, 2), -1)

    def loss(x, statistic):
        return summary_statistic_loss(Diagrams((x,), (mask,), (edges,), (edges,)), statistic=statistic, p=1.5)

    for statistic in ("total_persistence", "p_norm"):
        assert torch.autograd.gradcheck(lambda x: loss(x, statistic), pairs)
    # total persistence with p = 2 of one bar (0, 1): 1, gradient (-2, 2) / 2 diagrams (mean)
    one = torch.tensor([[0.0, 1.0]], requires_grad=True)
    single = Diagrams.from_list([[one]])
    summary_statistic_loss(single).backward()
    assert one.grad.tolist() == [[-2.0, 2.0]]


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda: topology_loss(*features(), "wasserstein", dims=()), ValueError, "dims"),
        (lambda: TopologyLoss("wasserstein", dims=(0,), order=0.5)(*features(d_s=8)), ValueError, "order"),
    ],
)
def test_wasserstein_mode_bad_input_raises(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_summary_statistic_bad_input_raises():
    from torchtopo import SummaryStatisticLoss
    from torchtopo.functional import summary_statistic_loss

    dgm = Diagrams.from_list([[torch.tensor([[0.0, 1.0]])], [torch.zeros(0, 2)]])
    with pytest.raises(ValueError, match="statistic"):
        SummaryStatisticLoss("entropy")
    with pytest.raises(ValueError, match="p must be"):
        SummaryStatisticLoss(p=0)
    with pytest.raises(TypeError, match="Diagrams"):
        summary_statistic_loss(torch.zeros(1, 2))
    with pytest.raises(ValueError, match="same number"):
        summary_statistic_loss(dgm, Diagrams.from_list([[torch.zeros(1, 2), torch.zeros(1, 2)]] * 2))
    with pytest.raises(ValueError, match="dim must be in"):
        summary_statistic_loss(dgm, dims=(2,))
    with pytest.raises(ValueError, match="reduction"):
        summary_statistic_loss(dgm, reduction="max")
