"""The suite end to end on a small digits subset (every stage through the CLI), stage outputs,
skipping/resuming, and configurations that must fail at start."""

import json
import os
import shutil

import pytest
import torch
import yaml

from topkd import stages
from topkd.config import CONFIG_DIR, load_config, preset_path, validate

# the pairs of Tables 1 and 2, as listed by the table presets
PAIRS = [f[:-5] for t in ("table1", "table2")
         for f in yaml.safe_load(open(os.path.join(CONFIG_DIR, f"{t}.yaml")))["pairs"]]


def _write(cfg, path):
    with open(path, "w") as f:
        yaml.safe_dump(cfg, f)
    return str(path)


def _cli(argv):
    import run_cifar

    return run_cifar.main(argv)


def test_every_stage_end_to_end(tmp_path, tiny_config):
    out = tmp_path / "run"
    path = _write(tiny_config(out), tmp_path / "tiny.yaml")
    assert _cli(["--config", path, "all"]) == 0
    cfg = load_config(path)
    p = stages.paths(cfg)

    # teacher
    assert os.path.isfile(os.path.join(p["teacher"], "final.pt"))
    # clouds: 2 passes x (192 // 16) clouds of 16 points, resnet8's pooled width 64
    meta = json.load(open(os.path.join(p["clouds"], "meta.json")))
    assert (meta["num_clouds"], meta["num_shards"], meta["dim"]) == (24, 3, 64)
    shard = torch.load(os.path.join(p["clouds"], "shard_00000.pt"), weights_only=True)
    assert shard.shape == (8, 16, 64) and shard.dtype == torch.float32
    # diagrams + images: H0 curve of 20 pixels by default, vectoriser saved with the data
    dgm = torch.load(os.path.join(p["diagrams"], "shard_00002.pt"), weights_only=True)
    assert dgm["pairs"][0].shape[0] == 8 and dgm["pairs"][0].shape[2] == 2
    assert (dgm["mask"][0].sum(1) == 15).all()  # 16 distinct points: 15 finite H0 bars
    images = torch.cat([torch.load(os.path.join(p["images"], f"shard_0000{k}.pt"),
                                   weights_only=True) for k in range(3)])
    assert images.shape == (24, 20) and images.min() >= 0 and images.max() <= 1 + 1e-5
    vec = json.load(open(os.path.join(p["images"], "vectorizer.json")))
    assert vec["fitted"]["bandwidth_"][0] > 0 and vec["h0"] == "curve"
    # the RipsNet learned something
    rn = json.load(open(os.path.join(p["ripsnet"], "metrics.json")))
    assert rn["train_mse"] < rn["initial_mse"]
    # students and the table
    for entry in ("vanilla", "kd", "topkd"):
        s = json.load(open(os.path.join(stages.student_dir(cfg, entry, 0), "summary.json")))
        assert 0 <= s["last_acc"] <= 100 and s["best_acc"] >= s["last_acc"]
    table = open(os.path.join(cfg["out_dir"], "table", "comparison.md")).read()
    assert "| topkd | 1 |" in table and "best epoch" in table
    results = json.load(open(os.path.join(cfg["out_dir"], "table", "results.json")))
    assert {r["distiller"] for r in results["runs"]} == {"vanilla", "kd", "topkd"}

    # a second run skips every stage (outputs untouched)
    stamp = os.path.getmtime(os.path.join(p["teacher"], "final.pt"))
    rows = stages.run_all(cfg)
    assert os.path.getmtime(os.path.join(p["teacher"], "final.pt")) == stamp
    assert [r["last_acc"] for r in rows] == [r["last_acc"] for r in results["runs"]]

    # faithful clouds: the teacher's BatchNorm in train mode changes the clouds, not the teacher
    faithful = tiny_config(tmp_path / "faithful", topology={"faithful": True, "passes": 1},
                           teacher={"checkpoint": os.path.join(p["teacher"], "final.pt")})
    stages.stage_clouds(faithful)
    other = torch.load(os.path.join(stages.paths(faithful)["clouds"], "shard_00000.pt"),
                       weights_only=True)
    assert other.shape == shard.shape and not torch.allclose(other, shard)
    assert stages.make_vectorizer(faithful).num_features == 400

    # H0 and H1: the same clouds give 20 + 20x20 features per cloud
    with_h1 = tiny_config(tmp_path / "h1", topology={"max_dim": 1})
    shutil.copytree(p["clouds"], stages.paths(with_h1)["clouds"])
    assert stages.stage_diagrams(with_h1)["num_features"] == 420
    h1_dir = stages.paths(with_h1)
    images = torch.load(os.path.join(h1_dir["images"], "shard_00000.pt"), weights_only=True)
    dgm = torch.load(os.path.join(h1_dir["diagrams"], "shard_00000.pt"), weights_only=True)
    assert images.shape == (8, 420) and len(dgm["pairs"]) == 2


