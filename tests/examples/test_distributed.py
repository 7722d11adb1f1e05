"""Multi-process runs of the TopKD suite on the CPU (gloo, 2 processes on 127.0.0.1).

The tests write a tiny ImageFolder (3 classes, 24 training and 12 validation 32×32 JPEGs) and a
torchvision-format teacher file, then launch ``run_imagenet.py`` as one process and as two
(``torchrun``, or the same environment variables set by hand).

BatchNorm in the equivalence check: the student uses ``train.norm=frozen`` (torchvision's
FrozenBatchNorm2d, fixed statistics), so a sample's loss does not depend on which other
samples share its rank's batch; with per-rank batch statistics ("batch", the default) two ranks
of 4 images legitimately differ from one process of 8 (SyncBatchNorm, which would make them
agree, runs on CUDA only). Augmentation is drawn per (seed, epoch, image) and CRD's memory bank
is updated from the gathered global batch, so everything else must agree up to float rounding.
"""

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest
import torch

EXAMPLE_DIR = os.path.abspath(os.path.join(os.path.dirname(__file__), os.pardir, os.pardir,
                                           "examples", "topkd"))
SCRIPT = os.path.join(EXAMPLE_DIR, "run_imagenet.py")
TIMEOUT = 240

# A distiller the suite has never seen, in one file: it needs a run-time input (the training-set
# size, for a memory of one row per sample), items that carry their index, and cross-rank state
# (the memory, updated from the whole global batch under DDP). Nothing else is edited: the run
# below imports this file (its "registry line") and starts run_imagenet.py.
PLUGIN = '''
import torch
import torch.nn.functional as F
from torch import nn

from topkd import distributed as D
from topkd.distillers import Distiller, feature_shapes, register


class Indexed(torch.utils.data.Dataset):
    def __init__(self, dataset):
        self.dataset, self.targets = dataset, dataset.targets

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, i):
        image, target = self.dataset[i]
        return image, target, i


class Memory(nn.Module):
    def __init__(self, rows, dim):
        super().__init__()
        self.register_buffer("bank", torch.zeros(rows, dim))
        self.gathered = False

    @torch.no_grad()
    def update(self, index, values):
        if self.gathered:
            index, values = D.all_gather_nograd(index), D.all_gather_nograd(values)
        self.bank.index_copy_(0, index, 0.5 * self.bank[index] + 0.5 * values)


@register("memkd")
class MemKD(Distiller):
    """Pull the student's projected features towards a memory of the teacher's features of
    the same samples (momentum 0.5)."""

    runtime_inputs = {"num_train": "num_train"}

    def __init__(self, student, teacher, beta=2.0, num_train=None, **kw):
        super().__init__(student, teacher, **kw)
        s = feature_shapes(student, self.input_size)["pooled"]
        t = feature_shapes(teacher, self.input_size)["pooled"]
        self.beta, self.proj, self.memory = beta, nn.Linear(s, t), Memory(num_train, t)

    def wrap_dataset(self, dataset):
        return Indexed(dataset)

    def prepare_distributed(self, local_batch_size):
        self.memory.gathered = True
        return [self.memory]

    def method_losses(self, logits_s, feats_s, logits_t, feats_t, index=None, **kw):
        loss = F.mse_loss(self.proj(feats_s["pooled"]), self.memory.bank[index])
        self.memory.update(index, feats_t["pooled"])
        return {"mem": self.beta * loss}
'''
# python -c LAUNCH <plugin folder> <script> <args>: import the plugin, then run the script
LAUNCH = ("import runpy, sys; sys.path.insert(0, sys.argv[1]); import topkd_memkd; "
          "sys.argv = sys.argv[2:]; runpy.run_path(sys.argv[0], run_name='__main__')")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env():
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONHASHSEED="0")
    for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(key, None)
    env["PYTHONPATH"] = os.pathsep.join([EXAMPLE_DIR, env.get("PYTHONPATH", "")])
    return env


def _check(procs):
    outs = []
    for p in procs:
        out, _ = p.communicate(timeout=TIMEOUT)
        outs.append(out)
    for p, out in zip(procs, outs):
        assert p.returncode == 0, out[-4000:]
    return outs[0]


