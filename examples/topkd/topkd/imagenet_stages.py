"""ImageNet-1K stages of the suite (Tables 3 and 4), on one process or many (``torchrun``).

Config: :data:`IMAGENET_DEFAULTS` merged with a YAML file of ``examples/topkd/configs/imagenet/``
(the standard ImageNet KD recipe: 100 epochs, SGD 0.9, weight decay 1e-4, lr ×0.1 at 30/60/90,
global batch 256 with lr 0.1 scaled linearly with the global batch). Batch sizes are global;
``dataset.num_workers`` is per rank.

Stages (each skipped when its outputs exist, each resumable):

``teacher``   load the teacher from a local torchvision weight file and evaluate it (top-1/5);
``clouds``    teacher point clouds, sharded over the ranks (:mod:`topkd.generation`);
``diagrams``  diagrams and persistence images, sharded over the ranks;
``ripsnet``   fit the RipsNet (rank 0; :func:`topkd.stages.stage_ripsnet`);
``student``   distil the student under DDP (:class:`topkd.engine.Trainer`);
``all``       every stage, then ``table/comparison.md`` with the paper's numbers.

TopKD under DDP: ``topology.cloud_size`` is the number of points per cloud; ``null`` (the
default) means the per-rank batch, i.e. each rank's local batch is one cloud (``256 / W``
points on ``W`` GPUs: the RipsNet is trained on clouds of that size, so keep ``W`` fixed between
the ``clouds`` and ``student`` stages or set ``cloud_size``). ``topology.gather: true`` gathers
the pooled features of all ranks first (:func:`topkd.distributed.enable_cross_rank_clouds`), so
clouds are cut from the global batch exactly as one process would; ``null`` gathers only when
``cloud_size`` does not divide the per-rank batch.
"""
from __future__ import annotations

import functools
import json
import os
from typing import Any, Dict, List, Optional

import torch
from torch.utils.data import DataLoader, DistributedSampler

from . import distributed as D
from .config import (RIPSNET_DEFAULTS, RUN_DEFAULTS, distiller_spec, merge_over_defaults,
                     read_yaml, uses_topology)
from .data import IndexedDataset
from .distillers import DISTILLERS, build_distiller
from .engine import Trainer, evaluate, seed_everything, select_device
from .generation import generate_clouds, generate_diagrams
from .imagenet import (IMAGENET_MODELS, NORMS, ContrastIndexedDataset, SeededDataset,
                       build_imagenet_model, image_folder, load_torchvision_weights)
from .stages import load_ripsnet, paths, run_pair, stage_ripsnet

AMP_DTYPES = ("bfloat16", "float16")

IMAGENET_DEFAULTS: Dict[str, Any] = {
    **RUN_DEFAULTS,
    "dataset": {"name": "imagenet", "root": "./data/imagenet", "num_classes": 1000,
                "batch_size": 256, "eval_batch_size": 256, "num_workers": 8,
                "input_size": 224, "resize": 256},
    "train": {"epochs": 100, "lr": None, "base_lr": 0.1, "base_batch_size": 256,
              "momentum": 0.9, "weight_decay": 1e-4, "milestones": [30, 60, 90],
              "lr_decay": 0.1, "amp": None, "amp_dtype": "bfloat16", "channels_last": None,
              "norm": "batch"},
    "teacher": {"arch": None, "checkpoint": None, "seed": 0},
    "student": {"arch": None},
    "compare": ["vanilla", "kd", "topkd"],
    # ImageNet KD weights of mdistiller (CE 0.5, KD 0.5, T 1); TopKD adds its topology term
    "distillers": {"kd": {"name": "kd", "gamma": 0.5, "alpha": 0.5, "temperature": 1.0},
                   "topkd": {"name": "topkd", "gamma": 0.5, "alpha": 0.5, "temperature": 1.0,
                             "delta": 5.0},
                   "crd": {"name": "crd", "gamma": 1.0, "alpha": 0.0, "beta": 0.8}},
    "topology": {"cloud_size": None, "gather": None, "passes": 1, "shard_size": 128,
                 "max_dim": 0, "faithful": False, "num_workers": None,
                 "ripsnet": RIPSNET_DEFAULTS},
    "paper": {},
}


