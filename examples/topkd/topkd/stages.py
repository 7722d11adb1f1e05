"""The suite's stages, each resumable and skipped when its outputs exist.

Layout under ``cfg["out_dir"]``::

    teacher/                 Trainer outputs (final.pt = last-epoch teacher)
    topology/clouds/         shard_XXXXX.pt (S, m, D) float32 clouds + meta.json
    topology/diagrams/       shard_XXXXX.pt (pairs/mask/edges per homology dimension)
    topology/images/         shard_XXXXX.pt (S, P) float32 + vectorizer.json
    topology/ripsnet/        the fitted RipsNet (tensors + JSON) + metrics.json
    students/<entry>/seed<k>/  Trainer outputs and summary.json

1. :func:`stage_teacher`  train the teacher with CE (or use ``teacher.checkpoint``);
2. :func:`stage_clouds`   teacher pooled features of minibatches of ``m`` images, one cloud
   per minibatch, streamed to disk shard by shard (never all in memory);
3. :func:`stage_diagrams` Rips persistence (H0, optionally H1) and persistence images;
4. :func:`stage_ripsnet`  fit the RipsNet on (cloud, image) pairs, report its error;
5. :func:`stage_student`  train a student with any distiller.
"""
from __future__ import annotations

import copy
import csv
import json
import math
import os
import statistics
import time
from typing import Any, Callable, Dict, List, Sequence

import numpy as np
import torch

from . import distributed as D
from .config import default_lr, distiller_spec, uses_topology
from .data import IndexedDataset, build_datasets, dataset_targets, make_loader
from .distillers import build_distiller
from .engine import Trainer, atomic_save, load_model_weights, seed_everything, select_device
from .models import build_model

STAGES = ("teacher", "clouds", "diagrams", "ripsnet", "student", "all", "table")


def paths(cfg: Dict[str, Any]) -> Dict[str, str]:
    """Output folders of a pair config."""
    root = cfg["out_dir"]
    topo = os.path.join(root, "topology")
    return {"root": root, "teacher": os.path.join(root, "teacher"),
            "clouds": os.path.join(topo, "clouds"), "diagrams": os.path.join(topo, "diagrams"),
            "images": os.path.join(topo, "images"), "ripsnet": os.path.join(topo, "ripsnet"),
            "students": os.path.join(root, "students")}


def _log(cfg, msg: str) -> None:
    if cfg.get("progress", True):
        print(f"[{cfg['name']}] {msg}", flush=True)


class _Subset(torch.utils.data.Subset):
    """A Subset that keeps ``targets`` (needed by CRD's sampler)."""

    def __init__(self, dataset, indices):
        super().__init__(dataset, indices)
        self.targets = dataset_targets(dataset)[np.asarray(indices)]


def _take(dataset, n):
    if n is None or n >= len(dataset):
        return dataset
    order = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(0))[:n]
    return _Subset(dataset, order.tolist())


def load_data(cfg: Dict[str, Any]):
    """``(train, test, num_classes)`` of the config (with the optional subsets)."""
    ds = cfg["dataset"]
    train, test, num_classes = build_datasets(ds["name"], ds["root"], ds["download"], ds["verify"])
    return _take(train, ds["train_subset"]), _take(test, ds["test_subset"]), num_classes


def _num_classes(cfg) -> int:
    return 100 if cfg["dataset"]["name"] == "cifar100" else 10


def _trainer(cfg, distiller, train, test, out_dir, seed, arch, overrides=None):
    tr = dict(cfg["train"], **(overrides or {}))
    ds = cfg["dataset"]
    return Trainer(
        distiller, make_loader(train, ds["batch_size"], True, ds["num_workers"], seed),
        make_loader(test, max(ds["batch_size"], 256), False, ds["num_workers"], seed), out_dir,
        epochs=tr["epochs"], lr=tr["lr"] or default_lr(arch), momentum=tr["momentum"],
        weight_decay=tr["weight_decay"], milestones=tr["milestones"], lr_decay=tr["lr_decay"],
        seed=seed, device=cfg["device"], progress=cfg["progress"])


# ----------------------------------------------------------------------------------- teacher

def teacher_weights(cfg) -> str:
    """Path of the teacher weights the later stages use."""
    return cfg["teacher"].get("checkpoint") or os.path.join(paths(cfg)["teacher"], "final.pt")