def launch(nproc, args, torchrun=False):
    """Run ``python argv...`` on ``nproc`` ranks; returns rank 0's output."""
    env = _env()
    if nproc == 1:
        return _check([subprocess.Popen([sys.executable, *args], env=env, text=True,
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT)])
    port = _free_port()
    if torchrun:
        cmd = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={nproc}",
               "--nnodes=1", "--master_addr=127.0.0.1", f"--master_port={port}", *args]
        return _check([subprocess.Popen(cmd, env=env, text=True, stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT)])
    procs = []
    for r in range(nproc):
        env_r = dict(env, RANK=str(r), LOCAL_RANK=str(r), WORLD_SIZE=str(nproc),
                     MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
        procs.append(subprocess.Popen([sys.executable, *args], env=env_r, text=True,
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT))
    return _check(procs)


def write_image_folder(root, n_train=8, n_val=4, classes=3, size=32, seed=0):
    """``root/{train,val}/class{c}/{i}.jpg``: noisy images whose mean colour depends on the
    class. The noise stays inside [0, 255]: clipped pixels make exact ties (max-pooling,
    ReLU at 0) where a gradient jumps under a change of 1e-10 in the weights, and such a
    point makes any two runs differ, one process or two."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    for split, n in (("train", n_train), ("val", n_val)):
        for c in range(classes):
            folder = os.path.join(root, split, f"class{c}")
            os.makedirs(folder, exist_ok=True)
            base = np.full(3, 70.0)
            base[c % 3] = 180
            for i in range(n):
                img = np.clip(base + rng.normal(0, 20, (size, size, 3)), 0, 255).astype(np.uint8)
                Image.fromarray(img).save(os.path.join(folder, f"{i}.jpg"), quality=90)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """The data, a torchvision-format teacher file and a config writer."""
    import yaml
    from topkd.imagenet import build_imagenet_model

    root = tmp_path_factory.mktemp("tiny_imagenet")
    write_image_folder(str(root / "data"))
    (root / "plugins").mkdir()
    (root / "plugins" / "topkd_memkd.py").write_text(PLUGIN)
    torch.manual_seed(1)
    teacher = build_imagenet_model("resnet18", num_classes=3)
    torch.save(teacher.state_dict(), root / "resnet18-teacher.pth")

    def config(name, **overrides):
        cfg = {"name": name, "out_dir": str(root / name), "progress": False, "device": "cpu",
               "dataset": {"root": str(root / "data"), "num_classes": 3, "batch_size": 8,
                           "eval_batch_size": 6, "num_workers": 0, "input_size": 32,
                           "resize": 36},
               "train": {"epochs": 2, "lr": 0.01, "milestones": [1], "norm": "frozen"},
               "teacher": {"arch": "resnet18", "checkpoint": str(root / "resnet18-teacher.pth")},
               "student": {"arch": "resnet18"},
               "compare": ["crd", "topkd", "memkd"],
               "distillers": {"crd": {"name": "crd", "gamma": 1.0, "alpha": 0.9,
                                      "temperature": 4.0, "beta": 0.8, "nce_k": 8}},
               # TopKD: one cloud of 8 points per step, gathered from both ranks under DDP
               "topology": {"cloud_size": 8, "gather": True, "shard_size": 2, "passes": 2,
                            "ripsnet": {"epochs": 5, "patience": 5, "batch_size": 2}}}
        for key, value in overrides.items():
            cfg[key] = {**cfg[key], **value} if isinstance(value, dict) else value
        path = root / f"{name}.yaml"
        path.write_text(yaml.safe_dump(cfg))
        return str(path), root / name

    return config


def _run(tiny, name, nproc, *args):
    """run_imagenet.py on ``nproc`` ranks (the environment of torchrun set by hand), with the
    plugin distiller imported first."""
    cfg, out = tiny(name)
    launch(nproc, ["-c", LAUNCH, str(out.parent / "plugins"), SCRIPT, "--config", cfg, *args])
    return out


STUDENT = ("student", "--distiller", "crd")
# one launch per world size: the generation stages, the RipsNet, then both students
ALL = ("clouds", "diagrams", "ripsnet", "student")


@pytest.fixture(scope="module")
def single(tiny):
    return _run(tiny, "single", 1, *ALL)


@pytest.fixture(scope="module")
def ddp(tiny):
    return _run(tiny, "ddp", 2, *ALL)


def _student(out, distiller="crd"):
    return out / "students" / distiller / "seed0"


def _load(path):
    return torch.load(path, map_location="cpu", weights_only=True)


def _assert_close_states(a, b, atol=2e-5):
    assert a.keys() == b.keys()
    for key in a:
        if a[key].is_floating_point():
            torch.testing.assert_close(a[key], b[key], rtol=1e-4, atol=atol, msg=key)
        else:
            assert torch.equal(a[key], b[key]), key


def _initial_student():
    """The student's weights before training (seed 0), built as the suite builds them."""
    from topkd.engine import seed_everything
    from topkd.imagenet import build_imagenet_model

    seed_everything(0)
    return build_imagenet_model("resnet18", 3, "frozen").state_dict()


def _assert_same_training(a, b, rtol=1e-2):
    """Two trainings of the student from the same start took the same steps: per tensor, the
    updates ``a - init`` and ``b - init`` differ by at most ``rtol`` of the update. Summation
    order differs between one process and two ranks (rounding of 1e-7), and six steps of CRD
    amplify it to at most 7e-4 of the update (measured); a DDP fault (a gradient not averaged,
    a rank's batch lost, state not synchronised) changes updates by tens of percent."""
    init = _initial_student()
    assert a.keys() == b.keys() == init.keys()
    # the start is the right one: six steps move conv1 by about 15% (another draw: by sqrt(2))
    assert (a["conv1.weight"] - init["conv1.weight"]).norm() < 0.5 * init["conv1.weight"].norm()
    for key in a:
        if not a[key].is_floating_point():
            assert torch.equal(a[key], b[key]), key
            continue
        update = (a[key] - init[key]).norm()
        assert (a[key] - b[key]).norm() <= rtol * update + 1e-7, key


def _assert_same_metrics(dir_a, dir_b, terms=("loss_ce", "loss_kd", "loss_crd")):
    rows_a = json.load(open(dir_a / "metrics.json"))
    rows_b = json.load(open(dir_b / "metrics.json"))
    assert len(rows_a) == len(rows_b) == 2
    for ra, rb in zip(rows_a, rows_b):
        for key in ("train_loss", *terms, "train_acc", "test_acc", "test_acc5", "test_loss", "lr"):
            assert ra[key] == pytest.approx(rb[key], rel=1e-4, abs=1e-4), key


def test_two_ranks_match_one_process(single, ddp):
    """Same global batch of 8: 2 ranks × 4 (gloo) vs 1 process × 8 after 2 epochs
    (6 steps) of CE + KD + CRD: student weights, CRD embeddings and memory banks, and the
    all-reduced metrics agree."""
    single, ddp = _student(single), _student(ddp)
    _assert_same_training(_load(single / "final.pt")["model"], _load(ddp / "final.pt")["model"])
    ca, cb = _load(single / "latest.pt"), _load(ddp / "latest.pt")
    _assert_close_states(ca["connectors"], cb["connectors"])
    assert (ca["world_size"], cb["world_size"]) == (1, 2)
    _assert_same_metrics(single, ddp)
    # the weights moved: the comparison is not between two untouched initialisations
    init = _initial_student()
    final = _load(ddp / "final.pt")["model"]
    assert (final["fc.weight"] - init["fc.weight"]).abs().max() > 1e-3
    summary = json.load(open(ddp / "summary.json"))
    assert summary["world_size"] == 2 and 0 <= summary["best_top5"] <= 100
    # only rank 0 wrote TensorBoard events
    assert len(os.listdir(ddp / "tb")) == 1


def test_resume_on_another_world_size(tiny, single):
    """Stop a 2-rank run after epoch 1, resume it on 1 process: it ends where the
    uninterrupted run ends; without --resume an existing checkpoint is refused."""
    from topkd.config import IMAGENET_DEFAULTS, load_config
    from topkd.pipeline import stage_student

    single = _student(single)
    part = _student(_run(tiny, "part", 2, *STUDENT, "--stop-after-epochs", "1"))
    assert _load(part / "latest.pt")["epoch"] == 1 and not (part / "final.pt").exists()
    with pytest.raises(ValueError, match="--resume"):
        stage_student(load_config(tiny("part")[0], defaults=IMAGENET_DEFAULTS), "crd", 0,
                      resume=False)
    _run(tiny, "part", 1, *STUDENT, "--resume")
    _assert_same_training(_load(single / "final.pt")["model"], _load(part / "final.pt")["model"])
    _assert_close_states(_load(single / "latest.pt")["connectors"],
                         _load(part / "latest.pt")["connectors"])
    _assert_same_metrics(single, part)


def test_topkd_clouds_gathered_across_ranks(single, ddp):
    """TopKD with ``topology.gather``: each rank holds 4 of the step's 8 images, the pooled
    features are gathered into the single 8-point cloud one process forms, and training ends
    with the same student (the gradient reaches each rank's rows through the gather)."""
    a, b = _student(single, "topkd"), _student(ddp, "topkd")
    _assert_same_training(_load(a / "final.pt")["model"], _load(b / "final.pt")["model"])
    _assert_same_metrics(a, b, terms=("loss_ce", "loss_kd", "loss_topo"))
    assert json.load(open(a / "metrics.json"))[0]["loss_topo"] > 0


def test_a_new_distiller_in_one_file_runs_exactly_on_two_ranks(single, ddp):
    """The plugin distiller (one file, defined above, imported before run_imagenet.py runs):
    its run-time input, dataset wrapper and cross-rank memory work through the suite's hooks
    alone, and 2 ranks end exactly where 1 process ends, memory included."""
    a, b = _student(single, "memkd"), _student(ddp, "memkd")
    _assert_close_states(_load(a / "final.pt")["model"], _load(b / "final.pt")["model"])
    ca, cb = _load(a / "latest.pt")["connectors"], _load(b / "latest.pt")["connectors"]
    assert {"memory.bank", "proj.weight"} <= set(ca)
    _assert_close_states(ca, cb)
    assert ca["memory.bank"].shape == (24, 512)
    # every training image was seen: each row of the memory moved
    assert bool((ca["memory.bank"].abs().sum(1) > 0).all())
    _assert_same_metrics(a, b, terms=("loss_ce", "loss_mem"))
    assert json.load(open(a / "metrics.json"))[0]["loss_mem"] > 0


def _tensors(obj):
    """Every tensor of a nested dict/list, in order."""
    if torch.is_tensor(obj):
        return [obj]
    values = obj.values() if isinstance(obj, dict) else obj
    return [t for v in values for t in _tensors(v)]


def test_distributed_generation_equals_single_process(single, ddp):
    """Clouds, diagrams, the fitted vectoriser and the images: 2 ranks write disjoint shards
    whose merge is byte-for-byte the single-process output."""
    a, b = single / "topology", ddp / "topology"
    for sub in ("clouds", "diagrams", "images"):
        files = sorted(f for f in os.listdir(a / sub) if f.endswith(".pt"))
        assert files == sorted(f for f in os.listdir(b / sub) if f.endswith(".pt"))
        assert len(files) == 3  # 2 passes × 24 images / 8 points = 6 clouds, 2 per shard
        for f in files:
            ta, tb = _tensors(_load(a / sub / f)), _tensors(_load(b / sub / f))
            assert len(ta) == len(tb) > 0
            for x, y in zip(ta, tb):
                assert torch.equal(x, y), f"{sub}/{f}"
        if sub == "diagrams":
            continue
        meta_a, meta_b = (json.load(open(d / sub / "meta.json")) for d in (a, b))
        volatile = {"seconds", "world_size", "clouds_per_second"}
        assert {k: v for k, v in meta_a.items() if k not in volatile} == \
            {k: v for k, v in meta_b.items() if k not in volatile}
        assert (meta_a["world_size"], meta_b["world_size"]) == (1, 2)
    assert json.load(open(a / "images" / "vectorizer.json")) == \
        json.load(open(b / "images" / "vectorizer.json"))
    clouds = _load(a / "clouds" / "shard_00000.pt")
    assert clouds.shape == (2, 8, 512) and clouds.dtype == torch.float32


def test_cifar_suite_under_torchrun(tmp_path, tiny_config):
    """run_cifar.py on 2 ranks (digits subset, batch 32 = 2 × 16): the teacher and the students
    train under DDP with loaders split by the engine, TopKD's 32-point clouds are gathered
    across the ranks (automatic: 32 does not divide 16), rank 0 alone writes the topology
    stages and the table."""
    import yaml

    cfg = tiny_config(tmp_path / "run", compare=("kd", "topkd"),
                      teacher={"arch": "resnet8", "train": {"epochs": 1}},
                      topology={"cloud_size": 32, "passes": 1, "shard_size": 4,
                                "ripsnet": {"epochs": 5, "patience": 5, "batch_size": 2}})
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(cfg))
    launch(2, [os.path.join(EXAMPLE_DIR, "run_cifar.py"), "--config", str(path), "all"],
           torchrun=True)
    run = tmp_path / "run"
    assert json.load(open(run / "teacher" / "summary.json"))["world_size"] == 2
    for entry in ("kd", "topkd"):
        summary = json.load(open(run / "students" / entry / "seed0" / "summary.json"))
        assert summary["world_size"] == 2 and summary["epochs_done"] == 1
    rows = json.load(open(run / "students" / "topkd" / "seed0" / "metrics.json"))
    assert rows[0]["loss_topo"] > 0 and rows[0]["steps"] == 6  # 192 images / 32 per step
    assert json.load(open(run / "topology" / "clouds" / "meta.json"))["num_clouds"] == 6
    assert (run / "table" / "comparison.md").is_file()
    assert not [f for f in os.listdir(run / "topology" / "clouds") if f.endswith(".tmp")]


