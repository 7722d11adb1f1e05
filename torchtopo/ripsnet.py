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

from ._checks import check_all, check_choice, check_finite, check_floating, check_int, check_ints, check_mask, check_number, check_positive, check_shape
from .vectorize import PersistenceImage

__all__ = ["masked_pool", "segment_pool", "RipsNet", "fit_ripsnet", "split_indices", "r2_score", "OUTPUT_RANGES"]

_POOLINGS = ("sum", "mean", "max")
_ACTIVATIONS: dict[str | None, type[nn.Module]] = {
    "relu": nn.ReLU, "gelu": nn.GELU, "elu": nn.ELU, "silu": nn.SiLU, "tanh": nn.Tanh,
    "sigmoid": nn.Sigmoid, None: nn.Identity,
}
#: The values each output activation can produce; targets outside them cannot be learned.
OUTPUT_RANGES: dict[str | None, tuple[float, float]] = {
    "sigmoid": (0.0, 1.0), "tanh": (-1.0, 1.0), "relu": (0.0, math.inf), "elu": (-1.0, math.inf),
    "gelu": (-0.17, math.inf), "silu": (-0.279, math.inf), None: (-math.inf, math.inf),
}
_FORMAT = "torchtopo.RipsNet/1"


def masked_pool(x: Tensor, *, mask: Tensor | None = None, pooling: str = "mean") -> Tensor:
    """Pool ``x`` ``(B, N, C)`` over its real rows: ``(B, C)``.

    Padding rows (``mask`` False) never change the result, whatever they hold. Every cloud must
    have at least one real row.

    >>> x = torch.tensor([[[1.0], [3.0], [100.0]]])
    >>> masked_pool(x, mask=torch.tensor([[True, True, False]]), pooling="mean")
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
        ``"sigmoid"`` (default, for images scaled to [0, 1]: see
        ``PersistenceImage(normalize=True)``) or None for a linear output. The values it can
        produce are :data:`OUTPUT_RANGES`; :func:`fit_ripsnet` refuses targets outside them.
    phi_bias, rho_bias : bool
        Biases in ``phi`` / ``rho`` (TopKD's ``rho`` has none).
    input_norm : bool
        Standardise each point coordinate, ``(x - input_shift) / input_scale``, before ``phi``
        (buffers of shape ``(in_dim,)``, identity until :func:`fit_ripsnet` sets them from the
        training clouds; saved with the model). Default False.
    output_bias : bool
        Give the last layer a bias even when ``rho_bias`` is False; :func:`fit_ripsnet` starts it
        at the mean training target (through the inverse of a sigmoid or tanh output; the mean
        itself for the other activations), so the fit starts near the constant predictor instead
        of having to find it. Default False.

    Shape:
        - padded: ``points (B, N, D)`` with an optional ``mask (B, N)`` (True = real point), or a
          single cloud ``(N, D)`` -> ``(out_dim,)``;
        - ragged: ``points (P, D)`` with ``batch (P,)`` long cloud indices -> ``(B, out_dim)``,
          ``B = batch_size`` (or ``batch.max() + 1``, a host sync).

        Padding rows never change the output (they may hold anything, NaN included), and ragged
        equals padded.

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
        input_norm: bool = False,
        output_bias: bool = False,
    ) -> None:
        super().__init__()
        self.in_dim, self.out_dim = check_int(in_dim, "in_dim", 1), check_int(out_dim, "out_dim", 1)
        self.phi_widths = check_ints(tuple(phi), "phi", len(phi), 1)
        self.rho_widths = check_ints(tuple(rho), "rho", len(rho), 1)
        if not self.phi_widths:
            raise ValueError("phi must list at least one width")
        check_choice(pooling, "pooling", _POOLINGS)
        check_choice(activation, "activation", [a for a in _ACTIVATIONS if a])
        check_choice(output_activation, "output_activation", list(_ACTIVATIONS))
        self.pooling, self.activation, self.output_activation = pooling, activation, output_activation
        self.phi_bias, self.rho_bias = bool(phi_bias), bool(rho_bias)
        self.phi = _mlp([self.in_dim, *self.phi_widths], phi_bias, activation, activation)
        self.rho = _mlp([self.phi_widths[-1], *self.rho_widths, self.out_dim], rho_bias, activation, output_activation)
        self.input_norm, self.output_bias = bool(input_norm), bool(output_bias)
        if self.output_bias and not self.rho_bias:
            self.rho[-2].bias = nn.Parameter(torch.zeros(self.out_dim))
        if self.input_norm:
            self.register_buffer("input_shift", torch.zeros(self.in_dim))
            self.register_buffer("input_scale", torch.ones(self.in_dim))

    @classmethod
    def for_features(cls, in_dim: int, out_dim: int, pooling: str = "mean", *, input_norm: bool = False,
                     output_bias: bool = False) -> "RipsNet":
        """TopKD's RipsNet for ``in_dim``-dimensional features.

        ``phi``: ``(d, d/2, d/2)`` for ``32 <= d <= 512`` (TopKD's rule; below 32 the widths stay
        at ``(32, 16, 16)`` so that small ``d`` keeps a usable bottleneck), ``(512, 256, 256)`` up
        to 1024, ``(1024, 512, 256)`` above, with biases; ``rho``: ``(50, 100, 200)`` then
        ``out_dim`` without biases, ReLU between, sigmoid last. ``d = 64`` and ``d = 128`` give the
        official 113,896 and 137,128 parameters (with ``out_dim = 400``). ``input_norm`` and
        ``output_bias`` (not TopKD's; see :class:`RipsNet`) are off by default.

        >>> RipsNet.for_features(2, 20).phi_widths
        (32, 16, 16)
        """
        d = check_int(in_dim, "in_dim", 1)
        if d <= 512:
            phi = (max(d, 32), max(d // 2, 16), max(d // 2, 16))
        else:
            phi = (512, 256, 256) if d <= 1024 else (1024, 512, 256)
        return cls(d, out_dim, phi, (50, 100, 200), pooling, "relu", "sigmoid", rho_bias=False,
                   input_norm=input_norm, output_bias=output_bias)

    def forward(
        self, points: Tensor, *, mask: Tensor | None = None, batch: Tensor | None = None, batch_size: int | None = None
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

        Raises
        ------
        TypeError
            Non-floating ``points``, a non-bool ``mask`` or a non-long ``batch``.
        ValueError
            Wrong shapes, NaN or inf among the real points, a cloud without real points, or an
            output that overflowed inside the network (points too large for its dtype).
        """
        check_floating(points, "points")
        if batch is not None:
            if mask is not None:
                raise ValueError("pass either mask (padded input) or batch (ragged input), not both")
            check_shape(points, "points", f"(P, {self.in_dim}) with batch", points.dim() == 2 and points.shape[1] == self.in_dim)
            if not isinstance(batch, Tensor) or batch.dtype != torch.long:
                raise TypeError(f"batch must be a long tensor, got {batch.dtype if isinstance(batch, Tensor) else type(batch).__name__}")
            check_shape(batch, "batch", f"({points.shape[0]},)", batch.shape == points.shape[:1])
            if points.shape[0] == 0:
                raise ValueError("points: the ragged batch holds no point")
            size = int(batch.max()) + 1 if batch_size is None else check_int(batch_size, "batch_size", 1)
            check_all((batch >= 0) & (batch < size), f"batch: indices must lie in [0, {size})")
            check_finite(points, "points")
            points = self._normalized(points)
            return self._checked(self.rho(self._checked(segment_pool(self.phi(points), batch, size, self.pooling))))
        check_shape(points, "points", f"(B, N, {self.in_dim}) or (N, {self.in_dim})",
                    points.dim() in (2, 3) and points.shape[-1] == self.in_dim)
        check_mask(mask, points.shape[:-1], masks=("points", points))
        if points.shape[-2] == 0:
            raise ValueError("points: a cloud needs at least one point")
        batched = points.dim() == 3
        if not batched:
            points, mask = points.unsqueeze(0), None if mask is None else mask.unsqueeze(0)
        check_finite(points, "points", mask)
        points = self._normalized(points)
        if mask is not None:
            points = torch.where(mask.unsqueeze(-1), points, 0.0)  # padding may hold anything, even NaN
        pooled = self._checked(masked_pool(self.phi(points), mask=mask, pooling=self.pooling))
        out = self._checked(self.rho(pooled))
        return out if batched else out.squeeze(0)

    def _normalized(self, points: Tensor) -> Tensor:
        return (points - self.input_shift) / self.input_scale if self.input_norm else points

    @staticmethod
    def _checked(x: Tensor) -> Tensor:
        """``x`` (the pooled features or the output), refused if not finite: an overflow inside the
        network would otherwise surface as NaN, or as a saturated output that looks valid."""
        check_all(torch.isfinite(x.detach()), "RipsNet: the points overflow inside the network (values too "
                  "large for its dtype); rescale the points")
        return x

    # -- persistence ----------------------------------------------------------------------------

    def to_config(self) -> dict[str, Any]:
        """The constructor's arguments, JSON-able."""
        return dict(in_dim=self.in_dim, out_dim=self.out_dim, phi=list(self.phi_widths), rho=list(self.rho_widths),
                    pooling=self.pooling, activation=self.activation, output_activation=self.output_activation,
                    phi_bias=self.phi_bias, rho_bias=self.rho_bias, input_norm=self.input_norm,
                    output_bias=self.output_bias)

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
        containers, and the architecture is checked against the tensors the file holds before
        any weight is allocated (a crafted config cannot make it allocate more than the file).
        """
        name = os.fspath(path)
        payload = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(payload, dict) or payload.get("format") != _FORMAT:
            raise ValueError(f"{name!r} is not a RipsNet file written by RipsNet.save")
        try:
            config = json.loads(payload["config"])
            with torch.device("meta"):  # shapes only: no memory
                probe = cls(**config)
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(f"{name!r}: invalid RipsNet config: {error}") from error
        state = payload.get("state_dict")
        expected = {k: tuple(v.shape) for k, v in probe.state_dict().items()}
        found = {k: tuple(v.shape) for k, v in state.items()} if isinstance(state, dict) else None
        if found != expected:
            raise ValueError(f"{name!r}: the weights do not match the saved architecture "
                             f"(expected {expected}, found {found})")
        model = cls(**config)
        model.load_state_dict(state)
        vectorizer = json.loads(payload["vectorizer"])
        return model.to(map_location) if map_location is not None else model, (
            None if vectorizer is None else PersistenceImage.from_config(vectorizer))

    def extra_repr(self) -> str:
        extra = "".join(f", {k}=True" for k in ("input_norm", "output_bias") if getattr(self, k))
        return f"in_dim={self.in_dim}, out_dim={self.out_dim}, pooling={self.pooling!r}{extra}"


# ----------------------------------------------------------------------------------- fitting

_SPLITS = ("random", "ordered")


def _pad(clouds: Tensor | Sequence[Tensor], mask: Tensor | None) -> tuple[Tensor, Tensor]:
    if isinstance(clouds, Tensor):
        check_floating(clouds, "clouds")
        check_shape(clouds, "clouds", "(B, N, D)", clouds.dim() == 3)
        check_mask(mask, clouds.shape[:-1], masks=("clouds", clouds))
        return clouds, torch.ones(clouds.shape[:-1], dtype=torch.bool) if mask is None else mask
    if mask is not None:
        raise ValueError("mask must be None when clouds is a list")
    for i, c in enumerate(clouds):
        check_floating(c, f"clouds[{i}]")
        check_shape(c, f"clouds[{i}]", "(n, D)", c.dim() == 2 and c.shape[1] == clouds[0].shape[1])
    padded = nn.utils.rnn.pad_sequence(list(clouds), batch_first=True)
    lengths = torch.tensor([c.shape[0] for c in clouds])
    return padded, torch.arange(padded.shape[1]) < lengths.unsqueeze(1)


def _check_targets(targets: Tensor, model: RipsNet, count: int) -> None:
    """Targets must be finite and inside the range the model's output activation can produce."""
    check_floating(targets, "targets")
    check_shape(targets, "targets", f"({count}, {model.out_dim})", targets.shape == (count, model.out_dim))
    check_finite(targets, "targets")
    low, high = OUTPUT_RANGES[model.output_activation]
    t_min, t_max = targets.min().item(), targets.max().item()
    if t_min < low or t_max > high:
        raise ValueError(
            f"targets lie in [{t_min:.4g}, {t_max:.4g}] but the RipsNet's output activation "
            f"{model.output_activation!r} only produces values in [{low}, {high}]: the fit could not learn "
            "them. Scale the targets into that range (e.g. PersistenceImage(..., normalize=True), or divide "
            "by targets.max()), or build the RipsNet with output_activation=None")


def split_indices(count: int, val_fraction: float, split: str = "random", seed: int = 0) -> tuple[Tensor, Tensor]:
    """``(train, val)`` indices of ``count`` samples, ``round(val_fraction * count)`` held out.

    ``split="random"``: a permutation drawn with ``seed``. ``split="ordered"``: the first samples
    train and the last ones validate, in order (TopKD's official 75/25 split).

    >>> split_indices(4, 0.25, "ordered")
    (tensor([0, 1, 2]), tensor([3]))
    """
    check_choice(split, "split", _SPLITS)
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction!r}")
    n_val = max(1, round(val_fraction * count))
    if count - n_val < 1:
        raise ValueError(f"clouds: need at least 2 clouds to hold some out for validation, got {count}")
    if split == "ordered":
        order = torch.arange(count)
        return order[: count - n_val], order[count - n_val:]
    order = torch.randperm(count, generator=torch.Generator().manual_seed(seed))
    return order[n_val:], order[:n_val]


