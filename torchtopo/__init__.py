"""torchtopo: differentiable, batched topology for PyTorch."""

from . import functional, plot
from .cubical import CubicalComplex, cubical_persistence
from .diagrams import Diagrams
from .distances import bottleneck_distance, sliced_wasserstein_distance, wasserstein_distance
from .rips import VietorisRips, rips_persistence
from .losses import SummaryStatisticLoss, TopologyLoss
from .ripsnet import RipsNet, fit_ripsnet
from .vectorize import (
    BettiCurve,
    ConstantWeight,
    Landscape,
    PersistenceEntropy,
    PersistenceImage,
    PowerWeight,
    Silhouette,
    TopKDWeight,
    Weight,
)

__version__ = "0.1.0"

__all__ = [
    "BettiCurve",
    "ConstantWeight",
    "CubicalComplex",
    "Diagrams",
    "Landscape",
    "PersistenceEntropy",
    "PersistenceImage",
    "PowerWeight",
    "RipsNet",
    "Silhouette",
    "SummaryStatisticLoss",
    "TopKDWeight",
    "TopologyLoss",
    "VietorisRips",
    "Weight",
    "bottleneck_distance",
    "cubical_persistence",
    "fit_ripsnet",
    "rips_persistence",
    "sliced_wasserstein_distance",
    "wasserstein_distance",
]
