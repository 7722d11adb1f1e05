"""``topology.faithful: true`` against the official TopKD code, and the RipsNet's quality
measures (held-out MSE, the mean training image's MSE, R²).

The expected values below are written from the official code (``generate_PCD_PI.py``,
``RipsNet_modules.py``, ``train_student.sh`` and its logs), not read back from the suite:
256 passes over the 781 training batches of 64 CIFAR images (199,936 clouds), split 75/25 in
order (149,952 to fit), Adamax 5e-4, batch 64, validation batch 32, up to 25,000 epochs,
patience 50, min_delta 1e-10; the best-test-epoch teacher; float32; 5 trials; the final
16-image batch kept; CRD negatives without replacement.
"""

import os

import pytest
import torch

from torchtopo.ripsnet import split_indices
from topkd.config import DEFAULTS, distiller_spec, faithful_overrides, load_config, preset_path
from topkd.data import ContrastIndexedDataset, make_loader
from topkd.generation import cloud_plan
from topkd.report import write_results
from topkd.suites import CifarSuite
from topkd.topology import heldout_quality, make_vectorizer


@pytest.fixture(scope="module")
def faithful():
    return load_config(preset_path("res56_res20_faithful"))


def test_faithful_preset_resolves_to_the_official_values(faithful):
    topo, rn = faithful["topology"], faithful["topology"]["ripsnet"]
    assert topo["faithful"] is True and topo["cloud_size"] == 64
    # 256 passes over the 781 full batches of 64 of CIFAR's 50,000 training images
    assert topo["passes"] == 256
    indices, passes = cloud_plan(50_000, topo["cloud_size"], topo["passes"], seed=0)
    assert indices.shape == (199_936, 64) and int(passes.max()) == 255
    # 75/25 in order: the first 149,952 clouds fit, the last 49,984 validate
    assert (rn["split"], rn["val_fraction"]) == ("ordered", 0.25)
    fit, val = split_indices(199_936, rn["val_fraction"], rn["split"])
    assert fit.numel() == 149_952 and fit[-1] == 149_951 and val[0] == 149_952
    assert val.numel() == 49_984
    # Adamax 5e-4 (fit_ripsnet's optimiser), batch 64, validation batch 32, 25,000 epochs,
    # early stopping patience 50 with min_delta 1e-10
    assert rn["lr"] == 5e-4 and rn["batch_size"] == 64 and rn["val_batch_size"] == 32
    assert rn["epochs"] == 25_000 and rn["patience"] == 50 and rn["min_delta"] == 1e-10
    # the teacher of the best test epoch (<model>_best.pth)
    assert faithful["teacher"]["weights"] == "best"
    assert CifarSuite().teacher_weights(faithful).endswith(os.path.join("teacher", "best.pt"))
    # float32 in every stage: no autocast, no channels_last (teacher.train inherits train)
    assert faithful["train"]["amp"] is False and faithful["train"]["channels_last"] is False
    assert "amp" not in faithful["teacher"]["train"]
    # 5 trials
    assert len(faithful["seeds"]) == 5
    # drop_last=False: 781 batches of 64 and a final one of 16 images
    assert faithful["dataset"]["drop_last"] is False
    loader = make_loader(torch.utils.data.TensorDataset(torch.zeros(50_000)),
                         faithful["dataset"]["batch_size"], True, 0,
                         drop_last=faithful["dataset"]["drop_last"])
    assert len(loader) == 782 and 50_000 - 781 * 64 == 16
    # CRD negatives without replacement, also as the extra of topkd_crd
    assert distiller_spec(faithful, "crd")["replacement"] is False
    assert distiller_spec(faithful, "topkd_crd")["extra"][0]["replacement"] is False
    # the two it already switched: the official 20x20 image (BatchNorm train mode: the
    # clouds stage reads topology.faithful, tested in test_topkd_pipeline)
    assert make_vectorizer(faithful).num_features == 400


def test_default_differs_from_the_official_choices():
    cfg = load_config(preset_path("res56_res20"))
    rn = cfg["topology"]["ripsnet"]
    assert cfg["topology"]["faithful"] is False
    assert (rn["split"], rn["val_fraction"], rn["epochs"]) == ("random", 0.1, 500)
    assert cfg["teacher"]["weights"] == "last" and cfg["dataset"]["drop_last"] is True
    assert cfg["train"]["amp"] is None  # bfloat16 on a GPU
    assert "replacement" not in distiller_spec(cfg, "crd")
    assert cfg["topology"]["passes"] == DEFAULTS["topology"]["passes"]


