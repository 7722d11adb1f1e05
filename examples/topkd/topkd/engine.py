"""Training engine: device selection, seeding, the train/eval loop, atomic checkpoints and
exact resume, metrics (CSV, JSON, TensorBoard).

Exact resume: the ``latest`` checkpoint holds the student, the distiller's connectors and
buffers (CRD's memory bank), the optimizer, the scheduler, the epoch, the metric history and
every RNG state (torch CPU/CUDA, numpy, Python); the data order of epoch ``e`` depends only on
``(seed, e)`` because the loader's generator is re-seeded each epoch. An interrupted run resumed
from ``latest`` therefore ends with bit-identical weights on the CPU.
"""
from __future__ import annotations

import csv
import io
import os
import random
import time
from typing import Dict, Optional

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from . import distributed as ddp
from .distillers import Distiller
from .storage import RunFileError, atomic_save, describe, load_file, write_json, write_text


def select_device(preference: str = "auto") -> torch.device:
    """``cuda`` when available (or requested), else ``cpu``.

    Parameters
    ----------
    preference : {"auto", "cpu", "cuda"}
    """
    if preference not in ("auto", "cpu", "cuda"):
        raise ValueError(f"device must be 'auto', 'cpu' or 'cuda', got {preference!r}")
    if preference == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' requested but CUDA is not available")
    if preference == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(preference)


def seed_everything(seed: int) -> None:
    """Seed Python, numpy and torch (all devices)."""
    if not isinstance(seed, int):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    random.seed(seed)
    np.random.seed(seed % 2 ** 32)
    torch.manual_seed(seed)


def get_rng_state() -> Dict[str, object]:
    """Every RNG state as tensors and plain Python values (loadable with ``weights_only``)."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": {"keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached": float(cached)},
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: Dict[str, object]) -> None:
    """Restore a :func:`get_rng_state` snapshot."""
    torch.set_rng_state(state["torch"])
    np_state = state["numpy"]
    np.random.set_state(("MT19937", np_state["keys"].numpy().astype(np.uint32), np_state["pos"],
                         np_state["has_gauss"], np_state["cached"]))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def load_checkpoint(path: str, stage: str = "training", remedy: Optional[str] = None) -> dict:
    """Load a checkpoint safely (``weights_only=True``, tensors mapped to the CPU).

    Parameters
    ----------
    path : str
    stage : str
        The stage that wrote it (named in errors).
    remedy : str, optional
        What to do about a bad file (default: delete it and rerun ``stage``).

    Raises
    ------
    FileNotFoundError
        When ``path`` does not exist.
    topkd.storage.RunFileError
        When it cannot be loaded (empty, truncated, not loadable with ``weights_only``).
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"checkpoint not found: {path!r}")
    return load_file(path, stage, remedy)


def load_model_weights(model: nn.Module, path: str, stage: str = "teacher",
                       remedy: Optional[str] = None) -> dict:
    """Load model weights from our checkpoints or RepDistiller/mdistiller teacher files.

    Accepted: a dict with a ``model`` entry (RepDistiller, mdistiller, ours), a dict with a
    ``state_dict`` entry, or a bare state dict; a ``module.`` prefix (DataParallel) is
    stripped.

    Parameters
    ----------
    model : nn.Module
    path : str
    stage, remedy : str
        See :func:`load_checkpoint`.

    Returns
    -------
    dict
        The checkpoint's metadata (``epoch``, ``accuracy``, ... when present).

    Raises
    ------
    ValueError
        When the weights do not match the model (missing/unexpected keys are listed).
    topkd.storage.RunFileError
        When the file cannot be read.
    """
    ckpt = load_checkpoint(path, stage, remedy)
    if not isinstance(ckpt, dict):
        raise ValueError(f"{path!r} does not hold a dict of weights")
    state = ckpt.get("model", ckpt.get("state_dict", ckpt))
    if not isinstance(state, dict):
        raise ValueError(f"{path!r} does not hold a dict of weights")
    state = {k[7:] if k.startswith("module.") else k: v for k, v in state.items()}
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ValueError(f"weights in {path!r} do not match {type(model).__name__}: missing "
                         f"{missing[:5]}{'...' if len(missing) > 5 else ''}, unexpected "
                         f"{unexpected[:5]}{'...' if len(unexpected) > 5 else ''}")
    return {k: v for k, v in ckpt.items() if k in ("epoch", "accuracy", "best_acc", "arch")}


def _unpack(batch, device):
    images, targets = batch[0], batch[1]
    extra = {}
    if len(batch) > 2:
        extra["index"] = batch[2].to(device, non_blocking=True)
    if len(batch) > 3:
        extra["contrast_idx"] = batch[3].to(device, non_blocking=True)
    return (images.to(device, non_blocking=True), targets.to(device, non_blocking=True), extra)


