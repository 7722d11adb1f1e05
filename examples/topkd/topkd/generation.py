"""TopKD's data generation sharded over ranks: teacher point clouds, persistence diagrams and
persistence images.

The work is cut into shards of ``shard_size`` clouds; rank ``r`` of ``W`` computes shards
``r, r + W, ...`` and writes them as separate files (never the same file twice), and rank 0
merges the results (``meta.json``, the vectoriser fitted on every diagram). The layout is the one
of :mod:`topkd.stages` (``topology/clouds|diagrams|images/shard_XXXXX.pt`` + ``meta.json`` +
``vectorizer.json``), so :func:`topkd.stages.stage_ripsnet` reads it unchanged.

Equal to a single process: cloud ``g`` is always the same images (a permutation per ``(seed,
pass)``, cut into consecutive groups of ``cloud_size``), augmented identically
(:class:`topkd.imagenet.SeededDataset`, epoch = pass) and embedded in one teacher forward of its
own, so the files do not depend on the number of ranks. Both stages are resumable shard by
shard.
"""
from __future__ import annotations

import copy
import math
import os
import time
from typing import Any, Dict, List, Tuple

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from . import distributed as D
from .engine import atomic_save
from .stages import (_read_meta, _require_complete, _shard, _write_json, images_meta,
                     load_vectorizer, paths, save_diagram_shard, save_image_shard,
                     save_vectorizer)


