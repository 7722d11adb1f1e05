"""Pictures of persistence diagrams, barcodes, persistence images and RipsNet fits.

matplotlib is an optional dependency (``pip install torchtopo[plot]``): it is imported when a
function here is called, never by ``import torchtopo``. Every function draws into the given
Axes (or a new figure), returns the Axes or Figure it drew, and never calls ``show()``. A figure
made here uses constrained layout, so a plain ``fig.savefig(path)`` keeps every label inside the
canvas; when you pass your own Axes, give its figure ``layout="constrained"`` for the same.

Artists carry a ``gid`` so that a figure can be inspected programmatically: ``"H1"`` for the
finite points (or bars) of dimension 1, ``"H1-infinite"`` for its infinite ones,
``"diagonal"``, ``"infinity"`` for the line on which infinite deaths are drawn, ``"curve"`` for
a 1-D H0 image.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import numpy as np
import torch
from torch import Tensor

from .diagrams import Diagrams

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["plot_diagram", "plot_barcode", "plot_persistence_image", "plot_ripsnet_fit"]

_CONVENTIONS = ("gudhi", "persim")


def _pyplot():
    try:
        import matplotlib.pyplot as plt
    except ImportError as err:
        raise ImportError("torchtopo.plot needs matplotlib; install it with: pip install torchtopo[plot]") from err
    return plt


# --------------------------------------------------------------------------- input helpers


def _select(diagrams: Diagrams, index: int, dims: int | Sequence[int] | None) -> list[tuple[int, np.ndarray]]:
    """``(d, pairs (k, 2) float64)`` of diagram ``index`` for every requested dimension."""
    if not isinstance(diagrams, Diagrams):
        raise TypeError(f"diagrams must be a torchtopo.Diagrams, got {type(diagrams).__name__}; "
                        "wrap (k, 2) tensors with Diagrams.from_list")
    dims = range(diagrams.max_dim + 1) if dims is None else (dims,) if isinstance(dims, int) else tuple(dims)
    if not dims or any(not 0 <= d <= diagrams.max_dim for d in dims):
        raise ValueError(f"dims must be homology dimensions in [0, {diagrams.max_dim}], got {dims!r}")
    if not -diagrams.batch_size <= index < diagrams.batch_size:
        raise ValueError(f"index must be in [0, {diagrams.batch_size}) for a batch of {diagrams.batch_size}, "
                         f"got {index}")
    return [(d, diagrams.to_list(d)[index].detach().cpu().double().numpy()) for d in dims]


def _levels(per_dim: list[tuple[int, np.ndarray]]) -> tuple[float, float, float]:
    """The range ``(lo, hi)`` of the finite values and the level drawn for infinite deaths."""
    values = np.concatenate([pairs[np.isfinite(pairs)] for _, pairs in per_dim])
    lo = min(0.0, float(values.min())) if values.size else 0.0
    hi = float(values.max()) if values.size else 1.0
    if hi <= lo:
        hi = lo + 1.0
    return lo, hi, hi + 0.1 * (hi - lo)


def _as_array(x: Tensor | np.ndarray, name: str) -> np.ndarray:
    if not isinstance(x, (Tensor, np.ndarray)):
        raise TypeError(f"{name} must be a tensor or an array, got {type(x).__name__}")
    return torch.as_tensor(x).detach().cpu().double().numpy()


def _range(im_range: Sequence[float], n: int, name: str) -> tuple[float, ...]:
    values = tuple(float(v) for v in im_range)
    if len(values) != n:
        raise ValueError(f"{name} must hold {n} numbers, got {im_range!r}")
    return values


def _pixel_edges(lo: float, hi: float, n: int, convention: str) -> tuple[float, float]:
    """Outer pixel edges of an axis: gudhi samples at ``linspace(lo, hi, n)`` (pixel centres),
    persim's range is already the outer edges."""
    if convention == "persim":
        return lo, hi
    half = (hi - lo) / (2 * (n - 1)) if n > 1 and hi > lo else 0.5
    return lo - half, hi + half


