"""The suite end to end on a small digits subset (every stage through the CLI), stage outputs,
skipping/resuming, and the attack list of a careless or hostile user: configurations that must
fail at start with one clean line, corrupt or foreign files that must be named with their stage
and what to do, and two runs on one folder."""

import json
import os
import shutil
import subprocess
import sys

import pytest
import torch
import yaml

from topkd import pipeline
from topkd.config import CONFIG_DIR, load_config, preset_path
from topkd.layout import layout
from topkd.storage import RunLock, atomic_save, temp_path
from topkd.topology import load_ripsnet, make_vectorizer, ripsnet_data
from torchtopo.ripsnet import split_indices

EXAMPLE_DIR = os.path.abspath(os.path.join(os.path.dirname(__file__), os.pardir, os.pardir,
                                           "examples", "topkd"))
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


def _script(args, timeout=300, **popen):
    """``run_cifar.py args`` in a fresh process: (return code, stdout, stderr)."""
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=os.pathsep.join(
        [EXAMPLE_DIR, os.environ.get("PYTHONPATH", "")]))
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        env.pop(key, None)
    proc = subprocess.run([sys.executable, os.path.join(EXAMPLE_DIR, "run_cifar.py"), *args],
                          env=env, capture_output=True, text=True, timeout=timeout, **popen)
    return proc.returncode, proc.stdout, proc.stderr


@pytest.fixture(scope="module")
def finished(tmp_path_factory, tiny_config):
    """Every stage of a tiny digits pair through the CLI: ``(config, its YAML path)``."""
    root = tmp_path_factory.mktemp("pipeline")
    path = _write(tiny_config(root / "run"), root / "tiny.yaml")
    assert _cli(["--config", path, "all"]) == 0
    return load_config(path), path


