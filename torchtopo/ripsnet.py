"""RipsNet: a DeepSets network that learns a vectorised persistence diagram from a point cloud.

de Surrel, Hensel, Carrière, Lacombe, Ike, Kurihara, Glisse, Chazal, "RipsNet: a general
architecture for fast and robust estimation of the persistent homology of point clouds",
LoG 2022. A shared per-point MLP ``phi``, a permutation-invariant pooling over the real points,
an MLP ``rho``: trained once on (cloud, persistence image) pairs, it replaces persistent
homology in a training loop.
"""

from __future__ import annotations

import copy
import json
import math
import os
from typing import Any, Sequence

import torch
from torch import Tensor, nn

from ._checks import check_all, check_choice, check_floating, check_mask, check_no_nan, check_shape
from .vectorize import PersistenceImage

__all__ = ["masked_pool", "segment_pool", "RipsNet", "fit_ripsnet"]

_POOLINGS = ("sum", "mean", "max")
_ACTIVATIONS: dict[str | None, type[nn.Module]] = {
    "relu": nn.ReLU, "gelu": nn.GELU, "elu": nn.ELU, "silu": nn.SiLU, "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid, None: nn.Identity,
}
_FORMAT = "torchtopo.RipsNet/1"


def masked_pool(x: Tensor, mask: Tensor | None = None, pooling: str = "mean") -> Tensor:
    """Pool ``x`` ``(B, N, C)`` over its real rows: ``(B, C)``.

    Padding rows (``mask`` False) never change the result, whatever they hold. Every cloud must
    have at least one real row.

    >>> x = torch.tensor([[[1.0], [3.0], [100.0]]])
    >>> masked_pool(x, torch.tensor([[True, True, False]]), "mean")
    tensor([[2.]])
    """
    check_choice(pooling, "pooling", _POOLINGS)
    if mask is None:
        return {"sum": x.sum, "mean": x.mean, "max": x.amax}[pooling](1)
    check_all(mask.any(1), "mask: every cloud needs at least one real point")
    real = mask.unsqueeze(-1)
    if pooling == "max":
        return x.masked_fill(~real, -math.inf).amax(1)
    total = torch.where(real, x, 0.0).sum(1)
    return total if pooling == "sum" else total / mask.sum(1, keepdim=True).to(x.dtype)


def segment_pool(x: Tensor, batch: Tensor, batch_size: int, pooling: str = "mean") -> Tensor:
    """Pool the rows of ``x`` ``(P, C)`` by cloud index ``batch`` ``(P,)``: ``(batch_size, C)``.

    Uses torch's native ``scatter_reduce`` (no torch-scatter); differentiable. Every cloud
    ``0 .. batch_size - 1`` must own at least one row.

    >>> x = torch.tensor([[1.0], [3.0], [5.0]])
    >>> segment_pool(x, torch.tensor([0, 0, 1]), 2, "sum")
    tensor([[4.],
            [5.]])
    """
    check_choice(pooling, "pooling", _POOLINGS)
    counts = torch.bincount(batch, minlength=batch_size)
    check_all(counts[:batch_size] > 0, "batch: every cloud needs at least one point")
    reduce = {"sum": "sum", "mean": "mean", "max": "amax"}[pooling]
    index = batch.unsqueeze(-1).expand_as(x)
    return x.new_zeros(batch_size, x.shape[-1]).scatter_reduce(0, index, x, reduce, include_self=False)


def _mlp(widths: Sequence[int], bias: bool, activation: str, last_activation: str | None) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
        layers += [nn.Linear(a, b, bias=bias), _ACTIVATIONS[activation if i < len(widths) - 2 else last_activation]()]
    return nn.Sequential(*layers)


