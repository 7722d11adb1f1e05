"""The ``Distiller`` base class and the registry of distillers.

A distiller holds a student and a (frozen, always eval-mode) teacher. Its training objective is

    gamma * CE(student) + alpha * KD(student, teacher; T) + (method's weighted terms)
                        + (terms of the ``extra`` distillers)

returned by :meth:`Distiller.forward_train` as logits plus a dict of named, already weighted
losses whose sum is the objective. Subclasses implement :meth:`Distiller.method_losses` and
register themselves with :func:`register`.
"""
from __future__ import annotations

from typing import Callable, Dict, Iterable, List, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

DISTILLERS: Dict[str, type] = {}


def register(name: str) -> Callable[[type], type]:
    """Class decorator adding a distiller to :data:`DISTILLERS` under ``name``."""

    def wrap(cls: type) -> type:
        DISTILLERS[name] = cls
        cls.name = name
        return cls

    return wrap


def kd_loss(logits_s: torch.Tensor, logits_t: torch.Tensor, temperature: float) -> torch.Tensor:
    """Hinton's KD term: ``KL(softmax(t/T) || softmax(s/T)) * T**2`` averaged over the batch.

    Parameters
    ----------
    logits_s, logits_t : torch.Tensor
        ``(B, C)`` student and teacher logits.
    temperature : float
        ``T``.
    """
    log_p_s = F.log_softmax(logits_s / temperature, dim=1)
    p_t = F.softmax(logits_t / temperature, dim=1)
    return F.kl_div(log_p_s, p_t, reduction="batchmean") * temperature ** 2


def feature_shapes(model: nn.Module, input_size: int = 32) -> Dict[str, object]:
    """Shapes of a model's features for a ``(2, 3, input_size, input_size)`` input, computed in
    eval mode under ``no_grad`` (the model's mode is restored).

    Returns
    -------
    dict
        ``{"stages": [(C, H, W), ...], "pooled": C}``.
    """
    mode = model.training
    model.eval()
    param = next(model.parameters())
    with torch.no_grad():
        _, feats = model(torch.zeros(2, 3, input_size, input_size, device=param.device,
                                     dtype=param.dtype))
    model.train(mode)
    return {"stages": [tuple(s.shape[1:]) for s in feats["stages"]],
            "pooled": feats["pooled"].shape[1]}


