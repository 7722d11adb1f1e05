"""Multi-process training with PyTorch's own engine: ``torchrun`` environment, DDP, samplers,
exact global metrics and the cross-rank gathers the distillers need.

Everything here is a no-op in a single process (no ``WORLD_SIZE`` in the environment, or
``WORLD_SIZE=1``), so the engine calls it unconditionally and a single-process run behaves as
before.

Launch (one node, 8 GPUs)::

    torchrun --nproc_per_node=8 examples/topkd/run_imagenet.py --config ...

Conventions
-----------
- Backend: NCCL when CUDA is available (each process uses ``cuda:LOCAL_RANK``), gloo on the CPU.
- Batch sizes in the configs are *global*; each rank loads ``global / world_size`` images.
- Training data: :class:`torch.utils.data.DistributedSampler` (one permutation per ``(seed,
  epoch)``, rank ``r`` takes positions ``r, r + W, ...``), so the union of the ranks' step-``k``
  batches is exactly step ``k``'s batch of a one-process run with the global batch.
- Evaluation data: :class:`EvalShardSampler` (no padding, no duplicates) and sums all-reduced,
  so loss, top-1 and top-5 are exact global averages.
- Randomness: rank 0 keeps the run's seed (a single process is unchanged); in a multi-process
  run every rank re-seeds its global RNGs and its loader's generator from ``(seed, epoch,
  rank)`` at the start of each epoch (:func:`start_epoch`), so a resumed run continues exactly
  without per-rank RNG states in the checkpoint.
- Checkpoints and logs are written by rank 0 only; every rank reads ``latest.pt`` on resume
  (the output folder must be on a file system all nodes share).
"""
from __future__ import annotations

import datetime
import functools
import os
import random
from typing import Callable, Dict, Optional, Tuple

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler

__all__ = ["init_distributed", "cleanup", "is_distributed", "rank", "world_size", "local_rank",
           "is_main", "barrier", "main_only", "rank_seed", "all_reduce_sums", "all_reduce_metrics",
           "all_gather_nograd", "all_gather_with_grad", "broadcast_buffers", "EvalShardSampler",
           "shard_loader", "start_epoch", "wrap_ddp", "convert_sync_batchnorm", "NullWriter"]


# ------------------------------------------------------------------------------ environment

def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError as err:
        raise ValueError(f"environment variable {name} must be an int, got {value!r}") from err


def init_distributed(backend: Optional[str] = None, timeout_s: float = 1800.0) -> Dict[str, object]:
    """Join the process group described by ``torchrun``'s environment.

    Reads ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK`` (and ``MASTER_ADDR``/``MASTER_PORT`` through
    ``init_method="env://"``). Without ``WORLD_SIZE`` (or with ``WORLD_SIZE=1``) nothing is
    initialised and the run is a single process. On CUDA machines the process is bound to
    ``cuda:LOCAL_RANK`` first, so ``torch.device("cuda")`` means this rank's GPU afterwards.

    Parameters
    ----------
    backend : {"nccl", "gloo"}, optional
        Default: ``"nccl"`` when CUDA is available, else ``"gloo"``.
    timeout_s : float
        Collective timeout in seconds.

    Returns
    -------
    dict
        ``{"rank", "world_size", "local_rank", "backend", "distributed"}``.

    Raises
    ------
    ValueError
        Bad environment values or an unknown backend.
    """
    world = _env_int("WORLD_SIZE", 1)
    rank_, local = _env_int("RANK", 0), _env_int("LOCAL_RANK", 0)
    if world < 1 or not 0 <= rank_ < world:
        raise ValueError(f"RANK={rank_} and WORLD_SIZE={world} are inconsistent")
    if backend is None:
        backend = "nccl" if torch.cuda.is_available() else "gloo"
    if backend not in ("nccl", "gloo"):
        raise ValueError(f"backend must be 'nccl' or 'gloo', got {backend!r}")
    if backend == "nccl" and not torch.cuda.is_available():
        raise ValueError("backend 'nccl' needs CUDA; use 'gloo' on the CPU")
    info = {"rank": rank_, "world_size": world, "local_rank": local, "backend": backend,
            "distributed": world > 1}
    if world == 1 or dist.is_initialized():
        return info
    if torch.cuda.is_available():
        if local >= torch.cuda.device_count():
            raise ValueError(f"LOCAL_RANK={local} but only {torch.cuda.device_count()} GPUs "
                             "are visible: lower --nproc_per_node")
        torch.cuda.set_device(local)
    dist.init_process_group(backend, init_method="env://", rank=rank_, world_size=world,
                            timeout=datetime.timedelta(seconds=timeout_s))
    return info