def r2_score(mse: float, constant_mse: float) -> float:
    """Coefficient of determination against a constant predictor: ``1 - mse / constant_mse``.

    1 is a perfect fit, 0 is no better than predicting the constant (the training targets'
    mean), negative is worse. ``nan`` when the constant is already exact (``constant_mse == 0``).

    >>> r2_score(0.25, 1.0)
    0.75
    """
    return 1.0 - mse / constant_mse if constant_mse > 0 else math.nan


class _EarlyStopping:
    """Keeps the best validation loss and weights; ``step`` says when to stop: after
    ``patience`` epochs without an improvement larger than ``min_delta``."""

    def __init__(self, model: nn.Module, patience: int, min_delta: float) -> None:
        self.model, self.patience, self.min_delta = model, patience, min_delta
        self.best_loss, self.best_epoch, self.waited = math.inf, -1, 0
        self.best_state = copy.deepcopy(model.state_dict())

    def step(self, epoch: int, loss: float) -> bool:
        if loss < self.best_loss - self.min_delta:
            self.best_loss, self.best_epoch, self.waited = loss, epoch, 0
            self.best_state = copy.deepcopy(self.model.state_dict())
            return False
        self.waited += 1
        return self.waited >= self.patience


def _batches(clouds: Tensor, mask: Tensor, targets: Tensor, index: Tensor, batch_size: int, device: torch.device):
    for start in range(0, index.numel(), batch_size):
        i = index[start:start + batch_size]
        yield clouds[i].to(device), mask[i].to(device), targets[i].to(device)


