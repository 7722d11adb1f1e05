"""Betti curves and persistence silhouettes: 1-D summaries sampled on a grid, batched, with
gudhi's conventions."""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
import torch
from torch import Tensor

from ._base import (
    GridVectorizer,
    apply_weight,
    blocks,
    cat,
    compiled,
    grid_tensor,
    half_as_float32,
    prepare,
    resolve_grid,
)
from .landscape import tents
from .weights import Weight, WeightLike, get_weight

__all__ = ["betti_curve", "persistence_silhouette", "BettiCurve", "Silhouette"]


@half_as_float32
def persistence_silhouette(
    diagrams: Tensor,
    *,
    mask: Tensor | None = None,
    sample_range: Sequence[float] | None = None,
    resolution: int = 100,
    grid: Tensor | Sequence[float] | None = None,
    weight: WeightLike = "constant",
    infinite: str = "drop",
) -> Tensor:
    r"""Persistence silhouettes (Chazal et al. 2014) of a batch of diagrams, sampled.

    .. math::

        \phi(x) = \sqrt 2\, \frac{\sum_j w_j \max(h_j - |x - m_j|, 0)}{\sum_j w_j}

    with the tents of :func:`persistence_landscape` and weights :math:`w_j = w(b_j, d_j - b_j)`;
    0 for a diagram whose weights sum to 0 (an empty one, say). On the CPU a compiled kernel
    (numba, diagrams on threads) sums only the positive tents; elsewhere one weighted sum over
    the ``(B, R, K)`` tents. Gradients reach the pairs and the weights either way.

    Convention:
        gudhi's ``Silhouette`` (its factor :math:`\sqrt 2` included; samples at
        ``numpy.linspace(*sample_range, resolution)``), so that ``out`` equals gudhi's
        ``Silhouette(weight, resolution, sample_range).fit_transform`` row for row. Our weights
        take (birth, persistence) tensors while gudhi's take a (birth, death) point: gudhi's
        ``lambda x: (x[1] - x[0]) ** n`` is :class:`PowerWeight` ``(n)``. Where gudhi divides 0
        by 0 (every weight 0) this returns 0, never NaN. Infinite deaths are dropped or raise;
        padding rows are ignored.

    Parameters
    ----------
    diagrams : Tensor
        ``(B, K, 2)`` or ``(K, 2)`` floating, columns (birth, death).
    mask : Tensor, optional
        ``(B, K)`` or ``(K,)`` bool, True for real pairs.
    sample_range, resolution, grid
        The samples: ``linspace(*sample_range, resolution)`` (default resolution 100), or the
        ``(R,)`` points ``grid``.
    weight : str, dict, Weight or callable
        ``w(birth, persistence)`` on ``(B, K)`` tensors (see :func:`get_weight`). Default
        ``"constant"``.
    infinite : {"drop", "raise"}
        What to do with infinite deaths.

    Returns
    -------
    Tensor
        ``(B, R)`` (``(R,)`` for a ``(K, 2)`` input); differentiable with respect to ``diagrams``.

    Raises
    ------
    TypeError, ValueError
        As :func:`persistence_landscape`, and if ``weight`` returns the wrong shape.

    Examples
    --------
    >>> import torch
    >>> dgm = torch.tensor([[0.0, 2.0], [0.5, 1.5]])
    >>> persistence_silhouette(dgm, sample_range=(0, 2), resolution=5, weight="linear") / 2**0.5
    tensor([0.0000, 0.3333, 0.8333, 0.3333, 0.0000])
    """
    samples = resolve_grid(grid, sample_range, resolution)
    birth, death, keep, batched = prepare(diagrams, mask, infinite)
    w = apply_weight(weight, birth, death - birth, keep)
    total = w.sum(-1, keepdim=True)
    share = w / torch.where(total != 0, total, 1.0)  # (B, K); 0 where the weights sum to 0
    x = grid_tensor(samples, birth)

    def dense(i: slice) -> Tensor:
        return (tents(birth[i], death[i], x) * share[i].unsqueeze(1)).sum(-1)

    if not compiled(birth):
        out = cat([dense(i) for i in blocks(birth, x.numel())])
    else:
        # A compiled kernel sums the positive tents only; where a gradient is wanted, the dense
        # sum is added as (dense - dense.detach()), exactly 0, which carries its gradient.
        out = _weighted_tents_cpu(birth, death, share, keep, x).to(birth.dtype)
        if torch.is_grad_enabled() and (birth.requires_grad or death.requires_grad or share.requires_grad):
            exact = cat([dense(i) for i in blocks(birth, x.numel())])
            out = out + (exact - exact.detach())
    out = out * math.sqrt(2)
    return out if batched else out.squeeze(0)


def _weighted_tents_cpu(birth: Tensor, death: Tensor, share: Tensor, keep: Tensor, grid: Tensor) -> Tensor:
    """``(B, R)``: the share-weighted sum of the tents, from the numba kernel in float64,
    diagrams on threads."""
    from ..rips._numba_threads import run_on_threads
    from ._tents_numba import weighted_tents

    b, d, w = (t.detach().double().numpy() for t in (birth, death, share))
    x, kept = grid.double().cpu().numpy(), keep.numpy()
    out = np.empty((birth.shape[0], x.shape[0]))
    run_on_threads(lambda first, last: weighted_tents(b, d, w, kept, x, out, first, last), birth.shape[0])
    return torch.from_numpy(out)


