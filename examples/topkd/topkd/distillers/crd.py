"""CRD (Tian et al. 2020): contrastive representation distillation with two memory banks."""
from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from .base import Distiller, feature_shapes, register


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
    """

    def __init__(self, dim: int, n_data: int, k: int, temperature: float = 0.07,
                 momentum: float = 0.5):
        super().__init__()
        self.n_data, self.k = n_data, k
        self.temperature, self.momentum = temperature, momentum
        stdv = 1.0 / math.sqrt(dim / 3)
        self.register_buffer("memory_v1", torch.rand(n_data, dim) * 2 * stdv - stdv)
        self.register_buffer("memory_v2", torch.rand(n_data, dim) * 2 * stdv - stdv)
        self.register_buffer("z", torch.full((2,), -1.0))

    def forward(self, v1: torch.Tensor, v2: torch.Tensor, index: torch.Tensor,
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

    Extra constructor arguments: ``n_data`` (training-set size, required: the memory bank has
    one row per sample), ``nce_k`` (negatives, capped at ``n_data - 1``), ``nce_t``,
    ``nce_m``, ``feat_dim``. Batches must pass ``index (B,)`` and optionally
    ``contrast_idx (B, K + 1)`` to :meth:`forward_train`.
    """

    needs_index = True
    defaults = {"gamma": 1.0, "alpha": 0.0, "temperature": 4.0, "beta": 0.8, "feat_dim": 128,
                "n_data": None, "nce_k": 16384, "nce_t": 0.07, "nce_m": 0.5}

    def __init__(self, student, teacher, beta=0.8, feat_dim=128, n_data=None, nce_k=16384,
                 nce_t=0.07, nce_m=0.5, **kw):
        super().__init__(student, teacher, **kw)
        if not isinstance(n_data, int) or n_data < 2:
            raise ValueError(f"crd needs n_data = the training-set size (int >= 2), got {n_data!r}")
        self.beta = float(beta)
        self.nce_k = min(int(nce_k), n_data - 1)
        s, t = feature_shapes(student, self.input_size), feature_shapes(teacher, self.input_size)
        self.embed_s = nn.Linear(s["pooled"], feat_dim)
        self.embed_t = nn.Linear(t["pooled"], feat_dim)
        self.memory = ContrastMemory(feat_dim, n_data, self.nce_k, nce_t, nce_m)

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
