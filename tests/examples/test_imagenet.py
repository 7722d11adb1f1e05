"""ImageNet side of the TopKD suite, in one process: torchvision models with the suite's feature
interface, weight files, data helpers, config validation and the single-process behaviour of the
distributed helpers."""

import os

import pytest
import torch
import torchvision

from topkd import distributed as D
from topkd.config import IMAGENET_DEFAULTS, ConfigError, load_config
from topkd.data import ContrastIndexedDataset, SeededDataset
from topkd.engine import load_model_weights
from topkd.generation import cloud_plan
from topkd.imagenet import build_imagenet_model, image_folder, imagenet_transforms
from topkd.pipeline import validate
from topkd.suites import suite_of
from topkd.topology import cloud_size

CONFIG_DIR = os.path.join(os.path.dirname(__file__), os.pardir, os.pardir, "examples", "topkd",
                          "configs", "imagenet")


@pytest.mark.parametrize("name, stages, pooled, params", [
    ("resnet18", [64, 64, 128, 256, 512], 512, 11_689_512),
    ("resnet50", [64, 256, 512, 1024, 2048], 2048, 25_557_032),
    ("mobilenet_v2", [32, 24, 32, 96, 320], 1280, 3_504_872),
])
def test_models_match_torchvision(name, stages, pooled, params):
    """Same parameters and logits as torchvision's model, features at the documented sizes
    (strides 2, 4, 8, 16, 32), channel counts from ``feature_channels``."""
    model = build_imagenet_model(name).eval()
    ref = getattr(torchvision.models, name)().eval()
    ref.load_state_dict(model.state_dict())
    assert sum(p.numel() for p in model.parameters()) == params
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        logits, feats = model(x)
        torch.testing.assert_close(logits, ref(x))
    assert model.feature_channels() == {"stages": stages, "pooled": pooled}
    for s, pre, c, side in zip(feats["stages"], feats["preact_stages"], stages, (32, 16, 8, 4, 2)):
        assert s.shape == pre.shape == (2, c, side, side)
    assert feats["pooled"].shape == (2, pooled)
    # ResNet stages end in a ReLU: the pre-activation keeps the negative part
    if name.startswith("resnet"):
        assert (feats["preact_stages"][-1] < 0).any() and (feats["stages"][-1] >= 0).all()


def test_torchvision_weight_file_loads(tmp_path):
    """A bare torchvision state dict loads (weights_only); a mismatching or absent file fails
    with its path in the message."""
    src = torchvision.models.resnet18(num_classes=5)
    torch.save(src.state_dict(), tmp_path / "resnet18.pth")
    model = build_imagenet_model("resnet18", num_classes=5)
    load_model_weights(model, str(tmp_path / "resnet18.pth"))
    assert torch.equal(model.fc.weight, src.fc.weight)
    with pytest.raises(ValueError, match="do not match"):
        load_model_weights(build_imagenet_model("resnet34", 5), str(tmp_path / "resnet18.pth"))
    with pytest.raises(FileNotFoundError, match="absent.pth"):
        load_model_weights(model, str(tmp_path / "absent.pth"))


def test_bad_model_arguments():
    with pytest.raises(ValueError, match="unknown ImageNet model"):
        build_imagenet_model("mobilenet_v1")
    with pytest.raises(ValueError, match="norm"):
        build_imagenet_model("resnet18", norm="group")
    with pytest.raises(ValueError, match="num_classes"):
        build_imagenet_model("resnet18", num_classes=0)
    with pytest.raises(ValueError, match="input_size"):
        imagenet_transforms(True, input_size=0)


def test_image_folder_missing(tmp_path):
    with pytest.raises(FileNotFoundError, match="train"):
        image_folder(str(tmp_path), "train", True)


class _Noise(torch.utils.data.Dataset):
    targets = [0, 1, 2, 0, 1, 2]

    def __len__(self):
        return 6

    def __getitem__(self, i):
        return torch.rand(3), self.targets[i]


def test_seeded_augmentation_and_negatives():
    """Items depend only on (seed, epoch, index), not on the caller's RNG; CRD's negatives are
    from other classes and start with the item's own index."""
    ds = SeededDataset(ContrastIndexedDataset(_Noise(), num_negatives=16), seed=3)
    torch.manual_seed(0)
    a = ds[4]
    state = torch.get_rng_state()
    torch.manual_seed(123)
    b = ds[4]
    assert torch.equal(a[0], b[0]) and torch.equal(a[3], b[3])
    ds.set_epoch(1)
    assert not torch.equal(ds[4][0], a[0])
    assert torch.equal(ds.item(4, 0)[0], a[0])
    torch.manual_seed(0)
    assert torch.equal(torch.get_rng_state(), state)
    idx = a[3]
    assert idx[0] == 4 and idx.shape == (17,)
    assert all(_Noise.targets[int(j)] != 1 for j in idx[1:])
    with pytest.raises(ValueError, match="num_negatives"):
        ContrastIndexedDataset(_Noise(), 0)


def test_cloud_plan():
    idx, passes = cloud_plan(10, 4, 2, seed=0)
    assert idx.shape == (4, 4) and passes.tolist() == [0, 0, 1, 1]
    assert len(set(idx[:2].flatten().tolist())) == 8
    assert torch.equal(idx, cloud_plan(10, 4, 2, seed=0)[0])
    assert not torch.equal(idx, cloud_plan(10, 4, 2, seed=1)[0])
    with pytest.raises(ValueError, match="smaller than one cloud"):
        cloud_plan(3, 4, 1, seed=0)


