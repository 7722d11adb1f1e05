"""TopKD's topology settings and its RipsNet stage: the vectoriser of a config, the RipsNet's
pooling, its fit on (cloud, image) pairs with every measure of its quality in one place
(``metrics.json``), and the loading of the fitted vectoriser and RipsNet for the later stages.
"""
from __future__ import annotations

import math
import os
import time
from typing import Any, Dict, Optional, Tuple

import torch

from . import distributed as D
from .engine import seed_everything
from .layout import RunLayout, layout
from .report import log
from .storage import RunFileError, check_shape, describe, load_file, read_json, write_json

__all__ = ["cloud_size", "make_vectorizer", "load_vectorizer", "ripsnet_pooling",
           "read_complete_meta", "shard_rows", "load_shards", "ripsnet_data", "prediction_errors",
           "heldout_quality", "ripsnet_quality", "stage_ripsnet", "ripsnet_done", "load_ripsnet"]


def cloud_size(cfg: Dict[str, Any]) -> int:
    """Points per cloud: ``topology.cloud_size``, else (``null``, the ImageNet default) the
    per-rank batch."""
    return cfg["topology"]["cloud_size"] or cfg["dataset"]["batch_size"] // D.world_size()


def make_vectorizer(cfg: Dict[str, Any]):
    """The persistence-image vectoriser of the config (unfitted):
    ``PersistenceImage.topkd(faithful=topology.faithful, dims=0..topology.max_dim)``.

    ``faithful``: TopKD's 20×20 H0 image (weight ``10 tanh(p) + 10 log(100 b + 1)``,
    bandwidth = 0.2-quantile, range and max-scale fitted). Default: the same with H0 as a
    20-pixel curve over persistence (the official image's 20 columns are identical, since every
    H0 birth is 0). ``max_dim = 1`` adds a 20×20 H1 image.
    """
    import torchtopo

    topo = cfg["topology"]
    return torchtopo.PersistenceImage.topkd(faithful=topo["faithful"],
                                            dims=tuple(range(topo["max_dim"] + 1)))


def load_vectorizer(cfg: Dict[str, Any]):
    """The fitted vectoriser of ``images/vectorizer.json`` (written by the ``diagrams`` stage).

    Raises
    ------
    FileNotFoundError
        When the ``diagrams`` stage has not written it.
    topkd.storage.RunFileError
        When it is not a fitted vectoriser's configuration.
    """
    import torchtopo

    path = layout(cfg).vectorizer
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no fitted vectoriser at {path!r}: run the 'diagrams' stage")
    try:
        return torchtopo.PersistenceImage.from_config(read_json(path, "diagrams"))
    except (KeyError, TypeError, ValueError) as err:
        raise RunFileError(f"{path!r} is not a PersistenceImage configuration ({describe(err)}): "
                           "delete it and rerun the 'diagrams' stage") from err


def ripsnet_pooling(cfg: Dict[str, Any]) -> str:
    """RipsNet pooling: the config's, else TopKD's choice (sum for a WRN-40-2 teacher, mean
    otherwise)."""
    pooling = cfg["topology"]["ripsnet"]["pooling"]
    if pooling:
        return pooling
    return "sum" if cfg["teacher"]["arch"] == "wrn_40_2" else "mean"


def read_complete_meta(folder: str, stage: str) -> Optional[Dict[str, Any]]:
    """The ``meta.json`` of ``folder`` when it marks the folder complete, else ``None``."""
    path = os.path.join(folder, "meta.json")
    if not os.path.isfile(path):
        return None
    meta = read_json(path, stage)
    return meta if isinstance(meta, dict) and meta.get("complete") else None


def shard_rows(meta: Dict[str, Any], k: int, total_key: str = "num_clouds") -> int:
    """Number of clouds in shard ``k`` of a stage whose ``meta.json`` is ``meta``."""
    size = meta["shard_size"]
    return min(size, meta[total_key] - k * size)


def load_shards(run: RunLayout, kind: str, meta: Dict[str, Any], row_shape: Tuple,
                stage: str) -> torch.Tensor:
    """Every shard of ``clouds`` or ``images`` concatenated, each checked to be
    ``(rows of the shard, *row_shape)`` float32 (``None`` in ``row_shape``: any size).

    Raises
    ------
    topkd.storage.RunFileError
        A shard missing, unreadable or of the wrong shape, named with its stage.
    """
    parts = []
    for k in range(meta["num_shards"]):
        path = run.shard(kind, k)
        if not os.path.isfile(path):
            raise RunFileError(f"{path!r} is missing although {run.meta(kind)!r} says the "
                               f"{stage!r} stage is complete: rerun the {stage!r} stage")
        parts.append(check_shape(load_file(path, stage), (shard_rows(meta, k), *row_shape),
                                 path, stage, f"{kind} shard", torch.float32))
    return torch.cat(parts, 0)


def ripsnet_done(cfg: Dict[str, Any]) -> Optional[Dict[str, Any]]:
    """The RipsNet stage's ``metrics.json`` when the stage is complete (metrics and the fitted
    RipsNet on disk), else ``None``."""
    run = layout(cfg)
    if not (os.path.isfile(run.ripsnet_metrics) and os.path.isfile(run.ripsnet)):
        return None
    return read_json(run.ripsnet_metrics, "ripsnet")


