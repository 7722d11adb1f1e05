"""TopKD (Kim et al., ICML 2024): distil the topology of the teacher's embedding clouds.

Objective: ``gamma * CE + alpha * KD(T) + delta * MSE(RipsNet(proj(f_s)), RipsNet(f_t))`` where
``f_s, f_t`` are pooled features of minibatches of ``cloud_size`` images (each minibatch one
point cloud), RipsNet is the frozen network trained on the teacher's (cloud, persistence
image) pairs, and ``proj`` a learnable linear map (the paper's 1×1 conv) to the teacher's width
when the widths differ. Built on :class:`torchtopo.TopologyLoss` in ``ripsnet`` mode.

Everything TopKD needs from the pipeline is declared here: the fitted RipsNet, the cloud size
and the batch size (run-time inputs) and, under DDP, clouds cut from the global batch when they
do not fit a rank's share (:meth:`TopKD.prepare_distributed`).
"""
from __future__ import annotations

from typing import List, Optional

from torch import nn

from .. import distributed as D
from .base import Distiller, check_weight, feature_shapes, register


@register("topkd")
class TopKD(Distiller):
    """TopKD with the official code's defaults: gamma 1, alpha 2 (4 for WRN-40-2 →
    ShuffleNetV1), delta 5, T 4, clouds of 64 points.

    Extra constructor arguments
    ---------------------------
    ripsnet : torchtopo.RipsNet
        The fitted RipsNet (frozen here), mapping clouds ``(n, m, D_t)`` to ``(n, P)``
        (a run-time input).
    delta : float
        Weight of the topology term.
    cloud_size : int
        Points per cloud ``m``; a batch of ``B`` images holds ``B / m`` clouds (a run-time
        input).
    batch_size : int, optional
        The global batch (a run-time input): when given, it must hold whole clouds, and with
        ``gather=False`` so must each rank's share.
    gather : bool, optional
        Under DDP, cut clouds from the global batch (the pooled features of every rank
        gathered first); ``None``: only when ``cloud_size`` does not divide the per-rank batch.
    """

    runtime_inputs = {"ripsnet": "ripsnet", "cloud_size": "cloud_size",
                      "batch_size": "batch_size", "gather": "gather_clouds"}

    def __init__(self, student, teacher, ripsnet=None, delta=5.0, gamma=1.0, alpha=2.0,
                 temperature=4.0, cloud_size=64, batch_size=None, gather=None, **kw):
        super().__init__(student, teacher, gamma=gamma, alpha=alpha, temperature=temperature,
                         **kw)
        if isinstance(cloud_size, bool) or not isinstance(cloud_size, int) or cloud_size < 2:
            raise ValueError(f"cloud_size must be an int >= 2, got {cloud_size!r}")
        if gather not in (None, True, False):
            raise ValueError(f"gather must be true, false or null, got {gather!r}")
        self.delta, self.cloud_size, self.gather = check_weight("delta", delta), cloud_size, gather
        if batch_size is not None:
            if batch_size % cloud_size:
                raise ValueError(f"the batch size ({batch_size}) must be a multiple of the cloud "
                                 f"size ({cloud_size}): each minibatch holds whole point clouds")
            self._gathers(batch_size // D.world_size())
        self.topology = self._topology_loss(ripsnet, feature_shapes(student, self.input_size)["pooled"],
                                            feature_shapes(teacher, self.input_size)["pooled"])
        self._cross_rank_hook = None

    def _topology_loss(self, ripsnet, student_dim: int, teacher_dim: int) -> nn.Module:
        """The ``torchtopo.TopologyLoss`` between pooled features, built from the constructor's
        ``ripsnet`` argument (a subclass may take another source there and change the mode)."""
        import torchtopo

        if not isinstance(ripsnet, nn.Module):
            raise TypeError(f"topkd needs a fitted torchtopo.RipsNet as ripsnet, got "
                            f"{type(ripsnet).__name__}")
        return torchtopo.TopologyLoss(mode="ripsnet", ripsnet=ripsnet, cloud_size=self.cloud_size,
                                      student_dim=student_dim, teacher_dim=teacher_dim)

    def _gathers(self, local_batch_size: Optional[int]) -> bool:
        """Whether clouds are cut from the global batch for this per-rank batch size."""
        if local_batch_size is None:
            return bool(self.gather)
        fits = local_batch_size % self.cloud_size == 0
        if self.gather is False and not fits:
            raise ValueError(f"the cloud size ({self.cloud_size}) must divide the per-rank batch "
                             f"({local_batch_size}) when gather is false (topology.gather)")
        return self.gather if self.gather is not None else not fits

    def prepare_distributed(self, local_batch_size: Optional[int]) -> List[nn.Module]:
        """Cut clouds from the global batch when :meth:`_gathers` says so: a forward pre-hook on
        the topology loss gathers the student's pooled features of every rank with gradients
        flowing back to each rank's own rows (:func:`topkd.distributed.all_gather_with_grad`)
        and the teacher's without. Every rank then computes the same loss, on the clouds one
        process with the global batch forms; DDP's averaging makes the gradient exact."""
        if self._gathers(local_batch_size) and self._cross_rank_hook is None:
            def gather(module, args):
                return (D.all_gather_with_grad(args[0]), D.all_gather_nograd(args[1])) + \
                    tuple(args[2:])

            self._cross_rank_hook = self.topology.register_forward_pre_hook(gather)
        return []

    def feature_projection(self) -> Optional[nn.Module]:
        """The learned linear map to the teacher's width (``None`` when the widths agree)."""
        return self.topology.projection

    def method_losses(self, logits_s, feats_s, logits_t, feats_t, **kw):
        return {"topo": self.delta * self.topology(feats_s["pooled"], feats_t["pooled"])}
