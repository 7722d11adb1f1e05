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

from torchtopo import Diagrams, rips_persistence


def sample(batch: int, points: int, noise: float, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Half noisy unit circles, half Gaussian blobs: ``(batch, points, 2)`` and labels ``(batch,)``."""
    angles = 2 * math.pi * torch.rand(batch, points, generator=generator)
    circles = torch.stack([angles.cos(), angles.sin()], dim=-1)
    blobs = 0.5 * torch.randn(batch, points, 2, generator=generator)
    labels = torch.arange(batch) % 2
    clouds = torch.where(labels.view(-1, 1, 1).bool(), blobs, circles)
    return clouds + noise * torch.randn(clouds.shape, generator=generator), labels


def draw(clouds: torch.Tensor, diagrams: Diagrams, kinds: list[str]):
    """The figure: clouds 0 and 1 (top) over their diagrams (bottom), drawn by
    :func:`torchtopo.plot.plot_diagram`: square axes, the diagonal across the whole range,
    infinite bars as triangles on the +inf line."""
    import matplotlib.pyplot as plt

    from torchtopo.plot import plot_diagram

    fig, axes = plt.subplots(2, 2, figsize=(8, 8), layout="constrained")
    for column, b in enumerate((0, 1)):
        axes[0, column].scatter(*clouds[b].T, s=6)
        axes[0, column].set_title(f"cloud {b}: {kinds[b]}")
        axes[0, column].set_aspect("equal")
        plot_diagram(diagrams, index=b, ax=axes[1, column]).set_title(f"diagram of cloud {b}")
    return fig


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("outputs/noisy_circles"),
                        help="folder for summary.json and diagrams.png")
    parser.add_argument("--batch", type=int, default=16, help="clouds, alternately circle and blob")
    parser.add_argument("--points", type=int, default=100, help="points per cloud")
    parser.add_argument("--noise", type=float, default=0.08, help="standard deviation of the Gaussian noise")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random clouds")
    args = parser.parse_args()

    clouds, labels = sample(args.batch, args.points, args.noise, torch.Generator().manual_seed(args.seed))
    # The one infinite H0 bar of each cloud is kept for the figure; H1 has no infinite bar.
    diagrams = rips_persistence(clouds, max_dim=1, keep_infinite=True)
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
    except ImportError:
        print("matplotlib not installed: no figure written")
        return
    fig = draw(clouds, diagrams, [row["kind"] for row in summary])
    fig.savefig(args.out / "diagrams.png", dpi=100)
    print(f"wrote {args.out / 'summary.json'} and {args.out / 'diagrams.png'}")


if __name__ == "__main__":
    main()