def _pixel_centres(lo: float, hi: float, n: int, convention: str) -> np.ndarray:
    if convention == "gudhi":
        return np.linspace(lo, hi, n)
    edges = np.linspace(lo, hi, n + 1)
    return (edges[1:] + edges[:-1]) / 2


def _infinity_tick(axis, hi: float, inf_level: float) -> None:
    """Keep the ticks up to the largest finite value and label ``inf_level`` as +inf."""
    lo_view, _ = sorted(axis.get_view_interval())
    ticks = [float(t) for t in axis.get_ticklocs() if lo_view <= t <= hi]
    axis.set_ticks(ticks + [inf_level], labels=[f"{t:g}" for t in ticks] + [r"$+\infty$"])


def _paired_images(true: np.ndarray, pred: np.ndarray, shape: Sequence[int] | None) -> tuple[np.ndarray, np.ndarray]:
    """Both as ``(B, H, W)`` images, or both as ``(B, P)`` curves; each may come flat or not."""
    for name, x in (("true_images", true), ("predicted_images", pred)):
        if x.ndim not in (2, 3) or x.shape[0] == 0 or 0 in x.shape:
            raise ValueError(f"{name} must be (B, n_persistence, n_birth) images or (B, P) rows with B > 0, "
                             f"got shape {x.shape}")
    if true.shape[0] != pred.shape[0]:
        raise ValueError(f"true_images and predicted_images must hold the same number of examples B, got "
                         f"{true.shape} and {pred.shape}")
    if shape is not None:
        shape = tuple(int(s) for s in shape)
        if len(shape) != 2:
            raise ValueError(f"shape must be (n_persistence, n_birth), got {shape}")
    images = {x.shape[1:] for x in (true, pred) if x.ndim == 3} | ({shape} if shape is not None else set())
    if len(images) > 1:
        raise ValueError(f"true_images {true.shape}, predicted_images {pred.shape} and shape={shape} name "
                         f"different image shapes {sorted(images)}")
    if not images:
        if true.shape != pred.shape:
            raise ValueError(f"true_images and predicted_images must have the same number of values per example, "
                             f"got {true.shape} and {pred.shape}")
        return true, pred
    (image,) = images
    pixels = image[0] * image[1]
    for name, x in (("true_images", true), ("predicted_images", pred)):
        if x.ndim == 2 and x.shape[1] != pixels:
            raise ValueError(f"{name} has {x.shape[1]} values per example but the images are {image[0]} x "
                             f"{image[1]} = {pixels} pixels (got shapes {true.shape} and {pred.shape})")
    return true.reshape(-1, *image), pred.reshape(-1, *image)


# --------------------------------------------------------------------------- diagrams


