"""Vietoris–Rips persistence: distances, native batched H0, the gudhi CPU backend, dispatch."""

from .core import BACKENDS, VietorisRips, rips_persistence
from .distances import pairwise_distances

__all__ = ["BACKENDS", "VietorisRips", "pairwise_distances", "rips_persistence"]
