"""torchtopo: differentiable, batched topology for PyTorch."""

from . import functional, plot
from .cubical import CubicalComplex, cubical_persistence
from .diagrams import Diagrams
from .rips import VietorisRips, rips_persistence
from .losses import TopologyLoss
from .ripsnet import RipsNet, fit_ripsnet
from .vectorize import ConstantWeight, PersistenceImage, PowerWeight, TopKDWeight, Weight

__version__ = "0.1.0"

__all__ = [
    "ConstantWeight",
    "CubicalComplex",
    "Diagrams",
    "PersistenceImage",
    "PowerWeight",
    "RipsNet",
    "TopKDWeight",
    "TopologyLoss",
    "VietorisRips",
    "Weight",
    "cubical_persistence",
    "fit_ripsnet",
    "rips_persistence",
]
