r"""Distances between persistence diagrams: Wasserstein, bottleneck and sliced Wasserstein.

Batched over :class:`~torchtopo.Diagrams` (one homology dimension ``dim``, padded and masked),
differentiable with respect to the diagrams (and so to the points, through
:func:`~torchtopo.rips_persistence`), equal to gudhi's distances in float64.

The Wasserstein and bottleneck distances are optimal partial matchings: each point of one
diagram goes to a point of the other or to its projection on the diagonal. The matching is found
without gradient (an exact solver on the CPU, or entropic optimal transport on the input's
device), then its cost is evaluated from the diagram tensors, so the gradient is that of the
cost of the optimal matching (as in gudhi's and pytorch-topological's autodiff): exact wherever
the optimal matching is unique.
"""

from __future__ import annotations

import math
from typing import Sequence, Union

import numpy as np
import torch
from torch import Tensor

from ._checks import check_all, check_choice, check_floating, check_int, check_positive
from .diagrams import Diagrams, pad_list
from .vectorize._base import wide

__all__ = ["wasserstein_distance", "bottleneck_distance", "sliced_wasserstein_distance"]

DiagramInput = Union[Diagrams, Tensor, Sequence[Tensor]]
_HALF = (torch.float16, torch.bfloat16)
_ESSENTIAL = ("keep", "drop")
# Cost matrices built at once: (pairs, Kx, Ky) float64 entries per chunk of the batch.
_CHUNK_ENTRIES = 1 << 22
# Sinkhorn's epsilon-scaling: the regularisation shrinks by this factor per iteration.
_ANNEALING = 1.1
_NOT_A_POINT = "contains a point (+inf, d) or (b, -inf), which is not a diagram point"


# --------------------------------------------------------------------------- input


def _one_side(x: DiagramInput, dim: int | None, name: str) -> tuple[Tensor, Tensor, bool]:
    """``(pairs (B, K, 2), mask (B, K), batched)`` of one argument."""
    if isinstance(x, Diagrams):
        if dim is None:
            if x.max_dim != 0:
                raise ValueError(f"dim is required: {name} holds homology dimensions 0..{x.max_dim}")
            dim = 0
        dim = check_int(dim, "dim", 0)
        if dim > x.max_dim:
            raise ValueError(f"dim must be in [0, {x.max_dim}] for {name}, got {dim}")
        pairs, mask = x.pairs[dim], x.mask[dim]
        return (pairs, mask, True) if x.is_batched else (pairs[None], mask[None], False)
    if isinstance(x, Tensor):
        check_floating(x, name)
        if x.dim() != 2 or x.shape[-1] != 2:
            raise ValueError(f"{name} must be a (k, 2) tensor (one diagram), a list of them or a Diagrams, "
                             f"got shape {tuple(x.shape)}")
        return x[None], torch.ones(1, x.shape[0], dtype=torch.bool, device=x.device), False
    if isinstance(x, (list, tuple)):
        if not x:
            raise ValueError(f"{name}: the list is empty")
        return (*pad_list(x, name), True)
    raise TypeError(f"{name} must be a Diagrams, a (k, 2) tensor or a list of them, got {type(x).__name__}")


def _inputs(a: DiagramInput, b: DiagramInput, dim: int | None
            ) -> tuple[Tensor, Tensor, Tensor, Tensor, bool, torch.dtype]:
    """Both sides batched, in one compute dtype (float32 for half inputs), and the output dtype."""
    x, mx, batched_a = _one_side(a, dim, "a")
    y, my, batched_b = _one_side(b, dim, "b")
    if batched_a != batched_b or x.shape[0] != y.shape[0]:
        raise ValueError(f"a and b must hold the same number of diagrams, got {x.shape[0] if batched_a else 'one'} "
                         f"and {y.shape[0] if batched_b else 'one'}")
    if x.device != y.device:
        raise ValueError(f"a and b must be on one device, got {x.device} and {y.device}")
    out_dtype = torch.promote_types(x.dtype, y.dtype)
    compute = torch.float32 if out_dtype in _HALF else out_dtype
    x, mx, y, my = *_at_least_one_row(x.to(compute), mx), *_at_least_one_row(y.to(compute), my)
    return x, mx, y, my, batched_a, out_dtype


