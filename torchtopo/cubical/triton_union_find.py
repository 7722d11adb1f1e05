"""GPU kernel: the union-find sweeps of :mod:`torchtopo.cubical.union_find`, one image per program.

Each program walks its image's pixels in sorted order (the sort is ``torch.sort`` on the
device); at each pixel its neighbours are lanes of one vector (8 or 26 for dimension 0, 4 or 6
plus the outside node for the dual sweep): the lanes find their roots together, the oldest root
survives and the others die in lane order, exactly as the numba and torch implementations do,
so all three give the same pairing. The forest lives in global memory; a barrier after each step
makes the step's unions visible to every lane. Nothing is read back to the host. Triton is
imported when the kernel is first used; the module is only loaded for CUDA input (or under
``TRITON_INTERPRET=1`` in the tests).
"""

from __future__ import annotations

import numpy as np
import torch
import triton
import triton.language as tl
from torch import Tensor

__all__ = ["sweep_triton"]


@triton.jit
def _sweep_kernel(
    values,
    order,
    offsets,
    parent,
    size,
    elder,
    births,
    deaths,
    counts,
    n_pixels,
    depth,
    height,
    width,
    n_offsets,
    DUAL: tl.constexpr,
    BOUNDARY_Z: tl.constexpr,
    LANES: tl.constexpr,
):
    image = tl.program_id(0).to(tl.int64)
    base = image * n_pixels  # values, order, births, deaths
    state = image * (n_pixels + 1)  # parent, size, elder: the pixels, then the outside node
    plane = height * width
    lanes = tl.arange(0, LANES)
    is_offset = lanes < n_offsets
    dz = tl.load(offsets + lanes * 3, mask=is_offset, other=0)
    dy = tl.load(offsets + lanes * 3 + 1, mask=is_offset, other=0)
    dx = tl.load(offsets + lanes * 3 + 2, mask=is_offset, other=0)
    earlier = lanes[None, :] < lanes[:, None]
    big_index = n_pixels + 1
    count = 0
    if not DUAL:  # row 0: the infinite bar of the global minimum
        tl.store(births + base, tl.load(order + base))
        tl.store(deaths + base, -1)
        count = 1
    for step in range(0, n_pixels):
        if DUAL:
            position = n_pixels - 1 - step
        else:
            position = step
        p = tl.load(order + base + position)
        z = p // plane
        y = (p - z * plane) // width
        x = p - z * plane - y * width
        zz = z + dz
        yy = y + dy
        xx = x + dx
        inside = is_offset & (zz >= 0) & (zz < depth) & (yy >= 0) & (yy < height) & (xx >= 0) & (xx < width)
        q = tl.where(inside, zz * plane + yy * width + xx, 0)
        if DUAL:
            edge = (y == 0) | (y == height - 1) | (x == 0) | (x == width - 1)
            if BOUNDARY_Z:
                edge = edge | (z == 0) | (z == depth - 1)
            outside_lane = lanes == n_offsets
            q = tl.where(outside_lane, n_pixels, q)
            inside = inside | (outside_lane & edge)
        up = tl.load(parent + state + q, mask=inside, other=-1)
        valid = inside & (up >= 0)
        root = q
        moving = valid & (up != root)
        while tl.max(moving.to(tl.int32), axis=0) > 0:
            root = tl.where(moving, up, root)
            up = tl.load(parent + state + root, mask=moving, other=0)
            moving = moving & (up != root)
        age = tl.load(elder + state + root, mask=valid, other=big_index)
        oldest = tl.min(age, axis=0)
        survivor = tl.min(tl.where(valid & (age == oldest), root, big_index), axis=0)
        same = (root[:, None] == root[None, :]) & valid[None, :] & earlier
        first = valid & (tl.max(same.to(tl.int32), axis=1) == 0)
        dying = first & (root != survivor)
        born_at = tl.minimum(tl.maximum(age, 0), n_pixels - 1)
        if DUAL:
            born_at = n_pixels - 1 - born_at
        born = tl.load(order + base + born_at, mask=dying, other=0)
        value = tl.load(values + base + p)
        record = dying & (tl.load(values + base + born, mask=dying, other=0) != value)
        slot = count + tl.cumsum(record.to(tl.int32), axis=0) - 1
        pixel = tl.zeros_like(born) + p
        if DUAL:
            tl.store(births + base + slot, pixel, mask=record)
            tl.store(deaths + base + slot, born, mask=record)
        else:
            tl.store(births + base + slot, born, mask=record)
            tl.store(deaths + base + slot, pixel, mask=record)
        count += tl.sum(record.to(tl.int32), axis=0)
        # Union by size: every distinct root (and the new pixel) under the largest tree.
        sizes = tl.load(size + state + root, mask=first, other=0)
        joined = tl.max(first.to(tl.int32), axis=0) > 0
        largest = tl.max(sizes, axis=0)
        big = tl.min(tl.where(first & (sizes == largest), root, big_index), axis=0)
        big = tl.where(joined, big, p)
        tl.store(parent + state + root, tl.zeros_like(root) + big, mask=first)
        tl.store(parent + state + p, big)
        tl.store(size + state + big, tl.sum(sizes, axis=0) + 1)
        tl.store(elder + state + big, tl.where(joined, oldest, step))
        tl.debug_barrier()
    tl.store(counts + image, count)


@torch.no_grad()
def sweep_triton(values: Tensor, order: Tensor, shape, offsets: np.ndarray, dual: bool, boundary_z: bool):
    """One sweep of :func:`~torchtopo.cubical.union_find.union_find_pairing` on the device.

    Parameters
    ----------
    values : Tensor
        ``(B, P)`` float32 or float64 on a CUDA device (any device under ``TRITON_INTERPRET=1``).
    order : Tensor
        ``(B, P)`` long, the stable increasing order of each row of ``values``.
    shape : tuple of int
        ``(D, H, W)``.
    offsets : numpy.ndarray
        ``(L, 3)`` neighbour offsets (:func:`~torchtopo.cubical.union_find.neighbour_offsets`).
    dual, boundary_z : bool
        As in the numba kernel.

    Returns
    -------
    ``births``, ``deaths`` ``(B, P)`` long rows (undefined past each count) and ``counts``
    ``(B,)``.
    """
    batch, n = values.shape
    device = values.device
    parent = torch.full((batch, n + 1), -1, dtype=torch.long, device=device)
    size = torch.zeros(batch, n + 1, dtype=torch.long, device=device)
    elder = torch.zeros(batch, n + 1, dtype=torch.long, device=device)
    if dual:
        parent[:, n], size[:, n], elder[:, n] = n, 1, -1
    births = torch.empty(batch, n, dtype=torch.long, device=device)
    deaths = torch.empty(batch, n, dtype=torch.long, device=device)
    counts = torch.empty(batch, dtype=torch.int32, device=device)
    lanes = triton.next_power_of_2(offsets.shape[0] + (1 if dual else 0))
    _sweep_kernel[(batch,)](
        values.contiguous(),
        order.contiguous(),
        torch.as_tensor(offsets, device=device).contiguous(),
        parent,
        size,
        elder,
        births,
        deaths,
        counts,
        n,
        *shape,
        offsets.shape[0],
        DUAL=dual,
        BOUNDARY_Z=boundary_z,
        LANES=lanes,
        num_warps=1,
    )
    return births, deaths, counts.long()
