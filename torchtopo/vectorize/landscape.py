"""Persistence landscapes (Bubenik, JMLR 2015), batched and differentiable, as gudhi samples them."""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
import torch
from torch import Tensor

from .._checks import check_int
from ._base import GridVectorizer, blocks, cat, compiled, grid_tensor, half_as_float32, prepare, resolve_grid

__all__ = ["persistence_landscape", "Landscape"]


def tents(birth: Tensor, death: Tensor, grid: Tensor) -> Tensor:
    """``(B, K)`` pairs and ``(R,)`` samples -> ``(B, R, K)`` tent functions
    ``max(h - |x - m|, 0)`` with midpoint ``m = (b + d) / 2`` and height ``h = (d - b) / 2``
    (gudhi's arithmetic, so that float64 agrees bit for bit). Rows that :func:`prepare` did not
    keep hold ``b = d = 0``, so their tents are 0."""
    mid, height = (birth + death) / 2, (death - birth) / 2
    x = grid.to(birth.dtype)[:, None]
    return (height.unsqueeze(1) - (x - mid.unsqueeze(1)).abs()).relu()  # gradient 0 where the tent is 0


def _top_tents_cpu(birth: Tensor, death: Tensor, keep: Tensor, grid: Tensor, levels: int, with_index: bool
                   ) -> tuple[Tensor, Tensor | None]:
    """``(B, levels, R)``: the landscape values in ``birth``'s dtype (computed in float64) and,
    if ``with_index``, the pair of each (-1 where the value is 0); the numba kernel, diagrams on
    threads."""
    from ..rips._numba_threads import run_on_threads
    from ._tents_numba import top_tents

    b, d = (t.detach().double().numpy() for t in (birth, death))
    x, kept = grid.double().cpu().numpy(), keep.numpy()
    shape = (birth.shape[0], levels, x.shape[0])
    value = torch.empty(shape, dtype=birth.dtype)
    index = np.empty(shape if with_index else (0, 0, 0), dtype=np.int64)
    out = value.numpy()
    run_on_threads(lambda first, last: top_tents(b, d, kept, x, out, index, first, last), birth.shape[0])
    return value, torch.from_numpy(index) if with_index else None


@half_as_float32
def persistence_landscape(
    diagrams: Tensor,
    *,
    mask: Tensor | None = None,
    sample_range: Sequence[float] | None = None,
    resolution: int = 100,
    grid: Tensor | Sequence[float] | None = None,
    num_landscapes: int = 5,
    infinite: str = "drop",
) -> Tensor:
    r"""The first ``num_landscapes`` persistence landscapes of a batch of diagrams, sampled.

    .. math::

        \lambda_k(x) = \sqrt 2 \cdot k\text{-th largest of } \max\bigl(h_j - |x - m_j|, 0\bigr)

    over the pairs :math:`(b_j, d_j)`, midpoint :math:`m_j = (b_j + d_j)/2`, half-life
    :math:`h_j = (d_j - b_j)/2`; :math:`\lambda_k = 0` where fewer than :math:`k` tents are
    positive. One ``(B, R, K)`` tensor of tents and a ``topk`` over the pairs: no loop over
    diagrams.

    Convention:
        gudhi's ``Landscape``: the factor :math:`\sqrt 2` (gudhi's tents live in rotated
        coordinates) and samples at ``numpy.linspace(*sample_range, resolution)`` (both ends
        included), so that ``out.flatten(1)`` equals gudhi's ``Landscape(num_landscapes,
        resolution, sample_range).fit_transform`` row for row: landscape 1 first. Infinite deaths
        are dropped (``infinite="drop"``) or raise (``"raise"``); padding rows are ignored.

    Parameters
    ----------
    diagrams : Tensor
        ``(B, K, 2)`` or ``(K, 2)`` floating, columns (birth, death).
    mask : Tensor, optional
        ``(B, K)`` or ``(K,)`` bool, True for real pairs.
    sample_range : pair of floats, optional
        ``(x_min, x_max)`` of the samples; or give ``grid``.
    resolution : int
        Number of samples along ``sample_range``. Default 100.
    grid : Tensor or sequence of floats, optional
        ``(R,)`` sample points, instead of ``sample_range`` and ``resolution``.
    num_landscapes : int
        Number of landscapes ``L``. Default 5.
    infinite : {"drop", "raise"}
        What to do with infinite deaths.

    Returns
    -------
    Tensor
        ``(B, L, R)`` (``(L, R)`` for a ``(K, 2)`` input), dtype and device of ``diagrams``;
        differentiable with respect to ``diagrams``.

    Raises
    ------
    TypeError
        If ``diagrams`` is not a floating tensor.
    ValueError
        On a wrong shape or mask, NaN, an infinite birth, an infinite death with
        ``infinite="raise"``, a bad range, grid, resolution or ``num_landscapes``.

    Examples
    --------
    >>> import torch
    >>> dgm = torch.tensor([[0.0, 2.0], [0.5, 1.5]])
    >>> persistence_landscape(dgm, sample_range=(0, 2), resolution=5, num_landscapes=2) / 2**0.5
    tensor([[0.0000, 0.5000, 1.0000, 0.5000, 0.0000],
            [0.0000, 0.0000, 0.5000, 0.0000, 0.0000]])
    """
    num_landscapes = check_int(num_landscapes, "num_landscapes", 1)
    samples = resolve_grid(grid, sample_range, resolution)
    birth, death, keep, batched = prepare(diagrams, mask, infinite)
    x = grid_tensor(samples, birth)
    if compiled(birth) and birth.shape[1]:
        # A compiled kernel picks the pair of each value and computes it (no (B, R, K)
        # temporary); where a gradient is wanted, the same tent is computed from those pairs'
        # tensors and added as (tent - tent.detach()), exactly 0, which carries its gradient.
        gradient = torch.is_grad_enabled() and (birth.requires_grad or death.requires_grad)
        out, index = _top_tents_cpu(birth, death, keep, x, num_landscapes, gradient)
        if gradient:
            rows = index.clamp_min(0).flatten(1)
            mid = ((birth + death) / 2).gather(1, rows).view(index.shape)
            height = ((death - birth) / 2).gather(1, rows).view(index.shape)
            tent = torch.where(index >= 0, (height - (x.to(birth.dtype) - mid).abs()).relu(), 0.0)
            out = out + (tent - tent.detach())
    else:
        k = min(num_landscapes, birth.shape[1])
        out = cat([tents(birth[i], death[i], x).topk(k, dim=-1).values.transpose(1, 2)  # (b, k, R)
                   for i in blocks(birth, x.numel())])
        if k < num_landscapes:  # fewer pairs than landscapes: the rest are 0, as gudhi pads them
            out = torch.cat([out, out.new_zeros(out.shape[0], num_landscapes - k, out.shape[2])], 1)
    out = out * math.sqrt(2)
    return out if batched else out.squeeze(0)


