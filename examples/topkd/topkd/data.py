"""Data: CIFAR-100 through torchvision, scikit-learn's digits as an offline stand-in, and the
index-returning wrapper CRD needs.

Every dataset yields ``(image (3, 32, 32) float32, target int)``; :class:`IndexedDataset` adds the
sample index and, for CRD, ``K`` contrastive indices drawn from other classes.
"""
from __future__ import annotations

import functools
import os
from typing import Optional, Tuple

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

CIFAR100_MEAN = (0.5071, 0.4867, 0.4408)
CIFAR100_STD = (0.2675, 0.2565, 0.2761)
DATASETS = ("cifar100", "digits")


def cifar100_transforms(train: bool):
    """The standard CIFAR-100 transform: RandomCrop(32, pad 4) + horizontal flip for training,
    then ToTensor and normalisation with :data:`CIFAR100_MEAN` / :data:`CIFAR100_STD`."""
    from torchvision import transforms as T

    norm = [T.ToTensor(), T.Normalize(CIFAR100_MEAN, CIFAR100_STD)]
    if train:
        return T.Compose([T.RandomCrop(32, padding=4), T.RandomHorizontalFlip()] + norm)
    return T.Compose(norm)


def cifar100(root: str, train: bool, download: bool = False, verify: bool = True) -> Dataset:
    """CIFAR-100 from ``root/cifar-100-python`` through :class:`torchvision.datasets.CIFAR100`.

    Parameters
    ----------
    root : str
        Folder that holds (or will hold) ``cifar-100-python/``.
    train : bool
        Training split (50,000 images, augmented) or test split (10,000).
    download : bool
        Download when absent (needs the internet).
    verify : bool
        Check torchvision's md5 sums; ``False`` only checks that the files exist (for
        hand-made folders such as the tests' tiny one).

    Returns
    -------
    torch.utils.data.Dataset
        Items ``(image (3, 32, 32), fine label)``.

    Raises
    ------
    FileNotFoundError
        When the folder is absent and ``download`` is false.
    RuntimeError
        When the download fails (offline), naming the folder.
    """
    from torchvision.datasets import CIFAR100

    folder = os.path.join(os.path.expanduser(root), "cifar-100-python")

    class _CIFAR100(CIFAR100):
        if not verify:
            # md5 None: torchvision's checks then only test that the files exist
            train_list = [[name, None] for name, _ in CIFAR100.train_list]
            test_list = [[name, None] for name, _ in CIFAR100.test_list]
            meta = dict(CIFAR100.meta, md5=None)

    if not download and not os.path.isdir(folder):
        raise FileNotFoundError(
            f"CIFAR-100 not found: folder {folder!r} does not exist. Put the extracted "
            "cifar-100-python/ there, set dataset.download: true (needs the internet), or use "
            "dataset.name: digits to run offline."
        )
    try:
        return _CIFAR100(os.path.expanduser(root), train=train, download=download,
                         transform=cifar100_transforms(train))
    except (OSError, RuntimeError) as err:
        raise RuntimeError(
            f"could not load CIFAR-100 from {folder!r} ({err}); when offline, place the "
            "extracted cifar-100-python/ there or use dataset.name: digits"
        ) from err


class TensorImageDataset(Dataset):
    """In-memory uint8 images with an optional random-crop augmentation.

    Parameters
    ----------
    images : torch.Tensor
        ``(N, 3, 32, 32)`` uint8.
    targets : torch.Tensor
        ``(N,)`` int64 labels.
    mean, std : sequence of 3 float
        Normalisation applied after scaling to [0, 1].
    train : bool
        Apply RandomCrop(32, padding 4) (no flip: digits are not mirror-symmetric).
    """

    def __init__(self, images: torch.Tensor, targets: torch.Tensor, mean, std, train: bool):
        if images.dim() != 4 or images.dtype != torch.uint8:
            raise ValueError(f"images must be (N, C, H, W) uint8, got {tuple(images.shape)} {images.dtype}")
        if targets.shape != (images.shape[0],):
            raise ValueError(f"targets must be ({images.shape[0]},), got {tuple(targets.shape)}")
        self.images, self.targets, self.train = images, targets.long(), train
        self.mean = torch.tensor(mean).view(3, 1, 1)
        self.std = torch.tensor(std).view(3, 1, 1)

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, i: int):
        img = self.images[i]
        if self.train:
            h, w = img.shape[1:]
            padded = torch.nn.functional.pad(img, (4, 4, 4, 4))
            top, left = torch.randint(0, 9, (2,)).tolist()
            img = padded[:, top:top + h, left:left + w]
        img = (img.float() / 255.0 - self.mean) / self.std
        return img, int(self.targets[i])


