"""Configuration: defaults, YAML loading (``yaml.safe_load``), presets and validation.

A pair config (see ``examples/topkd/configs/``) names the teacher and student, the distillers to
compare and the paper's numbers; everything else comes from :data:`DEFAULTS` (the CIFAR-100
recipe). :func:`validate` fails fast, before any training, on unknown models or distillers,
missing checkpoints and teacher/student pairs a distiller has no connector rule for.
"""
from __future__ import annotations

import copy
import os
from typing import Any, Dict, List

import yaml

CONFIG_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "configs")
LOW_LR_MODELS = ("MobileNetV2", "ShuffleV1", "ShuffleV2")

#: The run settings every suite config has, CIFAR or ImageNet: the run's name (default: its
#: file's), its table, the output folder (``{name}`` is filled in), the student seeds, the
#: device and whether progress lines are printed.
RUN_DEFAULTS: Dict[str, Any] = {"name": None, "table": None, "out_dir": "runs/{name}",
                                "seeds": [0], "device": "auto", "progress": True}

#: The RipsNet fit of :func:`topkd.stages.stage_ripsnet`, which both suites run.
RIPSNET_DEFAULTS: Dict[str, Any] = {"epochs": 500, "batch_size": 32, "lr": 5e-4, "patience": 50,
                                    "val_fraction": 0.1, "pooling": None}

DEFAULTS: Dict[str, Any] = {
    **RUN_DEFAULTS,
    "dataset": {"name": "cifar100", "root": "./data", "download": True, "verify": True,
                "num_workers": 4, "batch_size": 64, "train_subset": None, "test_subset": None},
    "train": {"epochs": 240, "lr": None, "momentum": 0.9, "weight_decay": 5e-4,
              "milestones": [150, 180, 210], "lr_decay": 0.1},
    "teacher": {"arch": None, "checkpoint": None, "seed": 0, "train": {}},
    "student": {"arch": None},
    "compare": ["vanilla", "kd", "topkd"],
    "distillers": {"topkd": {"name": "topkd", "gamma": 1.0, "alpha": 2.0, "delta": 5.0,
                             "temperature": 4.0},
                   # TopKD combined with CRD's contrastive term (add "topkd_crd" to compare)
                   "topkd_crd": {"name": "topkd", "gamma": 1.0, "alpha": 2.0, "delta": 5.0,
                                 "temperature": 4.0, "extra": [{"name": "crd", "beta": 0.8}]}},
    "topology": {"cloud_size": 64, "passes": 1, "shard_size": 128, "max_dim": 0,
                 "faithful": False, "num_workers": None, "ripsnet": RIPSNET_DEFAULTS},
    "paper": {},
}


def deep_merge(base: Dict[str, Any], override: Dict[str, Any]) -> Dict[str, Any]:
    """``base`` updated recursively with ``override`` (neither is modified)."""
    out = copy.deepcopy(base)
    for key, value in (override or {}).items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def preset_path(name: str) -> str:
    """Path of the preset ``name`` (a YAML file of :data:`CONFIG_DIR`).

    Raises
    ------
    ValueError
        Unknown preset (the known ones are listed).
    """
    path = os.path.join(CONFIG_DIR, f"{name}.yaml")
    if not os.path.isfile(path):
        known = sorted(f[:-5] for f in os.listdir(CONFIG_DIR) if f.endswith(".yaml"))
        raise ValueError(f"unknown preset {name!r}; known: {', '.join(known)}")
    return path


def parse_override(item: str) -> Dict[str, Any]:
    """``"a.b=value"`` → ``{"a": {"b": value}}`` with ``value`` parsed as YAML."""
    if "=" not in item:
        raise ValueError(f"override must look like key.sub=value, got {item!r}")
    key, value = item.split("=", 1)
    out: Dict[str, Any] = {}
    node = out
    parts = key.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = yaml.safe_load(value)
    return out


