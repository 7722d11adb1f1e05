"""What differs between the CIFAR and the ImageNet suite, and nothing else: data, models, the
teacher stage, loaders and the optimiser recipe. The stages themselves are
:mod:`topkd.pipeline`'s, shared by both; a config's suite follows from ``dataset.name``
(:func:`suite_of`).
"""
from __future__ import annotations

import os
from typing import Any, Dict, Optional, Tuple

import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from . import distributed as D
from .config import ConfigError
from .data import DATASETS, SeededDataset, build_datasets, make_loader, take
from .distillers import build_distiller
from .engine import Trainer, evaluate, load_model_weights, seed_everything, select_device
from .layout import layout
from .models import build_model, canonical_name
from .report import log
from .storage import read_json, write_json

__all__ = ["Suite", "CifarSuite", "ImageNetSuite", "SUITES", "suite_of", "load_teacher"]

LOW_LR_MODELS = ("MobileNetV2", "ShuffleV1", "ShuffleV2")


class Suite:
    """The hooks of one suite; see :class:`CifarSuite` and :class:`ImageNetSuite`."""

    name = "base"

    def num_classes(self, cfg: Dict[str, Any]) -> int:
        """Number of classes of the config's dataset."""
        raise NotImplementedError

    def check(self, cfg: Dict[str, Any]) -> None:
        """Suite-specific checks of a config (model names, batch sizes against the world size);
        may canonicalise model names in place.

        Raises
        ------
        ConfigError
        """
        raise NotImplementedError

    def build_model(self, cfg: Dict[str, Any], role: str) -> torch.nn.Module:
        """A fresh ``"teacher"`` or ``"student"`` of the config (``(logits, features)``
        interface, ``feature_channels()``)."""
        raise NotImplementedError

    def input_size(self, cfg: Dict[str, Any]) -> int:
        """Image side of the training data."""
        raise NotImplementedError

    def datasets(self, cfg: Dict[str, Any]) -> Tuple[Dataset, Dataset]:
        """``(train, test)``: the training set with its augmentation and the evaluation set."""
        raise NotImplementedError

    def teacher_weights(self, cfg: Dict[str, Any]) -> Optional[str]:
        """The file the teacher's weights come from (``None``: none is configured and the
        suite cannot train one)."""
        raise NotImplementedError

    def stage_teacher(self, cfg: Dict[str, Any]) -> Dict[str, Any]:
        """Make the teacher ready (train it, or check the configured one); skipped when done.

        Returns
        -------
        dict
            With ``weights`` (its file), ``top1`` and ``top5`` (% on the evaluation set, or
            ``None`` where unknown).
        """
        raise NotImplementedError

    def eval_loader(self, cfg: Dict[str, Any], test: Dataset) -> DataLoader:
        """The evaluation loader (global batch size)."""
        raise NotImplementedError

    def train_loader(self, cfg: Dict[str, Any], train: Dataset, seed: int) -> DataLoader:
        """The training loader of a run with seed ``seed`` (global batch size)."""
        raise NotImplementedError

    def recipe(self, cfg: Dict[str, Any], arch: str, train: Dict[str, Any]) -> Dict[str, Any]:
        """The :class:`topkd.engine.Trainer` keyword arguments of the optimiser recipe
        ``train`` (a ``train`` section) for a model ``arch``."""
        raise NotImplementedError

    def trainer(self, cfg: Dict[str, Any], distiller, train: Dataset, test: Dataset, out_dir: str,
                seed: int, arch: str, stage: str,
                overrides: Optional[Dict[str, Any]] = None) -> Trainer:
        """The :class:`topkd.engine.Trainer` of one training run of the suite."""
        recipe = self.recipe(cfg, arch, dict(cfg["train"], **(overrides or {})))
        return Trainer(distiller, self.train_loader(cfg, train, seed), self.eval_loader(cfg, test),
                       out_dir, seed=seed,
                       device=cfg["device"], progress=cfg["progress"], stage=stage, **recipe)


def _sgd(train: Dict[str, Any], lr: float) -> Dict[str, Any]:
    return {"epochs": train["epochs"], "lr": lr, "momentum": train["momentum"],
            "weight_decay": train["weight_decay"], "milestones": train["milestones"],
            "lr_decay": train["lr_decay"]}


