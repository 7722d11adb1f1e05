"""What the vectorizers share: input preparation, the sample grids of gudhi's 1-D summaries (and
how a fit finds them), and the module base class that reads one homology dimension after another
and keeps its fit in ``state_dict`` and in its config."""

from __future__ import annotations

import functools
from typing import Any, Callable, ClassVar, Sequence, TypeVar, Union

import numpy as np
import torch
from torch import Tensor, nn

from .._checks import (
    check_all,
    check_choice,
    check_floating,
    check_int,
    check_mask,
    check_range,
    check_shape,
)
from ..diagrams import Diagrams, pad_list
from .weights import WeightLike, get_weight

INFINITE = ("drop", "raise")
DiagramsLike = Union[Diagrams, Tensor, Sequence[Tensor]]
_HALF = (torch.float16, torch.bfloat16)

F = TypeVar("F", bound=Callable[..., Tensor])


def half_as_float32(fn: F) -> F:
    """Run ``fn(diagrams, ...)`` in float32 when ``diagrams`` is float16 / bfloat16 and return the
    result in the input's dtype (autocast users: half precision would lose the small differences
    a summary is made of). Gradients flow through both casts."""

    @functools.wraps(fn)
    def wrapper(diagrams: Any, *args: Any, **kwargs: Any) -> Tensor:
        if isinstance(diagrams, Tensor) and diagrams.dtype in _HALF:
            return fn(diagrams.float(), *args, **kwargs).to(diagrams.dtype)
        return fn(diagrams, *args, **kwargs)

    return wrapper  # type: ignore[return-value]


def prepare(diagrams: Tensor, mask: Tensor | None, infinite: str) -> tuple[Tensor, Tensor, Tensor, bool]:
    """Batch the input and return ``birth``, ``death`` and ``keep``, each ``(B, K)``, and whether
    the input was batched. Padding and dropped (infinite) bars have ``keep`` False and birth =
    death = 0, so that inf or garbage never reaches the arithmetic, nor its gradient."""
    check_floating(diagrams, "diagrams")
    check_shape(diagrams, "diagrams", "(B, K, 2) or (K, 2)", diagrams.dim() in (2, 3) and diagrams.shape[-1] == 2)
    check_mask(mask, diagrams.shape[:-1], masks=("diagrams", diagrams))
    check_choice(infinite, "infinite", INFINITE)
    batched = diagrams.dim() == 3
    if not batched:
        diagrams = diagrams.unsqueeze(0)
        mask = None if mask is None else mask.unsqueeze(0)
    real = torch.ones(diagrams.shape[:-1], dtype=torch.bool, device=diagrams.device) if mask is None else mask
    # contiguous columns: every elementwise pass below then runs on dense memory (on strided
    # views of the (B, K, 2) tensor they took several times longer)
    birth, death = (column.contiguous() for column in diagrams.unbind(-1))
    check_all(~torch.isnan(death) & torch.isfinite(birth) | ~real,
              "diagrams contains NaN or an infinite birth (births must be finite)")
    finite = torch.isfinite(death)
    if infinite == "raise" and not bool((finite | ~real).all()):
        raise ValueError("diagrams contain infinite deaths; pass infinite='drop' to ignore them")
    keep = real & finite
    return torch.where(keep, birth, 0.0), torch.where(keep, death, 0.0), keep, batched


def apply_weight(weight: WeightLike, birth: Tensor, persistence: Tensor, keep: Tensor) -> Tensor:
    """``weight(birth, persistence)``, checked, with 0 where ``keep`` is False."""
    w = get_weight(weight)(birth, persistence)
    if not isinstance(w, Tensor) or w.shape != birth.shape:
        raise ValueError(f"weight must return a tensor of shape {tuple(birth.shape)}, got "
                         f"{tuple(w.shape) if isinstance(w, Tensor) else type(w).__name__}")
    return torch.where(keep, w, 0.0)


_CPU_BLOCK = 1 << 18  # elements of one (b, K, R) temporary: 1 MiB in float32, cache-resident