def load_imagenet_config(path: str, overrides: List[str] = ()) -> Dict[str, Any]:
    """Load an ImageNet pair config (``yaml.safe_load``) merged over :data:`IMAGENET_DEFAULTS`.

    Parameters
    ----------
    path : str
    overrides : list of str
        ``key.sub=value`` items applied last.

    Raises
    ------
    FileNotFoundError, ValueError
    """
    cfg = merge_over_defaults(read_yaml(path, overrides), IMAGENET_DEFAULTS, path)
    if cfg["teacher"]["checkpoint"]:
        cfg["teacher"]["checkpoint"] = os.path.expanduser(cfg["teacher"]["checkpoint"])
    return cfg


def global_lr(cfg: Dict[str, Any]) -> float:
    """``train.lr``, else ``base_lr × batch_size / base_batch_size`` (0.1 at 256)."""
    tr = cfg["train"]
    if tr["lr"]:
        return float(tr["lr"])
    return tr["base_lr"] * cfg["dataset"]["batch_size"] / tr["base_batch_size"]


def local_batch(cfg: Dict[str, Any], key: str = "batch_size") -> int:
    """This rank's share of the global ``dataset.<key>``."""
    return cfg["dataset"][key] // D.world_size()


def cloud_size(cfg: Dict[str, Any]) -> int:
    """Points per TopKD cloud: ``topology.cloud_size``, else the per-rank batch."""
    return cfg["topology"]["cloud_size"] or local_batch(cfg)


def validate_imagenet(cfg: Dict[str, Any], stage: str = "all") -> None:
    """Fail fast, before any data is read, on a bad config for this world size.

    Raises
    ------
    ValueError
        Unknown model, distiller, norm or AMP dtype; batch sizes that do not split over the
        ranks; TopKD clouds that do not fit the per-rank batch without ``topology.gather``.
    FileNotFoundError
        A missing teacher checkpoint (needed by every stage but ``diagrams`` and ``ripsnet``).
    """
    for role in ("teacher", "student"):
        arch = cfg[role].get("arch")
        if arch not in IMAGENET_MODELS:
            raise ValueError(f"config {cfg['name']!r}: {role}.arch must be one of "
                             f"{sorted(IMAGENET_MODELS)}, got {arch!r}")
    tr, ds = cfg["train"], cfg["dataset"]
    if tr["norm"] not in NORMS:
        raise ValueError(f"train.norm must be one of {NORMS}, got {tr['norm']!r}")
    if tr["amp_dtype"] not in AMP_DTYPES:
        raise ValueError(f"train.amp_dtype must be one of {AMP_DTYPES}, got {tr['amp_dtype']!r}")
    world = D.world_size()
    for key in ("batch_size", "eval_batch_size"):
        if not isinstance(ds[key], int) or ds[key] < world or ds[key] % world:
            raise ValueError(f"dataset.{key} ({ds[key]!r}) is the global batch: it must be a "
                             f"positive multiple of the world size ({world})")
    for entry in cfg["compare"]:
        spec = distiller_spec(cfg, entry)
        for sub in [spec, *spec.get("extra", [])]:
            name = sub.get("name")
            if name not in DISTILLERS:
                raise ValueError(f"config {cfg['name']!r}, distiller {entry!r}: unknown "
                                 f"distiller {name!r}; known: {', '.join(sorted(DISTILLERS))}")
            unknown = set(sub) - set(DISTILLERS[name].defaults) - {"name", "extra", "input_size"}
            if unknown:
                raise ValueError(f"config {cfg['name']!r}, distiller {entry!r}: unknown "
                                 f"arguments {sorted(unknown)} for {name!r}")
        if uses_topology(spec):
            m, local, gather = cloud_size(cfg), local_batch(cfg), cfg["topology"]["gather"]
            if gather is False and local % m:
                raise ValueError(f"topology.cloud_size ({m}) must divide the per-rank batch "
                                 f"({local}) when topology.gather is false")
            if cfg["dataset"]["batch_size"] % m:
                raise ValueError(f"topology.cloud_size ({m}) must divide dataset.batch_size "
                                 f"({cfg['dataset']['batch_size']})")
    ckpt = cfg["teacher"]["checkpoint"]
    if stage not in ("diagrams", "ripsnet") and not (ckpt and os.path.isfile(ckpt)):
        raise FileNotFoundError(f"config {cfg['name']!r}: teacher.checkpoint {ckpt!r} does not "
                                "exist; point it to a local torchvision weight file (e.g. "
                                "~/.cache/torch/hub/checkpoints/resnet34-b627a593.pth)")


def _log(cfg, msg: str) -> None:
    if cfg["progress"] and D.is_main():
        print(f"[{cfg['name']}] {msg}", flush=True)


def _write_json(obj, path: str) -> None:
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=2)
    os.replace(tmp, path)