@half_as_float32
def betti_curve(
    diagrams: Tensor,
    *,
    mask: Tensor | None = None,
    sample_range: Sequence[float] | None = None,
    resolution: int = 100,
    grid: Tensor | Sequence[float] | None = None,
    infinite: str = "drop",
) -> Tensor:
    r"""Betti curves of a batch of diagrams: the number of bars alive at each sample.

    .. math:: \beta(x) = \#\{j : b_j \le x\} - \#\{j : d_j \le x\}

    that is, the number of bars :math:`b_j \le x < d_j` (for pairs with :math:`b_j \le d_j`).

    Convention:
        gudhi's ``BettiCurve``: a bar counts from its birth (included) to its death (excluded);
        samples at ``numpy.linspace(*sample_range, resolution)`` or the given ``grid`` (gudhi's
        ``predefined_grid``; infinite samples are allowed). The comparisons are made in float64,
        so a float32 diagram gives gudhi's counts exactly. Infinite deaths are dropped
        (``infinite="drop"``: an essential class is not counted) or raise; padding rows are
        ignored. The counts are returned in the input's floating dtype and carry no gradient.

    Parameters
    ----------
    diagrams : Tensor
        ``(B, K, 2)`` or ``(K, 2)`` floating, columns (birth, death).
    mask : Tensor, optional
        ``(B, K)`` or ``(K,)`` bool, True for real pairs.
    sample_range, resolution, grid
        As :func:`persistence_silhouette`.
    infinite : {"drop", "raise"}
        What to do with infinite deaths.

    Returns
    -------
    Tensor
        ``(B, R)`` (``(R,)`` for a ``(K, 2)`` input), integer-valued.

    Raises
    ------
    TypeError, ValueError
        As :func:`persistence_landscape`.

    Examples
    --------
    >>> import torch
    >>> dgm = torch.tensor([[0.0, 2.0], [0.5, 1.5]])
    >>> betti_curve(dgm, grid=[0.0, 0.5, 1.5, 2.0])
    tensor([1., 2., 1., 0.])
    """
    samples = resolve_grid(grid, sample_range, resolution)
    birth, death, keep, batched = prepare(diagrams, mask, infinite)
    x = grid_tensor(samples, birth)
    # Counts by binary search in the sorted births and deaths (rows not kept sorted last, as
    # +inf, and left out by the clamp to the count kept): O(B R log K), in the wide dtype.
    kept = keep.sum(1, keepdim=True)
    queries = x.expand(birth.shape[0], -1).contiguous()

    def count_up_to(values: Tensor) -> Tensor:
        ordered = torch.where(keep, values.detach().to(x.dtype), math.inf).sort(1).values
        return torch.searchsorted(ordered, queries, right=True).clamp_max(kept)

    out = (count_up_to(birth) - count_up_to(death)).to(diagrams.dtype)
    return out if batched else out.squeeze(0)


class Silhouette(GridVectorizer):
    r"""Persistence silhouettes of :class:`~torchtopo.Diagrams` (or padded / listed diagrams).

    Calls :func:`persistence_silhouette` once per homology dimension in ``dims``, on gudhi's grid
    (fitted as :class:`Landscape` fits it; ``sample_range_``, ``grid_``), the fit kept in
    ``state_dict()`` and :meth:`to_config`.

    Convention:
        gudhi's ``Silhouette(weight, resolution, sample_range, keep_endpoints=...)``:
        ``Silhouette(...).fit(d)(d).flatten(1)`` equals its ``fit_transform``, the fitted range
        included, with gudhi's ``lambda x: (x[1] - x[0]) ** n`` written ``PowerWeight(n)`` (see
        :func:`persistence_silhouette`).

    Parameters
    ----------
    weight : str, dict, Weight or callable
        See :func:`get_weight`. Default ``"constant"``.
    resolution, sample_range, keep_endpoints, dims, infinite
        As :class:`Landscape`.

    Shape:
        - Input: as :class:`Landscape`.
        - Output with one dimension: ``(B, resolution)``; with several, ``(B, num_features)``.

    Examples
    --------
    >>> import torch
    >>> dgms = [torch.tensor([[0.0, 2.0], [0.5, 1.5]]), torch.tensor([[1.0, 3.0]])]
    >>> Silhouette("linear", resolution=4).fit(dgms)(dgms).shape
    torch.Size([2, 4])
    """

    def __init__(
        self,
        weight: WeightLike = "constant",
        resolution: int = 100,
        sample_range: Sequence[float | None] | None = (None, None),
        *,
        keep_endpoints: bool = False,
        dims: Sequence[int] = (1,),
        infinite: str = "drop",
    ) -> None:
        super().__init__(resolution, sample_range, keep_endpoints, dims, infinite)
        self.weight = get_weight(weight)

    @property
    def num_features(self) -> int:
        return self.resolution * len(self.dims)

    def _transform(self, i: int, pairs: Tensor, mask: Tensor | None) -> Tensor:
        return persistence_silhouette(pairs, mask=mask, grid=self._grid(i), weight=self.weight, infinite=self.infinite)

    def _arguments(self) -> dict[str, Any]:
        if not isinstance(self.weight, Weight):
            raise TypeError("to_config: a plain-callable weight cannot be saved; use a torchtopo Weight subclass")
        return dict(weight=self.weight.to_config(), **self._grid_arguments())

    def extra_repr(self) -> str:
        return f"weight={self.weight!r}, {self._grid_repr()}"