def stage_teacher(cfg: Dict[str, Any]) -> Dict[str, Any]:
    """Train the teacher with cross-entropy (the CIFAR recipe), or check the configured
    checkpoint loads. Skipped when ``teacher/final.pt`` exists; resumes from ``latest.pt``.

    Returns
    -------
    dict
        ``{"weights": path, ...summary}``.
    """
    ckpt = cfg["teacher"].get("checkpoint")
    arch = cfg["teacher"]["arch"]
    if ckpt:
        meta = load_model_weights(build_model(arch, _num_classes(cfg)), ckpt)
        _log(cfg, f"teacher: using checkpoint {ckpt}")
        return {"weights": ckpt, **meta}
    out = paths(cfg)["teacher"]
    summary_path = os.path.join(out, "summary.json")
    if os.path.isfile(summary_path):
        with open(summary_path) as f:
            return {"weights": teacher_weights(cfg), **json.load(f)}
    seed = cfg["teacher"]["seed"]
    train, test, num_classes = load_data(cfg)
    seed_everything(seed)
    model = build_model(arch, num_classes)
    _log(cfg, f"teacher: training {arch}")
    trainer = _trainer(cfg, build_distiller("vanilla", model, None), train, test, out, seed, arch,
                       cfg["teacher"]["train"])
    summary = trainer.fit(resume=True)
    _log(cfg, f"teacher: last {summary['last_acc']:.2f} best {summary['best_acc']:.2f}")
    return {"weights": teacher_weights(cfg), **summary}


def load_teacher(cfg: Dict[str, Any], num_classes: int) -> torch.nn.Module:
    """The trained teacher (eval mode) from :func:`teacher_weights`.

    Raises
    ------
    FileNotFoundError
        When the teacher stage has not run and no checkpoint is configured.
    """
    path = teacher_weights(cfg)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"teacher weights {path!r} not found: run the 'teacher' stage "
                                "or set teacher.checkpoint")
    model = build_model(cfg["teacher"]["arch"], num_classes)
    load_model_weights(model, path)
    return model.eval()


# ------------------------------------------------------------------------------------ clouds

def _shard(folder: str, k: int) -> str:
    return os.path.join(folder, f"shard_{k:05d}.pt")


def _read_meta(folder: str):
    path = os.path.join(folder, "meta.json")
    if not os.path.isfile(path):
        return None
    with open(path) as f:
        return json.load(f)


def _require_complete(folder: str, what: str, stage: str) -> Dict[str, Any]:
    """The ``meta.json`` of ``folder``, where the stage ``stage`` writes ``what``.

    Raises
    ------
    FileNotFoundError
        ``stage`` has not completed ``folder`` yet.
    """
    meta = _read_meta(folder)
    if not meta or not meta.get("complete"):
        raise FileNotFoundError(f"no complete {what} in {folder!r}: run {stage!r} first")
    return meta


def _write_json(obj, path: str) -> None:
    if not D.is_main():
        return
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=2)
    os.replace(tmp, path)


