"""Approximation errors of TopKD's RipsNet: the poster's Table 8, for any set of runs.

For a pair's teacher ``T``, its fitted RipsNet ``R`` and the saved vectoriser ``PI`` (the
``topology/ripsnet`` and ``topology/images`` stage outputs), and every trained student ``S``
(any distiller), on minibatches of ``m = topology.cloud_size`` training images (one point cloud
each, the training augmentation on, as in the ``clouds`` stage)::

    p_T = PI(dgm(f_T))      exact image of the teacher's cloud  (torchtopo.rips_persistence)
    p̂_T = R(f_T)            the RipsNet's approximation
    p_S = PI(dgm(g(f_S)))   exact image of the student's cloud
    p̂_S = R(g(f_S))

where ``f`` are the pooled penultimate features (both models in eval mode) and ``g`` the
student's learned projection to the teacher's width (TopKD's 1×1 conv) when it has one, else
the identity. The poster's triangle inequality

    ||p_T - p_S|| <= ||p_T - p̂_T|| + ||p̂_T - p̂_S|| + ||p̂_S - p_S||

relates the quantity TopKD means to shrink (``exact_dist``) to the topology loss it minimises
(``approx_dist``) and the two approximation errors (``teacher_err``, ``student_err``). Every
norm is the Euclidean norm of one cloud's flattened image, averaged over the clouds.
``ripsnet_train_l2`` is the RipsNet's error over its own training clouds (the poster's
``L_RN``, written by the ``ripsnet`` stage).

When the widths differ and the student has no projection (a vanilla or KD student), ``R``
cannot read its features: ``student_err`` and ``approx_dist`` are NaN (``n/a`` in the
markdown), while ``exact_dist`` is still defined (the exact image does not depend on the width).
"""
from __future__ import annotations

import json
import math
import os
import statistics
from typing import Any, Dict, List, Optional, Sequence

import torch
from torch import nn

from . import stages
from .config import distiller_spec
from .data import make_loader
from .distillers import build_distiller
from .engine import load_checkpoint, select_device
from .models import build_model

#: The poster's Table 8 (CIFAR-100): teacher error ``L_RN`` and ``||p̂_S - p_S||`` of the student
#: trained from scratch, with KD and with TopKD, keyed by (teacher, student) registry names.
PAPER_TABLE8 = {
    ("vgg13", "MobileNetV2"): (0.00229, 0.02335, 0.03408, 0.02103),
    ("ResNet50", "MobileNetV2"): (0.00218, 0.00997, 0.00734, 0.00740),
    ("ResNet50", "vgg8"): (0.00218, 0.11178, 0.01961, 0.01679),
    ("resnet32x4", "ShuffleV1"): (0.00248, 0.05301, 0.05114, 0.04084),
    ("resnet32x4", "ShuffleV2"): (0.00248, 0.06427, 0.07016, 0.00434),
    ("wrn_40_2", "ShuffleV1"): (0.00164, 0.06591, 0.05419, 0.05001),
}

#: Columns of :func:`approximation_errors`' rows, in the CSV's order.
COLUMNS = ("pair", "teacher", "student", "distiller", "seed", "cloud_size", "num_clouds",
           "ripsnet_train_l2", "teacher_err", "student_err", "approx_dist", "exact_dist",
           "triangle_bound", "best_acc", "last_acc")


def analysis_dir(cfg: Dict[str, Any]) -> str:
    """``<out_dir>/analysis``: where the analyses of a pair write their outputs."""
    return os.path.join(stages.paths(cfg)["root"], "analysis")


def cloud_loader(cfg: Dict[str, Any], train: bool = True, clouds_per_batch: int = 8,
                 seed: int = 0):
    """Minibatches of ``clouds_per_batch`` point clouds of ``m = topology.cloud_size`` images.

    Parameters
    ----------
    cfg : dict
        A pair config.
    train : bool
        The training split with its augmentation, shuffled (the ``clouds`` stage's clouds), or
        the test split in order.
    clouds_per_batch : int
        Clouds per loader batch: batches hold ``clouds_per_batch * m`` images.
    seed : int
        Seed of the shuffling.

    Returns
    -------
    torch.utils.data.DataLoader
        Yields ``(images (k*m, 3, H, W), labels (k*m,))``; the last batch may be shorter
        (:func:`whole_clouds` keeps its complete clouds), so one pass holds every complete
        cloud, ``N // m``.
    """
    if not isinstance(clouds_per_batch, int) or clouds_per_batch < 1:
        raise ValueError(f"clouds_per_batch must be a positive int, got {clouds_per_batch!r}")
    train_set, test_set, _ = stages.load_data(cfg)
    m = cfg["topology"]["cloud_size"]
    return make_loader(train_set if train else test_set, clouds_per_batch * m, train,
                       cfg["dataset"]["num_workers"], seed, drop_last=False)