def test_clouds_stage_resumes_missing_shards(tmp_path, tiny_config):
    cfg = tiny_config(tmp_path, teacher={"train": {"epochs": 1}}, topology={"passes": 1})
    stages.stage_teacher(cfg)
    stages.stage_clouds(cfg)
    folder = stages.paths(cfg)["clouds"]
    first = torch.load(os.path.join(folder, "shard_00001.pt"), weights_only=True)
    os.remove(os.path.join(folder, "shard_00001.pt"))
    os.remove(os.path.join(folder, "meta.json"))
    stages.stage_clouds(cfg)
    again = torch.load(os.path.join(folder, "shard_00001.pt"), weights_only=True)
    torch.testing.assert_close(first, again)


@pytest.mark.parametrize("override,error,match", [
    ({"student": {"arch": "resnet9"}}, ValueError, "unknown model 'resnet9'"),
    ({"compare": ["vanilla", "dkd"]}, ValueError, "unknown distiller 'dkd'"),
    ({"teacher": {"checkpoint": "/nowhere/ckpt.pth"}}, FileNotFoundError, "/nowhere/ckpt.pth"),
    ({"compare": ["fitnet"], "distillers": {"fitnet": {"hint_layer": 5}}}, ValueError,
     "distiller 'fitnet'.*hint_layer 5 out of range"),
    # MobileNetV2 has a fifth stage, resnet8 has not: no FitNet hint pair
    ({"student": {"arch": "MobileNetV2"}, "compare": ["fitnet"],
      "distillers": {"fitnet": {"hint_layer": 4}}}, ValueError, "hint_layer 4 out of range for the teacher"),
    ({"topology": {"cloud_size": 24}}, ValueError, "multiple of topology.cloud_size"),
    ({"dataset": {"name": "mnist"}}, ValueError, "dataset.name"),
])
def test_bad_configs_fail_at_start(tmp_path, tiny_config, override, error, match):
    cfg = tiny_config(tmp_path / "out", **override)
    path = _write(cfg, tmp_path / "bad.yaml")
    with pytest.raises(error, match=match):
        _cli(["--config", path, "all"])
    assert not os.path.exists(tmp_path / "out")


def test_presets_are_valid():
    assert len(PAIRS) == len(set(PAIRS)) == 7 + 6
    for name in PAIRS + ["table1", "table2", "smoke"]:
        cfg = load_config(preset_path(name))
        for pair in cfg.get("pairs", [cfg]):
            assert pair["name"] == "smoke" or pair["paper"]["topkd"] > pair["paper"]["vanilla"]
    table1 = load_config(preset_path("table1"))
    assert [p["name"] for p in table1["pairs"]][0] == "res56_res20"
    assert load_config(preset_path("wrn40_2_shv1"))["distillers"]["topkd"]["alpha"] == 4.0
    with pytest.raises(ValueError, match="unknown preset 'nope'"):
        preset_path("nope")


@pytest.mark.parametrize("name", PAIRS)
def test_paper_pairs_validate(name):
    """Every pair of Tables 1-2 builds all its distillers (connectors sized from the models)."""
    validate(load_config(preset_path(name)))