def cleanup() -> None:
    """Leave the process group (no-op when none was joined)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def is_distributed() -> bool:
    """True inside an initialised process group of more than one rank."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    """Global rank (0 in a single process)."""
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    """Number of ranks (1 in a single process)."""
    return dist.get_world_size() if is_distributed() else 1


def local_rank() -> int:
    """Rank within the node (``LOCAL_RANK``; 0 in a single process)."""
    return _env_int("LOCAL_RANK", 0) if is_distributed() else 0


def is_main() -> bool:
    """True on rank 0, the only rank that writes logs, checkpoints and merged outputs."""
    return rank() == 0


def barrier() -> None:
    """Wait for every rank (no-op in a single process)."""
    if is_distributed():
        dist.barrier()


def main_only(fn: Callable) -> Callable:
    """Decorate a resumable stage so that rank 0 runs it while the other ranks wait; then the
    others call it too and, finding its outputs on disk, return them (the suite's stages skip
    finished work). A single process just calls ``fn``."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        if is_main():
            result = fn(*args, **kwargs)
            barrier()
            return result
        barrier()
        return fn(*args, **kwargs)

    return wrapper


def rank_seed(seed: int, *salt: int) -> int:
    """A seed for this rank: ``seed`` itself on rank 0 with no ``salt`` (so a single process
    is unchanged), else a deterministic mix of ``seed``, the ``salt`` integers and the rank.

    Parameters
    ----------
    seed : int
    *salt : int
        E.g. the epoch.

    Returns
    -------
    int
        In ``[0, 2**63)``.
    """
    if not isinstance(seed, int):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    if not salt and rank() == 0:
        return seed
    mixed = seed
    for value in (*salt, rank()):
        mixed = (mixed * 1_000_003 + int(value) + 1) % (2 ** 63)
    return mixed


# ---------------------------------------------------------------------------------- metrics

def _reduce_device() -> torch.device:
    # NCCL only reduces CUDA tensors; gloo reduces CPU tensors
    if is_distributed() and dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def all_reduce_sums(*values) -> Tuple:
    """Sum numbers (Python or 0-dim tensors) over the ranks in one collective, in float64.

    Parameters
    ----------
    *values : int, float or torch.Tensor
        Per-rank partial sums (e.g. summed loss, correct counts, sample count).

    Returns
    -------
    tuple
        The global sums, each with its input's type (ints stay ints, tensors stay tensors on
        their device and dtype).
    """
    if not is_distributed():
        return tuple(values)
    for v in values:
        if torch.is_tensor(v) and v.numel() != 1:
            raise ValueError(f"all_reduce_sums takes scalars, got a tensor of shape "
                             f"{tuple(v.shape)}")
    packed = torch.tensor([float(v) if not torch.is_tensor(v) else 0.0 for v in values],
                          dtype=torch.float64, device=_reduce_device())
    tensors = [v.detach().reshape(()).to(packed) for v in values if torch.is_tensor(v)]
    if tensors:
        # tensor values are stacked on the device without a host sync before the collective
        mask = torch.tensor([torch.is_tensor(v) for v in values], device=packed.device)
        packed = packed.masked_scatter(mask, torch.stack(tensors))
    dist.all_reduce(packed)
    out = []
    for v, s in zip(values, packed):
        if torch.is_tensor(v):
            out.append(s.to(device=v.device, dtype=v.dtype).reshape(v.shape))
        elif isinstance(v, int):
            out.append(int(round(float(s))))
        else:
            out.append(float(s))
    return tuple(out)


