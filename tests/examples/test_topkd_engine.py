"""Engine: exact resume, atomic checkpoints, safe loading of RepDistiller-format teachers."""

import json
import os

import pytest
import torch

from topkd.data import digits, make_loader, take
from topkd.distillers import build_distiller
from topkd.engine import (Trainer, get_rng_state, load_checkpoint, load_model_weights,
                          select_device, set_rng_state)
from topkd.models import build_model
from topkd.storage import RunFileError


def _run(out_dir, name, stop_after=None):
    torch.manual_seed(0)
    train, test = take(digits(True), 96), take(digits(False), 32)
    student, teacher = build_model("resnet8", 10), build_model("resnet8", 10)
    kw = {"n_data": len(train), "nce_k": 16} if name == "crd" else {}
    if name == "topkd":
        import torchtopo

        # resnet8x4 teacher: a learnable 64 -> 256 projection whose state must resume too
        teacher = build_model("resnet8x4", 10)
        kw = {"ripsnet": torchtopo.RipsNet.for_features(256, 20), "cloud_size": 16}
    d = build_distiller(name, student, teacher, **kw)
    trainer = Trainer(d, make_loader(d.prepare_dataset(train), 32, True, seed=5),
                      make_loader(test, 32, False),
                      str(out_dir), epochs=3, lr=0.05, milestones=[2], seed=5, progress=False)
    summary = trainer.fit(resume=True, stop_after=stop_after)
    return d, summary


@pytest.mark.parametrize("name", ["kd", "crd", "topkd"])
def test_interrupted_run_resumes_exactly(tmp_path, name):
    full, s_full = _run(tmp_path / "full", name)
    _, s_part = _run(tmp_path / "part", name, stop_after=1)
    assert s_part["epochs_done"] == 1 and not os.path.exists(tmp_path / "part" / "final.pt")
    resumed, s_res = _run(tmp_path / "part", name)
    for (k, a), b in zip(full.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), k
    assert s_full["last_acc"] == s_res["last_acc"] and s_full["best_acc"] == s_res["best_acc"]
    rows = json.load(open(tmp_path / "part" / "metrics.json"))
    assert [r["epoch"] for r in rows] == [1, 2, 3]
    assert rows[2]["lr"] == pytest.approx(0.005)  # x0.1 after epoch 2
    assert not [f for f in os.listdir(tmp_path / "part") if f.endswith(".tmp")]
    ckpt = load_checkpoint(str(tmp_path / "part" / "latest.pt"))
    assert {"model", "optimizer", "scheduler", "epoch", "rng", "best_acc"} <= set(ckpt)
    header = open(tmp_path / "part" / "metrics.csv").readline().strip().split(",")
    assert {"epoch", "test_acc", "train_loss", "data_time", "step_time"} <= set(header)
    assert os.listdir(tmp_path / "part" / "tb")


def test_resume_refuses_another_seed(tmp_path):
    _run(tmp_path, "kd", stop_after=1)
    ckpt = load_checkpoint(str(tmp_path / "latest.pt"))
    ckpt["seed"] = 99
    torch.save(ckpt, tmp_path / "latest.pt")
    with pytest.raises(RunFileError, match="seed 99.*delete .*latest.pt"):
        _run(tmp_path, "kd")


def test_rng_state_round_trip():
    import random

    import numpy as np

    state = get_rng_state()
    a = (torch.rand(3), np.random.rand(), random.random())
    set_rng_state(state)
    b = (torch.rand(3), np.random.rand(), random.random())
    assert torch.equal(a[0], b[0]) and a[1:] == b[1:]


def test_teacher_checkpoint_formats(tmp_path):
    model = build_model("resnet8", 10)
    state = model.state_dict()
    # RepDistiller / mdistiller: {"model", "epoch", "accuracy", "optimizer"}, DataParallel keys
    torch.save({"model": {f"module.{k}": v for k, v in state.items()}, "epoch": 240,
                "accuracy": 72.3, "optimizer": {}}, tmp_path / "rep.pth")
    torch.save(state, tmp_path / "bare.pth")
    for name in ("rep.pth", "bare.pth"):
        fresh = build_model("resnet8", 10)
        meta = load_model_weights(fresh, str(tmp_path / name))
        assert all(torch.equal(a, b) for a, b in zip(fresh.state_dict().values(), state.values()))
    assert meta == {} and load_model_weights(build_model("resnet8", 10),
                                             str(tmp_path / "rep.pth"))["accuracy"] == 72.3
    with pytest.raises(ValueError, match="do not match"):
        load_model_weights(build_model("resnet14", 10), str(tmp_path / "bare.pth"))
    with pytest.raises(FileNotFoundError, match="missing.pth"):
        load_model_weights(model, str(tmp_path / "missing.pth"))


def test_checkpoints_refuse_arbitrary_pickles(tmp_path):
    import argparse

    torch.save({"model": argparse.Namespace(run="code")}, tmp_path / "evil.pth")
    with pytest.raises(RunFileError, match="evil.pth.*[Ww]eights only"):
        load_checkpoint(str(tmp_path / "evil.pth"))


def test_device_selection_with_cuda(monkeypatch):
    """With CUDA (made available here, so this runs on any machine) 'auto' picks it."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert select_device() == torch.device("cuda")
    assert select_device("auto") == torch.device("cuda")
    assert select_device("cuda") == torch.device("cuda")
    assert select_device("cpu") == torch.device("cpu")


def test_device_selection_without_cuda(monkeypatch):
    """Without CUDA 'auto' falls back to the CPU and an explicit 'cuda' is refused."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert select_device() == torch.device("cpu")
    assert select_device("auto") == torch.device("cpu")
    assert select_device("cpu") == torch.device("cpu")
    with pytest.raises(ValueError, match=r"^device 'cuda' requested but CUDA is not available$"):
        select_device("cuda")


@pytest.mark.parametrize("cuda", [False, True])
@pytest.mark.parametrize("name", ["tpu", "CUDA", "cuda:0", ""])
def test_unknown_devices_are_refused(monkeypatch, cuda, name):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    with pytest.raises(ValueError, match=f"^device must be 'auto', 'cpu' or 'cuda', got '{name}'$"):
        select_device(name)
