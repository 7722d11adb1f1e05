"""A padded, masked batch of persistence diagrams, one entry per homology dimension."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from operator import attrgetter
from typing import Callable, Sequence

import numpy as np
import torch
from torch import Tensor

from ._checks import check_floating

__all__ = ["Diagrams"]

# What the padding rows of each field hold.
_PADDING = {"pairs": 0.0, "mask": False, "birth_edges": -1, "death_edges": -1, "birth_pixels": -1, "death_pixels": -1}
# The optional generator fields, by kind: a kind is given in full (both fields) or not at all.
_GENERATORS = {"edges": ("birth_edges", "death_edges"), "pixels": ("birth_pixels", "death_pixels")}


def _pad_rows(t: Tensor, k: int, value) -> Tensor:
    """``t`` ``(B, K, ...)`` padded with ``value`` to ``(B, k, ...)``."""
    if t.shape[1] == k:
        return t
    return torch.cat([t, t.new_full((t.shape[0], k - t.shape[1], *t.shape[2:]), value)], 1)


def pad_list(diagrams: Sequence[Tensor], name: str) -> tuple[Tensor, Tensor]:
    """A list of ``B`` diagrams, each a ``(k_b, 2)`` floating-point tensor on one device, as
    ``(pairs (B, K, 2), mask (B, K))`` with ``K = max k_b`` (padding rows hold zeros); the
    dtype is the tensors' promoted one (float32 on the CPU for an empty list). Differentiable
    with respect to every tensor. The entries are checked in bulk (a few passes in C); only when
    that fails does a loop over them name the first bad one (``name[i]``): small diagrams would
    otherwise spend more time in the checks than in what they are packed for.
    """
    diagrams = list(diagrams)
    if not diagrams:
        return torch.zeros(0, 0, 2), torch.zeros(0, 0, dtype=torch.bool)
    try:
        flat = torch.cat(diagrams)  # (an error for non-tensors, mixed devices, ranks or widths)
        ranks = sum(map(Tensor.dim, diagrams))  # (torch.cat skips 1-D empty tensors)
        floating = all(dtype.is_floating_point for dtype in set(map(attrgetter("dtype"), diagrams)))
    except (TypeError, RuntimeError):
        floating = False
    if not (floating and ranks == 2 * len(diagrams) and flat.dim() == 2 and flat.shape[1] == 2
            and flat.device.type != "meta"):
        for i, t in enumerate(diagrams):
            check_floating(t, f"{name}[{i}]")
            if t.dim() != 2 or t.shape[1] != 2:
                raise ValueError(f"{name}[{i}] must be a (k, 2) tensor, got shape {tuple(t.shape)}")
            if t.device != diagrams[0].device:
                raise ValueError(f"{name}[{i}] is on {t.device} and {name}[0] on {diagrams[0].device}: "
                                 "the diagrams must be on one device")
        flat = torch.cat(diagrams)  # (what the checks above do not name raises here, in torch's words)
    # (numel and dim are the attributes read fastest: .shape builds a torch.Size per tensor; the
    # mask is built in NumPy, whose calls cost a fraction of torch's on arrays this small)
    counts = np.fromiter(map(Tensor.numel, diagrams), np.int64, len(diagrams)) // 2
    mask = torch.from_numpy(np.arange(counts.max()) < counts[:, None]).to(flat.device)
    # one concatenation and one scatter for the whole list: a copy per diagram would cost more
    # than the copying itself for the small diagrams of a batch
    pairs = flat.new_zeros(*mask.shape, 2).masked_scatter(mask.unsqueeze(-1), flat)
    return pairs, mask


@dataclass(frozen=True)
class Diagrams:
    r"""Persistence diagrams of a batch of filtrations, padded per homology dimension.

    Entry ``d`` of each field describes the diagrams in homology dimension ``d``
    (``d = 0 .. max_dim``). A batch of ``B`` diagrams with at most ``K_d`` points in dimension
    ``d`` is stored as:

    - ``pairs[d]``: ``(B, K_d, 2)`` floating, columns (birth, death). Padding rows hold zeros.
    - ``mask[d]``: ``(B, K_d)`` bool, True for real pairs.

    and, where the filtration is known, the *generators* that tie each value to the input: the
    values are gathered through them, which is how gradients reach the input. Each kind is given
    in full (both fields) or is ``None``:

    - Rips diagrams (:func:`torchtopo.rips_persistence`) carry edges:

      - ``birth_edges[d]``: ``(B, K_d, 2)`` long, the vertices ``(i, j)`` of the edge whose
        length is the birth value. In dimension 0 a class is born at a vertex ``v``, stored as
        the degenerate edge ``(v, v)`` (length 0). Padding rows hold ``-1``.
      - ``death_edges[d]``: ``(B, K_d, 2)`` long, the vertices of the edge whose length is the
        death value (the longest edge of the simplex that kills the class). Infinite bars and
        padding rows hold ``-1``.

    - Cubical diagrams (:func:`torchtopo.cubical_persistence`) carry pixels:

      - ``birth_pixels[d]``: ``(B, K_d)`` long, the flat (row-major, C-order) index into the
        image (or volume) of the pixel whose value is the birth value: the top cell that creates
        the class, as gudhi's ``cofaces_of_persistence_pairs`` reports it. Padding rows hold
        ``-1``.
      - ``death_pixels[d]``: ``(B, K_d)`` long, the pixel whose value is the death value (the
        top cell whose entry destroys the class). Infinite bars and padding rows hold ``-1``.

    Diagrams made from values alone (:meth:`from_list`) hold edges of ``-1``. Diagrams of a
    single, unbatched input drop the leading ``B`` axis (as ``torch.nn`` modules do for
    unbatched input).

    Examples
    --------
    >>> import torch
    >>> from torchtopo import Diagrams
    >>> dgm = Diagrams.from_list([[torch.tensor([[0.0, 1.0]]), torch.zeros(0, 2)]])
    >>> dgm.pairs[0].shape, dgm.mask[0].tolist()
    (torch.Size([2, 1, 2]), [[True], [False]])
    >>> [t.tolist() for t in dgm.to_list(0)]
    [[[0.0, 1.0]], []]
    >>> dgm.birth_pixels is None  # edge generators (unknown: -1), no pixel generators
    True
    """

    pairs: tuple[Tensor, ...]
    mask: tuple[Tensor, ...]
    birth_edges: tuple[Tensor, ...] | None = None
    death_edges: tuple[Tensor, ...] | None = None
    birth_pixels: tuple[Tensor, ...] | None = None
    death_pixels: tuple[Tensor, ...] | None = None

    def __post_init__(self) -> None:
        if self.pairs is None or self.mask is None:
            raise ValueError("Diagrams: pairs and mask are required")
        for birth, death in _GENERATORS.values():
            if (getattr(self, birth) is None) != (getattr(self, death) is None):
                raise ValueError(f"Diagrams: {birth} and {death} must both be given or both be None")
        if self.birth_edges is not None and self.birth_pixels is not None:
            raise ValueError("Diagrams: generators are edges (Rips) or pixels (cubical), not both")
        given = self._given()
        lengths = [len(getattr(self, name)) for name in given]
        if len(set(lengths)) != 1 or 0 in lengths:
            raise ValueError(
                f"Diagrams: {', '.join(given)} must hold one entry per homology dimension, got lengths {lengths}"
            )
        batched = self.pairs[0].dim() == 3
        for d in range(len(self.pairs)):
            pairs, mask = self.pairs[d], self.mask[d]
            lead = pairs.shape[:-1]
            if pairs.dim() != (3 if batched else 2) or pairs.shape[-1] != 2:
                raise ValueError(f"Diagrams: pairs[{d}] must be (B, K, 2) or (K, 2), got {tuple(pairs.shape)}")
            if mask.shape != lead or mask.dtype != torch.bool:
                raise ValueError(f"Diagrams: mask[{d}] must be a bool tensor of shape {tuple(lead)}")
            for name in given:
                if name in ("pairs", "mask"):
                    continue
                shape = pairs.shape if name.endswith("edges") else lead
                generators = getattr(self, name)[d]
                if generators.shape != shape or generators.dtype != torch.long:
                    raise ValueError(f"Diagrams: {name}[{d}] must be a long tensor of shape {tuple(shape)}, got "
                                     f"{generators.dtype} {tuple(generators.shape)}")

    @classmethod
    def unchecked(cls, pairs: tuple[Tensor, ...], mask: tuple[Tensor, ...], birth_edges: tuple[Tensor, ...],
                  death_edges: tuple[Tensor, ...]) -> "Diagrams":
        """Rips diagrams from fields a kernel has just built to the rules above, without the
        checks of the constructor (a tenth of a small ``rips_persistence`` call)."""
        diagrams = object.__new__(cls)
        for name, value in (("pairs", pairs), ("mask", mask), ("birth_edges", birth_edges),
                            ("death_edges", death_edges), ("birth_pixels", None), ("death_pixels", None)):
            object.__setattr__(diagrams, name, value)
        return diagrams

    def _given(self) -> list[str]:
        """The names of the fields that are not None, in declaration order."""
        return [f.name for f in fields(self) if getattr(self, f.name) is not None]

    def _map(self, fn: Callable[[str, Tensor], Tensor]) -> "Diagrams":
        """A copy with ``fn(name, tensor)`` applied to every tensor of every given field."""
        return replace(self, **{name: tuple(fn(name, t) for t in getattr(self, name)) for name in self._given()})

    @property
    def max_dim(self) -> int:
        """The highest homology dimension held."""
        return len(self.pairs) - 1

    @property
    def is_batched(self) -> bool:
        """Whether the tensors carry a leading batch axis."""
        return self.pairs[0].dim() == 3

    @property
    def batch_size(self) -> int:
        """Number of diagrams per dimension (1 for an unbatched diagram)."""
        return self.pairs[0].shape[0] if self.is_batched else 1

    @property
    def device(self) -> torch.device:
        return self.pairs[0].device

    @property
    def dtype(self) -> torch.dtype:
        return self.pairs[0].dtype

    def _check_dim(self, dim: int) -> None:
        if not 0 <= dim <= self.max_dim:
            raise ValueError(f"dim must be in [0, {self.max_dim}], got {dim}")

    def persistence(self, dim: int) -> Tensor:
        """Death minus birth, ``(B, K_d)``; padding entries are 0."""
        self._check_dim(dim)
        pairs = self.pairs[dim]
        return torch.where(self.mask[dim], pairs[..., 1] - pairs[..., 0], torch.zeros_like(pairs[..., 0]))

    def to_list(self, dim: int) -> list[Tensor]:
        """The real pairs of dimension ``dim``: one ``(k_i, 2)`` tensor per diagram."""
        self._check_dim(dim)
        pairs, mask = self.pairs[dim], self.mask[dim]
        if not self.is_batched:
            return [pairs[mask]]
        return [p[m] for p, m in zip(pairs, mask)]

    @classmethod
    def from_list(
        cls,
        diagrams: Sequence[Sequence[Tensor]],
        *,
        dtype: torch.dtype | None = None,
        device: torch.device | str | None = None,
    ) -> "Diagrams":
        """Pad a list of diagrams into a batch.

        Parameters
        ----------
        diagrams
            ``diagrams[d][b]`` is the ``(k, 2)`` diagram of cloud ``b`` in dimension ``d``.
            Every dimension must list the same number of clouds. Generators are unknown and
            stored as ``-1``.
        dtype, device
            Of the result; by default those of the first dimension that lists clouds (the
            promoted dtype of its tensors), float32 on the CPU if none.

        Raises
        ------
        TypeError
            When an entry is not a floating-point tensor (``diagrams[d][b]`` named).
        ValueError
            When an entry is not ``(k, 2)``, the entries of one dimension are on different
            devices, or the dimensions list different numbers of clouds.
        """
        if len(diagrams) == 0:
            raise ValueError("diagrams must list at least one homology dimension")
        sizes = {len(per_dim) for per_dim in diagrams}
        if len(sizes) != 1:
            raise ValueError(f"diagrams: every dimension must list the same number of clouds, got {sorted(sizes)}")
        packed = [pad_list(per_dim, f"diagrams[{d}]") for d, per_dim in enumerate(diagrams)]
        first = next((pairs for pairs, _ in packed if pairs.shape[0]), packed[0][0])
        dtype, device = dtype or first.dtype, device or first.device
        pairs = tuple(p.to(dtype=dtype, device=device) for p, _ in packed)
        masks = tuple(m.to(device) for _, m in packed)
        edges = tuple(torch.full(p.shape, -1, dtype=torch.long, device=device) for p in pairs)
        return cls(pairs, masks, edges, tuple(e.clone() for e in edges))

    @classmethod
    def cat(cls, diagrams: Sequence["Diagrams"]) -> "Diagrams":
        """Concatenate batches along the batch axis, padding each dimension to the longest ``K_d``.

        Every entry must be batched and hold the same homology dimensions, on one device.

        >>> import torch
        >>> a = Diagrams.from_list([[torch.tensor([[0.0, 1.0]])]])
        >>> b = Diagrams.from_list([[torch.tensor([[0.0, 2.0], [0.0, 3.0]])]])
        >>> Diagrams.cat([a, b]).mask[0].tolist()
        [[True, False], [True, True]]
        """
        diagrams = list(diagrams)
        if not diagrams or not all(isinstance(d, Diagrams) for d in diagrams):
            raise TypeError("diagrams must be a non-empty sequence of Diagrams")
        if not all(d.is_batched for d in diagrams):
            raise ValueError("Diagrams.cat needs batched diagrams; unbatched ones have no batch axis to join")
        if len({d.max_dim for d in diagrams}) != 1:
            raise ValueError(f"Diagrams.cat: every entry must hold the same dimensions, got max_dim "
                             f"{sorted({d.max_dim for d in diagrams})}")
        if len(diagrams) == 1:
            return diagrams[0]
        given = diagrams[0]._given()
        if any(d._given() != given for d in diagrams):
            raise ValueError(f"Diagrams.cat: every entry must carry the same generators, got fields "
                             f"{sorted({tuple(d._given()) for d in diagrams})}")
        joined = {}
        for name in given:
            per_dim = []
            for d in range(diagrams[0].max_dim + 1):
                parts = [getattr(x, name)[d] for x in diagrams]
                k = max(p.shape[1] for p in parts)
                per_dim.append(torch.cat([_pad_rows(p, k, _PADDING[name]) for p in parts]))
            joined[name] = tuple(per_dim)
        return cls(**joined)

    def to_dict(self) -> dict[str, list[Tensor]]:
        """The tensors as a dict of lists (one entry per dimension), for ``torch.save``; plain
        containers of tensors load back with ``torch.load(..., weights_only=True)``. Generator
        fields that are None are left out.

        >>> import torch
        >>> dgm = Diagrams.from_list([[torch.tensor([[0.0, 1.0]])]])
        >>> sorted(dgm.to_dict())
        ['birth_edges', 'death_edges', 'mask', 'pairs']
        >>> Diagrams.from_dict(dgm.to_dict()).pairs[0].equal(dgm.pairs[0])
        True
        """
        return {name: list(getattr(self, name)) for name in self._given()}

    @classmethod
    def from_dict(cls, state: dict[str, Sequence[Tensor]]) -> "Diagrams":
        """Rebuild diagrams from :meth:`to_dict`'s dict (validated as the constructor does)."""
        if not isinstance(state, dict):
            raise TypeError(f"state must be a dict written by Diagrams.to_dict, got {type(state).__name__}")
        names = [f.name for f in fields(cls)]
        if not {"pairs", "mask"} <= set(state) <= set(names):
            raise ValueError(f"state must hold exactly the keys pairs, mask and any generator fields of {names}, "
                             f"got {sorted(state)}")
        for name in state:
            if not all(isinstance(t, Tensor) for t in state[name]):
                raise TypeError(f"state[{name!r}] must be a list of tensors")
        return cls(**{name: tuple(tensors) for name, tensors in state.items()})

    def to(self, *args, **kwargs) -> "Diagrams":
        """Move to a device and/or cast the pairs to a floating dtype (``Tensor.to`` arguments).

        Masks stay bool and generators stay long; only their device changes.
        """
        device = self.pairs[0].to(*args, **kwargs).device
        return self._map(lambda name, t: t.to(*args, **kwargs) if name == "pairs" else t.to(device))

    def detach(self) -> "Diagrams":
        """A copy whose pairs do not require gradients."""
        return replace(self, pairs=tuple(p.detach() for p in self.pairs))

    def unbatch(self) -> "Diagrams":
        """Drop the batch axis of a batch of one."""
        if not self.is_batched or self.batch_size != 1:
            raise ValueError(f"unbatch needs a batch of exactly one diagram, got batch_size={self.batch_size}")
        return self._map(lambda name, t: t[0])

    def __repr__(self) -> str:
        counts = ", ".join(f"H{d}: {int(m.sum())}" for d, m in enumerate(self.mask))
        lead = f"batch_size={self.batch_size}, " if self.is_batched else ""
        return f"Diagrams({lead}{counts} pairs, dtype={self.dtype}, device={self.device})"