def all_reduce_metrics(sums: Dict[str, torch.Tensor], correct: torch.Tensor, n: int):
    """Global versions of a training epoch's accumulators (the engine's loss sums per term,
    correct-prediction count and sample count), so ``sums[k] / n`` is the exact mean over all
    ranks' samples.

    Returns
    -------
    sums : dict of str to torch.Tensor
    correct : torch.Tensor
    n : int
    """
    keys = sorted(sums)
    reduced = all_reduce_sums(*[sums[k] for k in keys], correct, n)
    return dict(zip(keys, reduced[:len(keys)])), reduced[-2], reduced[-1]


# ---------------------------------------------------------------------------------- gathers

def all_gather_nograd(tensor: torch.Tensor) -> torch.Tensor:
    """Concatenate every rank's ``tensor`` along dim 0 (rank order), without autograd.

    Ranks may hold different numbers of rows; the other dimensions must agree.

    Parameters
    ----------
    tensor : torch.Tensor
        ``(n_r, ...)`` on this rank.

    Returns
    -------
    torch.Tensor
        ``(sum_r n_r, ...)``, detached; ``tensor.detach()`` in a single process.
    """
    if not torch.is_tensor(tensor) or tensor.dim() < 1:
        raise ValueError("tensor must be a tensor with at least one dimension")
    tensor = tensor.detach()
    if not is_distributed():
        return tensor
    sizes = torch.tensor([tensor.shape[0]], device=tensor.device)
    all_sizes = [torch.empty_like(sizes) for _ in range(world_size())]
    dist.all_gather(all_sizes, sizes)
    counts = [int(s) for s in all_sizes]
    top = max(counts)
    padded = tensor
    if tensor.shape[0] < top:
        padded = torch.cat([tensor, tensor.new_zeros((top - tensor.shape[0],) + tensor.shape[1:])])
    parts = [torch.empty_like(padded) for _ in counts]
    dist.all_gather(parts, padded.contiguous())
    return torch.cat([p[:c] for p, c in zip(parts, counts)])


class _GatherWithGrad(torch.autograd.Function):
    """All-gather whose backward sums the full gradient over the ranks and returns this
    rank's slice: the exact gradient of a loss that every rank computes identically on the
    gathered tensor, times the world size (which DDP's gradient averaging divides out)."""

    @staticmethod
    def forward(ctx, tensor):
        parts = [torch.empty_like(tensor) for _ in range(dist.get_world_size())]
        dist.all_gather(parts, tensor.contiguous())
        ctx.rows, ctx.rank = tensor.shape[0], dist.get_rank()
        return torch.cat(parts)

    @staticmethod
    def backward(ctx, grad):
        grad = grad.contiguous()
        dist.all_reduce(grad)
        start = ctx.rank * ctx.rows
        return grad[start:start + ctx.rows]


def all_gather_with_grad(tensor: torch.Tensor) -> torch.Tensor:
    """Concatenate every rank's ``tensor`` along dim 0 with gradients flowing back to each
    rank's own rows.

    Use it for a loss that every rank computes on the same gathered tensor (TopKD's clouds
    drawn from the global batch): with DDP's gradient averaging, the parameters receive the
    gradient of that loss exactly as a single process holding the global batch would.

    Parameters
    ----------
    tensor : torch.Tensor
        ``(n, ...)``; every rank must hold the same shape.

    Returns
    -------
    torch.Tensor
        ``(world_size * n, ...)``; ``tensor`` itself in a single process.
    """
    if not torch.is_tensor(tensor) or tensor.dim() < 1:
        raise ValueError("tensor must be a tensor with at least one dimension")
    if not is_distributed():
        return tensor
    shapes = all_gather_nograd(torch.tensor([list(tensor.shape)], device=tensor.device))
    if not bool((shapes == shapes[0]).all()):
        raise ValueError(f"all_gather_with_grad needs equal shapes on every rank, got "
                         f"{shapes.tolist()}")
    return _GatherWithGrad.apply(tensor)