def test_every_stage_end_to_end(finished, tmp_path, tiny_config):
    cfg, _ = finished
    run = layout(cfg)
    # teacher: the last epoch and the best test epoch (what teacher.weights: best reads)
    assert os.path.isfile(run.teacher_final) and os.path.isfile(run.teacher_best)
    teacher_summary = json.load(open(os.path.join(run.teacher, "summary.json")))
    best = pipeline.stage_teacher(dict(cfg, teacher=dict(cfg["teacher"], weights="best")))
    assert best["weights"] == run.teacher_best
    assert best["top1"] == teacher_summary["best_acc"]
    assert best["selected_epoch"] == teacher_summary["best_epoch"]
    assert torch.load(run.teacher_best, weights_only=True)["epoch"] == teacher_summary["best_epoch"]
    # clouds: 2 passes x (192 // 16) clouds of 16 points, resnet8's pooled width 64
    meta = json.load(open(run.meta("clouds")))
    assert (meta["num_clouds"], meta["num_shards"], meta["dim"]) == (24, 3, 64)
    shard = torch.load(run.shard("clouds", 0), weights_only=True)
    assert shard.shape == (8, 16, 64) and shard.dtype == torch.float32
    # diagrams + images: H0 curve of 20 pixels by default, vectoriser saved with the data
    dgm = torch.load(run.shard("diagrams", 2), weights_only=True)
    assert dgm["pairs"][0].shape[0] == 8 and dgm["pairs"][0].shape[2] == 2
    assert (dgm["mask"][0].sum(1) == 15).all()  # 16 distinct points: 15 finite H0 bars
    images = torch.cat([torch.load(run.shard("images", k), weights_only=True) for k in range(3)])
    assert images.shape == (24, 20) and images.min() >= 0 and images.max() <= 1 + 1e-5
    vec = json.load(open(run.vectorizer))
    assert vec["fitted"]["bandwidth_"][0] > 0 and vec["h0"] == "curve"
    # the RipsNet learned something
    rn = json.load(open(run.ripsnet_metrics))
    assert rn["train_mse"] < rn["initial_mse"] and rn["cloud_size"] == 16
    # its held-out quality: MSE, the mean training image's MSE on the same images, R²
    clouds, targets = ripsnet_data(cfg)
    fit, held = split_indices(24, cfg["topology"]["ripsnet"]["val_fraction"], "random", 0)
    assert rn["num_heldout"] == held.numel() == 2
    mean_image = (targets[fit].mean(0) - targets[held]).pow(2).mean()
    assert rn["constant_mse"] == pytest.approx(float(mean_image), rel=1e-5)
    ripsnet, _ = load_ripsnet(cfg)
    with torch.no_grad():
        heldout_mse = (ripsnet(clouds[held]) - targets[held]).pow(2).mean()
    assert rn["heldout_mse"] == pytest.approx(float(heldout_mse), rel=1e-5)
    assert rn["r2"] == pytest.approx(1 - rn["heldout_mse"] / rn["constant_mse"])
    # students and the table
    for entry in ("vanilla", "kd", "topkd"):
        s = json.load(open(os.path.join(run.student(entry, 0), "summary.json")))
        assert 0 <= s["last_acc"] <= 100 and s["best_acc"] >= s["last_acc"]
        assert s["best_top5"] >= s["best_acc"] and s["distiller"] == entry
    table = open(os.path.join(run.table, "comparison.md")).read()
    assert "| topkd | 1 |" in table and "best epoch" in table
    assert f"R² {rn['r2']:.3f}" in table
    results = json.load(open(os.path.join(run.table, "results.json")))
    assert {r["distiller"] for r in results["runs"]} == {"vanilla", "kd", "topkd"}
    assert not [f for _, _, files in os.walk(run.root) for f in files if f.endswith(".tmp")]

    # a second run skips every stage (outputs untouched)
    stamp = os.path.getmtime(run.teacher_final)
    rows = pipeline.run_pair(cfg)
    assert os.path.getmtime(run.teacher_final) == stamp
    assert [r["last_acc"] for r in rows] == [r["last_acc"] for r in results["runs"]]

    # faithful clouds: the teacher's BatchNorm in train mode changes the clouds, not the teacher
    faithful = tiny_config(tmp_path / "faithful", topology={"faithful": True, "passes": 1},
                           teacher={"checkpoint": run.teacher_final})
    pipeline.stage_clouds(faithful)
    other = torch.load(layout(faithful).shard("clouds", 0), weights_only=True)
    assert other.shape == shard.shape and not torch.allclose(other, shard)
    assert make_vectorizer(faithful).num_features == 400

    # H0 and H1: the same clouds give 20 + 20x20 features per cloud
    with_h1 = tiny_config(tmp_path / "h1", topology={"max_dim": 1})
    shutil.copytree(run.topology("clouds"), layout(with_h1).topology("clouds"))
    assert pipeline.stage_diagrams(with_h1)["num_features"] == 420
    images = torch.load(layout(with_h1).shard("images", 0), weights_only=True)
    dgm = torch.load(layout(with_h1).shard("diagrams", 0), weights_only=True)
    assert images.shape == (8, 420) and len(dgm["pairs"]) == 2


def _copy(finished, tiny_config, tmp_path, **overrides):
    """A copy of the finished run under ``tmp_path/run``: its config (changed by
    ``overrides``) and YAML path."""
    cfg, _ = finished
    shutil.copytree(cfg["out_dir"], tmp_path / "run")
    cfg = tiny_config(tmp_path / "run", **overrides)
    return cfg, _write(cfg, tmp_path / "tiny.yaml")


def test_clouds_resume_missing_shards_and_skip_only_verified_outputs(finished, tiny_config,
                                                                   tmp_path):
    cfg, _ = _copy(finished, tiny_config, tmp_path)
    run = layout(cfg)
    first = torch.load(run.shard("clouds", 1), weights_only=True)
    # a shard gone although meta.json says complete: computed again, identical
    os.remove(run.shard("clouds", 1))
    pipeline.stage_clouds(cfg)
    torch.testing.assert_close(torch.load(run.shard("clouds", 1), weights_only=True), first)
    # an interrupted stage (no meta.json) keeps its shards and computes the others
    os.remove(run.shard("clouds", 2))
    os.remove(run.meta("clouds"))
    stamp = os.path.getmtime(run.shard("clouds", 0))
    pipeline.stage_clouds(cfg)
    assert os.path.getmtime(run.shard("clouds", 0)) == stamp
    assert json.load(open(run.meta("clouds")))["complete"]
    # image shards are checked before the diagrams stage counts as done
    os.remove(run.shard("images", 0))
    assert pipeline.stage_diagrams(cfg)["num_images"] == 24
    assert os.path.isfile(run.shard("images", 0))