class RipsNet(nn.Module):
    r"""DeepSets network ``rho(pool(phi(x_i)))`` from point clouds to vectors.

    Parameters
    ----------
    in_dim : int
        Point dimension ``D``.
    out_dim : int
        Output size, e.g. :attr:`PersistenceImage.num_features`.
    phi : sequence of int
        Widths of the per-point MLP's layers (each followed by ``activation``).
    rho : sequence of int
        Hidden widths of the MLP after pooling; its last layer maps to ``out_dim`` and is
        followed by ``output_activation``.
    pooling : {"mean", "sum", "max"}
        Permutation-invariant pooling over the real points.
    activation : str
        ``"relu"`` (default), ``"gelu"``, ``"elu"``, ``"silu"``, ``"tanh"`` or ``"sigmoid"``.
    output_activation : str or None
        ``"sigmoid"`` (default, for images scaled to [0, 1]) or None for a linear output.
    phi_bias, rho_bias : bool
        Biases in ``phi`` / ``rho`` (TopKD's ``rho`` has none).

    Shape:
        - padded: ``points (B, N, D)`` with an optional ``mask (B, N)`` (True = real point), or a
          single cloud ``(N, D)`` -> ``(out_dim,)``;
        - ragged: ``points (P, D)`` with ``batch (P,)`` long cloud indices -> ``(B, out_dim)``,
          ``B = batch_size`` (or ``batch.max() + 1``, a host sync).

        Padding rows never change the output, and ragged equals padded.

    Examples
    --------
    >>> net = RipsNet.for_features(64, 400)
    >>> sum(p.numel() for p in net.parameters())  # TopKD's count for d = 64
    113896
    >>> net(torch.randn(8, 64, 64)).shape
    torch.Size([8, 400])
    """

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        phi: Sequence[int] = (64, 32, 32),
        rho: Sequence[int] = (50, 100, 200),
        pooling: str = "mean",
        activation: str = "relu",
        output_activation: str | None = "sigmoid",
        *,
        phi_bias: bool = True,
        rho_bias: bool = True,
    ) -> None:
        super().__init__()
        widths = [int(in_dim), *map(int, phi), *map(int, rho), int(out_dim)]
        if min(widths) < 1 or not phi:
            raise ValueError(f"RipsNet: in_dim, out_dim and the widths must be positive and phi non-empty, "
                             f"got in_dim={in_dim}, phi={tuple(phi)}, rho={tuple(rho)}, out_dim={out_dim}")
        check_choice(pooling, "pooling", _POOLINGS)
        check_choice(activation, "activation", [a for a in _ACTIVATIONS if a])
        check_choice(output_activation, "output_activation", list(_ACTIVATIONS))
        self.in_dim, self.out_dim, self.pooling = int(in_dim), int(out_dim), pooling
        self.phi_widths, self.rho_widths = tuple(map(int, phi)), tuple(map(int, rho))
        self.activation, self.output_activation = activation, output_activation
        self.phi_bias, self.rho_bias = bool(phi_bias), bool(rho_bias)
        self.phi = _mlp([self.in_dim, *self.phi_widths], phi_bias, activation, activation)
        self.rho = _mlp([self.phi_widths[-1], *self.rho_widths, self.out_dim], rho_bias, activation, output_activation)

    @classmethod
    def for_features(cls, in_dim: int, out_dim: int, pooling: str = "mean") -> "RipsNet":
        """TopKD's RipsNet for ``in_dim``-dimensional features.

        ``phi``: ``(d, d/2, d/2)`` for ``d <= 512``, ``(512, 256, 256)`` up to 1024,
        ``(1024, 512, 256)`` above, with biases; ``rho``: ``(50, 100, 200)`` then ``out_dim``
        without biases, ReLU between, sigmoid last. ``d = 64`` and ``d = 128`` give the official
        113,896 and 137,128 parameters (with ``out_dim = 400``).
        """
        d = int(in_dim)
        phi = (d, d // 2, d // 2) if d <= 512 else (512, 256, 256) if d <= 1024 else (1024, 512, 256)
        return cls(d, out_dim, phi, (50, 100, 200), pooling, "relu", "sigmoid", rho_bias=False)

    def forward(
        self, points: Tensor, mask: Tensor | None = None, *, batch: Tensor | None = None, batch_size: int | None = None
    ) -> Tensor:
        """Map clouds to vectors.

        Parameters
        ----------
        points : Tensor
            ``(B, N, D)`` or ``(N, D)`` padded clouds; ragged ``(P, D)`` with ``batch``.
        mask : Tensor, optional
            ``(B, N)`` bool, True for real points (padded input only).
        batch : Tensor, optional
            ``(P,)`` long cloud index of each point (ragged input).
        batch_size : int, optional
            Number of ragged clouds; default ``batch.max() + 1`` (reads it back from the device).

        Returns
        -------
        Tensor
            ``(B, out_dim)``, or ``(out_dim,)`` for one unbatched cloud.
        """
        check_floating(points, "points")
        if batch is not None:
            check_shape(points, "points", f"(P, {self.in_dim}) with batch", points.dim() == 2 and points.shape[1] == self.in_dim)
            if mask is not None:
                raise ValueError("pass either mask (padded input) or batch (ragged input), not both")
            if not isinstance(batch, Tensor) or batch.dtype != torch.long or batch.shape != points.shape[:1]:
                raise ValueError(f"batch must be a long tensor of shape ({points.shape[0]},), got "
                                 f"{batch.dtype if isinstance(batch, Tensor) else type(batch).__name__}")
            if points.shape[0] == 0:
                raise ValueError("points: the ragged batch holds no point")
            size = int(batch.max()) + 1 if batch_size is None else int(batch_size)
            check_all((batch >= 0) & (batch < size), f"batch: indices must lie in [0, {size})")
            check_no_nan(points, "points")
            return self.rho(segment_pool(self.phi(points), batch, size, self.pooling))
        check_shape(points, "points", f"(B, N, {self.in_dim}) or (N, {self.in_dim})",
                    points.dim() in (2, 3) and points.shape[-1] == self.in_dim)
        check_mask(mask, points.shape[:-1])
        if points.shape[-2] == 0:
            raise ValueError("points: a cloud needs at least one point")
        batched = points.dim() == 3
        if not batched:
            points, mask = points.unsqueeze(0), None if mask is None else mask.unsqueeze(0)
        if mask is not None:
            points = torch.where(mask.unsqueeze(-1), points, 0.0)  # padding may hold anything, even NaN
        check_no_nan(points, "points")
        out = self.rho(masked_pool(self.phi(points), mask, self.pooling))
        return out if batched else out.squeeze(0)

    # -- persistence ----------------------------------------------------------------------------

    def to_config(self) -> dict[str, Any]:
        """The constructor's arguments, JSON-able."""
        return dict(in_dim=self.in_dim, out_dim=self.out_dim, phi=list(self.phi_widths), rho=list(self.rho_widths),
                    pooling=self.pooling, activation=self.activation, output_activation=self.output_activation,
                    phi_bias=self.phi_bias, rho_bias=self.rho_bias)

    def save(self, path: str | os.PathLike, vectorizer: PersistenceImage | None = None) -> None:
        """Save weights, architecture and the vectoriser that made the targets in one file.

        The file holds tensors and JSON strings only, so :meth:`load` reads it with
        ``torch.load(..., weights_only=True)``. Keeping the :class:`PersistenceImage` (its
        resolution, fitted range, bandwidth and scale) makes the saved RipsNet self-describing.
        """
        torch.save({
            "format": _FORMAT,
            "config": json.dumps(self.to_config()),
            "vectorizer": json.dumps(None if vectorizer is None else vectorizer.to_config()),
            "state_dict": {k: v.detach().cpu() for k, v in self.state_dict().items()},
        }, path)

    @classmethod
    def load(cls, path: str | os.PathLike, map_location: str | torch.device | None = None
             ) -> tuple["RipsNet", PersistenceImage | None]:
        """Load a file written by :meth:`save`: ``(model, vectorizer or None)``.

        Safe on untrusted files: ``weights_only=True`` refuses anything but tensors and plain
        containers.
        """
        payload = torch.load(path, map_location=map_location, weights_only=True)
        if not isinstance(payload, dict) or payload.get("format") != _FORMAT:
            raise ValueError(f"{os.fspath(path)!r} is not a RipsNet file written by RipsNet.save")
        model = cls(**json.loads(payload["config"]))
        model.load_state_dict(payload["state_dict"])
        vectorizer = json.loads(payload["vectorizer"])
        return model.to(map_location) if map_location is not None else model, (
            None if vectorizer is None else PersistenceImage.from_config(vectorizer))

    def extra_repr(self) -> str:
        return f"in_dim={self.in_dim}, out_dim={self.out_dim}, pooling={self.pooling!r}"


def _pad(clouds: Tensor | Sequence[Tensor], mask: Tensor | None) -> tuple[Tensor, Tensor]:
    if isinstance(clouds, Tensor):
        check_floating(clouds, "clouds")
        check_shape(clouds, "clouds", "(B, N, D)", clouds.dim() == 3)
        check_mask(mask, clouds.shape[:-1])
        return clouds, torch.ones(clouds.shape[:-1], dtype=torch.bool) if mask is None else mask
    if mask is not None:
        raise ValueError("mask must be None when clouds is a list")
    for i, c in enumerate(clouds):
        check_floating(c, f"clouds[{i}]")
        check_shape(c, f"clouds[{i}]", "(n, D)", c.dim() == 2 and c.shape[1] == clouds[0].shape[1])
    padded = nn.utils.rnn.pad_sequence(list(clouds), batch_first=True)
    lengths = torch.tensor([c.shape[0] for c in clouds])
    return padded, torch.arange(padded.shape[1]) < lengths.unsqueeze(1)


def fit_ripsnet(
    model: RipsNet,
    clouds: Tensor | Sequence[Tensor],
    targets: Tensor,
    *,
    mask: Tensor | None = None,
    epochs: int = 1000,
    lr: float = 5e-4,
    batch_size: int = 32,
    val_fraction: float = 0.2,
    patience: int = 50,
    seed: int = 0,
    progress: bool = True,
    log_dir: str | os.PathLike | None = None,
) -> dict[str, Any]:
    """Train ``model`` to map ``clouds`` to ``targets`` (MSE, Adamax), keeping the best weights.

    A ``val_fraction`` of the clouds (drawn with ``seed``) is held out; training stops when the
    validation MSE has not improved for ``patience`` epochs, and the weights of the best epoch
    are loaded back into ``model``. Batches move to the model's device.

    Parameters
    ----------
    model : RipsNet
    clouds : Tensor or list of Tensor
        ``(B, N, D)`` (with an optional ``mask (B, N)``) or a list of ``(n_i, D)`` clouds.
    targets : Tensor
        ``(B, out_dim)``, e.g. ``PersistenceImage(...).fit(d)(d).flatten(1)``.
    epochs, lr, batch_size, val_fraction, patience, seed
        Optimisation settings; ``lr = 5e-4`` with Adamax as in the RipsNet paper and TopKD.
    progress : bool
        Show a tqdm progress bar.
    log_dir : path, optional
        Also write ``loss/train`` and ``loss/val`` to TensorBoard there (needs ``tensorboard``).

    Returns
    -------
    dict
        ``train_loss`` and ``val_loss`` (lists, one entry per epoch), ``best_epoch``,
        ``best_val_loss``, and ``constant_val_loss``: the validation MSE of the best constant
        predictor fitted on the training targets (their mean), the baseline to beat.

    Examples
    --------
    >>> clouds, targets = torch.randn(40, 10, 2), torch.rand(40, 3)
    >>> history = fit_ripsnet(RipsNet(2, 3), clouds, targets, epochs=3, progress=False)
    >>> len(history["val_loss"]), sorted(history)[:2]
    (3, ['best_epoch', 'best_val_loss'])
    """
    from tqdm.auto import tqdm

    clouds, mask = _pad(clouds, mask)
    check_floating(targets, "targets")
    check_shape(targets, "targets", f"({clouds.shape[0]}, {model.out_dim})",
                targets.shape == (clouds.shape[0], model.out_dim))
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    n_val = max(1, round(val_fraction * clouds.shape[0]))
    if clouds.shape[0] - n_val < 1:
        raise ValueError(f"clouds: need at least 2 clouds to hold some out for validation, got {clouds.shape[0]}")
    order = torch.randperm(clouds.shape[0], generator=torch.Generator().manual_seed(seed))
    val, train = order[:n_val], order[n_val:]
    device = next(model.parameters()).device
    generator = torch.Generator().manual_seed(seed + 1)
    optimizer = torch.optim.Adamax(model.parameters(), lr=lr)
    writer = None
    if log_dir is not None:
        from torch.utils.tensorboard import SummaryWriter

        writer = SummaryWriter(os.fspath(log_dir))

    def batches(index: Tensor):
        for start in range(0, index.numel(), batch_size):
            i = index[start:start + batch_size]
            yield clouds[i].to(device), mask[i].to(device), targets[i].to(device)

    def val_loss() -> float:
        model.eval()
        with torch.no_grad():
            total = sum(nn.functional.mse_loss(model(x, m), y, reduction="sum") for x, m, y in batches(val))
        model.train()
        return float(total) / targets[val].numel()

    constant = nn.functional.mse_loss(targets[train].mean(0).expand(n_val, -1), targets[val]).item()
    history: dict[str, Any] = {"train_loss": [], "val_loss": [], "best_epoch": -1, "best_val_loss": math.inf,
                               "constant_val_loss": constant}
    best_state, since_best = copy.deepcopy(model.state_dict()), 0
    model.train()
    bar = tqdm(range(epochs), disable=not progress, desc="RipsNet")
    for epoch in bar:
        total = 0.0
        for x, m, y in batches(train[torch.randperm(train.numel(), generator=generator)]):
            loss = nn.functional.mse_loss(model(x, m), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.detach() * y.shape[0]
        history["train_loss"].append(float(total) / train.numel())
        history["val_loss"].append(val_loss())
        if writer is not None:
            writer.add_scalar("loss/train", history["train_loss"][-1], epoch)
            writer.add_scalar("loss/val", history["val_loss"][-1], epoch)
        bar.set_postfix(train=f"{history['train_loss'][-1]:.3g}", val=f"{history['val_loss'][-1]:.3g}")
        if history["val_loss"][-1] < history["best_val_loss"]:
            history["best_epoch"], history["best_val_loss"] = epoch, history["val_loss"][-1]
            best_state, since_best = copy.deepcopy(model.state_dict()), 0
        else:
            since_best += 1
            if since_best >= patience:
                break
    bar.close()
    if writer is not None:
        writer.close()
    model.load_state_dict(best_state)
    model.eval()
    return history
