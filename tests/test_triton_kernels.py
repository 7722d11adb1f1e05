"""Triton kernels agree exactly with the torch path (under TRITON_INTERPRET=1 without a GPU)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import make_cloud, needs_numba, padded_batches
from hypothesis import given
from hypothesis import strategies as st

from torchtopo.rips.distances import edge_lengths, pairwise_distances
from torchtopo.rips.h0 import h0_pairing
from torchtopo.rips.pairing import Pairing, gather_diagrams

pytest.importorskip("triton", reason="needs triton (an optional dependency of the GPU kernels)")
from torchtopo.rips.triton_h0 import h0_pairing_triton  # noqa: E402

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"


def _random_mask(batch: int, n: int, generator: torch.Generator) -> torch.Tensor:
    mask = torch.rand(batch, n, generator=generator) > 0.3
    mask[torch.arange(batch), torch.randint(0, n, (batch,), generator=generator)] = True
    return mask


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("shape", [(3, 7, 5), (2, 33, 17), (1, 1, 4), (2, 2, 1), (2, 20, 130)])
@pytest.mark.parametrize("masked", [False, True])
def test_h0_kernel_equals_torch_prim_on_generic_clouds(shape, dtype, masked):
    generator = torch.Generator().manual_seed(sum(shape))
    points = torch.randn(*shape, generator=generator, dtype=torch.float64).to(dtype)
    mask = _random_mask(shape[0], shape[1], generator) if masked else None
    expected = h0_pairing(pairwise_distances(points, mask), mask)
    got = h0_pairing_triton(points.to(DEVICE), None if mask is None else mask.to(DEVICE))
    for a, b in zip(got, expected):
        assert torch.equal(a.cpu(), b)


def test_h0_kernel_gives_the_same_values_on_tied_grids():
    """With exact ties the chosen edges may differ, the diagram values may not."""
    points = torch.from_numpy(np.stack([make_cloud("grid", 30, 2, seed=s) for s in range(3)]))
    values = []
    for births, deaths, valid in (h0_pairing_triton(points.to(DEVICE)), h0_pairing(pairwise_distances(points))):
        pairing = Pairing((births.cpu(),), (deaths.cpu(),), (valid.cpu(),))
        dgm = gather_diagrams(lambda e: edge_lengths(points, e), pairing, keep_infinite=False)
        values.append([d[:, 1].sort().values for d in dgm.to_list(0)])
    for a, b in zip(*values):
        assert torch.equal(a, b)


def test_h0_kernel_refuses_too_many_points():
    from torchtopo.rips.triton_h0 import MAX_POINTS

    with pytest.raises(ValueError, match="points"):
        h0_pairing_triton(torch.zeros(1, MAX_POINTS + 1, 2, device=DEVICE))


# ---- H1: filtration order, spanning forest and apparent pairs on the GPU --------------------


def _cpu_marks(distances: torch.Tensor, mask: torch.Tensor | None, max_edge: float | None):
    """Per cloud, the CPU path's ranks and column marks, in the original point indices."""
    from torchtopo.rips._native_kernels import CLEARED, REDUCE, _filtration, _mark_columns

    batch, n = distances.shape[:2]
    valid = np.ones((batch, n), dtype=bool) if mask is None else mask.numpy()
    limit = np.inf if max_edge is None else max_edge
    for b in range(batch):
        idx, rank, src, dst, _ = _filtration(distances[b].double().numpy(), valid[b], limit)
        columns = _mark_columns(rank, src, dst)
        # Apparent pairs name their third vertex among the real points: map it back.
        original = np.where(columns >= 0, idx[np.maximum(columns, 0)], columns)
        assert set(np.unique(columns[columns < 0]).tolist()) <= {CLEARED, REDUCE}
        yield idx[src], idx[dst], original


def _triton_marks_match(distances: torch.Tensor, mask: torch.Tensor | None, max_edge: float | None) -> None:
    from torchtopo.rips.triton_h1 import mark_columns_triton

    n = distances.shape[1]
    edge_rank, columns, n_edges = (
        t.cpu() for t in mark_columns_triton(distances.to(DEVICE), None if mask is None else mask.to(DEVICE), max_edge)
    )
    j, i = torch.tril_indices(n, n, -1)
    for b, (src, dst, expected) in enumerate(_cpu_marks(distances, mask, max_edge)):
        size = int(n_edges[b])
        assert size == len(expected)
        by_rank = torch.full((size, 2), -1, dtype=torch.long)
        present = edge_rank[b] < size
        by_rank[edge_rank[b][present].long()] = torch.stack([i[present], j[present]], dim=1)
        assert torch.equal(by_rank, torch.from_numpy(np.stack([src, dst], axis=1)).long())
        assert torch.equal(columns[b, :size], torch.from_numpy(expected).int())


