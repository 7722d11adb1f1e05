"""Ablations of TopKD over a YAML grid, reusing the pipeline's cached stages.

A grid file (``examples/topkd/configs/ablations/``)::

    name: smoke_delta
    base: smoke                 # a preset name or the path of a pair config
    set: ["train.epochs=2"]     # overrides of the base config (run_cifar.py's --set)
    out_dir: runs/ablations/smoke_delta     # default runs/ablations/<name>
    seeds: [0, 1, 2]            # default the base config's seeds
    analysis_clouds: 32         # clouds averaged for the topology columns (default: one pass)
    grid:                       # a mapping (its cartesian product) or a list of mappings
      delta: [0, 1, 5]          # (the union of their products: one ablation per mapping)

Axes (:data:`AXES`; an axis not listed keeps its default):

``delta``       weight of the topology term (default: the base config's TopKD ``delta``);
``feature``     the layer that feeds the point cloud, for teacher and student alike:
                ``pooled`` (default, the penultimate features), ``logits``, ``stage<k>`` (stage
                ``k`` of the model's ``stages`` list, global average pooled) or
                ``stage<k>x<s>`` (adaptive average pooled to ``s × s``, flattened);
``cloud_size``  points per cloud ``m`` (must divide ``dataset.batch_size``);
``max_dim``     0 for H0 images, 1 for H0 + H1;
``image``       ``curve`` (default: the 20-pixel H0 curve) or ``official`` (TopKD's 20×20 H0
                image; the clouds stay those of the eval-mode teacher, so only the image
                changes);
``loss``        ``ripsnet`` (default, TopKD) or ``exact`` (the same MSE between exact images,
                persistent homology at every step: ``torchtopo.TopologyLoss(mode="exact")``);
``ripsnet``     ``default`` (the base config's RipsNet recipe) or ``faithful``: the official
                code's RipsNet (:data:`topkd.config.FAITHFUL`'s ``topology.ripsnet`` fit:
                ordered 75/25 split, batch 64, validation batch 32, patience 50, min_delta
                1e-10, at most 25,000 epochs; clouds of the teacher with BatchNorm in train
                mode; TopKD's 20×20 image, so ``image`` defaults to ``official`` and cannot be
                ``curve``). The base config's clouds per pass and passes are kept (256 passes
                are the official data volume: set them in the base config), as are its teacher
                and student recipe, so that only the RipsNet differs between the two.

Caching: the teacher is the base config's (trained once by its ``teacher`` stage, or its
checkpoint); clouds are shared by every grid point with the same ``(feature, cloud_size)``
(the base run's own clouds for the default layer and size); diagrams, images and the RipsNet by
every point with the same ``(feature, cloud_size, max_dim, image)``; each student run is skipped
once its ``summary.json`` exists (a ``faithful`` RipsNet has its own clouds and folder). Each grid point is measured over the seeds: best and last
top-1 and, from :func:`topkd.analysis.approximation_errors`, ``||p_S - p_T||`` (exact images),
``||p̂_S - p_S||`` and ``||p̂_S - p̂_T||``, as mean and std.
"""
from __future__ import annotations

import contextlib
import copy
import itertools
import os
import re
import statistics
from typing import Any, Dict, List, Optional

import torch.nn.functional as F

from . import analysis, pipeline
from .config import (FAITHFUL, ConfigError, deep_merge, distiller_spec, load_config, preset_path,
                     read_yaml)
from .distillers import DISTILLERS, feature_shapes, register
from .distillers.topkd import TopKD
from .layout import layout
from .models import MODELS, canonical_name
from .report import write_sweep_table
from .storage import read_json, write_json
from .suites import suite_of
from .topology import ripsnet_pooling

#: Grid axes and their defaults (``None``: taken from the base config).
AXES = {"delta": None, "feature": "pooled", "cloud_size": None, "max_dim": None,
        "image": "curve", "loss": "ripsnet", "ripsnet": "default"}
#: Per-run measures of a grid point (summarised as mean and std over the seeds).
METRICS = ("best_acc", "last_acc", "exact_dist", "student_err", "approx_dist")
_LAYER = re.compile(r"^(pooled|logits|stage(\d+)(?:x(\d+))?)$")
_VIEWS: Dict[type, type] = {}


# ------------------------------------------------------------------------------ feature layer

