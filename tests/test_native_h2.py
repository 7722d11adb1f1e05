"""Native H2 backend: exact agreement with gudhi, hand-made voids, generators, gradients, padding."""

from __future__ import annotations

import itertools
import math
import sys

import gudhi
import numpy as np
import pytest
import torch
from helpers import H2_KINDS, KINDS, make_cloud, needs_numba, padded_batches
from hypothesis import example, given, settings
from hypothesis import strategies as st

import torchtopo.rips
import torchtopo.rips.core
from torchtopo import VietorisRips, rips_persistence
from torchtopo.rips.native import h1_pairing
from torchtopo.rips.native_h2 import _h1_h2_arrays, h1_h2_pairing, h2_apparent_share, h2_pairing

pytestmark = needs_numba  # the native kernels are numba code


def _distances(points: np.ndarray, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """``(..., N, N)`` distances computed point by point in float64 (exactly symmetric), then cast."""
    x = torch.as_tensor(points, dtype=torch.float64)
    return torch.cdist(x, x, compute_mode="donot_use_mm_for_euclid_dist").to(dtype)


def _multiset(pairs) -> list[tuple[float, float]]:
    return sorted(map(tuple, np.asarray(pairs, dtype=np.float64).reshape(-1, 2).tolist()))


def _ours(distances: torch.Tensor, mask: torch.Tensor | None, max_edge: float | None) -> list[list[list]]:
    """``[dim][cloud]`` sorted (birth, death) lists of dimensions 0 to 2, infinite bars included."""
    diagrams = rips_persistence(
        distances=distances, mask=mask, max_dim=2, max_edge=max_edge, keep_infinite=True, backend="native"
    )
    return [[_multiset(t) for t in diagrams.to_list(d)] for d in range(3)]


def _gudhi_tree(matrix: np.ndarray, max_edge: float | None, collapse: bool = False) -> gudhi.SimplexTree:
    """gudhi's Rips complex up to tetrahedra, its persistence over Z/2 (ripser's field and ours)."""
    rips = gudhi.RipsComplex(distance_matrix=matrix, max_edge_length=math.inf if max_edge is None else max_edge)
    if collapse:  # same diagram, far fewer simplices: for the large clouds
        tree = rips.create_simplex_tree(max_dimension=1)
        tree.collapse_edges(nb_iterations=10)
        tree.expansion(3)
    else:
        tree = rips.create_simplex_tree(max_dimension=3)
    # persistence_dim_max: otherwise a complex without edges reports no H0 at all.
    tree.compute_persistence(homology_coeff_field=2, persistence_dim_max=True)
    return tree


def _gudhi(matrix: np.ndarray, max_edge: float | None, collapse: bool = False) -> list[list]:
    """gudhi's diagrams of dimensions 0 to 2, infinite bars included."""
    tree = _gudhi_tree(matrix, max_edge, collapse)
    return [_multiset(tree.persistence_intervals_in_dimension(d)) for d in range(3)]


def _check_against_gudhi(points: np.ndarray, mask: np.ndarray, dtype: torch.dtype, cut: float | None) -> None:
    distances = _distances(points, dtype)
    # max_edge as a quantile of the real edge lengths: some voids stay open (infinite bars).
    max_edge = None if cut is None else float(np.quantile(distances[torch.from_numpy(mask)].double().numpy(), cut))
    ours = _ours(distances, torch.from_numpy(mask), max_edge)
    for b in range(points.shape[0]):
        real = np.flatnonzero(mask[b])
        reference = _gudhi(distances[b][real][:, real].double().numpy(), max_edge)
        for d in range(3):
            assert ours[d][b] == reference[d], (d, b)


# ------------------------------------------------------------------------------ agreement with gudhi
@given(
    batch=padded_batches(kinds=KINDS + H2_KINDS, dims=(2, 3, 4, 8), max_points=20),
    dtype=st.sampled_from([torch.float32, torch.float64]),
    cut=st.sampled_from([None, 0.3, 0.6]),
)
def test_matches_gudhi_exactly(batch, dtype, cut):
    _check_against_gudhi(*batch, dtype, cut)


@pytest.mark.slow
@settings(max_examples=80)
@given(
    batch=padded_batches(kinds=KINDS + H2_KINDS, dims=(3, 4), max_points=40),
    cut=st.sampled_from([None, 0.3, 0.6]),
)
def test_larger_batches_match_gudhi_exactly(batch, cut):
    _check_against_gudhi(*batch, torch.float64, cut)


@given(
    kind=st.sampled_from(H2_KINDS),
    n=st.integers(4, 26),
    dim=st.sampled_from([3, 4]),
    seed=st.integers(0, 2**31 - 1),
    scale=st.sampled_from([1e-3, 1.0, 1e3]),
    cut=st.sampled_from([None, 0.5, 0.8]),
)
@example(kind="sphere", n=26, dim=3, seed=0, scale=1.0, cut=None)
@example(kind="torus", n=26, dim=4, seed=1, scale=1e3, cut=0.8)
def test_voids_match_gudhi_exactly(kind, n, dim, seed, scale, cut):
    _check_against_gudhi(make_cloud(kind, n, dim, seed, scale)[None], np.ones((1, n), dtype=bool), torch.float64, cut)


@pytest.mark.parametrize(
    ("kind", "n", "dim"),
    [("sphere", 40, 3), ("grid", 30, 3), ("duplicates", 30, 3), ("coplanar", 30, 3)],
)
def test_medium_clouds_match_gudhi(kind, n, dim):
    distances = _distances(make_cloud(kind, n, dim, seed=n + dim)[None])
    assert _ours(distances, None, None) == [[r] for r in _gudhi(distances[0].numpy(), None)]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("kind", "n", "dim"),
    [("sphere", 96, 3), ("torus", 80, 3), ("torus", 80, 4), ("gaussian", 64, 512), ("grid", 64, 3)],
)
def test_large_clouds_match_gudhi(kind, n, dim):
    distances = _distances(make_cloud(kind, n, dim, seed=n + dim)[None])
    ours = _ours(distances, None, None)
    reference = _gudhi(distances[0].numpy(), None, collapse=True)
    assert len(ours[2][0]) == len(reference[2]) > 0
    assert ours == [[r] for r in reference]