def plot_diagram(
    diagrams: Diagrams,
    index: int = 0,
    dims: int | Sequence[int] | None = None,
    ax: Axes | None = None,
    *,
    size: float = 12.0,
    legend: bool = True,
) -> Axes:
    r"""Draw one persistence diagram: a (birth, death) scatter per homology dimension.

    Convention:
        Values are Rips filtration values, i.e. edge lengths (diameter, not radius). The
        diagonal ``death = birth`` is drawn. Infinite deaths (present when the diagrams were
        computed with ``keep_infinite=True``) are drawn as triangles on a dashed line whose
        y tick reads :math:`+\infty`, 10% of the finite range above the largest finite value.

    Parameters
    ----------
    diagrams : Diagrams
        As returned by :func:`torchtopo.rips_persistence`, batched or not; padding is ignored.
    index : int
        Which diagram of a batch to draw (0 for unbatched diagrams).
    dims : int or sequence of int, optional
        Homology dimensions to draw; default all, ``0 .. diagrams.max_dim``. Dimension ``d`` is
        drawn in colour ``"C{d}"``.
    ax : matplotlib.axes.Axes, optional
        Where to draw; default a new 4 x 4 inch figure.
    size : float
        Marker area, in points squared.
    legend : bool
        Add a legend with one entry per dimension.

    Returns
    -------
    matplotlib.axes.Axes
        With one scatter collection per dimension (``gid`` ``"H{d}"``, offsets ``(k, 2)``), one
        more per dimension with infinite bars (``"H{d}-infinite"``), the diagonal line and, if
        any bar is infinite, the ``"infinity"`` line. Axes labelled "birth" and "death", equal
        limits on both axes.

    Raises
    ------
    TypeError
        If ``diagrams`` is not a :class:`~torchtopo.Diagrams`.
    ValueError
        If ``index`` or ``dims`` is out of range.
    ImportError
        If matplotlib is not installed.

    Examples
    --------
    >>> import io, math, matplotlib
    >>> matplotlib.use("Agg")
    >>> import torch
    >>> from torchtopo import rips_persistence
    >>> from torchtopo.plot import plot_diagram
    >>> angles = torch.arange(12) * (2 * math.pi / 12)
    >>> circle = torch.stack([angles.cos(), angles.sin()], dim=-1)  # (12, 2)
    >>> ax = plot_diagram(rips_persistence(circle, max_dim=1, keep_infinite=True))
    >>> [(c.get_gid(), len(c.get_offsets())) for c in ax.collections]
    [('H0', 11), ('H0-infinite', 1), ('H1', 1)]
    >>> ax.figure.savefig(io.BytesIO(), format="png")
    """
    plt = _pyplot()
    per_dim = _select(diagrams, index, dims)
    lo, hi, inf_level = _levels(per_dim)
    pad = 0.05 * (hi - lo)
    top = inf_level + pad
    if ax is None:
        _, ax = plt.subplots(figsize=(4, 4), layout="constrained")
    ax.plot([lo - pad, top], [lo - pad, top], color="black", lw=0.8, gid="diagonal")
    any_infinite = False
    for d, pairs in per_dim:
        finite = np.isfinite(pairs[:, 1])
        ax.scatter(pairs[finite, 0], pairs[finite, 1], s=size, color=f"C{d}", label=f"$H_{d}$", gid=f"H{d}",
                   zorder=3)
        if not finite.all():
            any_infinite = True
            births = pairs[~finite, 0]
            ax.scatter(births, np.full_like(births, inf_level), s=2 * size, marker="^", color=f"C{d}",
                       gid=f"H{d}-infinite", zorder=3)
    ax.set_xlim(lo - pad, top)
    ax.set_ylim(lo - pad, top)
    if any_infinite:
        ax.axhline(inf_level, ls="--", lw=0.8, color="gray", gid="infinity")
        _infinity_tick(ax.yaxis, hi, inf_level)
    ax.set_aspect("equal", adjustable="box")
    ax.set_xlabel("birth")
    ax.set_ylabel("death")
    if legend:
        ax.legend(loc="lower right")
    return ax