def test_single_process_helpers_are_identities():
    """Without torchrun: rank 0 of 1, the same loader, sums and tensors returned unchanged."""
    assert (D.rank(), D.world_size(), D.is_main(), D.is_distributed()) == (0, 1, True, False)
    assert D.init_distributed()["distributed"] is False
    loader = torch.utils.data.DataLoader(list(range(8)), batch_size=4)
    assert D.shard_loader(loader, train=True) is loader
    x = torch.randn(3, 2)
    assert D.all_gather_with_grad(x) is x and torch.equal(D.all_gather_nograd(x), x)
    assert D.all_reduce_sums(1, 2.5, x[0, 0]) == (1, 2.5, x[0, 0])
    assert D.rank_seed(7) == 7 and D.rank_seed(7, 1) != D.rank_seed(7, 2)
    sampler = D.EvalShardSampler(list(range(7)), num_replicas=3, rank=1)
    assert list(sampler) == [1, 4] and len(sampler) == 2
    with pytest.raises(ValueError, match="rank"):
        D.EvalShardSampler(list(range(7)), num_replicas=2, rank=2)


def _config(name, overrides=()):
    return load_config(os.path.join(CONFIG_DIR, f"{name}.yaml"), list(overrides), IMAGENET_DEFAULTS)


@pytest.mark.parametrize("name, weights", [("res34_res18", "ResNet34_Weights"),
                                           ("res50_mv2", "ResNet50_Weights")])
def test_configs_point_at_torchvision_teachers(name, weights):
    """The teacher file is torchvision's own (its published weights' file name), and Table 3's
    teacher row is torchvision's published ResNet34 accuracy."""
    cfg = _config(name)
    ref = getattr(torchvision.models, weights).IMAGENET1K_V1
    assert os.path.basename(cfg["teacher"]["checkpoint"]) == os.path.basename(ref.url)
    assert cfg["teacher"]["arch"] == name.split("_")[0].replace("res", "resnet")
    if name == "res34_res18":
        acc = ref.meta["_metrics"]["ImageNet-1K"]
        assert cfg["paper"]["teacher"] == {"top1": round(acc["acc@1"], 2),
                                           "top5": round(acc["acc@5"], 2)}


def test_res34_res18_runs_the_published_imagenet_kd_recipe():
    """The literature's ImageNet KD benchmark, written here from its sources, not from the
    suite's config (/work/shared/reference/kd-recipes.md, "ImageNet-1K recipe", gathered from
    RepDistiller/CRD, mdistiller and torchdistill): ResNet34 -> ResNet18, 100 epochs, SGD
    momentum 0.9, weight decay 1e-4, batch 256 at lr 0.1 (He et al. 2016, section 3.4), lr x0.1
    at epochs 30, 60 and 90."""
    cfg = _config("res34_res18")
    assert (cfg["teacher"]["arch"], cfg["student"]["arch"]) == ("resnet34", "resnet18")
    assert cfg["dataset"]["batch_size"] == 256
    recipe = suite_of(cfg).recipe(cfg, "resnet18", cfg["train"])
    published = {"epochs": 100, "lr": 0.1, "momentum": 0.9, "weight_decay": 1e-4,
                 "milestones": [30, 60, 90], "lr_decay": 0.1}
    assert {key: recipe[key] for key in published} == published


def test_learning_rate_scales_linearly_with_the_global_batch():
    """Goyal et al.'s rule: lr = base_lr × batch / base_batch_size (0.1 at 256), unless set."""
    suite = suite_of(_config("res34_res18"))
    for batch, lr in ((256, 0.1), (512, 0.2), (64, 0.025)):
        cfg = _config("res34_res18", [f"dataset.batch_size={batch}"])
        assert suite.recipe(cfg, "resnet18", cfg["train"])["lr"] == pytest.approx(lr)
        assert cloud_size(cfg) == batch  # one process: the whole batch is one cloud
    cfg = _config("res34_res18", ["train.lr=0.3"])
    assert suite.recipe(cfg, "resnet18", cfg["train"])["lr"] == 0.3


def test_validation_errors(tmp_path):
    cfg = _config("res34_res18")
    with pytest.raises(ConfigError, match="teacher.checkpoint"):
        validate(cfg, ["student"])
    validate(cfg, ["diagrams"])
    for key, value, match in (("student", {"arch": "vgg13"}, "student.arch"),
                              ("train", {**cfg["train"], "norm": "layer"}, "train.norm"),
                              ("train", {**cfg["train"], "amp_dtype": "float8"}, "amp_dtype"),
                              ("dataset", {**cfg["dataset"], "batch_size": 0},
                               "dataset.batch_size"),
                              ("topology", {**cfg["topology"], "cloud_size": 100},
                               "multiple of the cloud size"),
                              ("compare", ["kd", "dkd"], "unknown distiller"),
                              ("distillers", {"kd": {"name": "kd", "delta": 1.0}},
                               "unknown arguments")):
        with pytest.raises(ConfigError, match=match):
            validate({**cfg, key: value}, ["diagrams"])
    with pytest.raises(ConfigError, match="unknown key 'train.nrom'"):
        _config("res34_res18", ["train.nrom=sync"])
    with pytest.raises(ConfigError, match="dataset.name must be one of 'imagenet'"):
        _config("res34_res18", ["dataset.name=cifar100"])