def _at_least_one_row(pairs: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
    """A masked row of padding where ``K = 0``, so that gathers always have a row to read (joined
    to ``pairs``, so that a result still requires grad when the empty input does)."""
    if pairs.shape[1]:
        return pairs, mask
    return torch.cat([pairs, pairs.new_zeros(pairs.shape[0], 1, 2)], 1), mask.new_zeros(mask.shape[0], 1)


def _kinds(pairs: Tensor, mask: Tensor, name: str) -> dict[str, Tensor]:
    """Masks ``(B, K)`` of the real points by kind: ``finite``; gudhi's essential kinds
    ``(-inf, d)``, ``(b, +inf)``, ``(-inf, +inf)``; ``(+-inf, +-inf)`` lies on the diagonal."""
    birth, death = pairs[..., 0].contiguous(), pairs[..., 1].contiguous()  # (dense passes are faster)
    check_all(~(mask & (torch.isnan(birth) | torch.isnan(death))), f"{name} contains NaN")
    low, high = birth == -math.inf, death == math.inf
    kinds = {
        "finite": mask & torch.isfinite(birth) & torch.isfinite(death),
        "no_birth": mask & low & torch.isfinite(death),
        "no_death": mask & torch.isfinite(birth) & high,
        "neither": mask & low & high,
    }
    on_diagonal = mask & torch.isinf(birth) & (birth == death)
    known = kinds["finite"] | kinds["no_birth"] | kinds["no_death"] | kinds["neither"] | on_diagonal | ~mask
    check_all(known, f"{name} {_NOT_A_POINT}")
    return kinds


def _essential(x: Tensor, kx: dict[str, Tensor], y: Tensor, ky: dict[str, Tensor], order: float
               ) -> tuple[Tensor, Tensor]:
    """gudhi's essential parts: per kind, the finite coordinates of the two diagrams ``(B, K, 2)``
    matched in sorted order. Returns the cost ``(B,)`` (sum of ``|u - v| ** order``; the bottleneck
    distance has its own, in its kernel) and whether every kind has equal counts on both sides
    ``(B,)``."""
    batch = x.shape[0]
    cost = x.new_zeros(batch)
    equal = torch.ones(batch, dtype=torch.bool, device=x.device)
    for kind, column in (("no_birth", 1), ("no_death", 0), ("neither", None)):
        if not bool(kx[kind].any() | ky[kind].any()):
            continue  # (most diagrams: infinite bars dropped or never computed)
        nx, ny = kx[kind].sum(1), ky[kind].sum(1)
        equal &= nx == ny
        if column is None:
            continue
        k = max(x.shape[1], y.shape[1])

        def sorted_values(p: Tensor, m: Tensor) -> Tensor:
            v = torch.where(m, p[..., column], math.inf)
            v = torch.cat([v, v.new_full((batch, k - v.shape[1]), math.inf)], 1)
            return v.sort(1).values

        valid = torch.arange(k, device=x.device) < torch.minimum(nx, ny).unsqueeze(1)
        gap = (torch.where(valid, sorted_values(x, kx[kind]), 0.0)
               - torch.where(valid, sorted_values(y, ky[kind]), 0.0)).abs()
        cost = cost + gap.pow(order).sum(1)
    return cost, equal


def _compact(pairs: Tensor, keep: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """The kept rows moved to the front of each diagram: ``(pairs, index into the original rows,
    counts)``; rows past the count are zeros."""
    index = torch.argsort((~keep).to(torch.uint8), dim=1, stable=True)
    moved = pairs.gather(1, index.unsqueeze(-1).expand(-1, -1, 2))
    counts = keep.sum(1)
    inside = torch.arange(pairs.shape[1], device=pairs.device) < counts.unsqueeze(1)
    return torch.where(inside.unsqueeze(-1), moved, 0.0), index, counts


def _diagonal(pairs: Tensor, internal_p: float) -> Tensor:
    """``(B, K)`` L^p distance of each point to the diagonal, ``|d - b| 2^(1/p - 1)``."""
    return (pairs[..., 1] - pairs[..., 0]).abs() * 2.0 ** (1.0 / internal_p - 1.0)


def _ground(x: Tensor, y: Tensor, internal_p: float) -> Tensor:
    """``(..., 2)`` and ``(..., 2)`` -> L^p distances ``(...)``; a zero gradient where they coincide."""
    gap = x - y
    if math.isinf(internal_p):
        return gap.abs().amax(-1)
    return torch.linalg.vector_norm(gap, ord=internal_p, dim=-1)


def _root(total: Tensor, order: float) -> Tensor:
    """``total ** (1 / order)`` with a zero (not NaN) gradient at 0 and ``inf`` kept."""
    if order == 1.0:
        return total
    positive = total > 0
    return torch.where(positive, torch.where(positive, total, 1.0).pow(1.0 / order), 0.0)


# --------------------------------------------------------------------------- exact matchings


def _match_pair(cost: np.ndarray, to_diag_x: np.ndarray, to_diag_y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Optimal partial matching of one pair: ``cost`` ``(n, m)`` between the points (``n, m >=
    1``), ``to_diag_*`` the cost of sending each point to the diagonal. Returns matched ``(rows, cols)``; every other
    point goes to the diagonal.

    The smaller side's points are the rows of a rectangular assignment problem whose columns are
    the other side's points and one diagonal slot per row: a row ``i`` costs ``cost[i, j] -
    to_diag_y[j]`` in column ``j`` (the unmatched columns' diagonal costs are a constant) and
    ``to_diag_x[i]`` in any slot. ``n x (m + n)`` instead of gudhi's ``(n + 1) x (m + 1)``
    transport problem or the ``(n + m)^2`` assignment of the textbook reduction.
    """
    from scipy.optimize import linear_sum_assignment

    n, m = cost.shape
    if n > m:
        cols, rows = _match_pair(cost.T, to_diag_y, to_diag_x)
        return rows, cols
    problem = np.empty((n, m + n))
    np.subtract(cost, to_diag_y, out=problem[:, :m])
    problem[:, m:] = to_diag_x[:, None]
    rows, cols = linear_sum_assignment(problem)
    matched = cols < m
    return rows[matched], cols[matched]


def _exact_matching(x: Tensor, nx: Tensor, y: Tensor, ny: Tensor, order: float, internal_p: float) -> Tensor:
    """For compacted diagrams ``x`` ``(B, Kx, 2)`` with ``nx`` points (``y`` likewise): ``(B, Kx)``
    long, the row of ``y`` each point of ``x`` is matched to, or -1 (the diagonal). Solved in
    float64 on the CPU, pairs on threads (``linear_sum_assignment`` releases the GIL)."""
    from .rips._numba_threads import run_on_threads

    x64, y64 = x.detach().to("cpu", torch.float64), y.detach().to("cpu", torch.float64)
    counts_x, counts_y = nx.cpu().numpy(), ny.cpu().numpy()
    match = np.full(x.shape[:2], -1, dtype=np.int64)
    chunk = max(1, _CHUNK_ENTRIES // max(x.shape[1] * y.shape[1], 1))
    for start in range(0, x.shape[0], chunk):
        xs, ys = x64[start:start + chunk], y64[start:start + chunk]
        cost = _ground(xs.unsqueeze(2), ys.unsqueeze(1), internal_p).pow(order).numpy()
        to_x = _diagonal(xs, internal_p).pow(order).numpy()
        to_y = _diagonal(ys, internal_p).pow(order).numpy()

        # (a pair with an empty side sends every point to the diagonal: nothing to solve)
        both = np.flatnonzero((counts_x[start:start + chunk] > 0) & (counts_y[start:start + chunk] > 0))

        def solve(first: int, last: int) -> None:
            for i in both[first:last]:
                b = start + i
                n, m = counts_x[b], counts_y[b]
                rows, cols = _match_pair(cost[i, :n, :m], to_x[i, :n], to_y[i, :m])
                match[b, rows] = cols

        run_on_threads(solve, len(both), work=len(both) * xs.shape[1] * ys.shape[1] * (xs.shape[1] + ys.shape[1]))
    return torch.from_numpy(match).to(x.device)


# --------------------------------------------------------------------------- entropic matchings


def _sinkhorn_plan(cost: Tensor, log_a: Tensor, log_b: Tensor, eps: Tensor, max_iter: int, tol: float
                   ) -> tuple[Tensor, int]:
    """Entropic optimal transport plans ``(B, P, Q)`` between the masses ``exp(log_a)`` and
    ``exp(log_b)`` (``-inf`` marks an absent row or column) with regularisation ``eps``
    ``(B, 1, 1)``, rounded onto the marginals, and the number of iterations run.

    Log-domain Sinkhorn with dual potentials in cost units, started at a regularisation as large
    as the largest cost and divided by ``_ANNEALING`` at each iteration down to ``eps``
    (epsilon-scaling: the potentials of a coarse problem start the next one, far fewer iterations
    than a cold start at a small ``eps``). Every 10 iterations, a pair whose row sums are within
    ``tol`` of its masses (relative to its total mass) stops changing, so that a pair's result
    does not depend on the others in the batch.
    """
    present = torch.isfinite(log_a).unsqueeze(2) & torch.isfinite(log_b).unsqueeze(1)
    cost = torch.where(present, cost, math.inf)
    largest = torch.where(present, cost, 0.0).amax((1, 2), keepdim=True)
    a, b = log_a.exp(), log_b.exp()
    f = torch.where(torch.isfinite(log_a), 0.0, -math.inf)
    g = torch.where(torch.isfinite(log_b), 0.0, -math.inf)
    current = torch.maximum(largest, eps)
    active = torch.ones_like(log_a[:, :1], dtype=torch.bool)  # (B, 1)
    for iteration in range(max_iter):
        current = torch.where(active.unsqueeze(2), torch.maximum(current / _ANNEALING, eps), current)
        new_f = current.squeeze(2) * (log_a - torch.logsumexp((g.unsqueeze(1) - cost) / current, 2))
        f = torch.where(active & torch.isfinite(log_a), new_f, f)
        new_g = current.squeeze(2) * (log_b - torch.logsumexp((f.unsqueeze(2) - cost) / current, 1))
        g = torch.where(active & torch.isfinite(log_b), new_g, g)
        if iteration % 10 == 9:
            rows = torch.logsumexp((f.unsqueeze(2) + g.unsqueeze(1) - cost) / current, 2).exp()
            error = (rows - a).abs().sum(1, keepdim=True) / a.sum(1, keepdim=True)
            active &= (error > tol) | (current.squeeze(2) > eps.squeeze(2))
            if not bool(active.any()):
                break
    plan = ((f.unsqueeze(2) + g.unsqueeze(1) - cost) / current).exp()
    return _round_to_marginals(plan, a, b), iteration + 1


def _round_to_marginals(plan: Tensor, a: Tensor, b: Tensor) -> Tensor:
    """The plan scaled down where a row or column carries too much mass, plus a rank-one
    correction: a plan with exactly the marginals ``a`` ``(B, P)`` and ``b`` ``(B, Q)``
    (Altschuler, Weed, Rigollet 2017, Algorithm 2), so that its cost is never below the optimum."""
    plan = plan * (a / plan.sum(2).clamp_min(torch.finfo(plan.dtype).tiny)).clamp_max(1).unsqueeze(2)
    plan = plan * (b / plan.sum(1).clamp_min(torch.finfo(plan.dtype).tiny)).clamp_max(1).unsqueeze(1)
    rows, cols = (a - plan.sum(2)).clamp_min(0), (b - plan.sum(1)).clamp_min(0)
    missing = rows.sum(1, keepdim=True)
    return plan + rows.unsqueeze(2) * cols.unsqueeze(1) / torch.where(missing > 0, missing, 1.0).unsqueeze(2)


def _sinkhorn_total(x: Tensor, kx: Tensor, y: Tensor, ky: Tensor, order: float, internal_p: float,
                    epsilon: float, max_iter: int, tol: float) -> Tensor:
    """``(B,)`` transport cost of the entropic plan on gudhi's ``(n + 1) x (m + 1)`` problem, the
    plan detached and the cost differentiable."""
    x, y = torch.where(kx.unsqueeze(-1), x, 0.0), torch.where(ky.unsqueeze(-1), y, 0.0)
    batch = x.shape[0]
    cost = torch.cat([
        torch.cat([_ground(x.unsqueeze(2), y.unsqueeze(1), internal_p).pow(order),
                   _diagonal(x, internal_p).pow(order).unsqueeze(2)], 2),
        torch.cat([_diagonal(y, internal_p).pow(order), x.new_zeros(batch, 1)], 1).unsqueeze(1),
    ], 1)
    # gudhi's masses (1 per point, the other side's count on each diagonal) plus 1 on both
    # diagonals, which moves at no cost and keeps two empty diagrams well defined.
    nx, ny = kx.sum(1, keepdim=True), ky.sum(1, keepdim=True)
    log_a = torch.cat([torch.where(kx, 0.0, -math.inf), (ny + 1).to(x.dtype).log()], 1)
    log_b = torch.cat([torch.where(ky, 0.0, -math.inf), (nx + 1).to(x.dtype).log()], 1)
    # epsilon relative to the mean cost of sending a point to the diagonal (the scale of a
    # matched pair's cost), so that the relative error depends little on scale and size
    to_diagonal = torch.cat([cost[:, :-1, -1], cost[:, -1, :-1]], 1).detach()
    real = torch.cat([kx, ky], 1)
    scale = torch.where(real, to_diagonal, 0.0).sum(1) / real.sum(1).clamp_min(1)
    eps = (epsilon * torch.where(scale > 0, scale, 1.0)).reshape(-1, 1, 1)
    # The plan in float64 wherever the device has it: below, the exponents (f + g - cost) / eps
    # lose the digits that small regularisations need, and the iterations stall.
    wide_dtype = wide(x.device)
    with torch.no_grad():
        plan, _ = _sinkhorn_plan(cost.detach().to(wide_dtype), log_a.to(wide_dtype), log_b.to(wide_dtype),
                                 eps.to(wide_dtype), max_iter, tol)
    plan = plan.to(cost.dtype)
    return (plan * torch.where(plan > 0, cost, 0.0)).sum((1, 2))


# --------------------------------------------------------------------------- public functions


def wasserstein_distance(
    a: DiagramInput,
    b: DiagramInput,
    *,
    order: float = 1.0,
    internal_p: float = math.inf,
    dim: int | None = None,
    method: str = "exact",
    epsilon: float = 1e-3,
    max_iter: int = 2000,
    tol: float = 1e-3,
    infinite: str = "keep",
) -> Tensor:
    r"""Wasserstein distance of order ``order`` between persistence diagrams, batched.

    .. math::

        W_q(X, Y) = \Bigl(\min_{\gamma} \sum_{x \in X \cup \Delta} \|x - \gamma(x)\|_p^q\Bigr)^{1/q}

    over the bijections :math:`\gamma` between the points of :math:`X` plus the diagonal
    :math:`\Delta` and those of :math:`Y` plus :math:`\Delta`: a point unmatched goes to its
    nearest diagonal point, at distance :math:`|d - b|\, 2^{1/p - 1}`.

    Convention:
        gudhi's ``gudhi.wasserstein.wasserstein_distance(X, Y, order=q, internal_p=p)``, equal to
        it to 1e-9 in float64. Infinite bars (``infinite="keep"``, gudhi's
        ``keep_essential_parts=True``): points ``(b, +inf)`` are matched among themselves in
        sorted order of ``b`` at cost :math:`\sum |b - b'|^q` (likewise ``(-inf, d)`` by ``d``,
        ``(-inf, +inf)`` at cost 0, and ``(+-inf, +-inf)`` lie on the diagonal); when the two
        diagrams have different numbers of points of one such kind the distance is ``inf`` (gudhi
        warns and returns ``inf`` too), with a zero gradient. ``infinite="drop"`` ignores every
        infinite point (gudhi's ``keep_essential_parts=False``; gudhi still returns ``inf`` when one
        diagram is empty and the other has an infinite point, this does not). A point below the
        diagonal is at distance :math:`|d - b|\, 2^{1/p - 1}` from it (gudhi's cost goes
        negative there).

    Solvers:
        ``method="exact"`` finds the optimal matching with scipy's ``linear_sum_assignment``
        (the Jonker-Volgenant shortest augmenting path method of Crouse 2016, exact, a dependency
        torchtopo already has, and it releases the GIL, so pairs are solved on threads), on the
        CPU in float64, on an ``n x (n + m)`` assignment problem (``n <= m`` the smaller
        diagram's size), cubic in the diagram size: for diagrams of up to a few hundred points.
        The cost of that matching is then evaluated from the input tensors on their device.
        ``method="sinkhorn"`` solves gudhi's transport problem with entropic regularisation for
        the whole batch at once, on the input's device (GPU included): log-domain Sinkhorn
        iterations with epsilon-scaling (the plan in float64 where the device has it, whatever
        the input's dtype), the regularisation being ``epsilon`` times the mean
        cost of sending a point of the pair to the diagonal (scale-free), until the marginals
        are within ``tol`` (or ``max_iter`` iterations); the plan is then rounded onto the exact
        marginals (Altschuler et al. 2017), and its cost returned. That is the cost of a true
        matching plan, so never below the exact distance: on H1 diagrams of Gaussian and circle
        clouds the defaults measured a mean relative excess of 4e-4 to 5e-3 and a largest one of
        6e-2, on pairs whose iterations reached ``max_iter`` (the docs' distances page has the
        table, from ``benchmarks/bench_distances.py``; a larger ``epsilon`` converges faster and
        errs more). Its gradient is that of the plan's cost.

    Parameters
    ----------
    a, b : Diagrams, Tensor or list of Tensor
        Batches of diagrams (two :class:`~torchtopo.Diagrams` of the same batch size, or two lists
        of ``(k, 2)`` tensors of the same length), or two single ``(k, 2)`` diagrams, columns
        (birth, death). Padding (masked rows) is ignored.
    order : float
        ``q >= 1``. Default 1.
    internal_p : float
        ``p`` of the ground metric, ``>= 1`` or ``inf`` (default, as gudhi).
    dim : int, optional
        Homology dimension of :class:`~torchtopo.Diagrams` inputs (required when they hold more
        than one).
    method : {"exact", "sinkhorn"}
        See Solvers.
    epsilon, max_iter, tol : float, int, float
        Sinkhorn only: regularisation relative to the mean cost of a point to the diagonal
        (default 1e-3), iteration cap (default 2000), tolerance on the marginals, relative to the
        total mass (default 1e-3).
    infinite : {"keep", "drop"}
        Infinite bars as gudhi's ``keep_essential_parts``.

    Returns
    -------
    Tensor
        ``(B,)`` for batches, a scalar for two ``(k, 2)`` diagrams; the inputs' dtype (float16 and
        bfloat16 inputs are computed in float32) and device; differentiable with respect to both.

    Raises
    ------
    TypeError
        On non-floating diagrams or an unsupported input type.
    ValueError
        On different batch sizes or devices, NaN, a point ``(+inf, d)`` or ``(b, -inf)``, a
        missing ``dim``, ``order < 1``, ``internal_p < 1``, a bad ``method``, ``epsilon``,
        ``max_iter`` or ``infinite``.

    Examples
    --------
    >>> import torch
    >>> a = torch.tensor([[0.0, 1.0], [0.0, 4.0]])
    >>> b = torch.tensor([[0.0, 3.0]], requires_grad=True)
    >>> w = wasserstein_distance(a, b)  # (0, 4) -> (0, 3) costs 1; (0, 1) to the diagonal 0.5
    >>> w  # doctest: +ELLIPSIS
    tensor(1.5000, grad_fn=<...>)
    >>> w.backward(); b.grad
    tensor([[ 0., -1.]])
    >>> round(float(wasserstein_distance(a, b.detach(), method="sinkhorn", epsilon=1e-3)), 3)
    1.5
    """
    check_choice(method, "method", ("exact", "sinkhorn"))
    check_choice(infinite, "infinite", _ESSENTIAL)
    if not (isinstance(order, (int, float)) and 1 <= order < math.inf):
        raise ValueError(f"order must be a finite number >= 1, got {order!r}")
    if not (isinstance(internal_p, (int, float)) and internal_p >= 1):
        raise ValueError(f"internal_p must be a number >= 1 or inf, got {internal_p!r}")
    if method == "sinkhorn":
        check_positive(epsilon, "epsilon")
        check_int(max_iter, "max_iter", 1)
        check_positive(tol, "tol")
    order, internal_p = float(order), float(internal_p)
    x, mx, y, my, batched, out_dtype = _inputs(a, b, dim)
    kx, ky = _kinds(x, mx, "a"), _kinds(y, my, "b")
    if method == "exact":
        xc, index_x, nx = _compact(x, kx["finite"])
        yc, index_y, ny = _compact(y, ky["finite"])
        match = _exact_matching(xc, nx, yc, ny, order, internal_p)
        real_x = torch.arange(x.shape[1], device=x.device) < nx.unsqueeze(1)
        real_y = torch.arange(y.shape[1], device=y.device) < ny.unsqueeze(1)
        partner = yc.gather(1, match.clamp_min(0).unsqueeze(-1).expand(-1, -1, 2))
        pair_cost = torch.where(match >= 0, _ground(xc, partner, internal_p).pow(order), 0.0)
        matched_y = torch.zeros(real_y.shape, dtype=torch.long, device=y.device).scatter_add(
            1, match.clamp_min(0), (match >= 0).long()) > 0
        diag_x = torch.where(real_x & (match < 0), _diagonal(xc, internal_p).pow(order), 0.0)
        diag_y = torch.where(real_y & ~matched_y, _diagonal(yc, internal_p).pow(order), 0.0)
        total = pair_cost.sum(1) + diag_x.sum(1) + diag_y.sum(1)
    else:
        total = _sinkhorn_total(x, kx["finite"], y, ky["finite"], order, internal_p, epsilon, max_iter, tol)
    if infinite == "keep":
        essential, equal = _essential(x, kx, y, ky, order)
        total = torch.where(equal, total + essential, math.inf)
    distance = _root(total, order)
    return (distance if batched else distance[0]).to(out_dtype)


def bottleneck_distance(a: DiagramInput, b: DiagramInput, *, dim: int | None = None, infinite: str = "keep") -> Tensor:
    r"""Bottleneck distance between persistence diagrams, batched.

    .. math::

        d_B(X, Y) = \min_{\gamma} \max_{x \in X \cup \Delta} \|x - \gamma(x)\|_\infty

    over the bijections :math:`\gamma` of :func:`wasserstein_distance`; a point unmatched goes
    to the diagonal at distance :math:`|d - b| / 2`.

    Convention:
        gudhi's ``gudhi.bottleneck_distance(X, Y)``, equal to it to 1e-9 in float64 except where
        gudhi 3.13 errs, in its default mode and in its exact one (``e=0``) alike: on about 1% of
        pairs of random real-valued diagrams, and rarely on Rips diagrams (one of 128 pairs of H1
        diagrams of 50-point circles); there this agrees with a brute force (the tests check
        both). Infinite bars as in :func:`wasserstein_distance` (gudhi handles them the same
        way): with ``infinite="keep"`` points ``(b, +inf)`` are matched in sorted order of ``b``
        and contribute :math:`\max |b - b'|`, and different counts of one kind give ``inf``.
        A point below the diagonal is at distance :math:`|d - b| / 2` from it (gudhi treats it as
        on the diagonal).

    Solver:
        Exact, on the CPU in float64, in one compiled (numba) call for the whole batch, pairs on
        threads when the batch is large enough to pay for them: per pair, the kernel reads the
        real rows of the padded batch, refuses NaN and points ``(+inf, d)`` or ``(b, -inf)``,
        sorts the points by kind, matches the essential ones in sorted order and finds the
        finite part's distance by a binary search over the candidate distances (pairwise and to
        the diagonal, between a lower and an upper bound) whose feasibility test is two
        bipartite matchings (Kuhn's augmenting paths; the Mendelsohn-Dulmage theorem combines
        them). It returns the two coordinates of the bottleneck edge (two points in the column
        where they differ most, a point's birth and death, or two essential coordinates), and
        the distance is their difference taken from the input tensors: the gradient reaches
        exactly those coordinates (one edge where several attain the distance).

    Parameters
    ----------
    a, b, dim, infinite
        As in :func:`wasserstein_distance`.

    Returns
    -------
    Tensor
        ``(B,)`` or a scalar; the inputs' dtype and device; differentiable.

    Raises
    ------
    TypeError, ValueError
        As :func:`wasserstein_distance`.

    Examples
    --------
    >>> import torch
    >>> a = torch.tensor([[0.0, 1.0], [0.0, 4.0]])
    >>> b = torch.tensor([[0.0, 3.0], [1.0, float("inf")]])
    >>> bottleneck_distance(a, b, infinite="drop")  # (0, 4) -> (0, 3); (0, 1) to the diagonal: 0.5
    tensor(1.)
    >>> bottleneck_distance(a, b)  # one infinite bar against none
    tensor(inf)
    """
    from ._bottleneck_numba import bottleneck_batch
    from .rips._numba_threads import run_on_threads

    check_choice(infinite, "infinite", _ESSENTIAL)
    x, mx, y, my, batched, out_dtype = _inputs(a, b, dim)
    batch, kx, ky = x.shape[0], x.shape[1], y.shape[1]
    x64, y64 = (t.detach().to("cpu", torch.float64).numpy() for t in (x, y))
    real_x, real_y = mx.cpu().numpy(), my.cpu().numpy()
    index = np.empty((2, batch), dtype=np.int64)
    scale = np.empty((batch, 2))
    error = np.empty(batch, dtype=np.int64)
    run_on_threads(lambda first, last: bottleneck_batch(x64, real_x, y64, real_y, infinite == "keep", index, scale,
                                                        error, first, last),
                   batch, work=batch * kx * ky * (kx + ky))
    if error.any():
        bits = int(np.bitwise_or.reduce(error))
        for bit, message in ((1, "a contains NaN"), (2, f"a {_NOT_A_POINT}"), (4, "b contains NaN"),
                             (8, f"b {_NOT_A_POINT}")):
            if bits & bit:
                raise ValueError(message)
    # The distance is one difference of two input coordinates (halved for a point and its
    # diagonal projection; inf for different counts of essential points), computed in the
    # compute dtype: from the tensors where a gradient must follow it, else in NumPy (the same
    # IEEE operations, without the cost of small torch calls).
    if torch.is_grad_enabled() and (x.requires_grad or y.requires_grad):
        coordinates = torch.cat([x.reshape(-1), y.reshape(-1), x.new_zeros(1)])
        index, scale = torch.from_numpy(index).to(x.device), torch.from_numpy(scale).to(x.device, x.dtype)
        gathered = coordinates[index]
        edge = (gathered[0] - gathered[1]).abs() * scale[:, 0] + scale[:, 1]
    else:
        dtype = np.float32 if x.dtype == torch.float32 else np.float64
        gathered = np.concatenate([x64.reshape(-1), y64.reshape(-1), [0.0]])[index].astype(dtype)
        scale = scale.astype(dtype)
        edge = torch.from_numpy(np.abs(gathered[0] - gathered[1]) * scale[:, 0] + scale[:, 1]).to(x.device)
    return (edge if batched else edge[0]).to(out_dtype)


def sliced_wasserstein_distance(
    a: DiagramInput,
    b: DiagramInput,
    *,
    num_directions: int = 10,
    dim: int | None = None,
    infinite: str = "drop",
) -> Tensor:
    r"""Sliced Wasserstein distance (Carrière, Cuturi, Oudot, ICML 2017) between diagrams, batched.

    Each diagram, together with the diagonal projections of the other's points, is projected on
    lines through the origin; the distance is the mean over the lines of the 1-D Wasserstein
    distance (sum of sorted differences) of the projections. One sort of a
    ``(B, Kx + Ky, lines)`` tensor per side: differentiable, on the input's device.

    Convention:
        gudhi.representations' ``SlicedWassersteinDistance(num_directions)``, equal to it to 1e-9
        in float64: the lines are at the angles ``numpy.linspace(-pi/2, pi/2, num_directions,
        endpoint=False)`` without the last one (gudhi's ``[:-1]``), so ``num_directions - 1``
        lines. Infinite deaths are dropped (``infinite="drop"``; gudhi does not take them) or
        raise (``"raise"``).

    Parameters
    ----------
    a, b, dim
        As in :func:`wasserstein_distance`.
    num_directions : int
        At least 2. Default 10, as gudhi.
    infinite : {"drop", "raise"}
        What to do with points that have an infinite coordinate.

    Returns
    -------
    Tensor
        ``(B,)`` or a scalar; the inputs' dtype and device; differentiable.

    Raises
    ------
    TypeError, ValueError
        As :func:`wasserstein_distance`, and on ``num_directions < 2``.

    Examples
    --------
    >>> import torch
    >>> a, b = torch.tensor([[0.0, 2.0]]), torch.tensor([[0.0, 2.0], [1.0, 1.0]])
    >>> sliced_wasserstein_distance(a, b)  # a point on the diagonal costs nothing
    tensor(0.)
    """
    lines = check_int(num_directions, "num_directions", 2) - 1
    check_choice(infinite, "infinite", ("drop", "raise"))
    x, mx, y, my, batched, out_dtype = _inputs(a, b, dim)
    kx, ky = _kinds(x, mx, "a"), _kinds(y, my, "b")
    if infinite == "raise" and bool(((kx["finite"] != mx).any() | (ky["finite"] != my).any())):
        raise ValueError("diagrams contain infinite coordinates; pass infinite='drop' to ignore them")
    # Padding and dropped points become (0, 0): a point on the diagonal adds the same value to
    # both sides of every line, which changes no 1-D transport cost.
    x, y = torch.where(kx["finite"].unsqueeze(-1), x, 0.0), torch.where(ky["finite"].unsqueeze(-1), y, 0.0)
    angles = torch.from_numpy(np.linspace(-np.pi / 2, np.pi / 2, num=lines + 1, endpoint=False)[:-1])
    directions = torch.stack([angles.cos(), angles.sin()]).to(device=x.device, dtype=x.dtype)  # (2, L)

    def projected(p: Tensor, other: Tensor) -> Tensor:
        diagonal = (other.sum(-1, keepdim=True) / 2).expand_as(other)
        return torch.cat([p @ directions, diagonal @ directions], 1).sort(1).values

    distance = (projected(x, y) - projected(y, x)).abs().sum(1).mean(-1)
    return (distance if batched else distance[0]).to(out_dtype)
