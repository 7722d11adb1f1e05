"""The suite's pipeline, one for CIFAR and ImageNet: validation before any work, the stages, and
a pair's run from teacher to table. What differs between the suites is in
:mod:`topkd.suites`; what a distiller needs is said by the distiller itself
(:class:`topkd.distillers.Distiller`'s hooks), so nothing here names a distiller.

Stages (each skipped when its outputs exist and check out, each resumable):

1. ``teacher``   train the teacher (CIFAR) or check and evaluate the configured one;
2. ``clouds``    teacher pooled features of minibatches of ``m`` images, one cloud per
   minibatch, sharded over the ranks (:mod:`topkd.generation`);
3. ``diagrams``  Rips persistence and persistence images, sharded over the ranks;
4. ``ripsnet``   fit the RipsNet on (cloud, image) pairs (:mod:`topkd.topology`);
5. ``student``   train a student with any distiller (:class:`topkd.engine.Trainer`).

The topology stages run only for the distillers whose run-time inputs need them
(:data:`INPUT_STAGES`).
"""
from __future__ import annotations

import contextlib
import os
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple

from torch import nn

from . import distributed as D
from .config import ConfigError, check_config, distiller_spec
from .data import SeededDataset
from .distillers import DISTILLERS, RUNTIME_INPUTS, Distiller, build_distiller, suggest
from .engine import seed_everything, select_device
from .generation import generate_clouds, generate_diagrams
from .layout import layout
from .report import log
from .storage import RunLock, RunLockedError, read_json, write_json
from .suites import load_teacher, suite_of
from .topology import cloud_size, load_ripsnet, load_vectorizer, make_vectorizer, ripsnet_pooling
from .topology import stage_ripsnet as _fit_ripsnet

__all__ = ["STAGES", "INPUT_STAGES", "RunInputs", "entry_inputs", "entry_needs_teacher",
           "topology_stages", "build_run_distiller", "validate", "stage_teacher", "stage_clouds",
           "stage_diagrams", "stage_ripsnet", "student_trainer", "stage_student", "run_pair",
           "locked"]

STAGES = ("teacher", "clouds", "diagrams", "ripsnet", "student")
#: The stages that make a run-time input (the others come from the config and the data).
INPUT_STAGES: Dict[str, Tuple[str, ...]] = {"vectorizer": ("clouds", "diagrams"),
                                            "ripsnet": ("clouds", "diagrams", "ripsnet")}
#: The stages that read the teacher's weights.
TEACHER_STAGES = ("teacher", "clouds", "student")


# ------------------------------------------------------------------------- distiller entries

def _members(cfg: Dict[str, Any], entry: str) -> List[Tuple[type, Dict[str, Any]]]:
    """``(class, spec)`` of a ``compare`` entry's distiller and of each of its ``extra``."""
    spec = distiller_spec(cfg, entry)
    out = []
    for sub in [spec, *spec.get("extra", [])]:
        name = sub["name"]
        if name not in DISTILLERS:
            raise ConfigError(f"config {cfg['name']!r}, distiller {entry!r}: unknown distiller "
                              f"{name!r}{suggest(name, DISTILLERS)}; known: "
                              f"{', '.join(sorted(DISTILLERS))}")
        out.append((DISTILLERS[name], sub))
    return out


def entry_inputs(cfg: Dict[str, Any], entry: str) -> set:
    """The run-time inputs (keys of :data:`topkd.distillers.RUNTIME_INPUTS`) of a ``compare``
    entry."""
    return {source for cls, _ in _members(cfg, entry) for source in cls.inputs().values()}


def entry_needs_teacher(cfg: Dict[str, Any], entry: str) -> bool:
    """Whether a ``compare`` entry reads the teacher (any member with ``needs_teacher``)."""
    members = _members(cfg, entry)
    return len(members) > 1 or members[0][0].needs_teacher


def topology_stages(cfg: Dict[str, Any], entries: Iterable[str]) -> Tuple[str, ...]:
    """The topology stages that the ``entries`` need, in pipeline order."""
    needed = {stage for e in entries for name in entry_inputs(cfg, e)
              for stage in INPUT_STAGES.get(name, ())}
    return tuple(s for s in STAGES if s in needed)