def blocks(coord: Tensor, samples: int) -> list[slice]:
    """Slices of the batch to vectorise at once.

    The work is a few elementwise passes over ``(B, K, R)`` temporaries (``coord`` is ``(B, K)``,
    ``samples`` is ``R``) and one contraction. On accelerators that is one block. On the CPU,
    temporaries of a whole batch live in main memory (and fresh pages cost more than the
    arithmetic), so blocks of diagrams whose temporaries fit the cache run 3 to 5 times faster;
    each block is still one batched contraction.
    """
    if coord.device.type != "cpu":
        return [slice(None)]
    size = max(1, _CPU_BLOCK // max(coord.shape[1] * samples, 1))
    return [slice(i, i + size) for i in range(0, max(coord.shape[0], 1), size)]


def cat(parts: list[Tensor]) -> Tensor:
    return parts[0] if len(parts) == 1 else torch.cat(parts)  # no copy of a single block


def compiled(x: Tensor) -> bool:
    """Whether the summaries of ``x`` use their compiled (numba) CPU kernels: on CPU tensors.
    Elsewhere they run as tensor operations on the device."""
    return x.device.type == "cpu"


def wide(device: torch.device) -> torch.dtype:
    """float64 where the device has it: the dtype of comparisons that must agree with gudhi bit
    for bit (a float32 diagram's values are exact in float64, gudhi's grid is float64)."""
    return torch.float32 if device.type == "mps" else torch.float64


# --------------------------------------------------------------------------- sample grids


def linspace(lo: float, hi: float, n: int) -> list[float]:
    """gudhi's grid: ``numpy.linspace(lo, hi, n)`` bit for bit, or ``n`` copies of ``lo`` when
    ``lo == hi``."""
    return [lo] * n if lo == hi else np.linspace(lo, hi, n).tolist()


def resolve_grid(grid: Tensor | Sequence[float] | None, sample_range: Sequence[float] | None,
                 resolution: int) -> Tensor | list[float]:
    """The sample points of a functional 1-D summary: ``grid`` as given, or
    ``linspace(*sample_range, resolution)`` (exactly one of ``grid`` and ``sample_range``)."""
    if (grid is None) == (sample_range is None):
        raise ValueError("give exactly one of sample_range (with resolution) and grid")
    if grid is None:
        lo, hi = check_range(sample_range, "sample_range", 2)
        return linspace(lo, hi, check_int(resolution, "resolution", 1))
    values = grid.detach() if isinstance(grid, Tensor) else torch.as_tensor(grid, dtype=torch.float64)
    if values.dim() != 1 or not values.is_floating_point() and values.dtype not in (torch.int32, torch.int64):
        raise ValueError(f"grid must be a 1-D sequence of numbers, got {grid!r}")
    if bool(torch.isnan(values).any()):
        raise ValueError("grid contains NaN")
    return values


def grid_tensor(grid: Tensor | list[float], like: Tensor) -> Tensor:
    """``grid`` as a wide-dtype tensor on ``like``'s device."""
    dtype = wide(like.device)
    if isinstance(grid, Tensor):
        return grid.to(device=like.device, dtype=dtype)
    return torch.tensor(grid, dtype=dtype).to(like.device)


def fit_sample_range(sample_range: tuple[float | None, float | None], birth: Tensor, death: Tensor,
                     dim: int) -> tuple[float, float]:
    """gudhi's fit of a sample range: unset ends become the smallest birth and the largest death of
    the finite points ``birth``, ``death`` (1-D) of every fitted diagram."""
    if None not in sample_range:
        return sample_range  # type: ignore[return-value]
    if birth.numel() == 0:
        raise ValueError(f"fit: no finite diagram point in dimension {dim} to fit sample_range")
    data = (float(birth.min()), float(death.max()))
    return tuple(d if v is None else v for v, d in zip(sample_range, data))  # type: ignore[return-value]


def fitted_grid(sample_range: tuple[float | None, float | None], fitted: tuple[float, float], resolution: int,
                keep_endpoints: bool) -> list[float]:
    """gudhi's ``_grid_from_sample_range``: ``resolution`` points from ``fitted[0]`` to
    ``fitted[1]``; without ``keep_endpoints``, each end that was fitted (unset in
    ``sample_range``) is left out, the grid having been drawn with one more point for it (the
    summaries vanish at the extreme birth and death)."""
    unset = [v is None for v in sample_range]
    grid = linspace(fitted[0], fitted[1], resolution + (0 if keep_endpoints else sum(unset)))
    if not keep_endpoints:
        grid = grid[1 if unset[0] else 0: len(grid) - 1 if unset[1] else len(grid)]
    return grid


# --------------------------------------------------------------------------- modules


def check_dims(dims: Sequence[int]) -> tuple[int, ...]:
    if isinstance(dims, (str, bytes)) or not isinstance(dims, Sequence):
        raise TypeError(f"dims must be a sequence of distinct non-negative ints, got {dims!r}")
    out = tuple(check_int(d, "dims", 0) for d in dims)
    if not out or len(set(out)) != len(out):
        raise ValueError(f"dims must be distinct non-negative ints, got {dims!r}")
    return out


class Vectorizer(nn.Module):
    """Base of the vectorizer modules: input per homology dimension, ``fit``, the fit in
    ``state_dict`` (``get_extra_state``) and in :meth:`to_config`.

    A subclass lists its fitted attributes in ``_fitted`` (each a list with one entry per
    dimension in ``dims``), and implements ``_fit_dim`` (the fitted entries of one dimension),
    ``_transform`` (the output of one dimension), ``_needs_fit``, ``_arguments`` (its JSON-able
    constructor arguments), ``_restore`` (fitted entries read back from JSON) and
    ``num_features``.
    """

    _fitted: ClassVar[tuple[str, ...]] = ()

    def __init__(self, dims: Sequence[int], infinite: str) -> None:
        super().__init__()
        self.dims = check_dims(dims)
        check_choice(infinite, "infinite", INFINITE)
        self.infinite = infinite

    # -- input --------------------------------------------------------------------------------

    def _per_dim(self, diagrams: DiagramsLike, mask: Tensor | None) -> list[tuple[Tensor, Tensor | None]]:
        """``(pairs, mask)`` for each entry of ``dims``."""
        if isinstance(diagrams, Diagrams):
            if mask is not None:
                raise ValueError("mask must be None when diagrams is a Diagrams (it carries its own masks)")
            if max(self.dims) > diagrams.max_dim:
                raise ValueError(f"dims={self.dims} needs diagrams up to dimension {max(self.dims)}, "
                                 f"got max_dim={diagrams.max_dim}")
            return [(diagrams.pairs[d], diagrams.mask[d]) for d in self.dims]
        if len(self.dims) != 1:
            raise ValueError(f"a tensor or list input holds one homology dimension, but dims={self.dims}; "
                             "pass a Diagrams")
        if isinstance(diagrams, Tensor):
            return [(diagrams, mask)]
        if isinstance(diagrams, (list, tuple)):
            if mask is not None:
                raise ValueError("mask must be None for a list of diagrams")
            if not diagrams:
                raise ValueError("diagrams: the list is empty")
            return [pad_list(diagrams, "diagrams")]
        raise TypeError(f"diagrams must be a Diagrams, a tensor or a list of tensors, got {type(diagrams).__name__}")

    def _finite_points(self, pairs: Tensor, mask: Tensor | None) -> tuple[Tensor, Tensor]:
        """The births and deaths (1-D) of the real, finite points, for a fit."""
        birth, death, keep, _ = prepare(pairs, mask, self.infinite)
        return birth[keep], death[keep]

    # -- fitting ------------------------------------------------------------------------------

    @property
    def is_fitted(self) -> bool:
        return bool(self._fitted) and all(hasattr(self, name) for name in self._fitted)

    def _needs_fit(self) -> bool:
        raise NotImplementedError

    def _fit_dim(self, dim: int, pairs: Tensor, mask: Tensor | None) -> dict[str, Any]:
        raise NotImplementedError

    def fit(self, diagrams: DiagramsLike, *, mask: Tensor | None = None) -> "Vectorizer":
        """Learn what is unset from ``diagrams`` (one entry per dimension in ``dims``); returns
        ``self``. Infinite bars are ignored (``infinite="drop"``) or raise."""
        with torch.no_grad():
            per_dim = [self._fit_dim(d, p, m) for d, (p, m) in zip(self.dims, self._per_dim(diagrams, mask))]
        self._set_fitted({name: [entry[name] for entry in per_dim] for name in self._fitted})
        return self

    def _check_fitted(self) -> None:
        if not self.is_fitted and self._needs_fit():
            raise RuntimeError(f"{type(self).__name__} is not fitted: it learns parts of its range from data; "
                               "call fit(diagrams) first")

    def _restore(self, name: str, values: list) -> list:
        raise NotImplementedError

    def _set_fitted(self, fitted: dict[str, list]) -> None:
        if not isinstance(fitted, dict) or sorted(fitted) != sorted(self._fitted):
            raise ValueError(f"the fit of a {type(self).__name__} holds exactly {list(self._fitted)}, got {fitted!r}")
        for name in self._fitted:
            if not isinstance(fitted[name], (list, tuple)) or len(fitted[name]) != len(self.dims):
                raise ValueError(f"fitted {name} must hold one entry per dimension in dims={self.dims}, "
                                 f"got {fitted[name]!r}")
        for name in self._fitted:
            setattr(self, name, self._restore(name, list(fitted[name])))

    def _fitted_state(self) -> dict[str, list]:
        """The fit as JSON-able lists (empty when not fitted)."""

        def plain(value: Any) -> Any:
            return [plain(v) for v in value] if isinstance(value, (list, tuple)) else value

        return {name: plain(getattr(self, name)) for name in self._fitted} if self.is_fitted else {}

    def get_extra_state(self) -> dict[str, Any]:
        """The fit, so that ``state_dict()`` (of this module or of any module holding it) keeps it:
        plain lists and floats, loadable with ``torch.load(..., weights_only=True)``."""
        return {"fitted": self._fitted_state()}

    def set_extra_state(self, state: Any) -> None:
        """Restore :meth:`get_extra_state`'s fit (an empty fit leaves the module unfitted)."""
        if not isinstance(state, dict) or "fitted" not in state:
            raise ValueError(f"{type(self).__name__}: extra state must be a dict with a 'fitted' entry, got {state!r}")
        if state["fitted"]:
            self._set_fitted(state["fitted"])
        else:
            for name in self._fitted:
                self.__dict__.pop(name, None)

    # -- forward ------------------------------------------------------------------------------

    @property
    def num_features(self) -> int:
        """Length of the flattened output of one diagram."""
        raise NotImplementedError

    def _transform(self, i: int, pairs: Tensor, mask: Tensor | None) -> Tensor:
        raise NotImplementedError

    def forward(self, diagrams: DiagramsLike, *, mask: Tensor | None = None) -> Tensor:
        """Summaries of ``diagrams``; see the class docstring for shapes."""
        self._check_fitted()
        outputs = [self._transform(i, pairs, m) for i, (pairs, m) in enumerate(self._per_dim(diagrams, mask))]
        if len(outputs) == 1:
            return outputs[0]
        batched = isinstance(diagrams, (list, tuple)) or diagrams.is_batched
        return torch.cat([out.flatten(1 if batched else 0) for out in outputs], -1)

    # -- configs ------------------------------------------------------------------------------

    def _arguments(self) -> dict[str, Any]:
        raise NotImplementedError

    def to_config(self) -> dict[str, Any]:
        """A JSON-able dict of the arguments and the fit; see :meth:`from_config`."""
        config = self._arguments()
        if self.is_fitted:
            config["fitted"] = self._fitted_state()
        return config

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "Vectorizer":
        """Rebuild a (possibly fitted) vectorizer from :meth:`to_config`'s dict."""
        config = dict(config)
        fitted = config.pop("fitted", None)
        module = cls(**config)
        if fitted is not None:
            module._set_fitted(fitted)
        return module


class GridVectorizer(Vectorizer):
    """Base of the 1-D summaries sampled on a grid (landscapes, silhouettes, Betti curves,
    entropy summaries), with gudhi's ``resolution``, ``sample_range`` and ``keep_endpoints``:
    fitted attributes ``sample_range_`` (per dimension) and ``grid_`` (its sample points)."""

    _fitted = ("sample_range_", "grid_")

    def __init__(self, resolution: int, sample_range: Sequence[float | None] | None, keep_endpoints: bool,
                 dims: Sequence[int], infinite: str) -> None:
        super().__init__(dims, infinite)
        self.resolution = check_int(resolution, "resolution", 1)
        self.sample_range = check_range(sample_range, "sample_range", 2, allow_unset=True)
        self.keep_endpoints = bool(keep_endpoints)

    def _needs_fit(self) -> bool:
        return None in self.sample_range

    def _fit_dim(self, dim: int, pairs: Tensor, mask: Tensor | None) -> dict[str, Any]:
        fitted = fit_sample_range(self.sample_range, *self._finite_points(pairs, mask), dim)
        return {"sample_range_": fitted,
                "grid_": fitted_grid(self.sample_range, fitted, self.resolution, self.keep_endpoints)}

    def _restore(self, name: str, values: list) -> list:
        if name == "sample_range_":
            return [None if v is None else tuple(float(x) for x in v) for v in values]
        return [[float(x) for x in v] for v in values]

    def _grid(self, i: int) -> list[float]:
        """The sample points of dimension ``dims[i]``."""
        if self.is_fitted:
            return self.grid_[i]
        return linspace(*self.sample_range, self.resolution)  # type: ignore[misc]

    def _grid_arguments(self) -> dict[str, Any]:
        return dict(resolution=self.resolution, sample_range=list(self.sample_range),
                    keep_endpoints=self.keep_endpoints, dims=list(self.dims), infinite=self.infinite)

    def _grid_repr(self) -> str:
        fitted = f", sample_range_={self.sample_range_}" if self.is_fitted else ""
        return (f"resolution={self.resolution}, sample_range={self.sample_range}, dims={self.dims}"
                f"{', keep_endpoints=True' if self.keep_endpoints else ''}{fitted}")
