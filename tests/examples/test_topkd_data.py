"""Data: the CIFAR-100 loader on a tiny on-disk folder (and on tampered files that must not run
code), digits, the CRD index wrapper."""

import os
import pickle

import numpy as np
import pytest
import torch

from topkd.data import (CIFAR100_MEAN, ContrastIndexedDataset, build_datasets, cifar100, digits,
                        load_cifar_file, make_loader)


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


def test_contrast_dataset_negatives_from_other_classes():
    train = digits(True)
    wrapped = ContrastIndexedDataset(train, num_negatives=50)
    img, y, i, contrast = wrapped[7]
    assert i == 7 and contrast[0] == 7 and contrast.shape == (51,)
    assert (train.targets[contrast[1:]] != y).all()
    with pytest.raises(ValueError, match="num_negatives"):
        ContrastIndexedDataset(train, num_negatives=0)


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


class _Evil:
    """Runs ``command`` when unpickled by a plain ``pickle.load``."""

    def __init__(self, call, command):
        self.call, self.command = call, command

    def __reduce__(self):
        return self.call, (self.command,)


def _payloads(marker):
    touch = f"touch {marker}"
    evil_array = np.empty(1, dtype=object)
    evil_array[0] = _Evil(os.system, touch)
    return {"os.system": _Evil(os.system, touch), "builtins.eval":
            _Evil(eval, f"__import__('os').system({touch!r})"),
            "subprocess": _Evil(__import__("subprocess").call, ["touch", str(marker)]),
            "object array": evil_array}


@pytest.mark.parametrize("verify", [False, True])
@pytest.mark.parametrize("payload", ["os.system", "builtins.eval", "subprocess", "object array"])
@pytest.mark.parametrize("where", ["batch_label", "data"])
def test_tampered_cifar_file_cannot_run_code(tiny_cifar, tmp_path, payload, where, verify):
    """A CIFAR-100 ``train`` file in the real format (a protocol-2 pickle of CIFAR's dict) with a
    value whose ``__reduce__`` runs a command: loading fails naming the file, and the command
    never runs, whatever ``verify`` says. The same bytes do run it under ``pickle.load``."""
    root, _ = tiny_cifar
    marker = tmp_path / "pwned"
    path = os.path.join(root, "cifar-100-python", "train")
    with open(path, "rb") as f:
        entry = pickle.load(f)
    entry[where] = _payloads(marker)[payload]
    with open(path, "wb") as f:
        pickle.dump(entry, f, protocol=2)
    with pytest.raises(RuntimeError, match="cifar-100-python"):
        cifar100(root, train=True, download=False, verify=verify)
    with pytest.raises(ValueError, match="cifar-100-python/train.*not allowed"):
        load_cifar_file(path)
    assert not marker.exists()
    if payload == "os.system":  # the payload is live: a plain unpickler runs it
        with open(path, "rb") as f:
            pickle.load(f)
        assert marker.exists()


def test_cifar_files_as_numpy_1_wrote_them(tiny_cifar, tmp_path):
    """The original files name numpy 1's ``numpy.core.multiarray._reconstruct``: admitted, as
    are ``bytes`` keys (Python 2 strings read as bytes); a wrongly shaped ``data`` is refused."""
    root, labels = tiny_cifar
    path = os.path.join(root, "cifar-100-python", "train")
    raw = open(path, "rb").read()
    assert b"numpy._core.multiarray" in raw
    with open(path, "wb") as f:
        f.write(raw.replace(b"numpy._core.multiarray", b"numpy.core.multiarray"))
    assert cifar100(root, train=True, verify=False).targets == labels
    entry = load_cifar_file(path)
    with open(path, "wb") as f:
        pickle.dump({k.encode(): v for k, v in entry.items()}, f, protocol=2)
    assert cifar100(root, train=True, verify=False).targets == labels
    entry["data"] = entry["data"][:, :100]
    with open(path, "wb") as f:
        pickle.dump(entry, f, protocol=2)
    with pytest.raises(RuntimeError, match=r"'data' must be a uint8 array \(N, 3072\)"):
        cifar100(root, train=True, verify=False)
    with open(path, "wb") as f:
        f.write(b"")
    with pytest.raises(RuntimeError, match="not a CIFAR-100 data file"):
        cifar100(root, train=True, verify=False)
