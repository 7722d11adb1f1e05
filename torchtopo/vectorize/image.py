"""Persistence images: batched, differentiable, with gudhi's and persim's conventions.

A persistence image (Adams et al., JMLR 2017) places a weighted Gaussian on every point of a
diagram in (birth, persistence) coordinates and samples (gudhi) or integrates (persim) the sum
on a grid. Here the two axis Gaussians factor, so a whole batch is one ``bmm`` of a
``(B, H, K)`` by a ``(B, K, W)`` tensor: no Python loop over diagrams or points.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import torch
from torch import Tensor, nn

from .._checks import check_choice, check_int, check_ints, check_positive, check_range
from ._base import DiagramsLike, Vectorizer, apply_weight, blocks, cat, half_as_float32, prepare
from .weights import Weight, WeightLike, get_weight

__all__ = ["persistence_image", "persistence_curve", "PersistenceImage"]

_CONVENTIONS = ("gudhi", "persim")


def _check_resolution(resolution: Any) -> tuple[int, int]:
    """``(n_birth, n_persistence)``, two positive ints."""
    return check_ints(resolution, "resolution", 2, minimum=1)  # type: ignore[return-value]


def _prepare(
    diagrams: Tensor, mask: Tensor | None, weight: WeightLike, infinite: str
) -> tuple[Tensor, tuple[Tensor, Tensor | None], Tensor, bool]:
    """Batch the input and return ``birth``, ``(persistence, its rounding error or None)`` and
    ``weights``, each ``(B, K)``, with zero weight on padding and dropped bars, and whether the
    input was batched."""
    birth, death, keep, batched = prepare(diagrams, mask, infinite)
    persistence = death - birth
    w = apply_weight(weight, birth, persistence, keep)
    # The rounding error of death - birth (Knuth's TwoSum; exactly representable, zero gradient):
    # below float64 it would otherwise dominate the image's error when bandwidth << the values.
    low = None
    if diagrams.dtype != torch.float64:
        minus_birth = persistence - death
        low = (death - (persistence - minus_birth)) - (birth + minus_birth)
    return birth, (persistence, low), w, batched


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


@half_as_float32
def persistence_image(
    diagrams: Tensor,
    *,
    mask: Tensor | None = None,
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
    res = _check_resolution(resolution)
    check_positive(bandwidth, "bandwidth")
    bmin, bmax, pmin, pmax = check_range(im_range, "im_range", 4)
    birth, (persistence, low), w, batched = _prepare(diagrams, mask, weight, infinite)
    if convention == "gudhi":
        w = w / (2 * math.pi * bandwidth**2)

    def block(i: slice) -> Tensor:
        gb = _axis_kernel(birth[i], None, bmin, bmax, res[0], bandwidth, convention)  # (b, K, W)
        gp = _axis_kernel(persistence[i], None if low is None else low[i], pmin, pmax, res[1], bandwidth, convention)
        return torch.bmm((gp * w[i].unsqueeze(-1)).transpose(1, 2), gb)  # (b, H, W)

    image = cat([block(i) for i in blocks(birth, max(res) + 1)])
    return image if batched else image.squeeze(0)


@half_as_float32
def persistence_curve(
    diagrams: Tensor,
    *,
    mask: Tensor | None = None,
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
    resolution = check_int(resolution, "resolution", 1)
    check_positive(bandwidth, "bandwidth")
    pmin, pmax = check_range(pers_range, "pers_range", 2)
    _, (persistence, low), w, batched = _prepare(diagrams, mask, weight, infinite)
    if convention == "gudhi":
        w = w / (math.sqrt(2 * math.pi) * bandwidth)

    def block(i: slice) -> Tensor:
        gp = _axis_kernel(persistence[i], None if low is None else low[i], pmin, pmax, resolution, bandwidth,
                          convention)
        return torch.bmm(w[i].unsqueeze(1), gp).squeeze(1)  # (b, H)

    curve = cat([block(i) for i in blocks(persistence, resolution + 1)])
    return curve if batched else curve.squeeze(0)


# --------------------------------------------------------------------------- module

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


class PersistenceImage(Vectorizer):
    r"""Persistence images of :class:`~torchtopo.Diagrams` (or padded / listed diagrams).

    Stores its arguments and calls :func:`persistence_image` (or :func:`persistence_curve` for
    H0, see ``h0``) once per homology dimension in ``dims``. Unset parts of ``im_range``,
    ``bandwidth="quantile"`` or ``"topkd"`` and ``normalize=True`` are learned by :meth:`fit` (sklearn style:
    ``range_``, ``bandwidth_``, ``scale_``, one entry per dimension in ``dims``), kept in
    ``state_dict()`` (so a module holding a fitted image saves and loads it fitted) and saved by
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
        super().__init__(dims, infinite)
        self.resolution = _check_resolution(resolution)
        if bandwidth not in _FITTED_BANDWIDTHS:
            check_positive(bandwidth, "bandwidth")
        if not 0 <= quantile <= 1:
            raise ValueError(f"quantile must be in [0, 1], got {quantile!r}")
        self.bandwidth, self.quantile = bandwidth, float(quantile)
        self.weight = get_weight(weight)
        self.im_range = check_range(im_range, "im_range", 4, allow_unset=True)
        check_choice(convention, "convention", _CONVENTIONS)
        check_choice(h0, "h0", ("curve", "image"))
        self.convention, self.h0, self.normalize = convention, h0, bool(normalize)

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

    # -- fitting ------------------------------------------------------------------------------

    _fitted = ("range_", "bandwidth_", "scale_")

    def _needs_fit(self) -> bool:
        return None in self.im_range or self.bandwidth in _FITTED_BANDWIDTHS or self.normalize

    def _fit_dim(self, dim: int, pairs: Tensor, mask: Tensor | None) -> dict[str, Any]:
        birth, death = self._finite_points(pairs, mask)
        points = torch.stack([birth, death - birth], -1)
        if points.shape[0] == 0 and (None in self.im_range or self.bandwidth in _FITTED_BANDWIDTHS):
            raise ValueError(f"fit: no finite diagram point in dimension {dim} to fit the range or bandwidth")
        im_range = self.im_range
        if points.shape[0]:
            lo, hi = points.min(0).values.tolist(), points.max(0).values.tolist()
            data = (lo[0], hi[0], lo[1], hi[1])
            im_range = tuple(d if v is None else v for v, d in zip(self.im_range, data))
        bandwidth = (_quantile_bandwidth(points, self.quantile, self.bandwidth)
                     if self.bandwidth in _FITTED_BANDWIDTHS else float(self.bandwidth))
        return {"range_": im_range, "bandwidth_": bandwidth, "scale_": 1.0}

    def fit(self, diagrams: DiagramsLike, *, mask: Tensor | None = None) -> "PersistenceImage":
        """Learn the unset range entries, a quantile bandwidth and the scale from ``diagrams``.

        Sets ``range_`` (per dimension, 4 floats), ``bandwidth_`` and ``scale_`` (per dimension)
        and returns ``self``. Infinite bars are ignored.
        """
        super().fit(diagrams, mask=mask)
        if self.normalize:
            with torch.no_grad():
                peaks = [float(img.max()) for img in self._images(self._per_dim(diagrams, mask))]
            if min(peaks) <= 0:
                raise ValueError("fit: normalize=True needs a non-zero image in every dimension")
            self.scale_ = [1.0 / p for p in peaks]
        return self

    def _restore(self, name: str, values: list) -> list:
        if name == "range_":
            return [tuple(float(v) for v in r) for r in values]
        return [float(v) for v in values]

    def _params(self, i: int) -> tuple[tuple[float, ...], float, float]:
        if self.is_fitted:
            return self.range_[i], self.bandwidth_[i], self.scale_[i]
        return self.im_range, float(self.bandwidth), 1.0

    # -- forward ------------------------------------------------------------------------------

    def _transform(self, i: int, pairs: Tensor, mask: Tensor | None) -> Tensor:
        im_range, bandwidth, scale = self._params(i)
        common = dict(bandwidth=bandwidth, weight=self.weight, convention=self.convention, infinite=self.infinite)
        if self._is_curve(self.dims[i]):
            img = persistence_curve(pairs, mask=mask, pers_range=im_range[2:], resolution=self.resolution[1], **common)
        else:
            img = persistence_image(pairs, mask=mask, im_range=im_range, resolution=self.resolution, **common)
        return img if scale == 1.0 else img * scale

    def _images(self, per_dim: list[tuple[Tensor, Tensor | None]]) -> list[Tensor]:
        return [self._transform(i, pairs, m) for i, (pairs, m) in enumerate(per_dim)]

    # -- persistence of the parameters --------------------------------------------------------

    def _arguments(self) -> dict[str, Any]:
        if not isinstance(self.weight, Weight):
            raise TypeError("to_config: a plain-callable weight cannot be saved; use a torchtopo Weight subclass")
        return dict(resolution=list(self.resolution), bandwidth=self.bandwidth, weight=self.weight.to_config(),
                    im_range=list(self.im_range), dims=list(self.dims), convention=self.convention, h0=self.h0,
                    quantile=self.quantile, normalize=self.normalize, infinite=self.infinite)

    def extra_repr(self) -> str:
        fitted = f", range_={self.range_}, bandwidth_={self.bandwidth_}" if self.is_fitted else ""
        return (f"resolution={self.resolution}, bandwidth={self.bandwidth!r}, weight={self.weight!r}, "
                f"im_range={self.im_range}, dims={self.dims}, convention={self.convention!r}, h0={self.h0!r}"
                f"{', normalize=True' if self.normalize else ''}{fitted}")