def _device(cfg) -> torch.device:
    return select_device(cfg["device"])


def load_teacher(cfg: Dict[str, Any], device: torch.device) -> torch.nn.Module:
    """The teacher from ``teacher.checkpoint`` (torchvision format), eval mode, on ``device``."""
    model = build_imagenet_model(cfg["teacher"]["arch"], cfg["dataset"]["num_classes"])
    load_torchvision_weights(model, cfg["teacher"]["checkpoint"])
    return model.to(device).eval()


def val_loader(cfg: Dict[str, Any]) -> DataLoader:
    """This rank's share of the validation set (no padding: exact metrics once all-reduced)."""
    ds = cfg["dataset"]
    val = image_folder(ds["root"], "val", False, ds["input_size"], ds["resize"])
    return DataLoader(val, batch_size=local_batch(cfg, "eval_batch_size"),
                      sampler=D.EvalShardSampler(val), num_workers=ds["num_workers"],
                      pin_memory=torch.cuda.is_available())


def train_loader(cfg: Dict[str, Any], dataset, seed: int) -> DataLoader:
    """This rank's share of the training set: :class:`DistributedSampler` (also with one
    process, so any world size visits the same global batches), per-rank batch, workers and
    pinned memory."""
    ds = cfg["dataset"]
    sampler = DistributedSampler(dataset, num_replicas=D.world_size(), rank=D.rank(),
                                 shuffle=True, seed=seed, drop_last=True)
    return DataLoader(dataset, batch_size=local_batch(cfg), sampler=sampler,
                      num_workers=ds["num_workers"], pin_memory=torch.cuda.is_available(),
                      drop_last=True, generator=torch.Generator().manual_seed(seed))


# --------------------------------------------------------------------------------- stages

def stage_teacher(cfg: Dict[str, Any]) -> Dict[str, Any]:
    """Evaluate the teacher on the validation set (all ranks share the work); rank 0 writes
    ``teacher/summary.json`` with ``top1``/``top5`` (%). Skipped when it exists."""
    out = paths(cfg)["teacher"]
    summary_path = os.path.join(out, "summary.json")
    if os.path.isfile(summary_path):
        with open(summary_path) as f:
            return json.load(f)
    device = _device(cfg)
    teacher = load_teacher(cfg, device)
    on_gpu = device.type == "cuda"
    res = evaluate(teacher, val_loader(cfg), device, amp=on_gpu, channels_last=False,
                   amp_dtype=getattr(torch, cfg["train"]["amp_dtype"]))
    summary = {"arch": cfg["teacher"]["arch"], "checkpoint": cfg["teacher"]["checkpoint"],
               "top1": res["acc"], "top5": res["acc5"], "loss": res["loss"]}
    if D.is_main():
        os.makedirs(out, exist_ok=True)
        _write_json(summary, summary_path)
    D.barrier()
    _log(cfg, f"teacher {cfg['teacher']['arch']}: top-1 {res['acc']:.2f} top-5 {res['acc5']:.2f}")
    return summary


def stage_clouds(cfg: Dict[str, Any]) -> Dict[str, Any]:
    """Teacher point clouds of ``cloud_size(cfg)`` augmented training images, sharded over the
    ranks (:func:`topkd.generation.generate_clouds`)."""
    ds, topo = cfg["dataset"], cfg["topology"]
    device = _device(cfg)
    train = SeededDataset(image_folder(ds["root"], "train", True, ds["input_size"], ds["resize"]),
                          cfg["teacher"]["seed"])
    meta = generate_clouds(load_teacher(cfg, device), train, paths(cfg)["clouds"],
                           cloud_size(cfg), topo["shard_size"], topo["passes"],
                           cfg["teacher"]["seed"], topo["faithful"], device, ds["num_workers"],
                           cfg["progress"])
    _log(cfg, f"clouds: {meta['num_clouds']} clouds of {meta['cloud_size']} points")
    return meta


def stage_diagrams(cfg: Dict[str, Any]) -> Dict[str, Any]:
    """Diagrams and images, sharded over the ranks (:func:`topkd.generation.generate_diagrams`)."""
    meta = generate_diagrams(cfg)
    _log(cfg, f"diagrams: {meta['num_images']} images of {meta['num_features']} features")
    return meta


def stage_ripsnet_main(cfg: Dict[str, Any]) -> Dict[str, Any]:
    """Fit the RipsNet on rank 0 (:func:`topkd.stages.stage_ripsnet`); the other ranks wait,
    then read its saved metrics."""
    return D.main_only(stage_ripsnet)(cfg)


