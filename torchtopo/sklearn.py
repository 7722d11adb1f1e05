"""scikit-learn transformers over torchtopo's vectorizations (needs scikit-learn).

Drop-in counterparts of gudhi.representations' classes of the same names: ``fit`` /
``transform`` / ``fit_transform`` on a list of ``(k, 2)`` NumPy diagrams (birth, death) of one
homology dimension, returning a ``(n_diagrams, n_features)`` float64 array, with
``get_params`` / ``set_params``, so that they go into a :class:`sklearn.pipeline.Pipeline` and
a :class:`sklearn.model_selection.GridSearchCV`. Each wraps the torchtopo module of the same
summary (batched: one call for the whole list) and keeps it, fitted, as ``vectorizer_``;
``device`` chooses where it computes.

>>> import numpy as np
>>> from sklearn.pipeline import make_pipeline
>>> from sklearn.svm import SVC
>>> from torchtopo.sklearn import Landscape  # not torchtopo.Landscape, the nn.Module it wraps
>>> diagrams = [np.array([[0.0, 1.0]]), np.array([[0.0, 3.0], [1.0, 1.5]])] * 4
>>> model = make_pipeline(Landscape(num_landscapes=2, resolution=10), SVC()).fit(diagrams, [0, 1] * 4)
>>> model.predict([np.array([[0.0, 2.9]])])
array([1])
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from . import vectorize
from .vectorize.weights import WeightLike

__all__ = ["PersistenceImage", "Landscape", "Silhouette", "BettiCurve", "Entropy"]

NAN = float("nan")


def _tensors(X: Any, device: str | torch.device) -> list[torch.Tensor]:
    if isinstance(X, (str, bytes)) or not isinstance(X, Sequence) and not isinstance(X, np.ndarray):
        raise TypeError(f"X must be a list of (k, 2) arrays, got {type(X).__name__}")
    if len(X) == 0:
        raise ValueError("X must hold at least one diagram")
    out = []
    for i, diagram in enumerate(X):
        array = np.asarray(diagram, dtype=np.float64)
        if array.size == 0:
            array = array.reshape(0, 2)
        if array.ndim != 2 or array.shape[1] != 2:
            raise ValueError(f"X[{i}] must be a (k, 2) array of (birth, death) pairs, got shape {array.shape}")
        out.append(torch.from_numpy(array).to(device))
    return out


class _Transformer(TransformerMixin, BaseEstimator):
    """``fit`` builds the torchtopo module from the parameters and fits it; ``transform`` runs it."""

    def _module(self) -> vectorize._base.Vectorizer:
        raise NotImplementedError

    def fit(self, X: Sequence[np.ndarray], y: Any = None) -> "_Transformer":
        """Fit the vectorizer on the diagrams ``X`` (what its parameters leave unset); ``y`` is
        ignored."""
        self.vectorizer_ = self._module().fit(_tensors(X, self.device))
        return self

    def transform(self, X: Sequence[np.ndarray]) -> np.ndarray:
        """``(len(X), n_features)`` float64 features of the diagrams ``X``."""
        check_is_fitted(self, "vectorizer_")
        with torch.no_grad():
            return self.vectorizer_(_tensors(X, self.device)).flatten(1).cpu().numpy()


class PersistenceImage(_Transformer):
    """Persistence images (:class:`torchtopo.PersistenceImage`), gudhi's convention by default.

    Parameters as :class:`torchtopo.PersistenceImage` (``im_range`` entries NaN or None are
    fitted; ``bandwidth="quantile"`` too), in gudhi's order; ``device`` where it computes.
    """

    def __init__(self, bandwidth: float | str = 1.0, weight: WeightLike = "constant",
                 resolution: Sequence[int] = (20, 20), im_range: Sequence[float | None] = (NAN, NAN, NAN, NAN),
                 *, convention: str = "gudhi", quantile: float = 0.2, normalize: bool = False,
                 infinite: str = "drop", device: str = "cpu") -> None:
        self.bandwidth, self.weight, self.resolution, self.im_range = bandwidth, weight, resolution, im_range
        self.convention, self.quantile, self.normalize = convention, quantile, normalize
        self.infinite, self.device = infinite, device

    def _module(self) -> vectorize.PersistenceImage:
        return vectorize.PersistenceImage(self.resolution, self.bandwidth, self.weight, self.im_range, dims=(1,),
                                          convention=self.convention, quantile=self.quantile,
                                          normalize=self.normalize, infinite=self.infinite)


class Landscape(_Transformer):
    """Persistence landscapes (:class:`torchtopo.Landscape`); parameters as gudhi's
    ``Landscape``, ``device`` where it computes."""

    def __init__(self, num_landscapes: int = 5, resolution: int = 100,
                 sample_range: Sequence[float | None] = (NAN, NAN), *, keep_endpoints: bool = False,
                 infinite: str = "drop", device: str = "cpu") -> None:
        self.num_landscapes, self.resolution, self.sample_range = num_landscapes, resolution, sample_range
        self.keep_endpoints, self.infinite, self.device = keep_endpoints, infinite, device

    def _module(self) -> vectorize.Landscape:
        return vectorize.Landscape(self.num_landscapes, self.resolution, self.sample_range,
                                   keep_endpoints=self.keep_endpoints, infinite=self.infinite)


class Silhouette(_Transformer):
    """Persistence silhouettes (:class:`torchtopo.Silhouette`); parameters as gudhi's
    ``Silhouette`` (the weight a torchtopo weight: ``PowerWeight(n)`` for gudhi's ``lambda x:
    (x[1] - x[0]) ** n``), ``device`` where it computes."""

    def __init__(self, weight: WeightLike = "constant", resolution: int = 100,
                 sample_range: Sequence[float | None] = (NAN, NAN), *, keep_endpoints: bool = False,
                 infinite: str = "drop", device: str = "cpu") -> None:
        self.weight, self.resolution, self.sample_range = weight, resolution, sample_range
        self.keep_endpoints, self.infinite, self.device = keep_endpoints, infinite, device

    def _module(self) -> vectorize.Silhouette:
        return vectorize.Silhouette(self.weight, self.resolution, self.sample_range,
                                    keep_endpoints=self.keep_endpoints, infinite=self.infinite)


class BettiCurve(_Transformer):
    """Betti curves (:class:`torchtopo.BettiCurve`); parameters as gudhi's ``BettiCurve``
    (``resolution=None`` for the exact curve), ``device`` where it computes."""

    def __init__(self, resolution: int | None = 100, sample_range: Sequence[float | None] = (NAN, NAN),
                 predefined_grid: Sequence[float] | None = None, *, keep_endpoints: bool = False,
                 infinite: str = "drop", device: str = "cpu") -> None:
        self.resolution, self.sample_range, self.predefined_grid = resolution, sample_range, predefined_grid
        self.keep_endpoints, self.infinite, self.device = keep_endpoints, infinite, device

    def _module(self) -> vectorize.BettiCurve:
        return vectorize.BettiCurve(self.resolution, self.sample_range, self.predefined_grid,
                                    keep_endpoints=self.keep_endpoints, infinite=self.infinite)


class Entropy(_Transformer):
    """Persistence entropy (:class:`torchtopo.PersistenceEntropy`); parameters as gudhi's
    ``Entropy``, ``device`` where it computes."""

    def __init__(self, mode: str = "scalar", normalized: bool = True, resolution: int = 100,
                 sample_range: Sequence[float | None] = (NAN, NAN), *, keep_endpoints: bool = False,
                 infinite: str = "drop", device: str = "cpu") -> None:
        self.mode, self.normalized, self.resolution, self.sample_range = mode, normalized, resolution, sample_range
        self.keep_endpoints, self.infinite, self.device = keep_endpoints, infinite, device

    def _module(self) -> vectorize.PersistenceEntropy:
        return vectorize.PersistenceEntropy(self.mode, self.normalized, self.resolution, self.sample_range,
                                            keep_endpoints=self.keep_endpoints, infinite=self.infinite)
