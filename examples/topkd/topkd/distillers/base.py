"""The ``Distiller`` base class and the registry of distillers.

A distiller holds a student and a (frozen, always eval-mode) teacher. Its training objective is

    gamma * CE(student) + alpha * KD(student, teacher; T) + (method's weighted terms)
                        + (terms of the ``extra`` distillers)

returned by :meth:`Distiller.forward_train` as logits plus a dict of named, already weighted
losses whose sum is the objective. Subclasses implement :meth:`Distiller.method_losses` and
register themselves with :func:`register`.

A distiller is one file: its constructor's signature is the one source of its arguments and
their defaults (:meth:`Distiller.arguments`), and what it needs from the pipeline it says
through hooks, so that the pipeline never asks for a distiller by name:

- :attr:`Distiller.runtime_inputs`: constructor arguments the pipeline fills in at run time
  (the training-set size, the fitted RipsNet, ...), among :data:`RUNTIME_INPUTS`;
- :meth:`Distiller.wrap_dataset`: what each training item must carry (CRD: sample indices);
- :meth:`Distiller.prepare_distributed`: cross-rank state under DDP (CRD's memory banks,
  TopKD's clouds cut from the global batch);
- :meth:`Distiller.feature_projection`: the learned map from student to teacher features,
  for the analyses.
"""
from __future__ import annotations

import difflib
import inspect
import weakref
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn

DISTILLERS: Dict[str, type] = {}

#: The values the pipeline hands a distiller at run time (the values of
#: :attr:`Distiller.runtime_inputs`), and what each one is.
RUNTIME_INPUTS: Dict[str, str] = {
    "input_size": "image side of the training data (connectors are sized by a dry forward pass)",
    "num_train": "number of training samples",
    "batch_size": "global training batch: images per optimiser step, over all ranks",
    "cloud_size": "points per point cloud (topology.cloud_size, or the per-rank batch)",
    "gather_clouds": "topology.gather: cut clouds from the global batch under DDP "
                     "(None: only when they do not fit the per-rank batch)",
    "vectorizer": "the pair's fitted PersistenceImage (made by the 'diagrams' stage)",
    "ripsnet": "the pair's fitted RipsNet, frozen (made by the 'ripsnet' stage)",
}