@D.main_only  # under torchrun: rank 0 computes, the others read its outputs
def stage_clouds(cfg: Dict[str, Any]) -> Dict[str, Any]:
    """Teacher point clouds: the pooled penultimate features ``(m, D)`` of each minibatch of
    ``m = topology.cloud_size`` augmented training images, ``topology.passes`` passes over the
    data, streamed to disk as float32 shards ``(S, m, D)`` of ``topology.shard_size`` clouds.

    The teacher runs in eval mode; ``topology.faithful`` reproduces the official code's
    BatchNorm train mode (on a copy, so the teacher's running statistics are untouched).
    Resumable shard by shard (the data order depends only on the seed).

    Returns
    -------
    dict
        ``meta.json``: ``num_clouds``, ``cloud_size``, ``dim``, ``num_shards``, ``teacher_mode``.
    """
    folder = paths(cfg)["clouds"]
    meta = _read_meta(folder)
    if meta and meta.get("complete"):
        return meta
    os.makedirs(folder, exist_ok=True)
    topo = cfg["topology"]
    m, shard_size, passes = topo["cloud_size"], topo["shard_size"], topo["passes"]
    seed = cfg["teacher"]["seed"]
    train, _, num_classes = load_data(cfg)
    device = select_device(cfg["device"])
    teacher = load_teacher(cfg, num_classes).to(device)
    if topo["faithful"]:
        # the official code extracts with BatchNorm in train mode (batch statistics)
        teacher = copy.deepcopy(teacher).train()
    seed_everything(seed)
    loader = make_loader(train, m, True, cfg["dataset"]["num_workers"], seed, drop_last=True)
    total = passes * len(loader)
    if total == 0:
        raise ValueError(f"the training set ({len(train)} images) is smaller than one cloud "
                         f"(cloud_size={m})")
    tic, g, buf = time.perf_counter(), 0, []
    _log(cfg, f"clouds: {total} clouds of {m} points")
    for p in range(passes):
        loader.generator.manual_seed(seed * 100_003 + 7_919 * (p + 1))
        for images, _ in loader:
            k = g // shard_size
            if not os.path.isfile(_shard(folder, k)):
                with torch.no_grad(), torch.autocast(device_type=device.type,
                                                     dtype=torch.bfloat16,
                                                     enabled=device.type == "cuda"):
                    pooled = teacher(images.to(device, non_blocking=True))[1]["pooled"]
                buf.append(pooled.float().cpu())
            g += 1
            if (g % shard_size == 0 or g == total) and buf:
                atomic_save(torch.stack(buf), _shard(folder, k))
                buf = []
    dim = torch.load(_shard(folder, 0), weights_only=True).shape[-1]
    meta = {"num_clouds": total, "cloud_size": m, "dim": int(dim),
            "num_shards": math.ceil(total / shard_size), "shard_size": shard_size,
            "passes": passes, "teacher_mode": "train" if topo["faithful"] else "eval",
            "seconds": time.perf_counter() - tic, "complete": True}
    _write_json(meta, os.path.join(folder, "meta.json"))
    return meta


# --------------------------------------------------------------------------------- diagrams

def make_vectorizer(cfg: Dict[str, Any]):
    """The persistence-image vectoriser of the config (unfitted).

    ``topology.faithful``: TopKD's 20×20 H0 image (weight ``10 tanh(p) + 10 log(100 b + 1)``,
    bandwidth = 0.2-quantile, range and max-scale fitted). Default: the same with H0 as a
    20-pixel curve over persistence (the official image's 20 columns are identical, since
    every H0 birth is 0). ``topology.max_dim = 1`` adds a 20×20 H1 image.
    """
    import torchtopo

    topo = cfg["topology"]
    if topo["max_dim"] not in (0, 1):
        raise ValueError(f"topology.max_dim must be 0 or 1, got {topo['max_dim']!r}")
    pi = torchtopo.PersistenceImage.topkd(faithful=topo["faithful"])
    if topo["max_dim"] == 1:
        cfg_pi = pi.to_config()
        cfg_pi["dims"] = [0, 1]
        pi = torchtopo.PersistenceImage.from_config(cfg_pi)
    return pi


def _diagram_state(dgm) -> Dict[str, List[torch.Tensor]]:
    return {"pairs": list(dgm.pairs), "mask": list(dgm.mask),
            "birth_edges": list(dgm.birth_edges), "death_edges": list(dgm.death_edges)}


def _pad(t: torch.Tensor, k: int, value) -> torch.Tensor:
    if t.shape[1] == k:
        return t
    pad = t.new_full((t.shape[0], k - t.shape[1]) + tuple(t.shape[2:]), value)
    return torch.cat([t, pad], 1)


def cat_diagrams(states: List[Dict[str, List[torch.Tensor]]]):
    """Concatenate saved diagram shards along the batch (padding each dimension's ``K``)."""
    from torchtopo import Diagrams

    fields = {}
    for name, fill in (("pairs", 0.0), ("mask", False), ("birth_edges", -1), ("death_edges", -1)):
        per_dim = []
        for d in range(len(states[0]["pairs"])):
            k = max(s["pairs"][d].shape[1] for s in states)
            per_dim.append(torch.cat([_pad(s[name][d], k, fill) for s in states], 0))
        fields[name] = tuple(per_dim)
    return Diagrams(**fields)