def test_settings_given_with_faithful_keep_their_values(tmp_path):
    path = tmp_path / "f.yaml"
    path.write_text("teacher: {arch: resnet56}\nstudent: {arch: resnet20}\n"
                    "topology: {faithful: true, passes: 2, ripsnet: {epochs: 3}}\n"
                    "distillers: {crd: {replacement: true}}\n")
    cfg = load_config(str(path), ["seeds=[7]"])
    assert cfg["topology"]["passes"] == 2 and cfg["topology"]["ripsnet"]["epochs"] == 3
    assert cfg["seeds"] == [7] and cfg["topology"]["ripsnet"]["batch_size"] == 64
    assert distiller_spec(cfg, "crd")["replacement"] is True
    raw = {"topology": {"faithful": True, "passes": 2}, "seeds": [7]}
    assert faithful_overrides(raw) == {"topology.passes": (256, 2),
                                       "seeds": ([0, 1, 2, 3, 4], [7])}


def test_crd_negatives_without_replacement_are_distinct_and_of_other_classes():
    targets = torch.arange(40) % 4

    class Items(torch.utils.data.Dataset):
        def __init__(self):
            self.targets = targets.numpy()

        def __len__(self):
            return 40

        def __getitem__(self, i):
            return torch.zeros(1), int(targets[i])

    torch.manual_seed(0)
    data = ContrastIndexedDataset(Items(), 30, replacement=False)
    for i in range(40):
        neg = data[i][3][1:]
        assert neg.unique().numel() == 30 and (targets[neg] != targets[i]).all()
    # more negatives than other-class samples: with replacement, as RepDistiller
    neg = ContrastIndexedDataset(Items(), 31, replacement=False)[0][3][1:]
    assert neg.numel() == 31 and (targets[neg] != 0).all()


def test_r2_on_synthetic_targets_with_a_known_answer():
    clouds = torch.zeros(6, 3, 2)
    targets = torch.tensor([[0.0, 1.0], [1.0, 0.0], [0.5, 0.5], [0.0, 0.0], [1.0, 1.0],
                            [0.5, 0.5]])
    fit, held = torch.tensor([0, 1, 2]), torch.tensor([3, 4, 5])
    # mean training image (0.5, 0.5): squared errors 0.25 x 4 and 0 x 2 -> 1/6
    constant = 1.0 / 6.0
    off = lambda c: targets[held] + 0.1  # noqa: E731 -- every pixel 0.1 off: MSE 0.01
    q = heldout_quality(off, clouds, targets, fit, held)
    assert q["constant_mse"] == pytest.approx(constant)
    assert q["heldout_mse"] == pytest.approx(0.01)
    assert q["r2"] == pytest.approx(1 - 0.01 / constant) and q["num_heldout"] == 3
    mean = lambda c: torch.full((c.shape[0], 2), 0.5)  # noqa: E731 -- the constant itself
    assert heldout_quality(mean, clouds, targets, fit, held)["r2"] == pytest.approx(0.0)
    worse = lambda c: 1 - targets[held]  # noqa: E731
    assert heldout_quality(worse, clouds, targets, fit, held)["r2"] < 0


def test_table_shows_the_ripsnet_r2(tmp_path):
    cfg = load_config(preset_path("smoke"))
    row = {"pair": "smoke", "teacher": "resnet20", "student": "resnet8", "seed": 0,
           "last_acc": 90.0, "best_acc": 91.0, "last_top5": 99.0, "best_top5": 99.0,
           "best_epoch": 3, "step_time": 0.1, "teacher_top1": 98.0, "teacher_top5": 100.0,
           "ripsnet_heldout_mse": 0.0012, "ripsnet_constant_mse": 0.0048, "ripsnet_r2": 0.75}
    rows = [dict(row, distiller=d) for d in ("vanilla", "topkd")]
    text = write_results(rows, [cfg], str(tmp_path))
    assert "R² 0.750" in text and "MSE 0.00120" in text and "mean training image 0.00480" in text
    assert "ripsnet_r2" in (tmp_path / "results.csv").read_text().splitlines()[0]