class RunInputs:
    """The run-time inputs of one pair (:data:`topkd.distillers.RUNTIME_INPUTS`), computed when
    a distiller asks for them.

    Parameters
    ----------
    cfg : dict
    num_train : int, optional
        The training-set size (stand-in: 1000 when ``placeholder``).
    placeholder : bool
        Stand-ins for :func:`validate`, before any stage ran: an unfitted vectoriser and an
        untrained RipsNet of the right widths.
    teacher_dim : int, optional
        The teacher's pooled width (for the stand-in RipsNet).
    """

    def __init__(self, cfg: Dict[str, Any], num_train: Optional[int] = None,
                 placeholder: bool = False, teacher_dim: Optional[int] = None):
        self.cfg, self.num_train, self.placeholder = cfg, num_train, placeholder
        self.teacher_dim = teacher_dim
        self._cache: Dict[str, Any] = {}

    def _compute(self, name: str):
        cfg = self.cfg
        if name == "input_size":
            return suite_of(cfg).input_size(cfg)
        if name == "num_train":
            return 1000 if self.placeholder else self.num_train
        if name == "batch_size":
            return cfg["dataset"]["batch_size"]
        if name == "cloud_size":
            return cloud_size(cfg)
        if name == "gather_clouds":
            return cfg["topology"]["gather"]
        if name == "vectorizer":
            return make_vectorizer(cfg) if self.placeholder else load_vectorizer(cfg)
        if name == "ripsnet":
            if self.placeholder:
                import torchtopo

                return torchtopo.RipsNet.for_features(self.teacher_dim,
                                                      make_vectorizer(cfg).num_features,
                                                      pooling=ripsnet_pooling(cfg))
            return load_ripsnet(cfg, cloud_size(cfg))[0]
        raise KeyError(f"unknown run-time input {name!r}; known: {sorted(RUNTIME_INPUTS)}")

    def __getitem__(self, name: str):
        if name not in self._cache:
            self._cache[name] = self._compute(name)
        return self._cache[name]


def _kwargs(cls: type, spec: Dict[str, Any], inputs: RunInputs, where: str) -> Dict[str, Any]:
    kwargs = {k: v for k, v in spec.items() if k not in ("name", "extra")}
    for arg, source in cls.inputs().items():
        if arg in kwargs:
            raise ConfigError(f"{where}: {arg!r} is a run-time input the pipeline fills in "
                              f"({RUNTIME_INPUTS[source]}); remove it from the distiller entry")
        kwargs[arg] = inputs[source]
    return kwargs


def build_run_distiller(cfg: Dict[str, Any], entry: str, student: nn.Module,
                        teacher: Optional[nn.Module], inputs: RunInputs) -> Distiller:
    """The distiller of a ``compare`` entry on ``student`` and ``teacher``, its arguments those
    of the config and its run-time inputs those of ``inputs``.

    Raises
    ------
    ConfigError
        Unknown distiller, or a run-time input set in the config.
    ValueError, TypeError
        Arguments the distiller refuses.
    """
    members = _members(cfg, entry)
    where = f"config {cfg['name']!r}, distiller {entry!r}"
    main_cls, main_spec = members[0]
    extra = [dict(_kwargs(cls, spec, inputs, where), name=spec["name"]) for cls, spec in members[1:]]
    return build_distiller(main_spec["name"], student, teacher, extra=extra,
                           **_kwargs(main_cls, main_spec, inputs, where))


# -------------------------------------------------------------------------------- validation

def validate(cfg: Dict[str, Any], stages: Sequence[str] = STAGES) -> None:
    """Check a pair config before any work: every value (:func:`topkd.config.check_config`),
    the suite's rules, the teacher's weights where ``stages`` read them, and every distiller of
    ``compare`` built on the models with stand-in run-time inputs, so bad names, bad arguments
    and pairs without a connector rule fail here.

    Raises
    ------
    ConfigError
        Naming the key or the distiller entry and the problem.
    """
    check_config(cfg)
    suite = suite_of(cfg)
    suite.check(cfg)
    weights = suite.teacher_weights(cfg)
    configured = cfg["teacher"]["checkpoint"]
    if any(s in TEACHER_STAGES for s in stages):
        if weights is None:
            raise ConfigError(f"config {cfg['name']!r}: teacher.checkpoint is required: point it "
                              "to a local weight file (e.g. torchvision's "
                              "~/.cache/torch/hub/checkpoints/resnet34-b627a593.pth); nothing is "
                              "downloaded")
        if configured and not os.path.isfile(configured):
            raise ConfigError(f"config {cfg['name']!r}: teacher.checkpoint {configured!r} does "
                              "not exist")
    teacher, student = suite.build_model(cfg, "teacher"), suite.build_model(cfg, "student")
    inputs = RunInputs(cfg, placeholder=True, teacher_dim=teacher.feature_channels()["pooled"])
    for entry in cfg["compare"]:
        try:
            build_run_distiller(cfg, entry, student, teacher, inputs)
        except ConfigError:
            raise
        except (ValueError, TypeError) as err:
            raise ConfigError(f"config {cfg['name']!r}, distiller {entry!r} "
                              f"({cfg['student']['arch']} <- {cfg['teacher']['arch']}): "
                              f"{err}") from err


