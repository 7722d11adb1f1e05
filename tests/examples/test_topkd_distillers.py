"""Every distiller: finite losses, backward, teacher frozen and in eval mode, learnable
parameters in the optimizer; published weights; error messages."""

import pytest
import torch
import torch.nn.functional as F

from topkd.distillers import DISTILLERS, build_distiller, kd_loss
from topkd.distillers.methods import ConvReg
from topkd.engine import Trainer
from topkd.models import build_model

# distillers with learnable connectors/embeddings for a same-width pair (TopKD only needs a
# projection when the pooled widths differ)
HAS_CONNECTOR = {"fitnet", "cc", "vid", "crd"}
# the loss terms of the suite's distillers (a distiller added later gets the generic checks)
TERMS = {"vanilla": {"ce"}, "kd": {"ce", "kd"}, "fitnet": {"ce", "hint"}, "at": {"ce", "at"},
         "sp": {"ce", "sp"}, "cc": {"ce", "cc"}, "rkd": {"ce", "rkd"}, "pkt": {"ce", "pkt"},
         "vid": {"ce", "vid"}, "crd": {"ce", "crd"}, "topkd": {"ce", "kd", "topo"}}


def make(name, student="resnet8", teacher="resnet14", num_classes=10, **kw):
    """A registered distiller on two fresh models, its run-time inputs given stand-ins (any
    distiller of the registry, with no knowledge of its name)."""
    import torchtopo

    torch.manual_seed(0)
    s, t = build_model(student, num_classes), build_model(teacher, num_classes)
    stand_ins = {"input_size": lambda: 32, "num_train": lambda: 64, "batch_size": lambda: 8,
                 "cloud_size": lambda: 4, "gather_clouds": lambda: None,
                 "ripsnet": lambda: torchtopo.RipsNet.for_features(t.feature_channels()["pooled"], 20),
                 "vectorizer": lambda: torchtopo.PersistenceImage.topkd(faithful=False)}
    for arg, source in DISTILLERS[name].inputs().items():
        if arg not in kw:
            kw[arg] = stand_ins[source]()
    return build_distiller(name, s, t, **kw)


def connectors(d):
    """The distiller's learnable parameters that are not the student's."""
    own = {id(p) for p in d.student.parameters()}
    return [p for p in d.get_learnable_parameters() if id(p) not in own]


def needs_index(d):
    """Whether the distiller's training items carry indices (a dataset wrapper adds them)."""
    return not isinstance(d.prepare_dataset(_Labelled()), _Labelled)


class _Labelled(torch.utils.data.Dataset):
    targets = list(range(10)) * 2

    def __len__(self):
        return 20

    def __getitem__(self, i):
        return torch.zeros(3, 32, 32), self.targets[i]


def batch(n=8, num_classes=10, with_index=False):
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(n, 3, 32, 32, generator=g), torch.randint(0, num_classes, (n,), generator=g)
    return x, y, ({"index": torch.arange(n)} if with_index else {})


@pytest.mark.parametrize("name", sorted(DISTILLERS))
def test_distiller_step(name, tmp_path):
    d = make(name)
    teacher_before = {k: v.clone() for k, v in d.teacher.state_dict().items()}
    d.train()
    assert d.student.training and not d.teacher.training
    assert not any(p.requires_grad for p in d.teacher.parameters())
    x, y, kw = batch(with_index=needs_index(d))
    logits, losses = d.forward_train(x, y, **kw)
    assert logits.shape == (8, 10)
    assert losses and all(v.dim() == 0 and torch.isfinite(v) for v in losses.values())
    assert "ce" in losses
    if name in TERMS:
        assert set(losses) == TERMS[name]
    sum(losses.values()).backward()
    learnable = d.get_learnable_parameters()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in d.student.parameters())
    # every extra learnable parameter (connectors, embeddings) gets a gradient
    extra = connectors(d)
    if name in TERMS:
        assert (len(extra) > 0) == (name in HAS_CONNECTOR)
    assert all(p.grad is not None for p in extra)
    assert all(p.grad is None for p in d.teacher.parameters())
    # the optimizer holds exactly the learnable parameters, never the teacher's
    trainer = Trainer(d, [], [], out_dir=str(tmp_path), epochs=1, lr=0.1, progress=False)
    in_opt = {id(p) for g in trainer.optimizer.param_groups for p in g["params"]}
    assert in_opt == {id(p) for p in learnable}
    assert not in_opt & {id(p) for p in d.teacher.parameters()}
    trainer.optimizer.step()
    for k, v in d.teacher.state_dict().items():
        assert torch.equal(v, teacher_before[k]), k
    d.train(True)
    assert not d.teacher.training


