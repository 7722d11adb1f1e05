"""Configuration: defaults of both suites, YAML loading (``yaml.safe_load``), presets, and a
check of every key and value before any work.

A pair config (see ``examples/topkd/configs/``) names the teacher and student, the distillers to
compare and the paper's numbers; everything else comes from :data:`DEFAULTS` (the CIFAR-100
recipe) or :data:`IMAGENET_DEFAULTS`. :func:`check_config` refuses unknown keys (with the
closest known one) and every value of the wrong type or range, so a typo never runs silently and
a bad value never fails hours later; :func:`topkd.pipeline.validate` then builds the models and
distillers. Every problem is a :class:`ConfigError` naming the key.
"""
from __future__ import annotations

import copy
import difflib
import numbers
import os
from typing import Any, Callable, Dict, List, Optional, Sequence

import yaml

__all__ = ["ConfigError", "CONFIG_DIR", "RUN_DEFAULTS", "RIPSNET_DEFAULTS", "DEFAULTS",
           "FAITHFUL", "FAITHFUL_DISTILLER_ARGS", "IMAGENET_DEFAULTS", "faithful_overrides", "deep_merge", "preset_path", "parse_override", "read_yaml",
           "load_config", "check_config", "distiller_spec"]

CONFIG_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "configs")


class ConfigError(ValueError):
    """A configuration that cannot run: the message names the key and what it expects."""


#: The run settings every suite config has: the run's name (default: its file's), its table,
#: the output folder (``{name}`` is filled in), the student seeds, the device and whether
#: progress lines are printed.
RUN_DEFAULTS: Dict[str, Any] = {"name": None, "table": None, "out_dir": "runs/{name}",
                                "seeds": [0], "device": "auto", "progress": True}

#: The RipsNet fit of :func:`topkd.topology.stage_ripsnet`, which both suites run
#: (``torchtopo.fit_ripsnet``'s arguments; ``val_batch_size: null`` = ``batch_size``;
#: ``data_init``: the RipsNet's ``input_norm`` and ``output_bias``, standardised inputs and an
#: output started at the mean training image, set from the training data by the fit).
RIPSNET_DEFAULTS: Dict[str, Any] = {"epochs": 500, "batch_size": 32, "val_batch_size": None,
                                    "lr": 5e-4, "patience": 50, "min_delta": 0.0,
                                    "val_fraction": 0.1, "split": "random", "pooling": None,
                                    "data_init": False}

#: The CIFAR-100 suite (``run_cifar.py``): RepDistiller's recipe. Distiller weights are the
#: distillers' own defaults (their constructors); ``distillers`` only adds entries or changes
#: weights.
DEFAULTS: Dict[str, Any] = {
    **RUN_DEFAULTS,
    "dataset": {"name": "cifar100", "root": "./data", "download": True, "verify": True,
                "num_workers": 4, "batch_size": 64, "drop_last": True, "train_subset": None,
                "test_subset": None, "image_size": 32},
    "train": {"epochs": 240, "lr": None, "momentum": 0.9, "weight_decay": 5e-4,
              "milestones": [150, 180, 210], "lr_decay": 0.1, "amp": None,
              "channels_last": None},
    # weights: the teacher's epoch the later stages read ("last" or "best" test epoch)
    "teacher": {"arch": None, "checkpoint": None, "seed": 0, "weights": "last", "train": {}},
    "student": {"arch": None},
    "compare": ["vanilla", "kd", "topkd"],
    # TopKD combined with CRD's contrastive term (add "topkd_crd" to compare)
    "distillers": {"topkd_crd": {"name": "topkd", "extra": [{"name": "crd"}]}},
    "topology": {"cloud_size": 64, "gather": None, "passes": 16, "shard_size": 128, "max_dim": 0,
                 "faithful": False, "num_workers": None, "ripsnet": RIPSNET_DEFAULTS},
    "paper": {},
}

