"""RipsNet: architecture, invariances, ragged input, save/load, fitting on noisy circles."""

import json
import math
import pickle
from pathlib import Path

import gudhi
import numpy as np
import pytest
import torch

from torchtopo.ripsnet import RipsNet, fit_ripsnet, masked_pool, r2_score, segment_pool, split_indices
from torchtopo.vectorize import PersistenceImage

POOLINGS = ["mean", "sum", "max"]


def small_net(pooling="mean", **kw):
    torch.manual_seed(0)
    return RipsNet(3, 5, phi=(8, 6), rho=(7,), pooling=pooling, **kw).double()


@pytest.mark.parametrize("d, phi, params", [(64, (64, 32, 32), 113_896), (128, (128, 64, 64), 137_128),
                                            (1024, (512, 256, 256), None), (2048, (1024, 512, 256), None)])
def test_for_features_is_topkds_table(d, phi, params):
    net = RipsNet.for_features(d, 400)
    assert net.phi_widths == phi and net.rho_widths == (50, 100, 200)
    assert all(layer.bias is None for layer in net.rho if isinstance(layer, torch.nn.Linear))
    assert isinstance(net.rho[-1], torch.nn.Sigmoid)
    if params is not None:
        assert sum(p.numel() for p in net.parameters()) == params


@pytest.mark.parametrize("pooling", POOLINGS)
def test_permutation_and_padding_invariance(pooling):
    net = small_net(pooling)
    points = torch.randn(4, 9, 3, dtype=torch.float64)
    lengths = torch.tensor([9, 5, 1, 7])
    mask = torch.arange(9) < lengths.unsqueeze(1)
    reference = torch.stack([net(p[:n]) for p, n in zip(points, lengths)])
    padded = torch.where(mask.unsqueeze(-1), points, math.nan)  # padding may hold anything
    torch.testing.assert_close(net(padded, mask=mask), reference)
    perm = torch.randperm(9)
    torch.testing.assert_close(net(padded[:, perm], mask=mask[:, perm]), reference)


@pytest.mark.parametrize("pooling", POOLINGS)
def test_ragged_equals_padded_with_gradients(pooling):
    net = small_net(pooling)
    lengths = [3, 1, 6]
    clouds = [torch.randn(n, 3, dtype=torch.float64, requires_grad=True) for n in lengths]
    padded = torch.nn.utils.rnn.pad_sequence(clouds, batch_first=True)
    mask = torch.arange(6) < torch.tensor(lengths).unsqueeze(1)
    batch = torch.repeat_interleave(torch.arange(3), torch.tensor(lengths))
    ragged = net(torch.cat(clouds), batch=batch, batch_size=3)
    torch.testing.assert_close(ragged, net(padded, mask=mask))
    torch.testing.assert_close(net(torch.cat(clouds), batch=batch), ragged)
    grads = torch.autograd.grad(ragged.sum(), clouds)
    grads_padded = torch.autograd.grad(net(padded, mask=mask).sum(), clouds)
    for g, h in zip(grads, grads_padded):
        torch.testing.assert_close(g, h)


def test_pool_functions():
    x = torch.tensor([[[1.0, -1.0], [3.0, 2.0], [50.0, 50.0]]])
    mask = torch.tensor([[True, True, False]])
    assert masked_pool(x, mask=mask, pooling="max").tolist() == [[3.0, 2.0]]
    assert masked_pool(x, mask=mask, pooling="sum").tolist() == [[4.0, 1.0]]
    assert masked_pool(x, pooling="max").tolist() == [[50.0, 50.0]]
    assert segment_pool(x[0], torch.tensor([1, 0, 1]), 2, "mean").tolist() == [[3.0, 2.0], [25.5, 24.5]]


def test_unbatched_input_and_gradcheck():
    net = small_net("mean")
    cloud = torch.randn(5, 3, dtype=torch.float64, requires_grad=True)
    assert net(cloud).shape == (5,)
    torch.testing.assert_close(net(cloud), net(cloud.unsqueeze(0))[0])
    assert torch.autograd.gradcheck(net, (cloud,))