def student_dir(cfg: Dict[str, Any], entry: str, seed: int) -> str:
    """Output folder of one student run."""
    return os.path.join(paths(cfg)["students"], entry, f"seed{seed}")


def _runtime_spec(cfg, spec: Dict[str, Any], n_data: int, input_size: int) -> Dict[str, Any]:
    kwargs = dict(spec)
    name = kwargs["name"]
    kwargs["input_size"] = input_size
    if name == "crd":
        kwargs["n_data"] = n_data
    if name == "topkd":
        clouds = os.path.join(paths(cfg)["clouds"], "meta.json")
        if not os.path.isfile(clouds):
            raise FileNotFoundError(f"topkd needs the topology stages: no {clouds!r}; "
                                    "run 'clouds diagrams ripsnet' first")
        with open(clouds) as f:
            trained_m = json.load(f)["cloud_size"]
        if trained_m != cloud_size(cfg):
            raise ValueError(f"the RipsNet was fitted on clouds of {trained_m} points but this "
                             f"run forms clouds of {cloud_size(cfg)} (topology.cloud_size null = "
                             f"per-rank batch on {D.world_size()} ranks): set "
                             f"topology.cloud_size={trained_m} or regenerate the clouds")
        kwargs["ripsnet"] = load_ripsnet(cfg)
        kwargs["cloud_size"] = cloud_size(cfg)
    kwargs["extra"] = [_runtime_spec(cfg, e, n_data, input_size) for e in kwargs.get("extra", [])]
    return kwargs


def build_student_run(cfg: Dict[str, Any], entry: str, seed: int) -> Trainer:
    """Everything a student run needs, on this rank: models, distiller (connectors sized from
    the models), data loaders and the :class:`topkd.engine.Trainer` (which wraps it in DDP).

    Parameters
    ----------
    cfg : dict
    entry : str
        A ``compare`` entry.
    seed : int
    """
    ds, tr = cfg["dataset"], cfg["train"]
    device = _device(cfg)
    seed_everything(seed)
    student = build_imagenet_model(cfg["student"]["arch"], ds["num_classes"], tr["norm"])
    if tr["norm"] == "sync" and D.is_distributed():
        student = D.convert_sync_batchnorm(student)
    spec = distiller_spec(cfg, entry)
    teacher = load_teacher(cfg, device) if spec["name"] != "vanilla" or spec.get("extra") else None
    train = image_folder(ds["root"], "train", True, ds["input_size"], ds["resize"])
    kwargs = _runtime_spec(cfg, spec, len(train), ds["input_size"])
    name = kwargs.pop("name")
    distiller = build_distiller(name, student.to(device), teacher, **kwargs)
    if distiller.needs_index:
        k = max(getattr(d, "nce_k", 0) for d in [distiller, *distiller.extra])
        train = ContrastIndexedDataset(train, k) if k else IndexedDataset(train)
    if D.is_distributed() and cfg["topology"]["gather"]:
        for module in [distiller, *distiller.extra]:
            if module.name == "topkd":
                D.enable_cross_rank_clouds(module)
    train = SeededDataset(train, seed)
    return Trainer(distiller, train_loader(cfg, train, seed), val_loader(cfg),
                   student_dir(cfg, entry, seed), epochs=tr["epochs"], lr=global_lr(cfg),
                   momentum=tr["momentum"], weight_decay=tr["weight_decay"],
                   milestones=tr["milestones"], lr_decay=tr["lr_decay"], seed=seed,
                   device=cfg["device"], amp=tr["amp"], channels_last=tr["channels_last"],
                   amp_dtype=tr["amp_dtype"], progress=cfg["progress"])