def test_published_default_weights():
    """The constructors' defaults are the published weights (RepDistiller's CIFAR-100 settings,
    Hinton et al.'s KD, the TopKD code's gamma/alpha/delta)."""
    w = {n: DISTILLERS[n].arguments() for n in DISTILLERS}
    assert (w["kd"]["gamma"], w["kd"]["alpha"], w["kd"]["temperature"]) == (0.1, 0.9, 4.0)
    assert {n: w[n]["beta"] for n in ("fitnet", "at", "sp", "cc", "rkd", "pkt", "vid", "crd")} == {
        "fitnet": 100.0, "at": 1000.0, "sp": 3000.0, "cc": 0.02, "rkd": 1.0, "pkt": 30000.0,
        "vid": 1.0, "crd": 0.8}
    topkd = w["topkd"]
    assert (topkd["gamma"], topkd["alpha"], topkd["delta"], topkd["temperature"]) == (1, 2, 5, 4)
    assert w["crd"]["nce_k"] == 16384 and w["crd"]["nce_t"] == 0.07 and w["crd"]["nce_m"] == 0.5


def test_kd_loss_matches_definition():
    s, t = torch.randn(5, 7), torch.randn(5, 7)
    p_t = F.softmax(t / 4, 1)
    manual = (p_t * (p_t.log() - F.log_softmax(s / 4, 1))).sum(1).mean() * 16
    torch.testing.assert_close(kd_loss(s, t, 4.0), manual)
    d = make("kd")
    x, y, _ = batch()
    _, losses = d.forward_train(x, y)
    with torch.no_grad():
        ls, lt = d.student(x)[0], d.teacher(x)[0]
    torch.testing.assert_close(losses["kd"], 0.9 * kd_loss(ls, lt, 4.0))
    torch.testing.assert_close(losses["ce"], 0.1 * F.cross_entropy(ls, y))