# ------------------------------------------------------------------------ bad configurations

@pytest.mark.parametrize("override,match", [
    ({"student": {"arch": "resnet9"}}, "student.arch: unknown model 'resnet9'"),
    ({"compare": ["vanilla", "dkd"]}, "unknown distiller 'dkd'"),
    ({"teacher": {"checkpoint": "/nowhere/ckpt.pth"}}, "/nowhere/ckpt.pth"),
    ({"compare": ["fitnet"], "distillers": {"fitnet": {"hint_layer": 5}}},
     "distiller 'fitnet'.*hint_layer 5 out of range"),
    # MobileNetV2 has a fifth stage, resnet8 has not: no FitNet hint pair
    ({"student": {"arch": "MobileNetV2"}, "compare": ["fitnet"],
      "distillers": {"fitnet": {"hint_layer": 4}}}, "hint_layer 4 out of range for the teacher"),
    ({"topology": {"cloud_size": 24}}, r"batch size \(32\) must be a multiple of the cloud size"),
    ({"dataset": {"name": "mnist"}}, "dataset.name must be one of 'cifar100', 'digits'"),
    ({"distillers": {"topkd": {"cloud_size": 8}}}, "'cloud_size' is a run-time input"),
    ({"distillers": {"crd": {"n_data": 10}}, "compare": ["crd"]}, "'n_data' is a run-time input"),
    ({"distillers": {"kd": {"alpha": -1}}}, "alpha must be a non-negative number"),
])
def test_bad_configs_fail_at_start(tmp_path, tiny_config, override, match):
    cfg = tiny_config(tmp_path / "out", **override)
    path = _write(cfg, tmp_path / "bad.yaml")
    with pytest.raises(SystemExit, match=match):
        _cli(["--config", path, "all"])
    assert not os.path.exists(tmp_path / "out")


# The overrides of the attack list: each ends before any work, naming the key.
BAD_OVERRIDES = [
    ("teacher.checkpiont=/x.pth", "unknown key 'teacher.checkpiont' (did you mean 'teacher.checkpoint'?)"),
    ("trian.epochs=3", "unknown key 'trian' (did you mean 'train'?)"),
    ("train.epoch=3", "unknown key 'train.epoch' (did you mean 'train.epochs'?)"),
    ("dataset.batchsize=32", "unknown key 'dataset.batchsize' (did you mean 'dataset.batch_size'?)"),
    ("topology.cloudsize=16", "unknown key 'topology.cloudsize' (did you mean 'topology.cloud_size'?)"),
    ("teacher.train.epoch=1", "unknown key 'teacher.train.epoch' (did you mean 'teacher.train.epochs'?)"),
    ("dataset.batch_size=big", "dataset.batch_size must be an int >= 1, got 'big'"),
    ("topology.cloud_size=0", "topology.cloud_size must be an int >= 2, got 0"),
    ("topology.shard_size=0", "topology.shard_size must be an int >= 1, got 0"),
    ("topology.passes=0", "topology.passes must be an int >= 1, got 0"),
    ("seeds=0", "seeds must be a non-empty list of distinct ints >= 0"),
    ("seeds=[0,0]", "seeds must be a non-empty list of distinct ints >= 0"),
    ("train.milestones=3", "train.milestones must be a list of increasing ints >= 1"),
    ("train.lr=fast", "train.lr must be a number > 0 or null, got 'fast'"),
    ("train.lr=.inf", "train.lr must be a number > 0 or null, got inf"),
    ("train=null", "train must be a mapping, got null"),
    ("dataset=5", "dataset must be a mapping, got 5"),
    ("dataset.train_subset=-5", "dataset.train_subset must be an int >= 1 or null, got -5"),
    ("compare=kd", "compare must be a non-empty list of distinct distiller entries, e.g. "
                   "[kd, topkd]; write [kd], got 'kd'"),
    ("teacher.train.epochs=0", "teacher.train.epochs must be an int >= 1, got 0"),
    ("topology.ripsnet.val_fraction=1", "topology.ripsnet.val_fraction must be a number > 0"),
    ("topology.max_dim=2", "topology.max_dim must be one of 0, 1, got 2"),
    ("device=gpu", "device must be one of 'auto', 'cpu', 'cuda', got 'gpu'"),
    ("progress=yes please", "progress must be true or false, got 'yes please'"),
    ("distillers.topkd=5", "distillers.topkd must be a mapping of arguments, got 5"),
    ("distillers.topkd.delta=-1", "delta must be a non-negative number, got -1"),
    ("distillers.topkd.dleta=1", "unknown arguments ['dleta'] (did you mean 'delta'?)"),
    ("train.epochs", "override must look like key.sub=value"),
]


