"""KD and the feature/relation distillers of the KD literature (RepDistiller's definitions),
with the published CIFAR-100 loss weights as defaults."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .base import Distiller, check_weight, feature_shapes, paired_stages, register


@register("vanilla")
class Vanilla(Distiller):
    """Cross-entropy only (teacher optional and unused)."""

    needs_teacher = False


@register("kd")
class KD(Distiller):
    """Hinton et al. 2015: ``0.1 * CE + 0.9 * KL(T = 4) * T**2``."""

    def __init__(self, student, teacher, gamma=0.1, alpha=0.9, temperature=4.0, **kw):
        super().__init__(student, teacher, gamma=gamma, alpha=alpha, temperature=temperature,
                         **kw)


class ConvReg(nn.Module):
    """FitNet regressor from a student map ``(B, C_s, H_s, W_s)`` to the teacher's
    ``(B, C_t, H_t, W_t)``: conv (stride 2 / transposed / valid, chosen from the two shapes)
    + BN + ReLU.

    Raises
    ------
    ValueError
        When no rule maps the student shape to the teacher shape.
    """

    def __init__(self, s_shape, t_shape):
        super().__init__()
        (s_c, s_h, s_w), (t_c, t_h, t_w) = s_shape, t_shape
        if s_h == 2 * t_h:
            self.conv = nn.Conv2d(s_c, t_c, 3, stride=2, padding=1)
        elif 2 * s_h == t_h:
            self.conv = nn.ConvTranspose2d(s_c, t_c, 4, stride=2, padding=1)
        elif s_h >= t_h and s_w >= t_w:
            self.conv = nn.Conv2d(s_c, t_c, (1 + s_h - t_h, 1 + s_w - t_w))
        else:
            raise ValueError(f"no FitNet connector rule from student map {s_shape} to teacher "
                             f"map {t_shape}")
        self.bn = nn.BatchNorm2d(t_c)

    def forward(self, x):
        return F.relu(self.bn(self.conv(x)))


@register("fitnet")
class FitNet(Distiller):
    """Romero et al. 2015: ``CE + beta * MSE(regressor(f_s), f_t)`` on the hint layer (the
    second stage output, ``stages[hint_layer]``), beta 100."""


    def __init__(self, student, teacher, beta=100.0, hint_layer=2, **kw):
        super().__init__(student, teacher, **kw)
        self.beta, self.hint_layer = check_weight("beta", beta), hint_layer
        if isinstance(hint_layer, bool) or not isinstance(hint_layer, int):
            raise ValueError(f"hint_layer must be an int, got {hint_layer!r}")
        s, t = feature_shapes(student, self.input_size), feature_shapes(teacher, self.input_size)
        for who, shapes in (("student", s), ("teacher", t)):
            if not 0 <= self.hint_layer < len(shapes["stages"]):
                raise ValueError(f"hint_layer {hint_layer} out of range for the {who} "
                                 f"({len(shapes['stages'])} stages)")
        self.regressor = ConvReg(s["stages"][self.hint_layer], t["stages"][self.hint_layer])

    def method_losses(self, logits_s, feats_s, logits_t, feats_t, **kw):
        f_s = self.regressor(feats_s["stages"][self.hint_layer])
        return {"hint": self.beta * F.mse_loss(f_s, feats_t["stages"][self.hint_layer])}


def _match_spatial(f_s, f_t):
    """Average-pool the larger of two maps to the smaller one's spatial size."""
    if f_s.shape[2] > f_t.shape[2]:
        f_s = F.adaptive_avg_pool2d(f_s, f_t.shape[2:])
    elif f_t.shape[2] > f_s.shape[2]:
        f_t = F.adaptive_avg_pool2d(f_t, f_s.shape[2:])
    return f_s, f_t


@register("at")
class AT(Distiller):
    """Zagoruyko & Komodakis 2017: attention maps ``normalize(mean_c f**2)``, mean squared
    difference summed over the stage pairs, beta 1000."""


    def __init__(self, student, teacher, beta=1000.0, **kw):
        super().__init__(student, teacher, **kw)
        self.beta = check_weight("beta", beta)

    @staticmethod
    def attention(f):
        return F.normalize(f.pow(2).mean(1).flatten(1), dim=1)

    def method_losses(self, logits_s, feats_s, logits_t, feats_t, **kw):
        loss = 0.0
        for f_s, f_t in paired_stages(feats_s, feats_t):
            f_s, f_t = _match_spatial(f_s, f_t)
            loss = loss + (self.attention(f_s) - self.attention(f_t)).pow(2).mean()
        return {"at": self.beta * loss}


@register("sp")
class SP(Distiller):
    """Tung & Mori 2019: similarity-preserving loss on the last stage maps,
    ``||G_t - G_s||_F**2 / b**2`` with row-normalised Gram matrices, beta 3000."""


    def __init__(self, student, teacher, beta=3000.0, **kw):
        super().__init__(student, teacher, **kw)
        self.beta = check_weight("beta", beta)

    def method_losses(self, logits_s, feats_s, logits_t, feats_t, **kw):
        f_s, f_t = feats_s["stages"][-1].flatten(1), feats_t["stages"][-1].flatten(1)
        g_s = F.normalize(f_s @ f_s.t(), dim=1)
        g_t = F.normalize(f_t @ f_t.t(), dim=1)
        b = f_s.shape[0]
        return {"sp": self.beta * (g_t - g_s).pow(2).sum() / (b * b)}