class CifarSuite(Suite):
    """CIFAR-100 (and the offline digits): the KD zoo of :mod:`topkd.models`, RepDistiller's
    recipe (lr 0.05, 0.01 for MobileNetV2 and the ShuffleNets), teachers trained here or
    loaded from RepDistiller/mdistiller files; under ``torchrun`` the engine splits the loaders
    over the ranks."""

    name = "cifar"

    def num_classes(self, cfg):
        return 100 if cfg["dataset"]["name"] == "cifar100" else 10

    def check(self, cfg):
        if cfg["dataset"]["name"] not in DATASETS:
            raise ConfigError(f"dataset.name must be one of {DATASETS}, got "
                              f"{cfg['dataset']['name']!r}")
        if cfg["dataset"]["name"] == "cifar100" and cfg["dataset"]["image_size"] != 32:
            raise ConfigError(f"config {cfg['name']!r}: dataset.image_size must be 32 for "
                              f"cifar100 (only the digits can be resized), got "
                              f"{cfg['dataset']['image_size']}")
        for role in ("teacher", "student"):
            try:
                cfg[role]["arch"] = canonical_name(cfg[role]["arch"])
            except (TypeError, ValueError) as err:
                raise ConfigError(f"config {cfg['name']!r}: {role}.arch: {err}") from err

    def build_model(self, cfg, role):
        return build_model(cfg[role]["arch"], self.num_classes(cfg))

    def input_size(self, cfg):
        return cfg["dataset"]["image_size"]

    def datasets(self, cfg):
        ds = cfg["dataset"]
        train, test, _ = build_datasets(ds["name"], ds["root"], ds["download"], ds["verify"],
                                        ds["image_size"])
        return take(train, ds["train_subset"]), take(test, ds["test_subset"])

    def teacher_weights(self, cfg):
        """The configured checkpoint, else the trained teacher's last epoch (``final.pt``) or,
        with ``teacher.weights: best``, its best test epoch (``best.pt``)."""
        run = layout(cfg)
        return cfg["teacher"]["checkpoint"] or (
            run.teacher_best if cfg["teacher"]["weights"] == "best" else run.teacher_final)

    def stage_teacher(self, cfg):
        """Train the teacher with cross-entropy (the CIFAR recipe, with ``teacher.train``'s
        changes), or check that the configured checkpoint loads. Skipped when
        ``teacher/final.pt`` exists; resumes from ``latest.pt``. Both the last epoch
        (``final.pt``) and the best test epoch (``best.pt``) are kept; ``top1`` is that of the
        weights ``teacher.weights`` selects."""
        ckpt, arch = cfg["teacher"]["checkpoint"], cfg["teacher"]["arch"]
        if ckpt:
            meta = load_model_weights(self.build_model(cfg, "teacher"), ckpt, "teacher",
                                      f"replace the file teacher.checkpoint names ({ckpt!r})")
            return {"weights": ckpt, "top1": meta.get("accuracy"), "top5": None, **meta}
        run = layout(cfg)
        summary_path = os.path.join(run.teacher, "summary.json")
        if os.path.isfile(summary_path) and os.path.isfile(run.teacher_final):
            summary = read_json(summary_path, "teacher")
            load_teacher(cfg)  # the weights must load before the stage counts as done
        else:
            train, test = self.datasets(cfg)
            seed = cfg["teacher"]["seed"]
            seed_everything(seed)
            model = self.build_model(cfg, "teacher")
            log(cfg, f"teacher: training {arch}")
            trainer = self.trainer(cfg, build_distiller("vanilla", model, None), train, test,
                                   run.teacher, seed, arch, "teacher", cfg["teacher"]["train"])
            summary = trainer.fit(resume=True)
        best = cfg["teacher"]["weights"] == "best"
        return {**summary, "weights": self.teacher_weights(cfg),
                "top1": summary["best_acc" if best else "last_acc"],
                "top5": summary.get("best_top5" if best else "last_top5"),
                "selected_epoch": summary["best_epoch" if best else "epochs_done"]}

    def eval_loader(self, cfg, test):
        ds = cfg["dataset"]
        return make_loader(test, max(ds["batch_size"], 256), False, ds["num_workers"])

    def train_loader(self, cfg, train, seed):
        ds = cfg["dataset"]
        return make_loader(train, ds["batch_size"], True, ds["num_workers"], seed,
                           drop_last=ds["drop_last"])

    def recipe(self, cfg, arch, train):
        return {**_sgd(train, train["lr"] or (0.01 if arch in LOW_LR_MODELS else 0.05)),
                "amp": train["amp"], "channels_last": train["channels_last"]}


