"""Persistence images: batched, differentiable, with gudhi's and persim's conventions.

A persistence image (Adams et al., JMLR 2017) places a weighted Gaussian on every point of a
diagram in (birth, persistence) coordinates and samples (gudhi) or integrates (persim) the sum
on a grid. Here the two axis Gaussians factor, so a whole batch is one ``bmm`` of a
``(B, H, K)`` by a ``(B, K, W)`` tensor: no Python loop over diagrams or points.
"""

from __future__ import annotations

import abc

import math
from typing import Any, Callable, ClassVar, Sequence, Union

import torch
from torch import Tensor, nn

from .._checks import check_all, check_choice, check_floating, check_mask, check_no_nan, check_positive, check_shape
from ..diagrams import Diagrams

__all__ = [
    "Weight",
    "ConstantWeight",
    "PowerWeight",
    "TopKDWeight",
    "get_weight",
    "persistence_image",
    "persistence_curve",
    "PersistenceImage",
]

_CONVENTIONS = ("gudhi", "persim")
_INFINITE = ("drop", "raise")


# --------------------------------------------------------------------------- weight functions


class Weight(abc.ABC):
    """A weight function on the (birth, persistence) plane, applied to tensors.

    Subclasses implement ``__call__(birth, persistence) -> Tensor`` elementwise on ``(B, K)``
    tensors and list their parameters in ``_params`` so that :meth:`to_config` can save them.
    Any plain callable with that signature is accepted where a weight is expected, but only
    :class:`Weight` objects can be saved with a :class:`PersistenceImage`.
    """

    name: ClassVar[str]
    _params: ClassVar[tuple[str, ...]] = ()
    _registry: ClassVar[dict[str, type["Weight"]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        Weight._registry[cls.name] = cls

    @abc.abstractmethod
    def __call__(self, birth: Tensor, persistence: Tensor) -> Tensor:
        """The weight of each pair, same shape as ``birth`` and ``persistence``."""

    def to_config(self) -> dict[str, Any]:
        """A JSON-able dict; :func:`get_weight` turns it back into the weight."""
        return {"name": self.name, **{p: getattr(self, p) for p in self._params}}

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Weight) and self.to_config() == other.to_config()

    def __repr__(self) -> str:
        args = ", ".join(f"{p}={getattr(self, p)!r}" for p in self._params)
        return f"{type(self).__name__}({args})"


class ConstantWeight(Weight):
    """``w(b, p) = value`` (gudhi's default weight, ``value=1``)."""

    name = "constant"
    _params = ("value",)

    def __init__(self, value: float = 1.0) -> None:
        self.value = float(value)

    def __call__(self, birth: Tensor, persistence: Tensor) -> Tensor:
        return torch.full_like(persistence, self.value)


class PowerWeight(Weight):
    """``w(b, p) = p ** n``; ``n = 1`` is the linear weight (persim's default ``persistence``)."""

    name = "power"
    _params = ("n",)

    def __init__(self, n: float = 1.0) -> None:
        if n <= 0:
            raise ValueError(f"PowerWeight: n must be positive, got {n}")
        self.n = float(n)

    def __call__(self, birth: Tensor, persistence: Tensor) -> Tensor:
        return persistence if self.n == 1.0 else persistence.clamp_min(0).pow(self.n)


class TopKDWeight(Weight):
    """TopKD's official weight ``w(b, p) = 10 tanh(p) + 10 log(100 b + 1)``.

    For H0 of a Rips filtration every birth is 0, so only ``10 tanh(p)`` remains.
    """

    name = "topkd"

    def __call__(self, birth: Tensor, persistence: Tensor) -> Tensor:
        return 10 * torch.tanh(persistence) + 10 * torch.log1p(100 * birth)


WeightLike = Union[str, dict, Weight, Callable[[Tensor, Tensor], Tensor]]


def get_weight(weight: WeightLike) -> Callable[[Tensor, Tensor], Tensor]:
    """Resolve a weight given by name, config dict, :class:`Weight` or callable.

    Names: ``"constant"`` (1), ``"linear"`` (``p``), ``"power"`` (``p``, see :class:`PowerWeight`),
    ``"topkd"`` (:class:`TopKDWeight`).

    >>> get_weight("linear"), get_weight({"name": "power", "n": 2.0})
    (PowerWeight(n=1.0), PowerWeight(n=2.0))
    """
    if isinstance(weight, str):
        if weight == "linear":
            return PowerWeight(1.0)
        if weight not in Weight._registry:
            raise ValueError(f"weight: unknown name {weight!r}, expected one of {['linear', *Weight._registry]}")
        return Weight._registry[weight]()
    if isinstance(weight, dict):
        params = dict(weight)
        name = params.pop("name", None)
        if name not in Weight._registry:
            raise ValueError(f"weight: config needs a 'name' in {list(Weight._registry)}, got {weight!r}")
        return Weight._registry[name](**params)
    if callable(weight):
        return weight
    raise TypeError(f"weight must be a name, a config dict or a callable, got {type(weight).__name__}")


# --------------------------------------------------------------------------- input checks


def _check_range(im_range: Sequence[float], name: str, n: int) -> tuple[float, ...]:
    values = tuple(float(v) for v in im_range)
    if len(values) != n or not all(math.isfinite(v) for v in values):
        raise ValueError(f"{name} must hold {n} finite numbers, got {im_range!r}")
    for lo, hi in zip(values[::2], values[1::2]):
        if hi < lo:
            raise ValueError(f"{name}: each maximum must be >= its minimum, got {im_range!r}")
    return values


def _prepare(
    diagrams: Tensor, mask: Tensor | None, weight: WeightLike, infinite: str
) -> tuple[Tensor, tuple[Tensor, Tensor | None], Tensor, bool]:
    """Batch the input and return ``birth``, ``(persistence, its rounding error or None)`` and
    ``weights``, each ``(B, K)``, with zero weight on padding and dropped bars, and whether the
    input was batched."""
    check_floating(diagrams, "diagrams")
    check_shape(diagrams, "diagrams", "(B, K, 2) or (K, 2)", diagrams.dim() in (2, 3) and diagrams.shape[-1] == 2)
    check_mask(mask, diagrams.shape[:-1])
    check_choice(infinite, "infinite", _INFINITE)
    batched = diagrams.dim() == 3
    if not batched:
        diagrams = diagrams.unsqueeze(0)
        mask = None if mask is None else mask.unsqueeze(0)
    real = torch.ones(diagrams.shape[:-1], dtype=torch.bool, device=diagrams.device) if mask is None else mask
    birth, death = diagrams.unbind(-1)
    check_no_nan(torch.where(real.unsqueeze(-1), diagrams, 0.0), "diagrams")
    check_all(torch.isfinite(torch.where(real, birth, 0.0)), "diagrams: births must be finite")
    finite = torch.isfinite(death)
    if infinite == "raise" and not bool((finite | ~real).all()):
        raise ValueError("diagrams contain infinite deaths; pass infinite='drop' to ignore them")
    keep = real & finite
    # Zero the unused rows so that inf/garbage never reaches the arithmetic (nor its gradient).
    birth = torch.where(keep, birth, 0.0)
    death = torch.where(keep, death, 0.0)
    persistence = death - birth
    w = get_weight(weight)(birth, persistence)
    if not isinstance(w, Tensor) or w.shape != birth.shape:
        raise ValueError(f"weight must return a tensor of shape {tuple(birth.shape)}, got "
                         f"{tuple(w.shape) if isinstance(w, Tensor) else type(w).__name__}")
    # The rounding error of death - birth (Knuth's TwoSum; exactly representable, zero gradient):
    # below float64 it would otherwise dominate the image's error when bandwidth << the values.
    low = None
    if diagrams.dtype != torch.float64:
        minus_birth = persistence - death
        low = (death - (persistence - minus_birth)) - (birth + minus_birth)
    return birth, (persistence, low), torch.where(keep, w, 0.0), batched


_CPU_BLOCK = 1 << 18  # elements of one (b, K, R) temporary: 1 MiB in float32, cache-resident


def _blocks(coord: Tensor, pixels: int) -> list[slice]:
    """Slices of the batch to vectorise at once.

    The work is a few elementwise passes over ``(B, K, R)`` temporaries and one ``bmm``. On
    accelerators that is one block. On the CPU, temporaries of a whole batch live in main memory
    (and fresh pages cost more than the arithmetic), so blocks of diagrams whose temporaries fit
    the cache run 3 to 5 times faster; each block is still one batched contraction.
    """
    if coord.device.type != "cpu":
        return [slice(None)]
    size = max(1, _CPU_BLOCK // max(coord.shape[1] * pixels, 1))
    return [slice(i, i + size) for i in range(0, max(coord.shape[0], 1), size)]


def _cat(blocks: list[Tensor]) -> Tensor:
    return blocks[0] if len(blocks) == 1 else torch.cat(blocks)  # no copy of a single block


def _axis(lo: float, hi: float, n: int, like: Tensor) -> tuple[Tensor, Tensor | None]:
    """``linspace(lo, hi, n)`` as a high part in ``like``'s dtype and, below float64, the rounding
    error of that part (None in float64)."""
    grid = torch.linspace(lo, hi, n, dtype=torch.float64)
    if like.dtype == torch.float64:
        return grid.to(like.device), None
    high = grid.to(like.dtype)
    return high.to(like.device), (grid - high.double()).to(like.dtype).to(like.device)


def _axis_kernel(
    coord: Tensor, coord_low: Tensor | None, lo: float, hi: float, n: int, bandwidth: float, convention: str
) -> Tensor:
    """``(B, K)`` coordinates -> ``(B, K, n)`` kernel values along one axis.

    gudhi: ``exp(-u^2 / 2)`` at the ``n`` grid points ``linspace(lo, hi, n)`` (normalisation
    applied by the caller). persim: the Gaussian mass of each of the ``n`` pixels between the
    ``n + 1`` edges ``linspace(lo, hi, n + 1)``. ``coord_low`` is the rounding error of
    ``coord``, if known.
    """
    grid, grid_low = _axis(lo, hi, n if convention == "gudhi" else n + 1, coord)
    # grid - coord is exact or correctly rounded relative to itself; the low parts restore what
    # rounding the grid and the coordinates lost, so that float32 agrees with float64 to ~1e-7.
    # (In-place updates of fresh temporaries that no backward formula reads: fewer passes.)
    diff = grid - coord.unsqueeze(-1)
    if grid_low is not None:
        diff.add_(grid_low)
        if coord_low is not None:
            diff.sub_(coord_low.unsqueeze(-1))
    # Values below sqrt(tiny) (1e-19 in float32) become 0: their products in the contraction
    # would be subnormal numbers, which CPUs process some 100 times slower.
    floor = torch.finfo(coord.dtype).tiny ** 0.5
    if convention == "gudhi":
        exponent = diff.mul_(1 / bandwidth).square().mul_(-0.5).clamp_min_(math.log(floor))
        return nn.functional.threshold(exponent.exp(), floor * 1.001, 0.0)
    # A pixel's mass is a difference of two close CDF values: in float32 a pixel narrow against
    # the bandwidth would lose digits to cancellation, so this difference is taken in float64.
    u = (diff / (bandwidth * math.sqrt(2.0))).double()
    # Difference the complementary error function on the side of the pixel away from the mean:
    # erf(u1) - erf(u0) cancels catastrophically in the tails, erfc of the same sign does not.
    # One erfc per edge, of |u| (accurate in either tail); the reflection 2 - erfc is only used
    # next to the mean, where it loses nothing.
    positive = u >= 0
    tail = torch.special.erfc(torch.where(positive, u, -u))
    upper = torch.where(positive, tail, 2 - tail)  # erfc(u)
    lower = torch.where(positive, 2 - tail, tail)  # erfc(-u)
    right = (u[..., 1:] + u[..., :-1]) >= 0
    mass = 0.5 * torch.where(right, upper[..., :-1] - upper[..., 1:], lower[..., 1:] - lower[..., :-1])
    return torch.where(mass < floor, 0.0, mass).to(coord.dtype)


def persistence_image(
    diagrams: Tensor,
    mask: Tensor | None = None,
    *,
    im_range: Sequence[float],
    resolution: Sequence[int] = (20, 20),
    bandwidth: float = 1.0,
    weight: WeightLike = "constant",
    convention: str = "gudhi",
    infinite: str = "drop",
) -> Tensor:
    r"""Persistence images of a batch of diagrams, by one batched matrix product.

    .. math::

        I[i, j] = \sum_k w(b_k, p_k)\, K_\sigma(y_i - p_k)\, K_\sigma(x_j - b_k)

    with birth :math:`b_k`, persistence :math:`p_k = d_k - b_k`, birth grid :math:`x_j` and
    persistence grid :math:`y_i`: the two axis kernels factor, so the sum over points is one
    ``bmm`` of ``(B, H, K)`` by ``(B, K, W)`` (on the CPU, one per cache-sized block of diagrams).

    Convention:
        - Coordinates are (birth, persistence). Output rows are the persistence axis (row 0 = the
          lowest persistence) and columns the birth axis, so ``image.flatten(-1)`` (or
          ``.flatten(1)`` on a batch) equals gudhi's ``PersistenceImage(bandwidth, weight,
          resolution, im_range).transform`` row for row; ``resolution`` and ``im_range`` are in
          gudhi's order, birth first.
        - ``convention="gudhi"``: :math:`K_\sigma` is the Gaussian density with standard
          deviation ``bandwidth`` sampled at ``linspace(lo, hi, n)`` (both ends included), so the
          image is :math:`\sum_k w_k\, \mathcal N(\cdot; (b_k, p_k), \sigma^2 I)` on the grid;
          not normalised.
        - ``convention="persim"``: :math:`K_\sigma` is the Gaussian *mass* of each pixel, whose
          ``n + 1`` edges are ``linspace(lo, hi, n + 1)``: ``im_range`` gives the outer pixel
          edges, as persim's ``birth_range`` / ``pers_range`` do. persim's ``PersistenceImager``
          returns the transpose ``(birth, persistence)`` and takes a *variance*:
          ``kernel_params={"sigma": bandwidth ** 2}``, ``pixel_size = (hi - lo) / n``.
        - Infinite deaths (``+inf``) are dropped (``infinite="drop"``) or raise
          (``infinite="raise"``); they never produce a NaN image. Padding rows are ignored.
        - Accuracy: float64 agrees with gudhi and persim to ~1e-14 of the image's peak. float32
          agrees to ~3e-7 of the peak when the peak lies within about one ``bandwidth`` of a
          diagram point (``bandwidth`` at least half the pixel spacing, points inside the range);
          further out a pixel ``u`` bandwidths from every point is off by about ``u**2 * 1e-7``
          of its own value, the precision of exp's argument in float32. The rounding of ``death -
          birth`` and of the grid is compensated, so it costs nothing. Per-axis kernel values
          below ``sqrt(finfo.tiny)`` (1e-19 in float32, 1e-154 in float64) are flushed to 0, so
          that no subnormal number slows the contraction down.

    Parameters
    ----------
    diagrams : Tensor
        ``(B, K, 2)`` or ``(K, 2)`` floating, columns (birth, death).
    mask : Tensor, optional
        ``(B, K)`` or ``(K,)`` bool, True for real pairs. Default: every row is real.
    im_range : sequence of 4 floats
        ``(birth_min, birth_max, persistence_min, persistence_max)``.
    resolution : pair of int
        ``(n_birth, n_persistence)``, gudhi's order. Default ``(20, 20)``.
    bandwidth : float
        Standard deviation :math:`\sigma` of the Gaussian. Default 1.
    weight : str, dict, Weight or callable
        ``w(birth, persistence)`` on ``(B, K)`` tensors; see :func:`get_weight`. Default
        ``"constant"`` (1, as gudhi).
    convention : {"gudhi", "persim"}
        Sampled density or pixel integral (see Convention).
    infinite : {"drop", "raise"}
        What to do with infinite deaths.

    Returns
    -------
    Tensor
        ``(B, n_persistence, n_birth)``, or ``(n_persistence, n_birth)`` for a ``(K, 2)`` input.
        Dtype and device of ``diagrams``; differentiable with respect to ``diagrams``.

    Raises
    ------
    TypeError
        If ``diagrams`` is not a floating tensor.
    ValueError
        On a wrong shape, a mask of the wrong shape or dtype, NaN, an infinite birth, an infinite
        death with ``infinite="raise"``, a bad range, resolution or bandwidth.

    Examples
    --------
    >>> import torch
    >>> dgm = torch.tensor([[0.0, 1.0], [0.5, 2.0]])
    >>> img = persistence_image(dgm, im_range=(0, 1, 0, 2), resolution=(3, 5), bandwidth=0.5)
    >>> img.shape
    torch.Size([5, 3])
    >>> divmod(img.argmax().item(), 3)  # (row, column): persistence 1, birth 0, the point (0, 1)
    (2, 0)
    """
    check_choice(convention, "convention", _CONVENTIONS)
    res = tuple(int(r) for r in resolution)
    if len(res) != 2 or min(res) < 1:
        raise ValueError(f"resolution must be two positive ints (n_birth, n_persistence), got {resolution!r}")
    check_positive(bandwidth, "bandwidth")
    bmin, bmax, pmin, pmax = _check_range(im_range, "im_range", 4)
    birth, (persistence, low), w, batched = _prepare(diagrams, mask, weight, infinite)
    if convention == "gudhi":
        w = w / (2 * math.pi * bandwidth**2)

    def block(i: slice) -> Tensor:
        gb = _axis_kernel(birth[i], None, bmin, bmax, res[0], bandwidth, convention)  # (b, K, W)
        gp = _axis_kernel(persistence[i], None if low is None else low[i], pmin, pmax, res[1], bandwidth, convention)
        return torch.bmm((gp * w[i].unsqueeze(-1)).transpose(1, 2), gb)  # (b, H, W)

    image = _cat([block(i) for i in _blocks(birth, max(res) + 1)])
    return image if batched else image.squeeze(0)


def persistence_curve(
    diagrams: Tensor,
    mask: Tensor | None = None,
    *,
    pers_range: Sequence[float],
    resolution: int = 20,
    bandwidth: float = 1.0,
    weight: WeightLike = "constant",
    convention: str = "gudhi",
    infinite: str = "drop",
) -> Tensor:
    r"""One-dimensional persistence images: the persistence image without its birth axis.

    .. math:: c[i] = \sum_k w(b_k, p_k)\, K_\sigma(y_i - p_k)

    This is the documented vectorisation for H0 of Rips filtrations: every H0 class is born at 0,
    so a 2-D image's birth axis is degenerate (TopKD's official code yields 20 identical
    columns) and the persistence axis, here equal to the death axis, carries all the
    information.

    Convention:
        As :func:`persistence_image`, along the persistence axis only: ``convention="gudhi"``
        samples the 1-D Gaussian density :math:`\mathcal N(y_i; p_k, \sigma^2)` at
        ``linspace(lo, hi, n)``; ``"persim"`` integrates it over the pixels with edges
        ``linspace(lo, hi, n + 1)``. Births only enter through the weight. Infinite deaths are
        dropped or raise, padding is ignored.

    Parameters
    ----------
    diagrams : Tensor
        ``(B, K, 2)`` or ``(K, 2)`` floating, columns (birth, death).
    mask : Tensor, optional
        ``(B, K)`` or ``(K,)`` bool, True for real pairs.
    pers_range : pair of floats
        ``(persistence_min, persistence_max)``.
    resolution : int
        Number of pixels. Default 20.
    bandwidth, weight, convention, infinite
        As in :func:`persistence_image`.

    Returns
    -------
    Tensor
        ``(B, resolution)`` or ``(resolution,)``; differentiable with respect to ``diagrams``.

    Raises
    ------
    TypeError, ValueError
        As :func:`persistence_image`.

    Examples
    --------
    >>> import torch
    >>> h0 = torch.tensor([[0.0, 1.0], [0.0, 1.0], [0.0, float("inf")]])
    >>> persistence_curve(h0, pers_range=(0, 2), resolution=3, bandwidth=0.5)
    tensor([0.2160, 1.5958, 0.2160])
    """
    check_choice(convention, "convention", _CONVENTIONS)
    if int(resolution) < 1:
        raise ValueError(f"resolution must be a positive int, got {resolution!r}")
    check_positive(bandwidth, "bandwidth")
    pmin, pmax = _check_range(pers_range, "pers_range", 2)
    _, (persistence, low), w, batched = _prepare(diagrams, mask, weight, infinite)
    if convention == "gudhi":
        w = w / (math.sqrt(2 * math.pi) * bandwidth)

    def block(i: slice) -> Tensor:
        gp = _axis_kernel(persistence[i], None if low is None else low[i], pmin, pmax, int(resolution), bandwidth,
                          convention)
        return torch.bmm(w[i].unsqueeze(1), gp).squeeze(1)  # (b, H)

    curve = _cat([block(i) for i in _blocks(persistence, int(resolution) + 1)])
    return curve if batched else curve.squeeze(0)


# --------------------------------------------------------------------------- module

DiagramsLike = Union[Diagrams, Tensor, Sequence[Tensor]]


# Bandwidths that ``fit`` learns: see :func:`_quantile_bandwidth`.
_FITTED_BANDWIDTHS = ("quantile", "topkd")
# TopKD's official rule reads the first 200 stacked diagram points and ignores distances up to 1e-5.
_TOPKD_POINTS, _TOPKD_MIN_DISTANCE = 200, 1e-5


def _quantile_bandwidth(points: Tensor, q: float, rule: str = "quantile", max_points: int = 2048) -> float:
    """q-quantile of the distances between the diagram points ``points`` ``(P, 2)``.

    ``rule="quantile"``: every pair of points once, zero distances (tied points) left out; above
    ``max_points`` points a fixed-seed random subset, so the rule stays deterministic and memory
    bounded. ``rule="topkd"``: TopKD's official code (``ripsnet_utils.dg_to_PI``), the first 200
    points, every ordered pair (a full distance matrix), distances above 1e-5.
    """
    if rule == "topkd":
        distances = torch.nn.functional.pdist(points[:_TOPKD_POINTS].detach().double())
        distances = torch.cat([distances, distances])
        distances = distances[distances > _TOPKD_MIN_DISTANCE]
    else:
        if points.shape[0] > max_points:
            generator = torch.Generator().manual_seed(0)
            points = points[torch.randperm(points.shape[0], generator=generator)[:max_points]]
        distances = torch.nn.functional.pdist(points.detach().double())
        distances = distances[distances > 0]
    count = distances.numel()
    if count == 0:
        raise ValueError(f"bandwidth={rule!r} needs two distinct diagram points to fit")
    # torch.quantile's linear interpolation from two order statistics: selection (kthvalue) is
    # linear time where quantile sorts all ~2 million distances.
    position = q * (count - 1)
    below = math.floor(position)
    low = torch.kthvalue(distances, below + 1).values
    high = torch.kthvalue(distances, min(below + 2, count)).values
    return float(low + (position - below) * (high - low))


class PersistenceImage(nn.Module):
    r"""Persistence images of :class:`~torchtopo.Diagrams` (or padded / listed diagrams).

    Stores its arguments and calls :func:`persistence_image` (or :func:`persistence_curve` for
    H0, see ``h0``) once per homology dimension in ``dims``. Unset parts of ``im_range``,
    ``bandwidth="quantile"`` or ``"topkd"`` and ``normalize=True`` are learned by :meth:`fit` (sklearn style:
    ``range_``, ``bandwidth_``, ``scale_``, one entry per dimension in ``dims``) and saved by
    :meth:`to_config`.

    Convention:
        As :func:`persistence_image`: (birth, persistence) coordinates, rows = persistence,
        columns = birth, ``resolution = (n_birth, n_persistence)`` and ``im_range = (birth_min,
        birth_max, persistence_min, persistence_max)`` in gudhi's order, so that
        ``PersistenceImage(...).fit(d)(d).flatten(1)`` equals gudhi's
        ``PersistenceImage(...).fit_transform`` on the same diagrams. ``h0="curve"`` (default)
        turns H0 into a 1-D image over persistence (:func:`persistence_curve`), using
        ``resolution[1]`` pixels and the persistence part of the range.

    Parameters
    ----------
    resolution : pair of int
        ``(n_birth, n_persistence)``. Default ``(20, 20)``.
    bandwidth : float, "quantile" or "topkd"
        Gaussian standard deviation, or fitted per dimension as the ``quantile``-quantile of the
        distances between the (birth, persistence) points pooled over the fitted diagrams (the
        rule of the RipsNet paper and TopKD): ``"quantile"`` over every pair of distinct points
        (a fixed random subset of 2048 points at most); ``"topkd"`` exactly as TopKD's official
        code, over the first 200 points only and distances above 1e-5.
    weight : str, dict, Weight or callable
        See :func:`get_weight`. Default ``"constant"``.
    im_range : sequence of 4 floats or None, optional
        ``None`` entries (or ``im_range=None``) are fitted as the data min / max (gudhi's fit).
    dims : sequence of int
        Homology dimensions to vectorise. Default ``(1,)``.
    convention : {"gudhi", "persim"}
        See :func:`persistence_image`.
    h0 : {"curve", "image"}
        Vectorisation of dimension 0: a 1-D curve (default) or a 2-D image (TopKD's choice).
    quantile : float
        ``q`` of a fitted bandwidth. Default 0.2.
    normalize : bool
        Divide every image by the maximum pixel over the fitted diagrams (``scale_ = 1 / max``),
        per dimension, as TopKD does. Default False.
    infinite : {"drop", "raise"}
        What to do with infinite deaths. Default "drop".

    Shape:
        - Input: :class:`~torchtopo.Diagrams`; a ``(B, K, 2)`` / ``(K, 2)`` tensor with an optional
          mask; or a list of ``(k_i, 2)`` tensors. Tensors and lists need ``len(dims) == 1``.
        - Output with one dimension: ``(B, n_persistence, n_birth)``, or ``(B, n_persistence)``
          for an H0 curve (no ``B`` for unbatched input). With several dimensions: their
          flattened images concatenated in the order of ``dims``, ``(B, num_features)``. In every
          case ``out.flatten(1)`` is the ``num_features``-long feature vector of a batch.

    Examples
    --------
    >>> import torch
    >>> from torchtopo import Diagrams
    >>> dgm = Diagrams.from_list([[torch.tensor([[0.0, 1.0], [0.0, 2.0]])],
    ...                           [torch.tensor([[0.5, 1.0], [0.2, 0.9]])]])
    >>> pi = PersistenceImage(resolution=(4, 5), bandwidth="quantile", dims=(0, 1)).fit(dgm)
    >>> pi(dgm).shape, pi.num_features
    (torch.Size([1, 25]), 25)
    >>> PersistenceImage.from_config(pi.to_config())(dgm).equal(pi(dgm))
    True
    """

    def __init__(
        self,
        resolution: Sequence[int] = (20, 20),
        bandwidth: float | str = 1.0,
        weight: WeightLike = "constant",
        im_range: Sequence[float | None] | None = None,
        dims: Sequence[int] = (1,),
        convention: str = "gudhi",
        *,
        h0: str = "curve",
        quantile: float = 0.2,
        normalize: bool = False,
        infinite: str = "drop",
    ) -> None:
        super().__init__()
        self.resolution = tuple(int(r) for r in resolution)
        if len(self.resolution) != 2 or min(self.resolution) < 1:
            raise ValueError(f"resolution must be two positive ints (n_birth, n_persistence), got {resolution!r}")
        if bandwidth not in _FITTED_BANDWIDTHS:
            check_positive(bandwidth, "bandwidth")
        if not 0 <= quantile <= 1:
            raise ValueError(f"quantile must be in [0, 1], got {quantile!r}")
        self.bandwidth, self.quantile = bandwidth, float(quantile)
        self.weight = get_weight(weight)
        im_range = (None,) * 4 if im_range is None else tuple(im_range)
        if len(im_range) != 4:
            raise ValueError(f"im_range must hold 4 entries (numbers or None), got {im_range!r}")
        self.im_range = tuple(None if v is None or math.isnan(v) else float(v) for v in im_range)
        self.dims = tuple(int(d) for d in dims)
        if not self.dims or min(self.dims) < 0 or len(set(self.dims)) != len(self.dims):
            raise ValueError(f"dims must be distinct non-negative ints, got {dims!r}")
        check_choice(convention, "convention", _CONVENTIONS)
        check_choice(h0, "h0", ("curve", "image"))
        check_choice(infinite, "infinite", _INFINITE)
        self.convention, self.h0, self.normalize, self.infinite = convention, h0, bool(normalize), infinite

    @classmethod
    def topkd(cls, faithful: bool = True, *, dims: Sequence[int] = (0,)) -> "PersistenceImage":
        """TopKD's vectoriser: bandwidth = 0.2-quantile, range and max-scale fitted, weight
        ``10 tanh(p) + 10 log(100 b + 1)``, 20 x 20 pixels.

        ``faithful=True`` is the official code: H0 as a 20 x 20 image (whose 20 columns are
        identical) and the bandwidth of its first 200 diagram points (``bandwidth="topkd"``).
        ``faithful=False`` is the corrected default: H0 as the 20-pixel curve and the bandwidth
        of all the points (``bandwidth="quantile"``). ``dims`` adds homology dimensions beyond
        the official H0 (e.g. ``(0, 1)``), each as a 20 x 20 image.

        >>> PersistenceImage.topkd(faithful=False, dims=(0, 1)).num_features
        420
        """
        return cls(resolution=(20, 20), bandwidth="topkd" if faithful else "quantile", weight="topkd",
                   im_range=None, dims=dims, h0="image" if faithful else "curve", quantile=0.2, normalize=True)

    # -- shapes -------------------------------------------------------------------------------

    def _is_curve(self, dim: int) -> bool:
        return dim == 0 and self.h0 == "curve"

    @property
    def num_features(self) -> int:
        """Length of the flattened output of one diagram."""
        n_birth, n_pers = self.resolution
        return sum(n_pers if self._is_curve(d) else n_birth * n_pers for d in self.dims)

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
            for i, t in enumerate(diagrams):
                check_floating(t, f"diagrams[{i}]")
            batch = Diagrams.from_list([list(diagrams)])
            return [(batch.pairs[0], batch.mask[0])]
        raise TypeError(f"diagrams must be a Diagrams, a tensor or a list of tensors, got {type(diagrams).__name__}")

    # -- fitting ------------------------------------------------------------------------------

    @torch.no_grad()
    def fit(self, diagrams: DiagramsLike, mask: Tensor | None = None) -> "PersistenceImage":
        """Learn the unset range entries, a quantile bandwidth and the scale from ``diagrams``.

        Sets ``range_`` (per dimension, 4 floats), ``bandwidth_`` and ``scale_`` (per dimension)
        and returns ``self``. Infinite bars are ignored.
        """
        ranges, bandwidths, scales = [], [], []
        for dim, (pairs, m) in zip(self.dims, self._per_dim(diagrams, mask)):
            birth, (persistence, _), w, _ = _prepare(pairs, m, "constant", "drop")
            points = torch.stack([birth, persistence], -1)[w > 0]
            if points.shape[0] == 0 and (None in self.im_range or self.bandwidth in _FITTED_BANDWIDTHS):
                raise ValueError(f"fit: no finite diagram point in dimension {dim} to fit the range or bandwidth")
            if points.shape[0]:
                lo, hi = points.min(0).values.tolist(), points.max(0).values.tolist()
                data = (lo[0], hi[0], lo[1], hi[1])
                ranges.append(tuple(d if v is None else v for v, d in zip(self.im_range, data)))
            else:
                ranges.append(self.im_range)
            bandwidths.append(_quantile_bandwidth(points, self.quantile, self.bandwidth)
                              if self.bandwidth in _FITTED_BANDWIDTHS else float(self.bandwidth))
            scales.append(1.0)
        self.range_, self.bandwidth_, self.scale_ = ranges, bandwidths, scales
        if self.normalize:
            peaks = [float(img.max()) for img in self._images(self._per_dim(diagrams, mask))]
            if min(peaks) <= 0:
                raise ValueError("fit: normalize=True needs a non-zero image in every dimension")
            self.scale_ = [1.0 / p for p in peaks]
        return self

    def _needs_fit(self) -> bool:
        return None in self.im_range or self.bandwidth in _FITTED_BANDWIDTHS or self.normalize

    def _params(self, i: int) -> tuple[tuple[float, ...], float, float]:
        if hasattr(self, "range_"):
            return self.range_[i], self.bandwidth_[i], self.scale_[i]
        if self._needs_fit():
            raise RuntimeError("PersistenceImage is not fitted: im_range has unset entries, a fitted bandwidth "
                               "or normalize=True; call fit(diagrams) first")
        return self.im_range, float(self.bandwidth), 1.0

    # -- forward ------------------------------------------------------------------------------

    def _images(self, per_dim: list[tuple[Tensor, Tensor | None]]) -> list[Tensor]:
        out = []
        for i, (dim, (pairs, m)) in enumerate(zip(self.dims, per_dim)):
            im_range, bandwidth, scale = self._params(i)
            common = dict(bandwidth=bandwidth, weight=self.weight, convention=self.convention, infinite=self.infinite)
            if self._is_curve(dim):
                img = persistence_curve(pairs, m, pers_range=im_range[2:], resolution=self.resolution[1], **common)
            else:
                img = persistence_image(pairs, m, im_range=im_range, resolution=self.resolution, **common)
            out.append(img if scale == 1.0 else img * scale)
        return out

    def forward(self, diagrams: DiagramsLike, mask: Tensor | None = None) -> Tensor:
        """Images of ``diagrams``; see the class docstring for shapes."""
        images = self._images(self._per_dim(diagrams, mask))
        if len(images) == 1:
            return images[0]
        batched = isinstance(diagrams, (list, tuple)) or diagrams.is_batched
        return torch.cat([img.flatten(1 if batched else 0) for img in images], -1)

    # -- persistence of the parameters --------------------------------------------------------

    def to_config(self) -> dict[str, Any]:
        """A JSON-able dict of the arguments and fitted attributes; see :meth:`from_config`."""
        if not isinstance(self.weight, Weight):
            raise TypeError("to_config: a plain-callable weight cannot be saved; use a torchtopo Weight subclass")
        config: dict[str, Any] = dict(
            resolution=list(self.resolution), bandwidth=self.bandwidth, weight=self.weight.to_config(),
            im_range=list(self.im_range), dims=list(self.dims), convention=self.convention, h0=self.h0,
            quantile=self.quantile, normalize=self.normalize, infinite=self.infinite,
        )
        if hasattr(self, "range_"):
            config["fitted"] = dict(range_=[list(r) for r in self.range_], bandwidth_=self.bandwidth_, scale_=self.scale_)
        return config

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> "PersistenceImage":
        """Rebuild a (possibly fitted) vectoriser from :meth:`to_config`'s dict."""
        config = dict(config)
        fitted = config.pop("fitted", None)
        pi = cls(**config)
        if fitted is not None:
            if {len(v) for v in fitted.values()} != {len(pi.dims)}:
                raise ValueError(f"from_config: fitted attributes must hold one entry per dim in {pi.dims}")
            pi.range_ = [tuple(float(v) for v in r) for r in fitted["range_"]]
            pi.bandwidth_ = [float(b) for b in fitted["bandwidth_"]]
            pi.scale_ = [float(s) for s in fitted["scale_"]]
        return pi

    def extra_repr(self) -> str:
        fitted = (f", range_={self.range_}, bandwidth_={self.bandwidth_}" if hasattr(self, "range_") else "")
        return (f"resolution={self.resolution}, bandwidth={self.bandwidth!r}, weight={self.weight!r}, "
                f"im_range={self.im_range}, dims={self.dims}, convention={self.convention!r}, h0={self.h0!r}"
                f"{', normalize=True' if self.normalize else ''}{fitted}")
