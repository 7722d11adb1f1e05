"""Data: the real CIFAR-100 loader on a tiny on-disk folder, digits, the CRD index wrapper."""

import time

import numpy as np
import pytest
import torch

from topkd.data import (CIFAR100_MEAN, IndexedDataset, build_datasets, cifar100, digits,
                        make_loader)


def test_cifar100_tiny_folder(tiny_cifar):
    root, labels = tiny_cifar
    train = cifar100(root, train=True, download=False, verify=False)
    test = cifar100(root, train=False, download=False, verify=False)
    assert len(train) == 40 and len(test) == 20 and train.classes[7] == "class7"
    assert list(train.targets) == labels
    img, y = train[3]
    assert img.shape == (3, 32, 32) and img.dtype == torch.float32 and y == labels[3]
    # test images are not augmented: the first pixel is the normalised stored byte
    raw = test.data[0]
    expected = (raw[0, 0, 0] / 255.0 - CIFAR100_MEAN[0]) / 0.2675
    assert test[0][0][0, 0, 0].item() == pytest.approx(expected, abs=1e-5)
    # the train transform crops with padding: zeros (after normalisation) appear at borders
    torch.manual_seed(0)
    shifted = any(not torch.equal(train[0][0], train[0][0]) for _ in range(5))
    assert shifted


def test_cifar100_absent_folder_names_it(tmp_path):
    with pytest.raises(FileNotFoundError, match=str(tmp_path / "nowhere" / "cifar-100-python")):
        cifar100(str(tmp_path / "nowhere"), train=True, download=False)


def test_cifar100_md5_check_rejects_tiny_folder(tiny_cifar):
    root, _ = tiny_cifar
    with pytest.raises(RuntimeError, match="cifar-100-python"):
        cifar100(root, train=True, download=False, verify=True)


def test_digits_shape_split_and_normalisation():
    train, test = digits(True), digits(False)
    assert (len(train), len(test)) == (1437, 360)
    x, y = test[0]
    assert x.shape == (3, 32, 32) and 0 <= y < 10
    assert torch.equal(x[0], x[1])
    batch = torch.stack([test[i][0] for i in range(len(test))])
    assert abs(batch.mean().item()) < 0.1 and 0.8 < batch.std().item() < 1.2
    assert np.bincount(test.targets.numpy()).min() >= 34  # stratified


def test_indexed_dataset_negatives_from_other_classes():
    train = digits(True)
    wrapped = IndexedDataset(train, num_negatives=50)
    img, y, i, contrast = wrapped[7]
    assert i == 7 and contrast[0] == 7 and contrast.shape == (51,)
    assert (train.targets[contrast[1:]] != y).all()
    assert len(IndexedDataset(train)[5]) == 3
    with pytest.raises(ValueError, match="num_negatives"):
        IndexedDataset(train, num_negatives=0)


def test_loader_order_depends_only_on_seed():
    train = digits(True)
    loader = make_loader(train, 64, train=True, seed=3)
    loader.generator.manual_seed(11)
    torch.manual_seed(0)
    a = next(iter(loader))[1]
    loader.generator.manual_seed(11)
    torch.manual_seed(0)
    b = next(iter(loader))[1]
    assert torch.equal(a, b)
    with pytest.raises(ValueError, match="batch_size"):
        make_loader(train, 0, train=True)
    with pytest.raises(ValueError, match="dataset name"):
        build_datasets("mnist")


def test_data_loading_does_not_dominate_a_step(tiny_cifar):
    """CIFAR's PIL pipeline for a batch of 64 costs well under a resnet20 training step."""
    from topkd.models import build_model

    root, _ = tiny_cifar
    train = cifar100(root, train=True, download=False, verify=False)
    tic = time.perf_counter()
    for _ in range(2):
        torch.stack([train[i % len(train)][0] for i in range(64)])
    load = (time.perf_counter() - tic) / 2
    model = build_model("resnet20", 100)
    x = torch.randn(64, 3, 32, 32)
    tic = time.perf_counter()
    model(x)[0].sum().backward()
    step = time.perf_counter() - tic
    assert load < step