@register("cc")
class CC(Distiller):
    """Peng et al. 2019 (correlation congruence) as in RepDistiller: linear embeddings of the
    pooled features to ``feat_dim``; ``mean_i sum_c |d_i| * |d_{i+1}|`` with
    ``d = e_s - e_t``; beta 0.02."""


    def __init__(self, student, teacher, beta=0.02, feat_dim=128, **kw):
        super().__init__(student, teacher, **kw)
        self.beta = check_weight("beta", beta)
        s, t = feature_shapes(student, self.input_size), feature_shapes(teacher, self.input_size)
        self.embed_s = nn.Linear(s["pooled"], feat_dim)
        self.embed_t = nn.Linear(t["pooled"], feat_dim)

    def method_losses(self, logits_s, feats_s, logits_t, feats_t, **kw):
        delta = (self.embed_s(feats_s["pooled"]) - self.embed_t(feats_t["pooled"])).abs()
        return {"cc": self.beta * (delta[:-1] * delta[1:]).sum(1).mean()}


def _pdist(e: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    sq = e.pow(2).sum(1)
    d = (sq.unsqueeze(1) + sq.unsqueeze(0) - 2 * e @ e.t()).clamp(min=eps).sqrt()
    return d * (1 - torch.eye(e.shape[0], device=e.device, dtype=e.dtype))


def _offdiag_mean(d: torch.Tensor) -> torch.Tensor:
    n = d.shape[0]
    return d.sum() / max(n * (n - 1), 1)


@register("rkd")
class RKD(Distiller):
    """Park et al. 2019: ``25 * smoothL1(distances / mean) + 50 * smoothL1(angles)`` on the
    pooled features, beta 1."""


    def __init__(self, student, teacher, beta=1.0, w_dist=25.0, w_angle=50.0, **kw):
        super().__init__(student, teacher, **kw)
        self.beta = check_weight("beta", beta)
        self.w_dist, self.w_angle = check_weight("w_dist", w_dist), check_weight("w_angle", w_angle)

    @staticmethod
    def _angles(e):
        diff = F.normalize(e.unsqueeze(0) - e.unsqueeze(1), p=2, dim=2)
        return torch.bmm(diff, diff.transpose(1, 2)).flatten()

    def method_losses(self, logits_s, feats_s, logits_t, feats_t, **kw):
        s, t = feats_s["pooled"], feats_t["pooled"]
        d_t = _pdist(t)
        d_t = d_t / _offdiag_mean(d_t)
        d_s = _pdist(s)
        d_s = d_s / _offdiag_mean(d_s)
        loss = self.w_dist * F.smooth_l1_loss(d_s, d_t)
        loss = loss + self.w_angle * F.smooth_l1_loss(self._angles(s), self._angles(t))
        return {"rkd": self.beta * loss}


@register("pkt")
class PKT(Distiller):
    """Passalis & Tefas 2018: cosine-similarity kernels of the pooled features turned into
    conditional probabilities, KL(teacher || student); beta 30000."""


    def __init__(self, student, teacher, beta=30000.0, **kw):
        super().__init__(student, teacher, **kw)
        self.beta = check_weight("beta", beta)

    @staticmethod
    def _conditional(f, eps=1e-7):
        f = f / (f.norm(dim=1, keepdim=True) + eps)
        sim = (f @ f.t() + 1.0) / 2.0
        return sim / sim.sum(1, keepdim=True)

    def method_losses(self, logits_s, feats_s, logits_t, feats_t, eps=1e-7, **kw):
        p_s, p_t = self._conditional(feats_s["pooled"]), self._conditional(feats_t["pooled"])
        return {"pkt": self.beta * (p_t * torch.log((p_t + eps) / (p_s + eps))).mean()}


class VIDRegressor(nn.Module):
    """VID's per-stage predictor: three 1×1 convs predicting the teacher map's mean and a
    learned per-channel variance ``softplus(log_scale) + eps`` initialised at ``init_var``."""

    def __init__(self, s_channels: int, t_channels: int, init_var: float = 5.0, eps: float = 1e-5):
        super().__init__()
        self.mean = nn.Sequential(
            nn.Conv2d(s_channels, t_channels, 1, bias=False), nn.ReLU(),
            nn.Conv2d(t_channels, t_channels, 1, bias=False), nn.ReLU(),
            nn.Conv2d(t_channels, t_channels, 1, bias=False),
        )
        self.eps = eps
        self.log_scale = nn.Parameter(
            torch.full((t_channels,), math.log(math.expm1(init_var - eps))))

    def forward(self, f_s, f_t):
        f_s, f_t = _match_spatial(f_s, f_t)
        var = (F.softplus(self.log_scale) + self.eps).view(1, -1, 1, 1)
        return (0.5 * ((self.mean(f_s) - f_t).pow(2) / var + var.log())).mean()


@register("vid")
class VID(Distiller):
    """Ahn et al. 2019 (variational information distillation): Gaussian negative
    log-likelihood of each teacher stage given the student's, summed over the stage pairs,
    beta 1."""


    def __init__(self, student, teacher, beta=1.0, **kw):
        super().__init__(student, teacher, **kw)
        self.beta = check_weight("beta", beta)
        s, t = feature_shapes(student, self.input_size), feature_shapes(teacher, self.input_size)
        pairs = paired_stages({"stages": s["stages"]}, {"stages": t["stages"]})
        self.regressors = nn.ModuleList(VIDRegressor(ss[0], ts[0]) for ss, ts in pairs)

    def method_losses(self, logits_s, feats_s, logits_t, feats_t, **kw):
        loss = sum(r(f_s, f_t) for r, (f_s, f_t)
                   in zip(self.regressors, paired_stages(feats_s, feats_t)))
        return {"vid": self.beta * loss}


__all__ = ["Vanilla", "KD", "FitNet", "AT", "SP", "CC", "RKD", "PKT", "VID"]