def test_lower_dimensions_are_those_of_the_h1_backend():
    # The same clouds through max_dim=1 and max_dim=2: H0 and H1 pairs and generators unchanged.
    points = np.stack([make_cloud(k, 24, 3, seed=s) for s, k in enumerate(KINDS + H2_KINDS)])
    distances = _distances(points)
    cut = float(np.quantile(distances.numpy(), 0.5))
    for max_edge in (None, cut):
        one = rips_persistence(distances=distances, max_dim=1, max_edge=max_edge, keep_infinite=True)
        two = rips_persistence(distances=distances, max_dim=2, max_edge=max_edge, keep_infinite=True)
        for field in ("pairs", "mask", "birth_edges", "death_edges"):
            for d in (0, 1):
                assert torch.equal(getattr(one, field)[d], getattr(two, field)[d])
        dim1 = h1_h2_pairing(distances, None, max_edge)[0]
        assert all(torch.equal(a, b) for a, b in zip(dim1, h1_pairing(distances, None, max_edge)))


# ------------------------------------------------------------------------------------ hand-made voids
def test_octahedron():
    # The six points +-e_i: the surface is complete at sqrt(2) (its 12 edges) and filled when
    # the diagonals enter at 2. Ties: the last edge of length sqrt(2) in the order (length, then
    # combinatorial index) is (4, 5), the first diagonal (0, 3).
    points = torch.cat([torch.eye(3), -torch.eye(3)]).double().requires_grad_(True)
    dgm = rips_persistence(points, max_dim=2)
    assert dgm.to_list(2)[0].tolist() == [[math.sqrt(2), 2.0]]
    assert dgm.to_list(1)[0].numel() == 0
    assert dgm.to_list(0)[0].tolist() == [[0.0, math.sqrt(2)]] * 5
    assert dgm.birth_edges[2].tolist() == [[4, 5]] and dgm.death_edges[2].tolist() == [[0, 3]]
    (grad,) = torch.autograd.grad(dgm.pairs[2].sum(), points)
    s = 1 / math.sqrt(2)
    expected = [[1, 0, 0], [0, 0, 0], [0, 0, 0], [-1, 0, 0], [0, -s, s], [0, s, -s]]
    assert torch.allclose(grad, torch.tensor(expected, dtype=torch.float64), atol=1e-15)
    # Below the diagonals the void never dies.
    open_void = rips_persistence(points.detach(), max_dim=2, max_edge=1.5, keep_infinite=True)
    assert open_void.to_list(2)[0].tolist() == [[math.sqrt(2), math.inf]]
    assert open_void.death_edges[2].tolist() == [[-1, -1]]
    assert rips_persistence(points.detach(), max_dim=2, max_edge=1.5).to_list(2)[0].numel() == 0