def check_layer(layer: str) -> str:
    """Validate a feature-layer name (``pooled``, ``logits``, ``stage<k>``, ``stage<k>x<s>``).

    Raises
    ------
    ValueError
        When ``layer`` is none of these.
    """
    if not isinstance(layer, str) or not _LAYER.match(layer):
        raise ConfigError(f"feature must be 'pooled', 'logits', 'stage<k>' or 'stage<k>x<s>' "
                         f"(e.g. 'stage2', 'stage2x2'), got {layer!r}")
    return layer


def layer_features(logits, features: Dict[str, Any], layer: str):
    """The vector of each image that a feature layer feeds to the point cloud.

    Parameters
    ----------
    logits : torch.Tensor
        ``(B, C)``.
    features : dict
        A zoo model's features (``stages`` list of ``(B, C_k, H_k, W_k)``, ``pooled (B, D)``).
    layer : str
        See :func:`check_layer`.

    Returns
    -------
    torch.Tensor
        ``(B, D_layer)``: ``pooled``; ``logits``; stage ``k`` average pooled to ``s × s``
        (``s = 1`` by default) and flattened, ``D_layer = C_k s²``.
    """
    match = _LAYER.match(check_layer(layer))
    if layer == "pooled":
        return features["pooled"]
    if layer == "logits":
        return logits
    k, size = int(match.group(2)), int(match.group(3) or 1)
    if k >= len(features["stages"]):
        raise ValueError(f"feature {layer!r}: the model has stages 0..{len(features['stages']) - 1}")
    return F.adaptive_avg_pool2d(features["stages"][k], size).flatten(1)


def _view_class(cls: type) -> type:
    """A subclass of the zoo class ``cls`` whose features' ``pooled`` entry is its
    ``feature_layer``; same modules, so the same state dict keys and checkpoints."""
    if cls not in _VIEWS:
        def forward(self, x):
            logits, feats = cls.forward(self, x)
            return logits, dict(feats, pooled=layer_features(logits, feats, self.feature_layer))

        def feature_channels(self):
            return dict(cls.feature_channels(self), pooled=feature_shapes(self)["pooled"])

        _VIEWS[cls] = type(f"{cls.__name__}LayerView", (cls,),
                           {"forward": forward, "feature_channels": feature_channels,
                            "__doc__": f"{cls.__name__} whose ``pooled`` feature is a chosen layer."})
    return _VIEWS[cls]


def register_layer_view(arch: str, layer: str) -> str:
    """Register (once) the model ``<arch>@<layer>``: ``arch`` whose ``pooled`` feature is
    ``layer`` (logits unchanged), so the ``clouds`` stage, the RipsNet and TopKD read that layer.
    Call it inside :func:`ablation_registry`, which removes the view afterwards.

    Parameters
    ----------
    arch : str
        A zoo model name.
    layer : str
        See :func:`check_layer`.

    Returns
    -------
    str
        The registry name (``arch``'s canonical name for ``layer="pooled"``).
    """
    base = canonical_name(arch)
    if check_layer(layer) == "pooled":
        return base
    name = f"{base}@{layer}"
    if name not in MODELS:
        factory = MODELS[base]

        def build(num_classes: int = 100):
            model = factory(num_classes=num_classes)
            model.__class__ = _view_class(type(model))
            model.feature_layer = layer
            return model

        build.__doc__ = f"{base} with the {layer!r} layer as its pooled feature."
        MODELS[name] = build
    return name


# ------------------------------------------------------------------------ exact-loss TopKD

class ExactTopKD(TopKD):
    """TopKD with the exact topology loss (registered as ``topkd_exact`` inside
    :func:`ablation_registry`): ``gamma * CE + alpha * KD(T) + delta *
    MSE(PI(dgm(proj(f_s))), PI(dgm(f_t)))`` per cloud of ``cloud_size`` pooled features, the
    persistence computed at every step (``torchtopo.TopologyLoss(mode="exact")``), no RipsNet.

    Extra constructor arguments
    ---------------------------
    vectorizer : dict or torchtopo.PersistenceImage
        The fitted vectoriser (a run-time input: the ``diagrams`` stage's), or its
        configuration dict.
    delta : float
        Weight of the topology term.
    """

    name = "topkd_exact"
    runtime_inputs = {"ripsnet": None, "vectorizer": "vectorizer"}

    def __init__(self, student, teacher, vectorizer=None, **kw):
        super().__init__(student, teacher, ripsnet=vectorizer, **kw)

    def _topology_loss(self, vectorizer, student_dim: int, teacher_dim: int):
        import torchtopo

        if isinstance(vectorizer, dict):
            vectorizer = torchtopo.PersistenceImage.from_config(vectorizer)
        if not isinstance(vectorizer, torchtopo.PersistenceImage):
            raise TypeError(f"topkd_exact needs a fitted PersistenceImage (or its config dict) as "
                            f"vectorizer, got {type(vectorizer).__name__}")
        return torchtopo.TopologyLoss(mode="exact", cloud_size=self.cloud_size, vectorizer=vectorizer,
                                      student_dim=student_dim, teacher_dim=teacher_dim)


