"""Cubical persistence of images and volumes: union-find sweeps, the dimension-1 reduction of
volumes, the gudhi CPU backend, dispatch."""

from .core import BACKENDS, CubicalComplex, cubical_persistence

__all__ = ["BACKENDS", "CubicalComplex", "cubical_persistence"]
