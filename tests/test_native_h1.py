"""Native batched H1 backend: exact agreement with gudhi, generators, tie-breaks, padding."""

from __future__ import annotations

import math
import sys

import gudhi
import numpy as np
import pytest
import torch
from helpers import make_cloud, needs_numba, padded_batches
from hypothesis import given
from hypothesis import strategies as st

import torchtopo.rips.native
from torchtopo import rips_persistence
from torchtopo.rips.h0 import h0_pairing
from torchtopo.rips.native import _h1_arrays, apparent_share, h1_pairing

pytestmark = needs_numba  # the native kernels are numba code


def _distances(points: np.ndarray, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """``(..., N, N)`` distances computed point by point in float64 (exactly symmetric), then cast."""
    x = torch.as_tensor(points, dtype=torch.float64)
    return torch.cdist(x, x, compute_mode="donot_use_mm_for_euclid_dist").to(dtype)


def _multiset(pairs) -> list[tuple[float, float]]:
    return sorted(map(tuple, np.asarray(pairs, dtype=np.float64).reshape(-1, 2).tolist()))


def _ours(distances: torch.Tensor, mask: torch.Tensor | None, max_edge: float | None) -> list[list[list]]:
    """``[dim][cloud]`` sorted (birth, death) lists, infinite bars included."""
    diagrams = rips_persistence(
        distances=distances, mask=mask, max_dim=1, max_edge=max_edge, keep_infinite=True, backend="native"
    )
    return [[_multiset(t) for t in diagrams.to_list(d)] for d in (0, 1)]


def _gudhi(matrix: np.ndarray, max_edge: float | None, collapse: bool = False) -> list[list]:
    """gudhi's H0 and H1 over Z/2 (ripser's field and ours), infinite bars included."""
    threshold = math.inf if max_edge is None else max_edge
    rips = gudhi.RipsComplex(distance_matrix=matrix, max_edge_length=threshold)
    if collapse:  # same diagram, far fewer triangles: for the large clouds
        tree = rips.create_simplex_tree(max_dimension=1)
        tree.collapse_edges(nb_iterations=10)
        tree.expansion(2)
    else:
        tree = rips.create_simplex_tree(max_dimension=2)
    # persistence_dim_max: otherwise a complex without edges reports no H0 at all.
    tree.compute_persistence(homology_coeff_field=2, persistence_dim_max=True)
    return [_multiset(tree.persistence_intervals_in_dimension(d)) for d in (0, 1)]


@given(
    batch=padded_batches(),
    dtype=st.sampled_from([torch.float32, torch.float64]),
    cut=st.sampled_from([None, 0.2, 0.5]),
)
def test_matches_gudhi_exactly(batch, dtype, cut):
    points, mask = batch
    distances = _distances(points, dtype)
    # max_edge as a quantile of the real edge lengths: some loops stay open (infinite bars).
    max_edge = None if cut is None else float(np.quantile(distances[torch.from_numpy(mask)].double().numpy(), cut))
    ours = _ours(distances, torch.from_numpy(mask), max_edge)
    for b in range(points.shape[0]):
        real = np.flatnonzero(mask[b])
        matrix = distances[b][real][:, real].double().numpy()
        reference = _gudhi(matrix, max_edge)
        assert ours[0][b] == reference[0]
        assert ours[1][b] == reference[1]


@pytest.mark.parametrize(
    ("kind", "n", "dim"),
    [("gaussian", 256, 16), ("circle", 256, 2), ("gaussian", 128, 512), ("grid", 128, 3)],
)
def test_large_clouds_match_gudhi(kind, n, dim):
    distances = _distances(make_cloud(kind, n, dim, seed=n + dim)[None])
    ours = _ours(distances, None, None)
    reference = _gudhi(distances[0].numpy(), None, collapse=True)
    assert len(ours[1][0]) == len(reference[1]) > 0  # H1 pair counts equal gudhi's
    assert ours[0][0] == reference[0]
    assert ours[1][0] == reference[1]


@pytest.mark.parametrize(("sides", "death"), [(4, math.sqrt(2.0)), (6, math.sqrt(3.0))])
def test_regular_polygons(sides, death):
    # Unit sides: the loop is born at 1 and killed by the first triangle (diagonals of the
    # square, the short diagonals of the hexagon).
    angles = torch.arange(sides, dtype=torch.float64) * 2 * math.pi / sides
    points = torch.stack([angles.cos(), angles.sin()], dim=-1) / (2 * math.sin(math.pi / sides))
    distances = _distances(points[None])
    births, deaths, valid = h1_pairing(distances, None, None)
    assert valid.tolist() == [[True]]
    i, j = births[0, 0].tolist()
    k, l = deaths[0, 0].tolist()
    assert i < j and k < l
    assert distances[0, i, j].item() == pytest.approx(1.0, rel=1e-12)
    assert distances[0, k, l].item() == pytest.approx(death, rel=1e-12)
    assert (j - i) % sides in (1, sides - 1)  # a side


@given(seed=st.integers(0, 2**31 - 1), n=st.integers(4, 40), cut=st.sampled_from([None, 0.3]))
def test_generators_match_gudhi_in_general_position(seed, n, cut):
    # Without ties the generators are unique, so they must be gudhi's edges exactly.
    distances = _distances(make_cloud("gaussian", n, 3, seed)[None])
    max_edge = None if cut is None else float(np.quantile(distances.numpy(), cut))
    births, deaths, valid = h1_pairing(distances, None, max_edge)
    ours = {(tuple(b), tuple(d)) for b, d in zip(births[0][valid[0]].tolist(), deaths[0][valid[0]].tolist())}
    rips = gudhi.RipsComplex(distance_matrix=distances[0].numpy(), max_edge_length=max_edge or math.inf)
    tree = rips.create_simplex_tree(max_dimension=2)
    tree.compute_persistence(homology_coeff_field=2, persistence_dim_max=True)
    finite, essential = tree.flag_persistence_generators()[1:4:2]
    edge = lambda a, b: (min(a, b), max(a, b))  # noqa: E731
    reference = {(edge(*row[:2]), edge(*row[2:])) for row in (finite[0] if finite else [])}
    reference |= {(edge(*row), (-1, -1)) for row in (essential[0] if essential else [])}
    # gudhi also lists pairs of zero persistence; the diagram (and our output) does not.
    lengths = distances[0].numpy()
    reference = {(b, d) for b, d in reference if d[0] < 0 or lengths[d] > lengths[b]}
    assert ours == reference


@pytest.mark.parametrize("kind", ["circle", "grid"])
def test_heap_and_bitmap_reductions_agree(kind):
    # Clouds too large for the working-column bitmap reduce with a heap: same pairs, same order.
    points = np.stack([make_cloud(kind, 60, 3, seed=s) for s in range(3)])
    distances = _distances(points)
    max_edge = float(np.quantile(distances.numpy(), 0.4))
    for cut in (None, max_edge):
        out, counts, _ = _h1_arrays(distances, None, cut)
        heap_out, heap_counts, _ = _h1_arrays(distances, None, cut, bitmap_bits=0)
        assert counts.tolist() == heap_counts.tolist() and counts.max() > 0
        for b, count in enumerate(counts):
            assert out[b, :count].tolist() == heap_out[b, :count].tolist()


def test_batches_split_into_chunks_give_the_same_pairs(monkeypatch):
    points = np.stack([make_cloud("gaussian", 40, 3, seed=s) for s in range(7)])
    distances = _distances(points)
    whole = h1_pairing(distances, None, None)
    monkeypatch.setattr(torchtopo.rips.native, "OUTPUT_BYTES", 1 << 14)  # one cloud per thread
    chunked = h1_pairing(distances, None, None)
    assert all(torch.equal(a, b) for a, b in zip(whole, chunked))
    assert (whole[0][~whole[2]] == -1).all() and (whole[1][~whole[2]] == -1).all()


def test_padding_never_changes_the_generators():
    rng = np.random.default_rng(3)
    cloud = make_cloud("grid", 20, 2, seed=5)  # ties: the tie-break must not see the padding
    slots = np.sort(rng.choice(32, 20, replace=False))
    padded = rng.normal(size=(1, 32, 2)) * 10
    padded[0, slots] = cloud
    mask = torch.zeros(1, 32, dtype=torch.bool)
    mask[0, slots] = True
    alone = h1_pairing(_distances(cloud[None]), None, None)
    births, deaths, valid = h1_pairing(_distances(padded), mask, None)
    assert valid.sum().item() == alone[2].sum().item() > 0
    assert births[valid].tolist() == slots[alone[0][alone[2]].numpy()].tolist()
    assert deaths[valid].tolist() == slots[alone[1][alone[2]].numpy()].tolist()


def test_degenerate_clouds():
    same = torch.zeros(2, 5, 5, dtype=torch.float64)  # all points identical
    mask = torch.tensor([[True] * 5, [True] + [False] * 4])
    assert h1_pairing(same, mask, None)[2].shape == (2, 0)
    assert h0_pairing(same, mask)[2].sum(dim=1).tolist() == [5, 1]


def _apparent_counts(d: np.ndarray, max_edge: float | None) -> tuple[int, int]:
    """(columns, apparent columns) of one cloud's dimension-1 filtration, by the definitions alone.

    ``d`` ``(n, n)`` float64 distances (only ``d[i, j]``, ``i < j``, is read, as the kernel does).
    The filtration is cut at ``min(max_edge, enclosing radius)``. Order (the one
    :mod:`torchtopo.rips._native_kernels` documents): edges by (length, ``C(j, 2) + i``);
    triangles by (rank of their longest edge, then their third vertex). Columns are the edges
    whose endpoints are already joined by earlier edges (not in the spanning forest, found by a
    search over the earlier edges). A pair ``(e, t)`` is apparent (Bauer, "Ripser", J. Appl. Comput. Topol. 2021)
    when ``t`` is the oldest cofacet of ``e`` and ``e`` is the youngest facet of ``t``.
    """
    n = d.shape[0]
    length = lambda i, j: float(d[min(i, j), max(i, j)])  # noqa: E731
    eccentricity = [max((length(a, b) for b in range(n) if b != a), default=0.0) for a in range(n)]
    cut = min(math.inf if max_edge is None else max_edge, min(eccentricity, default=math.inf))
    edges = sorted((length(i, j), j * (j - 1) // 2 + i, i, j) for j in range(n) for i in range(j)
                   if length(i, j) <= cut)
    rank = {}
    for r, (_, _, i, j) in enumerate(edges):
        rank[i, j] = rank[j, i] = r

    def joined_before(r: int) -> bool:  # depth-first search over the edges of rank < r
        _, _, source, target = edges[r]
        seen, todo = {source}, [source]
        while todo:
            a = todo.pop()
            for b in range(n):
                if b not in seen and rank.get((a, b), r) < r:
                    seen.add(b)
                    todo.append(b)
        return target in seen

    cofacets = {r: [] for r in range(len(edges))}
    for i, j, k in ((i, j, k) for k in range(n) for j in range(k) for i in range(j)):
        if all(pair in rank for pair in ((i, j), (i, k), (j, k))):
            facets = {rank[i, j]: k, rank[i, k]: j, rank[j, k]: i}  # facet rank -> opposite vertex
            youngest = max(facets)
            key = (youngest, facets[youngest])
            for facet in facets:
                cofacets[facet].append((key, youngest))
    columns = [r for r in range(len(edges)) if joined_before(r)]
    apparent = [r for r in columns if cofacets[r] and min(cofacets[r])[1] == r]
    return len(columns), len(apparent)


def _expected_share(distances: torch.Tensor, mask: np.ndarray, max_edge: float | None) -> float:
    d = distances.to(torch.float64).numpy()
    counts = [_apparent_counts(d[b][np.ix_(mask[b], mask[b])], max_edge) for b in range(d.shape[0])]
    columns, apparent = (sum(c) for c in zip(*counts))
    return 1.0 if columns == 0 else apparent / columns


@given(
    batch=padded_batches(max_points=14),
    dtype=st.sampled_from([torch.float32, torch.float64]),
    cut=st.sampled_from([None, 0.2, 0.5]),
)
def test_apparent_share_matches_the_definition(batch, dtype, cut):
    # Grid and duplicate clouds tie many lengths: the tie-break decides which pairs are apparent.
    points, mask = batch
    distances = _distances(points, dtype)
    ours = apparent_share(distances, torch.from_numpy(mask), cut)
    assert ours == _expected_share(distances, mask, cut)


def test_apparent_share_matches_the_definition_on_gaussian_clouds():
    # Most columns of a Gaussian cloud are apparent (the debug counter's use); the exact share,
    # not a threshold, is checked.
    points = np.random.default_rng(0).normal(size=(3, 40, 64))
    distances = _distances(points)
    mask = np.ones((3, 40), dtype=bool)
    assert apparent_share(distances) == _expected_share(distances, mask, None)


def test_max_dim_zero_and_errors():
    distances = _distances(make_cloud("gaussian", 10, 2, seed=0)[None])
    assert rips_persistence(distances=distances, max_dim=0, backend="native").max_dim == 0
    with pytest.raises(ValueError, match="max_dim"):
        rips_persistence(distances=distances, max_dim=3, backend="native")


def test_missing_numba_names_the_package(monkeypatch):
    monkeypatch.setitem(sys.modules, "numba", None)
    monkeypatch.delitem(sys.modules, "torchtopo.rips._native_kernels", raising=False)
    monkeypatch.delattr(torchtopo.rips, "_native_kernels", raising=False)
    distances = _distances(make_cloud("gaussian", 6, 2, seed=0)[None])
    with pytest.raises(ImportError, match="numba"):
        h1_pairing(distances, None, None)


@given(n=st.integers(2, 12), seed=st.integers(0, 2**16), share=st.floats(0.0, 1.0))
def test_a_columns_pivot_is_its_smallest_cofacet(n, seed, share):
    """The branch-free pivot of a column (``_smallest_cofacet``) is the minimum of the keys its
    coboundary enumeration gives, -1 for an edge without cofacet (edges past the cut: ABSENT)."""
    from torchtopo.rips import _native_kernels as kernels

    rng = np.random.default_rng(seed)
    ends_i, ends_j = np.triu_indices(n, 1)
    order = rng.permutation(len(ends_i))
    kept = int(round(share * len(order)))
    rank = np.full((n, n), kernels.ABSENT, dtype=np.int32)
    rank[ends_i[order[:kept]], ends_j[order[:kept]]] = np.arange(kept)
    rank[ends_j[order[:kept]], ends_i[order[:kept]]] = np.arange(kept)
    keys = np.empty(n, dtype=np.int64)
    for r in range(kept):
        i, j = int(ends_i[order[r]]), int(ends_j[order[r]])
        count = kernels._coboundary(rank, r, i, j, n, keys)
        assert kernels._smallest_cofacet(rank, r, i, j) == (keys[:count].min() if count else -1)


@given(count=st.sampled_from([0, 1, 2, 50, 1647, 4095, 4096, 9000]),
       kind=st.sampled_from(["float32", "float64", "ties", "scales"]), seed=st.integers(0, 2**16))
def test_radix_sort_of_lengths_is_the_stable_argsort(count, kind, seed):
    # The order of the edges (ties by combinatorial index) rests on this sort being stable and
    # exact, for float32 data (low bits zero), full float64 bits, many ties and wide exponents,
    # on both digit widths (8 bits below 4096 keys, 11 above).
    from torchtopo.rips._native_kernels import _argsort_lengths

    rng = np.random.default_rng(seed)
    if kind == "float32":
        lengths = (28 + rng.random(count)).astype(np.float32).astype(np.float64)
    elif kind == "float64":
        lengths = rng.random(count) * 30
    elif kind == "ties":
        lengths = rng.integers(0, 4, count).astype(np.float64)
    else:
        lengths = rng.random(count) * 10.0 ** rng.integers(-300, 300, count)
    assert np.array_equal(_argsort_lengths(lengths), np.argsort(lengths, kind="stable"))