def test_tetrahedron_boundary_is_filled_at_once():
    # Four points: the void of the boundary appears with the last edge, at the diameter of the
    # tetrahedron that fills it: a pair of zero persistence, not a point of the diagram.
    points = torch.tensor([[1.0, 1, 1], [1, -1, -1], [-1, 1, -1], [-1, -1, 1]], dtype=torch.float64)
    dgm = rips_persistence(points, max_dim=2, keep_infinite=True)
    side = math.sqrt(8)
    assert dgm.to_list(0)[0].tolist() == [[0.0, side]] * 3 + [[0.0, math.inf]]
    assert dgm.to_list(1)[0].numel() == 0 and dgm.to_list(2)[0].numel() == 0
    *_, stats = _h1_h2_arrays(_distances(points[None]), None, None)
    # Dimension 1 pairs three triangles; the fourth, {1, 2, 3}, is apparent with the tetrahedron.
    assert stats.tolist() == [[1, 1, 0]]
    # With one edge shorter than the others, still nothing: four points never hold a void.
    points[0] *= 0.9
    assert rips_persistence(points, max_dim=2, keep_infinite=True).to_list(2)[0].numel() == 0


def _stretched_octahedron() -> torch.Tensor:
    """An octahedron with six distinct half-axes: no two edges of equal length, so every
    generator is unique."""
    return torch.tensor(
        [[1.0, 0, 0], [0, 1.2, 0], [0, 0, 1.4], [-1.05, 0, 0], [0, -1.25, 0], [0, 0, -1.45]], dtype=torch.float64
    )


def test_stretched_octahedron():
    # The surface is complete with its longest edge, between the two longest half-axes (points
    # 4 and 5), and filled with the shortest diagonal (0-3), longer than every surface edge.
    dgm = rips_persistence(_stretched_octahedron(), max_dim=2)
    ((birth, death),) = dgm.to_list(2)[0].tolist()
    assert birth == pytest.approx(math.hypot(1.25, 1.45), rel=1e-15) and death == pytest.approx(2.05, rel=1e-15)
    assert dgm.birth_edges[2].tolist() == [[4, 5]] and dgm.death_edges[2].tolist() == [[0, 3]]


def _hollow_cube() -> np.ndarray:
    """The 26 points of the 3x3x3 integer grid but its centre: a void among many tied edges."""
    grid = np.stack(np.meshgrid(*[np.arange(3.0)] * 3, indexing="ij"), -1).reshape(-1, 3)
    return grid[np.abs(grid - 1).max(axis=1) > 0]


def test_hollow_cube():
    # The surface is complete when the face diagonals enter (sqrt(2)) and filled when the edges
    # between opposite face centres, through the hole, do (2).
    points = torch.tensor(_hollow_cube())
    dgm = rips_persistence(points, max_dim=2)
    assert dgm.to_list(2)[0].tolist() == [[math.sqrt(2), 2.0]]
    assert _multiset(dgm.to_list(1)[0]) == _gudhi(_distances(points).numpy(), None)[1]
    births, deaths = dgm.birth_edges[2], dgm.death_edges[2]
    assert (points[births[0, 0]] - points[births[0, 1]]).abs().tolist().count(1.0) == 2  # a face diagonal
    assert (points[deaths[0, 0]] - points[deaths[0, 1]]).abs().sum().item() == 2.0  # through the centre