# ------------------------------------------------------------------------------------ stages

def stage_teacher(cfg: Dict[str, Any]) -> Dict[str, Any]:
    """The teacher stage of the config's suite (:meth:`topkd.suites.Suite.stage_teacher`)."""
    summary = suite_of(cfg).stage_teacher(cfg)
    top1 = summary.get("top1")
    log(cfg, f"teacher {cfg['teacher']['arch']}: top-1 "
             f"{'n/a' if top1 is None else f'{top1:.2f}'}")
    return summary


def stage_clouds(cfg: Dict[str, Any]) -> Dict[str, Any]:
    """Teacher point clouds: the pooled penultimate features ``(m, D)`` of each minibatch of
    ``m = cloud_size(cfg)`` augmented training images, ``topology.passes`` passes over the data,
    as float32 shards ``(S, m, D)`` of ``topology.shard_size`` clouds, sharded over the ranks
    (:func:`topkd.generation.generate_clouds`). The teacher runs in eval mode;
    ``topology.faithful`` reproduces the official code's BatchNorm train mode (on a copy);
    bfloat16 autocast as ``train.amp`` says (``null``: on CUDA)."""
    topo = cfg["topology"]
    device = select_device(cfg["device"])
    train, _ = suite_of(cfg).datasets(cfg)
    seed = cfg["teacher"]["seed"]
    meta = generate_clouds(load_teacher(cfg, device), SeededDataset(train, seed), layout(cfg),
                           cloud_size(cfg), topo["shard_size"], topo["passes"], seed,
                           topo["faithful"], device, cfg["dataset"]["num_workers"],
                           cfg["progress"], cfg["train"].get("amp"))
    log(cfg, f"clouds: {meta['num_clouds']} clouds of {meta['cloud_size']} points")
    return meta


def stage_diagrams(cfg: Dict[str, Any]) -> Dict[str, Any]:
    """Diagrams and images of the clouds, sharded over the ranks
    (:func:`topkd.generation.generate_diagrams`)."""
    meta = generate_diagrams(cfg)
    log(cfg, f"diagrams: {meta['num_images']} images of {meta['num_features']} features")
    return meta


def stage_ripsnet(cfg: Dict[str, Any]) -> Dict[str, Any]:
    """The RipsNet fit on rank 0 (:func:`topkd.topology.stage_ripsnet`)."""
    return _fit_ripsnet(cfg)


def student_trainer(cfg: Dict[str, Any], entry: str, seed: int,
                    out_dir: Optional[str] = None):
    """Everything a student run needs, on this rank: models, the distiller of ``entry`` with
    its run-time inputs, its training set as the distiller needs it, and the suite's
    :class:`topkd.engine.Trainer` (which wraps it in DDP under ``torchrun``).

    Parameters
    ----------
    cfg : dict
    entry : str
        A ``compare`` entry.
    seed : int
    out_dir : str, optional
        Default: the run layout's student folder.
    """
    suite = suite_of(cfg)
    train, test = suite.datasets(cfg)
    device = select_device(cfg["device"])
    seed_everything(seed)
    student = suite.build_model(cfg, "student").to(device)
    teacher = load_teacher(cfg, device) if entry_needs_teacher(cfg, entry) else None
    distiller = build_run_distiller(cfg, entry, student, teacher,
                                    RunInputs(cfg, num_train=len(train)))
    return suite.trainer(cfg, distiller, distiller.prepare_dataset(train), test,
                         out_dir or layout(cfg).student(entry, seed), seed,
                         cfg["student"]["arch"], "student")


