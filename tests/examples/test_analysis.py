"""The TopKD analysis suite on a tiny digits pipeline: Table 8 (through the CLI), UMAP and
class-separation scores, diagram figures and the training trajectory, the ablation sweep
(layer views, exact loss, grid checks)."""

import csv
import json
import math
import os

import numpy as np
import pytest
import torch
import yaml

from topkd import analysis, sweep, visualize
from topkd.pipeline import run_pair
from topkd.config import CONFIG_DIR, DEFAULTS, deep_merge
from topkd.distillers import DISTILLERS, build_distiller
from topkd.engine import load_model_weights
from topkd.layout import layout
from topkd.models import MODELS, build_model
from topkd.report import TABLE8_COLUMNS, write_table8


def _config(out_dir, **overrides):
    """Digits subset, resnet8 teacher and students, 16-point clouds: every stage in seconds."""
    cfg = deep_merge(DEFAULTS, {
        "name": "tiny", "out_dir": str(out_dir), "seeds": [0], "progress": False,
        "dataset": {"name": "digits", "num_workers": 0, "batch_size": 32,
                    "train_subset": 192, "test_subset": 160},
        "train": {"epochs": 1, "lr": 0.05, "milestones": [1]},
        "teacher": {"arch": "resnet8", "train": {"epochs": 3, "milestones": [3]}},
        "student": {"arch": "resnet8"},
        "compare": ["vanilla", "kd", "topkd"],
        "topology": {"cloud_size": 16, "passes": 2, "shard_size": 8,
                     "ripsnet": {"epochs": 30, "patience": 30, "batch_size": 8}},
    })
    return deep_merge(cfg, overrides)


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    """A finished tiny pipeline (teacher, topology stages, vanilla/KD/TopKD students) and the
    path of its YAML config."""
    root = tmp_path_factory.mktemp("analysis")
    cfg = _config(root / "run")
    path = root / "tiny.yaml"
    with open(path, "w") as f:
        yaml.safe_dump(cfg, f)
    run_pair(cfg)
    return cfg, str(path)


def _png_size(path):
    import matplotlib.image

    assert os.path.getsize(path) > 5000
    height, width = matplotlib.image.imread(path).shape[:2]
    return width, height


# ------------------------------------------------------------------------------ Table 8

def test_table8_cli_writes_finite_non_negative_errors(pipeline, tmp_path):
    import run_analysis

    cfg, path = pipeline
    out = tmp_path / "t8"
    assert run_analysis.main(["table8", "--config", path, "--out", str(out)]) == 0
    with open(out / "table8.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["distiller"] for r in rows] == ["vanilla", "kd", "topkd"]
    assert list(rows[0]) == list(TABLE8_COLUMNS)
    for r in rows:
        # one pass: 192 // 16 = 12 clouds (batches of 8 clouds and 4)
        assert int(r["num_clouds"]) == 12 and int(r["cloud_size"]) == 16
        values = {k: float(r[k]) for k in ("ripsnet_train_l2", "teacher_err", "student_err",
                                           "approx_dist", "exact_dist", "triangle_bound")}
        assert all(math.isfinite(v) and v >= 0 for v in values.values()), values
        # the poster's triangle inequality holds cloud by cloud, hence on the means
        assert values["exact_dist"] <= values["triangle_bound"] + 1e-5
    # the teacher side does not depend on the student
    assert len({r["teacher_err"] for r in rows}) == 1
    rn = json.load(open(layout(cfg).ripsnet_metrics))
    assert float(rows[0]["ripsnet_train_l2"]) == pytest.approx(rn["train_l2"])
    assert float(rows[0]["ripsnet_r2"]) == pytest.approx(rn["r2"])
    md = (out / "table8.md").read_text()
    assert "| resnet8 | resnet8 |" in md and "‖p̂_S − p_S‖ topkd" in md and "**" in md
    assert "RipsNet R²" in md and f"| {rn['r2']:.3f} |" in md


def test_exact_images_match_the_diagrams_stage(pipeline):
    """The analysis' exact images of the teacher's saved clouds equal the stage's images."""
    cfg, _ = pipeline
    run = layout(cfg)
    _, vectorizer = analysis.load_pair_topology(cfg)
    clouds = torch.load(run.shard("clouds", 0), weights_only=True)
    images = torch.load(run.shard("images", 0), weights_only=True)
    torch.testing.assert_close(analysis.exact_images(clouds, vectorizer), images)


def test_table8_refuses_missing_runs(pipeline):
    cfg, _ = pipeline
    with pytest.raises(FileNotFoundError, match="has not finished"):
        analysis.approximation_errors(cfg, ["kd"], seeds=[7])
    with pytest.raises(ValueError, match="rows is empty"):
        write_table8([], "unused")


# --------------------------------------------------------------------- UMAP and scores

def test_class_agreement_on_known_features():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(4), 25)
    clusters = rng.standard_normal((4, 8)) * 20
    separated = clusters[labels] + 0.1 * rng.standard_normal((100, 8))
    assert visualize.class_agreement(separated, labels, k=5) == 1.0
    assert visualize.class_agreement(separated, rng.permutation(labels), k=5) < 0.5
    with pytest.raises(ValueError, match="k must be"):
        visualize.class_agreement(separated, labels, k=100)
    with pytest.raises(ValueError, match="labels"):
        visualize.class_agreement(separated, labels[:5])


