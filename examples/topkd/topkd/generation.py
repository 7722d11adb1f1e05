"""TopKD's data generation for both suites, sharded over the ranks: teacher point clouds,
persistence diagrams and persistence images.

The work is cut into shards of ``shard_size`` clouds; rank ``r`` of ``W`` computes shards
``r, r + W, ...`` and writes them as separate files (never the same file twice), and rank 0
merges the results (``meta.json``, the vectoriser fitted on every diagram). A single process is
the case ``W = 1``. Paths: :class:`topkd.layout.RunLayout`.

Equal on any number of ranks: cloud ``g`` is always the same images (a permutation per ``(seed,
pass)``, cut into consecutive groups of ``cloud_size``), augmented identically
(:class:`topkd.data.SeededDataset`, epoch = pass) and embedded in one teacher forward of its
own, so the files do not depend on the number of ranks.

Resumable and checked: a stage whose ``meta.json`` says complete is skipped only once its
settings match the config and every shard it lists is on disk with the right shape; shards
already written are checked before they are kept, and a missing one is computed again.
"""
from __future__ import annotations

import copy
import math
import os
import time
from typing import Any, Dict, List, Optional, Tuple

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from . import distributed as D
from .layout import RunLayout, layout
from .storage import RunFileError, atomic_save, check_shape, describe, load_file, write_json
from .topology import load_vectorizer, make_vectorizer, read_complete_meta, shard_rows

__all__ = ["cloud_plan", "my_shards", "generate_clouds", "generate_diagrams"]


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


def _check_settings(meta: Dict[str, Any], expected: Dict[str, Any], folder: str,
                    stage: str) -> None:
    """Refuse a complete stage folder made with other settings than the config's."""
    changed = {k: (meta.get(k), v) for k, v in expected.items() if meta.get(k) != v}
    if changed:
        diff = ", ".join(f"{k}={old!r} (the config gives {new!r})" for k, (old, new) in changed.items())
        raise RunFileError(f"{folder!r} was made by the {stage!r} stage with {diff}: delete the "
                           f"folder and rerun {stage!r}, or use another out_dir")


def _shard_present(path: str, shape, stage: str, what: str) -> bool:
    """Whether shard ``path`` exists; an existing one must load with ``shape`` (mapped, not
    read)."""
    if not os.path.isfile(path):
        return False
    check_shape(load_file(path, stage, mmap=True), shape, path, stage, what, torch.float32)
    return True


class _PlannedImages(Dataset):
    """Images in plan order: item ``i`` is image ``indices[i]`` augmented as in pass
    ``epochs[i]``."""

    def __init__(self, dataset, indices: torch.Tensor, epochs: torch.Tensor):
        self.dataset, self.indices, self.epochs = dataset, indices.tolist(), epochs.tolist()

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.dataset.item(self.indices[i], self.epochs[i])[0]


def _embed_shards(model: nn.Module, dataset, plan, todo: List[int], run: RunLayout,
                  meta: Dict[str, Any], device: torch.device, num_workers: int,
                  progress: bool, amp: bool) -> None:
    """Compute and write the cloud shards ``todo``: one teacher forward per cloud (bfloat16
    autocast when ``amp``)."""
    indices, epochs = plan
    m, size, total = meta["cloud_size"], meta["shard_size"], meta["num_clouds"]
    rows = torch.cat([torch.arange(k * size, min((k + 1) * size, total)) for k in todo])
    loader = DataLoader(_PlannedImages(dataset, indices[rows].flatten(),
                                       epochs[rows].repeat_interleave(m)),
                        batch_size=m, shuffle=False, num_workers=num_workers,
                        pin_memory=device.type == "cuda")
    clouds = iter(loader)
    for k in todo:
        buf = []
        for _ in range(shard_rows(meta, k)):
            images = next(clouds).to(device, non_blocking=True)
            with torch.no_grad(), torch.autocast(device_type=device.type, dtype=torch.bfloat16,
                                                 enabled=amp):
                buf.append(model(images)[1]["pooled"].float().cpu())
        atomic_save(torch.stack(buf), run.shard("clouds", k))
        if progress and D.is_main():
            print(f"clouds: shard {k + 1}/{meta['num_shards']} ({len(buf)} clouds)", flush=True)


def _clouds_on_disk(run: RunLayout, meta: Dict[str, Any]):
    """``(meta.json when complete, else None; whether each shard is on disk)``, refusing
    complete outputs of other settings and shards of the wrong shape."""
    done = read_complete_meta(run.topology("clouds"), "clouds")
    if done is not None:
        _check_settings(done, meta, run.topology("clouds"), "clouds")
    present = [_shard_present(run.shard("clouds", k), (shard_rows(meta, k), meta["cloud_size"],
                                                       meta["dim"]), "clouds", "cloud shard")
               for k in range(meta["num_shards"])]
    return done, present