@pytest.mark.parametrize("item,match", BAD_OVERRIDES)
def test_bad_overrides_fail_before_any_stage(tmp_path, tiny_config, item, match):
    """Typos are errors with the closest key; every value is type- and range-checked before
    the first stage (student ``train.*`` values too, which used to fail after the teacher and
    topology stages)."""
    path = _write(tiny_config(tmp_path / "out"), tmp_path / "tiny.yaml")
    with pytest.raises(SystemExit) as info:
        _cli(["--config", path, "--set", item, "all"])
    message = str(info.value)
    assert message.startswith("run_cifar.py: error: ") and "\n" not in message
    assert match in message, message
    assert not os.path.exists(tmp_path / "out")


@pytest.mark.parametrize("args,match", [
    (["--preset", "unknown"], "unknown preset 'unknown'; known: res110_res20"),
    (["--preset", "smok"], "unknown preset 'smok' (did you mean 'smoke'?)"),
    (["--config", "/nowhere.yaml"], "config file not found: '/nowhere.yaml'"),
    (["--preset", "smoke", "--set", "dataset.batchsize=8"], "did you mean 'dataset.batch_size'?"),
])
def test_user_errors_end_with_one_clean_line(tmp_path, args, match):
    code, out, err = _script(args, cwd=tmp_path)
    assert code == 1 and out == ""
    assert err.count("\n") == 1 and "Traceback" not in err and match in err, err
    assert os.listdir(tmp_path) == []


# ------------------------------------------------------------------------------ corrupt files

def _truncate(path, keep=0.5):
    data = open(path, "rb").read()
    with open(path, "wb") as f:
        f.write(data[:int(len(data) * keep)])


def _clouds_of_other_width(path):
    atomic_save(torch.load(path, weights_only=True)[..., :-1].clone(), path)


