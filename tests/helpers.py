"""Shared test helpers: point-cloud strategies and gudhi oracles."""

from __future__ import annotations

import importlib.util

import gudhi
import numpy as np
import pytest
import torch
from hypothesis import strategies as st

# The native CPU kernels (torchtopo.rips._native_kernels, the cubical sweeps) need numba, an
# optional dependency: the tests of those kernels skip without it.
needs_numba = pytest.mark.skipif(importlib.util.find_spec("numba") is None,
                                 reason="needs numba (an optional dependency of the native kernels)")
needs_triton = pytest.mark.skipif(importlib.util.find_spec("triton") is None,
                                  reason="needs triton (an optional dependency of the GPU kernels)")

KINDS = ("gaussian", "circle", "grid", "duplicates", "collinear")
# Clouds with voids or in a plane, for dimension 2 (make_cloud knows them too).
H2_KINDS = ("sphere", "torus", "coplanar")


def make_cloud(kind: str, n: int, dim: int, seed: int, scale: float = 1.0) -> np.ndarray:
    """A float64 ``(n, dim)`` cloud of one of the adversarial ``KINDS`` or of ``H2_KINDS``: a noisy
    sample of the unit sphere S² (in the first 3 coordinates), of a torus (of revolution in R³
    for ``dim < 4``, the flat torus in R⁴ otherwise), or points of a random plane."""
    rng = np.random.default_rng(seed)
    if kind == "gaussian":
        cloud = rng.normal(size=(n, dim))
    elif kind == "circle":
        angles = rng.uniform(0, 2 * np.pi, n)
        cloud = np.zeros((n, max(dim, 2)))
        cloud[:, 0], cloud[:, 1] = np.cos(angles), np.sin(angles)
        cloud = (cloud + 0.1 * rng.normal(size=cloud.shape))[:, :dim]
    elif kind == "grid":  # integer coordinates: many exactly tied edge lengths
        cloud = rng.integers(0, 4, size=(n, dim)).astype(np.float64)
    elif kind == "duplicates":
        base = rng.normal(size=(max(n // 3, 1), dim))
        cloud = base[rng.integers(0, base.shape[0], n)]
    elif kind == "collinear":
        cloud = np.outer(rng.uniform(-1, 1, n), rng.normal(size=dim))
    elif kind == "sphere":
        cloud = np.zeros((n, max(dim, 3)))
        cloud[:, :3] = rng.normal(size=(n, 3))
        cloud[:, :3] /= np.linalg.norm(cloud[:, :3], axis=1, keepdims=True)
        cloud = (cloud + 0.05 * rng.normal(size=cloud.shape))[:, :dim]
    elif kind == "torus":
        u, v = rng.uniform(0, 2 * np.pi, (2, n))
        cloud = np.zeros((n, max(dim, 4)))
        if dim < 4:
            radius = 1 + 0.4 * np.cos(v)
            cloud[:, 0], cloud[:, 1], cloud[:, 2] = radius * np.cos(u), radius * np.sin(u), 0.4 * np.sin(v)
        else:
            cloud[:, 0], cloud[:, 1], cloud[:, 2], cloud[:, 3] = np.cos(u), np.sin(u), np.cos(v), np.sin(v)
        cloud = (cloud + 0.02 * rng.normal(size=cloud.shape))[:, :dim]
    elif kind == "coplanar":
        cloud = rng.normal(size=(n, 2)) @ rng.normal(size=(2, dim))
    else:
        raise ValueError(kind)
    return cloud * scale


@st.composite
def clouds(draw, max_points: int = 30, kinds=KINDS, scales=(1e-3, 1.0, 1e3)):
    kind = draw(st.sampled_from(kinds))
    n = draw(st.integers(1, max_points))
    dim = draw(st.sampled_from([1, 2, 3, 8]))
    seed = draw(st.integers(0, 2**31 - 1))
    scale = draw(st.sampled_from(scales))
    return make_cloud(kind, n, dim, seed, scale)


@st.composite
def padded_batches(draw, kinds=KINDS, dims=(1, 2, 3, 8), max_points: int = 24):
    """Clouds of the adversarial kinds, padded with masked decoys at random slots."""
    batch = draw(st.integers(1, 3))
    dim = draw(st.sampled_from(dims))
    scale = draw(st.sampled_from([1e-3, 1.0, 1e3]))
    sizes = [draw(st.integers(1, max_points)) for _ in range(batch)]
    width = max(sizes) + draw(st.integers(0, 5))
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    points = rng.normal(size=(batch, width, dim)) * scale  # the decoys where masked
    mask = np.zeros((batch, width), dtype=bool)
    for b, size in enumerate(sizes):
        kind = draw(st.sampled_from(kinds))
        slots = np.sort(rng.choice(width, size, replace=False))
        points[b, slots] = make_cloud(kind, size, dim, seed + b, scale)
        mask[b, slots] = True
    return points, mask


def gudhi_diagrams(points: np.ndarray, max_dim: int, max_edge: float | None = None) -> list[np.ndarray]:
    """Finite diagrams ``[(k_d, 2)]`` of gudhi's Rips complex on the exact float64 distances."""
    x = np.asarray(points, dtype=np.float64)
    distances = np.sqrt(((x[:, None] - x[None]) ** 2).sum(-1))
    threshold = np.inf if max_edge is None else max_edge
    tree = gudhi.RipsComplex(distance_matrix=distances, max_edge_length=threshold).create_simplex_tree(
        max_dimension=max_dim + 1
    )
    tree.compute_persistence()
    return [
        np.array([p for p in tree.persistence_intervals_in_dimension(d) if np.isfinite(p[1])]).reshape(-1, 2)
        for d in range(max_dim + 1)
    ]


def assert_same_diagram(ours: torch.Tensor | np.ndarray, reference: np.ndarray, rtol: float) -> None:
    """Equal as multisets of (birth, death), up to ``rtol`` times the diagram's scale.

    Uses the bottleneck distance (a true matching) plus equal counts of the points whose
    persistence exceeds the tolerance, so near-diagonal rounding noise cannot hide a missing bar.
    """
    ours = np.asarray(torch.as_tensor(ours).detach().cpu().double().numpy()).reshape(-1, 2)
    scale = max(np.abs(reference).max(initial=0.0), np.abs(ours).max(initial=0.0), 1e-300)
    tol = rtol * scale
    distance = gudhi.bottleneck_distance(ours, reference)
    assert distance <= tol, f"bottleneck distance {distance} > {tol}\nours={ours}\nreference={reference}"
    persistent = lambda d: int((d[:, 1] - d[:, 0] > 2 * tol).sum())  # noqa: E731
    assert persistent(ours) == persistent(reference), f"\nours={ours}\nreference={reference}"