# ----------------------------------------------------------------------------------------- generators
@given(
    kind=st.sampled_from(["gaussian", "sphere", "torus"]),
    seed=st.integers(0, 2**31 - 1),
    n=st.integers(5, 22),
    cut=st.sampled_from([None, 0.5]),
)
def test_generators_match_gudhi_in_general_position(kind, seed, n, cut):
    # Without ties the generators are unique, so they must be gudhi's edges exactly.
    distances = _distances(make_cloud(kind, n, 3, seed)[None])
    max_edge = None if cut is None else float(np.quantile(distances.numpy(), cut))
    births, deaths, valid = h2_pairing(distances, None, max_edge)
    ours = {(tuple(b), tuple(d)) for b, d in zip(births[0][valid[0]].tolist(), deaths[0][valid[0]].tolist())}
    tree = _gudhi_tree(distances[0].numpy(), max_edge)
    finite, essential = tree.flag_persistence_generators()[1:4:2]
    edge = lambda a, b: (min(a, b), max(a, b))  # noqa: E731
    reference = {(edge(*row[:2]), edge(*row[2:])) for row in (finite[1] if len(finite) > 1 else [])}
    reference |= {(edge(*row), (-1, -1)) for row in (essential[1] if len(essential) > 1 else [])}
    # gudhi also lists pairs of zero persistence; the diagram (and our output) does not.
    lengths = distances[0].numpy()
    reference = {(b, d) for b, d in reference if d[0] < 0 or lengths[d] > lengths[b]}
    assert ours == reference


@given(batch=padded_batches(kinds=("grid", "duplicates", "sphere", "torus"), dims=(3, 4), max_points=20))
def test_generator_lengths_are_the_values(batch):
    # With ties too: whichever edges the tie-break picks, their lengths are the pair's values.
    points, mask = batch
    distances = _distances(points)
    dgm = rips_persistence(distances=distances, mask=torch.from_numpy(mask), max_dim=2)
    for b in range(points.shape[0]):
        keep = dgm.mask[2][b]
        births, deaths = dgm.birth_edges[2][b][keep], dgm.death_edges[2][b][keep]
        assert torch.equal(dgm.pairs[2][b][keep][:, 0], distances[b][births[:, 0], births[:, 1]])
        assert torch.equal(dgm.pairs[2][b][keep][:, 1], distances[b][deaths[:, 0], deaths[:, 1]])


def test_padding_never_changes_the_generators():
    rng = np.random.default_rng(3)
    cloud = _hollow_cube()  # ties: the tie-break must not see the padding
    slots = np.sort(rng.choice(34, 26, replace=False))
    padded = rng.normal(size=(1, 34, 3)) * 10
    padded[0, slots] = cloud
    mask = torch.zeros(1, 34, dtype=torch.bool)
    mask[0, slots] = True
    alone = h2_pairing(_distances(cloud[None]), None, None)
    births, deaths, valid = h2_pairing(_distances(padded), mask, None)
    assert valid.sum().item() == alone[2].sum().item() > 0
    assert births[valid].tolist() == slots[alone[0][alone[2]].numpy()].tolist()
    assert deaths[valid].tolist() == slots[alone[1][alone[2]].numpy()].tolist()


# ------------------------------------------------------------------------------------------ gradients
def test_gradcheck_on_a_unique_pairing():
    points = _stretched_octahedron().requires_grad_(True)

    def values(x):
        dgm = rips_persistence(x, max_dim=2)
        return torch.cat([dgm.pairs[2].flatten(), dgm.pairs[0].flatten()])

    assert torch.autograd.gradcheck(values, (points,), eps=1e-6, atol=1e-8)