@pytest.mark.parametrize("student,teacher", [("MobileNetV2", "vgg8"), ("ShuffleV2", "resnet8x4")])
@pytest.mark.parametrize("name", ["fitnet", "at", "vid", "sp", "cc", "rkd", "pkt", "crd"])
def test_cross_architecture_connectors(name, student, teacher):
    d = make(name, student, teacher).train()
    x, y, kw = batch(4, with_index=needs_index(d))
    _, losses = d.forward_train(x, y, **kw)
    assert all(torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()
    assert all(p.grad is not None for p in connectors(d))


def test_topkd_projection_and_frozen_ripsnet():
    import torchtopo

    d = make("topkd", "resnet8", "resnet8x4",
             ripsnet=torchtopo.RipsNet.for_features(256, 20)).train()
    ripsnet = d.topology.ripsnet  # the loss's frozen copy
    assert not ripsnet.training
    rn_before = {k: v.clone() for k, v in ripsnet.state_dict().items()}
    extra = connectors(d)
    assert extra and all(p.shape[-1] in (64, 256) or p.dim() == 1 for p in extra)
    assert not {id(p) for p in ripsnet.parameters()} & {id(p) for p in d.get_learnable_parameters()}
    x, y, _ = batch(8)
    _, losses = d.forward_train(x, y)
    sum(losses.values()).backward()
    assert all(p.grad is not None for p in extra)
    opt = torch.optim.SGD(d.get_learnable_parameters(), lr=0.1)
    opt.step()
    for k, v in ripsnet.state_dict().items():
        assert torch.equal(v, rn_before[k])
    assert not ripsnet.training


def test_topkd_combined_with_crd():
    import torchtopo

    torch.manual_seed(0)
    s, t = build_model("resnet8", 10), build_model("resnet14", 10)
    d = build_distiller("topkd", s, t, ripsnet=torchtopo.RipsNet.for_features(64, 20),
                        cloud_size=4, extra=[{"name": "crd", "n_data": 64, "nce_k": 10}])
    assert needs_index(d)
    assert len(d.prepare_dataset(_Labelled())[3]) == 4  # image, target, index, negatives
    x, y, kw = batch(8, with_index=True)
    _, losses = d.train().forward_train(x, y, **kw)
    assert set(losses) == {"ce", "kd", "topo", "crd_crd"}
    crd_params = {id(p) for p in d.extra[0].embed_s.parameters()}
    assert crd_params <= {id(p) for p in d.get_learnable_parameters()}


def test_crd_memory_bank_updates_only_the_batch_rows():
    d = make("crd", nce_k=20).train()
    before = d.memory.memory_v1.clone()
    x, y, _ = batch(4)
    index = torch.tensor([3, 10, 20, 30])
    contrast = torch.cat([index[:, None], torch.randint(0, 64, (4, 20))], 1)
    d.forward_train(x, y, index=index, contrast_idx=contrast)
    changed = (d.memory.memory_v1 != before).any(1).nonzero().flatten()
    assert changed.tolist() == index.tolist()
    torch.testing.assert_close(d.memory.memory_v1[index].norm(dim=1), torch.ones(4))
    assert d.nce_k == 20 and make("crd", nce_k=10_000).nce_k == 63  # capped at n_data - 1
    with pytest.raises(ValueError, match="index"):
        d.forward_train(x, y)


def test_errors_name_the_problem():
    s, t = build_model("resnet8", 10), build_model("resnet14", 10)
    with pytest.raises(ValueError, match="unknown distiller 'dkd'"):
        build_distiller("dkd", s, t)
    with pytest.raises(ValueError, match=r"unknown arguments \['bta'\] \(did you mean 'beta'\?\)"):
        build_distiller("at", s, t, bta=3)
    with pytest.raises(ValueError, match=r"unknown distiller 'kdd' \(did you mean 'kd'\?\)"):
        build_distiller("kdd", s, t)
    with pytest.raises(ValueError, match="beta must be a non-negative number"):
        build_distiller("at", s, t, beta=-1)
    with pytest.raises(TypeError, match="kd needs a teacher"):
        build_distiller("kd", s, None)
    with pytest.raises(ValueError, match="temperature"):
        build_distiller("kd", s, t, temperature=0)
    with pytest.raises(ValueError, match="n_data"):
        build_distiller("crd", s, t)
    with pytest.raises(TypeError, match="ripsnet"):
        build_distiller("topkd", s, t)
    with pytest.raises(ValueError, match="hint_layer 7 out of range"):
        build_distiller("fitnet", s, t, hint_layer=7)
    with pytest.raises(ValueError, match="no FitNet connector rule"):
        ConvReg((16, 8, 8), (32, 32, 32))
    assert build_distiller("vanilla", s, None).teacher is None
    # an extra distiller's term is computed even when the main one needs no teacher
    x, y, _ = batch(4)
    _, losses = build_distiller("vanilla", s, t, extra=[{"name": "rkd"}]).forward_train(x, y)
    assert set(losses) == {"ce", "rkd_rkd"}


def test_registry_refuses_duplicates_and_unknown_inputs():
    from topkd.distillers import Distiller, register

    with pytest.raises(ValueError, match="'kd' is already registered"):
        register("kd")(type("OtherKD", (Distiller,), {}))
    with pytest.raises(ValueError, match=r"unknown inputs \['teacher_logits'\]"):
        register("needs_logits")(type("NeedsLogits", (Distiller,),
                                      {"runtime_inputs": {"x": "teacher_logits"}}))
    assert "needs_logits" not in DISTILLERS


def test_arguments_come_from_the_constructors():
    """A subclass's signature default wins, run-time inputs are not configurable, and an
    argument a subclass hides (mapped to None) is neither."""
    from topkd.distillers import Distiller

    class Base(Distiller):
        runtime_inputs = {"size": "num_train"}

        def __init__(self, student, teacher, beta=1.0, size=None, **kw):
            super().__init__(student, teacher, **kw)

    class Child(Base):
        runtime_inputs = {"size": None}

        def __init__(self, student, teacher, beta=2.0, gamma=0.5, **kw):
            super().__init__(student, teacher, beta=beta, gamma=gamma, size=3, **kw)

    assert Base.arguments() == {"beta": 1.0, "gamma": 1.0, "alpha": 0.0, "temperature": 4.0}
    assert Base.inputs() == {"input_size": "input_size", "size": "num_train"}
    assert Child.arguments() == {"beta": 2.0, "gamma": 0.5, "alpha": 0.0, "temperature": 4.0}
    assert Child.inputs() == {"input_size": "input_size"}
