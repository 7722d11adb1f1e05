"""Persistence entropy (Atienza et al. 2018): a scalar per diagram, or the entropy summary
function sampled on a grid, batched and differentiable, as gudhi computes them."""

from __future__ import annotations

import math
from typing import Any, Sequence

import torch
from torch import Tensor

from .._checks import check_all, check_choice, check_int, check_range
from ._base import GridVectorizer, half_as_float32, linspace, prepare, wide

__all__ = ["persistence_entropy", "PersistenceEntropy"]

_MODES = ("scalar", "vector")


def _point_entropies(birth: Tensor, death: Tensor, keep: Tensor) -> Tensor:
    """``-p log p`` per pair, ``p = persistence / total persistence`` of its diagram; 0 for pairs
    not kept, for zero persistence (``0 log 0 = 0``) and in a diagram of total persistence 0."""
    persistence = death - birth
    check_all(persistence >= 0, "diagrams: persistence entropy needs death >= birth in every pair")
    total = persistence.sum(-1, keepdim=True)
    p = persistence / torch.where(total > 0, total, 1.0)
    # log of 1 where p = 0: the value is 0 and so is the gradient (the plain p log p has a NaN one).
    return torch.where(keep, -p * torch.log(torch.where(p > 0, p, 1.0)), 0.0)


def _entropy_summary(birth: Tensor, death: Tensor, keep: Tensor, start: float, step: float, resolution: int,
                     normalized: bool) -> Tensor:
    """``(B, resolution)``: entry ``i`` sums ``-p log p`` over the pairs with
    ``ceil((b - start) / step) <= i < ceil((d - start) / step)`` (indices clipped to
    ``[0, resolution]``), gudhi's arithmetic, in float64 so that the indices agree with gudhi's."""
    if not (math.isfinite(step) and step != 0):
        raise ValueError(f"the entropy summary needs a sample range of positive length, got a step of {step}")
    entropy = _point_entropies(birth, death, keep)
    dtype = wide(birth.device)

    def index(v: Tensor) -> Tensor:
        return torch.ceil((v.detach().to(dtype) - start) / step).clamp(0, resolution)

    lo, hi = index(birth), index(death)
    i = torch.arange(resolution, dtype=dtype, device=birth.device)
    inside = (lo.unsqueeze(-1) <= i) & (i < hi.unsqueeze(-1))  # (B, K, R)
    out = torch.bmm(entropy.unsqueeze(1), inside.to(entropy.dtype)).squeeze(1)
    if normalized:
        norm = out.abs().sum(-1, keepdim=True)
        out = out / torch.where(norm > 0, norm, 1.0)
    return out


@half_as_float32
def persistence_entropy(
    diagrams: Tensor,
    *,
    mask: Tensor | None = None,
    mode: str = "scalar",
    normalized: bool = True,
    sample_range: Sequence[float] | None = None,
    resolution: int = 100,
    infinite: str = "drop",
) -> Tensor:
    r"""Persistence entropy of a batch of diagrams, or their entropy summary functions.

    .. math::

        E = -\sum_j p_j \log p_j, \qquad p_j = \frac{d_j - b_j}{\sum_k (d_k - b_k)}

    ``mode="vector"``: the entropy summary function :math:`S(x) = -\sum_{j:\, b_j \le x < d_j}
    p_j \log p_j` at ``resolution`` samples of ``sample_range``, divided by its L1 norm when
    ``normalized``.

    Convention:
        gudhi's ``Entropy(mode, normalized, resolution, sample_range)``: the output equals its
        ``fit_transform`` row for row; in vector mode, sample ``i`` counts the pairs with
        ``ceil((b - x_min) / step) <= i < ceil((d - x_min) / step)``, ``step`` being the spacing
        of ``numpy.linspace(x_min, x_max, resolution)``, with gudhi's float64 arithmetic. Where
        gudhi returns NaN (a pair of zero persistence: ``0 log 0``; a diagram of total
        persistence 0; a zero summary normalized) this uses ``0 log 0 = 0`` and returns 0. An
        empty diagram has entropy 0. Infinite deaths are dropped or raise; padding rows are
        ignored.

    Parameters
    ----------
    diagrams : Tensor
        ``(B, K, 2)`` or ``(K, 2)`` floating, columns (birth, death), ``death >= birth``.
    mask : Tensor, optional
        ``(B, K)`` or ``(K,)`` bool, True for real pairs.
    mode : {"scalar", "vector"}
        The entropy, or the sampled entropy summary function.
    normalized : bool
        Vector mode: divide each summary by its L1 norm. Default True, as gudhi.
    sample_range : pair of float
        Vector mode: ``(x_min, x_max)``.
    resolution : int
        Vector mode: number of samples, at least 2. Default 100.
    infinite : {"drop", "raise"}
        What to do with infinite deaths.

    Returns
    -------
    Tensor
        ``(B, 1)`` in scalar mode, ``(B, resolution)`` in vector mode (without ``B`` for a
        ``(K, 2)`` input); differentiable with respect to ``diagrams``.

    Raises
    ------
    TypeError, ValueError
        As :func:`persistence_landscape`, and on a pair with ``death < birth``, a bad ``mode``,
        a vector mode without ``sample_range`` or with ``resolution < 2``.

    Examples
    --------
    >>> import torch
    >>> dgm = torch.tensor([[0.0, 1.0], [0.0, 1.0]])
    >>> persistence_entropy(dgm)  # two equal bars: log 2
    tensor([0.6931])
    >>> persistence_entropy(dgm, mode="vector", sample_range=(0, 2), resolution=3, normalized=False)
    tensor([0.6931, 0.0000, 0.0000])
    """
    check_choice(mode, "mode", _MODES)
    birth, death, keep, batched = prepare(diagrams, mask, infinite)
    if mode == "scalar":
        out = _point_entropies(birth, death, keep).sum(-1, keepdim=True)
    else:
        if sample_range is None:
            raise ValueError("mode='vector' needs sample_range=(x_min, x_max)")
        lo, hi = check_range(sample_range, "sample_range", 2)
        grid = linspace(lo, hi, check_int(resolution, "resolution", 2))
        out = _entropy_summary(birth, death, keep, lo, grid[1] - grid[0], resolution, normalized)
    return out if batched else out.squeeze(0)


