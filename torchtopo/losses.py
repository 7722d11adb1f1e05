"""Topology losses: between a student's and a teacher's feature clouds (knowledge
distillation), and summary statistics of diagrams.

Four ways to compare the topology of two clouds of the same samples:

- ``"ripsnet"`` (TopKD, Kim et al., ICML 2024): a frozen :class:`~torchtopo.RipsNet` maps each
  cloud to its approximate persistence image; MSE between the two images. No persistent
  homology at training time.
- ``"exact"``: the Rips diagrams (:func:`~torchtopo.rips_persistence`) vectorised by a
  :class:`~torchtopo.PersistenceImage`; differentiable through the student's points.
- ``"signature"``: the topological signature loss of Moor, Horn, Rieck, Borgwardt,
  "Topological Autoencoders", ICML 2020: the distances of each cloud at the edges that create
  and destroy the other cloud's classes must agree. Needs no image and no fitted vectoriser.
- ``"wasserstein"``: the Wasserstein distance between the two clouds' Rips diagrams
  (:func:`~torchtopo.wasserstein_distance`), differentiable through the student's points.

and one way to compare feature *maps* ``(n, C, H, W)`` of the same samples:

- ``"cubical"``: each sample's map, averaged over its channels and standardised
  (:func:`mean_feature_map`), is filtered by decreasing activation
  (:func:`~torchtopo.cubical_persistence` with ``superlevel=True``) and its diagrams are
  vectorised by a :class:`~torchtopo.PersistenceImage`; MSE between the student's and the
  teacher's images, differentiable through the student's pixels.

:func:`summary_statistic_loss` compares (or penalises) a statistic of the diagrams themselves,
their total persistence, as pytorch-topological's ``SummaryStatisticLoss`` does.
"""

from __future__ import annotations

import copy
from typing import Sequence

import torch
from torch import Tensor, nn
from torch.func import functional_call

from ._checks import check_choice, check_finite, check_floating, check_int, check_mask, check_positive, check_shape
from .cubical import cubical_persistence
from .diagrams import Diagrams
from .distances import _one_side, wasserstein_distance
from .rips import rips_persistence
from .rips.distances import edge_lengths
from .ripsnet import RipsNet
from .vectorize import PersistenceImage

__all__ = ["topology_loss", "signature_loss", "mean_feature_map", "summary_statistic_loss", "TopologyLoss",
           "SummaryStatisticLoss"]

_MODES = ("ripsnet", "exact", "signature", "wasserstein", "cubical")
_STATISTICS = ("total_persistence", "p_norm")
_REDUCTIONS = ("mean", "sum", "none")


def _check_features(x: Tensor, name: str) -> None:
    check_floating(x, name)
    check_shape(x, name, "(n, D) with n >= 1", x.dim() == 2 and x.shape[0] >= 1 and x.shape[1] >= 1)
    check_finite(x, name)


def _working_dtype(dtype: torch.dtype) -> torch.dtype:
    """float16 and bfloat16 features are compared in float32 (distances and persistence in half
    precision lose the small bars); wider dtypes are kept."""
    return torch.promote_types(dtype, torch.float32)