TIE_KINDS = ["gaussian", "grid", "duplicates", "collinear", "circle"]


@pytest.mark.parametrize("kind", TIE_KINDS)
@pytest.mark.parametrize(("n", "masked", "max_edge", "dtype"), [
    (7, False, None, torch.float64),
    (33, True, None, torch.float32),
    (45, False, 0.8, torch.float64),  # cut below the enclosing radius: a spanning forest
    (70, True, 1.5, torch.float32),  # three tiles of 32 per side
])
@needs_numba
def test_h1_marks_equal_the_cpu_path(kind, n, masked, max_edge, dtype):
    seed = n + TIE_KINDS.index(kind)
    points = torch.from_numpy(np.stack([make_cloud(kind, n, 3, seed=seed + s) for s in range(2)]))
    mask = _random_mask(2, n, torch.Generator().manual_seed(seed)) if masked else None
    _triton_marks_match(pairwise_distances(points, mask).to(dtype), mask, max_edge)


@needs_numba
@given(batch=padded_batches(), dtype=st.sampled_from([torch.float32, torch.float64]), cut=st.sampled_from([None, 0.5]))
def test_h1_marks_equal_the_cpu_path_on_padded_adversarial_batches(batch, dtype, cut):
    points, mask = (torch.from_numpy(a) for a in batch)
    scale = float(points.abs().max()) or 1.0
    _triton_marks_match(pairwise_distances(points, mask).to(dtype), mask, None if cut is None else cut * scale)


@needs_numba
@pytest.mark.parametrize("kind", ["gaussian", "circle", "grid"])
def test_h1_marks_on_clouds_of_130_points(kind):
    """Five tiles per side (the last one partial), as the benchmark sizes cross tiles."""
    points = torch.from_numpy(make_cloud(kind, 130, 3, seed=130)[None])
    _triton_marks_match(pairwise_distances(points), None, None)


@needs_numba
@pytest.mark.parametrize("n", [1, 2, 3])
def test_h1_marks_on_tiny_clouds(n):
    _triton_marks_match(pairwise_distances(torch.randn(2, n, 2, dtype=torch.float64)), None, None)


@needs_numba
@pytest.mark.parametrize("kind", TIE_KINDS)
@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("max_edge", [None, 1.0])
def test_h1_triton_pairs_equal_the_cpu_path(kind, masked, max_edge):
    from torchtopo.rips.native import h1_pairing
    from torchtopo.rips.triton_h1 import h1_pairing_triton

    n = 37
    seed = 3 + TIE_KINDS.index(kind)
    points = torch.from_numpy(np.stack([make_cloud(kind, n, 2, seed=seed + s) for s in range(3)]))
    mask = _random_mask(3, n, torch.Generator().manual_seed(seed)) if masked else None
    distances = pairwise_distances(points, mask)
    got = h1_pairing_triton(distances.to(DEVICE), None if mask is None else mask.to(DEVICE), max_edge)
    for a, b in zip(got, h1_pairing(distances, mask, max_edge)):
        assert torch.equal(a.cpu(), b)


@needs_numba
def test_rips_persistence_sends_cuda_input_through_the_triton_kernels(monkeypatch):
    """The dispatch for CUDA input (forced here on CPU tensors under the interpreter): same
    diagrams, generators and gradients as the CPU path."""
    import torchtopo.rips.core as core
    from torchtopo import rips_persistence

    points = torch.randn(3, 29, 4, dtype=torch.float64, requires_grad=True)
    mask = _random_mask(3, 29, torch.Generator().manual_seed(5))
    results = []
    for forced in (False, True):
        monkeypatch.setattr(core, "_use_triton", lambda source, forced=forced: forced and source is not None)
        dgm = rips_persistence(points, 1, mask=mask)
        (grad,) = torch.autograd.grad(dgm.persistence(0).sum() + dgm.persistence(1).sum(), points)
        results.append((dgm, grad))
    (cpu, cpu_grad), (gpu, gpu_grad) = results
    for dim in (0, 1):
        assert torch.equal(gpu.mask[dim], cpu.mask[dim])
        assert [torch.sort(x, dim=0).values.tolist() for x in gpu.to_list(dim)] == [
            torch.sort(x, dim=0).values.tolist() for x in cpu.to_list(dim)
        ]
    assert torch.equal(gpu.birth_edges[1], cpu.birth_edges[1])
    assert torch.equal(gpu.death_edges[1], cpu.death_edges[1])
    assert torch.allclose(gpu_grad, cpu_grad, rtol=0, atol=1e-12)