def _train_epoch(model: RipsNet, optimizer: torch.optim.Optimizer, batches) -> float:
    """One pass of MSE steps; the mean training loss over the samples."""
    model.train()
    total, count = 0.0, 0
    for x, m, y in batches:
        loss = nn.functional.mse_loss(model(x, mask=m), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        total, count = total + loss.detach() * y.shape[0], count + y.shape[0]
    return float(total) / count


@torch.no_grad()
def _mean_squared_error(model: RipsNet, batches) -> float:
    """MSE over every target entry of ``batches`` (not a mean of batch means)."""
    model.eval()
    total, count = 0.0, 0
    for x, m, y in batches:
        total, count = total + nn.functional.mse_loss(model(x, mask=m), y, reduction="sum"), count + y.numel()
    return float(total) / count


_INVERSE_ACTIVATIONS = {"sigmoid": torch.logit, "tanh": torch.atanh}


@torch.no_grad()
def _init_from_data(model: RipsNet, clouds: Tensor, mask: Tensor, targets: Tensor) -> None:
    """Set ``input_norm``'s statistics and ``output_bias`` from the training clouds and targets."""
    if getattr(model, "input_norm", False):
        points = clouds[mask].double()
        scale = points.std(0) if points.shape[0] > 1 else torch.zeros(points.shape[1], dtype=points.dtype)
        model.input_shift.copy_(points.mean(0))
        model.input_scale.copy_(torch.where(scale > 0, scale, torch.ones_like(scale)))
    if getattr(model, "output_bias", False):
        mean = targets.double().mean(0)
        inverse = _INVERSE_ACTIVATIONS.get(model.output_activation)
        if inverse is not None:
            low, high = OUTPUT_RANGES[model.output_activation]
            eps = 1e-4 * (high - low)
            mean = inverse(mean.clamp(low + eps, high - eps))
        model.rho[-2].bias.copy_(mean)


def fit_ripsnet(
    model: RipsNet,
    clouds: Tensor | Sequence[Tensor],
    targets: Tensor,
    *,
    mask: Tensor | None = None,
    epochs: int = 1000,
    lr: float = 5e-4,
    batch_size: int = 32,
    val_batch_size: int | None = None,
    val_fraction: float = 0.2,
    split: str = "random",
    patience: int = 50,
    min_delta: float = 0.0,
    seed: int = 0,
    progress: bool = True,
    log_dir: str | os.PathLike | None = None,
) -> dict[str, Any]:
    """Train ``model`` to map ``clouds`` to ``targets`` (MSE, Adamax), keeping the best weights.

    A model built with ``input_norm`` first gets the mean and standard deviation of each
    coordinate over the real points of the training clouds (a coordinate that never varies keeps
    scale 1); one built with ``output_bias`` starts its output at the mean training target
    (bias = the inverse sigmoid or tanh of that mean, clamped inside the activation's range;
    the mean itself for the other activations).
    Both start the fit past the plateau where a RipsNet first learns the constant (mean image)
    predictor and stays for many epochs.

    A ``val_fraction`` of the clouds is held out (see :func:`split_indices`); training stops
    when the validation MSE has not improved by more than ``min_delta`` for ``patience`` epochs,
    and the weights of the best epoch are loaded back into ``model``. Batches move to the model's
    device.

    Parameters
    ----------
    model : RipsNet
    clouds : Tensor or list of Tensor
        ``(B, N, D)`` (with an optional ``mask (B, N)``) or a list of ``(n_i, D)`` clouds.
    targets : Tensor
        ``(B, out_dim)``, e.g. ``PersistenceImage(..., normalize=True).fit(d)(d).flatten(1)``.
        Finite, and inside the range of the model's output activation (``[0, 1]`` for the
        default sigmoid): targets it cannot produce are refused with a ``ValueError``.
    epochs, lr, batch_size, patience, seed
        Optimisation settings; ``lr = 5e-4`` with Adamax as in the RipsNet paper and TopKD.
    val_batch_size : int, optional
        Validation batch size (default ``batch_size``); TopKD's official code uses 32.
    val_fraction, split
        The held-out share and how it is drawn: ``"random"`` (with ``seed``) or ``"ordered"``
        (the last clouds, TopKD's official 75/25 split).
    min_delta : float
        Smallest decrease of the validation MSE that counts as an improvement.
    progress : bool
        Show a tqdm progress bar (tqdm is imported only then).
    log_dir : path, optional
        Also write ``loss/train``, ``loss/val`` and ``r2/val`` to TensorBoard there (needs
        ``tensorboard``).

    Returns
    -------
    dict
        ``train_loss``, ``val_loss`` and ``val_r2`` (one entry per epoch), ``best_epoch``,
        ``best_val_loss``, ``constant_val_loss`` (the validation MSE of the best constant
        predictor fitted on the training targets: their mean, the baseline to beat) and
        ``best_val_r2 = 1 - best_val_loss / constant_val_loss`` (:func:`r2_score`).

    Examples
    --------
    >>> clouds, targets = torch.randn(40, 10, 2), torch.rand(40, 3)
    >>> history = fit_ripsnet(RipsNet(2, 3), clouds, targets, epochs=3, progress=False)
    >>> len(history["val_loss"]), history["best_val_r2"] < 1
    (3, True)
    """
    clouds, mask = _pad(clouds, mask)
    _check_targets(targets, model, clouds.shape[0])
    epochs = check_int(epochs, "epochs", 1)
    batch_size = check_int(batch_size, "batch_size", 1)
    val_batch_size = batch_size if val_batch_size is None else check_int(val_batch_size, "val_batch_size", 1)
    patience = check_int(patience, "patience", 1)
    lr = check_positive(lr, "lr")
    if check_number(min_delta, "min_delta") < 0:
        raise ValueError(f"min_delta must be >= 0, got {min_delta!r}")
    train, val = split_indices(clouds.shape[0], val_fraction, split, seed)
    device = next(model.parameters()).device
    generator = torch.Generator().manual_seed(seed + 1)
    _init_from_data(model, clouds[train], mask[train], targets[train])
    optimizer = torch.optim.Adamax(model.parameters(), lr=lr)
    constant = nn.functional.mse_loss(targets[train].mean(0).expand(val.numel(), -1), targets[val]).item()
    stopper = _EarlyStopping(model, patience, float(min_delta))
    history: dict[str, Any] = {"train_loss": [], "val_loss": [], "val_r2": [], "constant_val_loss": constant}
    writer = None
    if log_dir is not None:
        from torch.utils.tensorboard import SummaryWriter

        writer = SummaryWriter(os.fspath(log_dir))
    epoch_range: Any = range(epochs)
    if progress:
        from tqdm.auto import tqdm

        epoch_range = tqdm(epoch_range, desc="RipsNet")
    for epoch in epoch_range:
        shuffled = train[torch.randperm(train.numel(), generator=generator)]
        history["train_loss"].append(_train_epoch(model, optimizer, _batches(clouds, mask, targets, shuffled,
                                                                             batch_size, device)))
        history["val_loss"].append(_mean_squared_error(model, _batches(clouds, mask, targets, val, val_batch_size,
                                                                       device)))
        history["val_r2"].append(r2_score(history["val_loss"][-1], constant))
        if writer is not None:
            for tag, key in (("loss/train", "train_loss"), ("loss/val", "val_loss"), ("r2/val", "val_r2")):
                writer.add_scalar(tag, history[key][-1], epoch)
        if progress:
            epoch_range.set_postfix(train=f"{history['train_loss'][-1]:.3g}", val=f"{history['val_loss'][-1]:.3g}",
                                    r2=f"{history['val_r2'][-1]:.3f}")
        if stopper.step(epoch, history["val_loss"][-1]):
            break
    if progress:
        epoch_range.close()
    if writer is not None:
        writer.close()
    model.load_state_dict(stopper.best_state)
    model.eval()
    history.update(best_epoch=stopper.best_epoch, best_val_loss=stopper.best_loss,
                   best_val_r2=r2_score(stopper.best_loss, constant))
    return history