@torch.no_grad()
def evaluate(model: nn.Module, loader, device: torch.device, amp: bool = False,
             channels_last: bool = False,
             amp_dtype: torch.dtype = torch.bfloat16) -> Dict[str, float]:
    """Top-1 accuracy (%) and mean cross-entropy of ``model(images) -> logits`` (or
    ``(logits, features)``) over ``loader``, in eval mode (the mode is restored); ``acc5`` is
    the top-5 accuracy. Under DDP each rank evaluates its shard of ``loader`` with rank 0's
    buffers and the sums are all-reduced, so the metrics are exact global averages."""
    mode = model.training
    model.eval()
    ddp.broadcast_buffers(model)
    correct5 = torch.zeros((), device=device)
    correct = torch.zeros((), device=device)
    loss = torch.zeros((), device=device)
    n = 0
    for batch in loader:
        images, targets, _ = _unpack(batch, device)
        if channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        with torch.autocast(device_type=device.type, dtype=amp_dtype, enabled=amp):
            out = model(images)
        logits = (out[0] if isinstance(out, tuple) else out).float()
        loss += F.cross_entropy(logits, targets, reduction="sum")
        correct += (logits.argmax(1) == targets).sum()
        top5 = logits.topk(min(5, logits.shape[1]), dim=1).indices
        correct5 += (top5 == targets[:, None]).any(1).sum()
        n += targets.shape[0]
    loss, correct, correct5, n = ddp.all_reduce_sums(loss, correct, correct5, n)
    model.train(mode)
    if n == 0:
        raise ValueError("evaluation loader is empty")
    return {"acc": 100.0 * float(correct) / n, "acc5": 100.0 * float(correct5) / n,
            "loss": float(loss) / n}


