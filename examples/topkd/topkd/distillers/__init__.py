"""Distillers: a :class:`Distiller` base class, the registry and the methods of Tables 1-2.

A new distiller is one module of this package (a :class:`Distiller` subclass decorated with
:func:`register`) plus its import line below.

>>> from topkd.distillers import DISTILLERS
>>> sorted(DISTILLERS)
['at', 'cc', 'crd', 'fitnet', 'kd', 'pkt', 'rkd', 'sp', 'topkd', 'vanilla', 'vid']
"""
from .base import (DISTILLERS, RUNTIME_INPUTS, Distiller, build_distiller, feature_shapes, kd_loss,
                   register, suggest)
from .crd import CRD
from .methods import AT, CC, KD, PKT, RKD, SP, VID, FitNet, Vanilla
from .topkd import TopKD

__all__ = ["DISTILLERS", "RUNTIME_INPUTS", "Distiller", "build_distiller", "feature_shapes",
           "kd_loss", "register", "suggest", "Vanilla", "KD", "FitNet", "AT", "SP", "CC", "RKD",
           "PKT", "VID", "CRD", "TopKD"]