def whole_clouds(images: torch.Tensor, cloud_size: int) -> torch.Tensor:
    """The first ``(B // m) * m`` images of a batch ``(B, 3, H, W)``: its complete clouds."""
    return images[:images.shape[0] // cloud_size * cloud_size]


def as_clouds(features: torch.Tensor, cloud_size: int) -> torch.Tensor:
    """Split features of consecutive images into point clouds.

    Parameters
    ----------
    features : torch.Tensor
        ``(k * m, D)``.
    cloud_size : int
        ``m``.

    Returns
    -------
    torch.Tensor
        ``(k, m, D)`` float32.
    """
    if features.dim() != 2 or features.shape[0] % cloud_size:
        raise ValueError(f"features must be (k * {cloud_size}, D), got {tuple(features.shape)}")
    return features.float().reshape(-1, cloud_size, features.shape[1])


def rips_diagrams(clouds: torch.Tensor, max_dim: int, num_workers: Optional[int] = None):
    """``torchtopo.rips_persistence(clouds, max_dim)`` of a batch of clouds.

    Parameters
    ----------
    clouds : torch.Tensor
        ``(n, m, D)``.
    max_dim : int
    num_workers : int, optional
        Threads of the CPU backend (H1).

    Returns
    -------
    torchtopo.Diagrams
        Batched, ``n`` diagrams.
    """
    import torchtopo

    return torchtopo.rips_persistence(clouds, max_dim=max_dim, num_workers=num_workers)


def exact_images(clouds: torch.Tensor, vectorizer, num_workers: Optional[int] = None
                 ) -> torch.Tensor:
    """Exact persistence images of clouds: ``torchtopo.rips_persistence`` then the fitted
    vectoriser, flattened.

    Parameters
    ----------
    clouds : torch.Tensor
        ``(n, m, D)``.
    vectorizer : torchtopo.PersistenceImage
        Fitted (the one saved with the RipsNet); its ``dims`` decide the homology dimensions.
    num_workers : int, optional
        Threads of the CPU backend (H1).

    Returns
    -------
    torch.Tensor
        ``(n, P)`` float32, ``P = vectorizer.num_features``.
    """
    return vectorizer(rips_diagrams(clouds, max(vectorizer.dims), num_workers)).flatten(1).float()


def load_pair_topology(cfg: Dict[str, Any]):
    """The pair's fitted RipsNet (frozen, eval mode) and the vectoriser saved with it.

    Returns
    -------
    (torchtopo.RipsNet, torchtopo.PersistenceImage)

    Raises
    ------
    FileNotFoundError
        When the ``ripsnet`` stage has not run.
    """
    import torchtopo

    path = stages.ripsnet_path(cfg)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no fitted RipsNet at {path!r}: run the 'ripsnet' stage "
                                f"(run_cifar.py ... ripsnet)")
    model, vectorizer = torchtopo.RipsNet.load(path)
    if vectorizer is None:
        raise ValueError(f"{path!r} was saved without its vectoriser")
    return model.eval().requires_grad_(False), vectorizer


def cloud_projection(distiller: nn.Module) -> Optional[nn.Module]:
    """The learned map from student features to the teacher's cloud space: the
    ``topology.projection`` of the distiller or of one of its ``extra`` distillers (TopKD when
    the widths differ), or ``None``."""
    for d in (distiller, *distiller.extra):
        topology = getattr(d, "topology", None)
        if topology is not None and topology.projection is not None:
            return topology.projection
    return None


def build_run_distiller(cfg: Dict[str, Any], entry: str, teacher: nn.Module, n_data: int):
    """The distiller of a ``compare`` entry with a fresh student, built from the run-time
    arguments of the ``student`` stage (``stages._runtime_args``: the fitted RipsNet, CRD's
    dataset size).

    Parameters
    ----------
    cfg : dict
    entry : str
    teacher : nn.Module
        The pair's teacher (held, unused, by ``vanilla``).
    n_data : int
        Training-set size.

    Returns
    -------
    Distiller
    """
    spec = distiller_spec(cfg, entry)
    kwargs = stages._runtime_args(cfg, spec, n_data)
    student = build_model(cfg["student"]["arch"], stages._num_classes(cfg))
    return build_distiller(spec["name"], student, teacher, **kwargs)