def test_gradients_match_finite_differences_on_a_sphere_sample():
    points = torch.tensor(make_cloud("sphere", 24, 3, seed=0))
    weights = torch.tensor([0.7, 1.3], dtype=torch.float64)

    def loss(x):
        dgm = rips_persistence(x, max_dim=2)
        return (dgm.pairs[2] * weights).sum() + dgm.persistence(2).square().sum()

    assert rips_persistence(points, max_dim=2).mask[2].any()
    x = points.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(loss(x), x)
    assert grad.abs().sum() > 0
    step = 1e-6
    numeric = torch.zeros_like(points)
    for i in range(points.shape[0]):
        for j in range(3):
            shift = torch.zeros_like(points)
            shift[i, j] = step
            numeric[i, j] = (loss(points + shift) - loss(points - shift)) / (2 * step)
    assert torch.allclose(grad, numeric, atol=1e-7)


@pytest.mark.parametrize(("kind", "n", "seed"), [("gaussian", 22, 8), ("sphere", 22, 8), ("torus", 40, 4)])
def test_native_and_gudhi_backends_agree(kind, n, seed):
    """Without ties both backends pick the same generators: equal diagrams, equal gradients."""
    cloud = torch.tensor(make_cloud(kind, n, 3, seed))
    weights = torch.linspace(0.5, 1.5, 2, dtype=torch.float64)
    results = []
    for backend in ("native", "gudhi"):
        points = cloud.clone().requires_grad_(True)
        dgm = rips_persistence(points, 2, backend=backend)
        total = sum((dgm.pairs[d] * weights).sum() + dgm.persistence(d).square().sum() for d in range(3))
        (grad,) = torch.autograd.grad(total, points)
        results.append(([_multiset(t.detach()) for d in range(3) for t in dgm.to_list(d)], grad))
    (ours, grad), (theirs, reference) = results
    assert ours == theirs and len(ours[2]) > 0
    assert grad.abs().sum() > 0
    assert torch.allclose(grad, reference, atol=1e-12)


# ------------------------------------------------------------------------------------- the machinery
@pytest.mark.parametrize("kind", ["sphere", "grid", "torus"])
def test_heap_and_bitmap_reductions_agree(kind):
    # Clouds too large for the working-column bitmap reduce with a heap: same pairs, same order.
    points = np.stack([make_cloud(kind, 30, 3, seed=s) for s in range(3)])
    distances = _distances(points)
    cut = float(np.quantile(distances.numpy(), 0.5))
    for max_edge in (None, cut):
        bitmap = _h1_h2_arrays(distances, None, max_edge)
        heap = _h1_h2_arrays(distances, None, max_edge, bitmap_bits=0)
        assert bitmap[3].max() > 0
        for a, b in zip(bitmap, heap):
            assert np.array_equal(a, b)


def test_thread_ranges_give_the_same_pairs():
    points = np.stack([make_cloud("sphere", 20, 3, seed=s) for s in range(7)])
    distances = _distances(points)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        alone = h1_h2_pairing(distances, None, None)
        torch.set_num_threads(2)
        split = h1_h2_pairing(distances, None, None)
    finally:
        torch.set_num_threads(before)
    for a, b in zip(alone, split):
        assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert (alone[1][0][~alone[1][2]] == -1).all() and (alone[1][1][~alone[1][2]] == -1).all()


def test_degenerate_clouds():
    same = torch.zeros(3, 6, 6, dtype=torch.float64)  # all points identical
    mask = torch.tensor([[True] * 6, [True] * 3 + [False] * 3, [True] + [False] * 5])
    (b1, d1, v1), (b2, d2, v2) = h1_h2_pairing(same, mask, None)
    assert v1.shape == (3, 0) and v2.shape == (3, 0) and b2.shape == d2.shape == (3, 0, 2)
    dgm = rips_persistence(distances=same, mask=mask, max_dim=2, keep_infinite=True)
    assert [t.tolist() for t in dgm.to_list(0)] == [[[0.0, math.inf]]] * 3
    assert dgm.pairs[2].shape == (3, 0, 2)