#: What ``topology.faithful: true`` changes in a CIFAR config, the official TopKD code's choices
#: (``generate_PCD_PI.py``, ``RipsNet_modules.py``, ``train_student.sh``); a key the config or a
#: ``--set`` gives itself keeps its value. The teacher's BatchNorm train mode during cloud
#: extraction and the official 20×20 image follow from ``topology.faithful`` itself.
FAITHFUL: Dict[str, Any] = {
    "seeds": [0, 1, 2, 3, 4],  # 5 trials (the official runs draw a random seed each)
    "dataset": {"drop_last": False},  # the final 50000 - 781 * 64 = 16-image batch is kept
    "train": {"amp": False, "channels_last": False},  # float32 everywhere
    "teacher": {"weights": "best"},  # <model>_best.pth: the best test epoch
    "topology": {"passes": 256, "ripsnet": {
        "epochs": 25_000, "batch_size": 64, "val_batch_size": 32, "lr": 5e-4, "patience": 50,
        "min_delta": 1e-10, "val_fraction": 0.25, "split": "ordered", "data_init": False}},
}

#: Distiller arguments ``topology.faithful: true`` sets wherever the distiller is used (also as
#: an ``extra``) unless the entry sets them: CRD's negatives without replacement, as
#: RepDistiller's ``CIFAR100InstanceSample`` draws them.
FAITHFUL_DISTILLER_ARGS: Dict[str, Dict[str, Any]] = {"crd": {"replacement": False}}

#: The ImageNet-1K suite (``run_imagenet.py``): 100 epochs, SGD 0.9, weight decay 1e-4, lr ×0.1
#: at 30/60/90, global batch 256 with lr 0.1 scaled linearly with the global batch.
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
                   "topkd": {"name": "topkd", "gamma": 0.5, "alpha": 0.5, "temperature": 1.0}},
    "topology": {"cloud_size": None, "gather": None, "passes": 1, "shard_size": 128,
                 "max_dim": 0, "faithful": False, "num_workers": None,
                 "ripsnet": RIPSNET_DEFAULTS},
    "paper": {},
}

#: Sections whose keys are free: the paper's numbers and the distiller entries (their
#: arguments are checked when :func:`topkd.pipeline.validate` builds them).
FREE_SECTIONS = ("paper", "distillers")
#: Sections whose keys are all optional (overrides of another section).
PARTIAL_SECTIONS = ("teacher.train",)


def _show(value) -> str:
    """A value as the YAML a user would write it (``null``, ``true``, ``'kd'``)."""
    return {None: "null", True: "true", False: "false"}.get(value, repr(value)) \
        if value is None or isinstance(value, bool) else repr(value)


# ---------------------------------------------------------------------------- value checks

def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool) and v == v and abs(v) != float("inf")


def _int(low: int, optional: bool = False) -> Callable[[Any], Optional[str]]:
    def check(v):
        if (v is None and optional) or (_is_int(v) and v >= low):
            return None
        return f"an int >= {low}{' or null' if optional else ''}"
    return check


def _number(low: float = 0.0, strict: bool = False, high: Optional[float] = None,
            optional: bool = False) -> Callable[[Any], Optional[str]]:
    def check(v):
        if v is None and optional:
            return None
        ok = _is_number(v) and (v > low if strict else v >= low) and (high is None or v <= high)
        if ok:
            return None
        rng = f"{'>' if strict else '>='} {low:g}" + ("" if high is None else f" and <= {high:g}")
        return f"a number {rng}{' or null' if optional else ''}"
    return check


def _choice(*choices) -> Callable[[Any], Optional[str]]:
    def check(v):
        return None if v in choices and not isinstance(v, bool) or (v is None and None in choices) \
            else "one of " + ", ".join("null" if c is None else repr(c) for c in choices)
    return check


def _flag(optional: bool = False) -> Callable[[Any], Optional[str]]:
    def check(v):
        return None if isinstance(v, bool) or (optional and v is None) else \
            f"true or false{' or null' if optional else ''}"
    return check