def broadcast_buffers(module: nn.Module, src: int = 0) -> None:
    """Copy rank ``src``'s buffers (BatchNorm running statistics) to every rank, so that
    evaluation and checkpoints see one model (no-op in a single process)."""
    if not is_distributed():
        return
    for buf in module.buffers():
        dist.broadcast(buf.data, src)


# --------------------------------------------------------------------------------- sampling

class EvalShardSampler(Sampler):
    """Rank ``r`` takes indices ``r, r + W, r + 2W, ...`` of ``range(len(dataset))``: no
    padding and no duplicates, so summed metrics over the ranks are exact.

    Parameters
    ----------
    dataset : Dataset
    num_replicas, rank : int, optional
        Default: the process group's.
    """

    def __init__(self, dataset: Dataset, num_replicas: Optional[int] = None,
                 rank: Optional[int] = None):
        self.num_replicas = world_size() if num_replicas is None else num_replicas
        if rank is None:
            rank = dist.get_rank() if is_distributed() else 0
        self.rank = rank
        if not isinstance(self.num_replicas, int) or self.num_replicas < 1:
            raise ValueError(f"num_replicas must be a positive int, got {self.num_replicas!r}")
        if not isinstance(self.rank, int) or not 0 <= self.rank < self.num_replicas:
            raise ValueError(f"rank must be in [0, {self.num_replicas}), got {self.rank!r}")
        self.length = len(dataset)

    def __iter__(self):
        return iter(range(self.rank, self.length, self.num_replicas))

    def __len__(self) -> int:
        return len(range(self.rank, self.length, self.num_replicas))


def shard_loader(loader: DataLoader, train: bool, seed: int = 0) -> DataLoader:
    """This rank's share of ``loader``: the same loader in a single process or when it already
    has a :class:`DistributedSampler` / :class:`EvalShardSampler`; otherwise a copy with the
    global batch split over the ranks.

    Parameters
    ----------
    loader : DataLoader
        Built for one process with the *global* batch size.
    train : bool
        Training (:class:`DistributedSampler`, shuffled per ``(seed, epoch)``, tail dropped)
        or evaluation (:class:`EvalShardSampler`).
    seed : int
        The sampler's shuffling seed.

    Raises
    ------
    ValueError
        When the global training batch size is not a multiple of the world size.
    """
    if not is_distributed():
        return loader
    if not isinstance(loader, DataLoader):
        raise TypeError(f"loader must be a DataLoader under torchrun, got {type(loader).__name__}")
    if isinstance(loader.sampler, (DistributedSampler, EvalShardSampler)):
        return loader
    world = world_size()
    if train and loader.batch_size % world:
        raise ValueError(f"the global batch size ({loader.batch_size}) must be a multiple of "
                         f"the world size ({world})")
    sampler = (DistributedSampler(loader.dataset, shuffle=True, seed=seed, drop_last=True)
               if train else EvalShardSampler(loader.dataset))
    generator = torch.Generator().manual_seed(rank_seed(seed)) if train else loader.generator
    # evaluation batches only bound memory: round up instead of requiring a multiple
    batch_size = loader.batch_size // world if train else -(-loader.batch_size // world)
    return DataLoader(loader.dataset, batch_size=batch_size, sampler=sampler,
                      num_workers=loader.num_workers, pin_memory=loader.pin_memory,
                      drop_last=loader.drop_last, generator=generator,
                      collate_fn=loader.collate_fn)


def start_epoch(loader: DataLoader, epoch: int, seed: int) -> None:
    """Prepare an epoch: ``sampler.set_epoch`` and ``dataset.set_epoch`` where they exist and,
    in a multi-process run, per-rank seeds for the loader's generator (worker augmentation
    seeds) and for Python, numpy and torch (derived from ``(seed, epoch, rank)``)."""
    for part in (getattr(loader, "sampler", None), getattr(loader, "dataset", None)):
        if hasattr(part, "set_epoch"):
            part.set_epoch(epoch)
    if not is_distributed():
        return
    s = rank_seed(seed, epoch)
    if loader.generator is not None:
        loader.generator.manual_seed(s)
    random.seed(s)
    np.random.seed(s % 2 ** 32)
    torch.manual_seed(s)


