"""Common interface of the CIFAR model zoo.

Every model maps images ``(B, 3, H, W)`` to ``(logits, features)`` where ``logits`` is
``(B, num_classes)`` and ``features`` is a dict with

``stages``
    list of stage outputs, stem first, each ``(B, C_i, H_i, W_i)``;
``preact_stages``
    the same stages taken before their last ReLU (equal to ``stages`` where a stage ends
    without a ReLU);
``pooled``
    the vector the classifier sees, ``(B, C_pooled)``.

Channel counts are reported by :meth:`CifarModel.feature_channels`, so distillation connectors
are sized from the models and never by hand.
"""
from __future__ import annotations

import abc

from typing import Dict, List

import torch
from torch import nn


class CifarModel(nn.Module, abc.ABC):
    """Base class: subclasses set ``stage_channels`` and ``pooled_channels`` and implement
    :meth:`forward_features`.

    Attributes
    ----------
    stage_channels : list of int
        Channels of each entry of ``features["stages"]``.
    pooled_channels : int
        Length of ``features["pooled"]``.
    """

    stage_channels: List[int]
    pooled_channels: int

    def feature_channels(self) -> Dict[str, object]:
        """Channel counts of the features.

        Returns
        -------
        dict
            ``{"stages": [C_0, ..., C_k], "pooled": C_pooled}``.
        """
        return {"stages": list(self.stage_channels), "pooled": int(self.pooled_channels)}

    @abc.abstractmethod
    def forward_features(self, x: torch.Tensor):
        """Return ``(stages, preact_stages, pooled)``; see the module docstring."""

    @abc.abstractmethod
    def classify(self, pooled: torch.Tensor) -> torch.Tensor:
        """Map the pooled vector ``(B, C_pooled)`` to logits ``(B, num_classes)``."""

    def forward(self, x: torch.Tensor):
        """Compute logits and features.

        Parameters
        ----------
        x : torch.Tensor
            Images ``(B, 3, H, W)`` (32×32 for CIFAR).

        Returns
        -------
        logits : torch.Tensor
            ``(B, num_classes)``.
        features : dict
            ``stages`` (list of ``(B, C_i, H_i, W_i)``), ``preact_stages`` (same shapes),
            ``pooled`` ``(B, C_pooled)``.
        """
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"x must have shape (B, 3, H, W), got {tuple(x.shape)}")
        stages, preact, pooled = self.forward_features(x)
        return self.classify(pooled), {"stages": stages, "preact_stages": preact, "pooled": pooled}