def test_umap_figure_and_trained_features_beat_random(pipeline):
    cfg, _ = pipeline
    scores = visualize.umap_analysis(cfg, ["kd", "topkd"], seed=0, max_images=160, k=10)
    teacher = scores["teacher (resnet8)"]
    random = scores["random features"]
    # 10 balanced classes: random features agree at about the chance level 0.1
    assert random["knn_agreement"] < 0.2
    assert teacher["knn_agreement"] > random["knn_agreement"] + 0.1
    for s in scores.values():
        assert 0 <= s["knn_agreement"] <= 1 and -1 <= s["silhouette"] <= 1
    out = analysis.analysis_dir(cfg)
    assert _png_size(os.path.join(out, "umap.png")) == (1200, 400)  # 3 panels of 4x4 in
    saved = json.load(open(os.path.join(out, "umap_scores.json")))
    assert saved["num_images"] == 160 and set(saved["scores"]) == set(scores)
    assert any(f.startswith("events.out.tfevents") for f in os.listdir(os.path.join(out, "tb")))


def test_umap_missing_dependency_message(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "umap", None)
    with pytest.raises(ImportError, match="pip install umap-learn"):
        visualize.umap_embedding(np.zeros((5, 2)))


# -------------------------------------------------------------------- diagrams, trajectory

def test_diagram_comparison_figure(pipeline):
    cfg, _ = pipeline
    path = visualize.diagram_comparison(cfg, "topkd", seed=0, num_clouds=2)
    # 2 clouds x (teacher diagram, student diagram, one H0-curve panel), 3.2 in each
    assert _png_size(path) == (960, 640)
    with pytest.raises(ValueError, match="num_clouds=11: the test set holds 10 clouds"):
        visualize.probe_images(cfg, 11)


def test_trajectory_logs_every_epoch_resumes_and_plots(pipeline):
    cfg = deep_merge(pipeline[0], {"train": {"epochs": 2, "milestones": [2]}})
    # interrupted after one epoch, then resumed by the figure's command
    path = visualize.track_student(cfg, "topkd", seed=0, every=1, num_clouds=2, stop_after=1)
    assert torch.load(path, weights_only=True)["epochs"].tolist() == [0, 1]
    png = visualize.trajectory_figure(cfg, "topkd", seed=0, every=1, num_clouds=2)
    assert _png_size(png) == (1200, 400)
    log = torch.load(path, weights_only=True)
    assert log["epochs"].tolist() == [0, 1, 2]
    # the last entry is the final student's: recompute its images from final.pt
    run = os.path.dirname(path)
    student = build_model("resnet8", 10)
    load_model_weights(student, os.path.join(run, "final.pt"))
    clouds = visualize.probe_clouds(cfg, {"student": student}, 2, torch.device("cpu"))["student"]
    torch.testing.assert_close(clouds, log["clouds"][-1])
    assert log["clouds"].shape == (3, 2, 16, 64) and log["images"].shape == (3, 2, 20)
    assert log["teacher_images"].shape == (2, 20) and log["teacher_clouds"].shape == (2, 16, 64)
    # training moves the student's image: the logged epochs differ
    assert not torch.equal(log["images"][0], log["images"][-1])


