"""Weight functions on the (birth, persistence) plane, shared by the persistence image and the
silhouette, with a registry of named weights so that a vectorizer's weight can be saved."""

from __future__ import annotations

import abc
from typing import Any, Callable, ClassVar, Union

import torch
from torch import Tensor

__all__ = ["Weight", "ConstantWeight", "PowerWeight", "TopKDWeight", "get_weight"]

# get_weight's alias of PowerWeight(1): no class may take it as its name.
_ALIASES = ("linear",)


class Weight(abc.ABC):
    """A weight function on the (birth, persistence) plane, applied to tensors.

    Subclasses implement ``__call__(birth, persistence) -> Tensor`` elementwise on ``(B, K)``
    tensors and list their parameters in ``_params`` so that :meth:`to_config` can save them.
    A subclass that sets ``name`` in its own body is registered under it, and :func:`get_weight`
    finds it by that name; a subclass without one (an abstract intermediate, say) is not
    registered, and a name already taken (``"constant"``, ``"power"``, ``"topkd"``,
    ``"linear"``, or another subclass's) is refused with a ``ValueError``. Any plain callable with
    the same signature is accepted where a weight is expected, but only registered :class:`Weight`
    objects can be saved with a vectorizer.

    Examples
    --------
    >>> class Squared(Weight):
    ...     name = "doc-squared"
    ...     def __call__(self, birth, persistence):
    ...         return persistence**2
    >>> get_weight("doc-squared").to_config()
    {'name': 'doc-squared'}
    """

    name: ClassVar[str]
    _params: ClassVar[tuple[str, ...]] = ()
    _registry: ClassVar[dict[str, type["Weight"]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "name" not in cls.__dict__:
            return
        name = cls.__dict__["name"]
        if not isinstance(name, str) or not name:
            raise TypeError(f"{cls.__qualname__}.name must be a non-empty str, got {name!r}")
        taken = Weight._registry.get(name)
        # A module reloaded in place defines its classes again: that is the same weight.
        same = taken is not None and (taken.__module__, taken.__qualname__) == (cls.__module__, cls.__qualname__)
        if name in _ALIASES or taken is not None and not same:
            owner = "get_weight's alias of PowerWeight(1)" if name in _ALIASES else taken.__qualname__
            raise ValueError(f"{cls.__qualname__}: the weight name {name!r} is taken by {owner}; choose another")
        Weight._registry[name] = cls

    @abc.abstractmethod
    def __call__(self, birth: Tensor, persistence: Tensor) -> Tensor:
        """The weight of each pair, same shape as ``birth`` and ``persistence``."""

    def to_config(self) -> dict[str, Any]:
        """A JSON-able dict; :func:`get_weight` turns it back into the weight."""
        name = type(self).__dict__.get("name")
        if name is None or Weight._registry.get(name) is not type(self):
            raise TypeError(f"to_config: {type(self).__qualname__} is not a registered weight (give it a name)")
        return {"name": name, **{p: getattr(self, p) for p in self._params}}

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other) and all(getattr(self, p) == getattr(other, p) for p in self._params)

    def __hash__(self) -> int:
        return hash((type(self), *(getattr(self, p) for p in self._params)))

    def __repr__(self) -> str:
        args = ", ".join(f"{p}={getattr(self, p)!r}" for p in self._params)
        return f"{type(self).__name__}({args})"


class ConstantWeight(Weight):
    """``w(b, p) = value`` (gudhi's default weight, ``value=1``)."""

    name = "constant"
    _params = ("value",)

    def __init__(self, value: float = 1.0) -> None:
        self.value = float(value)

    def __call__(self, birth: Tensor, persistence: Tensor) -> Tensor:
        return torch.full_like(persistence, self.value)


class PowerWeight(Weight):
    """``w(b, p) = p ** n``; ``n = 1`` is the linear weight (persim's default ``persistence``)."""

    name = "power"
    _params = ("n",)

    def __init__(self, n: float = 1.0) -> None:
        if n <= 0:
            raise ValueError(f"PowerWeight: n must be positive, got {n}")
        self.n = float(n)

    def __call__(self, birth: Tensor, persistence: Tensor) -> Tensor:
        return persistence if self.n == 1.0 else persistence.clamp_min(0).pow(self.n)


class TopKDWeight(Weight):
    """TopKD's official weight ``w(b, p) = 10 tanh(p) + 10 log(100 b + 1)``.

    For H0 of a Rips filtration every birth is 0, so only ``10 tanh(p)`` remains.
    """

    name = "topkd"

    def __call__(self, birth: Tensor, persistence: Tensor) -> Tensor:
        return 10 * torch.tanh(persistence) + 10 * torch.log1p(100 * birth)


WeightLike = Union[str, dict, Weight, Callable[[Tensor, Tensor], Tensor]]


def get_weight(weight: WeightLike) -> Callable[[Tensor, Tensor], Tensor]:
    """Resolve a weight given by name, config dict, :class:`Weight` or callable.

    Names: ``"constant"`` (1), ``"linear"`` (``p``), ``"power"`` (``p``, see :class:`PowerWeight`),
    ``"topkd"`` (:class:`TopKDWeight`), and those of registered :class:`Weight` subclasses.

    >>> get_weight("linear"), get_weight({"name": "power", "n": 2.0})
    (PowerWeight(n=1.0), PowerWeight(n=2.0))
    """
    if isinstance(weight, str):
        if weight == "linear":
            return PowerWeight(1.0)
        if weight not in Weight._registry:
            raise ValueError(f"weight: unknown name {weight!r}, expected one of {[*_ALIASES, *Weight._registry]}")
        return Weight._registry[weight]()
    if isinstance(weight, dict):
        params = dict(weight)
        name = params.pop("name", None)
        if name not in Weight._registry:
            raise ValueError(f"weight: config needs a 'name' in {list(Weight._registry)}, got {weight!r}")
        return Weight._registry[name](**params)
    if callable(weight):
        return weight
    raise TypeError(f"weight must be a name, a config dict or a callable, got {type(weight).__name__}")
