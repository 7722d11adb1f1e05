"""The CIFAR model zoo: published parameter counts, feature shapes, forward/backward."""

import pytest
import torch

from topkd.models import MODELS, build_model, canonical_name

# Millions of parameters with 100 classes. Published (RepDistiller/CRD, kd-recipes.md):
# resnet20/32/56/110, resnet8x4, resnet32x4, wrn_40_2, wrn_16_2, wrn_40_1, vgg13, vgg8, ResNet50,
# MobileNetV2, ShuffleV1, ShuffleV2; the others are the same definitions' counts.
PARAMS_M = {
    "resnet8": 0.08, "resnet14": 0.18, "resnet20": 0.28, "resnet32": 0.47, "resnet44": 0.67,
    "resnet56": 0.86, "resnet110": 1.74, "resnet8x4": 1.23, "resnet32x4": 7.43,
    "wrn_16_1": 0.18, "wrn_16_2": 0.70, "wrn_40_1": 0.57, "wrn_40_2": 2.26,
    "vgg8": 3.97, "vgg11": 9.28, "vgg13": 9.46, "vgg16": 14.77, "vgg19": 20.09,
    "ResNet50": 23.71, "MobileNetV2": 0.81, "ShuffleV1": 0.95, "ShuffleV2": 1.36,
}

R = [(16, 32, 32), (16, 32, 32), (32, 16, 16), (64, 8, 8)], 64
R4 = [(32, 32, 32), (64, 32, 32), (128, 16, 16), (256, 8, 8)], 256
W2 = [(16, 32, 32), (32, 32, 32), (64, 16, 16), (128, 8, 8)], 128
V = [(64, 32, 32), (128, 16, 16), (256, 8, 8), (512, 4, 4), (512, 4, 4)], 512
SHAPES = {
    **{f"resnet{d}": R for d in (8, 14, 20, 32, 44, 56, 110)},
    "resnet8x4": R4, "resnet32x4": R4, "wrn_16_1": R, "wrn_40_1": R, "wrn_16_2": W2,
    "wrn_40_2": W2, **{f"vgg{d}": V for d in (8, 11, 13, 16, 19)},
    "ResNet50": ([(64, 32, 32), (256, 32, 32), (512, 16, 16), (1024, 8, 8), (2048, 4, 4)], 2048),
    "MobileNetV2": ([(16, 16, 16), (12, 16, 16), (16, 8, 8), (48, 4, 4), (160, 2, 2)], 1280),
    "ShuffleV1": ([(24, 32, 32), (240, 16, 16), (480, 8, 8), (960, 4, 4)], 960),
    "ShuffleV2": ([(24, 32, 32), (116, 16, 16), (232, 8, 8), (464, 4, 4)], 1024),
}


def test_zoo_is_complete():
    assert set(MODELS) == set(PARAMS_M) == set(SHAPES)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_parameter_count(name):
    n = sum(p.numel() for p in build_model(name, 100).parameters())
    assert round(n / 1e6, 2) == pytest.approx(PARAMS_M[name], abs=1e-9)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_features_forward_backward(name):
    torch.manual_seed(0)
    model = build_model(name, 100)
    x = torch.randn(2, 3, 32, 32, requires_grad=True)
    logits, feats = model(x)
    stages, pooled = SHAPES[name]
    assert logits.shape == (2, 100)
    assert [tuple(s.shape) for s in feats["stages"]] == [(2,) + s for s in stages]
    assert [tuple(s.shape) for s in feats["preact_stages"]] == [(2,) + s for s in stages]
    assert feats["pooled"].shape == (2, pooled)
    assert model.feature_channels() == {"stages": [s[0] for s in stages], "pooled": pooled}
    # stage outputs end in a ReLU except MobileNetV2's linear bottlenecks and WRN's
    # pre-activation blocks
    if name != "MobileNetV2" and not name.startswith("wrn"):
        assert all(bool((s >= 0).all()) for s in feats["stages"][1:])
    loss = logits.logsumexp(1).sum() + sum(s.mean() for s in feats["stages"])
    loss.backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    assert all(p.grad is not None for p in model.parameters())


def test_preact_is_before_relu():
    model = build_model("resnet8", 10).eval()
    _, feats = model(torch.randn(2, 3, 32, 32))
    for s, pre in zip(feats["stages"], feats["preact_stages"]):
        torch.testing.assert_close(s, torch.relu(pre))
    assert any(bool((pre < 0).any()) for pre in feats["preact_stages"])


# Module names of RepDistiller's definitions, so its teacher checkpoints load.
@pytest.mark.parametrize("name,keys", [
    ("resnet56", ["layer1.0.conv1.weight", "layer2.0.downsample.0.weight", "fc.weight"]),
    ("wrn_40_2", ["block1.layer.0.convShortcut.weight", "block3.layer.5.bn2.running_mean",
                  "bn1.weight", "fc.bias"]),
    ("vgg13", ["block0.0.weight", "block4.4.running_var", "classifier.weight"]),
    ("ResNet50", ["layer4.2.conv3.weight", "layer1.0.shortcut.1.weight", "linear.weight"]),
    ("MobileNetV2", ["conv1.0.weight", "blocks.6.0.conv.7.weight", "conv2.1.weight",
                     "classifier.0.weight"]),
    ("ShuffleV1", ["layer3.3.conv3.weight", "bn1.weight", "linear.weight"]),
    ("ShuffleV2", ["layer1.0.conv5.weight", "layer2.3.bn3.weight", "conv2.weight", "bn2.bias"]),
])
def test_repdistiller_key_names(name, keys):
    state = build_model(name, 100).state_dict()
    assert all(k in state for k in keys)


def test_registry_errors_and_aliases():
    assert canonical_name("mobile_half") == "MobileNetV2"
    assert type(build_model("resnet50", 10)).__name__ == "ResNet50"
    with pytest.raises(ValueError, match="unknown model 'resnet9'"):
        build_model("resnet9")
    with pytest.raises(ValueError, match="num_classes"):
        build_model("resnet8", 0)
    with pytest.raises(TypeError, match="model name"):
        build_model(8)
    with pytest.raises(ValueError, match=r"x must have shape \(B, 3, H, W\)"):
        build_model("resnet8")(torch.zeros(2, 1, 32, 32))
