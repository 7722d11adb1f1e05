"""Distillers: a :class:`Distiller` base class, the registry and the methods of Tables 1-2.

>>> from topkd.distillers import DISTILLERS
>>> sorted(DISTILLERS)
['at', 'cc', 'crd', 'fitnet', 'kd', 'pkt', 'rkd', 'sp', 'topkd', 'vanilla', 'vid']
"""
from .base import DISTILLERS, Distiller, build_distiller, feature_shapes, kd_loss, register
from .crd import CRD
from .methods import AT, CC, KD, PKT, RKD, SP, VID, FitNet, Vanilla
from .topkd import TopKD

__all__ = ["DISTILLERS", "Distiller", "build_distiller", "feature_shapes", "kd_loss", "register",
           "Vanilla", "KD", "FitNet", "AT", "SP", "CC", "RKD", "PKT", "VID", "CRD", "TopKD"]