@contextlib.contextmanager
def ablation_registry():
    """Make the sweep's additions buildable by name for the duration of the block:
    ``topkd_exact`` in the distiller registry and every ``<arch>@<layer>`` view that
    :func:`register_layer_view` adds to the model zoo; both registries are restored on exit,
    so the zoo and the distiller list stay those of the suite elsewhere."""
    models, distillers = dict(MODELS), dict(DISTILLERS)
    register(ExactTopKD.name)(ExactTopKD)
    try:
        yield
    finally:
        MODELS.clear()
        MODELS.update(models)
        DISTILLERS.clear()
        DISTILLERS.update(distillers)


# ------------------------------------------------------------------------------------- grid

def load_grid(path: str) -> Dict[str, Any]:
    """Read and check a grid file (``yaml.safe_load``); see the module docstring.

    Returns
    -------
    dict
        ``name``, ``base`` (the loaded base config), ``out_dir``, ``seeds``,
        ``analysis_clouds`` and ``points`` (list of dicts, one value per axis, no duplicates).

    Raises
    ------
    ConfigError
        Missing file, unknown keys or axes, empty or non-list axis values, bad values.
    """
    raw = read_yaml(path, kind="grid")
    unknown = set(raw) - {"name", "base", "set", "out_dir", "seeds", "analysis_clouds", "grid"}
    if unknown:
        raise ConfigError(f"{path!r}: unknown keys {sorted(unknown)}")
    for key in ("base", "grid"):
        if key not in raw:
            raise ConfigError(f"{path!r}: '{key}' is required")
    name = raw.get("name") or os.path.splitext(os.path.basename(path))[0]
    base_path = raw["base"]
    if not base_path.endswith((".yaml", ".yml")):
        base_path = preset_path(base_path)
    elif not os.path.isabs(base_path):
        base_path = os.path.join(os.path.dirname(path), base_path)
    base = load_config(base_path, list(raw.get("set") or []))
    if "pairs" in base:
        raise ConfigError(f"{path!r}: base must be a pair config, not a table")
    grids = raw["grid"] if isinstance(raw["grid"], list) else [raw["grid"]]
    points: List[Dict[str, Any]] = []
    for grid in grids:
        if not isinstance(grid, dict) or not grid:
            raise ConfigError(f"{path!r}: grid must be a non-empty mapping (or a list of them), "
                             f"got {grid!r}")
        bad = set(grid) - set(AXES)
        if bad:
            raise ConfigError(f"{path!r}: unknown grid axes {sorted(bad)}; known: {list(AXES)}")
        for axis, values in grid.items():
            if not isinstance(values, list) or not values:
                raise ConfigError(f"{path!r}: grid axis {axis!r} must be a non-empty list, "
                                 f"got {values!r}")
        for combo in itertools.product(*grid.values()):
            point = resolve_point(base, dict(zip(grid, combo)))
            if point not in points:
                points.append(point)
    seeds = raw.get("seeds", base["seeds"])
    if not isinstance(seeds, list) or not seeds or not all(isinstance(s, int) for s in seeds):
        raise ConfigError(f"{path!r}: seeds must be a non-empty list of ints, got {seeds!r}")
    clouds = raw.get("analysis_clouds")
    if clouds is not None and (not isinstance(clouds, int) or clouds < 1):
        raise ConfigError(f"{path!r}: analysis_clouds must be a positive int, got {clouds!r}")
    return {"name": name, "base": base, "out_dir": raw.get("out_dir") or
            os.path.join("runs", "ablations", name), "seeds": seeds,
            "analysis_clouds": clouds, "points": points}