def read_yaml(path: str, overrides=(), kind: str = "config") -> Dict[str, Any]:
    """The YAML mapping at ``path`` (``yaml.safe_load``) with ``key.sub=value`` overrides merged in.

    ``kind`` names what the file holds in the not-found error (``"config"``, ``"grid"``).

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If the file does not hold a mapping, or an override is malformed.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{kind} file not found: {path!r}")
    with open(path) as f:
        raw = yaml.safe_load(f) or {}
    if not isinstance(raw, dict):
        raise ValueError(f"{path!r} must hold a YAML mapping, got {type(raw).__name__}")
    for item in overrides:
        raw = deep_merge(raw, parse_override(item))
    return raw


def load_config(path: str, overrides: List[str] = ()) -> Dict[str, Any]:
    """Load a pair config (or a table config listing pair configs) merged over the defaults.

    Parameters
    ----------
    path : str
        YAML file.
    overrides : list of str
        ``key.sub=value`` items applied last.

    Returns
    -------
    dict
        The full config; a table config (key ``pairs``) is returned as
        ``{"pairs": [config, ...], ...}``.
    """
    raw = read_yaml(path, overrides)
    if "pairs" in raw:
        common = {k: v for k, v in raw.items() if k not in ("pairs", "name")}
        pairs = []
        for entry in raw["pairs"]:
            sub = os.path.join(os.path.dirname(path), entry)
            pairs.append(deep_merge(load_config(sub), common))
        return {"name": raw.get("name", os.path.basename(path)[:-5]), "pairs": pairs}
    return merge_over_defaults(raw, DEFAULTS, path)


def merge_over_defaults(raw: Dict[str, Any], defaults: Dict[str, Any],
                        path: str) -> Dict[str, Any]:
    """The pair config ``raw`` read from ``path``, merged over ``defaults`` (:data:`DEFAULTS`
    or the ImageNet suite's), named after its file when it names no run, with the ``{name}``
    of ``out_dir`` filled in."""
    cfg = deep_merge(defaults, raw)
    if not cfg["name"]:
        cfg["name"] = os.path.splitext(os.path.basename(path))[0]
    cfg["out_dir"] = cfg["out_dir"].format(name=cfg["name"])
    return cfg


def default_lr(arch: str) -> float:
    """The recipe's learning rate: 0.01 for MobileNetV2 and the ShuffleNets, else 0.05."""
    return 0.01 if arch in LOW_LR_MODELS else 0.05


def distiller_spec(cfg: Dict[str, Any], entry: str) -> Dict[str, Any]:
    """The build spec ``{"name": ..., **kwargs}`` of a ``compare`` entry: an entry of
    ``cfg["distillers"]`` (which may rename, e.g. ``topkd_crd: {name: topkd, extra: [...]}``)
    or a registered distiller name with its default weights."""
    spec = dict(cfg["distillers"].get(entry) or {})
    spec.setdefault("name", entry)
    return spec


def uses_topology(spec: Dict[str, Any]) -> bool:
    """Whether a distiller spec needs the RipsNet (TopKD itself or as an extra)."""
    return spec["name"] == "topkd" or any(e.get("name") == "topkd" for e in spec.get("extra", []))


def validate(cfg: Dict[str, Any]) -> None:
    """Check a pair config before any work.

    Builds the teacher and the student, and every distiller of ``compare`` on them (TopKD with an
    untrained RipsNet of the right widths, CRD with a placeholder dataset size), so bad names,
    bad arguments and pairs without a connector rule fail here.

    Raises
    ------
    ValueError
        Unknown dataset, model, distiller or argument; no connector rule for the pair.
    FileNotFoundError
        A configured teacher checkpoint that does not exist.
    """
    from .data import DATASETS
    from .distillers import build_distiller
    from .models import build_model, canonical_name

    if cfg["dataset"]["name"] not in DATASETS:
        raise ValueError(f"dataset.name must be one of {DATASETS}, got {cfg['dataset']['name']!r}")
    for role in ("teacher", "student"):
        if not cfg[role].get("arch"):
            raise ValueError(f"config {cfg['name']!r}: {role}.arch is required")
        cfg[role]["arch"] = canonical_name(cfg[role]["arch"])
    ckpt = cfg["teacher"].get("checkpoint")
    if ckpt and not os.path.isfile(ckpt):
        raise FileNotFoundError(f"config {cfg['name']!r}: teacher.checkpoint {ckpt!r} does not exist")
    if not cfg["compare"]:
        raise ValueError(f"config {cfg['name']!r}: compare lists no distiller")
    for entry in cfg["compare"]:
        if uses_topology(distiller_spec(cfg, entry)) and \
                cfg["dataset"]["batch_size"] % cfg["topology"]["cloud_size"]:
            raise ValueError(f"config {cfg['name']!r}: dataset.batch_size "
                             f"({cfg['dataset']['batch_size']}) must be a multiple of "
                             f"topology.cloud_size ({cfg['topology']['cloud_size']}) for {entry!r}: "
                             "each minibatch holds whole point clouds")
    num_classes = 100 if cfg["dataset"]["name"] == "cifar100" else 10
    teacher = build_model(cfg["teacher"]["arch"], num_classes)
    student = build_model(cfg["student"]["arch"], num_classes)
    for entry in cfg["compare"]:
        spec = distiller_spec(cfg, entry)
        kwargs = dict(spec)
        name = kwargs.pop("name")
        try:
            kwargs = placeholder_args(cfg, kwargs, name, teacher)
            kwargs["extra"] = [placeholder_args(cfg, dict(e), e.get("name"), teacher)
                               for e in kwargs.get("extra", [])]
            build_distiller(name, student, teacher, **kwargs)
        except (ValueError, TypeError) as err:
            raise ValueError(f"config {cfg['name']!r}, distiller {entry!r} "
                             f"({cfg['student']['arch']} <- {cfg['teacher']['arch']}): {err}") from err


def placeholder_args(cfg, kwargs, name, teacher):
    """Fill the run-time arguments of ``name`` with stand-ins for :func:`validate`."""
    if name == "crd":
        kwargs.setdefault("n_data", 1000)
    if name == "topkd":
        from .stages import make_vectorizer, ripsnet_pooling
        import torchtopo

        kwargs["cloud_size"] = cfg["topology"]["cloud_size"]
        kwargs.setdefault("ripsnet", torchtopo.RipsNet.for_features(
            teacher.feature_channels()["pooled"], make_vectorizer(cfg).num_features,
            pooling=ripsnet_pooling(cfg)))
    return kwargs