def _clouds(x: Tensor, cloud_size: int | None) -> tuple[Tensor, Tensor | None]:
    """``(n, D)`` -> ``(B, m, D)`` consecutive clouds of ``m`` samples; a shorter last cloud is
    padded and masked (``mask`` is None when ``m`` divides ``n``)."""
    n, m = x.shape[0], cloud_size or x.shape[0]
    count = -(-n // m)
    if count * m == n:
        return x.reshape(count, m, x.shape[1]), None
    padded = torch.cat([x, x.new_zeros(count * m - n, x.shape[1])])
    mask = (torch.arange(count * m, device=x.device) < n).reshape(count, m)
    return padded.reshape(count, m, x.shape[1]), mask


def mean_feature_map(features: Tensor) -> Tensor:
    r"""The map that ``mode="cubical"`` filters: the channel mean of each feature map, standardised.

    Each sample's channels are averaged, then the map is shifted and scaled to zero mean and unit
    standard deviation over its pixels (a constant map becomes 0), so that a student's and a
    teacher's maps are comparable whatever the scale of their activations. Differentiable.

    Parameters
    ----------
    features : Tensor
        ``(n, C, H, W)`` floating feature maps.

    Returns
    -------
    Tensor
        ``(n, H, W)`` in the dtype of ``features``.

    Examples
    --------
    >>> import torch
    >>> maps = mean_feature_map(torch.rand(2, 8, 5, 5))
    >>> maps.shape, [round(v, 4) for v in maps.mean((1, 2)).abs().tolist()]
    (torch.Size([2, 5, 5]), [0.0, 0.0])
    """
    check_floating(features, "features")
    check_shape(features, "features", "(n, C, H, W)", features.dim() == 4 and features.numel() > 0)
    maps = features.mean(1)
    centred = maps - maps.mean((1, 2), keepdim=True)
    variance = centred.square().mean((1, 2), keepdim=True)
    # The where keeps the square root away from 0, where its gradient is infinite.
    return centred / torch.where(variance > 0, variance, 1.0).sqrt()


def _cubical_loss(student: Tensor, teacher: Tensor, vectorizer: PersistenceImage | None,
                  projection: nn.Module | None) -> Tensor:
    """Per sample ``(n,)``: MSE between the persistence images of the superlevel cubical diagrams of
    the student's and the teacher's mean feature maps (see :func:`topology_loss`)."""
    for name, x in (("student", student), ("teacher", teacher)):
        check_floating(x, name)
        check_shape(x, name, "(n, C, H, W) with n, C, H, W >= 1", x.dim() == 4 and x.numel() > 0)
        check_finite(x, name)
    if student.shape[0] != teacher.shape[0] or student.shape[2:] != teacher.shape[2:]:
        raise ValueError(f"student and teacher must hold maps of the same n samples and (H, W), got "
                         f"{tuple(student.shape)} and {tuple(teacher.shape)}; resize one (F.interpolate)")
    if vectorizer is None:
        raise ValueError("mode='cubical' needs vectorizer= (a PersistenceImage, fitted if it learns its range)")
    student, teacher = student.to(_working_dtype(student.dtype)), teacher.detach().to(_working_dtype(teacher.dtype))
    if projection is not None:
        student = projection(student)
    max_dim = max(vectorizer.dims)
    if max_dim > 1:
        raise ValueError(f"mode='cubical' compares dimensions 0 and 1 of 2-D maps, got vectorizer dims "
                         f"{tuple(vectorizer.dims)}")
    with torch.no_grad():
        target = vectorizer(cubical_persistence(mean_feature_map(teacher), max_dim, superlevel=True)).flatten(1)
    images = vectorizer(cubical_persistence(mean_feature_map(student), max_dim, superlevel=True)).flatten(1)
    return (images - target).square().mean(-1)


def _reduce(per_cloud: Tensor, reduction: str) -> Tensor:
    return {"mean": per_cloud.mean, "sum": per_cloud.sum, "none": lambda: per_cloud}[reduction]()


def _frozen_call(module: nn.Module, clouds: Tensor, *, mask: Tensor | None) -> Tensor:
    """``module(clouds, mask=mask)`` with its parameters and buffers detached: gradients reach
    the clouds, never the module, whatever its ``requires_grad`` flags."""
    state = {k: v.detach() for k, v in (*module.named_parameters(), *module.named_buffers())}
    return functional_call(module, state, (clouds,), {"mask": mask})


def signature_loss(
    student: Tensor, teacher: Tensor, *, mask: Tensor | None = None, dims: Sequence[int] = (0,)
) -> Tensor:
    r"""Topological signature loss of Moor et al. (ICML 2020) per cloud, scale-free.

    .. math::

        L = \tfrac12 \operatorname{mean}_{e \in \pi_T} (A_T[e] - A_S[e])^2
          + \tfrac12 \operatorname{mean}_{e \in \pi_S} (A_T[e] - A_S[e])^2

    where :math:`A` is a cloud's distance matrix divided by its mean pairwise distance and
    :math:`\pi` the edges of its persistence pairing: the death edges (the spanning tree) in
    dimension 0 and the birth and death edges in dimension 1. Moor et al. sum over the pairs; the
    mean and the normalisation make the loss independent of the clouds' sizes and scales
    (teacher and student features rarely share a scale).

    Parameters
    ----------
    student, teacher : Tensor
        ``(B, m, D_s)`` and ``(B, m, D_t)``: the same ``m`` samples in both spaces. float16 and
        bfloat16 are compared in float32; the loss comes back in the student's dtype.
    mask : Tensor, optional
        ``(B, m)`` bool, True for real samples (both clouds share it); padding may hold anything.
    dims : sequence of int
        Homology dimensions whose pairings enter (Moor et al.: ``(0,)``).

    Returns
    -------
    Tensor
        ``(B,)``; differentiable with respect to both inputs.

    Raises
    ------
    TypeError, ValueError
        On non-floating inputs, a non-bool mask, wrong ranks, different ``(B, m)``, NaN or inf
        among the real samples, or empty ``dims``.

    Examples
    --------
    >>> import torch
    >>> line = torch.tensor([[[0.0], [1.0], [3.0]]])
    >>> signature_loss(line, 10 * line)  # the same shape at another scale
    tensor([0.])
    >>> signature_loss(line, torch.tensor([[[0.0], [2.0], [3.0]]]))
    tensor([0.2500])
    """
    for name, x in (("student", student), ("teacher", teacher)):
        check_floating(x, name)
        check_shape(x, name, "(B, m, D)", x.dim() == 3)
    if student.shape[:2] != teacher.shape[:2]:
        raise ValueError(f"student and teacher must hold the same (B, m) clouds, got {tuple(student.shape[:2])} "
                         f"and {tuple(teacher.shape[:2])}")
    check_mask(mask, student.shape[:2], masks=("student", student))
    for name, x in (("student", student), ("teacher", teacher)):
        check_finite(x, name, mask)
    if not dims or min(dims) < 0 or max(dims) > 1:
        raise ValueError(f"dims must be a non-empty subset of (0, 1), got {tuple(dims)!r}")
    max_dim = max(dims)
    out_dtype = student.dtype
    student, teacher = (x.to(_working_dtype(x.dtype)) for x in (student, teacher))
    if mask is not None:  # padding never enters, not even as a NaN times a zero gradient
        student, teacher = (torch.where(mask.unsqueeze(-1), x, 0.0) for x in (student, teacher))

    def mean_distance(points: Tensor) -> Tensor:
        """``(B, 1)``; a cloud of one point (or of copies of one) has no scale: 1 then."""
        distances = torch.cdist(points, points, compute_mode="donot_use_mm_for_euclid_dist")
        if mask is None:
            count = torch.tensor(points.shape[1] * (points.shape[1] - 1), dtype=points.dtype)
        else:
            distances = torch.where(mask.unsqueeze(2) & mask.unsqueeze(1), distances, 0.0)
            count = (mask.sum(1) * (mask.sum(1) - 1)).to(points.dtype)
        mean = distances.sum((1, 2)) / count.clamp_min(1)
        return torch.where(mean > 0, mean, 1.0).unsqueeze(1)

    def pairing_edges(points: Tensor) -> tuple[Tensor, Tensor]:
        dgm = rips_persistence(points.detach(), max_dim, mask=mask)
        edges, valid = [], []
        for d in dims:
            kinds = (dgm.death_edges[d],) if d == 0 else (dgm.birth_edges[d], dgm.death_edges[d])
            for e in kinds:
                edges.append(e)
                valid.append(dgm.mask[d] & (e[..., 0] >= 0))
        return torch.cat(edges, 1), torch.cat(valid, 1)

    scale_s, scale_t = mean_distance(student), mean_distance(teacher)
    total = student.new_zeros(student.shape[0])
    for edges, valid in (pairing_edges(teacher), pairing_edges(student)):
        gap = (edge_lengths(teacher, edges) / scale_t - edge_lengths(student, edges) / scale_s).square()
        total = total + 0.5 * torch.where(valid, gap, 0.0).sum(1) / valid.sum(1).clamp_min(1)
    return total.to(out_dtype)


def topology_loss(
    student: Tensor,
    teacher: Tensor,
    mode: str = "ripsnet",
    *,
    ripsnet: nn.Module | None = None,
    vectorizer: PersistenceImage | None = None,
    cloud_size: int | None = None,
    projection: nn.Module | None = None,
    reduction: str = "mean",
    dims: Sequence[int] = (0,),
    order: float = 1.0,
) -> Tensor:
    r"""Topological distillation loss between student and teacher features of the same samples.

    The ``n`` samples are grouped into consecutive point clouds of ``cloud_size`` samples (the
    whole batch by default, as in TopKD); each cloud of the student is compared with the
    teacher's cloud of the same samples.

    Convention:
        Distances are Euclidean (Rips filtration value of an edge = its length, not a radius).
        The teacher side is detached: it never receives gradients. The RipsNet is called with
        detached parameters (frozen), whatever their ``requires_grad``. ``projection`` (e.g.
        TopKD's 1x1 convolution, an ``nn.Linear(D_s, D_t)``) is applied to the student first.
        A shorter last cloud (when ``cloud_size`` does not divide ``n``) is masked, never padded
        with fake samples.

    Feature maps ``(n, C, H, W)`` (``mode="cubical"``) are compared sample by sample instead:
    each map's channel mean, standardised (:func:`mean_feature_map`), is filtered by decreasing
    activation (superlevel; a blob of high activation is a component, a ring of high activation
    around a low one a loop), and the persistence images ``vectorizer(cubical_persistence(...))``
    of the student's and the teacher's maps are compared by MSE. Widths are handled as for
    pooled features: ``projection`` (e.g. ``nn.Conv2d(C_s, C_t, 1)``, TopKD's 1x1
    convolution) is applied to the student first; channel counts may also simply differ, since
    only the channel means are compared. The maps must share ``(H, W)``.

    Parameters
    ----------
    student : Tensor
        ``(n, D_s)`` student features, or ``(n, C_s, H, W)`` feature maps for
        ``mode="cubical"``. float16 and bfloat16 features are compared in float32 (or in the
        RipsNet's dtype); the loss comes back in the student's dtype.
    teacher : Tensor
        ``(n, D_t)`` teacher features, or ``(n, C_t, H, W)`` feature maps.
    mode : {"ripsnet", "exact", "signature", "wasserstein", "cubical"}
        ``"ripsnet"``: MSE between ``ripsnet(proj(student cloud))`` and ``ripsnet(teacher
        cloud)`` (TopKD); needs ``ripsnet`` with ``in_dim == D_t``. ``"exact"``: MSE between
        the persistence images ``vectorizer(rips_persistence(cloud))`` (needs a fitted
        ``vectorizer``; computes persistent homology at every call). ``"signature"``:
        :func:`signature_loss` over ``dims``. ``"wasserstein"``: the sum over ``dims`` of the
        Wasserstein distances of order ``order`` (gudhi's defaults otherwise: L-infinity ground
        metric, exact matching) between the student's and the teacher's Rips diagrams of each
        cloud, without rescaling (a projection can match the teacher's scale). ``"cubical"``:
        feature maps, as above (needs ``vectorizer``, dimensions 0 and 1 only; one loss per
        sample, no ``cloud_size``).
    ripsnet : nn.Module, optional
        Called as ``ripsnet(clouds, mask=mask)``: maps ``(B, m, D_t)`` clouds (with a ``(B, m)``
        bool mask or None) to ``(B, P)`` vectors, e.g. a :class:`~torchtopo.RipsNet`.
    vectorizer : ~torchtopo.PersistenceImage, optional
        For ``mode="exact"`` and ``mode="cubical"``. For feature maps its range is that of the
        superlevel diagrams of standardised maps: births are minus the activation at which a
        class appears, about ``[-4, 4]``, persistences about ``[0, 8]`` (or fit it on
        ``cubical_persistence(mean_feature_map(teacher_maps), 1, superlevel=True)``).
    cloud_size : int, optional
        Samples per cloud ``m``. Default: ``n``. Not for ``mode="cubical"``.
    projection : nn.Module, optional
        Applied to ``student`` before anything else.
    reduction : {"mean", "sum", "none"}
        Over the clouds; ``"none"`` returns one loss per cloud.
    dims : sequence of int
        Homology dimensions of ``mode="signature"`` and ``mode="wasserstein"``. Default ``(0,)``.
    order : float
        Order of the Wasserstein distance of ``mode="wasserstein"``. Default 1.

    Returns
    -------
    Tensor
        A scalar, or ``(B,)`` with ``reduction="none"`` (``(n,)`` for ``mode="cubical"``).

    Raises
    ------
    TypeError
        If a feature tensor is not floating, or ``cloud_size`` is not an int.
    ValueError
        On a wrong rank, different ``n``, NaN or inf, a width the RipsNet does not take, a
        missing ``ripsnet`` / ``vectorizer``, or a bad ``mode`` / ``reduction`` / ``cloud_size``.

    Examples
    --------
    >>> import torch
    >>> from torchtopo import RipsNet
    >>> teacher, student = torch.randn(64, 16), torch.randn(64, 16, requires_grad=True)
    >>> loss = topology_loss(student, teacher, "ripsnet", ripsnet=RipsNet.for_features(16, 400))
    >>> loss.backward(); student.grad.shape
    torch.Size([64, 16])
    >>> topology_loss(student, teacher, "signature", cloud_size=16, reduction="none").shape
    torch.Size([4])
    >>> topology_loss(student, teacher, "wasserstein", cloud_size=16, dims=(0, 1)).shape
    torch.Size([])

    Feature maps of 16 and 32 channels, compared through H0 and H1 images:

    >>> from torchtopo import PersistenceImage
    >>> pi = PersistenceImage(resolution=(10, 10), bandwidth=0.5, dims=(0, 1), im_range=(-4, 4, 0, 8))
    >>> maps_s, maps_t = torch.randn(8, 16, 12, 12, requires_grad=True), torch.randn(8, 32, 12, 12)
    >>> topology_loss(maps_s, maps_t, "cubical", vectorizer=pi, reduction="none").shape
    torch.Size([8])
    """
    check_choice(mode, "mode", _MODES)
    check_choice(reduction, "reduction", _REDUCTIONS)
    if mode == "cubical":
        if cloud_size is not None:
            raise ValueError("cloud_size does not apply to mode='cubical': feature maps are compared per sample")
        per_sample = _cubical_loss(student, teacher, vectorizer, projection)
        return _reduce(per_sample, reduction).to(student.dtype)
    _check_features(student, "student")
    _check_features(teacher, "teacher")
    if student.shape[0] != teacher.shape[0]:
        raise ValueError(f"student and teacher must hold the same n samples, got {student.shape[0]} and {teacher.shape[0]}")
    if cloud_size is not None:
        check_int(cloud_size, "cloud_size", 1)
    out_dtype = student.dtype
    student, teacher = student.to(_working_dtype(student.dtype)), teacher.detach().to(_working_dtype(teacher.dtype))
    if projection is not None:
        student = projection(student)
    s, mask = _clouds(student, cloud_size)
    t, _ = _clouds(teacher, cloud_size)

    if mode == "ripsnet":
        if ripsnet is None:
            raise ValueError("mode='ripsnet' needs ripsnet=")
        in_dim = getattr(ripsnet, "in_dim", t.shape[-1])
        if t.shape[-1] != in_dim or s.shape[-1] != in_dim:
            raise ValueError(f"the RipsNet takes {in_dim}-dimensional features, got student {s.shape[-1]} (after "
                             f"projection) and teacher {t.shape[-1]}; give a projection to the teacher's width")
        weight = next(ripsnet.parameters(), None)
        if weight is not None:  # the network's own precision (e.g. after .double() or .half())
            s, t = s.to(weight.dtype), t.to(weight.dtype)
        with torch.no_grad():
            target = _frozen_call(ripsnet, t, mask=mask)
        per_cloud = (_frozen_call(ripsnet, s, mask=mask) - target).square().mean(-1)
    elif mode == "exact":
        if vectorizer is None:
            raise ValueError("mode='exact' needs vectorizer= (a PersistenceImage, fitted if it learns its range)")
        max_dim = max(vectorizer.dims)
        with torch.no_grad():
            target = vectorizer(rips_persistence(t, max_dim, mask=mask)).flatten(1)
        per_cloud = (vectorizer(rips_persistence(s, max_dim, mask=mask)).flatten(1) - target).square().mean(-1)
    elif mode == "wasserstein":
        if isinstance(dims, (str, bytes)) or not isinstance(dims, Sequence) or not dims:
            raise ValueError(f"dims must be a non-empty sequence of homology dimensions, got {dims!r}")
        with torch.no_grad():
            target = rips_persistence(t, max(dims), mask=mask)
        diagrams = rips_persistence(s, max(dims), mask=mask)
        per_cloud = sum(wasserstein_distance(diagrams, target, dim=d, order=order) for d in dims)
    else:
        per_cloud = signature_loss(s, t, mask=mask, dims=dims)
    return _reduce(per_cloud, reduction).to(out_dtype)


class TopologyLoss(nn.Module):
    r"""Module form of :func:`topology_loss`, owning the projection and a frozen RipsNet.

    The RipsNet is a frozen copy (the caller's model is not modified): a submodule whose
    parameters have ``requires_grad=False``, kept in eval mode by :meth:`train`, moved by
    ``.to()`` and saved in ``state_dict`` with the module. Give the student's optimiser the
    trainable parameters, ``[p for p in loss.parameters() if p.requires_grad]`` (the projection);
    optimisers skip the frozen ones anyway, since they never get a gradient.

    Parameters
    ----------
    mode, cloud_size, reduction, vectorizer, dims, order
        See :func:`topology_loss`.
    ripsnet : RipsNet, optional
        Required for ``mode="ripsnet"``; copied and frozen.
    projection : nn.Module, optional
        Applied to the student features. By default, when ``student_dim != teacher_dim``, an
        ``nn.Linear(student_dim, teacher_dim)`` (TopKD's 1x1 convolution), or for
        ``mode="cubical"`` an ``nn.Conv2d(student_dim, teacher_dim, 1)``.
    student_dim, teacher_dim : int, optional
        Feature widths (channels of feature maps): they create the default projection, and
        features of other widths are refused with a ``ValueError`` naming ``student`` or
        ``teacher``.

    Shape:
        ``student (n, D_s)``, ``teacher (n, D_t)`` -> scalar (``(B,)`` with ``reduction="none"``);
        for ``mode="cubical"``, ``student (n, C_s, H, W)``, ``teacher (n, C_t, H, W)`` -> scalar
        (``(n,)`` with ``reduction="none"``).

    Examples
    --------
    >>> import torch
    >>> from torchtopo import RipsNet
    >>> loss = TopologyLoss("ripsnet", RipsNet.for_features(64, 400), student_dim=32, teacher_dim=64)
    >>> [tuple(p.shape) for p in loss.parameters() if p.requires_grad]
    [(64, 32), (64,)]
    >>> loss(torch.randn(128, 32), torch.randn(128, 64)).shape
    torch.Size([])
    """

    def __init__(
        self,
        mode: str = "ripsnet",
        ripsnet: RipsNet | None = None,
        cloud_size: int | None = None,
        projection: nn.Module | None = None,
        reduction: str = "mean",
        *,
        vectorizer: PersistenceImage | None = None,
        student_dim: int | None = None,
        teacher_dim: int | None = None,
        dims: Sequence[int] = (0,),
        order: float = 1.0,
    ) -> None:
        super().__init__()
        check_choice(mode, "mode", _MODES)
        check_choice(reduction, "reduction", _REDUCTIONS)
        if mode == "ripsnet" and ripsnet is None:
            raise ValueError("mode='ripsnet' needs ripsnet=")
        if mode in ("exact", "cubical") and vectorizer is None:
            raise ValueError(f"mode={mode!r} needs vectorizer=")
        if cloud_size is not None:
            check_int(cloud_size, "cloud_size", 1)
        self.student_dim = None if student_dim is None else check_int(student_dim, "student_dim", 1)
        self.teacher_dim = None if teacher_dim is None else check_int(teacher_dim, "teacher_dim", 1)
        self.mode, self.cloud_size, self.reduction, self.dims = mode, cloud_size, reduction, tuple(dims)
        self.order = float(order)
        self.vectorizer = vectorizer
        if projection is None and student_dim is not None and teacher_dim is not None and student_dim != teacher_dim:
            projection = (nn.Conv2d(student_dim, teacher_dim, 1) if mode == "cubical"
                          else nn.Linear(student_dim, teacher_dim))
        self.projection = projection
        self.ripsnet = None if ripsnet is None else copy.deepcopy(ripsnet).requires_grad_(False).eval()

    def train(self, mode: bool = True) -> "TopologyLoss":
        """Set the projection's training mode; the frozen RipsNet stays in eval mode."""
        super().train(mode)
        if self.ripsnet is not None:
            self.ripsnet.eval()
        return self

    def forward(self, student: Tensor, teacher: Tensor) -> Tensor:
        axis = 1 if self.mode == "cubical" else -1  # the channels of feature maps
        for name, x, width in (("student", student, self.student_dim), ("teacher", teacher, self.teacher_dim)):
            if width is not None and isinstance(x, Tensor) and x.dim() > max(axis, 0) and x.shape[axis] != width:
                raise ValueError(f"{name} features must be {width} wide (the {name}_dim this loss was built "
                                 f"with), got shape {tuple(x.shape)}")
        return topology_loss(student, teacher, self.mode, ripsnet=self.ripsnet, vectorizer=self.vectorizer,
                             cloud_size=self.cloud_size, projection=self.projection, reduction=self.reduction,
                             dims=self.dims, order=self.order)

    def extra_repr(self) -> str:
        dims = f", dims={self.dims}" if self.mode in ("signature", "wasserstein") else ""
        order = f", order={self.order}" if self.mode == "wasserstein" else ""
        return f"mode={self.mode!r}, cloud_size={self.cloud_size}, reduction={self.reduction!r}{dims}{order}"


def summary_statistic_loss(
    diagrams: Diagrams,
    target: Diagrams | None = None,
    *,
    statistic: str = "total_persistence",
    p: float = 2.0,
    dims: Sequence[int] = (0,),
    reduction: str = "mean",
) -> Tensor:
    r"""A summary statistic of diagrams, or how far it is from a target's, per homology dimension.

    .. math::

        S_d(D) = \sum_{(b, e) \in D_d} |e - b|^p

    over the finite pairs of dimension :math:`d` is the total persistence
    (``statistic="total_persistence"``); its :math:`p`-th root :math:`S_d(D)^{1/p}` the
    ``"p_norm"``.
    Without ``target`` the loss of a diagram is
    :math:`\sum_{d \in \text{dims}} S_d(D)` (a regulariser: minimising it removes topological
    noise, maximising it opens loops); with one it is :math:`\sum_d |S_d(D) - S_d(T)|`.

    Convention:
        pytorch-topological's ``SummaryStatisticLoss(summary_statistic, p=...)`` with
        ``"total_persistence"`` (its default statistic) or ``"p_norm"``, except that a target
        is compared dimension by dimension (pytorch-topological compares the sums over all
        dimensions), and batched: one value per diagram, then ``reduction``. Infinite bars and
        padding are left out. Both inputs stay differentiable: detach a teacher yourself.

    Parameters
    ----------
    diagrams : Diagrams
        Batched or not.
    target : Diagrams, optional
        Of the same batch size.
    statistic : {"total_persistence", "p_norm"}
        Default ``"total_persistence"``.
    p : float
        Positive exponent. Default 2, as pytorch-topological.
    dims : sequence of int
        Homology dimensions. Default ``(0,)``.
    reduction : {"mean", "sum", "none"}
        Over the batch; ``"none"`` returns ``(B,)``. An unbatched diagram gives a scalar.

    Returns
    -------
    Tensor
        A scalar, or ``(B,)``; the diagrams' dtype (float16 and bfloat16 computed in float32).

    Raises
    ------
    TypeError, ValueError
        On non-Diagrams input, different batch sizes, a bad ``statistic``, ``p``, ``dims`` or
        ``reduction``.

    Examples
    --------
    >>> import torch
    >>> from torchtopo import Diagrams
    >>> dgm = Diagrams.from_list([[torch.tensor([[0.0, 1.0], [0.0, 2.0], [0.0, float("inf")]])]])
    >>> summary_statistic_loss(dgm)  # 1^2 + 2^2, the infinite bar left out
    tensor(5.)
    >>> summary_statistic_loss(dgm, statistic="p_norm", p=1.0)
    tensor(3.)
    """
    check_choice(statistic, "statistic", _STATISTICS)
    check_choice(reduction, "reduction", _REDUCTIONS)
    p = check_positive(p, "p")
    if not isinstance(diagrams, Diagrams) or target is not None and not isinstance(target, Diagrams):
        raise TypeError(f"diagrams and target must be Diagrams, got {type(diagrams).__name__} and "
                        f"{type(target).__name__}")
    if isinstance(dims, (str, bytes)) or not isinstance(dims, Sequence) or not dims:
        raise ValueError(f"dims must be a non-empty sequence of homology dimensions, got {dims!r}")
    if target is not None and (target.is_batched != diagrams.is_batched or target.batch_size != diagrams.batch_size):
        raise ValueError(f"diagrams and target must hold the same number of diagrams, got {diagrams.batch_size} "
                         f"and {target.batch_size}")

    def statistics(dgm: Diagrams, name: str, dim: int) -> Tensor:
        pairs, mask, _ = _one_side(dgm, dim, name)
        pairs = pairs.to(_working_dtype(pairs.dtype))
        persistence = (pairs[..., 1] - pairs[..., 0]).abs()
        keep = mask & torch.isfinite(persistence)
        total = torch.where(keep, torch.where(keep, persistence, 0.0).pow(p), 0.0).sum(1)
        if statistic == "total_persistence":
            return total
        positive = total > 0  # the root at 0 would have an infinite gradient
        return torch.where(positive, torch.where(positive, total, 1.0).pow(1 / p), 0.0)

    per_diagram = sum(
        statistics(diagrams, "diagrams", d) if target is None
        else (statistics(diagrams, "diagrams", d) - statistics(target, "target", d)).abs()
        for d in dims)
    if not diagrams.is_batched:
        per_diagram = per_diagram[0]
    return _reduce(per_diagram, reduction).to(diagrams.dtype)


class SummaryStatisticLoss(nn.Module):
    r"""Module form of :func:`summary_statistic_loss` (pytorch-topological's
    ``SummaryStatisticLoss``, per homology dimension and batched).

    Parameters
    ----------
    statistic, p, dims, reduction
        See :func:`summary_statistic_loss`.

    Shape:
        ``diagrams`` (and ``target``): :class:`~torchtopo.Diagrams` of ``B`` diagrams -> scalar,
        or ``(B,)`` with ``reduction="none"``.

    Examples
    --------
    >>> import torch
    >>> from torchtopo import rips_persistence
    >>> points = torch.randn(8, 32, 2, requires_grad=True)
    >>> loss = SummaryStatisticLoss(p=1.0, dims=(1,))(rips_persistence(points, max_dim=1))
    >>> loss.backward(); points.grad.shape  # gradients reach the points
    torch.Size([8, 32, 2])
    """

    def __init__(self, statistic: str = "total_persistence", p: float = 2.0, dims: Sequence[int] = (0,),
                 reduction: str = "mean") -> None:
        super().__init__()
        check_choice(statistic, "statistic", _STATISTICS)
        check_choice(reduction, "reduction", _REDUCTIONS)
        self.statistic, self.p, self.dims, self.reduction = statistic, check_positive(p, "p"), tuple(dims), reduction

    def forward(self, diagrams: Diagrams, target: Diagrams | None = None) -> Tensor:
        return summary_statistic_loss(diagrams, target, statistic=self.statistic, p=self.p, dims=self.dims,
                                      reduction=self.reduction)

    def extra_repr(self) -> str:
        return f"statistic={self.statistic!r}, p={self.p}, dims={self.dims}, reduction={self.reduction!r}"