class BettiCurve(GridVectorizer):
    r"""Betti curves of :class:`~torchtopo.Diagrams` (or padded / listed diagrams).

    Calls :func:`betti_curve` once per homology dimension in ``dims``. Three modes, as gudhi's:
    a ``resolution`` with a ``sample_range`` (unset ends fitted as :class:`Landscape` fits them);
    ``resolution=None``, the exact curve: :meth:`fit` takes as grid every birth and death of the
    fitted diagrams and ``-inf`` (``grid_``), so the curve changes only at grid points; or a
    ``predefined_grid``. The fit is kept in ``state_dict()`` and :meth:`to_config`.

    Convention:
        gudhi's ``BettiCurve(resolution, sample_range, predefined_grid, keep_endpoints=...)``:
        ``BettiCurve(...).fit(d)(d).flatten(1)`` equals its ``fit_transform`` on the same finite
        diagrams. Infinite bars are dropped (not counted) or raise.

    Parameters
    ----------
    resolution : int or None
        Samples per curve (default 100), or ``None`` for the exact curve on a fitted grid.
    sample_range : pair of float or None
        As :class:`Landscape`; unused with ``resolution=None`` or a ``predefined_grid``.
    predefined_grid : sequence of float, optional
        The sample points (no fit needed).
    keep_endpoints, dims, infinite
        As :class:`Landscape`.

    Shape:
        - Input: as :class:`Landscape`.
        - Output with one dimension: ``(B, R)``; with several, ``(B, num_features)``.

    Examples
    --------
    >>> import torch
    >>> dgms = [torch.tensor([[0.0, 2.0], [0.5, 1.5]]), torch.tensor([[1.0, 3.0]])]
    >>> exact = BettiCurve(resolution=None).fit(dgms)
    >>> exact.grid_[0], exact(dgms)
    ([-inf, 0.0, 0.5, 1.0, 1.5, 2.0, 3.0], tensor([[0., 1., 2., 2., 1., 0., 0.],
            [0., 0., 0., 1., 1., 1., 0.]]))
    """

    def __init__(
        self,
        resolution: int | None = 100,
        sample_range: Sequence[float | None] | None = (None, None),
        predefined_grid: Sequence[float] | None = None,
        *,
        keep_endpoints: bool = False,
        dims: Sequence[int] = (1,),
        infinite: str = "drop",
    ) -> None:
        super().__init__(1 if resolution is None else resolution, sample_range, keep_endpoints, dims, infinite)
        self.resolution = resolution
        if predefined_grid is not None:
            grid = resolve_grid(predefined_grid, None, 1)
            if grid.numel() == 0:
                raise ValueError("predefined_grid must hold at least one point")
            predefined_grid = grid.tolist()
        self.predefined_grid = predefined_grid

    def _needs_fit(self) -> bool:
        return self.predefined_grid is None and (self.resolution is None or None in self.sample_range)

    def _fit_dim(self, dim: int, pairs: Tensor, mask: Tensor | None) -> dict[str, Any]:
        if self.predefined_grid is not None:
            return {"sample_range_": None, "grid_": self.predefined_grid}
        if self.resolution is not None:
            return super()._fit_dim(dim, pairs, mask)
        birth, death = self._finite_points(pairs, mask)
        values = torch.cat([birth, death]).double().cpu().numpy()
        return {"sample_range_": None, "grid_": np.unique(np.concatenate([values, [-np.inf]])).tolist()}

    def _grid(self, i: int) -> list[float]:
        if self.is_fitted:
            return self.grid_[i]
        return self.predefined_grid if self.predefined_grid is not None else super()._grid(i)

    @property
    def num_features(self) -> int:
        if self.predefined_grid is not None:
            return len(self.predefined_grid) * len(self.dims)
        if self.resolution is None:
            self._check_fitted()
            return sum(len(g) for g in self.grid_)
        return self.resolution * len(self.dims)

    def _transform(self, i: int, pairs: Tensor, mask: Tensor | None) -> Tensor:
        return betti_curve(pairs, mask=mask, grid=self._grid(i), infinite=self.infinite)

    def _arguments(self) -> dict[str, Any]:
        return dict(predefined_grid=self.predefined_grid, **self._grid_arguments())

    def extra_repr(self) -> str:
        grid = "" if self.predefined_grid is None else f", predefined_grid=<{len(self.predefined_grid)} points>"
        return f"{self._grid_repr()}{grid}"
