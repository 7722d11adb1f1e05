"""CRD (Tian et al. 2020): contrastive representation distillation with two memory banks.

Everything CRD needs from the pipeline is declared here: the training-set size (a run-time
input: one memory row per sample), items that carry their index and ``K`` negatives
(:meth:`CRD.wrap_dataset`) and, under DDP, memory banks updated from the whole global batch
(:meth:`CRD.prepare_distributed`).
"""
from __future__ import annotations

import math
from typing import List, Optional

import torch
import torch.nn.functional as F
from torch import nn

from .. import distributed as D
from ..data import ContrastIndexedDataset
from .base import Distiller, check_weight, feature_shapes, register


class ContrastMemory(nn.Module):
    """Two memory banks of L2-normalised embeddings (student's ``v1``, teacher's ``v2``) with
    momentum updates, scoring each sample against its positive and ``K`` negatives by
    ``exp(<m, v> / T) / Z`` (``Z`` fixed from the first batch, as in the reference code).

    Parameters
    ----------
    dim : int
        Embedding size.
    n_data : int
        Number of training samples (memory rows).
    k : int
        Negatives per sample.
    temperature : float
        NCE temperature.
    momentum : float
        Memory update momentum.

    With ``gathered = True`` (set by :meth:`CRD.prepare_distributed`) and inside a process group
    of several ranks, each rank scores its own samples against the (identical) banks, then
    gathers the embeddings and indices of all ranks and applies every momentum update, so the
    banks stay identical on all ranks and equal to a single process's (the ranks' indices are
    disjoint under ``DistributedSampler``); the normalising constants fixed from the first batch
    are averaged over the ranks too. State-dict keys do not change, so checkpoints move freely
    between world sizes.
    """

    def __init__(self, dim: int, n_data: int, k: int, temperature: float = 0.07,
                 momentum: float = 0.5):
        super().__init__()
        self.gathered = False
        self.n_data, self.k = n_data, k
        self.temperature, self.momentum = temperature, momentum
        stdv = 1.0 / math.sqrt(dim / 3)
        self.register_buffer("memory_v1", torch.rand(n_data, dim) * 2 * stdv - stdv)
        self.register_buffer("memory_v2", torch.rand(n_data, dim) * 2 * stdv - stdv)
        self.register_buffer("z", torch.full((2,), -1.0))

    def forward(self, v1: torch.Tensor, v2: torch.Tensor, index: torch.Tensor,
                contrast_idx: Optional[torch.Tensor] = None):
        """Score ``v1 (B, dim)`` against bank 2 and ``v2`` against bank 1 (see
        :meth:`_local_forward`), with the cross-rank update when ``gathered``."""
        if self.gathered and D.is_distributed():
            return self._gathered_forward(v1, v2, index, contrast_idx)
        return self._local_forward(v1, v2, index, contrast_idx)

    def _local_forward(self, v1: torch.Tensor, v2: torch.Tensor, index: torch.Tensor,
                       contrast_idx: Optional[torch.Tensor] = None):
        """Score ``v1 (B, dim)`` against bank 2 and ``v2`` against bank 1.

        Parameters
        ----------
        index : torch.Tensor
            ``(B,)`` sample indices (the positives).
        contrast_idx : torch.Tensor, optional
            ``(B, K + 1)`` with ``index`` first; drawn uniformly when omitted.

        Returns
        -------
        out_v1, out_v2 : torch.Tensor
            ``(B, K + 1)`` scores, positive first.
        """
        b, dim = v1.shape
        if contrast_idx is None:
            contrast_idx = torch.randint(0, self.n_data, (b, self.k + 1), device=v1.device)
            contrast_idx[:, 0] = index
        w2 = self.memory_v2[contrast_idx.flatten()].view(b, -1, dim)
        w1 = self.memory_v1[contrast_idx.flatten()].view(b, -1, dim)
        out_v1 = torch.exp(torch.bmm(w2, v1.unsqueeze(2)).squeeze(2) / self.temperature)
        out_v2 = torch.exp(torch.bmm(w1, v2.unsqueeze(2)).squeeze(2) / self.temperature)
        # normalising constants fixed from the first batch; torch.where avoids a host sync
        with torch.no_grad():
            first = self.z < 0
            est = torch.stack([out_v1.mean(), out_v2.mean()]) * self.n_data
            self.z.copy_(torch.where(first, est, self.z))
        out_v1, out_v2 = out_v1 / self.z[0], out_v2 / self.z[1]
        with torch.no_grad():
            for bank, v in ((self.memory_v1, v1), (self.memory_v2, v2)):
                pos = bank[index] * self.momentum + v.detach() * (1 - self.momentum)
                bank.index_copy_(0, index, F.normalize(pos, dim=1))
        return out_v1, out_v2

    def _gathered_forward(self, v1: torch.Tensor, v2: torch.Tensor, index: torch.Tensor,
                          contrast_idx: Optional[torch.Tensor]):
        saved = (self.memory_v1[index].clone(), self.memory_v2[index].clone())
        out_v1, out_v2 = self._local_forward(v1, v2, index, contrast_idx)
        if not getattr(self, "_z_synced", False):
            # the first batch fixes Z: use the global mean, as one process would
            with torch.no_grad():
                global_z = self.z.clone()
                torch.distributed.all_reduce(global_z)
                global_z.div_(D.world_size())
                scale = self.z / global_z
            # a new tensor, not an in-place edit: the scores' graph saved the local Z
            self.z = global_z
            out_v1, out_v2 = out_v1 * scale[0], out_v2 * scale[1]
            self._z_synced = True
        with torch.no_grad():
            # the local pass updated this rank's rows only: restore them, then apply the
            # momentum update of the whole global batch at once (disjoint indices across ranks)
            all_index = D.all_gather_nograd(index)
            for bank, own, v in ((self.memory_v1, saved[0], v1), (self.memory_v2, saved[1], v2)):
                bank.index_copy_(0, index, own)
                pos = bank[all_index] * self.momentum + \
                    D.all_gather_nograd(v.to(bank.dtype)) * (1 - self.momentum)
                bank.index_copy_(0, all_index, F.normalize(pos, dim=1))
        return out_v1, out_v2