def cloud_plan(num_images: int, cloud_size: int, passes: int,
               seed: int) -> Tuple[torch.Tensor, torch.Tensor]:
    """Which images make each cloud.

    Pass ``p`` draws a permutation of the images from ``(seed, p)`` and cuts it into
    ``num_images // cloud_size`` consecutive groups (the remainder is dropped).

    Returns
    -------
    indices : torch.Tensor
        ``(num_clouds, cloud_size)`` int64 image indices.
    passes : torch.Tensor
        ``(num_clouds,)`` the pass of each cloud (its augmentation epoch).

    Raises
    ------
    ValueError
        Non-positive sizes, or fewer images than one cloud.
    """
    for arg, value in (("num_images", num_images), ("cloud_size", cloud_size), ("passes", passes)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{arg} must be a positive int, got {value!r}")
    per_pass = num_images // cloud_size
    if per_pass == 0:
        raise ValueError(f"the training set ({num_images} images) is smaller than one cloud "
                         f"(cloud_size={cloud_size})")
    groups, ids = [], []
    for p in range(passes):
        g = torch.Generator().manual_seed(seed * 100_003 + 7_919 * (p + 1))
        perm = torch.randperm(num_images, generator=g)[:per_pass * cloud_size]
        groups.append(perm.view(per_pass, cloud_size))
        ids.append(torch.full((per_pass,), p, dtype=torch.long))
    return torch.cat(groups), torch.cat(ids)


def my_shards(num_shards: int) -> List[int]:
    """The shards this rank computes: ``rank, rank + W, ...`` below ``num_shards``."""
    return list(range(D.rank(), num_shards, D.world_size()))


class _PlannedImages(Dataset):
    """Images in plan order: item ``i`` is image ``indices[i]`` augmented as in pass
    ``epochs[i]``."""

    def __init__(self, dataset, indices: torch.Tensor, epochs: torch.Tensor):
        self.dataset, self.indices, self.epochs = dataset, indices.tolist(), epochs.tolist()

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.dataset.item(self.indices[i], self.epochs[i])[0]


def generate_clouds(teacher: nn.Module, dataset, folder: str, cloud_size: int,
                    shard_size: int = 128, passes: int = 1, seed: int = 0, faithful: bool = False,
                    device: torch.device = torch.device("cpu"), num_workers: int = 0,
                    progress: bool = False) -> Dict[str, Any]:
    """Teacher point clouds, sharded over the ranks.

    Cloud ``g`` is the teacher's pooled features ``(cloud_size, D)`` of the images of row ``g``
    of :func:`cloud_plan`, computed in one forward pass (eval mode; ``faithful``: BatchNorm in
    train mode on a copy, as the official code). Shards ``(S, cloud_size, D)`` float32.

    Parameters
    ----------
    teacher : nn.Module
        Returns ``(logits, features)`` with ``features["pooled"]``; on ``device``.
    dataset : topkd.imagenet.SeededDataset
        Training images (augmentation drawn per ``(seed, pass, index)``).
    folder : str
        Output folder.
    cloud_size, shard_size, passes, seed : int
    faithful : bool
    device : torch.device
    num_workers : int
        Data-loading workers per rank.
    progress : bool
        Print a line per shard (rank 0).

    Returns
    -------
    dict
        ``meta.json``: ``num_clouds``, ``cloud_size``, ``dim``, ``num_shards``, ``shard_size``,
        ``passes``, ``teacher_mode``, ``world_size``, ``seconds``, ``complete``.
    """
    if not hasattr(dataset, "item"):
        raise TypeError("dataset must be a SeededDataset (an item(index, epoch) method), got "
                        f"{type(dataset).__name__}")
    if not isinstance(shard_size, int) or shard_size < 1:
        raise ValueError(f"shard_size must be a positive int, got {shard_size!r}")
    meta = _read_meta(folder)
    if meta and meta.get("complete"):
        return meta
    os.makedirs(folder, exist_ok=True)
    indices, epochs = cloud_plan(len(dataset), cloud_size, passes, seed)
    total = indices.shape[0]
    num_shards = math.ceil(total / shard_size)
    todo = [k for k in my_shards(num_shards) if not os.path.isfile(_shard(folder, k))]
    model = copy.deepcopy(teacher).train() if faithful else teacher.eval()
    tic = time.perf_counter()
    if todo:
        rows = torch.cat([torch.arange(k * shard_size, min((k + 1) * shard_size, total))
                          for k in todo])
        loader = DataLoader(_PlannedImages(dataset, indices[rows].flatten(),
                                           epochs[rows].repeat_interleave(cloud_size)),
                            batch_size=cloud_size, shuffle=False, num_workers=num_workers,
                            pin_memory=device.type == "cuda")
        clouds = iter(loader)
        for k in todo:
            n = min((k + 1) * shard_size, total) - k * shard_size
            buf = []
            for _ in range(n):
                images = next(clouds).to(device, non_blocking=True)
                with torch.no_grad(), torch.autocast(device_type=device.type, dtype=torch.bfloat16,
                                                     enabled=device.type == "cuda"):
                    buf.append(model(images)[1]["pooled"].float().cpu())
            atomic_save(torch.stack(buf), _shard(folder, k))
            if progress and D.is_main():
                print(f"clouds: shard {k + 1}/{num_shards} ({n} clouds)", flush=True)
    D.barrier()
    dim = torch.load(_shard(folder, 0), weights_only=True).shape[-1]
    meta = {"num_clouds": total, "cloud_size": cloud_size, "dim": int(dim),
            "num_shards": num_shards, "shard_size": shard_size, "passes": passes,
            "teacher_mode": "train" if faithful else "eval", "world_size": D.world_size(),
            "seconds": time.perf_counter() - tic, "complete": True}
    if D.is_main():
        missing = [k for k in range(num_shards) if not os.path.isfile(_shard(folder, k))]
        if missing:
            raise RuntimeError(f"cloud shards {missing[:5]} missing in {folder!r} after the "
                               "barrier")
        _write_json(meta, os.path.join(folder, "meta.json"))
    D.barrier()
    return meta


def generate_diagrams(cfg: Dict[str, Any]) -> Dict[str, Any]:
    """Diagrams and persistence images of the config's clouds, sharded over the ranks.

    Each rank computes ``torchtopo.rips_persistence`` for its shards; rank 0 fits the vectoriser
    (:func:`topkd.stages.make_vectorizer`) on every diagram and writes ``vectorizer.json``; each
    rank then writes the images of its shards; rank 0 writes ``meta.json``. Same files as
    :func:`topkd.stages.stage_diagrams` in one process.

    Parameters
    ----------
    cfg : dict
        A suite config (``out_dir``, ``topology.max_dim``, ``topology.faithful``,
        ``topology.num_workers``).

    Returns
    -------
    dict
        ``meta.json`` of the images: ``num_images``, ``num_features``, ``max_dim``,
        ``faithful``, ``world_size``, ``seconds``, ``clouds_per_second``.

    Raises
    ------
    FileNotFoundError
        When the clouds are not complete.
    """
    p = paths(cfg)
    meta = _read_meta(p["images"])
    if meta and meta.get("complete"):
        return meta
    clouds_meta = _require_complete(p["clouds"], "point clouds", "clouds")
    n = clouds_meta["num_shards"]
    tic = time.perf_counter()
    if D.is_main():
        os.makedirs(p["diagrams"], exist_ok=True)
        os.makedirs(p["images"], exist_ok=True)
    D.barrier()
    for k in my_shards(n):
        save_diagram_shard(cfg, k)
    D.barrier()
    if D.is_main():
        save_vectorizer(cfg, n)
    D.barrier()
    pi = load_vectorizer(cfg)
    for k in my_shards(n):
        save_image_shard(cfg, pi, k)
    D.barrier()
    meta = dict(images_meta(cfg, clouds_meta, pi, time.perf_counter() - tic),
                world_size=D.world_size())
    if D.is_main():
        _write_json(meta, os.path.join(p["images"], "meta.json"))
    D.barrier()
    return meta