def _text(optional: bool = False) -> Callable[[Any], Optional[str]]:
    def check(v):
        return None if (isinstance(v, str) and v) or (optional and v is None) else \
            f"a non-empty string{' or null' if optional else ''}"
    return check


def _int_list(low: int, increasing: bool = False, unique: bool = False,
              empty: bool = True) -> Callable[[Any], Optional[str]]:
    def check(v):
        ok = isinstance(v, list) and all(_is_int(x) and x >= low for x in v) and (empty or v)
        if ok and increasing:
            ok = all(a < b for a, b in zip(v, v[1:]))
        if ok and unique:
            ok = len(set(v)) == len(v)
        if ok:
            return None
        what = "increasing " if increasing else "distinct " if unique else ""
        return f"a {'' if empty else 'non-empty '}list of {what}ints >= {low}, e.g. [{low}, {low + 1}]"
    return check


def _entries(v) -> Optional[str]:
    if isinstance(v, list) and v and all(isinstance(x, str) and x for x in v) \
            and len(set(v)) == len(v):
        return None
    hint = f"; write [{v}]" if isinstance(v, str) else ""
    return f"a non-empty list of distinct distiller entries, e.g. [kd, topkd]{hint}"


def _mapping(v) -> Optional[str]:
    return None if isinstance(v, dict) else "a mapping"


_TRAIN = {"epochs": _int(1), "lr": _number(strict=True, optional=True), "momentum": _number(high=1),
          "weight_decay": _number(), "milestones": _int_list(1, increasing=True),
          "lr_decay": _number(strict=True, high=1), "amp": _flag(optional=True),
          "channels_last": _flag(optional=True)}
_TOPOLOGY = {"gather": _flag(optional=True), "passes": _int(1), "shard_size": _int(1),
             "max_dim": _choice(0, 1), "faithful": _flag(), "num_workers": _int(1, optional=True),
             "ripsnet.epochs": _int(1), "ripsnet.batch_size": _int(1),
             "ripsnet.val_batch_size": _int(1, optional=True),
             "ripsnet.lr": _number(strict=True), "ripsnet.patience": _int(1),
             "ripsnet.min_delta": _number(),
             "ripsnet.val_fraction": _number(strict=True, high=0.9),
             "ripsnet.split": _choice("random", "ordered"),
             "ripsnet.pooling": _choice(None, "mean", "sum"), "ripsnet.data_init": _flag()}
_RUN = {"name": _text(optional=True), "table": lambda v: None if v is None or _is_int(v) or
        (isinstance(v, str) and v) else "an int, a name or null", "out_dir": _text(),
        "seeds": _int_list(0, unique=True, empty=False), "device": _choice("auto", "cpu", "cuda"),
        "progress": _flag(), "compare": _entries, "student.arch": _text(),
        "teacher.arch": _text(), "teacher.checkpoint": _text(optional=True),
        "teacher.seed": _int(0)}
_CIFAR_ONLY = {"teacher.weights": _choice("last", "best"), "dataset.drop_last": _flag(),
               "dataset.image_size": _int(8)}

#: Checks of every leaf of :data:`DEFAULTS`, by dotted key: each returns ``None`` or what the
#: value should be.
CHECKS: Dict[str, Callable[[Any], Optional[str]]] = {
    **_RUN, **_CIFAR_ONLY,
    **{f"train.{k}": c for k, c in _TRAIN.items()},
    **{f"teacher.train.{k}": c for k, c in _TRAIN.items()},
    "dataset.name": _choice("cifar100", "digits"), "dataset.root": _text(),
    "dataset.download": _flag(), "dataset.verify": _flag(), "dataset.num_workers": _int(0),
    "dataset.batch_size": _int(1), "dataset.train_subset": _int(1, optional=True),
    "dataset.test_subset": _int(1, optional=True),
    "topology.cloud_size": _int(2), **{f"topology.{k}": c for k, c in _TOPOLOGY.items()},
}