def load_student_run(cfg: Dict[str, Any], entry: str, seed: int, teacher: nn.Module,
                     n_data: int):
    """A trained student run: the distiller rebuilt as the ``student`` stage built it, with
    the final student weights and connectors (projection, embeddings) of its checkpoint.

    Parameters
    ----------
    cfg : dict
        The pair config.
    entry : str
        The ``compare`` entry (``vanilla``, ``kd``, ``topkd``, ...).
    seed : int
    teacher : nn.Module
        The pair's teacher.
    n_data : int
        Training-set size (CRD's memory bank).

    Returns
    -------
    (Distiller, dict)
        The distiller in eval mode and the run's ``summary.json``.

    Raises
    ------
    FileNotFoundError
        When the run has not finished (no ``summary.json``).
    """
    out = stages.student_dir(cfg, entry, seed)
    summary_path = os.path.join(out, "summary.json")
    if not os.path.isfile(summary_path):
        raise FileNotFoundError(f"student run {out!r} has not finished: run "
                                f"run_cifar.py ... student --distiller {entry} --seed {seed}")
    with open(summary_path) as f:
        summary = json.load(f)
    distiller = build_run_distiller(cfg, entry, teacher, n_data)
    ckpt = load_checkpoint(os.path.join(out, "latest.pt"))
    distiller.student.load_state_dict(ckpt["model"])
    distiller.load_connector_state_dict(ckpt["connectors"])
    return distiller.eval(), summary


def _l2(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a - b).norm(dim=1)


