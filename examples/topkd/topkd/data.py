"""Data: CIFAR-100 (read with a restricted unpickler), scikit-learn's digits as an offline
stand-in, and the index-returning wrapper CRD needs.

Every dataset yields ``(image (3, 32, 32) float32, target int)``; :class:`ContrastIndexedDataset`
adds the sample index and ``K`` contrastive indices drawn from other classes.
"""
from __future__ import annotations

import functools
import os
import pickle
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


#: CIFAR-100's files and their md5 sums (torchvision's and the dataset page's).
CIFAR100_URL = "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz"
CIFAR100_FILES = {"train": "16019d7e3df5f24257cddd939b257f8d",
                  "test": "f0ef6b0ae62326f3e7ffdfab6717acfc",
                  "meta": "7973b15100ade9c7d40fb424638fde48"}
CIFAR100_ARCHIVE_MD5 = "eb9058c3a382ffc7106e4002c42a8d85"


def _numpy_globals() -> dict:
    """The only callables a CIFAR pickle may name: numpy's array reconstruction (under both
    module names numpy has used), ``numpy.ndarray``, a ``numpy.dtype`` that refuses object
    dtypes, and ``_codecs.encode`` (how Python 3 pickles bytes at protocol 2)."""
    import codecs

    try:
        from numpy._core.multiarray import _reconstruct
    except ImportError:  # numpy < 2
        from numpy.core.multiarray import _reconstruct

    def dtype(spec, *args):
        if str(spec).lstrip("|<>=").startswith("O"):
            raise pickle.UnpicklingError("object arrays are not allowed in a CIFAR file")
        return np.dtype(spec, *args)

    return {("numpy.core.multiarray", "_reconstruct"): _reconstruct,
            ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
            ("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): dtype,
            ("_codecs", "encode"): codecs.encode}


class _CifarUnpickler(pickle.Unpickler):
    """An unpickler that builds dicts, lists, strings, bytes, numbers and numpy arrays, and
    refuses to look up any other global (``os.system``, ``builtins.eval``, ...)."""

    allowed = _numpy_globals()

    def find_class(self, module: str, name: str):
        try:
            return self.allowed[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(f"global {module}.{name} is not allowed in a CIFAR "
                                         "file") from None


def load_cifar_file(path: str) -> dict:
    """One file of ``cifar-100-python/`` (``train``, ``test`` or ``meta``) read with a
    restricted unpickler (:class:`_CifarUnpickler`: plain containers and numpy arrays only), so
    a tampered file cannot run code whatever ``dataset.verify`` says; keys are ``str``.

    Raises
    ------
    ValueError
        When the file is not a CIFAR pickle of a dict (the path and the reason in the message).
    """
    try:
        with open(path, "rb") as f:
            entry = _CifarUnpickler(f, encoding="latin1").load()
    except Exception as err:  # noqa: BLE001 -- any failure of an untrusted file means "not CIFAR"
        lines = str(err).strip().splitlines()
        raise ValueError(f"{path!r} is not a CIFAR-100 data file ({type(err).__name__}: "
                         f"{lines[0] if lines else ''}); replace cifar-100-python/ with the "
                         "original files") from err
    if not isinstance(entry, dict):
        raise ValueError(f"{path!r} is not a CIFAR-100 data file: it holds a "
                         f"{type(entry).__name__}, not a dict")
    return {k.decode("latin1") if isinstance(k, bytes) else k: v for k, v in entry.items()}


class CIFAR100(Dataset):
    """CIFAR-100 from ``root/cifar-100-python`` (the python version of the dataset), read with
    :func:`load_cifar_file`.

    Attributes
    ----------
    data : numpy.ndarray
        ``(N, 32, 32, 3)`` uint8 images.
    targets : list of int
        Fine labels.
    classes : list of str
        Fine label names.

    Items are ``(transform(PIL image), fine label)``.
    """

    def __init__(self, folder: str, train: bool, transform=None):
        name = "train" if train else "test"
        path = os.path.join(folder, name)
        entry = load_cifar_file(path)
        data, labels = entry.get("data"), entry.get("fine_labels")
        if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 \
                or data.shape[1] != 3072:
            got = (f"{data.dtype} {data.shape}" if isinstance(data, np.ndarray)
                   else type(data).__name__)
            raise ValueError(f"{path!r}: 'data' must be a uint8 array (N, 3072), got {got}")
        if not isinstance(labels, list) or len(labels) != data.shape[0] or \
                not all(isinstance(y, int) and 0 <= y < 100 for y in labels):
            raise ValueError(f"{path!r}: 'fine_labels' must be {data.shape[0]} ints in [0, 100)")
        meta = load_cifar_file(os.path.join(folder, "meta"))
        classes = meta.get("fine_label_names")
        if not isinstance(classes, list) or len(classes) != 100:
            raise ValueError(f"{os.path.join(folder, 'meta')!r}: 'fine_label_names' must list "
                             "100 names")
        self.data = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
        self.targets, self.classes, self.transform = labels, classes, transform

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, i: int):
        from PIL import Image

        img = Image.fromarray(self.data[i])
        return (img if self.transform is None else self.transform(img)), self.targets[i]


def _download_cifar100(root: str) -> None:
    from torchvision.datasets.utils import download_and_extract_archive

    download_and_extract_archive(CIFAR100_URL, root, filename="cifar-100-python.tar.gz",
                                 md5=CIFAR100_ARCHIVE_MD5)


def cifar100(root: str, train: bool, download: bool = False, verify: bool = True) -> Dataset:
    """CIFAR-100 from ``root/cifar-100-python`` (:class:`CIFAR100`), with the standard transform.

    Parameters
    ----------
    root : str
        Folder that holds (or will hold) ``cifar-100-python/``.
    train : bool
        Training split (50,000 images, augmented) or test split (10,000).
    download : bool
        Download when absent (needs the internet).
    verify : bool
        Check the files' md5 sums; ``False`` only checks that they exist (for hand-made
        folders such as the tests' tiny one). Either way the files are read with a restricted
        unpickler that cannot run code.

    Returns
    -------
    CIFAR100
        Items ``(image (3, 32, 32), fine label)``.

    Raises
    ------
    FileNotFoundError
        When the folder is absent and ``download`` is false.
    RuntimeError
        When the download fails (offline) or a file is missing, corrupt or fails its md5
        check, naming the folder.
    """
    from torchvision.datasets.utils import check_integrity

    root = os.path.expanduser(root)
    folder = os.path.join(root, "cifar-100-python")
    if not download and not os.path.isdir(folder):
        raise FileNotFoundError(
            f"CIFAR-100 not found: folder {folder!r} does not exist. Put the extracted "
            "cifar-100-python/ there, set dataset.download: true (needs the internet), or use "
            "dataset.name: digits to run offline."
        )
    try:
        if download and not all(check_integrity(os.path.join(folder, f), md5)
                                for f, md5 in CIFAR100_FILES.items()):
            _download_cifar100(root)
        for name, md5 in CIFAR100_FILES.items():
            if not check_integrity(os.path.join(folder, name), md5 if verify else None):
                raise RuntimeError(f"{name!r} is missing or fails its md5 check")
        return CIFAR100(folder, train, cifar100_transforms(train))
    except (OSError, RuntimeError, ValueError) as err:
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
        Apply RandomCrop(size, padding size / 8: 4 at 32×32) (no flip: digits are not
        mirror-symmetric).
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
            pad = max(1, h // 8)
            padded = torch.nn.functional.pad(img, (pad, pad, pad, pad))
            top, left = torch.randint(0, 2 * pad + 1, (2,)).tolist()
            img = padded[:, top:top + h, left:left + w]
        img = (img.float() / 255.0 - self.mean) / self.std
        return img, int(self.targets[i])


@functools.lru_cache(maxsize=4)
def _digits_arrays(test_fraction: float, seed: int, size: int = 32):
    """The upsampled digits, the split and the train statistics (computed once per process)."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    data = load_digits()
    x = torch.from_numpy(data.images.astype(np.float32) * (255.0 / 16.0)).unsqueeze(1)
    x = torch.nn.functional.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    x = x.clamp(0, 255).round().to(torch.uint8).repeat(1, 3, 1, 1)
    y = torch.from_numpy(data.target.astype(np.int64))
    idx_train, idx_test = train_test_split(np.arange(len(y)), test_size=test_fraction,
                                           random_state=seed, stratify=data.target)
    mean = float(x[idx_train].float().mean() / 255.0)
    std = float(x[idx_train].float().std() / 255.0)
    return x, y, idx_train, idx_test, mean, std


def digits(train: bool, test_fraction: float = 0.2, seed: int = 0,
           size: int = 32) -> TensorImageDataset:
    """scikit-learn's bundled digits (1,797 images, 10 classes) as 3×size×size images.

    The 8×8 images (values 0..16) are scaled to 0..255, upsampled (bilinear) to
    ``size × size`` (32: CIFAR's size) and repeated over three channels; a stratified split
    keeps ``test_fraction`` for testing.

    Parameters
    ----------
    train : bool
        Which split.
    test_fraction : float
        Fraction held out for testing.
    seed : int
        Seed of the split.
    size : int
        Image side, >= 8 (the suite's models pool adaptively, so any side works; 16 costs a
        quarter of 32).
    """
    if isinstance(size, bool) or not isinstance(size, int) or size < 8:
        raise ValueError(f"size must be an int >= 8, got {size!r}")
    x, y, idx_train, idx_test, mean, std = _digits_arrays(float(test_fraction), int(seed), size)
    idx = idx_train if train else idx_test
    return TensorImageDataset(x[idx], y[idx], (mean,) * 3, (std,) * 3, train)


def dataset_targets(dataset: Dataset) -> np.ndarray:
    """Labels of a dataset of this module as an int64 array ``(N,)``."""
    targets = getattr(dataset, "targets", None)
    if targets is None:
        raise TypeError(f"{type(dataset).__name__} has no .targets attribute")
    return np.asarray(targets.numpy() if torch.is_tensor(targets) else targets, dtype=np.int64)


class ContrastIndexedDataset(Dataset):
    """Items ``(image, target, index, contrast_idx (K + 1,))`` for CRD: the item's index followed
    by ``K`` indices drawn uniformly among the samples of *other* classes (CRD's "exact" mode).
    With ``replacement`` (the default) by rejection, in O(K) time and O(N) memory (per-class
    lists of negatives would take ~10 GB on ImageNet-1K); without, as RepDistiller's
    ``CIFAR100InstanceSample`` (the official TopKD code's loader): ``K`` distinct samples from a
    permutation of the other classes' samples, O(N) time per item (with replacement again when
    fewer than ``K`` exist, as there). The draws use torch's global generator (seeded per item
    by :class:`SeededDataset` where the suite uses one).

    Parameters
    ----------
    dataset : Dataset
        Items ``(image, target)``, with a ``targets`` attribute.
    num_negatives : int
        ``K``.
    replacement : bool
        Draw the negatives with replacement.
    """

    def __init__(self, dataset: Dataset, num_negatives: int, replacement: bool = True):
        if isinstance(num_negatives, bool) or not isinstance(num_negatives, int) \
                or num_negatives < 1:
            raise ValueError(f"num_negatives must be a positive int, got {num_negatives!r}")
        if not isinstance(replacement, bool):
            raise TypeError(f"replacement must be a bool, got {type(replacement).__name__}")
        self.dataset, self.num_negatives, self.replacement = dataset, num_negatives, replacement
        self.targets = torch.from_numpy(dataset_targets(dataset))
        if self.targets.unique().numel() < 2:
            raise ValueError("CRD needs at least two classes to draw negatives from")

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i: int):
        img, target = self.dataset[i]
        if not self.replacement:
            others = (self.targets != target).nonzero().flatten()
            if others.numel() >= self.num_negatives:
                neg = others[torch.randperm(others.numel())[:self.num_negatives]]
                return img, target, i, torch.cat([torch.tensor([i]), neg])
        neg = torch.randint(0, len(self.targets), (self.num_negatives,))
        same = self.targets[neg] == target
        while bool(same.any()):
            neg[same] = torch.randint(0, len(self.targets), (int(same.sum()),))
            same = self.targets[neg] == target
        return img, target, i, torch.cat([torch.tensor([i]), neg])


class SeededDataset(Dataset):
    """Make a dataset's random augmentation depend only on ``(seed, epoch, index)``.

    Each item is drawn with torch's CPU generator seeded from ``(seed, epoch, index)`` (inside
    ``torch.random.fork_rng``, so the caller's RNG is untouched): an image gets the same crop and
    flip whatever the number of ranks, data workers or the resume point, which makes a run on
    ``W`` ranks and a resumed run reproduce a one-process run. torchvision's transforms draw
    from that generator; CRD's negatives (:class:`ContrastIndexedDataset` inside) too.

    Parameters
    ----------
    dataset : Dataset
        Must expose ``targets``.
    seed : int

    Items are those of ``dataset``.
    """

    def __init__(self, dataset: Dataset, seed: int = 0):
        if not isinstance(seed, int):
            raise TypeError(f"seed must be an int, got {type(seed).__name__}")
        self.dataset, self.seed, self.epoch = dataset, seed, 0
        self.targets = dataset.targets

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose augmentation :meth:`__getitem__` draws."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.dataset)

    def item(self, index: int, epoch: int):
        """Item ``index`` as augmented in ``epoch``."""
        seed = ((self.seed * 1_000_003 + epoch) * 10_000_019 + index) % (2 ** 63)
        with torch.random.fork_rng(devices=[]):
            torch.default_generator.manual_seed(seed)
            return self.dataset[index]

    def __getitem__(self, index: int):
        return self.item(index, self.epoch)


class Subset(torch.utils.data.Subset):
    """A ``torch.utils.data.Subset`` that keeps ``targets`` (CRD's negatives read them)."""

    def __init__(self, dataset, indices):
        super().__init__(dataset, indices)
        self.targets = dataset_targets(dataset)[np.asarray(indices)]


def take(dataset: Dataset, n: Optional[int]) -> Dataset:
    """``n`` items of ``dataset`` drawn once with seed 0 (the whole dataset when ``n`` is
    ``None`` or not smaller)."""
    if n is None or n >= len(dataset):
        return dataset
    order = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(0))[:n]
    return Subset(dataset, order.tolist())


def build_datasets(name: str, root: str = "./data", download: bool = False,
                   verify: bool = True, image_size: int = 32) -> Tuple[Dataset, Dataset, int]:
    """Train and test datasets plus the class count.

    Parameters
    ----------
    name : {"cifar100", "digits"}
        Dataset name.
    root, download, verify
        See :func:`cifar100` (ignored for digits).
    image_size : int
        The digits' side (:func:`digits`); CIFAR-100 is 32×32.

    Returns
    -------
    train, test : Dataset
    num_classes : int
    """
    if name == "cifar100":
        return (cifar100(root, True, download, verify), cifar100(root, False, download, verify), 100)
    if name == "digits":
        return digits(True, size=image_size), digits(False, size=image_size), 10
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