@functools.lru_cache(maxsize=4)
def _digits_arrays(test_fraction: float, seed: int):
    """The upsampled digits, the split and the train statistics (computed once per process)."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    data = load_digits()
    x = torch.from_numpy(data.images.astype(np.float32) * (255.0 / 16.0)).unsqueeze(1)
    x = torch.nn.functional.interpolate(x, size=(32, 32), mode="bilinear", align_corners=False)
    x = x.clamp(0, 255).round().to(torch.uint8).repeat(1, 3, 1, 1)
    y = torch.from_numpy(data.target.astype(np.int64))
    idx_train, idx_test = train_test_split(np.arange(len(y)), test_size=test_fraction,
                                           random_state=seed, stratify=data.target)
    mean = float(x[idx_train].float().mean() / 255.0)
    std = float(x[idx_train].float().std() / 255.0)
    return x, y, idx_train, idx_test, mean, std


def digits(train: bool, test_fraction: float = 0.2, seed: int = 0) -> TensorImageDataset:
    """scikit-learn's bundled digits (1,797 images, 10 classes) as 3×32×32 images.

    The 8×8 images (values 0..16) are scaled to 0..255, upsampled ×4 (bilinear) to 32×32 and
    repeated over three channels; a stratified split keeps ``test_fraction`` for testing.

    Parameters
    ----------
    train : bool
        Which split.
    test_fraction : float
        Fraction held out for testing.
    seed : int
        Seed of the split.
    """
    x, y, idx_train, idx_test, mean, std = _digits_arrays(float(test_fraction), int(seed))
    idx = idx_train if train else idx_test
    return TensorImageDataset(x[idx], y[idx], (mean,) * 3, (std,) * 3, train)


def dataset_targets(dataset: Dataset) -> np.ndarray:
    """Labels of a dataset of this module as an int64 array ``(N,)``."""
    targets = getattr(dataset, "targets", None)
    if targets is None:
        raise TypeError(f"{type(dataset).__name__} has no .targets attribute")
    return np.asarray(targets.numpy() if torch.is_tensor(targets) else targets, dtype=np.int64)


class IndexedDataset(Dataset):
    """Wrap a dataset so items carry their index (and CRD's contrastive indices).

    Parameters
    ----------
    dataset : Dataset
        Items ``(image, target)`` with a ``targets`` attribute.
    num_negatives : int or None
        ``K``: when given, items also carry ``contrast_idx (K + 1,)`` = the item's own index
        followed by ``K`` indices drawn uniformly (with replacement) from other classes, as
        CRD's "exact" sampling mode.

    Items are ``(image, target, index)`` or ``(image, target, index, contrast_idx)``.
    """

    def __init__(self, dataset: Dataset, num_negatives: Optional[int] = None):
        self.dataset = dataset
        self.targets = dataset_targets(dataset)
        self.num_negatives = num_negatives
        if num_negatives is not None:
            if not isinstance(num_negatives, int) or num_negatives < 1:
                raise ValueError(f"num_negatives must be a positive int, got {num_negatives!r}")
            all_idx = np.arange(len(self.targets))
            self.negatives = {int(c): torch.from_numpy(all_idx[self.targets != c])
                              for c in np.unique(self.targets)}

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i: int):
        img, target = self.dataset[i]
        if self.num_negatives is None:
            return img, target, i
        neg = self.negatives[int(target)]
        pick = neg[torch.randint(0, len(neg), (self.num_negatives,))]
        return img, target, i, torch.cat([torch.tensor([i]), pick])


def build_datasets(name: str, root: str = "./data", download: bool = False,
                   verify: bool = True) -> Tuple[Dataset, Dataset, int]:
    """Train and test datasets plus the class count.

    Parameters
    ----------
    name : {"cifar100", "digits"}
        Dataset name.
    root, download, verify
        See :func:`cifar100` (ignored for digits).

    Returns
    -------
    train, test : Dataset
    num_classes : int
    """
    if name == "cifar100":
        return (cifar100(root, True, download, verify), cifar100(root, False, download, verify), 100)
    if name == "digits":
        return digits(True), digits(False), 10
    raise ValueError(f"dataset name must be one of {DATASETS}, got {name!r}")


def make_loader(dataset: Dataset, batch_size: int, train: bool, num_workers: int = 0,
                seed: int = 0, drop_last: Optional[bool] = None) -> DataLoader:
    """A DataLoader whose shuffling is driven by its own seeded ``torch.Generator``.

    The engine re-seeds ``loader.generator`` at each epoch, so an epoch's order and the
    workers' augmentation seeds depend only on (seed, epoch): the basis of exact resume.

    Parameters
    ----------
    dataset : Dataset
    batch_size : int
    train : bool
        Shuffle (and drop the last incomplete batch unless ``drop_last`` says otherwise).
    num_workers : int
        Worker processes (0 = load in the main process).
    seed : int
        Initial generator seed.
    """
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    if not isinstance(num_workers, int) or num_workers < 0:
        raise ValueError(f"num_workers must be a non-negative int, got {num_workers!r}")
    generator = torch.Generator().manual_seed(seed)
    return DataLoader(dataset, batch_size=batch_size, shuffle=train, num_workers=num_workers,
                      generator=generator, drop_last=train if drop_last is None else drop_last,
                      pin_memory=torch.cuda.is_available())