def test_save_load_round_trip_keeps_the_vectorizer(tmp_path):
    net = RipsNet(2, 12, phi=(4,), rho=(6,), pooling="sum", activation="gelu", output_activation=None, rho_bias=False)
    h0 = [torch.tensor([[0.0, 0.5], [0.0, 1.0]]), torch.tensor([[0.0, 0.2]])]
    vectorizer = PersistenceImage((3, 12), "quantile", "topkd", dims=(0,), normalize=True).fit(h0)
    net.save(tmp_path / "net.pt", vectorizer=vectorizer)
    loaded, vec = RipsNet.load(tmp_path / "net.pt")
    assert loaded.to_config() == net.to_config() and vec.to_config() == vectorizer.to_config()
    x = torch.randn(2, 4, 2)
    torch.testing.assert_close(loaded(x), net(x), rtol=0, atol=0)
    torch.testing.assert_close(vec(h0), vectorizer(h0), rtol=0, atol=0)
    net.save(tmp_path / "bare.pt")
    assert RipsNet.load(tmp_path / "bare.pt")[1] is None


class _Exploit:
    def __reduce__(self):
        return (print, ("pwned",))


def test_load_refuses_code_and_foreign_files(tmp_path):
    with open(tmp_path / "evil.pt", "wb") as f:
        pickle.dump({"format": "torchtopo.RipsNet/1", "x": _Exploit()}, f, protocol=2)
    with pytest.raises(pickle.UnpicklingError):
        RipsNet.load(tmp_path / "evil.pt")
    torch.save({"state_dict": {}}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a RipsNet file"):
        RipsNet.load(tmp_path / "other.pt")


def test_load_checks_the_architecture_against_the_weights_before_allocating(tmp_path):
    net = RipsNet(2, 3, phi=(4,), rho=(5,))
    net.save(tmp_path / "net.pt")
    payload = torch.load(tmp_path / "net.pt", weights_only=True)
    # A crafted config of 100,000-wide layers beside small tensors: refused from the shapes alone
    # (building it would allocate about 40 GB).
    payload["config"] = json.dumps({**net.to_config(), "phi": [100_000, 100_000], "rho": [100_000]})
    torch.save(payload, tmp_path / "crafted.pt")
    with pytest.raises(ValueError, match="do not match the saved architecture"):
        RipsNet.load(tmp_path / "crafted.pt")
    payload["config"] = json.dumps({**net.to_config(), "in_dim": 2.5})
    torch.save(payload, tmp_path / "float.pt")
    with pytest.raises(ValueError, match="invalid RipsNet config"):
        RipsNet.load(tmp_path / "float.pt")


@pytest.mark.parametrize("d", [1, 2, 5, 16, 31])
def test_for_features_keeps_a_usable_bottleneck_for_small_d(d):
    net = RipsNet.for_features(d, 20)
    assert net.phi_widths == (32, 16, 16) and net(torch.randn(3, 7, d)).shape == (3, 20)


def test_r2_against_the_training_mean_on_targets_with_a_known_answer():
    # Training targets have mean 0.5; validation targets are 0 and 1 (MSE of the constant: 0.25).
    # A perfect model scores 1; predicting 0.5 everywhere scores 0; a model off by 0.25 scores 0.75.
    assert r2_score(0.0, 0.25) == 1.0 and r2_score(0.25, 0.25) == 0.0 and r2_score(0.0625, 0.25) == 0.75
    assert r2_score(0.5, 0.25) == -1.0 and math.isnan(r2_score(0.1, 0.0))
    clouds = torch.zeros(6, 2, 1)  # identical clouds: the model can only predict one value
    targets = torch.tensor([[0.25], [0.75], [0.25], [0.75], [0.0], [1.0]])
    history = fit_ripsnet(RipsNet(1, 1, phi=(2,), rho=(), output_activation=None), clouds, targets, epochs=3,
                          val_fraction=2 / 6, split="ordered", progress=False)
    assert history["constant_val_loss"] == pytest.approx(0.25)
    assert history["best_val_r2"] == pytest.approx(1 - history["best_val_loss"] / 0.25)
    assert history["val_r2"] == pytest.approx([1 - v / 0.25 for v in history["val_loss"]])
    assert history["best_val_r2"] <= 1e-6  # identical clouds carry nothing beyond the constant


def test_ordered_split_holds_out_the_last_clouds_in_order():
    train, val = split_indices(8, 0.25, "ordered")
    assert train.tolist() == list(range(6)) and val.tolist() == [6, 7]
    train, val = split_indices(8, 0.25, "random", seed=3)
    assert sorted(train.tolist() + val.tolist()) == list(range(8)) and len(val) == 2


def test_min_delta_ignores_improvements_below_it():
    clouds, targets = torch.randn(20, 5, 3), torch.rand(20, 2)
    torch.manual_seed(0)
    history = fit_ripsnet(RipsNet(3, 2, phi=(4,), rho=(4,)), clouds, targets, epochs=50, patience=5,
                          min_delta=10.0, progress=False)
    # no decrease is larger than 10: epoch 0 stays the best and training stops 5 epochs later
    assert history["best_epoch"] == 0 and len(history["val_loss"]) == 6


def test_readme_snippet_learns(monkeypatch):
    """The README's API snippet, as written, gives a RipsNet that beats the constant predictor on
    held-out clouds."""
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    snippet = readme.split("```python\n", 1)[1].split("```", 1)[0]
    namespace: dict = {}
    exec(compile(snippet, "README.md", "exec"), namespace)
    history = namespace["history"]
    assert history["best_val_r2"] > 0.5, history["best_val_r2"]


def noisy_circles(n_clouds: int, n_points: int = 60, seed: int = 0) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """1 to 3 noisy circles of radius 0.5 to 1 on a fixed triangle of centres (as in the RipsNet
    paper), and the H1 diagrams of their Rips filtrations (gudhi). Angles are stratified so that
    the H1 bars depend on the number and radii of the circles rather than on chance gaps."""
    rng = np.random.default_rng(seed)
    centres = np.array([[0.0, 0.0], [3.0, 0.0], [1.5, 2.6]])
    clouds, diagrams = [], []
    for _ in range(n_clouds):
        k = int(rng.integers(1, 4))
        sizes = [n_points // k] * (k - 1) + [n_points - (n_points // k) * (k - 1)]
        parts = []
        for centre, m in zip(centres[rng.permutation(3)[:k]], sizes):
            angles = (np.arange(m) + rng.uniform(size=m)) * 2 * np.pi / m
            radius = rng.uniform(0.5, 1.0)
            parts.append(centre + radius * np.c_[np.cos(angles), np.sin(angles)] + 0.05 * rng.normal(size=(m, 2)))
        cloud = np.concatenate(parts)
        tree = gudhi.RipsComplex(points=cloud).create_simplex_tree(max_dimension=2)
        tree.persistence()
        clouds.append(cloud)
        diagrams.append(torch.tensor(tree.persistence_intervals_in_dimension(1), dtype=torch.float32).reshape(-1, 2))
    return torch.tensor(np.stack(clouds), dtype=torch.float32), diagrams


def test_fit_on_noisy_circles_beats_a_constant_predictor():
    clouds, diagrams = noisy_circles(300)
    vectorizer = PersistenceImage((10, 10), "quantile", "linear", normalize=True).fit(diagrams)
    targets = vectorizer(diagrams).flatten(1)
    torch.manual_seed(0)
    net = RipsNet(2, vectorizer.num_features, phi=(32, 32, 32))
    history = fit_ripsnet(net, clouds, targets, epochs=200, lr=1e-2, patience=40, progress=False)
    ratio = history["best_val_loss"] / history["constant_val_loss"]
    print(f"RipsNet validation MSE / constant predictor's = {ratio:.3f} (best epoch {history['best_epoch']})")
    assert ratio < 0.25 and history["best_val_r2"] == pytest.approx(1 - ratio)
    # the weights kept are those of the best epoch, and the returned model is in eval mode
    order = torch.randperm(300, generator=torch.Generator().manual_seed(0))
    val = order[: round(0.2 * 300)]
    with torch.no_grad():
        assert torch.nn.functional.mse_loss(net(clouds[val]), targets[val]).item() == pytest.approx(
            history["best_val_loss"], rel=1e-5)
    assert min(history["val_loss"]) == history["best_val_loss"] and not net.training


def test_fit_shows_progress_and_logs_to_tensorboard(tmp_path, capsys):
    pytest.importorskip("tqdm", reason="progress=True needs tqdm (an optional dependency)")
    pytest.importorskip("tensorboard", reason="log_dir needs tensorboard (an optional dependency)")
    clouds, targets = torch.randn(20, 5, 3), torch.rand(20, 2)
    fit_ripsnet(RipsNet(3, 2, phi=(4,), rho=(4,)), clouds, targets, epochs=2, log_dir=tmp_path / "tb")
    assert "RipsNet" in capsys.readouterr().err  # the tqdm bar
    assert list((tmp_path / "tb").glob("events.out.tfevents.*"))


def test_early_stopping_stops_at_patience():
    clouds, targets = torch.randn(20, 5, 3), torch.rand(20, 2)
    torch.manual_seed(0)
    history = fit_ripsnet(RipsNet(3, 2, phi=(4,), rho=(4,)), clouds, targets, epochs=500, lr=1.0, patience=3,
                          progress=False)
    assert len(history["val_loss"]) == history["best_epoch"] + 1 + 3 < 500


def test_fit_accepts_a_list_of_clouds():
    clouds = [torch.randn(n, 2) for n in (3, 5, 4, 6)]
    torch.manual_seed(0)
    history = fit_ripsnet(RipsNet(2, 1, phi=(3,), rho=()), clouds, torch.rand(4, 1), epochs=2, progress=False,
                          val_fraction=0.5)
    assert len(history["train_loss"]) == 2


@pytest.mark.parametrize(
    "call, error, match",
    [
        (lambda n: n(torch.randn(2, 4, 2)), ValueError, r"\(B, N, 3\)"),
        (lambda n: n(torch.randn(2, 2, 4, 3)), ValueError, "points"),
        (lambda n: n(torch.randn(2, 4, 3, dtype=torch.float64).long()), TypeError, "floating"),
        (lambda n: n(torch.randn(2, 4, 3), mask=torch.ones(2, 4)), TypeError, "mask"),
        (lambda n: n(torch.randn(2, 4, 3), mask=torch.ones(4, 2, dtype=torch.bool)), ValueError, "mask"),
        (lambda n: n(torch.randn(2, 4, 3), torch.ones(2, 4, dtype=torch.bool)), TypeError, "positional"),
        (lambda n: n(torch.full((1, 2, 3), math.nan)), ValueError, "points must be finite"),
        (lambda n: n(torch.full((1, 2, 3), math.inf)), ValueError, "points must be finite"),
        (lambda n: n(torch.full((1, 2, 3), -math.inf)), ValueError, "points must be finite"),
        (lambda n: n(torch.full((3, 3), math.inf), batch=torch.tensor([0, 0, 1])), ValueError, "points must be finite"),
        (lambda n: n(torch.randn(2, 2, 3, device="meta")), ValueError, "meta"),
        (lambda n: n(torch.randn(2, 2, 3), mask=torch.tensor([[True, True], [False, False]])), ValueError, "at least one"),
        (lambda n: n(torch.randn(0, 3)), ValueError, "at least one point"),
        (lambda n: n(torch.randn(3, 3), batch=torch.tensor([0.0, 0.0, 1.0])), TypeError, "long"),
        (lambda n: n(torch.randn(3, 3), batch=torch.tensor([0, 0, 2])), ValueError, "at least one point"),
        (lambda n: n(torch.randn(3, 3), batch=torch.tensor([0, -1, 1])), ValueError, r"\[0, 2\)"),
        (lambda n: n(torch.randn(3, 3), mask=torch.ones(3, dtype=torch.bool), batch=torch.zeros(3, dtype=torch.long)),
         ValueError, "not both"),
        (lambda n: fit_ripsnet(n, torch.randn(4, 2, 3), torch.rand(3, 5), progress=False), ValueError, "targets"),
        (lambda n: fit_ripsnet(n, torch.randn(4, 2, 3), torch.rand(4, 5), val_fraction=1.0), ValueError, "val_fraction"),
        (lambda n: fit_ripsnet(n, torch.randn(1, 2, 3), torch.rand(1, 5), progress=False), ValueError, "at least 2"),
        (lambda n: RipsNet(3, 5, pooling="median"), ValueError, "pooling"),
        (lambda n: RipsNet(3, 5, activation="swish"), ValueError, "activation"),
        (lambda n: RipsNet(3, 0), ValueError, "out_dim must be >= 1"),
        (lambda n: RipsNet(2.5, 5), TypeError, "in_dim must be an int"),
        (lambda n: RipsNet(3, 5.0), TypeError, "out_dim must be an int"),
        (lambda n: RipsNet(3, 5, phi=(4.5,)), TypeError, r"phi\[0\]"),
        (lambda n: RipsNet(3, 5, phi=()), ValueError, "phi must list"),
        (lambda n: fit_ripsnet(n, torch.randn(4, 2, 3), torch.rand(4, 5) * 250, progress=False), ValueError,
         r"targets lie in \[.*sigmoid.*normalize=True"),
        (lambda n: fit_ripsnet(n, torch.randn(4, 2, 3), torch.rand(4, 5) - 0.5, progress=False), ValueError,
         "targets lie in"),
        (lambda n: fit_ripsnet(n, torch.randn(4, 2, 3), torch.full((4, 5), math.nan), progress=False), ValueError,
         "targets must be finite"),
        (lambda n: fit_ripsnet(n, torch.randn(4, 2, 3), torch.full((4, 5), math.inf), progress=False), ValueError,
         "targets must be finite"),
        (lambda n: fit_ripsnet(n, torch.randn(4, 2, 3), torch.rand(4, 5), batch_size=0, progress=False), ValueError,
         "batch_size must be >= 1"),
        (lambda n: fit_ripsnet(n, torch.randn(4, 2, 3), torch.rand(4, 5), batch_size=-3, progress=False), ValueError,
         "batch_size must be >= 1"),
        (lambda n: fit_ripsnet(n, torch.randn(4, 2, 3), torch.rand(4, 5), batch_size=2.0, progress=False), TypeError,
         "batch_size must be an int"),
        (lambda n: fit_ripsnet(n, torch.randn(4, 2, 3), torch.rand(4, 5), epochs=0, progress=False), ValueError,
         "epochs must be >= 1"),
        (lambda n: fit_ripsnet(n, torch.randn(4, 2, 3), torch.rand(4, 5), patience=0, progress=False), ValueError,
         "patience must be >= 1"),
        (lambda n: fit_ripsnet(n, torch.randn(4, 2, 3), torch.rand(4, 5), lr=-1.0, progress=False), ValueError, "lr"),
        (lambda n: fit_ripsnet(n, torch.randn(4, 2, 3), torch.rand(4, 5), min_delta=-1e-3, progress=False),
         ValueError, "min_delta"),
        (lambda n: fit_ripsnet(n, torch.randn(4, 2, 3), torch.rand(4, 5), split="sorted", progress=False),
         ValueError, "split"),
    ],
)
def test_bad_input_raises(call, error, match):
    with pytest.raises(error, match=match):
        call(RipsNet(3, 5, phi=(4,), rho=(4,)))


def test_values_that_overflow_inside_are_refused():
    net = RipsNet(3, 5, phi=(4,), rho=(4,))
    with torch.no_grad():
        for p in net.parameters():
            p.fill_(1.0)  # 3 inputs of 3e38 sum past float32's maximum in the first layer
    with pytest.raises(ValueError, match="overflow inside"):
        net(torch.full((1, 2, 3), 3e38))
    assert torch.isfinite(net.double()(torch.full((1, 2, 3), 3e38, dtype=torch.float64))).all()


def test_repr():
    assert "in_dim=3, out_dim=5, pooling='max'" in repr(RipsNet(3, 5, pooling="max"))


@pytest.mark.parametrize("activation", ["sigmoid", "tanh", None])
def test_fit_starts_at_the_data_with_input_norm_and_output_bias(activation):
    # points with very different coordinate scales (one constant coordinate), targets far from
    # the activation's midpoint: the fit standardises the inputs and starts the output at the
    # mean training target
    g = torch.Generator().manual_seed(0)
    clouds = torch.randn(30, 6, 3, generator=g, dtype=torch.float64) * torch.tensor([100.0, 0.01, 0.0]) + \
        torch.tensor([5.0, -2.0, 7.0], dtype=torch.float64)
    targets = 0.8 + 0.1 * torch.rand(30, 4, generator=g, dtype=torch.float64)
    torch.manual_seed(0)
    net = RipsNet(3, 4, phi=(8,), rho=(6,), output_activation=activation, rho_bias=False,
                  input_norm=True, output_bias=True).double()
    assert net.rho[-2].bias is not None and net.rho[0].bias is None
    train, _ = split_indices(30, 0.2, "random", 0)
    fit_ripsnet(net, clouds, targets, epochs=1, lr=1e-12, progress=False)  # no learning: the initial values
    points = clouds[train].reshape(-1, 3)
    torch.testing.assert_close(net.input_shift, points.mean(0))
    torch.testing.assert_close(net.input_scale, torch.cat([points[:, :2].std(0), torch.ones(1, dtype=points.dtype)]))
    out = net.rho[-1](net.rho[-2].bias)  # the output for a zero hidden layer
    torch.testing.assert_close(out, targets[train].mean(0))
    # the inputs reach phi standardised (the constant coordinate at 0)
    seen = []
    net.phi.register_forward_pre_hook(lambda module, args: seen.append(args[0]))
    net(clouds[train])
    assert seen[0][..., :2].reshape(-1, 2).std(0).sub(1).abs().max() < 1e-9 and (seen[0][..., 2] == 0).all()


def test_input_norm_and_output_bias_are_saved_and_off_by_default(tmp_path):
    assert not RipsNet.for_features(64, 20).input_norm and "input_shift" not in RipsNet(3, 5).state_dict()
    net = RipsNet.for_features(40, 20, input_norm=True, output_bias=True)
    assert sum(p.numel() for p in net.parameters()) == sum(
        p.numel() for p in RipsNet.for_features(40, 20).parameters()) + 20
    fit_ripsnet(net, torch.rand(12, 5, 40) * 3, torch.rand(12, 20), epochs=2, progress=False)
    net.save(tmp_path / "net.pt")
    loaded, _ = RipsNet.load(tmp_path / "net.pt")
    assert loaded.to_config() == net.to_config() and "input_norm=True, output_bias=True" in repr(loaded)
    x = torch.randn(2, 5, 40)
    torch.testing.assert_close(loaded(x), net(x), rtol=0, atol=0)
    # padding may still hold anything
    mask = torch.tensor([[True] * 3 + [False] * 2] * 2)
    torch.testing.assert_close(net(torch.where(mask.unsqueeze(-1), x, torch.nan), mask=mask), net(x, mask=mask))