# ---------------------------------------------------------------------------------- wrapping

class _TrainStep(nn.Module):
    """Adapter whose ``forward`` is the distiller's ``forward_train``, so DDP's forward hooks
    (gradient-sync preparation, buffer broadcast) run around the training pass."""

    def __init__(self, distiller: nn.Module):
        super().__init__()
        self.distiller = distiller

    def forward(self, images, targets, **kw):
        return self.distiller.forward_train(images, targets, **kw)


class DDPDistiller(nn.parallel.DistributedDataParallel):
    """DDP over a distiller's student and connectors with the distiller's ``forward_train``.

    The teacher is ignored (frozen, identical on every rank) and so is the state that the
    distiller keeps identical across the ranks itself (the modules its members'
    ``prepare_distributed`` return, e.g. CRD's memory banks); everything else learnable is
    averaged as usual and the student's BatchNorm buffers are broadcast from rank 0 at each
    forward.
    """

    def forward_train(self, images: torch.Tensor, targets: torch.Tensor, **kw):
        """Same contract as :meth:`topkd.distillers.Distiller.forward_train`."""
        return self(images, targets, **kw)


def wrap_ddp(distiller: nn.Module, local_batch_size: Optional[int] = None,
             find_unused_parameters: bool = False):
    """Prepare a distiller for training on this rank.

    Single process: the distiller itself. Multi-process: each member's
    ``prepare_distributed(local_batch_size)`` (see :class:`topkd.distillers.Distiller`: CRD's
    gathered memory updates, TopKD's clouds from the global batch), then a
    :class:`DDPDistiller` on this rank's device that leaves alone the teacher and the modules
    those hooks return.

    Parameters
    ----------
    distiller : topkd.distillers.Distiller
        Already on its device (and memory format).
    local_batch_size : int, optional
        Images per rank and step.
    find_unused_parameters : bool
        Passed to DDP.

    Returns
    -------
    Distiller or DDPDistiller
        Anything with ``forward_train(images, targets, **kw)``.
    """
    if not hasattr(distiller, "forward_train"):
        raise TypeError(f"distiller must have forward_train, got {type(distiller).__name__}")
    if not is_distributed():
        return distiller
    self_synced = [m for member in distiller.members()
                   for m in member.prepare_distributed(local_batch_size)]
    synced_ids = {id(m) for m in self_synced}
    synced = [name for name, m in distiller.named_modules() if id(m) in synced_ids]
    step = _TrainStep(distiller)

    def ignored(name: str) -> bool:
        return name.startswith("teacher.") or any(name.startswith(f"{s}.") for s in synced)

    ignore = [f"distiller.{name}" for name, _ in distiller.named_parameters() if ignored(name)]
    ignore += [f"distiller.{name}" for name, _ in distiller.named_buffers() if ignored(name)]
    nn.parallel.DistributedDataParallel._set_params_and_buffers_to_ignore_for_model(step, ignore)
    param = next(p for p in distiller.parameters() if p.requires_grad)
    device_ids = [param.device.index] if param.device.type == "cuda" else None
    return DDPDistiller(step, device_ids=device_ids, find_unused_parameters=find_unused_parameters)


def convert_sync_batchnorm(module: nn.Module) -> nn.Module:
    """``nn.SyncBatchNorm.convert_sync_batchnorm`` with a clear error where it cannot run.

    Raises
    ------
    ValueError
        On the CPU: SyncBatchNorm needs CUDA tensors in a multi-process run.
    """
    if not torch.cuda.is_available():
        raise ValueError("train.norm='sync' (SyncBatchNorm) needs CUDA; use 'batch' (per-rank "
                         "statistics) or 'frozen' on the CPU")
    return nn.SyncBatchNorm.convert_sync_batchnorm(module)


class NullWriter:
    """Stands in for TensorBoard's ``SummaryWriter`` on the ranks that do not log."""

    def add_scalar(self, *args, **kwargs) -> None:
        """Discard a scalar."""

    def close(self) -> None:
        """Nothing to close."""
