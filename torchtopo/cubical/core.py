"""``cubical_persistence``: input checks, backend dispatch and the differentiable gather."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .._checks import check_choice, check_finite, check_floating, check_int, check_mask
from ..diagrams import Diagrams
from ..rips.h0 import numba_available
from .pairing import PixelPairing, gather_diagrams

__all__ = ["cubical_persistence", "CubicalComplex", "BACKENDS"]

#: The values of the ``backend`` argument of :func:`cubical_persistence` and :class:`CubicalComplex`
#: (what each computes is described there).
BACKENDS = ("auto", "native", "gudhi")


def _spatial_dims(images: Tensor, spatial_dims: int | None) -> int:
    check_floating(images, "images")
    if spatial_dims is None:
        spatial_dims = 2 if images.dim() in (2, 3) else 3
    elif check_int(spatial_dims, "spatial_dims") not in (2, 3):
        raise ValueError(f"spatial_dims must be 2, 3 or None, got {spatial_dims!r}")
    if images.dim() not in (spatial_dims, spatial_dims + 1):
        shapes = "(B, H, W) or (H, W)" if spatial_dims == 2 else "(B, D, H, W) or (D, H, W)"
        raise ValueError(f"images must be {shapes} for spatial_dims={spatial_dims}, got shape {tuple(images.shape)}")
    if images.numel() == 0:
        raise ValueError(f"images must hold at least one image of at least one pixel, got shape "
                         f"{tuple(images.shape)}")
    return spatial_dims


def _native_pairing(values: Tensor, shape: tuple[int, int, int], spatial_dims: int, max_dim: int) -> PixelPairing:
    """Dimension 0 and the top dimension by union-find sweeps (numba, Triton or torch, by device);
    dimension 1 of volumes by the compiled reduction on the CPU."""
    from .union_find import union_find_pairing

    dual = max_dim == spatial_dims - 1
    h0, top = union_find_pairing(values, shape, spatial_dims, dual)
    per_dim = [h0]
    if spatial_dims == 3 and max_dim >= 1:
        from .reduction import h1_pairing_volumes

        per_dim.append(h1_pairing_volumes(values, shape))
    if dual:
        per_dim.append(top)
    return PixelPairing(*zip(*per_dim))


def cubical_persistence(
    images: Tensor,
    max_dim: int = 1,
    *,
    spatial_dims: int | None = None,
    mask: Tensor | None = None,
    superlevel: bool = False,
    keep_infinite: bool = False,
    backend: str = "auto",
    num_workers: int | None = None,
) -> Diagrams:
    r"""Persistence diagrams of the cubical filtrations of a batch of images or volumes.

    Convention:
        gudhi's ``CubicalComplex(top_dimensional_cells=image)``: each pixel (voxel) is a top
        cell entering at its value, and a lower cell (vertex, edge, face) enters with the
        smallest of the pixels that contain it (the *T-construction*). So two pixels that share
        only a corner are connected: dimension 0 uses 8 neighbours in 2-D, 26 in 3-D.
        ``superlevel=True`` gives the diagrams of ``-images`` (gudhi's
        ``CubicalComplex(top_dimensional_cells=-image)``): a class appearing at the image value
        ``b`` and vanishing at ``d <= b`` is the pair ``(-b, -d)``; negate to read image
        values. Pixel indices are flat, row-major (C order) over the spatial axes: index ``i``
        of an ``(H, W)`` image is ``image[i // W, i % W]`` (gudhi's
        ``cofaces_of_persistence_pairs`` numbers the same pixels in column-major order).
        Infinite bars (one per image in dimension 0, more with ``mask``) are dropped unless
        ``keep_infinite``; pairs of zero persistence are not points of a diagram.

    Which pixel creates and which destroys each class is computed without gradients; the birth
    and death values are then read from ``images`` at those pixels, so gradients flow to them
    (each pair's gradient goes to its two pixels, as for gudhi's and pytorch-topological's
    cubical layers).

    Parameters
    ----------
    images : Tensor
        ``(B, H, W)`` or ``(H, W)`` images, or ``(B, D, H, W)`` or ``(D, H, W)`` volumes,
        floating and finite (masked pixels may hold anything: they are never read).
    max_dim : int
        Highest homology dimension: 0 or 1 for images (components, loops), 0, 1 or 2 for
        volumes (components, tunnels, voids).
    spatial_dims : {2, 3}, optional
        How many trailing axes are spatial. By default 2 for 2-D and 3-D tensors (an image, a
        batch of images) and 3 for 4-D tensors (a batch of volumes); pass ``spatial_dims=3``
        for a single ``(D, H, W)`` volume.
    mask : Tensor, optional
        Bool, the shape of ``images``, True for the pixels of the complex (e.g. padding of
        images of different sizes is False). Masked pixels are left out, as if their value were
        ``+inf``: they never change a result, and a class that could only die at a masked pixel
        is infinite.
    superlevel : bool
        Filter by decreasing values (the sublevel filtration of ``-images``).
    keep_infinite : bool
        Keep infinite bars, with death ``inf``.
    backend : {"auto", "native", "gudhi"}
        ``"native"``: dimension 0, and the top dimension (loops of images, voids of volumes) by
        duality, as union-find sweeps over the sorted pixels (numba on the CPU, images split
        across threads; a Triton kernel for CUDA tensors; tensor operations elsewhere);
        dimension 1 of volumes by a cohomology reduction with clearing (numba, on the CPU).
        ``"gudhi"``: gudhi's ``CubicalComplex`` per image on a thread pool. ``"auto"``: native,
        except dimension 1 of volumes without numba (gudhi).
    num_workers : int, optional
        Threads of the gudhi backend (default: all cores).

    Returns
    -------
    Diagrams
        Per dimension ``d``: ``pairs[d]`` ``(B, K_d, 2)`` in the dtype and on the device of
        ``images``, ``mask[d]``, and ``birth_pixels[d]`` / ``death_pixels[d]`` ``(B, K_d)``
        long flat pixel indices (``-1`` for padding and infinite deaths). Unbatched input gives
        unbatched diagrams.

    Raises
    ------
    TypeError
        If ``images`` or ``mask`` has the wrong type or dtype, or ``max_dim`` or
        ``spatial_dims`` is not an int.
    ValueError
        On a wrong shape, an empty image, NaN or inf among the real pixels, an all-False mask
        image, a ``max_dim`` the images do not have or an unknown backend. (The finiteness check
        is a device-side assert on accelerators: no host sync.)

    Examples
    --------
    >>> import torch
    >>> from torchtopo import cubical_persistence
    >>> ring = torch.tensor([[5.0, 1.0, 1.0, 1.0],
    ...                      [1.0, 4.0, 1.0, 0.0],
    ...                      [1.0, 1.0, 1.0, 1.0]])
    >>> dgm = cubical_persistence(ring, keep_infinite=True)
    >>> dgm.to_list(0)[0].tolist(), dgm.to_list(1)[0].tolist()
    ([[0.0, inf]], [[1.0, 4.0]])
    >>> dgm.birth_pixels[1].tolist(), dgm.death_pixels[1].tolist()  # flat indices into ring
    ([9], [5])
    >>> cubical_persistence(torch.rand(8, 28, 28), max_dim=0).pairs[0].shape[0]
    8
    >>> cubical_persistence(torch.rand(16, 16, 16), max_dim=2, spatial_dims=3).max_dim
    2
    """
    check_choice(backend, "backend", BACKENDS)
    spatial_dims = _spatial_dims(images, spatial_dims)
    if check_int(max_dim, "max_dim", 0) >= spatial_dims:
        raise ValueError(f"max_dim must be in [0, {spatial_dims - 1}] for {spatial_dims}-D images, got {max_dim!r}")
    check_mask(mask, images.shape, masks=("images", images))
    batched = images.dim() == spatial_dims + 1
    if not batched:
        images = images.unsqueeze(0)
        mask = None if mask is None else mask.unsqueeze(0)
    if mask is not None and not mask.flatten(1).any(dim=1).all():
        raise ValueError("mask must keep at least one pixel of every image, got an all-False image")
    check_finite(images, "images", mask)
    spatial = tuple(images.shape[1:])
    values = (-images if superlevel else images).flatten(1)
    if mask is not None:
        values = values.masked_fill(~mask.flatten(1), float("inf"))

    native = backend == "native" or (
        backend == "auto" and (spatial_dims == 2 or max_dim == 0 or numba_available())
    )
    if native:
        shape = (1, *spatial) if spatial_dims == 2 else spatial
        pairing = _native_pairing(values.detach(), shape, spatial_dims, max_dim)
    else:
        from .gudhi_backend import gudhi_pairing

        pairing = gudhi_pairing(values, spatial, max_dim, num_workers=num_workers)
    diagrams = gather_diagrams(values, pairing, keep_infinite=keep_infinite)
    return diagrams if batched else diagrams.unbatch()


class CubicalComplex(nn.Module):
    r"""Module form of :func:`cubical_persistence`: images ``(B, H, W)`` or volumes
    ``(B, D, H, W)`` [+ mask] -> :class:`~torchtopo.Diagrams` with pixel generators.

    Examples
    --------
    >>> import torch
    >>> from torchtopo import CubicalComplex
    >>> layer = CubicalComplex(max_dim=1, superlevel=True)
    >>> dgm = layer(torch.rand(4, 32, 32, requires_grad=True))
    >>> dgm.persistence(1).sum().backward()
    """

    def __init__(
        self,
        max_dim: int = 1,
        *,
        spatial_dims: int | None = None,
        superlevel: bool = False,
        keep_infinite: bool = False,
        backend: str = "auto",
        num_workers: int | None = None,
    ) -> None:
        super().__init__()
        check_choice(backend, "backend", BACKENDS)
        self.max_dim = max_dim
        self.spatial_dims = spatial_dims
        self.superlevel = superlevel
        self.keep_infinite = keep_infinite
        self.backend = backend
        self.num_workers = num_workers

    def forward(self, images: Tensor, *, mask: Tensor | None = None) -> Diagrams:
        return cubical_persistence(
            images,
            self.max_dim,
            spatial_dims=self.spatial_dims,
            mask=mask,
            superlevel=self.superlevel,
            keep_infinite=self.keep_infinite,
            backend=self.backend,
            num_workers=self.num_workers,
        )

    def extra_repr(self) -> str:
        return (
            f"max_dim={self.max_dim}, spatial_dims={self.spatial_dims}, superlevel={self.superlevel}, "
            f"keep_infinite={self.keep_infinite}, backend={self.backend!r}"
        )