def suggest(word: str, choices: Iterable[str]) -> str:
    """``" (did you mean 'x'?)"`` for the closest of ``choices`` to ``word``, else ``""``."""
    close = difflib.get_close_matches(str(word), list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def register(name: str) -> Callable[[type], type]:
    """Class decorator adding a distiller to :data:`DISTILLERS` under ``name``.

    Raises
    ------
    ValueError
        When another class is registered under ``name``, or a runtime input is unknown.
    """

    def wrap(cls: type) -> type:
        if DISTILLERS.get(name, cls) is not cls:
            raise ValueError(f"a distiller named {name!r} is already registered "
                             f"({DISTILLERS[name].__qualname__})")
        unknown = {v for v in cls.inputs().values()} - set(RUNTIME_INPUTS)
        if unknown:
            raise ValueError(f"{cls.__qualname__}.runtime_inputs names unknown inputs "
                             f"{sorted(unknown)}; the pipeline provides {sorted(RUNTIME_INPUTS)}")
        DISTILLERS[name] = cls
        cls.name = name
        return cls

    return wrap


def check_weight(name: str, value) -> float:
    """``float(value)`` of a loss weight, refusing what is not a finite number >= 0."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0 \
            or value == float("inf"):
        raise ValueError(f"{name} must be a non-negative number, got {value!r}")
    return float(value)


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


#: :func:`feature_shapes` of each live model, by input size (a model's shapes never change,
#: and building every distiller of a config would otherwise run each model once per distiller).
_SHAPES: "weakref.WeakKeyDictionary[nn.Module, Dict[int, dict]]" = weakref.WeakKeyDictionary()


def feature_shapes(model: nn.Module, input_size: int = 32) -> Dict[str, object]:
    """Shapes of a model's features for a ``(2, 3, input_size, input_size)`` input, computed in
    eval mode under ``no_grad`` (the model's mode is restored) once per model and size.

    Returns
    -------
    dict
        ``{"stages": [(C, H, W), ...], "pooled": C}``.
    """
    known = _SHAPES.setdefault(model, {})
    if input_size not in known:
        mode = model.training
        model.eval()
        param = next(model.parameters())
        with torch.no_grad():
            _, feats = model(torch.zeros(2, 3, input_size, input_size, device=param.device,
                                         dtype=param.dtype))
        model.train(mode)
        known[input_size] = {"stages": [tuple(s.shape[1:]) for s in feats["stages"]],
                             "pooled": feats["pooled"].shape[1]}
    shapes = known[input_size]
    return {"stages": list(shapes["stages"]), "pooled": shapes["pooled"]}


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
        Image side, used to size connectors from the models' features (a run-time input).

    Subclasses take their own arguments as keyword arguments with defaults (the published
    weights) and pass ``**kw`` on: the signatures along the class hierarchy are the one source
    of a distiller's arguments (:meth:`arguments`).
    """

    name = "base"
    #: False for distillers that never read the teacher (``vanilla``).
    needs_teacher = True
    #: ``{constructor argument: run-time input}``: the arguments the pipeline fills in (the
    #: values are keys of :data:`RUNTIME_INPUTS`); a subclass maps an inherited argument to
    #: ``None`` to hide it. They are merged along the class hierarchy (:meth:`inputs`).
    runtime_inputs: Dict[str, Optional[str]] = {"input_size": "input_size"}

    def __init__(self, student: nn.Module, teacher: Optional[nn.Module], gamma: float = 1.0,
                 alpha: float = 0.0, temperature: float = 4.0,
                 extra: Optional[Sequence["Distiller"]] = None, input_size: int = 32):
        super().__init__()
        if not isinstance(student, nn.Module):
            raise TypeError(f"student must be an nn.Module, got {type(student).__name__}")
        if self.needs_teacher and not isinstance(teacher, nn.Module):
            raise TypeError(f"{self.name} needs a teacher nn.Module, got {type(teacher).__name__}")
        self.gamma, self.alpha = check_weight("gamma", gamma), check_weight("alpha", alpha)
        self.temperature = check_weight("temperature", temperature)
        if self.temperature <= 0:
            raise ValueError(f"temperature must be positive, got {temperature!r}")
        if isinstance(input_size, bool) or not isinstance(input_size, int) or input_size < 1:
            raise ValueError(f"input_size must be a positive int, got {input_size!r}")
        self.student = student
        self.teacher = teacher
        if teacher is not None:
            teacher.requires_grad_(False)
            teacher.eval()
        self.input_size = input_size
        self.extra = nn.ModuleList()
        for other in extra or ():
            if not isinstance(other, Distiller):
                raise TypeError(f"extra must hold Distiller instances, got {type(other).__name__}")
            if other.student is not student or other.teacher is not teacher:
                raise ValueError("extra distillers must share this distiller's student and teacher")
            self.extra.append(other)

    # ------------------------------------------------------------------ what it takes and needs

    @classmethod
    def inputs(cls) -> Dict[str, str]:
        """``{argument: run-time input}`` of this class, merged along its hierarchy."""
        merged: Dict[str, Optional[str]] = {}
        for klass in reversed(cls.__mro__):
            merged.update(klass.__dict__.get("runtime_inputs", {}))
        return {arg: source for arg, source in merged.items() if source is not None}

    @classmethod
    def arguments(cls) -> Dict[str, Any]:
        """The configurable constructor arguments and their defaults, read from the
        ``__init__`` signatures along the class hierarchy (a subclass's default wins; the walk
        stops at a constructor without ``**kw``). Run-time inputs, ``student``, ``teacher``
        and ``extra`` are not configurable.

        >>> from topkd.distillers import DISTILLERS
        >>> DISTILLERS["kd"].arguments()
        {'gamma': 0.1, 'alpha': 0.9, 'temperature': 4.0}
        """
        hidden: set = {"self", "student", "teacher", "extra"}
        for klass in cls.__mro__:
            hidden |= set(klass.__dict__.get("runtime_inputs", {}))
        out: Dict[str, Any] = {}
        for klass in cls.__mro__:
            if "__init__" not in klass.__dict__:
                continue
            params = inspect.signature(klass.__dict__["__init__"]).parameters.values()
            for p in params:
                if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name not in hidden:
                    out.setdefault(p.name, p.default)
            if not any(p.kind == p.VAR_KEYWORD for p in params) or klass is Distiller:
                break
        return out

    def members(self) -> List["Distiller"]:
        """This distiller and its ``extra`` distillers."""
        return [self, *self.extra]

    def wrap_dataset(self, dataset):
        """The training set as this distiller needs its items (default: unchanged). The
        engine passes every item's fields after ``(image, target)`` to :meth:`method_losses`
        (``index``, then ``contrast_idx``)."""
        return dataset

    def prepare_dataset(self, dataset):
        """The training set wrapped by every member's :meth:`wrap_dataset`."""
        for member in self.members():
            dataset = member.wrap_dataset(dataset)
        return dataset

    def prepare_distributed(self, local_batch_size: Optional[int]) -> List[nn.Module]:
        """Switch this member to multi-process training (called once per member by
        :func:`topkd.distributed.wrap_ddp`, before DDP wraps it).

        Parameters
        ----------
        local_batch_size : int or None
            Images per rank and step.

        Returns
        -------
        list of nn.Module
            Modules whose buffers this distiller keeps identical across the ranks itself
            (DDP must not broadcast them); default none.
        """
        return []

    def feature_projection(self) -> Optional[nn.Module]:
        """The learned map from the student's pooled features to the teacher's width, when
        this distiller has one (default ``None``)."""
        return None

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
        Constructor arguments (:meth:`Distiller.arguments`, whose defaults are the published
        weights) and run-time inputs (:meth:`Distiller.inputs`).

    Raises
    ------
    ValueError
        Unknown name, or an argument the distiller does not accept (with the closest one).
    """
    if name not in DISTILLERS:
        raise ValueError(f"unknown distiller {name!r}{suggest(name, DISTILLERS)}; known: "
                         f"{', '.join(sorted(DISTILLERS))}")
    cls = DISTILLERS[name]
    extras = []
    for spec in extra:
        if not isinstance(spec, dict) or "name" not in spec:
            raise ValueError(f"each extra distiller must be a dict with a 'name', got {spec!r}")
        spec = dict(spec)
        extras.append(build_distiller(spec.pop("name"), student, teacher, **spec))
    accepted = {**cls.arguments(), **cls.inputs()}
    for arg in kwargs:
        if arg not in accepted:
            raise ValueError(f"distiller {name!r} got unknown arguments [{arg!r}]"
                             f"{suggest(arg, accepted)}; it accepts {sorted(cls.arguments())}")
    return cls(student, teacher, extra=extras, **kwargs)