def plot_barcode(
    diagrams: Diagrams,
    index: int = 0,
    dims: int | Sequence[int] | None = None,
    ax: Axes | None = None,
    *,
    linewidth: float | None = None,
    legend: bool = True,
) -> Axes:
    r"""Draw one persistence diagram as a barcode: one horizontal bar ``[birth, death]`` per pair.

    Bars are grouped by homology dimension (the lowest at the top) and, within a dimension,
    sorted by birth then death.

    Convention:
        The horizontal axis is the Rips filtration value (edge length, diameter convention).
        Infinite bars run to a dashed vertical line whose x tick reads :math:`+\infty`, placed
        10% of the finite range beyond the largest finite value (as in :func:`plot_diagram`).

    Parameters
    ----------
    diagrams : Diagrams
        As returned by :func:`torchtopo.rips_persistence`, batched or not.
    index : int
        Which diagram of a batch to draw (0 for unbatched diagrams).
    dims : int or sequence of int, optional
        Homology dimensions to draw; default all. Dimension ``d`` is drawn in colour ``"C{d}"``.
    ax : matplotlib.axes.Axes, optional
        Where to draw; default a new figure.
    linewidth : float, optional
        Bar thickness in points; default 2, thinner when there are more than 60 bars.
    legend : bool
        Add a legend with one entry per dimension.

    Returns
    -------
    matplotlib.axes.Axes
        With one line collection per dimension (``gid`` ``"H{d}"``, one segment per finite bar)
        and one per dimension with infinite bars (``"H{d}-infinite"``). Bar ``i`` (counted from
        the top, over all dimensions) lies at height ``i``; the y axis is inverted and has no
        ticks; the x axis is labelled with the filtration value.

    Raises
    ------
    TypeError, ValueError, ImportError
        As :func:`plot_diagram`.

    Examples
    --------
    >>> import io, matplotlib
    >>> matplotlib.use("Agg")
    >>> import torch
    >>> from torchtopo import rips_persistence
    >>> from torchtopo.plot import plot_barcode
    >>> square = torch.tensor([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]])
    >>> ax = plot_barcode(rips_persistence(square, max_dim=1))
    >>> [(c.get_gid(), len(c.get_segments())) for c in ax.collections]
    [('H0', 3), ('H1', 1)]
    >>> ax.figure.savefig(io.BytesIO(), format="png")
    """
    plt = _pyplot()
    per_dim = _select(diagrams, index, dims)
    lo, hi, inf_level = _levels(per_dim)
    pad = 0.05 * (hi - lo)
    if ax is None:
        _, ax = plt.subplots(figsize=(5, 3), layout="constrained")
    if linewidth is None:
        linewidth = min(2.0, 120.0 / max(sum(len(pairs) for _, pairs in per_dim), 1))
    row = 0
    any_infinite = False
    for d, pairs in per_dim:
        pairs = pairs[np.lexsort((pairs[:, 1], pairs[:, 0]))]
        rows = np.arange(row, row + len(pairs), dtype=float)
        row += len(pairs)
        finite = np.isfinite(pairs[:, 1])
        ax.hlines(rows[finite], pairs[finite, 0], pairs[finite, 1], colors=f"C{d}", lw=linewidth,
                  label=f"$H_{d}$", gid=f"H{d}")
        if not finite.all():
            any_infinite = True
            ax.hlines(rows[~finite], pairs[~finite, 0], inf_level, colors=f"C{d}", lw=linewidth,
                      gid=f"H{d}-infinite")
    ax.set_xlim(lo - pad, (inf_level if any_infinite else hi) + pad)
    if any_infinite:
        ax.axvline(inf_level, ls="--", lw=0.8, color="gray", gid="infinity")
        _infinity_tick(ax.xaxis, hi, inf_level)
    ax.set_ylim(max(row, 1) - 0.5, -0.5)
    ax.set_yticks([])
    ax.set_xlabel("filtration value (edge length)")
    if legend:
        ax.legend(loc="upper right")  # bars sorted by birth, then death: the shortest are at the top
    return ax


# --------------------------------------------------------------------------- images


