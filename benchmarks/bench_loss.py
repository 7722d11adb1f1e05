"""Cost of a TopologyLoss in a distillation training step, as a ratio to plain KD.

A small CNN student (features of width 64) learns from a small CNN teacher (width 128) on a
CIFAR-sized random batch (64 images, 32 x 32, 100 classes). Each variant times one full step —
teacher forward without gradients, student forward, loss, backward, SGD step — and reports the
median over ``--steps`` steps (variants interleaved step by step) and its ratio to the plain KD
step (CE + KD at T = 4):

- ``ripsnet``: TopKD's loss, a frozen RipsNet.for_features(128, 400) on the batch as one cloud,
  with a learnable 64 -> 128 projection;
- ``exact H0``: persistence of the batch cloud (native batched H0) vectorised by TopKD's
  corrected H0 curve;
- ``exact H0+H1``: the same with H1 (the native batched reduction, as ``rips_persistence``
  chooses by default) and a 20 x 20 H1 image;
- ``signature``: the topological signature loss (Moor et al. 2020) on H0 pairings.

    python benchmarks/bench_loss.py                     # about a minute on one core
    python benchmarks/bench_loss.py --write-results     # replace results/bench_loss.md
    python benchmarks/bench_loss.py --device cuda --steps 50

A run writes ``bench_loss.json`` and ``bench_loss.md`` to ``benchmarks/_scratch/`` (git-ignored),
or to ``benchmarks/results/`` with ``--write-results``.
"""

from __future__ import annotations

import argparse

import torch
from common import add_output_arguments, interleaved_medians, machine, output_dir, write_results
from torch import nn
from torch.nn import functional as F

from torchtopo import PersistenceImage, RipsNet, TopologyLoss, rips_persistence


class SmallCNN(nn.Module):
    """Three conv blocks, global average pooling, a linear classifier; returns (logits, features)."""

    def __init__(self, width: int, features: int, classes: int = 100) -> None:
        super().__init__()

        def block(a: int, b: int) -> nn.Sequential:
            return nn.Sequential(nn.Conv2d(a, b, 3, padding=1, bias=False), nn.BatchNorm2d(b), nn.ReLU())

        self.body = nn.Sequential(block(3, width), nn.MaxPool2d(2), block(width, 2 * width), nn.MaxPool2d(2),
                                  block(2 * width, features), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.fc = nn.Linear(features, classes)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        features = self.body(x)
        return self.fc(features), features


def kd_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, labels: torch.Tensor, t: float = 4.0):
    soft = F.kl_div(F.log_softmax(student_logits / t, 1), F.softmax(teacher_logits / t, 1), reduction="batchmean")
    return F.cross_entropy(student_logits, labels) + soft * t * t


def variants(teacher: nn.Module, images: torch.Tensor, device: torch.device) -> dict[str, nn.Module | None]:
    with torch.no_grad():
        clouds = torch.stack([teacher(images[torch.randperm(len(images))])[1] for _ in range(8)]).cpu()
    h0 = PersistenceImage.topkd(faithful=False).fit(rips_persistence(clouds, 0))
    h01 = PersistenceImage((20, 20), "quantile", "topkd", dims=(0, 1), normalize=True).fit(rips_persistence(clouds, 1))
    net = RipsNet.for_features(128, 400)
    return {
        "kd": None,
        "ripsnet": TopologyLoss("ripsnet", net, student_dim=64, teacher_dim=128),
        "exact H0": TopologyLoss("exact", vectorizer=h0),
        "exact H0+H1": TopologyLoss("exact", vectorizer=h01),
        "signature": TopologyLoss("signature"),
    }


def make_step(args: argparse.Namespace, teacher: nn.Module, images: torch.Tensor, labels: torch.Tensor,
              topology: nn.Module | None, device: torch.device):
    """One training step of a fresh student with KD (+ ``topology``): a closure."""
    torch.manual_seed(0)
    student = SmallCNN(16, 64).to(device)
    params = list(student.parameters())
    if topology is not None:
        topology = topology.to(device)
        params += list(topology.parameters())
    optimizer = torch.optim.SGD(params, lr=0.01, momentum=0.9)

    def step() -> None:
        with torch.no_grad():
            t_logits, t_features = teacher(images)
        s_logits, s_features = student(images)
        loss = kd_loss(s_logits, t_logits, labels)
        if topology is not None:
            loss = loss + args.delta * topology(s_features, t_features)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize()

    return step


def run(args: argparse.Namespace) -> dict:
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    torch.manual_seed(0)
    teacher = SmallCNN(32, 128).to(device).eval()
    images = torch.randn(args.batch, 3, 32, 32, device=device)
    labels = torch.randint(0, 100, (args.batch,), device=device)
    results = {"machine": machine(), "torch": torch.__version__,
               "threads": args.threads, "device": str(device), "batch": args.batch, "steps": args.steps,
               "variants": {}}
    steps = {name: make_step(args, teacher, images, labels, topology, device)
             for name, topology in variants(teacher, images, device).items()}
    seconds = interleaved_medians(steps, args.steps, warmup=3)
    for name, median in seconds.items():
        results["variants"][name] = {"step_ms": 1e3 * median}
    base = results["variants"]["kd"]["step_ms"]
    for row in results["variants"].values():
        row["ratio_to_kd"] = row["step_ms"] / base
    return results


def markdown(results: dict) -> str:
    lines = [
        f"Training step of a small CNN student (batch {results['batch']}, 32x32, {results['device']}, "
        f"torch {results['torch']}); median of {results['steps']} steps.",
        "",
        "| loss | step (ms) | ratio to KD |",
        "|---|---|---|",
    ]
    for name, row in results["variants"].items():
        label = "KD" if name == "kd" else f"KD + TopologyLoss({name})"
        lines.append(f"| {label} | {row['step_ms']:.1f} | {row['ratio_to_kd']:.2f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--batch", type=int, default=64, help="images per training step (= points of the cloud)")
    parser.add_argument("--steps", type=int, default=20, help="timed steps per variant (median), after 3 warm-up steps")
    parser.add_argument("--delta", type=float, default=5.0, help="weight of the topology loss (TopKD: 5)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument("--device", default="cpu", help="device of the models and the batch (cpu, cuda)")
    add_output_arguments(parser)
    args = parser.parse_args()
    results = run(args)
    write_results(output_dir(args) / "bench_loss", results, markdown(results), threads=args.threads)


if __name__ == "__main__":
    main()
