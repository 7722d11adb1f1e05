"""The CIFAR model zoo: parameter counts from the architectures' definitions (or published),
feature shapes, forward/backward."""

import pytest
import torch

from topkd.models import MODELS, build_model, canonical_name


# Parameter counts written from the architectures as their papers and RepDistiller define them
# (never from this code): convolutions without bias except VGG's, BatchNorm = 2 per channel.
def _conv(k, c_in, c_out, bias=False):
    return k * k * c_in * c_out + (c_out if bias else 0)


def _bn(c):
    return 2 * c


def resnet_cifar(depth, widths, classes=100):
    """He et al. 2016, section 4.2: 3x3 stem, three stages of (depth - 2) / 6 basic blocks,
    stride 2 and a 1x1 conv + BN projection where the shape changes, then FC."""
    n = (depth - 2) // 6
    total = _conv(3, 3, widths[0]) + _bn(widths[0])
    c_in = widths[0]
    for stage, c in enumerate(widths[1:]):
        for block in range(n):
            total += _conv(3, c_in, c) + _bn(c) + _conv(3, c, c) + _bn(c)
            if c_in != c or (block == 0 and stage > 0):
                total += _conv(1, c_in, c) + _bn(c)
            c_in = c
    return total + widths[-1] * classes + classes


def wrn(depth, k, classes=100):
    """Zagoruyko & Komodakis 2016: 3x3 stem to 16, three stages of (depth - 4) / 6
    pre-activation blocks (BN, conv, BN, conv; 1x1 conv shortcut where the width changes)
    of widths 16k, 32k, 64k, a final BN, then FC."""
    n = (depth - 4) // 6
    total, c_in = _conv(3, 3, 16), 16
    for c in (16 * k, 32 * k, 64 * k):
        for _ in range(n):
            total += _bn(c_in) + _conv(3, c_in, c) + _bn(c) + _conv(3, c, c)
            if c_in != c:
                total += _conv(1, c_in, c)
            c_in = c
    return total + _bn(c_in) + c_in * classes + classes


def vgg(blocks, classes=100):
    """Simonyan & Zisserman's configurations (the KD literature's CIFAR variant): 3x3 convs with
    bias, each followed by BN, then one FC from 512."""
    total, c_in = 0, 3
    for block in blocks:
        for c in block:
            total += _conv(3, c_in, c, bias=True) + _bn(c)
            c_in = c
    return total + 512 * classes + classes


def resnet50_cifar(classes=100):
    """He et al. 2016 ResNet-50 ([3, 4, 6, 3] bottlenecks of expansion 4) with a 3x3 CIFAR stem
    to 64 channels; 1x1 conv + BN projections where the shape changes."""
    total, c_in = _conv(3, 3, 64) + _bn(64), 64
    for planes, blocks in ((64, 3), (128, 4), (256, 6), (512, 3)):
        for block in range(blocks):
            out = 4 * planes
            total += _conv(1, c_in, planes) + _bn(planes) + _conv(3, planes, planes) + \
                _bn(planes) + _conv(1, planes, out) + _bn(out)
            if c_in != out or (planes != 64 and block == 0):
                total += _conv(1, c_in, out) + _bn(out)
            c_in = out
    return total + 2048 * classes + classes


R16, R64 = [16, 16, 32, 64], [32, 64, 128, 256]
PARAMS = {
    **{f"resnet{d}": resnet_cifar(d, R16) for d in (8, 14, 20, 32, 44, 56, 110)},
    "resnet8x4": resnet_cifar(8, R64), "resnet32x4": resnet_cifar(32, R64),
    "wrn_16_1": wrn(16, 1), "wrn_16_2": wrn(16, 2), "wrn_40_1": wrn(40, 1), "wrn_40_2": wrn(40, 2),
    "vgg8": vgg([[64], [128], [256], [512], [512]]),
    "vgg11": vgg([[64], [128], [256, 256], [512, 512], [512, 512]]),
    "vgg13": vgg([[64, 64], [128, 128], [256, 256], [512, 512], [512, 512]]),
    "vgg16": vgg([[64, 64], [128, 128], [256] * 3, [512] * 3, [512] * 3]),
    "vgg19": vgg([[64, 64], [128, 128], [256] * 4, [512] * 4, [512] * 4]),
    "ResNet50": resnet50_cifar(),
}
# Millions of parameters with 100 classes as the KD literature publishes them (RepDistiller's
# models, e.g. the CRD paper's and its successors' tables), for the models without a formula
# above and as a check of the formulas themselves.
PUBLISHED_M = {"resnet20": 0.28, "resnet32": 0.47, "resnet56": 0.86, "resnet110": 1.74,
               "resnet8x4": 1.23, "resnet32x4": 7.43, "wrn_16_2": 0.70, "wrn_40_1": 0.57,
               "wrn_40_2": 2.26, "vgg8": 3.97, "vgg13": 9.46, "ResNet50": 23.71,
               "MobileNetV2": 0.81, "ShuffleV1": 0.95, "ShuffleV2": 1.36}

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
    assert set(MODELS) == set(PARAMS) | set(PUBLISHED_M) == set(SHAPES)


@pytest.mark.parametrize("name", sorted(PARAMS))
def test_parameter_count_matches_the_architecture(name):
    assert sum(p.numel() for p in build_model(name, 100).parameters()) == PARAMS[name]


@pytest.mark.parametrize("name", sorted(PUBLISHED_M))
def test_parameter_count_matches_the_published_one(name):
    n = PARAMS.get(name) or sum(p.numel() for p in build_model(name, 100).parameters())
    assert round(n / 1e6, 2) == PUBLISHED_M[name]


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
