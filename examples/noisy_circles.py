"""Diagrams of noisy circles: the loop shows up as one long H1 bar, the blobs have none.

Run: ``python examples/noisy_circles.py --out outputs/noisy_circles`` (offline, a few seconds).
Writes ``summary.json`` (the longest H1 bar of every cloud) and, with matplotlib, ``diagrams.png``.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import torch

from torchtopo import rips_persistence


def sample(batch: int, points: int, noise: float, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Half noisy unit circles, half Gaussian blobs: ``(batch, points, 2)`` and labels ``(batch,)``."""
    angles = 2 * math.pi * torch.rand(batch, points, generator=generator)
    circles = torch.stack([angles.cos(), angles.sin()], dim=-1)
    blobs = 0.5 * torch.randn(batch, points, 2, generator=generator)
    labels = torch.arange(batch) % 2
    clouds = torch.where(labels.view(-1, 1, 1).bool(), blobs, circles)
    return clouds + noise * torch.randn(clouds.shape, generator=generator), labels


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("outputs/noisy_circles"))
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--points", type=int, default=100)
    parser.add_argument("--noise", type=float, default=0.08)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    clouds, labels = sample(args.batch, args.points, args.noise, torch.Generator().manual_seed(args.seed))
    diagrams = rips_persistence(clouds, max_dim=1)
    longest = diagrams.persistence(1).max(dim=1).values
    args.out.mkdir(parents=True, exist_ok=True)
    summary = [
        {"cloud": b, "kind": "circle" if labels[b] == 0 else "blob", "longest_h1_bar": round(float(longest[b]), 4)}
        for b in range(args.batch)
    ]
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2))
    for row in summary:
        print(f"cloud {row['cloud']:2d} {row['kind']:6s} longest H1 bar {row['longest_h1_bar']:.3f}")
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib not installed: no figure written")
        return
    fig, axes = plt.subplots(2, 2, figsize=(8, 8))
    for column, b in enumerate((0, 1)):
        axes[0, column].scatter(*clouds[b].T, s=6)
        axes[0, column].set_title(summary[b]["kind"])
        axes[0, column].set_aspect("equal")
        for d, color in ((0, "tab:blue"), (1, "tab:orange")):
            pairs = diagrams.to_list(d)[b]
            axes[1, column].scatter(pairs[:, 0], pairs[:, 1], s=10, c=color, label=f"H{d}")
        top = float(diagrams.pairs[0][b].max()) * 1.05
        axes[1, column].plot([0, top], [0, top], "k--", lw=0.8)
        axes[1, column].set_xlabel("birth")
        axes[1, column].set_ylabel("death")
        axes[1, column].legend()
    fig.tight_layout()
    fig.savefig(args.out / "diagrams.png", dpi=100)
    print(f"wrote {args.out / 'summary.json'} and {args.out / 'diagrams.png'}")


if __name__ == "__main__":
    main()
