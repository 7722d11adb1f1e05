"""TopKD (Kim et al., ICML 2024): distil the topology of the teacher's embedding clouds.

Objective: ``gamma * CE + alpha * KD(T) + delta * MSE(RipsNet(proj(f_s)), RipsNet(f_t))`` where
``f_s, f_t`` are pooled features of minibatches of ``cloud_size`` images (each minibatch one
point cloud), RipsNet is the frozen network trained on the teacher's (cloud, persistence
image) pairs, and ``proj`` a learnable linear map (the paper's 1×1 conv) to the teacher's width
when the widths differ. Built on :class:`torchtopo.TopologyLoss` in ``ripsnet`` mode.
"""
from __future__ import annotations

from torch import nn

from .base import Distiller, feature_shapes, register


@register("topkd")
class TopKD(Distiller):
    """TopKD with the official code's defaults: gamma 1, alpha 2 (4 for WRN-40-2 →
    ShuffleNetV1), delta 5, T 4, clouds of 64 points.

    Extra constructor arguments
    ---------------------------
    ripsnet : torchtopo.RipsNet
        The fitted RipsNet (frozen here), mapping clouds ``(n, m, D_t)`` to ``(n, P)``.
    delta : float
        Weight of the topology term.
    cloud_size : int
        Points per cloud ``m``; a batch of ``B`` images holds ``B / m`` clouds.
    """

    defaults = {"gamma": 1.0, "alpha": 2.0, "temperature": 4.0, "delta": 5.0, "cloud_size": 64,
                "ripsnet": None}

    def __init__(self, student, teacher, ripsnet=None, delta=5.0, cloud_size=64, **kw):
        super().__init__(student, teacher, **kw)
        if not isinstance(cloud_size, int) or cloud_size < 2:
            raise ValueError(f"cloud_size must be an int >= 2, got {cloud_size!r}")
        if not isinstance(delta, (int, float)) or delta < 0:
            raise ValueError(f"delta must be a non-negative number, got {delta!r}")
        self.delta, self.cloud_size = float(delta), cloud_size
        self.topology = self._topology_loss(ripsnet, feature_shapes(student, self.input_size)["pooled"],
                                            feature_shapes(teacher, self.input_size)["pooled"])

    def _topology_loss(self, ripsnet, student_dim: int, teacher_dim: int) -> nn.Module:
        """The ``torchtopo.TopologyLoss`` between pooled features, built from the constructor's
        ``ripsnet`` argument (a subclass may take another source there and change the mode)."""
        import torchtopo

        if not isinstance(ripsnet, nn.Module):
            raise TypeError(f"topkd needs a fitted torchtopo.RipsNet as ripsnet, got "
                            f"{type(ripsnet).__name__}")
        return torchtopo.TopologyLoss(mode="ripsnet", ripsnet=ripsnet, cloud_size=self.cloud_size,
                                      student_dim=student_dim, teacher_dim=teacher_dim)

    def method_losses(self, logits_s, feats_s, logits_t, feats_t, **kw):
        return {"topo": self.delta * self.topology(feats_s["pooled"], feats_t["pooled"])}