def save_diagram_shard(cfg: Dict[str, Any], k: int) -> None:
    """Rips persistence (``torchtopo.rips_persistence``, up to ``topology.max_dim``) of cloud
    shard ``k``, saved as diagram shard ``k`` unless it is already on disk."""
    import torchtopo

    p, topo = paths(cfg), cfg["topology"]
    if not os.path.isfile(_shard(p["diagrams"], k)):
        clouds = torch.load(_shard(p["clouds"], k), weights_only=True)
        dgm = torchtopo.rips_persistence(clouds, max_dim=topo["max_dim"],
                                         num_workers=topo["num_workers"])
        atomic_save(_diagram_state(dgm), _shard(p["diagrams"], k))


def _vectorizer_path(cfg: Dict[str, Any]) -> str:
    return os.path.join(paths(cfg)["images"], "vectorizer.json")


def save_vectorizer(cfg: Dict[str, Any], num_shards: int) -> None:
    """Fit :func:`make_vectorizer` on the diagrams of all ``num_shards`` shards and write its
    parameters to ``images/vectorizer.json``, unless that file exists."""
    path = _vectorizer_path(cfg)
    if not os.path.isfile(path):
        folder = paths(cfg)["diagrams"]
        states = [torch.load(_shard(folder, k), weights_only=True) for k in range(num_shards)]
        _write_json(make_vectorizer(cfg).fit(cat_diagrams(states)).to_config(), path)


def load_vectorizer(cfg: Dict[str, Any]):
    """The fitted vectoriser of ``images/vectorizer.json`` (:func:`save_vectorizer`)."""
    import torchtopo

    with open(_vectorizer_path(cfg)) as f:
        return torchtopo.PersistenceImage.from_config(json.load(f))


def save_image_shard(cfg: Dict[str, Any], vectorizer, k: int) -> None:
    """The persistence images ``(S, P)`` float32 of diagram shard ``k``, saved as image shard
    ``k`` unless it is already on disk."""
    p = paths(cfg)
    if not os.path.isfile(_shard(p["images"], k)):
        state = torch.load(_shard(p["diagrams"], k), weights_only=True)
        atomic_save(vectorizer(cat_diagrams([state])).flatten(1).float(), _shard(p["images"], k))


def images_meta(cfg: Dict[str, Any], clouds_meta: Dict[str, Any], vectorizer,
                seconds: float) -> Dict[str, Any]:
    """The ``meta.json`` of complete images: the clouds' count, the vectoriser's width, the
    topology settings and the time the diagrams and images took."""
    topo = cfg["topology"]
    return {"num_images": clouds_meta["num_clouds"], "num_features": vectorizer.num_features,
            "max_dim": topo["max_dim"], "faithful": topo["faithful"], "seconds": seconds,
            "clouds_per_second": clouds_meta["num_clouds"] / max(seconds, 1e-9), "complete": True}


@D.main_only
def stage_diagrams(cfg: Dict[str, Any]) -> Dict[str, Any]:
    """Rips persistence of every cloud shard (``torchtopo.rips_persistence``: native batched H0,
    parallel CPU backend for H1), then the vectoriser fitted on all diagrams and the images
    ``(S, P)`` written per shard, with the vectoriser's parameters in ``vectorizer.json``.
    Resumable shard by shard.

    Returns
    -------
    dict
        ``meta.json`` of the images: ``num_features``, ``seconds``, ``clouds_per_second``.
    """
    p = paths(cfg)
    meta = _read_meta(p["images"])
    if meta and meta.get("complete"):
        return meta
    clouds_meta = _require_complete(p["clouds"], "point clouds", "clouds")
    os.makedirs(p["diagrams"], exist_ok=True)
    os.makedirs(p["images"], exist_ok=True)
    n = clouds_meta["num_shards"]
    tic = time.perf_counter()
    for k in range(n):
        save_diagram_shard(cfg, k)
    save_vectorizer(cfg, n)
    pi = load_vectorizer(cfg)
    for k in range(n):
        save_image_shard(cfg, pi, k)
    meta = images_meta(cfg, clouds_meta, pi, time.perf_counter() - tic)
    _write_json(meta, os.path.join(p["images"], "meta.json"))
    return meta


# ---------------------------------------------------------------------------------- ripsnet