def plot_persistence_image(
    image: Tensor | np.ndarray,
    ax: Axes | None = None,
    *,
    index: int | None = None,
    im_range: Sequence[float] | None = None,
    convention: str = "gudhi",
    cmap: str = "viridis",
    colorbar: bool = True,
) -> Axes:
    """Draw a persistence image, or a 1-D H0 image as a curve.

    Convention:
        As :func:`torchtopo.vectorize.persistence_image`: rows are the persistence axis (row 0 =
        lowest persistence) and columns the birth axis, drawn with ``origin="lower"`` so that
        persistence grows upwards. With ``convention="gudhi"`` the range gives the *centres* of
        the first and last pixels (gudhi samples at ``linspace(lo, hi, n)``), so the drawn
        extent reaches half a pixel beyond it; with ``"persim"`` the range is the outer pixel
        edges. A 1-D image (:func:`torchtopo.vectorize.persistence_curve`, the H0 default) is
        drawn as a curve over persistence at the pixel centres.

    Parameters
    ----------
    image : Tensor or numpy.ndarray
        ``(n_persistence, n_birth)`` image or ``(n_persistence,)`` curve; with ``index``, a batch
        ``(B, n_persistence, n_birth)`` or ``(B, n_persistence)`` from which ``image[index]`` is
        drawn.
    ax : matplotlib.axes.Axes, optional
        Where to draw; default a new figure.
    index : int, optional
        Select one image of a batch.
    im_range : sequence of float, optional
        ``(birth_min, birth_max, persistence_min, persistence_max)`` as given to (or fitted by)
        the vectoriser, e.g. ``pi.range_[0]``; a curve also accepts ``(persistence_min,
        persistence_max)``. Default: pixel indices.
    convention : {"gudhi", "persim"}
        How ``im_range`` maps onto pixels (see Convention).
    cmap : str
        Colour map of a 2-D image.
    colorbar : bool
        Add a colour bar next to a 2-D image.

    Returns
    -------
    matplotlib.axes.Axes
        A 2-D image is ``ax.images[0]`` (``origin="lower"``, extent in data coordinates), axes
        labelled "birth" and "persistence". A curve is the line with ``gid`` ``"curve"``, axes
        labelled "persistence" and "intensity".

    Raises
    ------
    TypeError
        If ``image`` is not a tensor or an array.
    ValueError
        On a wrong shape, ``im_range`` length or ``convention``.
    ImportError
        If matplotlib is not installed.

    Examples
    --------
    >>> import io, matplotlib
    >>> matplotlib.use("Agg")
    >>> import torch
    >>> from torchtopo.vectorize import persistence_image
    >>> from torchtopo.plot import plot_persistence_image
    >>> dgm = torch.tensor([[0.0, 1.0], [0.5, 2.0]])
    >>> img = persistence_image(dgm, im_range=(0, 1, 0, 2), resolution=(5, 9), bandwidth=0.3)
    >>> ax = plot_persistence_image(img, im_range=(0, 1, 0, 2))
    >>> ax.images[0].get_extent()  # half a pixel beyond the range: gudhi samples pixel centres
    [-0.125, 1.125, -0.125, 2.125]
    >>> ax.figure.savefig(io.BytesIO(), format="png")
    """
    plt = _pyplot()
    if convention not in _CONVENTIONS:
        raise ValueError(f"convention must be one of {list(_CONVENTIONS)}, got {convention!r}")
    img = _as_array(image, "image")
    if index is not None:
        if img.ndim not in (2, 3) or not -img.shape[0] <= index < img.shape[0]:
            raise ValueError(f"index={index} needs a batch (B, P) or (B, H, W) with B > index, got {img.shape}")
        img = img[index]
    if img.ndim not in (1, 2) or 0 in img.shape:
        raise ValueError(f"image must be (n_persistence, n_birth) or a curve (n_persistence,) (pass index= for a "
                         f"batch), got shape {img.shape}")
    if ax is None:
        _, ax = plt.subplots(figsize=(4.5, 3.5), layout="constrained")
    if img.ndim == 1:
        n = img.shape[0]
        if im_range is None:
            x = np.arange(n, dtype=float)
        else:
            lo, hi = _range(im_range, 4, "im_range")[2:] if len(im_range) == 4 else _range(im_range, 2, "im_range")
            x = _pixel_centres(lo, hi, n, convention)
        ax.plot(x, img, color="C0", marker="." if n <= 30 else None, gid="curve")
        ax.set_xlabel("persistence")
        ax.set_ylabel("intensity")
        return ax
    extent = None
    if im_range is not None:
        bmin, bmax, pmin, pmax = _range(im_range, 4, "im_range")
        extent = (*_pixel_edges(bmin, bmax, img.shape[1], convention),
                  *_pixel_edges(pmin, pmax, img.shape[0], convention))
    art = ax.imshow(img, origin="lower", extent=extent, aspect="auto", cmap=cmap, interpolation="nearest")
    ax.set_xlabel("birth")
    ax.set_ylabel("persistence")
    if colorbar:
        ax.figure.colorbar(art, ax=ax)
    return ax