def nce_loss(scores: torch.Tensor, n_data: int, eps: float = 1e-7) -> torch.Tensor:
    """CRD's NCE loss on ``(B, K + 1)`` scores (positive first) with uniform noise ``1/n_data``."""
    m = scores.shape[1] - 1
    noise = m / n_data
    pos = scores[:, 0]
    log_d1 = torch.log(pos / (pos + noise + eps))
    log_d0 = torch.log(noise / (scores[:, 1:] + noise + eps))
    return -(log_d1.sum() + log_d0.sum()) / scores.shape[0]


@register("crd")
class CRD(Distiller):
    """CRD: embed pooled student and teacher features to ``feat_dim`` (linear + L2 norm),
    NCE against the memory banks in both directions; beta 0.8.

    Extra constructor arguments: ``n_data`` (the training-set size, a run-time input: the
    memory bank has one row per sample), ``nce_k`` (negatives, capped at ``n_data - 1``),
    ``nce_t``, ``nce_m``, ``feat_dim``, ``replacement`` (draw the negatives with replacement,
    the default; ``false`` as RepDistiller, which ``topology.faithful`` selects). Batches must pass ``index (B,)`` and optionally
    ``contrast_idx (B, K + 1)`` to :meth:`forward_train` (:meth:`wrap_dataset` makes the
    training items carry both).
    """

    runtime_inputs = {"n_data": "num_train"}

    def __init__(self, student, teacher, beta=0.8, feat_dim=128, n_data=None, nce_k=16384,
                 nce_t=0.07, nce_m=0.5, replacement=True, **kw):
        super().__init__(student, teacher, **kw)
        if isinstance(n_data, bool) or not isinstance(n_data, int) or n_data < 2:
            raise ValueError(f"crd needs n_data = the training-set size (int >= 2), got {n_data!r}")
        if isinstance(nce_k, bool) or not isinstance(nce_k, int) or nce_k < 1:
            raise ValueError(f"nce_k must be a positive int, got {nce_k!r}")
        if not isinstance(replacement, bool):
            raise TypeError(f"replacement must be true or false, got {replacement!r}")
        self.beta, self.replacement = check_weight("beta", beta), replacement
        self.nce_k = min(nce_k, n_data - 1)
        s, t = feature_shapes(student, self.input_size), feature_shapes(teacher, self.input_size)
        self.embed_s = nn.Linear(s["pooled"], feat_dim)
        self.embed_t = nn.Linear(t["pooled"], feat_dim)
        self.memory = ContrastMemory(feat_dim, n_data, self.nce_k, nce_t, nce_m)

    def wrap_dataset(self, dataset):
        """Items ``(image, target, index, contrast_idx (nce_k + 1,))``: the sample's index and
        ``nce_k`` negatives from other classes (:class:`topkd.data.ContrastIndexedDataset`),
        with or without replacement as ``replacement`` says."""
        return ContrastIndexedDataset(dataset, self.nce_k, self.replacement)

    def prepare_distributed(self, local_batch_size) -> List[nn.Module]:
        """Update the memory banks from the global batch (see :class:`ContrastMemory`); DDP
        leaves them alone."""
        self.memory.gathered = True
        return [self.memory]

    def method_losses(self, logits_s, feats_s, logits_t, feats_t, index=None, contrast_idx=None,
                      **kw):
        if index is None:
            raise ValueError("crd needs the batch's sample indices: pass index=(B,) tensor")
        if contrast_idx is not None:
            contrast_idx = contrast_idx[:, : self.nce_k + 1]
        v_s = F.normalize(self.embed_s(feats_s["pooled"]), dim=1)
        v_t = F.normalize(self.embed_t(feats_t["pooled"]), dim=1)
        out_s, out_t = self.memory(v_s, v_t, index, contrast_idx)
        n = self.memory.n_data
        return {"crd": self.beta * (nce_loss(out_s, n) + nce_loss(out_t, n))}