# (what to do to the finished run, the stage then run, the file and stage named in the error)
CORRUPTIONS = {
    "empty latest.pt": (lambda r: (os.remove(os.path.join(r.student("kd", 0), "summary.json")),
                                   open(os.path.join(r.student("kd", 0), "latest.pt"), "wb").close()),
                        ["student", "--distiller", "kd"], "students/kd/seed0/latest.pt",
                        "'student' stage", "is empty"),
    "truncated teacher": (lambda r: _truncate(r.teacher_final), ["teacher"], "teacher/final.pt",
                          "'teacher' stage", "cannot be loaded"),
    "truncated teacher, read by a student": (
        lambda r: (_truncate(r.teacher_final),
                   os.remove(os.path.join(r.student("kd", 0), "summary.json"))),
        ["student", "--distiller", "kd"], "teacher/final.pt", "'teacher' stage", "cannot be loaded"),
    "truncated clouds meta.json": (lambda r: _truncate(r.meta("clouds")), ["diagrams"],
                                   "clouds/meta.json", "'clouds' stage", "not valid JSON"),
    "truncated images meta.json": (lambda r: _truncate(r.meta("images")), ["diagrams"],
                                   "images/meta.json", "'diagrams' stage", "not valid JSON"),
    "truncated vectorizer.json": (lambda r: (_truncate(r.vectorizer),
                                             os.remove(r.ripsnet_metrics)),
                                  ["ripsnet"], "vectorizer.json", "'diagrams' stage",
                                  "not valid JSON"),
    "truncated ripsnet metrics.json": (lambda r: _truncate(r.ripsnet_metrics), ["ripsnet"],
                                       "ripsnet/metrics.json", "'ripsnet' stage", "not valid JSON"),
    "truncated student summary.json": (lambda r: _truncate(
        os.path.join(r.student("kd", 0), "summary.json")), ["student", "--distiller", "kd"],
        "kd/seed0/summary.json", "'student' stage", "not valid JSON"),
    "truncated teacher summary.json": (lambda r: _truncate(os.path.join(r.teacher, "summary.json")),
                                       ["teacher"], "teacher/summary.json", "'teacher' stage",
                                       "not valid JSON"),
    "truncated cloud shard": (lambda r: _truncate(r.shard("clouds", 1)), ["clouds"],
                              "clouds/shard_00001.pt", "'clouds' stage", "cannot be loaded"),
    "truncated image shard": (lambda r: (_truncate(r.shard("images", 2)),
                                         os.remove(r.ripsnet_metrics)), ["ripsnet"],
                              "images/shard_00002.pt", "'diagrams' stage", "cannot be loaded"),
    "truncated diagram shard": (lambda r: (_truncate(r.shard("diagrams", 0)),
                                           os.remove(r.meta("images")), os.remove(r.vectorizer)),
                                ["diagrams"], "diagrams/shard_00000.pt", "'diagrams' stage",
                                "cannot be loaded"),
    "cloud shard of another width, at the clouds stage": (
        lambda r: _clouds_of_other_width(r.shard("clouds", 0)), ["clouds"],
        "clouds/shard_00000.pt", "'clouds' stage", r"should be (8, 16, 64) torch.float32, got (8, 16, 63)"),
    "cloud shard of another width, at the diagrams stage": (
        lambda r: (_clouds_of_other_width(r.shard("clouds", 2)), os.remove(r.meta("images")),
                   os.remove(r.shard("diagrams", 2))), ["diagrams"],
        "clouds/shard_00002.pt", "'clouds' stage", "got (8, 16, 63)"),
    "image shard of another width": (
        lambda r: (atomic_save(torch.zeros(8, 19), r.shard("images", 1)),
                   os.remove(r.ripsnet_metrics)), ["ripsnet"], "images/shard_00001.pt",
        "'diagrams' stage", "got (8, 19)"),
    "RipsNet file replaced by garbage": (
        lambda r: (open(r.ripsnet, "wb").write(b"not a torch file"),
                   os.remove(os.path.join(r.student("topkd", 0), "summary.json"))),
        ["student", "--distiller", "topkd"], "ripsnet/ripsnet.pt", "'ripsnet' stage",
        "cannot be loaded"),
    "latest.pt of another run": (
        lambda r: (os.remove(os.path.join(r.student("kd", 0), "summary.json")),
                   atomic_save({"epoch": 3}, os.path.join(r.student("kd", 0), "latest.pt"))),
        ["student", "--distiller", "kd"], "latest.pt", "'student' stage",
        "does not hold this run's training state"),
    "foreign pickle as latest.pt": (
        lambda r: (os.remove(os.path.join(r.student("kd", 0), "summary.json")),
                   __import__("pickle").dump(__import__("argparse").Namespace(run="code"),
                                             open(os.path.join(r.student("kd", 0), "latest.pt"),
                                                  "wb"), protocol=2)),
        ["student", "--distiller", "kd"], "latest.pt", "'student' stage", "cannot be loaded"),
}


@pytest.mark.parametrize("case", sorted(CORRUPTIONS))
def test_corrupt_files_are_named_with_their_stage_and_remedy(finished, tiny_config, tmp_path,
                                                            case):
    corrupt, argv, file, stage, reason = CORRUPTIONS[case]
    cfg, path = _copy(finished, tiny_config, tmp_path)
    corrupt(layout(cfg))
    with pytest.raises(SystemExit) as info:
        _cli(["--config", path, *argv])
    message = str(info.value)
    assert file in message and stage in message and "\n" not in message, message
    assert reason in message, message
    assert "delete" in message and "rerun" in message, message