def ripsnet_data(cfg: Dict[str, Any]) -> Tuple[torch.Tensor, torch.Tensor]:
    """The RipsNet's training pairs: every cloud ``(n, m, D)`` and its image ``(n, P)``, each
    shard checked against the ``meta.json`` of its stage.

    Raises
    ------
    FileNotFoundError
        When the ``clouds`` or ``diagrams`` stage is not complete.
    topkd.storage.RunFileError
        A shard missing, unreadable or of the wrong shape.
    """
    run = layout(cfg)
    clouds_meta = read_complete_meta(run.topology("clouds"), "clouds")
    images_meta = read_complete_meta(run.topology("images"), "diagrams")
    if clouds_meta is None or images_meta is None:
        raise FileNotFoundError(f"no complete point clouds and images under "
                                f"{run.topology('clouds')!r}: run 'clouds' and 'diagrams' first")
    clouds = load_shards(run, "clouds", clouds_meta,
                         (clouds_meta["cloud_size"], clouds_meta["dim"]), "clouds")
    targets = load_shards(run, "images", clouds_meta, (images_meta["num_features"],), "diagrams")
    return clouds, targets


@torch.no_grad()
def prediction_errors(model, clouds: torch.Tensor, targets: torch.Tensor) -> Tuple[float, float]:
    """``(MSE over clouds and pixels, mean ||p_hat - p||_2 per cloud)`` of ``model`` (eval
    mode) on clouds ``(n, m, D)`` against images ``(n, P)``."""
    model.eval()
    pred = torch.cat([model(c) for c in clouds.split(256)], 0)
    return float((pred - targets).pow(2).mean()), float((pred - targets).norm(dim=1).mean())


@torch.no_grad()
def heldout_quality(model, clouds: torch.Tensor, targets: torch.Tensor, train: torch.Tensor,
                    heldout: torch.Tensor) -> Dict[str, float]:
    """The RipsNet's quality on held-out clouds against the constant predictor.

    Parameters
    ----------
    model : callable
        ``(k, m, D) -> (k, P)`` (a RipsNet in eval mode).
    clouds : torch.Tensor
        ``(n, m, D)``.
    targets : torch.Tensor
        ``(n, P)`` images.
    train, heldout : torch.Tensor
        Index tensors: the clouds the model was fitted on, and those held out.

    Returns
    -------
    dict
        ``heldout_mse`` (over the held-out clouds and pixels), ``constant_mse`` (the mean
        training image predicted for every held-out cloud), ``r2 = 1 - heldout_mse /
        constant_mse`` (``nan`` when the held-out images all equal the mean) and
        ``num_heldout``.

    >>> clouds = torch.zeros(4, 2, 1)
    >>> targets = torch.tensor([[0.0], [1.0], [0.0], [1.0]])
    >>> exact = lambda c: targets[2:]
    >>> heldout_quality(exact, clouds, targets, torch.tensor([0, 1]), torch.tensor([2, 3]))["r2"]
    1.0
    """
    pred = torch.cat([model(c) for c in clouds[heldout].split(256)], 0).float()
    truth = targets[heldout].float()
    mse = float((pred - truth).pow(2).mean())
    constant = float((targets[train].float().mean(0) - truth).pow(2).mean())
    return {"heldout_mse": mse, "constant_mse": constant,
            "r2": 1.0 - mse / constant if constant > 0 else math.nan,
            "num_heldout": int(heldout.numel())}


def ripsnet_quality(metrics: Dict[str, Any]) -> str:
    """One line of the RipsNet's held-out quality from its ``metrics.json``.

    >>> ripsnet_quality({"heldout_mse": 0.001, "constant_mse": 0.004, "r2": 0.75,
    ...                  "num_heldout": 50})
    'held-out MSE 0.00100 vs 0.00400 for the mean training image: R² 0.750 (50 clouds)'
    """
    return (f"held-out MSE {metrics['heldout_mse']:.5f} vs {metrics['constant_mse']:.5f} for the "
            f"mean training image: R² {metrics['r2']:.3f} ({metrics['num_heldout']} clouds)")


