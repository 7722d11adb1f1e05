"""Fixtures of the TopKD example suite's tests: its package on sys.path, a tiny CIFAR-100 folder
in the real on-disk format, and tiny configs on the digits data."""

import os
import pickle
import sys

import numpy as np
import pytest

EXAMPLE_DIR = os.path.join(os.path.dirname(__file__), os.pardir, os.pardir, "examples", "topkd")
sys.path.insert(0, os.path.abspath(EXAMPLE_DIR))


def write_tiny_cifar100(root, n_train=40, n_test=20, seed=0):
    """Write ``root/cifar-100-python/{train,test,meta}`` as CIFAR-100's pickles (uint8 rows of
    3072 values, channel-major; ``fine_labels``/``coarse_labels``; label names in ``meta``).
    The originals are Python 2 pickles whose ``str`` keys load as ``str`` under
    ``encoding="latin1"`` (torchvision's reader), as ``str`` keys written here do.

    Returns the fine labels of the train split.
    """
    rng = np.random.default_rng(seed)
    folder = os.path.join(root, "cifar-100-python")
    os.makedirs(folder, exist_ok=True)
    train_labels = None
    for name, n in (("train", n_train), ("test", n_test)):
        fine = (np.arange(n) % 100).tolist()
        entry = {"filenames": [f"img{i}.png" for i in range(n)],
                 "batch_label": f"{name} batch 1 of 1", "fine_labels": fine,
                 "coarse_labels": [f // 5 for f in fine],
                 "data": rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)}
        with open(os.path.join(folder, name), "wb") as f:
            pickle.dump(entry, f, protocol=2)
        if name == "train":
            train_labels = fine
    meta = {"fine_label_names": [f"class{i}" for i in range(100)],
            "coarse_label_names": [f"super{i}" for i in range(20)]}
    with open(os.path.join(folder, "meta"), "wb") as f:
        pickle.dump(meta, f, protocol=2)
    return train_labels


@pytest.fixture
def tiny_cifar(tmp_path):
    root = str(tmp_path / "data")
    labels = write_tiny_cifar100(root)
    return root, labels


@pytest.fixture(scope="session")
def tiny_config():
    """``tiny_config(out_dir, compare=..., **overrides)`` builds a config, see :func:`_tiny_config`."""
    return _tiny_config


def _tiny_config(out_dir, compare=("vanilla", "kd", "topkd"), **overrides):
    """A pair config on a small digits subset that runs every stage in seconds."""
    from topkd.config import DEFAULTS, deep_merge

    cfg = deep_merge(DEFAULTS, {
        "name": "tiny", "out_dir": str(out_dir), "seeds": [0], "progress": False,
        "dataset": {"name": "digits", "num_workers": 0, "batch_size": 32,
                    "train_subset": 192, "test_subset": 64},
        "train": {"epochs": 1, "lr": 0.05, "milestones": [1]},
        "teacher": {"arch": "resnet8", "train": {"epochs": 2}},
        "student": {"arch": "resnet8"},
        "compare": list(compare),
        "topology": {"cloud_size": 16, "passes": 2, "shard_size": 8,
                     "ripsnet": {"epochs": 30, "patience": 30, "batch_size": 8}},
    })
    return deep_merge(cfg, overrides)