@torch.no_grad()
def approximation_errors(cfg: Dict[str, Any], entries: Optional[Sequence[str]] = None,
                         seeds: Optional[Sequence[int]] = None, num_clouds: Optional[int] = None,
                         clouds_per_batch: int = 8) -> List[Dict[str, Any]]:
    """Table 8's errors of every student run of a pair (see the module docstring).

    Parameters
    ----------
    cfg : dict
        A pair config whose teacher, ``ripsnet`` stage and student runs exist.
    entries : sequence of str, optional
        ``compare`` entries to measure; default every entry of the config.
    seeds : sequence of int, optional
        Default the config's seeds.
    num_clouds : int, optional
        Clouds to average over; default one pass over the training set (``N // m``).
    clouds_per_batch : int
        Clouds per forward pass.

    Returns
    -------
    list of dict
        One row per run with the keys of :data:`COLUMNS`; the norms are finite and non-negative
        (``student_err``/``approx_dist`` NaN where undefined).
    """
    entries = list(entries or cfg["compare"])
    seeds = list(cfg["seeds"] if seeds is None else seeds)
    m = cfg["topology"]["cloud_size"]
    device = select_device(cfg["device"])
    train_set, _, num_classes = stages.load_data(cfg)
    teacher = stages.load_teacher(cfg, num_classes).to(device)
    ripsnet, vectorizer = load_pair_topology(cfg)
    ripsnet = ripsnet.to(device)
    with open(os.path.join(stages.paths(cfg)["ripsnet"], "metrics.json")) as f:
        train_l2 = json.load(f)["train_l2"]
    limit = num_clouds if num_clouds is not None else len(train_set) // m
    if limit < 1:
        raise ValueError(f"num_clouds must be >= 1, got {limit!r}")
    workers = cfg["topology"]["num_workers"]
    runs = []
    for entry in entries:
        for seed in seeds:
            distiller, summary = load_student_run(cfg, entry, seed, teacher, len(train_set))
            runs.append((entry, seed, distiller.to(device), cloud_projection(distiller), summary))
    keys = ("student_err", "approx_dist", "exact_dist", "triangle_bound")
    sums = [{k: 0.0 for k in keys} for _ in runs]
    teacher_sum, n = 0.0, 0
    # the same clouds for every run and call: fixed shuffling and augmentation (the global
    # RNG drives the augmentation; it is restored afterwards)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        for images, _ in cloud_loader(cfg, True, clouds_per_batch, seed=0):
            if n >= limit:
                break
            images = whole_clouds(images, m).to(device)
            keep = min(images.shape[0] // m, limit - n)
            if keep == 0:
                continue
            f_t = as_clouds(teacher(images)[1]["pooled"], m)[:keep]
            p_t = exact_images(f_t.cpu(), vectorizer, workers)
            ph_t = ripsnet(f_t).float().cpu()
            t_err = _l2(ph_t, p_t)
            teacher_sum += float(t_err.sum())
            for (_, _, distiller, projection, _), acc in zip(runs, sums):
                f_s = as_clouds(distiller.student(images)[1]["pooled"], m)[:keep]
                if projection is not None:
                    f_s = projection(f_s)
                p_s = exact_images(f_s.cpu(), vectorizer, workers)
                acc["exact_dist"] += float(_l2(p_s, p_t).sum())
                if f_s.shape[-1] == ripsnet.in_dim:
                    ph_s = ripsnet(f_s).float().cpu()
                    s_err, approx = _l2(ph_s, p_s), _l2(ph_s, ph_t)
                    acc["student_err"] += float(s_err.sum())
                    acc["approx_dist"] += float(approx.sum())
                    acc["triangle_bound"] += float((t_err + approx + s_err).sum())
                else:  # the RipsNet cannot read the student's width
                    for key in ("student_err", "approx_dist", "triangle_bound"):
                        acc[key] = math.nan
            n += keep
    if n == 0:
        raise ValueError(f"the training set ({len(train_set)} images) holds no cloud of "
                         f"cloud_size={m} images")
    return [{"pair": cfg["name"], "teacher": cfg["teacher"]["arch"],
             "student": cfg["student"]["arch"], "distiller": entry, "seed": seed,
             "cloud_size": m, "num_clouds": n, "ripsnet_train_l2": train_l2,
             "teacher_err": teacher_sum / n, **{k: v / n for k, v in acc.items()},
             "best_acc": summary["best_acc"], "last_acc": summary["last_acc"]}
            for (entry, seed, _, _, summary), acc in zip(runs, sums)]


def _fmt(values: List[float], digits: int = 5) -> str:
    values = [v for v in values if not math.isnan(v)]
    if not values:
        return "n/a"
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{statistics.mean(values):.{digits}f} ± {statistics.stdev(values):.{digits}f}"


def write_table8(rows: List[Dict[str, Any]], out_dir: str) -> str:
    """Write ``table8.csv`` (one row per run, :data:`COLUMNS`) and ``table8.md``: per pair,
    ``L_RN``, each distiller's ``||p̂_S - p_S||`` and ``||p_S - p_T||`` (mean ± std over seeds,
    the smallest student error in bold), and the poster's values where the pair is one of its.

    Returns
    -------
    str
        The markdown text.
    """
    if not rows:
        raise ValueError("rows is empty: nothing to tabulate")
    os.makedirs(out_dir, exist_ok=True)
    stages.write_csv(os.path.join(out_dir, "table8.csv"),
                     [{k: r[k] for k in COLUMNS} for r in rows])
    pairs: Dict[str, List[Dict[str, Any]]] = {}
    for r in rows:
        pairs.setdefault(r["pair"], []).append(r)
    entries = list(dict.fromkeys(r["distiller"] for r in rows))
    lines = ["Approximation errors (the poster's Table 8): L_RN = ||p̂_T − p_T|| over the "
             "RipsNet's training clouds; ||p̂_S − p_S|| and ||p_S − p_T|| averaged over "
             "minibatches (clouds) of the training set, mean ± std over seeds. Exact images from "
             "torchtopo.rips_persistence + the saved PersistenceImage.", "",
             "| teacher | student | L_RN | " + " | ".join(f"‖p̂_S − p_S‖ {e}" for e in entries)
             + " | " + " | ".join(f"‖p_S − p_T‖ {e}" for e in entries) + " |",
             "|---" * (3 + 2 * len(entries)) + "|"]
    for pair_rows in pairs.values():
        by_entry = {e: [r for r in pair_rows if r["distiller"] == e] for e in entries}
        err = {e: [r["student_err"] for r in rs] for e, rs in by_entry.items()}
        means = {e: statistics.mean(v) for e, v in err.items()
                 if v and not any(math.isnan(x) for x in v)}
        best = min(means, key=means.get) if means else None
        cells = [f"**{_fmt(err[e])}**" if e == best else _fmt(err[e]) for e in entries]
        cells += [_fmt([r["exact_dist"] for r in by_entry[e]]) for e in entries]
        first = pair_rows[0]
        lines.append(f"| {first['teacher']} | {first['student']} | "
                     f"{first['ripsnet_train_l2']:.5f} | " + " | ".join(cells) + " |")
    paper = [(k, v) for k, v in PAPER_TABLE8.items()
             if any((r["teacher"], r["student"]) == k for r in rows)]
    if paper:
        lines += ["", "Poster (CIFAR-100): L_RN; ||p̂_S − p_S|| student, w/ KD, w/ TopKD", ""]
        lines += [f"- {t} → {s}: {v[0]}; {v[1]}, {v[2]}, {v[3]}" for (t, s), v in paper]
    text = "\n".join(lines) + "\n"
    with open(os.path.join(out_dir, "table8.md"), "w") as f:
        f.write(text)
    return text