class Trainer:
    """SGD training of a :class:`Distiller` with the CIFAR recipe and exact resume.

    Parameters
    ----------
    distiller : Distiller
        Student (+ teacher and connectors); its learnable parameters are optimised.
    train_loader, test_loader : DataLoader
        From :func:`topkd.data.make_loader` (the train loader's ``generator`` is re-seeded
        each epoch).
    out_dir : str
        Receives ``latest.pt``, ``best.pt``, ``final.pt`` (``model`` = student weights),
        ``metrics.csv``, ``metrics.json``, ``summary.json`` and ``tb/``.
    epochs : int
    lr : float
    momentum, weight_decay : float
    milestones : sequence of int
        Epochs after which the learning rate is multiplied by ``lr_decay``.
    lr_decay : float
    seed : int
    device : str
        ``"auto"``, ``"cpu"`` or ``"cuda"``.
    amp : bool or None
        bfloat16 autocast; ``None`` = on exactly when running on CUDA.
    channels_last : bool or None
        ``None`` = on exactly when running on CUDA.
    progress : bool
        tqdm bars (rank 0 only).
    amp_dtype : {"bfloat16", "float16"}
        Autocast dtype; float16 adds a GradScaler.
    stage : str
        The pipeline stage this training is (named in the errors about its files).

    Under ``torchrun`` (see :mod:`topkd.distributed`) the loaders are split over the ranks
    (batch sizes are global), the distiller is wrapped in DDP, metrics are all-reduced and only
    rank 0 writes checkpoints, metrics and TensorBoard logs.
    """

    def __init__(self, distiller: Distiller, train_loader, test_loader, out_dir: str,
                 epochs: int, lr: float, momentum: float = 0.9, weight_decay: float = 5e-4,
                 milestones=(150, 180, 210), lr_decay: float = 0.1, seed: int = 0,
                 device: str = "auto", amp: Optional[bool] = None,
                 channels_last: Optional[bool] = None, progress: bool = True,
                 amp_dtype: str = "bfloat16", stage: str = "training"):
        if not isinstance(distiller, Distiller):
            raise TypeError(f"distiller must be a Distiller, got {type(distiller).__name__}")
        if not isinstance(epochs, int) or epochs < 1:
            raise ValueError(f"epochs must be a positive int, got {epochs!r}")
        if not lr > 0:
            raise ValueError(f"lr must be positive, got {lr!r}")
        self.device = select_device(device)
        on_gpu = self.device.type == "cuda"
        self.amp = on_gpu if amp is None else bool(amp)
        if amp_dtype not in ("bfloat16", "float16"):
            raise ValueError(f"amp_dtype must be 'bfloat16' or 'float16', got {amp_dtype!r}")
        self.amp_dtype = getattr(torch, amp_dtype)
        # float16 needs loss scaling; a disabled scaler is a pass-through
        self.scaler = torch.amp.GradScaler(self.device.type,
                                           enabled=self.amp and amp_dtype == "float16")
        self.channels_last = on_gpu if channels_last is None else bool(channels_last)
        self.distiller = distiller.to(self.device)
        if self.channels_last:
            self.distiller.to(memory_format=torch.channels_last)
        self.train_loader = ddp.shard_loader(train_loader, True, seed)
        self.test_loader = ddp.shard_loader(test_loader, False, seed)
        self.out_dir, self.epochs, self.seed, self.stage = out_dir, epochs, seed, stage
        self.progress = progress and ddp.is_main()
        self.step_module = ddp.wrap_ddp(self.distiller,
                                        getattr(self.train_loader, "batch_size", None))
        self.optimizer = torch.optim.SGD(distiller.get_learnable_parameters(), lr=lr,
                                         momentum=momentum, weight_decay=weight_decay)
        self.scheduler = torch.optim.lr_scheduler.MultiStepLR(
            self.optimizer, milestones=list(milestones), gamma=lr_decay)
        self.epoch = 0
        self.best_acc, self.best_epoch = -1.0, -1
        self.history = []
        os.makedirs(out_dir, exist_ok=True)

    def _path(self, name: str) -> str:
        return os.path.join(self.out_dir, name)

    def _save(self, obj, name: str) -> None:
        if ddp.is_main():
            atomic_save(obj, self._path(name))

    def state_dict(self) -> dict:
        """Everything :meth:`load_state_dict` needs to continue exactly."""
        return {"model": self.distiller.student.state_dict(),
                "connectors": self.distiller.connector_state_dict(),
                "optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
                "epoch": self.epoch, "best_acc": self.best_acc, "best_epoch": self.best_epoch,
                "accuracy": self.history[-1]["test_acc"] if self.history else None,
                "history": self.history, "rng": get_rng_state(), "seed": self.seed,
                "scaler": self.scaler.state_dict(), "world_size": ddp.world_size()}

    def load_state_dict(self, state: dict) -> None:
        """Restore a :meth:`state_dict` (model, connectors, optimizer, scheduler, RNG)."""
        if state.get("seed") != self.seed:
            raise ValueError(f"checkpoint was written with seed {state.get('seed')}, this run "
                             f"uses seed {self.seed}")
        self.distiller.student.load_state_dict(state["model"])
        self.distiller.load_connector_state_dict(state["connectors"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.epoch, self.history = state["epoch"], list(state["history"])
        self.best_acc, self.best_epoch = state["best_acc"], state["best_epoch"]
        set_rng_state(state["rng"])
        if state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])

    def _resume(self, latest: str) -> None:
        """Continue from the checkpoint ``latest``; a bad file is named with what to do."""
        remedy = (f"delete {latest!r} and rerun the {self.stage!r} stage (training restarts "
                  "from epoch 0)")
        state = load_checkpoint(latest, self.stage, remedy)
        try:
            self.load_state_dict(state)
        except (KeyError, TypeError, ValueError, RuntimeError) as err:
            raise RunFileError(f"{latest!r} does not hold this run's training state "
                               f"({describe(err)}): {remedy}") from err

    def train_epoch(self) -> Dict[str, float]:
        """One epoch over the training loader; returns averaged losses, accuracy, ``steps`` and
        the per-step means ``data_time`` (waiting for data) and ``step_time`` (forward,
        backward and update), in seconds."""
        from tqdm import tqdm

        self.distiller.train()
        # the epoch's shuffling (and worker seeds) depend only on (seed, epoch)
        self.train_loader.generator.manual_seed(self.seed * 100_003 + self.epoch)
        ddp.start_epoch(self.train_loader, self.epoch, self.seed)
        sums: Dict[str, torch.Tensor] = {}
        correct = torch.zeros((), device=self.device)
        n, data_time, step_time = 0, 0.0, 0.0
        tic = time.perf_counter()
        bar = tqdm(self.train_loader, desc=f"epoch {self.epoch + 1}/{self.epochs}",
                   disable=not self.progress, leave=False)
        for batch in bar:
            images, targets, extra = _unpack(batch, self.device)
            if self.channels_last:
                images = images.contiguous(memory_format=torch.channels_last)
            start = time.perf_counter()
            data_time += start - tic
            with torch.autocast(device_type=self.device.type, dtype=self.amp_dtype,
                                enabled=self.amp):
                logits, losses = self.step_module.forward_train(images, targets, **extra)
            total = sum(losses.values())
            self.optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(total).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
            for key, value in losses.items():
                sums[key] = sums.get(key, 0.0) + value.detach() * targets.shape[0]
            correct += (logits.detach().argmax(1) == targets).sum()
            n += targets.shape[0]
            tic = time.perf_counter()
            step_time += tic - start
        sums, correct, n = ddp.all_reduce_metrics(sums, correct, n)
        if n == 0:
            raise ValueError("training loader produced no batch (dataset smaller than a batch?)")
        row = {f"loss_{k}": float(v) / n for k, v in sums.items()}
        row["train_loss"] = sum(row.values())
        steps = len(self.train_loader)
        # per-step means (seconds): waiting for data, and forward + backward + update
        row.update(train_acc=100.0 * float(correct) / n, data_time=data_time / steps,
                   step_time=step_time / steps, steps=steps)
        return row

    def fit(self, resume: bool = True, stop_after: Optional[int] = None) -> Dict[str, object]:
        """Train up to ``epochs`` (continuing from ``latest.pt`` when ``resume``).

        Parameters
        ----------
        resume : bool
            Continue from ``out_dir/latest.pt`` when it exists.
        stop_after : int, optional
            Stop once this many epochs are done (simulates an interruption).

        Returns
        -------
        dict
            ``summary``: ``last_acc``, ``best_acc``, ``best_epoch``, ``epochs_done`` and timings.
        """
        from torch.utils.tensorboard import SummaryWriter

        latest = self._path("latest.pt")
        if resume and os.path.isfile(latest):
            self._resume(latest)
        elif self.epoch == 0:
            seed_everything(self.seed)
        writer = (SummaryWriter(self._path("tb"), purge_step=self.epoch + 1) if ddp.is_main()
                  else ddp.NullWriter())
        end = self.epochs if stop_after is None else min(self.epochs, stop_after)
        try:
            while self.epoch < end:
                tic = time.perf_counter()
                row = {"epoch": self.epoch + 1, "lr": self.optimizer.param_groups[0]["lr"]}
                row.update(self.train_epoch())
                self.scheduler.step()
                test = evaluate(self.distiller.student, self.test_loader, self.device, self.amp,
                                self.channels_last, self.amp_dtype)
                row.update(test_acc=test["acc"], test_acc5=test["acc5"], test_loss=test["loss"],
                           epoch_time=time.perf_counter() - tic)
                self.epoch += 1
                self.history.append(row)
                if row["test_acc"] > self.best_acc:
                    self.best_acc, self.best_epoch = row["test_acc"], self.epoch
                    self._save({"model": self.distiller.student.state_dict(),
                                "epoch": self.epoch, "accuracy": self.best_acc}, "best.pt")
                self._save(self.state_dict(), "latest.pt")
                self._write_metrics()
                if self.progress:
                    print(f"{self.stage} epoch {self.epoch}/{self.epochs}: loss "
                          f"{row['train_loss']:.4f}, top-1 train {row['train_acc']:.2f} test "
                          f"{row['test_acc']:.2f}, {row['epoch_time']:.1f} s "
                          f"({row['step_time']:.3f} s/step)", flush=True)
                for key, value in row.items():
                    if key != "epoch":
                        writer.add_scalar(key, value, self.epoch)
        finally:
            writer.close()
        summary = self.summary()
        if self.epoch >= self.epochs and ddp.is_main():
            atomic_save({"model": self.distiller.student.state_dict(), "epoch": self.epoch,
                         "accuracy": summary["last_acc"]}, self._path("final.pt"))
            write_json(summary, self._path("summary.json"))
        ddp.barrier()
        return summary

    def summary(self) -> Dict[str, object]:
        """Last- and best-epoch top-1 and top-5 plus mean timings over the run so far."""
        if not self.history:
            return {"epochs_done": 0}
        rows = self.history
        return {"last_acc": rows[-1]["test_acc"], "best_acc": self.best_acc,
                "last_top5": rows[-1]["test_acc5"], "best_top5": rows[self.best_epoch - 1]["test_acc5"],
                "best_epoch": self.best_epoch, "epochs_done": self.epoch, "seed": self.seed,
                "device": self.device.type, "world_size": ddp.world_size(),
                "step_time_mean": self._per_step("step_time"),
                "data_time_mean": self._per_step("data_time"),
                "train_seconds": sum(r["epoch_time"] for r in rows)}

    def _per_step(self, key: str) -> float:
        """Mean seconds per step of ``key`` over the epochs so far (weighted by their steps)."""
        steps = sum(r["steps"] for r in self.history)
        return sum(r[key] * r["steps"] for r in self.history) / steps

    def _write_metrics(self) -> None:
        if not ddp.is_main():
            return
        keys = []
        for row in self.history:
            keys += [k for k in row if k not in keys]
        buf = io.StringIO(newline="")
        w = csv.DictWriter(buf, fieldnames=keys)
        w.writeheader()
        w.writerows(self.history)
        write_text(buf.getvalue(), self._path("metrics.csv"))
        write_json(self.history, self._path("metrics.json"))