@half_as_float32
def _summary(diagrams: Tensor, mask: Tensor | None, start: float, step: float, resolution: int, normalized: bool,
             infinite: str) -> Tensor:
    birth, death, keep, batched = prepare(diagrams, mask, infinite)
    out = _entropy_summary(birth, death, keep, start, step, resolution, normalized)
    return out if batched else out.squeeze(0)


class PersistenceEntropy(GridVectorizer):
    r"""Persistence entropy of :class:`~torchtopo.Diagrams` (or padded / listed diagrams).

    Calls :func:`persistence_entropy` once per homology dimension in ``dims``. In vector mode,
    unset ends of ``sample_range`` are fitted as :class:`Landscape` fits them (``sample_range_``,
    ``grid_``), the fit kept in ``state_dict()`` and :meth:`to_config`; scalar mode needs no fit.

    Convention:
        gudhi's ``Entropy(mode, normalized, resolution, sample_range, keep_endpoints=...)``:
        ``PersistenceEntropy(...).fit(d)(d).flatten(1)`` equals its ``fit_transform``, the
        fitted range included. As in gudhi, the vector mode indexes its samples from the start
        of ``sample_range_`` with the spacing of ``grid_``: with a fitted lower end (and
        ``keep_endpoints=False``) sample ``i`` is taken one step before ``grid_[i]``.

    Parameters
    ----------
    mode : {"scalar", "vector"}
        Default "scalar".
    normalized : bool
        Vector mode: divide by the L1 norm. Default True.
    resolution : int
        Vector mode: number of samples, at least 2. Default 100.
    sample_range, keep_endpoints, dims, infinite
        As :class:`Landscape`.

    Shape:
        - Input: as :class:`Landscape`.
        - Output with one dimension: ``(B, 1)`` (scalar) or ``(B, resolution)`` (vector); with
          several, ``(B, num_features)``.

    Examples
    --------
    >>> import torch
    >>> dgms = [torch.tensor([[0.0, 1.0], [0.0, 1.0]]), torch.tensor([[0.0, 1.0]])]
    >>> PersistenceEntropy()(dgms)
    tensor([[0.6931],
            [0.0000]])
    >>> PersistenceEntropy("vector", resolution=8).fit(dgms)(dgms).shape
    torch.Size([2, 8])
    """

    def __init__(
        self,
        mode: str = "scalar",
        normalized: bool = True,
        resolution: int = 100,
        sample_range: Sequence[float | None] | None = (None, None),
        *,
        keep_endpoints: bool = False,
        dims: Sequence[int] = (1,),
        infinite: str = "drop",
    ) -> None:
        super().__init__(resolution, sample_range, keep_endpoints, dims, infinite)
        check_choice(mode, "mode", _MODES)
        if mode == "vector":
            check_int(resolution, "resolution", 2)
            if None not in self.sample_range and self.sample_range[0] == self.sample_range[1]:
                raise ValueError(f"sample_range must have a positive length in vector mode, got {sample_range!r}")
        self.mode, self.normalized = mode, bool(normalized)

    def _needs_fit(self) -> bool:
        return self.mode == "vector" and super()._needs_fit()

    def _fit_dim(self, dim: int, pairs: Tensor, mask: Tensor | None) -> dict[str, Any]:
        if self.mode == "scalar":
            return {"sample_range_": None, "grid_": []}
        fitted = super()._fit_dim(dim, pairs, mask)
        lo, hi = fitted["sample_range_"]
        if lo == hi:  # gudhi divides by a step of 0 here
            raise ValueError(f"fit: the range fitted in dimension {dim} is the single value {lo}; the entropy "
                             "summary needs a sample_range of positive length")
        return fitted

    @property
    def num_features(self) -> int:
        return (1 if self.mode == "scalar" else self.resolution) * len(self.dims)

    def _transform(self, i: int, pairs: Tensor, mask: Tensor | None) -> Tensor:
        if self.mode == "scalar":
            return persistence_entropy(pairs, mask=mask, infinite=self.infinite)
        grid = self._grid(i)
        start = self.sample_range_[i][0] if self.is_fitted else self.sample_range[0]
        return _summary(pairs, mask, start, grid[1] - grid[0], self.resolution, self.normalized, self.infinite)

    def _arguments(self) -> dict[str, Any]:
        return dict(mode=self.mode, normalized=self.normalized, **self._grid_arguments())

    def extra_repr(self) -> str:
        return f"mode={self.mode!r}, normalized={self.normalized}, {self._grid_repr()}"