def _simplices(rank: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The simplices of ``size`` vertices all of whose edges have a rank (``rank >= 0``): their
    vertices ``(S, size)`` (increasing), the ranks of their edges ``(S, size (size - 1) / 2)`` and
    the positions ``(size (size - 1) / 2, 2)`` of each edge's ends in a row of vertices."""
    ends = np.array(list(itertools.combinations(range(size), 2)), dtype=np.int64).reshape(-1, 2)
    vertices = np.array(list(itertools.combinations(range(rank.shape[0]), size)), dtype=np.int64)
    vertices = vertices.reshape(-1, size)
    ranks = rank[vertices[:, ends[:, 0]], vertices[:, ends[:, 1]]]
    keep = (ranks >= 0).all(axis=1)
    return vertices[keep], ranks[keep], ends


def _h2_apparent_counts(d: np.ndarray, max_edge: float | None) -> tuple[int, int]:
    """(columns, apparent columns) of one cloud's dimension-2 filtration, by the definitions alone.

    ``d`` ``(n, n)`` float64 distances (only ``d[i, j]``, ``i < j``, is read, as the kernel does),
    the filtration cut at ``min(max_edge, enclosing radius)``. Order (the one
    :mod:`torchtopo.rips._native_h2_kernels` documents): edges by (length, ``C(j, 2) + i``);
    triangles by (rank of their longest edge, then their third vertex); tetrahedra by (rank of
    their longest edge, then the other two vertices ``x < y`` by ``y``, then ``x``). Columns are
    the triangles not paired in dimension 1: those whose boundary (mod 2) is a sum of the
    boundaries of earlier triangles (a triangle that is no such sum kills a cycle). A pair
    ``(t, T)`` is apparent (Bauer, "Ripser", J. Appl. Comput. Topol. 2021) when ``T`` is the
    oldest cofacet of ``t`` and ``t`` is the youngest facet of ``T``.
    """
    n = d.shape[0]
    upper = np.triu(d, 1)
    symmetric = upper + upper.T
    eccentricity = symmetric.max(axis=1, initial=0.0)
    cut = min(math.inf if max_edge is None else max_edge, eccentricity.min(initial=math.inf))
    edges = sorted((d[i, j], j * (j - 1) // 2 + i, i, j) for j in range(n) for i in range(j) if d[i, j] <= cut)
    rank = np.full((n, n), -1, dtype=np.int64)
    for r, (_, _, i, j) in enumerate(edges):
        rank[i, j] = rank[j, i] = r

    def triangle_keys(vertices: np.ndarray, ranks: np.ndarray) -> np.ndarray:
        """(rank of the longest edge, vertex opposite it) of triangles, as ``rank * n + vertex``."""
        longest = ranks.argmax(axis=1)  # edges (0, 1), (0, 2), (1, 2): the opposite vertex is 2 - position
        return ranks.max(axis=1) * n + vertices[np.arange(len(vertices)), 2 - longest]

    triangles, triangle_ranks, _ = _simplices(rank, 3)
    keys = triangle_keys(triangles, triangle_ranks)
    # Gaussian elimination mod 2 of the boundaries (sets of edge ranks, as integer bit masks) in
    # filtration order, each reduced by the earlier ones with the same highest edge.
    reduced, columns = {}, set()
    for key, ranks in sorted(zip(keys.tolist(), triangle_ranks.tolist())):
        boundary = sum(1 << r for r in ranks)
        while boundary and boundary.bit_length() in reduced:
            boundary ^= reduced[boundary.bit_length()]
        if boundary:
            reduced[boundary.bit_length()] = boundary
        else:
            columns.add(key)

    tetrahedra, tetrahedron_ranks, ends = _simplices(rank, 4)
    rows = np.arange(len(tetrahedra))
    # The positions of the two vertices off the longest edge (increasing, as the vertices are).
    complement = np.array([[v for v in range(4) if v not in pair] for pair in ends])
    others = complement[tetrahedron_ranks.argmax(axis=1)]
    x, y = tetrahedra[rows, others[:, 0]], tetrahedra[rows, others[:, 1]]
    tetrahedron_keys = (tetrahedron_ranks.max(axis=1) * n + y) * n + x
    facet_keys = []
    for dropped in range(4):  # the facet without the vertex at position ``dropped``
        kept = [v for v in range(4) if v != dropped]
        pairs = [e for e, (p, q) in enumerate(ends) if p != dropped and q != dropped]
        facet_keys.append(triangle_keys(tetrahedra[:, kept], tetrahedron_ranks[:, pairs]))
    facet_keys = np.stack(facet_keys, axis=1)  # (T, 4)
    youngest = facet_keys.max(axis=1, initial=-1)
    oldest = {}  # triangle key -> (key, youngest facet) of its oldest cofacet
    for tetrahedron, facets, facet in zip(tetrahedron_keys.tolist(), facet_keys.tolist(), youngest.tolist()):
        for key in facets:
            oldest[key] = min(oldest.get(key, (tetrahedron, facet)), (tetrahedron, facet))
    apparent = [key for key in columns if key in oldest and oldest[key][1] == key]
    return len(columns), len(apparent)


def _expected_h2_share(distances: torch.Tensor, mask: np.ndarray, max_edge: float | None) -> float:
    d = distances.to(torch.float64).numpy()
    counts = [_h2_apparent_counts(d[b][np.ix_(mask[b], mask[b])], max_edge) for b in range(d.shape[0])]
    columns, apparent = (sum(c) for c in zip(*counts))
    return 1.0 if columns == 0 else apparent / columns


@given(
    batch=padded_batches(kinds=KINDS + H2_KINDS, dims=(2, 3, 8), max_points=12),
    dtype=st.sampled_from([torch.float32, torch.float64]),
    cut=st.sampled_from([None, 0.2, 0.5]),
)
def test_apparent_share_matches_the_definition(batch, dtype, cut):
    # Grid and duplicate clouds tie many lengths: the tie-break decides which pairs are apparent.
    points, mask = batch
    distances = _distances(points, dtype)
    assert h2_apparent_share(distances, torch.from_numpy(mask), cut) == _expected_h2_share(distances, mask, cut)


def test_apparent_share_matches_the_definition_on_gaussian_clouds():
    # Most dimension-2 columns of a Gaussian cloud are apparent; the exact share is checked.
    generator = torch.Generator().manual_seed(0)
    points = torch.randn(2, 28, 16, generator=generator, dtype=torch.float64)
    distances = _distances(points.numpy())
    mask = np.ones((2, 28), dtype=bool)
    share = h2_apparent_share(distances)
    assert share == _expected_h2_share(distances, mask, None) and share < 1.0


def test_auto_backend_and_module_use_the_native_kernels(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("gudhi backend called")

    monkeypatch.setattr(torchtopo.rips.core, "gudhi_pairing", refuse)
    points = torch.tensor(make_cloud("sphere", 20, 3, seed=2)[None])
    expected = _gudhi(_distances(points)[0].numpy(), None)[2]
    assert _multiset(rips_persistence(points, 2).to_list(2)[0]) == pytest.approx(expected, rel=1e-12)
    assert _multiset(VietorisRips(max_dim=2)(points).to_list(2)[0]) == pytest.approx(expected, rel=1e-12)
    with pytest.raises(ValueError, match="max_dim"):
        rips_persistence(points, 3, backend="native")


def test_missing_numba_names_the_package(monkeypatch):
    monkeypatch.setitem(sys.modules, "numba", None)
    monkeypatch.delitem(sys.modules, "torchtopo.rips._native_h2_kernels", raising=False)
    monkeypatch.delattr(torchtopo.rips, "_native_h2_kernels", raising=False)
    distances = _distances(make_cloud("sphere", 6, 3, seed=0)[None])
    with pytest.raises(ImportError, match="numba"):
        h2_pairing(distances, None, None)