class ImageNetSuite(Suite):
    """ImageNet-1K: torchvision's models (:mod:`topkd.imagenet`), teachers from local
    torchvision weight files (evaluated, never trained here), ``ImageFolder`` data, global
    batch sizes split over the ranks by a ``DistributedSampler`` (also in one process, so any
    world size visits the same global batches) with augmentation seeded per
    ``(seed, epoch, image)``, lr ``base_lr × batch / base_batch_size``."""

    name = "imagenet"

    def num_classes(self, cfg):
        return cfg["dataset"]["num_classes"]

    def check(self, cfg):
        from .imagenet import IMAGENET_MODELS

        for role in ("teacher", "student"):
            if cfg[role]["arch"] not in IMAGENET_MODELS:
                raise ConfigError(f"config {cfg['name']!r}: {role}.arch must be one of "
                                  f"{sorted(IMAGENET_MODELS)}, got {cfg[role]['arch']!r}")
        world = D.world_size()
        for key in ("batch_size", "eval_batch_size"):
            value = cfg["dataset"][key]
            if value < world or value % world:
                raise ConfigError(f"dataset.{key} ({value}) is the global batch: it must be a "
                                  f"positive multiple of the world size ({world})")

    def build_model(self, cfg, role):
        from .imagenet import build_imagenet_model

        norm = cfg["train"]["norm"] if role == "student" else "batch"
        model = build_imagenet_model(cfg[role]["arch"], self.num_classes(cfg), norm)
        if norm == "sync" and D.is_distributed():
            model = D.convert_sync_batchnorm(model)
        return model

    def input_size(self, cfg):
        return cfg["dataset"]["input_size"]

    def datasets(self, cfg):
        from .imagenet import image_folder

        ds = cfg["dataset"]
        return (image_folder(ds["root"], "train", True, ds["input_size"], ds["resize"]),
                image_folder(ds["root"], "val", False, ds["input_size"], ds["resize"]))

    def teacher_weights(self, cfg):
        return cfg["teacher"]["checkpoint"]

    def stage_teacher(self, cfg):
        """Evaluate the teacher on the validation set (all ranks share the work); rank 0 writes
        ``teacher/summary.json`` with ``top1``/``top5`` (%). Skipped when it exists."""
        run = layout(cfg)
        summary_path = os.path.join(run.teacher, "summary.json")
        if os.path.isfile(summary_path):
            return read_json(summary_path, "teacher")
        device = select_device(cfg["device"])
        teacher = load_teacher(cfg, device)
        res = evaluate(teacher, self.eval_loader(cfg, self.datasets(cfg)[1]), device,
                       amp=device.type == "cuda", channels_last=False,
                       amp_dtype=getattr(torch, cfg["train"]["amp_dtype"]))
        summary = {"arch": cfg["teacher"]["arch"], "weights": cfg["teacher"]["checkpoint"],
                   "top1": res["acc"], "top5": res["acc5"], "loss": res["loss"]}
        if D.is_main():
            os.makedirs(run.teacher, exist_ok=True)
            write_json(summary, summary_path)
        D.barrier()
        return summary

    def eval_loader(self, cfg, test):
        """This rank's share of the validation set (no padding: exact metrics once
        all-reduced)."""
        ds = cfg["dataset"]
        return DataLoader(test, batch_size=ds["eval_batch_size"] // D.world_size(),
                          sampler=D.EvalShardSampler(test), num_workers=ds["num_workers"],
                          pin_memory=torch.cuda.is_available())

    def train_loader(self, cfg, train, seed):
        """This rank's share of the training set, augmentation seeded per (seed, epoch,
        image)."""
        ds, world = cfg["dataset"], D.world_size()
        train = SeededDataset(train, seed)
        sampler = DistributedSampler(train, num_replicas=world, rank=D.rank(), shuffle=True,
                                     seed=seed, drop_last=True)
        return DataLoader(train, batch_size=ds["batch_size"] // world, sampler=sampler,
                          num_workers=ds["num_workers"], pin_memory=torch.cuda.is_available(),
                          drop_last=True, generator=torch.Generator().manual_seed(seed))

    def recipe(self, cfg, arch, train):
        lr = train["lr"] or train["base_lr"] * cfg["dataset"]["batch_size"] / train["base_batch_size"]
        return {**_sgd(train, float(lr)), "amp": train["amp"], "channels_last": train["channels_last"],
                "amp_dtype": train["amp_dtype"]}


SUITES: Dict[str, Suite] = {"cifar100": CifarSuite(), "digits": CifarSuite(),
                            "imagenet": ImageNetSuite()}


def suite_of(cfg: Dict[str, Any]) -> Suite:
    """The suite of a config, from ``dataset.name``."""
    name = cfg["dataset"]["name"]
    if name not in SUITES:
        raise ConfigError(f"dataset.name must be one of {sorted(SUITES)}, got {name!r}")
    return SUITES[name]


def load_teacher(cfg: Dict[str, Any], device: Optional[torch.device] = None) -> torch.nn.Module:
    """The config's teacher with its weights (:meth:`Suite.teacher_weights`), in eval mode.

    Raises
    ------
    FileNotFoundError
        When the weights are not there (run the ``teacher`` stage, or set
        ``teacher.checkpoint``).
    topkd.storage.RunFileError
        When the file cannot be read (named, with what to do).
    """
    suite = suite_of(cfg)
    path = suite.teacher_weights(cfg)
    if not path or not os.path.isfile(path):
        raise FileNotFoundError(f"teacher weights {path!r} not found: run the 'teacher' stage "
                                "or set teacher.checkpoint")
    model = suite.build_model(cfg, "teacher")
    configured = cfg["teacher"]["checkpoint"]
    load_model_weights(model, path, "teacher",
                       f"replace the file teacher.checkpoint names ({path!r})" if configured else None)
    model.eval()
    return model if device is None else model.to(device)