class Landscape(GridVectorizer):
    r"""Persistence landscapes of :class:`~torchtopo.Diagrams` (or padded / listed diagrams).

    Calls :func:`persistence_landscape` once per homology dimension in ``dims``, on gudhi's grid:
    unset ends of ``sample_range`` are learned by :meth:`fit` (the smallest birth and the largest
    death of the fitted diagrams, ``sample_range_``) and, unless ``keep_endpoints``, the grid is
    drawn with one more point per fitted end and that end left out (``grid_``). The fit is kept
    in ``state_dict()`` and in :meth:`to_config`.

    Convention:
        gudhi's ``Landscape(num_landscapes, resolution, sample_range, keep_endpoints=...)``:
        ``Landscape(...).fit(d)(d).flatten(1)`` equals its ``fit_transform`` on the same
        diagrams, fitted range included. Infinite bars are dropped (``infinite="drop"``; gudhi
        would fail to fit them) or raise.

    Parameters
    ----------
    num_landscapes : int
        Number of landscapes per dimension. Default 5.
    resolution : int
        Samples per landscape. Default 100.
    sample_range : pair of float or None
        ``(x_min, x_max)``; ``None`` (or NaN) entries are fitted. Default ``(None, None)``.
    keep_endpoints : bool
        Keep the fitted ends in the grid (where every landscape is 0). Default False, as gudhi.
    dims : sequence of int
        Homology dimensions to vectorize. Default ``(1,)``.
    infinite : {"drop", "raise"}
        What to do with infinite deaths.

    Shape:
        - Input: :class:`~torchtopo.Diagrams`; a ``(B, K, 2)`` / ``(K, 2)`` tensor with an optional
          mask; or a list of ``(k_i, 2)`` tensors (tensors and lists need one entry in ``dims``).
        - Output with one dimension: ``(B, num_landscapes, resolution)``; with several, their
          flattened outputs concatenated in the order of ``dims``, ``(B, num_features)``.

    Examples
    --------
    >>> import torch
    >>> dgms = [torch.tensor([[0.0, 2.0], [0.5, 1.5]]), torch.tensor([[1.0, 3.0]])]
    >>> landscape = Landscape(num_landscapes=2, resolution=4).fit(dgms)
    >>> landscape.sample_range_, landscape(dgms).shape
    ([(0.0, 3.0)], torch.Size([2, 2, 4]))
    """

    def __init__(
        self,
        num_landscapes: int = 5,
        resolution: int = 100,
        sample_range: Sequence[float | None] | None = (None, None),
        *,
        keep_endpoints: bool = False,
        dims: Sequence[int] = (1,),
        infinite: str = "drop",
    ) -> None:
        super().__init__(resolution, sample_range, keep_endpoints, dims, infinite)
        self.num_landscapes = check_int(num_landscapes, "num_landscapes", 1)

    @property
    def num_features(self) -> int:
        return self.num_landscapes * self.resolution * len(self.dims)

    def _transform(self, i: int, pairs: Tensor, mask: Tensor | None) -> Tensor:
        return persistence_landscape(pairs, mask=mask, grid=self._grid(i), num_landscapes=self.num_landscapes,
                                     infinite=self.infinite)

    def _arguments(self) -> dict[str, Any]:
        return dict(num_landscapes=self.num_landscapes, **self._grid_arguments())

    def extra_repr(self) -> str:
        return f"num_landscapes={self.num_landscapes}, {self._grid_repr()}"