class Distiller(nn.Module):
    """Student + frozen teacher + the distillation objective.

    Parameters
    ----------
    student : nn.Module
        Maps images ``(B, 3, H, W)`` to ``(logits (B, C), features dict)``.
    teacher : nn.Module or None
        Same interface; frozen (``requires_grad=False``) and kept in eval mode whatever
        :meth:`train` is called with. ``None`` only for distillers with ``needs_teacher = False``.
    gamma : float
        Weight of the cross-entropy term.
    alpha : float
        Weight of the KD term (0 disables it and skips computing it).
    temperature : float
        KD temperature ``T``.
    extra : sequence of Distiller, optional
        Other distillers sharing this student and teacher whose :meth:`method_losses` are
        added (their own CE/KD weights are ignored): TopKD + CRD is ``TopKD(..., extra=[CRD])``.
    input_size : int
        Image side, used to size connectors from the models' features.
    """

    name = "base"
    needs_teacher = True
    needs_index = False
    defaults: Dict[str, float] = {"gamma": 1.0, "alpha": 0.0, "temperature": 4.0}

    def __init__(self, student: nn.Module, teacher: Optional[nn.Module], gamma: float = 1.0,
                 alpha: float = 0.0, temperature: float = 4.0,
                 extra: Optional[Sequence["Distiller"]] = None, input_size: int = 32):
        super().__init__()
        if not isinstance(student, nn.Module):
            raise TypeError(f"student must be an nn.Module, got {type(student).__name__}")
        if self.needs_teacher and not isinstance(teacher, nn.Module):
            raise TypeError(f"{self.name} needs a teacher nn.Module, got {type(teacher).__name__}")
        for arg, value in (("gamma", gamma), ("alpha", alpha), ("temperature", temperature)):
            if not isinstance(value, (int, float)) or value < 0:
                raise ValueError(f"{arg} must be a non-negative number, got {value!r}")
        if temperature <= 0:
            raise ValueError(f"temperature must be positive, got {temperature!r}")
        self.student = student
        self.teacher = teacher
        if teacher is not None:
            teacher.requires_grad_(False)
            teacher.eval()
        self.gamma, self.alpha, self.temperature = float(gamma), float(alpha), float(temperature)
        self.input_size = input_size
        self.extra = nn.ModuleList()
        for other in extra or ():
            if not isinstance(other, Distiller):
                raise TypeError(f"extra must hold Distiller instances, got {type(other).__name__}")
            if other.student is not student or other.teacher is not teacher:
                raise ValueError("extra distillers must share this distiller's student and teacher")
            self.extra.append(other)
        if any(e.needs_index for e in self.extra):
            self.needs_index = True

    def train(self, mode: bool = True) -> "Distiller":
        """Set training mode on the student and connectors; the teacher stays in eval mode."""
        super().train(mode)
        if self.teacher is not None:
            self.teacher.eval()
        return self

    def get_learnable_parameters(self) -> List[nn.Parameter]:
        """Student parameters plus every connector/embedding parameter (extras included),
        never the teacher's, each once."""
        frozen = set() if self.teacher is None else {id(p) for p in self.teacher.parameters()}
        seen, params = set(), []
        for p in self.parameters():
            if id(p) not in seen and id(p) not in frozen and p.requires_grad:
                seen.add(id(p))
                params.append(p)
        return params

    def get_extra_parameters(self) -> List[nn.Parameter]:
        """Learnable parameters that are not the student's (connectors, embeddings)."""
        own = {id(p) for p in self.student.parameters()}
        return [p for p in self.get_learnable_parameters() if id(p) not in own]

    def connector_state_dict(self) -> Dict[str, torch.Tensor]:
        """State of everything but the student and the teacher (connectors, embeddings, CRD's
        memory bank), for checkpoints."""
        return {k: v for k, v in self.state_dict().items() if not _is_model_key(k)}

    def load_connector_state_dict(self, state: Dict[str, torch.Tensor]) -> None:
        """Load a :meth:`connector_state_dict` (strict on the connector keys)."""
        missing, unexpected = self.load_state_dict(state, strict=False)
        missing = [k for k in missing if not _is_model_key(k)]
        if missing or unexpected:
            raise ValueError(f"connector state does not match: missing {missing}, "
                             f"unexpected {unexpected}")

    def method_losses(self, logits_s, feats_s, logits_t, feats_t, **kw) -> Dict[str, torch.Tensor]:
        """Weighted method-specific terms (none for the base class).

        Parameters
        ----------
        logits_s, logits_t : torch.Tensor
            ``(B, C)``.
        feats_s, feats_t : dict
            The models' feature dicts (see :mod:`topkd.models.base`); teacher features carry
            no gradient.
        **kw
            Batch extras such as ``index (B,)`` and ``contrast_idx (B, K + 1)`` for CRD.
        """
        return {}

    def forward_train(self, images: torch.Tensor, targets: torch.Tensor, **kw):
        """One training forward pass.

        Parameters
        ----------
        images : torch.Tensor
            ``(B, 3, H, W)``.
        targets : torch.Tensor
            ``(B,)`` int64 labels.
        **kw
            Passed to :meth:`method_losses` (``index``, ``contrast_idx``).

        Returns
        -------
        logits : torch.Tensor
            Student logits ``(B, C)``.
        losses : dict of str to torch.Tensor
            Named scalar terms, already weighted; their sum is the training objective.
        """
        if targets.dim() != 1 or targets.shape[0] != images.shape[0]:
            raise ValueError(f"targets must be ({images.shape[0]},), got {tuple(targets.shape)}")
        logits_s, feats_s = self.student(images)
        logits_t, feats_t = None, None
        if self.teacher is not None and (self.needs_teacher or len(self.extra)):
            with torch.no_grad():
                logits_t, feats_t = self.teacher(images)
        # losses in float32 even under autocast: softmax at T = 4, Gram matrices, RipsNet
        with torch.autocast(device_type=images.device.type, enabled=False):
            logits_s32, fs = logits_s.float(), _float_feats(feats_s)
            losses = {}
            if self.gamma:
                losses["ce"] = self.gamma * F.cross_entropy(logits_s32, targets)
            if logits_t is not None:
                logits_t32, ft = logits_t.float(), _float_feats(feats_t)
                if self.alpha:
                    losses["kd"] = self.alpha * kd_loss(logits_s32, logits_t32, self.temperature)
                losses.update(self.method_losses(logits_s32, fs, logits_t32, ft, **kw))
                for other in self.extra:
                    for key, value in other.method_losses(logits_s32, fs, logits_t32, ft, **kw).items():
                        losses[f"{other.name}_{key}"] = value
        return logits_s, losses

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Student logits ``(B, C)`` (evaluation)."""
        return self.student(images)[0]

    def extra_repr(self) -> str:
        return f"gamma={self.gamma}, alpha={self.alpha}, T={self.temperature}"


def _is_model_key(key: str) -> bool:
    parts = key.split(".")
    return "student" in parts or "teacher" in parts


def _float_feats(feats: dict) -> dict:
    return {k: ([t.float() for t in v] if isinstance(v, list) else v.float())
            for k, v in feats.items()}


def paired_stages(feats_s: dict, feats_t: dict, key: str = "stages"):
    """Student/teacher stage pairs after the stem, aligned from the last stage backwards
    (models with more stages drop their earliest ones)."""
    s, t = feats_s[key][1:], feats_t[key][1:]
    n = min(len(s), len(t))
    return list(zip(s[len(s) - n:], t[len(t) - n:]))


def build_distiller(name: str, student: nn.Module, teacher: Optional[nn.Module],
                    extra: Iterable[dict] = (), **kwargs) -> Distiller:
    """Build a registered distiller by name.

    Parameters
    ----------
    name : str
        A key of :data:`DISTILLERS`.
    student, teacher : nn.Module
        The models (teacher may be ``None`` for ``vanilla``).
    extra : iterable of dict
        Specs ``{"name": ..., **kwargs}`` of distillers whose method terms are added.
    **kwargs
        Constructor arguments; unset ones take the class ``defaults`` (the published weights).

    Raises
    ------
    ValueError
        Unknown name, or an argument the distiller does not accept.
    """
    if name not in DISTILLERS:
        raise ValueError(f"unknown distiller {name!r}; known: {', '.join(sorted(DISTILLERS))}")
    cls = DISTILLERS[name]
    extras = []
    for spec in extra:
        if not isinstance(spec, dict) or "name" not in spec:
            raise ValueError(f"each extra distiller must be a dict with a 'name', got {spec!r}")
        spec = dict(spec)
        extras.append(build_distiller(spec.pop("name"), student, teacher, **spec))
    args = {**cls.defaults, **kwargs}
    unknown = set(args) - set(cls.defaults) - {"input_size"}
    if unknown:
        raise ValueError(f"distiller {name!r} got unknown arguments {sorted(unknown)}; "
                         f"it accepts {sorted(cls.defaults)}")
    return cls(student, teacher, extra=extras, **args)