@D.main_only
def stage_ripsnet(cfg: Dict[str, Any]) -> Dict[str, Any]:
    """Fit ``RipsNet.for_features(D, P)`` on the (cloud, image) pairs of the topology stages
    with ``torchtopo.fit_ripsnet`` (MSE, Adamax, early stopping on the held-out clouds of
    ``topology.ripsnet``'s split) and save it with its vectoriser. Rank 0 fits; the other ranks
    wait and read the metrics. Skipped when done. Prints the held-out quality.

    Returns
    -------
    dict
        ``metrics.json``: ``heldout_mse`` (the fitted RipsNet's MSE over the held-out clouds and
        pixels), ``constant_mse`` (that of the constant predictor, the mean training image, on
        the same held-out targets), ``r2 = 1 - heldout_mse / constant_mse`` (1: exact, 0: no
        better than the mean image), ``num_heldout``; ``train_mse`` (over every cloud),
        ``train_l2`` (mean ``||p_hat - p||_2`` per cloud, the poster's Table 8 measure),
        ``initial_mse`` (before fitting), ``epochs``, ``best_epoch``, ``seconds``,
        ``parameters`` and the per-epoch ``history`` (``train_loss``, ``val_loss``,
        ``val_r2``). The held-out clouds also choose the epoch (early stopping), so ``r2`` is
        slightly optimistic, as is the official code's validation loss.
    """
    import torchtopo
    from torchtopo.ripsnet import split_indices

    done = ripsnet_done(cfg)
    if done is not None:
        if "r2" in done:
            log(cfg, f"ripsnet: {ripsnet_quality(done)}")
        return done
    run = layout(cfg)
    clouds, targets = ripsnet_data(cfg)
    pi = load_vectorizer(cfg)
    rn_cfg = cfg["topology"]["ripsnet"]
    seed_everything(cfg["teacher"]["seed"])
    model = torchtopo.RipsNet.for_features(clouds.shape[-1], targets.shape[-1],
                                           pooling=ripsnet_pooling(cfg),
                                           input_norm=rn_cfg["data_init"],
                                           output_bias=rn_cfg["data_init"])
    initial_mse, _ = prediction_errors(model, clouds, targets)
    tic = time.perf_counter()
    history = torchtopo.fit_ripsnet(
        model, clouds, targets, epochs=rn_cfg["epochs"], lr=rn_cfg["lr"],
        batch_size=rn_cfg["batch_size"], val_batch_size=rn_cfg["val_batch_size"],
        val_fraction=rn_cfg["val_fraction"], split=rn_cfg["split"],
        patience=rn_cfg["patience"], min_delta=rn_cfg["min_delta"],
        seed=cfg["teacher"]["seed"], progress=cfg["progress"],
        log_dir=os.path.join(run.topology("ripsnet"), "tb"))
    seconds = time.perf_counter() - tic
    mse, l2 = prediction_errors(model, clouds, targets)
    fitted, heldout = split_indices(clouds.shape[0], rn_cfg["val_fraction"], rn_cfg["split"],
                                    cfg["teacher"]["seed"])
    os.makedirs(run.topology("ripsnet"), exist_ok=True)
    model.save(run.ripsnet, vectorizer=pi)
    metrics = {**heldout_quality(model, clouds, targets, fitted, heldout), "split": rn_cfg["split"],
               "train_mse": mse, "train_l2": l2, "initial_mse": initial_mse,
               "epochs": len(history["train_loss"]), "best_epoch": history["best_epoch"],
               "seconds": seconds, "num_clouds": int(clouds.shape[0]),
               "cloud_size": int(clouds.shape[1]),
               "parameters": sum(q.numel() for q in model.parameters()),
               "history": {k: history[k] for k in ("train_loss", "val_loss", "val_r2")}}
    write_json(metrics, run.ripsnet_metrics)
    log(cfg, f"ripsnet: {ripsnet_quality(metrics)}; {metrics['epochs']} epochs "
             f"(best {metrics['best_epoch'] + 1}), {seconds:.1f} s; train MSE {initial_mse:.5f} "
             f"-> {mse:.5f}, mean L2 {l2:.5f}")
    return metrics


def load_ripsnet(cfg: Dict[str, Any], cloud_points: Optional[int] = None):
    """The fitted RipsNet of the pair (frozen, eval mode) and the vectoriser saved with it.

    Parameters
    ----------
    cfg : dict
    cloud_points : int, optional
        The cloud size of the run that will use it: refused when the RipsNet was fitted on
        clouds of another size.

    Returns
    -------
    (torchtopo.RipsNet, torchtopo.PersistenceImage or None)

    Raises
    ------
    FileNotFoundError
        When the ``ripsnet`` stage has not run.
    ValueError
        A cloud size other than the RipsNet's.
    topkd.storage.RunFileError
        An unreadable RipsNet file.
    """
    import torchtopo

    metrics = ripsnet_done(cfg)
    path = layout(cfg).ripsnet
    if metrics is None:
        raise FileNotFoundError(f"no fitted RipsNet at {path!r}: run the 'ripsnet' stage")
    fitted_m = metrics.get("cloud_size")
    if cloud_points is not None and fitted_m is not None and fitted_m != cloud_points:
        raise ValueError(f"the RipsNet was fitted on clouds of {fitted_m} points but this run "
                         f"forms clouds of {cloud_points} (topology.cloud_size null = the per-rank "
                         f"batch on {D.world_size()} ranks): set topology.cloud_size={fitted_m} "
                         "or regenerate the topology stages")
    try:
        model, vectorizer = torchtopo.RipsNet.load(path)
    except Exception as err:  # noqa: BLE001 -- a bad file of any kind gets the same advice
        raise RunFileError(f"{path!r} (written by the 'ripsnet' stage) cannot be loaded "
                           f"({describe(err)}): delete it and rerun the 'ripsnet' stage") from err
    return model.eval().requires_grad_(False), vectorizer