def stage_student(cfg: Dict[str, Any], entry: str, seed: int, resume: bool = True,
                  stop_after: Optional[int] = None) -> Dict[str, Any]:
    """Train the student with the distiller of ``compare`` entry ``entry`` and seed ``seed``.
    Skipped when its ``summary.json`` exists.

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
        The run summary (``last_acc``, ``best_acc``, ``last_top5``, ``best_top5``,
        ``best_epoch``, timings) plus ``distiller``, ``seed`` and ``world_size``.
    """
    out = layout(cfg).student(entry, seed)
    summary_path = os.path.join(out, "summary.json")
    if os.path.isfile(summary_path):
        summary = read_json(summary_path, "student")
        if summary.get("distiller") == entry:
            return summary
    if not resume and os.path.isfile(os.path.join(out, "latest.pt")):
        raise ConfigError(f"{out!r} holds a latest.pt checkpoint: pass --resume to continue it "
                          "or choose another out_dir")
    log(cfg, f"student {cfg['student']['arch']} with {entry}, seed {seed}, "
             f"{D.world_size()} rank(s)")
    trainer = student_trainer(cfg, entry, seed)
    summary = trainer.fit(resume=resume, stop_after=stop_after)
    if summary["epochs_done"] < trainer.epochs:
        return summary
    summary.update(distiller=entry, seed=seed)
    if D.is_main():
        write_json(summary, summary_path)
    D.barrier()
    log(cfg, f"student {entry} seed {seed}: last {summary['last_acc']:.2f} "
             f"best {summary['best_acc']:.2f}")
    return summary


STAGE_FUNCTIONS: Dict[str, Callable[[Dict[str, Any]], Dict[str, Any]]] = {
    "teacher": stage_teacher, "clouds": stage_clouds, "diagrams": stage_diagrams,
    "ripsnet": stage_ripsnet}


def run_pair(cfg: Dict[str, Any], entries: Optional[Sequence[str]] = None,
             seeds: Optional[Sequence[int]] = None, resume: bool = True) -> List[Dict[str, Any]]:
    """Every stage for one pair: teacher, then the topology stages the distillers of
    ``entries`` need, then one student per entry and seed.

    Parameters
    ----------
    entries : list of str, optional
        ``compare`` entries; default all of ``cfg["compare"]``.
    seeds : list of int, optional
        Default ``cfg["seeds"]``.
    resume : bool
        See :func:`stage_student`.

    Returns
    -------
    list of dict
        One row per student run, with the keys of :data:`topkd.report.RESULT_COLUMNS`
        (``ripsnet_*``: the pair's RipsNet quality, ``None`` when no distiller needs one).
    """
    entries = list(entries or cfg["compare"])
    seeds = list(seeds if seeds is not None else cfg["seeds"])
    teacher = stage_teacher(cfg)
    done = {stage: STAGE_FUNCTIONS[stage](cfg) for stage in topology_stages(cfg, entries)}
    ripsnet = done.get("ripsnet", {})
    rows = []
    for entry in entries:
        for seed in seeds:
            s = stage_student(cfg, entry, seed, resume)
            rows.append({"pair": cfg["name"], "teacher": cfg["teacher"]["arch"],
                         "student": cfg["student"]["arch"], "distiller": entry, "seed": seed,
                         "last_acc": s["last_acc"], "best_acc": s["best_acc"],
                         "last_top5": s.get("last_top5"), "best_top5": s.get("best_top5"),
                         "best_epoch": s["best_epoch"], "step_time": s["step_time_mean"],
                         "teacher_top1": teacher.get("top1"), "teacher_top5": teacher.get("top5"),
                         **{f"ripsnet_{k}": ripsnet.get(k)
                            for k in ("heldout_mse", "constant_mse", "r2")}})
    return rows


@contextlib.contextmanager
def locked(folders: Iterable[str]):
    """Hold the :class:`topkd.storage.RunLock` of every folder for the block (rank 0 takes
    them; every rank stops when it cannot).

    Raises
    ------
    topkd.storage.RunLockedError
        When another process holds one of them.
    """
    locks, error = [], None
    if D.is_main():
        try:
            for folder in sorted(set(folders)):
                locks.append(RunLock(folder).acquire())
        except RunLockedError as err:
            error = err
    (held,) = D.all_reduce_sums(0 if error else 1)
    try:
        if error is not None:
            raise error
        if held < D.world_size():
            raise RunLockedError("rank 0 could not lock the run folder (see its message)")
        yield
    finally:
        for lock in locks:
            lock.release()
