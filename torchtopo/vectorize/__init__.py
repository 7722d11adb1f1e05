"""Vectorizations of persistence diagrams: batched, differentiable, with gudhi's conventions.

One module per summary (``image``, ``landscape``, ``curves``: Betti curves and silhouettes,
``entropy``), each a function and a thin ``nn.Module`` around it; ``weights`` holds the weight
functions they share. Every module takes :class:`~torchtopo.Diagrams` with ``dims``, a padded
``(B, K, 2)`` tensor with a mask, or a list of ``(k, 2)`` tensors, learns what is unset with
``fit`` (kept in ``state_dict()``), and ``module(d).flatten(1)`` equals the ``fit_transform`` of
the gudhi.representations class of the same name on the same diagrams.
"""

from .curves import BettiCurve, Silhouette, betti_curve, persistence_silhouette
from .entropy import PersistenceEntropy, persistence_entropy
from .image import PersistenceImage, persistence_curve, persistence_image
from .landscape import Landscape, persistence_landscape
from .weights import ConstantWeight, PowerWeight, TopKDWeight, Weight, get_weight

__all__ = [
    "Weight",
    "ConstantWeight",
    "PowerWeight",
    "TopKDWeight",
    "get_weight",
    "persistence_image",
    "persistence_curve",
    "persistence_landscape",
    "persistence_silhouette",
    "betti_curve",
    "persistence_entropy",
    "PersistenceImage",
    "Landscape",
    "Silhouette",
    "BettiCurve",
    "PersistenceEntropy",
]