#: Checks of every leaf of :data:`IMAGENET_DEFAULTS`.
IMAGENET_CHECKS: Dict[str, Callable[[Any], Optional[str]]] = {
    **_RUN,
    **{f"train.{k}": c for k, c in _TRAIN.items()},
    "train.base_lr": _number(strict=True), "train.base_batch_size": _int(1),
    "train.amp_dtype": _choice("bfloat16", "float16"),
    "train.norm": _choice("batch", "sync", "frozen"),
    "dataset.name": _choice("imagenet"), "dataset.root": _text(), "dataset.num_classes": _int(2),
    "dataset.batch_size": _int(1), "dataset.eval_batch_size": _int(1),
    "dataset.num_workers": _int(0), "dataset.input_size": _int(32), "dataset.resize": _int(32),
    "topology.cloud_size": _int(2, optional=True),
    **{f"topology.{k}": c for k, c in _TOPOLOGY.items()},
}


def _leaves(tree: Dict[str, Any], prefix: str = "") -> Dict[str, Any]:
    out = {}
    for key, value in tree.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and key not in FREE_SECTIONS and value != {}:
            out.update(_leaves(value, path + "."))
        else:
            out[path] = value
    return out


def _sections(defaults: Dict[str, Any], prefix: str = "") -> List[str]:
    out = []
    for key, value in defaults.items():
        if isinstance(value, dict):
            out.append(f"{prefix}{key}")
            if key not in FREE_SECTIONS:
                out += _sections(value, f"{prefix}{key}.")
    return out


def _known_keys(defaults: Dict[str, Any]) -> Dict[str, bool]:
    """Every dotted key of ``defaults`` (value: whether it is a section); ``teacher.train``
    takes the keys of ``train``."""
    keys = {path: False for path in _leaves(defaults)}
    keys.update({path: True for path in _sections(defaults)})
    if "teacher" in defaults and "train" in defaults["teacher"]:
        keys.update({f"teacher.train.{k}": False for k in defaults["train"]})
        keys["teacher.train"] = True
    return keys


def check_keys(raw: Dict[str, Any], defaults: Dict[str, Any], where: str = "config",
               prefix: str = "") -> None:
    """Refuse keys of ``raw`` that ``defaults`` does not have, with the closest known key.

    Raises
    ------
    ConfigError
    """
    known = _known_keys(defaults)
    for key, value in raw.items():
        path = f"{prefix}{key}"
        if path not in known:
            siblings = [k for k in known if k.rsplit(".", 1)[0] == prefix.rstrip(".")
                        or (not prefix and "." not in k)]
            close = difflib.get_close_matches(path, siblings, n=1, cutoff=0.6) or \
                difflib.get_close_matches(path, known, n=1, cutoff=0.75)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(f"{where}: unknown key {path!r}{hint}")
        if known[path] and path not in FREE_SECTIONS and isinstance(value, dict):
            check_keys(value, defaults, where, path + ".")


def check_config(cfg: Dict[str, Any], checks: Optional[Dict[str, Callable]] = None) -> None:
    """Check the type and range of every value of a merged pair config (see :data:`CHECKS`
    and :data:`IMAGENET_CHECKS`; the suite is chosen by ``dataset.name`` when ``checks`` is not
    given) and the shape of its ``distillers`` entries.

    Raises
    ------
    ConfigError
        Naming the key, the value and what it should be.
    """
    if checks is None:
        imagenet = isinstance(cfg.get("dataset"), dict) and cfg["dataset"].get("name") == "imagenet"
        checks = IMAGENET_CHECKS if imagenet else CHECKS
    where = f"config {cfg.get('name')!r}" if cfg.get("name") else "config"
    sections = {k.rsplit(".", 1)[0] for k in checks if "." in k}
    sections |= {s.rsplit(".", 1)[0] for s in sections if "." in s}
    for section in sorted(sections | set(FREE_SECTIONS), key=len):
        node = _get(cfg, section)
        if not isinstance(node, dict):
            raise ConfigError(f"{where}: {section} must be a mapping, got {_show(node)}")
    for key, check in checks.items():
        parent, leaf = key.rsplit(".", 1) if "." in key else ("", key)
        if parent in PARTIAL_SECTIONS and leaf not in _get(cfg, parent):
            continue
        value = _get(cfg, key)
        problem = check(value)
        if problem:
            raise ConfigError(f"{where}: {key} must be {problem}, got {_show(value)}")
    for entry, spec in cfg["distillers"].items():
        _check_spec(spec, f"{where}: distillers.{entry}")


