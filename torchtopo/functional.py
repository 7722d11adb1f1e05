"""Functional forms of torchtopo's modules, as ``torch.nn.functional`` is to ``torch.nn``.

>>> import torch
>>> import torchtopo.functional as TF
>>> dgm = TF.rips_persistence(torch.randn(4, 32, 2), max_dim=1)
>>> TF.persistence_image(dgm.pairs[1], mask=dgm.mask[1], im_range=(0, 1, 0, 1), bandwidth=0.1).shape
torch.Size([4, 20, 20])
"""

from .cubical import cubical_persistence
from .distances import bottleneck_distance, sliced_wasserstein_distance, wasserstein_distance
from .losses import signature_loss, summary_statistic_loss, topology_loss
from .rips import rips_persistence
from .ripsnet import masked_pool, segment_pool
from .vectorize import (
    betti_curve,
    persistence_curve,
    persistence_entropy,
    persistence_image,
    persistence_landscape,
    persistence_silhouette,
)

__all__ = [
    "betti_curve",
    "bottleneck_distance",
    "cubical_persistence",
    "masked_pool",
    "persistence_curve",
    "persistence_entropy",
    "persistence_image",
    "persistence_landscape",
    "persistence_silhouette",
    "rips_persistence",
    "segment_pool",
    "signature_loss",
    "sliced_wasserstein_distance",
    "summary_statistic_loss",
    "topology_loss",
    "wasserstein_distance",
]