# ------------------------------------------------------------------------------- sweep

def test_ablation_registry_is_scoped():
    models, distillers = set(MODELS), set(DISTILLERS)
    with sweep.ablation_registry():
        sweep.register_layer_view("resnet8", "logits")
        assert "resnet8@logits" in MODELS and "topkd_exact" in DISTILLERS
    # the zoo and the distiller list are the suite's again
    assert set(MODELS) == models and set(DISTILLERS) == distillers
    assert "topkd_exact" not in DISTILLERS


@pytest.fixture
def registry():
    with sweep.ablation_registry():
        yield


def test_layer_view_reads_another_layer_with_the_same_weights(pipeline, registry):
    cfg, _ = pipeline
    name = sweep.register_layer_view("resnet8", "stage2")
    assert name == "resnet8@stage2" and sweep.register_layer_view("resnet8", "pooled") == "resnet8"
    view, base = build_model(name, 10), build_model("resnet8", 10)
    load_model_weights(view, layout(cfg).teacher_final)
    load_model_weights(base, layout(cfg).teacher_final)
    assert view.state_dict().keys() == base.state_dict().keys()
    view.eval(), base.eval()
    x = torch.randn(4, 3, 32, 32)
    (lv, fv), (lb, fb) = view(x), base(x)
    torch.testing.assert_close(lv, lb)
    torch.testing.assert_close(fv["pooled"], fb["stages"][2].mean((2, 3)))
    assert view.feature_channels()["pooled"] == 32
    assert build_model(sweep.register_layer_view("resnet8", "stage2x2"), 10)(x)[1]["pooled"].shape \
        == (4, 128)
    with pytest.raises(ValueError, match="feature must be"):
        sweep.register_layer_view("resnet8", "stage")
    with pytest.raises(ValueError, match="stages 0..3"):
        build_model(sweep.register_layer_view("resnet8", "stage7"), 10)(x)


def test_exact_topkd_loss_trains_the_student(pipeline, registry):
    cfg, _ = pipeline
    _, vectorizer = analysis.load_pair_topology(cfg)
    teacher, student = build_model("resnet8", 10), build_model("resnet8", 10)
    d = build_distiller("topkd_exact", student, teacher, vectorizer=vectorizer.to_config(),
                        cloud_size=16, delta=5.0)
    assert type(d).arguments() == {"delta": 5.0, "gamma": 1.0, "alpha": 2.0, "temperature": 4.0}
    with pytest.raises(ValueError, match="unknown arguments \\['ripsnet'\\]"):
        build_distiller("topkd_exact", student, teacher, ripsnet=None)
    logits, losses = d.forward_train(torch.randn(32, 3, 32, 32), torch.arange(32) % 10)
    assert set(losses) == {"ce", "kd", "topo"} and torch.isfinite(losses["topo"])
    losses["topo"].backward()
    assert student.conv1.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in teacher.parameters())
    with pytest.raises(TypeError, match="vectorizer"):
        build_distiller("topkd_exact", student, teacher, cloud_size=16)


def _grid(tmp_path, base_path, **extra):
    path = tmp_path / "grid.yaml"
    with open(path, "w") as f:
        yaml.safe_dump({"name": "t", "base": base_path, "out_dir": str(tmp_path / "sweep"),
                        **extra}, f)
    return str(path)


def test_grid_checks(pipeline, tmp_path):
    _, base = pipeline
    with pytest.raises(ValueError, match="unknown grid axes"):
        sweep.load_grid(_grid(tmp_path, base, grid={"lr": [1]}))
    with pytest.raises(ValueError, match="cloud_size must be an int >= 2 dividing"):
        sweep.load_grid(_grid(tmp_path, base, grid={"cloud_size": [12]}))
    with pytest.raises(ValueError, match="non-empty list"):
        sweep.load_grid(_grid(tmp_path, base, grid={"delta": 5}))
    with pytest.raises(ValueError, match="loss must be"):
        sweep.load_grid(_grid(tmp_path, base, grid={"loss": ["both"]}))
    grid = sweep.load_grid(_grid(tmp_path, base, seeds=[0, 1],
                                 grid=[{"delta": [0, 5]}, {"feature": ["pooled", "logits"]}]))
    # delta 5 with pooled features is the default point of both ablations: listed once
    assert len(grid["points"]) == 3


