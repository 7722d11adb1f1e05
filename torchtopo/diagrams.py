"""A padded, masked batch of persistence diagrams, one entry per homology dimension."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Sequence

import torch
from torch import Tensor

__all__ = ["Diagrams"]

# What the padding rows of each field hold.
_PADDING = {"pairs": 0.0, "mask": False, "birth_edges": -1, "death_edges": -1}


def _pad_rows(t: Tensor, k: int, value) -> Tensor:
    """``t`` ``(B, K, ...)`` padded with ``value`` to ``(B, k, ...)``."""
    if t.shape[1] == k:
        return t
    return torch.cat([t, t.new_full((t.shape[0], k - t.shape[1], *t.shape[2:]), value)], 1)


@dataclass(frozen=True)
class Diagrams:
    r"""Persistence diagrams of a batch of filtrations, padded per homology dimension.

    Entry ``d`` of each field describes the diagrams in homology dimension ``d``
    (``d = 0 .. max_dim``). A batch of ``B`` diagrams with at most ``K_d`` points in dimension
    ``d`` is stored as:

    - ``pairs[d]``: ``(B, K_d, 2)`` floating, columns (birth, death). Padding rows hold zeros.
    - ``mask[d]``: ``(B, K_d)`` bool, True for real pairs.
    - ``birth_edges[d]``: ``(B, K_d, 2)`` long, the vertices ``(i, j)`` of the edge whose
      length is the birth value. In dimension 0 a class is born at a vertex ``v``, stored as the
      degenerate edge ``(v, v)`` (length 0). Padding rows hold ``-1``.
    - ``death_edges[d]``: ``(B, K_d, 2)`` long, the vertices of the edge whose length is the death
      value (the longest edge of the simplex that kills the class). Infinite bars and padding
      rows hold ``-1``.

    Diagrams of a single, unbatched cloud drop the leading ``B`` axis (as ``torch.nn`` modules do
    for unbatched input). The edges are the *generators* that tie each value to the input
    distances; :func:`torchtopo.rips_persistence` gathers the values through them, which is how
    gradients reach the points.

    Examples
    --------
    >>> import torch
    >>> from torchtopo import Diagrams
    >>> dgm = Diagrams.from_list([[torch.tensor([[0.0, 1.0]]), torch.zeros(0, 2)]])
    >>> dgm.pairs[0].shape, dgm.mask[0].tolist()
    (torch.Size([2, 1, 2]), [[True], [False]])
    >>> [t.tolist() for t in dgm.to_list(0)]
    [[[0.0, 1.0]], []]
    """

    pairs: tuple[Tensor, ...]
    mask: tuple[Tensor, ...]
    birth_edges: tuple[Tensor, ...]
    death_edges: tuple[Tensor, ...]

    def __post_init__(self) -> None:
        lengths = {len(getattr(self, f.name)) for f in fields(self)}
        if len(lengths) != 1 or 0 in lengths:
            raise ValueError(
                "Diagrams: pairs, mask, birth_edges and death_edges must hold one entry per "
                f"homology dimension, got lengths {[len(getattr(self, f.name)) for f in fields(self)]}"
            )
        batched = self.pairs[0].dim() == 3
        for d in range(len(self.pairs)):
            pairs, mask = self.pairs[d], self.mask[d]
            lead = pairs.shape[:-1]
            if pairs.dim() != (3 if batched else 2) or pairs.shape[-1] != 2:
                raise ValueError(f"Diagrams: pairs[{d}] must be (B, K, 2) or (K, 2), got {tuple(pairs.shape)}")
            if mask.shape != lead or mask.dtype != torch.bool:
                raise ValueError(f"Diagrams: mask[{d}] must be a bool tensor of shape {tuple(lead)}")
            for name in ("birth_edges", "death_edges"):
                edges = getattr(self, name)[d]
                if edges.shape != pairs.shape:
                    raise ValueError(f"Diagrams: {name}[{d}] must have shape {tuple(pairs.shape)}")

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
            Of the result; by default those of the first tensor (float32 on the CPU if none).
        """
        if len(diagrams) == 0:
            raise ValueError("diagrams must list at least one homology dimension")
        sizes = {len(per_dim) for per_dim in diagrams}
        if len(sizes) != 1:
            raise ValueError(f"diagrams: every dimension must list the same number of clouds, got {sorted(sizes)}")
        first = next((t for per_dim in diagrams for t in per_dim), None)
        dtype = dtype or (first.dtype if first is not None and first.is_floating_point() else torch.float32)
        device = device or (first.device if first is not None else "cpu")
        pairs, masks, edges = [], [], []
        for d, per_dim in enumerate(diagrams):
            tensors = [torch.as_tensor(t, dtype=dtype, device=device).reshape(-1, 2) for t in per_dim]
            k = max((t.shape[0] for t in tensors), default=0)
            padded = torch.zeros(len(tensors), k, 2, dtype=dtype, device=device)
            mask = torch.zeros(len(tensors), k, dtype=torch.bool, device=device)
            for b, t in enumerate(tensors):
                padded[b, : t.shape[0]] = t
                mask[b, : t.shape[0]] = True
            pairs.append(padded)
            masks.append(mask)
            edges.append(torch.full((len(tensors), k, 2), -1, dtype=torch.long, device=device))
        return cls(tuple(pairs), tuple(masks), tuple(edges), tuple(e.clone() for e in edges))

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
        joined = {}
        for f in fields(cls):
            per_dim = []
            for d in range(diagrams[0].max_dim + 1):
                parts = [getattr(x, f.name)[d] for x in diagrams]
                k = max(p.shape[1] for p in parts)
                fill = _PADDING[f.name]
                per_dim.append(torch.cat([_pad_rows(p, k, fill) for p in parts]))
            joined[f.name] = tuple(per_dim)
        return cls(**joined)

    def to_dict(self) -> dict[str, list[Tensor]]:
        """The tensors as a dict of lists (one entry per dimension), for ``torch.save``; plain
        containers of tensors load back with ``torch.load(..., weights_only=True)``.

        >>> import torch
        >>> dgm = Diagrams.from_list([[torch.tensor([[0.0, 1.0]])]])
        >>> Diagrams.from_dict(dgm.to_dict()).pairs[0].equal(dgm.pairs[0])
        True
        """
        return {f.name: list(getattr(self, f.name)) for f in fields(self)}

    @classmethod
    def from_dict(cls, state: dict[str, Sequence[Tensor]]) -> "Diagrams":
        """Rebuild diagrams from :meth:`to_dict`'s dict (validated as the constructor does)."""
        if not isinstance(state, dict):
            raise TypeError(f"state must be a dict written by Diagrams.to_dict, got {type(state).__name__}")
        names = [f.name for f in fields(cls)]
        if sorted(state) != sorted(names):
            raise ValueError(f"state must hold exactly the keys {names}, got {sorted(state)}")
        for name in names:
            if not all(isinstance(t, Tensor) for t in state[name]):
                raise TypeError(f"state[{name!r}] must be a list of tensors")
        return cls(**{name: tuple(state[name]) for name in names})

    def to(self, *args, **kwargs) -> "Diagrams":
        """Move to a device and/or cast the pairs to a floating dtype (``Tensor.to`` arguments).

        Masks stay bool and edges stay long; only their device changes.
        """
        pairs = tuple(p.to(*args, **kwargs) for p in self.pairs)
        device = pairs[0].device
        return Diagrams(
            pairs,
            tuple(m.to(device) for m in self.mask),
            tuple(e.to(device) for e in self.birth_edges),
            tuple(e.to(device) for e in self.death_edges),
        )

    def detach(self) -> "Diagrams":
        """A copy whose pairs do not require gradients."""
        return Diagrams(tuple(p.detach() for p in self.pairs), self.mask, self.birth_edges, self.death_edges)

    def unbatch(self) -> "Diagrams":
        """Drop the batch axis of a batch of one."""
        if not self.is_batched or self.batch_size != 1:
            raise ValueError(f"unbatch needs a batch of exactly one diagram, got batch_size={self.batch_size}")
        return Diagrams(*(tuple(t[0] for t in getattr(self, f.name)) for f in fields(self)))

    def __repr__(self) -> str:
        counts = ", ".join(f"H{d}: {int(m.sum())}" for d, m in enumerate(self.mask))
        lead = f"batch_size={self.batch_size}, " if self.is_batched else ""
        return f"Diagrams({lead}{counts} pairs, dtype={self.dtype}, device={self.device})"