def ripsnet_pooling(cfg: Dict[str, Any]) -> str:
    """RipsNet pooling: the config's, else TopKD's choice (sum for a WRN-40-2 teacher, mean
    otherwise)."""
    pooling = cfg["topology"]["ripsnet"]["pooling"]
    if pooling:
        return pooling
    return "sum" if cfg["teacher"]["arch"] == "wrn_40_2" else "mean"


def _load_shards(folder: str, n: int) -> torch.Tensor:
    return torch.cat([torch.load(_shard(folder, k), weights_only=True) for k in range(n)], 0)


def ripsnet_path(cfg) -> str:
    """Where the fitted RipsNet is saved."""
    return os.path.join(paths(cfg)["ripsnet"], "ripsnet.pt")


@D.main_only
def stage_ripsnet(cfg: Dict[str, Any]) -> Dict[str, Any]:
    """Fit ``RipsNet.for_features(D, P)`` on (cloud, image) pairs with ``torchtopo.fit_ripsnet``
    (MSE, Adamax, early stopping) and save it with its vectoriser.

    Returns
    -------
    dict
        ``metrics.json``: ``train_mse`` (mean over clouds and pixels), ``train_l2`` (mean
        ``||p_hat - p||_2`` per cloud, the poster's Table 8 measure), ``initial_mse`` (before
        fitting), ``best_val_mse`` and ``constant_val_mse`` (the held-out MSE and that of the
        best constant predictor), ``epochs``, ``seconds``, ``parameters``.
    """
    import torchtopo

    p = paths(cfg)
    metrics_path = os.path.join(p["ripsnet"], "metrics.json")
    if os.path.isfile(metrics_path):
        with open(metrics_path) as f:
            return json.load(f)
    _require_complete(p["images"], "images", "diagrams")
    n = _read_meta(p["clouds"])["num_shards"]
    clouds, targets = _load_shards(p["clouds"], n), _load_shards(p["images"], n)
    pi = load_vectorizer(cfg)
    rn_cfg = cfg["topology"]["ripsnet"]
    seed_everything(cfg["teacher"]["seed"])
    model = torchtopo.RipsNet.for_features(clouds.shape[-1], targets.shape[-1],
                                           pooling=ripsnet_pooling(cfg))

    def errors():
        model.eval()
        with torch.no_grad():
            pred = torch.cat([model(c) for c in clouds.split(256)], 0)
        return float((pred - targets).pow(2).mean()), float((pred - targets).norm(dim=1).mean())

    initial_mse, _ = errors()
    tic = time.perf_counter()
    history = torchtopo.fit_ripsnet(
        model, clouds, targets, epochs=rn_cfg["epochs"], lr=rn_cfg["lr"],
        batch_size=rn_cfg["batch_size"], val_fraction=rn_cfg["val_fraction"],
        patience=rn_cfg["patience"], seed=cfg["teacher"]["seed"], progress=cfg["progress"],
        log_dir=os.path.join(p["ripsnet"], "tb"))
    seconds = time.perf_counter() - tic
    mse, l2 = errors()
    os.makedirs(p["ripsnet"], exist_ok=True)
    model.save(ripsnet_path(cfg), vectorizer=pi)
    metrics = {"train_mse": mse, "train_l2": l2, "initial_mse": initial_mse,
               "best_val_mse": history["best_val_loss"],
               "constant_val_mse": history["constant_val_loss"],
               "epochs": len(history["train_loss"]), "best_epoch": history["best_epoch"],
               "seconds": seconds, "num_clouds": int(clouds.shape[0]),
               "parameters": sum(q.numel() for q in model.parameters()),
               "history": {"train_loss": history["train_loss"], "val_loss": history["val_loss"]}}
    _write_json(metrics, metrics_path)
    _log(cfg, f"ripsnet: train MSE {initial_mse:.5f} -> {mse:.5f}, mean L2 {l2:.5f}")
    return metrics


def load_ripsnet(cfg):
    """The fitted RipsNet of the pair (frozen, eval mode)."""
    import torchtopo

    path = ripsnet_path(cfg)
    try:
        model, _ = torchtopo.RipsNet.load(path)
    except FileNotFoundError as err:
        raise FileNotFoundError(f"no fitted RipsNet at {path!r}: run the 'ripsnet' stage") from err
    return model.eval().requires_grad_(False)


# ---------------------------------------------------------------------------------- student

