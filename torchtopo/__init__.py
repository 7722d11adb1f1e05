"""torchtopo: differentiable, batched topology for PyTorch."""

from .diagrams import Diagrams
from .rips import VietorisRips, rips_persistence

__version__ = "0.1.0"

__all__ = ["Diagrams", "VietorisRips", "rips_persistence"]