def resolve_point(base: Dict[str, Any], point: Dict[str, Any]) -> Dict[str, Any]:
    """A grid point with every axis set (defaults from :data:`AXES` and the base config) and
    checked.

    Raises
    ------
    ValueError
        A value outside its axis' domain, or a cloud size that does not divide the batch.
    """
    topo = base["topology"]
    topkd = {**DISTILLERS["topkd"].arguments(), **distiller_spec(base, "topkd")}
    out = {"delta": topkd["delta"], "feature": "pooled",
           "cloud_size": topo["cloud_size"], "max_dim": topo["max_dim"],
           "image": "official" if topo["faithful"] else "curve", "loss": "ripsnet",
           "ripsnet": "faithful" if topo["faithful"] else "default"}
    if point.get("ripsnet") == "faithful" and "image" not in point:
        out["image"] = "official"
    out.update(point)
    if not isinstance(out["delta"], (int, float)) or out["delta"] < 0:
        raise ConfigError(f"delta must be a non-negative number, got {out['delta']!r}")
    out["delta"] = float(out["delta"])
    check_layer(out["feature"])
    m = out["cloud_size"]
    if not isinstance(m, int) or m < 2 or base["dataset"]["batch_size"] % m:
        raise ConfigError(f"cloud_size must be an int >= 2 dividing dataset.batch_size "
                         f"({base['dataset']['batch_size']}), got {m!r}")
    if out["max_dim"] not in (0, 1):
        raise ConfigError(f"max_dim must be 0 or 1, got {out['max_dim']!r}")
    if out["image"] not in ("curve", "official"):
        raise ConfigError(f"image must be 'curve' or 'official', got {out['image']!r}")
    if out["loss"] not in ("ripsnet", "exact"):
        raise ConfigError(f"loss must be 'ripsnet' or 'exact', got {out['loss']!r}")
    if out["ripsnet"] not in ("default", "faithful"):
        raise ConfigError(f"ripsnet must be 'default' or 'faithful', got {out['ripsnet']!r}")
    if out["ripsnet"] == "faithful" and out["image"] != "official":
        raise ConfigError("ripsnet 'faithful' fits TopKD's official 20x20 image: image must be "
                          f"'official', got {out['image']!r}")
    return out


def _faithful(point) -> bool:
    return point["ripsnet"] == "faithful"


def _clouds_key(point) -> str:
    # the faithful RipsNet's clouds come from the teacher with BatchNorm in train mode
    return f"{point['feature']}_m{point['cloud_size']}" + ("_bntrain" if _faithful(point) else "")


def _topology_key(point) -> str:
    return f"{point['feature']}_m{point['cloud_size']}_h{point['max_dim']}_{point['image']}" + (
        "_faithful" if _faithful(point) else "")


def entry_name(point: Dict[str, Any]) -> str:
    """The student entry of a grid point, e.g. ``ripsnet_d5``."""
    return f"{point['loss']}_d{point['delta']:g}"


def point_config(grid: Dict[str, Any], point: Dict[str, Any]) -> Dict[str, Any]:
    """The pair config of a grid point: the base config with the point's layer views, cloud
    size, homology, image and teacher (the base's weights), under
    ``<out_dir>/<feature>_m<m>_h<d>_<image>/``; its single ``compare`` entry is
    :func:`entry_name`."""
    base = grid["base"]
    cfg = copy.deepcopy(base)
    cfg["out_dir"] = os.path.join(grid["out_dir"], _topology_key(point))
    cfg["name"] = f"{grid['name']}/{_topology_key(point)}"
    cfg["seeds"] = list(grid["seeds"])
    cfg["teacher"]["checkpoint"] = suite_of(base).teacher_weights(base)
    for role in ("teacher", "student"):
        cfg[role]["arch"] = register_layer_view(base[role]["arch"], point["feature"])
    cfg["topology"].update(cloud_size=point["cloud_size"], max_dim=point["max_dim"],
                           faithful=point["image"] == "official")
    if _faithful(point):
        cfg["topology"]["ripsnet"].update(FAITHFUL["topology"]["ripsnet"])
    # the base teacher's RipsNet pooling (the view's registry name hides the architecture)
    cfg["topology"]["ripsnet"]["pooling"] = ripsnet_pooling(base)
    entry = entry_name(point)
    spec = {k: v for k, v in distiller_spec(base, "topkd").items() if k != "extra"}
    spec.update(delta=point["delta"])
    if point["loss"] == "exact":
        spec.update(name="topkd_exact")
    cfg["distillers"][entry] = spec
    cfg["compare"] = [entry]
    return cfg