def test_faithful_ripsnet_axis(pipeline, tmp_path):
    _, base = pipeline
    with pytest.raises(ValueError, match="ripsnet must be"):
        sweep.load_grid(_grid(tmp_path, base, grid={"ripsnet": ["official"]}))
    with pytest.raises(ValueError, match="image must be 'official'"):
        sweep.load_grid(_grid(tmp_path, base, grid={"ripsnet": ["faithful"], "image": ["curve"]}))
    grid = sweep.load_grid(_grid(tmp_path, base, grid=[{"delta": [0, 1]},
                                                       {"delta": [1], "ripsnet": ["faithful"]}]))
    assert [(p["delta"], p["ripsnet"], p["image"]) for p in grid["points"]] == [
        (0.0, "default", "curve"), (1.0, "default", "curve"), (1.0, "faithful", "official")]
    with sweep.ablation_registry():
        default, faithful = (sweep.point_config(grid, p) for p in grid["points"][1:])
    # the official RipsNet fit (TopKD's RipsNet_modules.py / train log Namespace), the base's
    # passes, teacher and student recipe
    assert {k: faithful["topology"]["ripsnet"][k] for k in (
        "split", "val_fraction", "batch_size", "val_batch_size", "lr", "patience", "min_delta",
        "epochs")} == {"split": "ordered", "val_fraction": 0.25, "batch_size": 64,
                       "val_batch_size": 32, "lr": 5e-4, "patience": 50, "min_delta": 1e-10,
                       "epochs": 25_000}
    assert faithful["topology"]["faithful"] and not default["topology"]["faithful"]
    assert faithful["topology"]["passes"] == default["topology"]["passes"] == 2
    assert faithful["train"] == default["train"] and faithful["dataset"] == default["dataset"]
    assert faithful["teacher"]["checkpoint"] == default["teacher"]["checkpoint"]
    assert faithful["out_dir"] != default["out_dir"]


def test_sweep_table_one_row_per_point_with_mean_and_std(pipeline, tmp_path):
    import run_analysis

    cfg, base = pipeline
    path = _grid(tmp_path, base, seeds=[0, 1], analysis_clouds=4,
                 grid=[{"delta": [0, 5]}, {"feature": ["stage2"], "loss": ["exact"]}])
    assert run_analysis.main(["sweep", "--grid", path]) == 0
    out = tmp_path / "sweep"
    with open(out / "sweep.csv") as f:
        rows = list(csv.DictReader(f))
    assert [(float(r["delta"]), r["feature"], r["loss"]) for r in rows] == [
        (0.0, "pooled", "ripsnet"), (5.0, "pooled", "ripsnet"), (5.0, "stage2", "exact")]
    for r in rows:
        assert int(r["n"]) == 2
        for metric in sweep.METRICS:
            mean, std = float(r[f"{metric}_mean"]), float(r[f"{metric}_std"])
            assert math.isfinite(mean) and mean >= 0 and math.isfinite(std) and std >= 0
    with open(out / "runs.csv") as f:
        assert len(list(csv.DictReader(f))) == 6
    assert (out / "sweep.md").read_text().count("\n| ") == 4  # header + 3 rows
    # stages reused: the base run's teacher and clouds, shared clouds per (layer, m)
    pooled = out / "pooled_m16_h0_curve" / "topology" / "clouds"
    assert os.path.realpath(pooled) == os.path.realpath(layout(cfg).topology("clouds"))
    assert os.path.isfile(out / "stage2_m16_h0_curve" / "topology" / "ripsnet" / "ripsnet.pt")
    assert not os.path.exists(out / "teacher")


@pytest.mark.parametrize("name", sorted(f[:-5] for f in os.listdir(
    os.path.join(CONFIG_DIR, "ablations")) if f.endswith(".yaml")))
def test_shipped_grids_load(name):
    grid = sweep.load_grid(os.path.join(CONFIG_DIR, "ablations", f"{name}.yaml"))
    sizes = {"smoke_delta": 4, "smoke_ablations": 13, "res56_res20": 7, "smoke_topology_weight": 10}
    assert len(grid["points"]) == sizes[name] and grid["seeds"] == [0, 1, 2]
    assert all(set(p) == set(sweep.AXES) for p in grid["points"])