def test_changed_settings_are_not_skipped(finished, tiny_config, tmp_path):
    """Complete outputs of other settings (here 3 passes instead of 2) are refused, not reused."""
    cfg, path = _copy(finished, tiny_config, tmp_path, topology={"passes": 3})
    with pytest.raises(SystemExit, match=r"clouds' was made by the 'clouds' stage with "
                                         r"num_clouds=24 \(the config gives 36\).*passes=2 "
                                         r"\(the config gives 3\)"):
        _cli(["--config", path, "clouds"])


# -------------------------------------------------------------------------- run folder lock

def test_temporary_names_are_unique():
    a, b = temp_path("/x/latest.pt"), temp_path("/x/latest.pt")
    assert a != b and a.endswith(".tmp") and f".{os.getpid()}." in a


def test_locked_run_folder_names_the_holder(finished, tiny_config, tmp_path):
    cfg, path = _copy(finished, tiny_config, tmp_path)
    lock = RunLock(cfg["out_dir"]).acquire()
    try:
        code, _, err = _script(["--config", path, "clouds"])
        assert code == 1 and f"is in use by process {os.getpid()}" in err and "--out" in err
        assert err.count("\n") == 1
    finally:
        lock.release()
    code, _, err = _script(["--config", path, "clouds"])
    assert code == 0, err


def _files(folder):
    return sorted(os.path.relpath(os.path.join(d, f), folder) for d, _, fs in os.walk(folder) for f in fs)


def _outputs(folder):
    """Every file of ``folder`` but the lock (which names its last holder): its bytes."""
    return {f: open(os.path.join(folder, f), "rb").read() for f in _files(folder) if f != ".lock"}


def test_two_runs_on_one_folder(finished, tiny_config, tmp_path):
    """The issue's scenario, two ``clouds`` runs on one folder, in each of its two orders made
    explicit (no timing decides which): a run started while another holds the folder stops
    on the lock before writing anything; a run started after it finishes verifies and keeps
    the complete outputs. The folder ends complete and equal to a single run's."""
    cfg, _ = finished
    new = tiny_config(tmp_path / "run", topology={"shard_size": 2},
                       teacher={"checkpoint": layout(cfg).teacher_final})
    path = _write(new, tmp_path / "tiny.yaml")
    run = layout(new)
    lock = RunLock(new["out_dir"]).acquire()  # the first run, holding the folder
    try:
        code, _, err = _script(["--config", path, "clouds"])
    finally:
        lock.release()
    assert code == 1 and f"is in use by process {os.getpid()}" in err, err
    assert _files(new["out_dir"]) == [".lock"]  # the second run wrote nothing
    code, _, err = _script(["--config", path, "clouds"])  # the first run's work
    assert code == 0, err
    written = _outputs(new["out_dir"])
    code, _, err = _script(["--config", path, "clouds"])  # the second run, after the first
    assert code == 0, err
    assert _outputs(new["out_dir"]) == written
    meta = json.load(open(run.meta("clouds")))
    assert meta["num_clouds"] == 24 and meta["num_shards"] == 12
    clouds = torch.cat([torch.load(run.shard("clouds", k), weights_only=True) for k in range(12)])
    reference = torch.cat([torch.load(layout(cfg).shard("clouds", k), weights_only=True)
                           for k in range(3)])
    assert torch.equal(clouds, reference)
    assert not [f for f in written if f.endswith(".tmp")]


# ---------------------------------------------------------------------------------- presets

def test_presets_are_valid():
    assert len(PAIRS) == len(set(PAIRS)) == 7 + 6
    for name in PAIRS + ["table1", "table2", "smoke"]:
        cfg = load_config(preset_path(name))
        for pair in cfg.get("pairs", [cfg]):
            assert pair["name"] == "smoke" or pair["paper"]["topkd"] > pair["paper"]["vanilla"]
    table1 = load_config(preset_path("table1"))
    assert [p["name"] for p in table1["pairs"]][0] == "res56_res20"
    assert load_config(preset_path("wrn40_2_shv1"))["distillers"]["topkd"]["alpha"] == 4.0


@pytest.mark.parametrize("name", PAIRS)
def test_paper_pairs_validate(name):
    """Every pair of Tables 1-2 builds all its distillers (connectors sized from the models)."""
    pipeline.validate(load_config(preset_path(name)))