def _check_spec(spec, where: str) -> None:
    if not isinstance(spec, dict):
        raise ConfigError(f"{where} must be a mapping of arguments, got {spec!r}")
    if "name" in spec and not (isinstance(spec["name"], str) and spec["name"]):
        raise ConfigError(f"{where}.name must be a distiller name, got {spec['name']!r}")
    extra = spec.get("extra", [])
    if not isinstance(extra, list):
        raise ConfigError(f"{where}.extra must be a list of distiller specs, got {extra!r}")
    for i, sub in enumerate(extra):
        if not isinstance(sub, dict) or "name" not in sub:
            raise ConfigError(f"{where}.extra[{i}] must be a mapping with a 'name', got {sub!r}")
        _check_spec(sub, f"{where}.extra[{i}]")


def _get(cfg: Dict[str, Any], dotted: str):
    node = cfg
    for part in dotted.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return node


# ---------------------------------------------------------------------------------- loading

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
    ConfigError
        Unknown preset (the closest and all known ones are listed).
    """
    path = os.path.join(CONFIG_DIR, f"{name}.yaml")
    if not os.path.isfile(path):
        known = sorted(f[:-5] for f in os.listdir(CONFIG_DIR) if f.endswith(".yaml"))
        close = difflib.get_close_matches(str(name), known, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigError(f"unknown preset {name!r}{hint}; known: {', '.join(known)}")
    return path


def parse_override(item: str) -> Dict[str, Any]:
    """``"a.b=value"`` → ``{"a": {"b": value}}`` with ``value`` parsed as YAML."""
    if not isinstance(item, str) or "=" not in item or not item.split("=", 1)[0]:
        raise ConfigError(f"override must look like key.sub=value, got {item!r}")
    key, value = item.split("=", 1)
    try:
        parsed = yaml.safe_load(value)
    except yaml.YAMLError as err:
        raise ConfigError(f"override {item!r}: the value is not valid YAML ({err})") from err
    out: Dict[str, Any] = {}
    node = out
    parts = key.split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = parsed
    return out


def read_yaml(path: str, overrides: Sequence[str] = (), kind: str = "config") -> Dict[str, Any]:
    """The YAML mapping at ``path`` (``yaml.safe_load``) with ``key.sub=value`` overrides merged in.

    ``kind`` names what the file holds in errors (``"config"``, ``"grid"``).

    Raises
    ------
    ConfigError
        If ``path`` does not exist, is not valid YAML or does not hold a mapping, or an
        override is malformed.
    """
    if not isinstance(path, str) or not os.path.isfile(path):
        raise ConfigError(f"{kind} file not found: {path!r}")
    try:
        with open(path) as f:
            raw = yaml.safe_load(f) or {}
    except yaml.YAMLError as err:
        raise ConfigError(f"{kind} file {path!r} is not valid YAML: {err}") from err
    if not isinstance(raw, dict):
        raise ConfigError(f"{path!r} must hold a YAML mapping, got {type(raw).__name__}")
    for item in overrides:
        raw = deep_merge(raw, parse_override(item))
    return raw


def load_config(path: str, overrides: Sequence[str] = (),
                defaults: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """Load a pair config (or a table config listing pair configs) merged over the defaults,
    with every key and value checked.

    Parameters
    ----------
    path : str
        YAML file.
    overrides : list of str
        ``key.sub=value`` items applied last.
    defaults : dict, optional
        :data:`DEFAULTS` (the default) or :data:`IMAGENET_DEFAULTS`.

    Returns
    -------
    dict
        The full config; a table config (key ``pairs``) is returned as
        ``{"name": ..., "pairs": [config, ...]}``.

    Raises
    ------
    ConfigError
        Missing file, unknown key (with the closest known one), bad value.
    """
    defaults = DEFAULTS if defaults is None else defaults
    raw = read_yaml(path, overrides)
    if "pairs" in raw:
        pairs = raw["pairs"]
        if not isinstance(pairs, list) or not pairs or not all(isinstance(p, str) for p in pairs):
            raise ConfigError(f"{path!r}: pairs must be a non-empty list of config files, "
                              f"got {pairs!r}")
        common = {k: v for k, v in raw.items() if k not in ("pairs", "name")}
        check_keys(common, defaults, f"table config {path!r}")
        out = []
        for entry in pairs:
            sub = os.path.join(os.path.dirname(path), entry)
            out.append(_finish(deep_merge(read_yaml(sub), common), defaults, sub))
        return {"name": raw.get("name", os.path.splitext(os.path.basename(path))[0]),
                "pairs": out}
    return _finish(raw, defaults, path)


def _finish(raw: Dict[str, Any], defaults: Dict[str, Any], path: str) -> Dict[str, Any]:
    """``raw`` (read from ``path``) checked, merged over ``defaults``, named after its file when
    it names no run, with the ``{name}`` of ``out_dir`` filled in."""
    check_keys(raw, defaults, f"config {path!r}")
    cfg = deep_merge(defaults, raw)
    if defaults is DEFAULTS and cfg["topology"]["faithful"] is True:
        cfg = deep_merge(deep_merge(defaults, FAITHFUL), raw)
        kept = faithful_overrides(raw)
        if kept and cfg["progress"]:
            print(f"{path}: topology.faithful keeps the config's " + ", ".join(
                f"{k}={new!r} (official {old!r})" for k, (old, new) in kept.items()), flush=True)
    if not cfg.get("name"):
        cfg["name"] = os.path.splitext(os.path.basename(path))[0]
    check_config(cfg, IMAGENET_CHECKS if defaults is IMAGENET_DEFAULTS else CHECKS)
    cfg["out_dir"] = cfg["out_dir"].format(name=cfg["name"])
    if cfg["teacher"]["checkpoint"]:
        cfg["teacher"]["checkpoint"] = os.path.expanduser(cfg["teacher"]["checkpoint"])
    return cfg


def faithful_overrides(raw: Dict[str, Any]) -> Dict[str, Any]:
    """The official values of :data:`FAITHFUL` that the config ``raw`` (before merging) sets
    otherwise, by dotted key: ``{key: (official, configured)}``."""
    official, given = _leaves(FAITHFUL), _leaves(raw)
    return {k: (v, given[k]) for k, v in official.items() if k in given and given[k] != v}


def distiller_spec(cfg: Dict[str, Any], entry: str) -> Dict[str, Any]:
    """The build spec ``{"name": ..., **kwargs}`` of a ``compare`` entry: an entry of
    ``cfg["distillers"]`` (which may rename, e.g. ``topkd_crd: {name: topkd, extra: [...]}``)
    or a registered distiller name with its default weights; with ``topology.faithful`` (CIFAR
    suite), the :data:`FAITHFUL_DISTILLER_ARGS` it does not set (also in its ``extra``
    members)."""
    spec = copy.deepcopy(cfg["distillers"].get(entry) or {})
    spec.setdefault("name", entry)
    if cfg["topology"].get("faithful") and cfg["dataset"]["name"] != "imagenet":
        for member in [spec, *spec.get("extra", [])]:
            for key, value in FAITHFUL_DISTILLER_ARGS.get(member.get("name"), {}).items():
                member.setdefault(key, value)
    return spec