def _shared_clouds(grid, point, cfg) -> str:
    """Link the point's clouds folder to the folder shared by its ``(feature, m)``."""
    base = grid["base"]
    same_as_base = (point["feature"] == "pooled" and not base["topology"]["faithful"]
                    and not _faithful(point)
                    and point["cloud_size"] == base["topology"]["cloud_size"])
    target = layout(base).topology("clouds") if same_as_base else \
        os.path.join(grid["out_dir"], "clouds", _clouds_key(point))
    os.makedirs(target, exist_ok=True)
    link = layout(cfg).topology("clouds")
    if not os.path.islink(link):
        os.makedirs(os.path.dirname(link), exist_ok=True)
        os.symlink(os.path.relpath(os.path.abspath(target), os.path.dirname(os.path.abspath(link))),
                   link)
    return target


def run_point(grid: Dict[str, Any], point: Dict[str, Any]) -> List[Dict[str, Any]]:
    """Run (or reuse) every stage of one grid point and measure each seed (inside
    :func:`ablation_registry`).

    Returns
    -------
    list of dict
        One row per seed: the axes, ``seed``, ``best_acc``, ``last_acc``, ``exact_dist``,
        ``student_err``, ``approx_dist``.
    """
    cfg = point_config(grid, point)
    _shared_clouds(grid, point, cfg)
    # the clouds of the eval-mode teacher whatever the image (see the 'image' axis), those of
    # the train-mode one for the faithful RipsNet
    pipeline.validate(cfg)
    pipeline.stage_clouds(deep_merge(cfg, {"topology": {"faithful": _faithful(point)}}))
    pipeline.stage_diagrams(cfg)
    pipeline.stage_ripsnet(cfg)
    entry = cfg["compare"][0]
    for seed in grid["seeds"]:
        pipeline.stage_student(cfg, entry, seed)
    caches = {seed: os.path.join(layout(cfg).student(entry, seed), "approximation.json")
              for seed in grid["seeds"]}
    todo = [seed for seed, path in caches.items() if not os.path.isfile(path)]
    if todo:
        for row in analysis.approximation_errors(cfg, [entry], todo, grid["analysis_clouds"]):
            write_json(row, caches[row["seed"]])
    rows = []
    for seed, path in caches.items():
        errs = read_json(path, "analysis")
        rows.append({**point, "seed": seed, **{k: errs[k] for k in METRICS}})
    return rows


def summarize(rows: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """One row per grid point: the axes, ``n`` (seeds), and ``<metric>_mean`` /
    ``<metric>_std`` for every metric of :data:`METRICS` (std 0 for a single seed)."""
    groups: Dict[tuple, List[Dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault(tuple(r[a] for a in AXES), []).append(r)
    out = []
    for key, rs in groups.items():
        row = dict(zip(AXES, key), n=len(rs))
        for metric in METRICS:
            values = [r[metric] for r in rs]
            row[f"{metric}_mean"] = statistics.mean(values)
            row[f"{metric}_std"] = statistics.stdev(values) if len(values) > 1 else 0.0
        out.append(row)
    return out


def run_sweep(path: str, out_dir: Optional[str] = None) -> str:
    """Run every point of a grid file (teacher first, stages cached) and write its table.

    Parameters
    ----------
    path : str
        The grid YAML.
    out_dir : str, optional
        Overrides the grid's ``out_dir``.

    Returns
    -------
    str
        The markdown table (also in ``<out_dir>/sweep.md``).
    """
    with ablation_registry():
        grid = load_grid(path)
        if out_dir:
            grid["out_dir"] = out_dir
        pipeline.validate(grid["base"])
        pipeline.stage_teacher(grid["base"])
        rows = []
        for point in grid["points"]:
            rows += run_point(grid, point)
    return write_sweep_table(rows, summarize(rows), list(AXES), grid["out_dir"], grid["name"])


__all__ = ["AXES", "ExactTopKD", "ablation_registry", "check_layer", "layer_features", "register_layer_view",
           "load_grid", "resolve_point", "point_config", "run_point", "summarize", "run_sweep",
           "entry_name"]