def stage_student(cfg: Dict[str, Any], entry: str, seed: int, resume: bool = False,
                  stop_after: Optional[int] = None) -> Dict[str, Any]:
    """Distil one student (skipped when its ``summary.json`` exists).

    Parameters
    ----------
    resume : bool
        Continue from ``latest.pt`` (on any number of ranks). Without it an existing
        ``latest.pt`` is an error, never silently overwritten.
    stop_after : int, optional
        Stop after this many epochs (a time-limited job; continue with ``resume``).

    Returns
    -------
    dict
        The run summary plus ``last_top5``/``best_top5``, ``distiller``, ``seed``,
        ``world_size``.
    """
    out = student_dir(cfg, entry, seed)
    summary_path = os.path.join(out, "summary.json")
    if os.path.isfile(summary_path):
        with open(summary_path) as f:
            return json.load(f)
    if not resume and os.path.isfile(os.path.join(out, "latest.pt")):
        raise ValueError(f"{out!r} holds a latest.pt checkpoint: pass --resume to continue it "
                         "or choose another out_dir")
    _log(cfg, f"student {cfg['student']['arch']} with {entry}, seed {seed}, "
              f"{D.world_size()} rank(s)")
    trainer = build_student_run(cfg, entry, seed)
    summary = trainer.fit(resume=resume, stop_after=stop_after)
    if summary["epochs_done"] < trainer.epochs:
        return summary
    rows = trainer.history
    summary.update(last_top5=rows[-1]["test_acc5"],
                   best_top5=rows[trainer.best_epoch - 1]["test_acc5"],
                   distiller=entry, seed=seed, world_size=D.world_size())
    if D.is_main():
        _write_json(summary, summary_path)
    D.barrier()
    _log(cfg, f"student {entry} seed {seed}: last {summary['last_acc']:.2f} "
              f"best {summary['best_acc']:.2f}")
    return summary


def _result_columns(student: Dict[str, Any], teacher: Dict[str, Any]) -> Dict[str, Any]:
    return {"last_top1": student["last_acc"], "best_top1": student["best_acc"],
            "last_top5": student["last_top5"], "best_top5": student["best_top5"],
            "teacher_top1": teacher["top1"], "teacher_top5": teacher["top5"]}


def run_all(cfg: Dict[str, Any], entries: Optional[List[str]] = None,
            seeds: Optional[List[int]] = None, resume: bool = False) -> List[Dict[str, Any]]:
    """Every stage of one pair, then one student per entry and seed
    (:func:`topkd.stages.run_pair`); returns one row per run."""
    return run_pair(cfg, entries, seeds, stage_teacher,
                    (stage_clouds, stage_diagrams, stage_ripsnet_main),
                    functools.partial(stage_student, resume=resume), _result_columns)


def write_table(rows: List[Dict[str, Any]], cfg: Dict[str, Any], out_dir: str) -> str:
    """``results.json`` and ``comparison.md``: our last- and best-epoch top-1/top-5 (mean over
    seeds) next to the poster's numbers (``paper`` of the config). Rank 0 writes.

    Returns
    -------
    str
        The markdown text.
    """
    import statistics

    paper = cfg.get("paper") or {}
    lines = [f"### {cfg['name']}: {cfg['teacher']['arch']} → {cfg['student']['arch']} "
             "(ImageNet-1K val)", "",
             "Top-1 / top-5 (%): last epoch and best epoch (model selection on val, as the "
             "official TopKD code reports), mean over seeds; paper = the poster's table.", "",
             "| distiller | seeds | last top-1 | last top-5 | best top-1 | best top-5 | "
             "paper top-1 | paper top-5 |", "|---|---|---|---|---|---|---|---|"]
    for entry in dict.fromkeys(r["distiller"] for r in rows):
        rs = [r for r in rows if r["distiller"] == entry]
        mean = {k: statistics.mean(r[k] for r in rs)
                for k in ("last_top1", "last_top5", "best_top1", "best_top5")}
        ref = paper.get(entry) or {}
        lines.append(f"| {entry} | {len(rs)} | {mean['last_top1']:.2f} | {mean['last_top5']:.2f} "
                     f"| {mean['best_top1']:.2f} | {mean['best_top5']:.2f} "
                     f"| {ref.get('top1', '–')} | {ref.get('top5', '–')} |")
    if rows and "teacher" in paper:
        lines.append(f"\nTeacher: ours {rows[0]['teacher_top1']:.2f} / "
                     f"{rows[0]['teacher_top5']:.2f}, paper {paper['teacher'].get('top1')} / "
                     f"{paper['teacher'].get('top5')}.")
    text = "\n".join(lines) + "\n"
    if D.is_main():
        os.makedirs(out_dir, exist_ok=True)
        _write_json({"runs": rows, "paper": paper}, os.path.join(out_dir, "results.json"))
        with open(os.path.join(out_dir, "comparison.md"), "w") as f:
            f.write(text)
    D.barrier()
    return text


__all__ = ["IMAGENET_DEFAULTS", "load_imagenet_config", "validate_imagenet", "global_lr",
           "cloud_size", "stage_teacher", "stage_clouds", "stage_diagrams", "stage_ripsnet_main",
           "build_student_run", "stage_student", "run_all", "write_table"]