def student_dir(cfg, entry: str, seed: int) -> str:
    """Output folder of one student run."""
    return os.path.join(paths(cfg)["students"], entry, f"seed{seed}")


def _runtime_args(cfg, spec: Dict[str, Any], n_data: int) -> Dict[str, Any]:
    kwargs = dict(spec)
    name = kwargs.pop("name")
    if name == "crd":
        kwargs["n_data"] = n_data
    if name == "topkd":
        kwargs["ripsnet"] = load_ripsnet(cfg)
        kwargs["cloud_size"] = cfg["topology"]["cloud_size"]
    kwargs["extra"] = [dict(_runtime_args(cfg, e, n_data), name=e["name"])
                       for e in kwargs.get("extra", [])]
    return kwargs


def stage_student(cfg: Dict[str, Any], entry: str, seed: int) -> Dict[str, Any]:
    """Train the student with the distiller of ``compare`` entry ``entry`` and seed ``seed``.
    Skipped when its ``summary.json`` exists; resumes from ``latest.pt``.

    Returns
    -------
    dict
        The run summary (``last_acc``, ``best_acc``, ``best_epoch``, timings) plus ``distiller``
        and ``seed``.
    """
    out = student_dir(cfg, entry, seed)
    summary_path = os.path.join(out, "summary.json")
    if os.path.isfile(summary_path):
        with open(summary_path) as f:
            return json.load(f)
    spec = distiller_spec(cfg, entry)
    train, test, num_classes = load_data(cfg)
    seed_everything(seed)
    student = build_model(cfg["student"]["arch"], num_classes)
    name = spec["name"]
    needs_teacher = name != "vanilla" or spec.get("extra")
    teacher = load_teacher(cfg, num_classes) if needs_teacher else None
    kwargs = _runtime_args(cfg, spec, len(train))
    distiller = build_distiller(name, student, teacher, **kwargs)
    if distiller.needs_index:
        k = max([getattr(d, "nce_k", 0) for d in [distiller, *distiller.extra]])
        train = IndexedDataset(train, num_negatives=k or None)
    _log(cfg, f"student: {cfg['student']['arch']} with {entry}, seed {seed}")
    trainer = _trainer(cfg, distiller, train, test, out, seed, cfg["student"]["arch"])
    summary = trainer.fit(resume=True)
    summary.update(distiller=entry, seed=seed)
    _write_json(summary, summary_path)
    _log(cfg, f"student {entry} seed {seed}: last {summary['last_acc']:.2f} "
              f"best {summary['best_acc']:.2f}")
    return summary


# ------------------------------------------------------------------------------ all / table

def run_pair(cfg: Dict[str, Any], entries, seeds, teacher_stage: Callable,
             topology_stages: Sequence[Callable], student_stage: Callable,
             result_columns: Callable) -> List[Dict[str, Any]]:
    """The order of the stages of one pair, shared by the CIFAR and ImageNet ``run_all``:
    ``teacher_stage(cfg)``, then (when a distiller of ``entries`` needs the topology) each of
    ``topology_stages`` on ``cfg``, then ``student_stage(cfg, entry, seed)`` per entry and seed.

    Parameters
    ----------
    entries : list of str, optional
        ``compare`` entries; default all of ``cfg["compare"]``.
    seeds : list of int, optional
        Default ``cfg["seeds"]``.
    result_columns : callable
        ``(student summary, teacher summary) -> dict``: the columns of a run's row that follow
        ``pair``, ``teacher``, ``student``, ``distiller`` and ``seed``.

    Returns
    -------
    list of dict
        One row per student run.
    """
    entries = list(entries or cfg["compare"])
    seeds = list(seeds if seeds is not None else cfg["seeds"])
    teacher = teacher_stage(cfg)
    if any(uses_topology(distiller_spec(cfg, e)) for e in entries):
        for stage in topology_stages:
            stage(cfg)
    rows = []
    for entry in entries:
        for seed in seeds:
            summary = student_stage(cfg, entry, seed)
            rows.append({"pair": cfg["name"], "teacher": cfg["teacher"]["arch"],
                         "student": cfg["student"]["arch"], "distiller": entry, "seed": seed,
                         **result_columns(summary, teacher)})
    return rows