def generate_clouds(teacher: nn.Module, dataset, run: RunLayout, cloud_size: int,
                    shard_size: int = 128, passes: int = 1, seed: int = 0, faithful: bool = False,
                    device: torch.device = torch.device("cpu"), num_workers: int = 0,
                    progress: bool = False, amp: Optional[bool] = None) -> Dict[str, Any]:
    """Teacher point clouds, sharded over the ranks.

    Cloud ``g`` is the teacher's pooled features ``(cloud_size, D)`` of the images of row ``g``
    of :func:`cloud_plan`, computed in one forward pass (eval mode; ``faithful``: BatchNorm in
    train mode on a copy, as the official code). Shards ``(S, cloud_size, D)`` float32.

    Parameters
    ----------
    teacher : nn.Module
        Returns ``(logits, features)`` with ``features["pooled"]`` (width
        ``teacher.feature_channels()["pooled"]``); on ``device``.
    dataset : topkd.data.SeededDataset
        Training images (augmentation drawn per ``(seed, pass, index)``).
    run : topkd.layout.RunLayout
        The run folder (``topology/clouds/``).
    cloud_size, shard_size, passes, seed : int
    faithful : bool
    device : torch.device
    num_workers : int
        Data-loading workers per rank.
    progress : bool
        Print a line per shard (rank 0).
    amp : bool, optional
        bfloat16 autocast of the teacher; ``None``: exactly on CUDA.

    Returns
    -------
    dict
        ``meta.json``: ``num_clouds``, ``cloud_size``, ``dim``, ``num_shards``, ``shard_size``,
        ``passes``, ``teacher_mode``, ``world_size``, ``seconds``, ``complete``.

    Raises
    ------
    topkd.storage.RunFileError
        Complete outputs made with other settings, or a shard on disk of the wrong shape.
    """
    if not hasattr(dataset, "item"):
        raise TypeError("dataset must be a SeededDataset (an item(index, epoch) method), got "
                        f"{type(dataset).__name__}")
    if not isinstance(shard_size, int) or shard_size < 1:
        raise ValueError(f"shard_size must be a positive int, got {shard_size!r}")
    folder = run.topology("clouds")
    plan = cloud_plan(len(dataset), cloud_size, passes, seed)
    total = plan[0].shape[0]
    meta = {"num_clouds": total, "cloud_size": cloud_size,
            "dim": int(teacher.feature_channels()["pooled"]),
            "num_shards": math.ceil(total / shard_size), "shard_size": shard_size,
            "passes": passes, "teacher_mode": "train" if faithful else "eval"}
    done, present = _clouds_on_disk(run, meta)
    if done is not None and all(present):
        return done
    os.makedirs(folder, exist_ok=True)
    model = copy.deepcopy(teacher).train() if faithful else teacher.eval()
    tic = time.perf_counter()
    todo = [k for k in my_shards(meta["num_shards"]) if not present[k]]
    if todo:
        _embed_shards(model, dataset, plan, todo, run, meta, device, num_workers, progress,
                      device.type == "cuda" if amp is None else bool(amp))
    D.barrier()
    meta.update(world_size=D.world_size(), seconds=time.perf_counter() - tic, complete=True)
    if D.is_main():
        missing = [k for k in range(meta["num_shards"]) if not os.path.isfile(run.shard("clouds", k))]
        if missing:
            raise RuntimeError(f"cloud shards {missing[:5]} missing in {folder!r} after the "
                               "barrier")
        write_json(meta, run.meta("clouds"))
    D.barrier()
    return meta


# ---------------------------------------------------------------------- diagrams and images

def _cloud_shard(run: RunLayout, clouds_meta: Dict[str, Any], k: int) -> torch.Tensor:
    path = run.shard("clouds", k)
    return check_shape(load_file(path, "clouds"), (shard_rows(clouds_meta, k),
                                                   clouds_meta["cloud_size"], clouds_meta["dim"]),
                       path, "clouds", "cloud shard", torch.float32)


def _diagram_shard(run: RunLayout, k: int, rows: int, max_dim: int, required: bool = True):
    """Diagram shard ``k`` (``torchtopo.Diagrams`` of ``rows`` clouds, dimensions
    ``0..max_dim``) from disk, checked; ``None`` when absent and not ``required``."""
    from torchtopo import Diagrams

    path = run.shard("diagrams", k)
    if not os.path.isfile(path):
        if required:
            raise RunFileError(f"{path!r} is missing: rerun the 'diagrams' stage")
        return None
    try:
        dgm = Diagrams.from_dict(load_file(path, "diagrams"))
    except (TypeError, ValueError) as err:
        raise RunFileError(f"{path!r} does not hold diagrams ({describe(err)}): delete it and "
                           "rerun the 'diagrams' stage") from err
    if dgm.max_dim != max_dim or dgm.batch_size != rows:
        raise RunFileError(f"{path!r} holds {dgm.batch_size} diagrams up to H{dgm.max_dim}, the "
                           f"config needs {rows} up to H{max_dim}: delete it and rerun the "
                           "'diagrams' stage")
    return dgm