GATHER_SNIPPET = r"""
import os, sys, torch
from topkd import distributed as D
D.init_distributed()
r, w = D.rank(), D.world_size()
torch.manual_seed(0)
weight = torch.randn(3, 2, requires_grad=True)
x = torch.arange(12.0).view(6, 2)[r * 3:(r + 1) * 3]
local = x @ weight.T                       # (3, 3) rows of this rank
full = D.all_gather_with_grad(local)       # (6, 3), the same on both ranks
loss = (full.pow(2).sum(1).sqrt() * torch.arange(1.0, 7.0)).sum()
loss.backward()
grad = weight.grad.clone()
torch.distributed.all_reduce(grad)         # DDP averages: sum / world
grad /= w
nograd = D.all_gather_nograd(torch.arange(r + 1))  # unequal sizes
sums = D.all_reduce_sums(torch.tensor(1.5), 2, 0.25)
if r == 0:
    torch.save({"grad": grad, "loss": loss.detach(), "nograd": nograd,
                "sums": torch.tensor([float(s) for s in sums])}, sys.argv[1])
D.cleanup()
"""


def test_gathers_and_reductions(tmp_path):
    """``all_gather_with_grad`` + DDP averaging gives the single-process gradient of a loss
    computed on the gathered tensor; ``all_gather_nograd`` takes unequal sizes;
    ``all_reduce_sums`` keeps types."""
    out = tmp_path / "gather.pt"
    launch(2, ["-c", GATHER_SNIPPET, str(out)])
    res = _load(out)
    torch.manual_seed(0)
    weight = torch.randn(3, 2, requires_grad=True)
    full = torch.arange(12.0).view(6, 2) @ weight.T
    loss = (full.pow(2).sum(1).sqrt() * torch.arange(1.0, 7.0)).sum()
    loss.backward()
    torch.testing.assert_close(res["grad"], weight.grad)
    torch.testing.assert_close(res["loss"], loss.detach())
    assert res["nograd"].tolist() == [0, 0, 1]
    assert res["sums"].tolist() == [3.0, 4.0, 0.5]