def test_h1_kernels_refuse_too_many_points():
    from torchtopo.rips.triton_h1 import MAX_POINTS, mark_columns_triton

    with pytest.raises(ValueError, match="distances"):
        mark_columns_triton(torch.zeros(1, MAX_POINTS + 1, MAX_POINTS + 1, device=DEVICE), None, None)


_COMPILE_ALL = """
import sys
import triton
from triton.backends.compiler import GPUTarget
from torchtopo.cubical import triton_union_find
from torchtopo.rips import triton_h0, triton_h1

kernels = [
    (triton_h0._prim_kernel, {"points": "*fp32", "mask": "*i8", "tree_edges": "*i64", "tree_lengths": "*fp32",
     "roots": "*i64", "n_points": "i32", "n_dims": "i32", "stride_b": "i32", "stride_n": "i32", "stride_d": "i32",
     "BLOCK_N": "constexpr", "BLOCK_D": "constexpr"}, {"BLOCK_N": 256, "BLOCK_D": 16}),
    (triton_h1._apparent_kernel, {"rank": "*i32", "columns": "*i32", "n_points": "i32", "n_pairs": "i32",
     "BLOCK": "constexpr"}, {"BLOCK": triton_h1._TILE}),
    (triton_h1._spanning_forest_kernel, {"rank": "*i32", "columns": "*i32", "n_points": "i32", "n_pairs": "i32",
     "BLOCK_N": "constexpr"}, {"BLOCK_N": 256}),
    (triton_union_find._sweep_kernel, {"values": "*fp32", "order": "*i64", "offsets": "*i64", "parent": "*i64",
     "size": "*i64", "elder": "*i64", "births": "*i64", "deaths": "*i64", "counts": "*i32", "n_pixels": "i32",
     "depth": "i32", "height": "i32", "width": "i32", "n_offsets": "i32", "DUAL": "constexpr",
     "BOUNDARY_Z": "constexpr", "LANES": "constexpr"}, {"DUAL": True, "BOUNDARY_Z": True, "LANES": 8}),
    (triton_union_find._sweep_kernel, {"values": "*fp64", "order": "*i64", "offsets": "*i64", "parent": "*i64",
     "size": "*i64", "elder": "*i64", "births": "*i64", "deaths": "*i64", "counts": "*i32", "n_pixels": "i32",
     "depth": "i32", "height": "i32", "width": "i32", "n_offsets": "i32", "DUAL": "constexpr",
     "BOUNDARY_Z": "constexpr", "LANES": "constexpr"}, {"DUAL": False, "BOUNDARY_Z": False, "LANES": 32}),
]
for capability in (80, 90):
    for fn, signature, constexprs in kernels:
        source = triton.compiler.ASTSource(fn=fn, signature=signature, constexprs=constexprs)
        options = {"num_warps": 1} if fn is triton_union_find._sweep_kernel else {}
        compiled = triton.compile(source, target=GPUTarget("cuda", capability, 32), options=options)
        assert compiled.asm["cubin"], fn
print("compiled", len(kernels), "kernels")
"""


def test_kernels_compile_to_cubin_for_a100_and_h100(tmp_path):
    """The interpreter runs the kernels' Python; this compiles them as a GPU would (Triton's own
    ptxas, no driver needed), for sm_80 and sm_90, so a construct only the compiler refuses
    fails here and not first on a GPU machine."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env["TRITON_CACHE_DIR"] = str(tmp_path)
    result = subprocess.run([sys.executable, "-c", _COMPILE_ALL], env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "compiled 5 kernels" in result.stdout


@needs_numba
def test_h1_triton_batches_split_into_chunks_give_the_same_pairs(monkeypatch):
    import torchtopo.rips.triton_h1 as triton_h1

    points = torch.randn(5, 23, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(11))
    distances = pairwise_distances(points).to(DEVICE)
    whole = triton_h1.h1_pairing_triton(distances, None, None)
    monkeypatch.setattr(triton_h1, "MARK_ELEMENTS", 2 * 23 * 23)  # two clouds per chunk
    for a, b in zip(triton_h1.h1_pairing_triton(distances, None, None), whole):
        assert torch.equal(a, b)