def _save_diagrams(cfg: Dict[str, Any], run: RunLayout, clouds_meta: Dict[str, Any],
                   k: int) -> None:
    """Rips persistence (``torchtopo.rips_persistence``, up to ``topology.max_dim``) of cloud
    shard ``k``, saved as diagram shard ``k`` unless a valid one is on disk."""
    import torchtopo

    topo = cfg["topology"]
    if _diagram_shard(run, k, shard_rows(clouds_meta, k), topo["max_dim"], required=False) is None:
        dgm = torchtopo.rips_persistence(_cloud_shard(run, clouds_meta, k),
                                         max_dim=topo["max_dim"], num_workers=topo["num_workers"])
        atomic_save(dgm.to_dict(), run.shard("diagrams", k))


def _fit_vectorizer(cfg: Dict[str, Any], run: RunLayout, clouds_meta: Dict[str, Any]) -> None:
    """Fit :func:`topkd.topology.make_vectorizer` on every diagram and write
    ``vectorizer.json``, unless it exists."""
    from torchtopo import Diagrams

    if os.path.isfile(run.vectorizer):
        return
    max_dim = cfg["topology"]["max_dim"]
    dgms = [_diagram_shard(run, k, shard_rows(clouds_meta, k), max_dim)
            for k in range(clouds_meta["num_shards"])]
    write_json(make_vectorizer(cfg).fit(Diagrams.cat(dgms)).to_config(), run.vectorizer)


def _save_images(run: RunLayout, clouds_meta: Dict[str, Any], vectorizer, max_dim: int,
                 k: int) -> None:
    """The persistence images ``(S, P)`` float32 of diagram shard ``k``, saved as image shard
    ``k`` unless a valid one is on disk."""
    rows, path = shard_rows(clouds_meta, k), run.shard("images", k)
    if not _shard_present(path, (rows, vectorizer.num_features), "diagrams", "image shard"):
        dgm = _diagram_shard(run, k, rows, max_dim)
        atomic_save(vectorizer(dgm).flatten(1).float(), path)


def _images_done(run: RunLayout, clouds_meta: Dict[str, Any],
                 expected: Dict[str, Any]):
    """The images' ``meta.json`` when complete, made with the config's settings and with every
    image shard on disk at the right shape, else ``None``."""
    done = read_complete_meta(run.topology("images"), "diagrams")
    if done is None:
        return None
    _check_settings(done, expected, run.topology("images"), "diagrams")
    present = [_shard_present(run.shard("images", k), (shard_rows(clouds_meta, k),
                                                       expected["num_features"]),
                              "diagrams", "image shard") for k in range(clouds_meta["num_shards"])]
    return done if all(present) and os.path.isfile(run.vectorizer) else None


def _write_diagrams_and_images(cfg: Dict[str, Any], run: RunLayout,
                               clouds_meta: Dict[str, Any]) -> None:
    """Each rank's diagram shards, rank 0's vectoriser, each rank's image shards."""
    n = clouds_meta["num_shards"]
    if D.is_main():
        os.makedirs(run.topology("diagrams"), exist_ok=True)
        os.makedirs(run.topology("images"), exist_ok=True)
    D.barrier()
    for k in my_shards(n):
        _save_diagrams(cfg, run, clouds_meta, k)
    D.barrier()
    if D.is_main():
        _fit_vectorizer(cfg, run, clouds_meta)
    D.barrier()
    pi = load_vectorizer(cfg)
    for k in my_shards(n):
        _save_images(run, clouds_meta, pi, cfg["topology"]["max_dim"], k)
    D.barrier()


def generate_diagrams(cfg: Dict[str, Any]) -> Dict[str, Any]:
    """Diagrams and persistence images of the config's clouds, sharded over the ranks.

    Each rank computes ``torchtopo.rips_persistence`` for its shards (native batched H0,
    parallel CPU backend for H1); rank 0 fits the vectoriser on every diagram
    (``torchtopo.Diagrams.cat``) and writes ``vectorizer.json``; each rank then writes the
    images of its shards; rank 0 writes ``meta.json``. Resumable shard by shard.

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
    topkd.storage.RunFileError
        A file on disk that cannot be used (named, with its stage).
    """
    run = layout(cfg)
    clouds_meta = read_complete_meta(run.topology("clouds"), "clouds")
    if clouds_meta is None:
        raise FileNotFoundError(f"no complete point clouds in {run.topology('clouds')!r}: run "
                                "'clouds' first")
    topo = cfg["topology"]
    expected = {"num_images": clouds_meta["num_clouds"],
                "num_features": make_vectorizer(cfg).num_features,
                "max_dim": topo["max_dim"], "faithful": topo["faithful"]}
    done = _images_done(run, clouds_meta, expected)
    if done is not None:
        return done
    tic = time.perf_counter()
    _write_diagrams_and_images(cfg, run, clouds_meta)
    seconds = time.perf_counter() - tic
    meta = {**expected, "world_size": D.world_size(), "seconds": seconds,
            "clouds_per_second": clouds_meta["num_clouds"] / max(seconds, 1e-9), "complete": True}
    if D.is_main():
        write_json(meta, run.meta("images"))
    D.barrier()
    return meta