def plot_ripsnet_fit(
    true_images: Tensor | np.ndarray,
    predicted_images: Tensor | np.ndarray,
    *,
    shape: Sequence[int] | None = None,
    indices: Sequence[int] | None = None,
    im_range: Sequence[float] | None = None,
    convention: str = "gudhi",
    cmap: str = "viridis",
) -> Figure:
    """Compare target images with a RipsNet's predictions, side by side, one row per example.

    Column 0 shows the true image (computed from the diagram), column 1 the prediction, both
    on the same colour scale (or the same y limits for curves), so that a difference in colour
    is a difference in value. The prediction's title gives the mean squared error of that
    example.

    Parameters
    ----------
    true_images, predicted_images : Tensor or numpy.ndarray
        ``(B, n_persistence, n_birth)`` images or ``(B, P)`` flattened ones (a RipsNet's output is
        flat), in either layout each: a flat one is unflattened row-major to the other's image
        shape, so ``(B, 20, 20)`` targets go with ``(B, 400)`` predictions. Both flat: images
        with ``shape``, else ``(B, P)`` curves.
    shape : pair of int, optional
        ``(n_persistence, n_birth)`` to unflatten ``(B, P)`` rows into images; must agree with a
        3-D input.
    indices : sequence of int, optional
        Which examples to draw; default the first ``min(B, 4)``.
    im_range, convention, cmap
        As in :func:`plot_persistence_image`.

    Returns
    -------
    matplotlib.figure.Figure
        ``len(indices)`` rows by 2 columns of Axes (plus one colour bar per row for images),
        with titles ``"true #b"`` and ``"predicted #b (MSE ...)"``.

    Raises
    ------
    TypeError
        If an input is not a tensor or an array.
    ValueError
        If the batch sizes differ, the pixel counts differ (``P != n_persistence * n_birth``),
        ``shape`` disagrees with the inputs, or an index is out of range.
    ImportError
        If matplotlib is not installed.

    Examples
    --------
    >>> import io, matplotlib
    >>> matplotlib.use("Agg")
    >>> import torch
    >>> from torchtopo.plot import plot_ripsnet_fit
    >>> true = torch.rand(8, 25)                      # e.g. PersistenceImage(...)(dgm).flatten(1)
    >>> predicted = true + 0.05 * torch.randn(8, 25)  # e.g. ripsnet(clouds)
    >>> fig = plot_ripsnet_fit(true, predicted, shape=(5, 5), indices=[0, 3])
    >>> [ax.get_title() for ax in fig.axes if ax.images][:2]
    ['true #0', 'predicted #0 (MSE 0.00...)']
    >>> fig = plot_ripsnet_fit(true.view(8, 5, 5), predicted)  # (B, H, W) targets, (B, H*W) predictions
    >>> fig.axes[1].images[0].get_array().shape
    (5, 5)
    >>> fig.savefig(io.BytesIO(), format="png")
    """
    plt = _pyplot()
    true, pred = _as_array(true_images, "true_images"), _as_array(predicted_images, "predicted_images")
    true, pred = _paired_images(true, pred, shape)
    batch = true.shape[0]
    indices = list(range(min(batch, 4))) if indices is None else [int(i) for i in indices]
    if not indices or any(not 0 <= i < batch for i in indices):
        raise ValueError(f"indices must be a non-empty list of examples in [0, {batch}), got {indices!r}")
    images = true.ndim == 3
    fig, axes = plt.subplots(len(indices), 2, figsize=(7, 2.6 * len(indices)), squeeze=False, layout="constrained")
    common = dict(im_range=im_range, convention=convention, cmap=cmap, colorbar=False)
    for row, b in enumerate(indices):
        left = plot_persistence_image(true[b], axes[row, 0], **common)
        right = plot_persistence_image(pred[b], axes[row, 1], **common)
        left.set_title(f"true #{b}", fontsize="medium")
        right.set_title(f"predicted #{b} (MSE {np.mean((true[b] - pred[b]) ** 2):.3g})", fontsize="medium")
        lo, hi = min(true[b].min(), pred[b].min()), max(true[b].max(), pred[b].max())
        if images:
            for ax in (left, right):
                ax.images[0].set_clim(lo, hi)
            fig.colorbar(left.images[0], ax=[left, right])
        else:
            pad = 0.05 * (hi - lo) or 0.5
            for ax in (left, right):
                ax.set_ylim(lo - pad, hi + pad)
    return fig