def _result_columns(student: Dict[str, Any], teacher: Dict[str, Any]) -> Dict[str, Any]:
    return {"last_acc": student["last_acc"], "best_acc": student["best_acc"],
            "best_epoch": student["best_epoch"], "step_time": student["step_time_mean"],
            "teacher_last_acc": teacher.get("last_acc", teacher.get("accuracy"))}


def run_all(cfg: Dict[str, Any], entries=None, seeds=None) -> List[Dict[str, Any]]:
    """Every stage for one pair: teacher, then (when a distiller needs it) clouds, diagrams and
    RipsNet, then one student per ``compare`` entry and seed (:func:`run_pair`).

    Returns
    -------
    list of dict
        One row per student run: ``pair``, ``teacher``, ``student``, ``distiller``, ``seed``,
        ``last_acc``, ``best_acc``, ``best_epoch``, ``step_time``, ``teacher_last_acc``.
    """
    return run_pair(cfg, entries, seeds, stage_teacher,
                    (stage_clouds, stage_diagrams, stage_ripsnet), stage_student, _result_columns)


def write_csv(path: str, rows: List[Dict[str, Any]]) -> None:
    """Write ``rows`` to the CSV file ``path``: a header of the first row's keys, then one line
    per row."""
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def _mean_std(values: List[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.2f}"
    return f"{statistics.mean(values):.2f} ± {statistics.stdev(values):.2f}"


def write_table(rows: List[Dict[str, Any]], cfgs: List[Dict[str, Any]], out_dir: str) -> str:
    """Write ``results.csv``, ``results.json`` (one row per run plus per-group means/stds) and
    ``comparison.md`` (ours, best and last epoch, mean ± std over seeds, against the paper).

    Returns
    -------
    str
        The markdown text.
    """
    os.makedirs(out_dir, exist_ok=True)
    write_csv(os.path.join(out_dir, "results.csv"), rows)
    groups: Dict[tuple, List[Dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault((r["pair"], r["distiller"]), []).append(r)
    summary = []
    for (pair, entry), rs in groups.items():
        best, last = [r["best_acc"] for r in rs], [r["last_acc"] for r in rs]
        summary.append({"pair": pair, "distiller": entry, "n": len(rs),
                        "best_mean": statistics.mean(best),
                        "best_std": statistics.stdev(best) if len(rs) > 1 else 0.0,
                        "last_mean": statistics.mean(last),
                        "last_std": statistics.stdev(last) if len(rs) > 1 else 0.0,
                        "step_time": statistics.mean(r["step_time"] for r in rs)})
    with open(os.path.join(out_dir, "results.json"), "w") as f:
        json.dump({"runs": rows, "summary": summary}, f, indent=2)
    lines = ["Top-1 accuracy (%): best test epoch (the official TopKD code's and mdistiller's "
             "report) and last epoch (RepDistiller's), mean ± std over seeds; paper = the "
             "poster's Tables 1-2.", ""]
    for cfg in cfgs:
        paper = cfg.get("paper") or {}
        lines += [f"### {cfg['name']}: {cfg['teacher']['arch']} → {cfg['student']['arch']} "
                  f"({cfg['dataset']['name']})", "",
                  "| distiller | seeds | best epoch | last epoch | paper | best − paper |",
                  "|---|---|---|---|---|---|"]
        for s in summary:
            if s["pair"] != cfg["name"]:
                continue
            rs = groups[(s["pair"], s["distiller"])]
            ref = paper.get(s["distiller"])
            delta = f"{s['best_mean'] - ref:+.2f}" if isinstance(ref, (int, float)) else "–"
            lines.append(f"| {s['distiller']} | {s['n']} | {_mean_std([r['best_acc'] for r in rs])} "
                         f"| {_mean_std([r['last_acc'] for r in rs])} "
                         f"| {ref if ref is not None else '–'} | {delta} |")
        ours = next((r["teacher_last_acc"] for r in rows if r["pair"] == cfg["name"]), None)
        lines.append(f"\nTeacher top-1 (last epoch): ours "
                     f"{'–' if ours is None else f'{ours:.2f}'}, paper {paper.get('teacher', '–')}.")
        lines.append("")
    text = "\n".join(lines)
    with open(os.path.join(out_dir, "comparison.md"), "w") as f:
        f.write(text)
    return text
