"""Vectorizations of persistence diagrams: batched, differentiable, with gudhi's conventions."""

from .image import (
    ConstantWeight,
    PersistenceImage,
    PowerWeight,
    TopKDWeight,
    Weight,
    get_weight,
    persistence_curve,
    persistence_image,
)

__all__ = [
    "Weight",
    "ConstantWeight",
    "PowerWeight",
    "TopKDWeight",
    "get_weight",
    "persistence_image",
    "persistence_curve",
    "PersistenceImage",
]
