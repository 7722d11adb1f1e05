"""Throughput of batched Vietoris–Rips persistence against gudhi, ripser and giotto-ph.

One run times every implementation on the same clouds and reports clouds/s (median over
repeats) and the ratio of torchtopo to each peer. Slow peers are timed on a prefix of the batch
(at least ``--min-clouds`` clouds) and their rate extrapolated; the table says how many clouds
each rate is measured on. Every torchtopo result is checked against gudhi's diagrams first
(bottleneck distance within 1e-5 relative), so a fast wrong answer cannot enter the table.

    python benchmarks/bench_rips.py                       # the full grid (several minutes)
    python benchmarks/bench_rips.py --m 64 --d 512 --dims 0 --repeats 3
"""

from __future__ import annotations

import os

# torch's OpenMP workers spin for a while after each parallel region; in one process with
# single-threaded peers they would steal a core from the peer being timed.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse
import time
import warnings
from pathlib import Path
from typing import Callable

import gudhi
import numpy as np
import torch
from common import RESULTS, clouds_per_second, machine, write_results

from torchtopo import rips_persistence


def make_batch(kind: str, batch: int, m: int, d: int, seed: int) -> np.ndarray:
    """``(batch, m, d)`` float32 clouds: Gaussian, or a noisy circle embedded by a random rotation."""
    rng = np.random.default_rng(seed)
    if kind == "gaussian":
        return rng.normal(size=(batch, m, d)).astype(np.float32)
    angles = rng.uniform(0, 2 * np.pi, size=(batch, m))
    plane = np.stack([np.cos(angles), np.sin(angles)], -1)
    rotation = np.linalg.qr(rng.normal(size=(d, d)))[0][:2]
    return (plane @ rotation + 0.05 * rng.normal(size=(batch, m, d))).astype(np.float32)


def gudhi_cloud(cloud: np.ndarray, max_dim: int, collapse: bool) -> list:
    if collapse and max_dim >= 1:
        tree = gudhi.RipsComplex(points=cloud).create_simplex_tree(max_dimension=1)
        size = -1
        while tree.num_simplices() != size:  # one collapse pass per call, until nothing changes
            size = tree.num_simplices()
            tree.collapse_edges(nb_iterations=1)
        tree.expansion(max_dim + 1)
    else:
        tree = gudhi.RipsComplex(points=cloud).create_simplex_tree(max_dimension=max_dim + 1)
    return tree.persistence()


def peers(max_dim: int, threads: int) -> dict[str, Callable[[np.ndarray], object]]:
    """Per-cloud callables of the peers that are installed."""
    found: dict[str, Callable[[np.ndarray], object]] = {
        "gudhi": lambda cloud: gudhi_cloud(cloud, max_dim, collapse=False),
    }
    if max_dim >= 1:
        found["gudhi+collapse"] = lambda cloud: gudhi_cloud(cloud, max_dim, collapse=True)
    try:
        from ripser import ripser

        found["ripser"] = lambda cloud: ripser(cloud, maxdim=max_dim)
    except ImportError:
        pass
    try:
        from gph import ripser_parallel

        found[f"giotto-ph ({threads} threads)"] = lambda cloud: ripser_parallel(cloud, maxdim=max_dim, n_threads=threads)
    except ImportError:
        pass
    return found


def ours(max_dim: int) -> dict[str, Callable[[torch.Tensor], object]]:
    """torchtopo's backends for this dimension, batched."""
    found = {"torchtopo (auto)": lambda points: rips_persistence(points, max_dim)}
    if max_dim >= 1:
        found["torchtopo (gudhi backend)"] = lambda points: rips_persistence(points, max_dim, backend="gudhi")
    return found


def time_on_prefix(row: dict, name: str, run: Callable[[np.ndarray], object], points: np.ndarray, args) -> None:
    """Rate of ``run`` on the whole batch, or on its first ``--min-clouds`` clouds when the whole
    batch would take longer than ``--budget`` seconds a repeat (after a one-cloud warm-up)."""
    start = time.perf_counter()
    run(points[:1])
    estimate = (time.perf_counter() - start) * len(points)
    clouds = len(points) if estimate < args.budget else min(len(points), args.min_clouds)
    prefix = points[:clouds]
    row["rates"][name] = clouds_per_second(lambda: run(prefix), clouds, args.repeats)
    row["clouds"][name] = clouds


def check_against_gudhi(points: np.ndarray, max_dim: int, run: Callable[[torch.Tensor], object]) -> float:
    """Largest bottleneck distance to gudhi over a few clouds, relative to the diagram's scale."""
    sample = points[:4]
    dgm = run(torch.from_numpy(sample))
    worst = 0.0
    for b, cloud in enumerate(sample):
        tree = gudhi.RipsComplex(points=cloud.astype(np.float64)).create_simplex_tree(max_dimension=max_dim + 1)
        tree.compute_persistence()
        for dim in range(max_dim + 1):
            reference = tree.persistence_intervals_in_dimension(dim)
            reference = reference[np.isfinite(reference[:, 1])] if len(reference) else np.zeros((0, 2))
            mine = dgm.to_list(dim)[b].double().numpy()
            scale = max(np.abs(reference).max(initial=0), 1e-12)
            worst = max(worst, gudhi.bottleneck_distance(mine, reference) / scale)
    return worst


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--m", type=int, nargs="+", default=[32, 64, 128, 256])
    parser.add_argument("--d", type=int, nargs="+", default=[64, 512])
    parser.add_argument("--kinds", nargs="+", default=["gaussian", "circle"])
    parser.add_argument("--dims", type=int, nargs="+", default=[0, 1], help="max_dim values: 0 = H0, 1 = H0+H1")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--min-clouds", type=int, default=4, help="peers slower than --budget s are timed on this many")
    parser.add_argument("--budget", type=float, default=2.0, help="seconds a peer may spend per repeat")
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--out", type=Path, default=RESULTS / "rips.json", help=".json; the .md table goes beside it")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    # ripser warns about point clouds with d >= m, which are what we mean to pass.
    warnings.filterwarnings("ignore", message="The input point cloud has more columns than rows")
    warnings.filterwarnings("ignore", message="The input matrix is square")

    rows = []
    for max_dim in args.dims:
        for kind in args.kinds:
            for m in args.m:
                for d in args.d:
                    points = make_batch(kind, args.batch, m, d, seed=m * d)
                    row = {"max_dim": max_dim, "kind": kind, "m": m, "d": d, "batch": args.batch, "rates": {}, "clouds": {}}
                    for name, run in ours(max_dim).items():
                        row.setdefault("error", {})[name] = check_against_gudhi(points, max_dim, run)
                        time_on_prefix(row, name, lambda prefix: run(torch.from_numpy(prefix)), points, args)
                    for name, run in peers(max_dim, args.threads).items():
                        time_on_prefix(row, name, lambda prefix: [run(c) for c in prefix], points, args)
                    rows.append(row)
                    rates = ", ".join(f"{k}: {v:.1f}" for k, v in row["rates"].items())
                    print(f"H0{'+H1' if max_dim else ''} {kind} m={m} d={d}: {rates}", flush=True)
    meta = {
        "machine": machine(gudhi=gudhi.__version__) + f", threads {args.threads}",
        "unit": "clouds/s, median over repeats",
    }
    table = (
        f"Vietoris-Rips persistence, B = {args.batch} clouds, {meta['machine']}. "
        f"Rates in clouds/s (median of {args.repeats}); slow peers timed on a prefix of the batch.\n\n"
        + markdown(rows)
    )
    write_results(args.out, {"meta": meta, "rows": rows}, table)


def markdown(rows: list[dict]) -> str:
    """One markdown table per homology range, with the ratio of torchtopo (auto) to each peer."""
    tables = []
    for max_dim in sorted({row["max_dim"] for row in rows}):
        group = [row for row in rows if row["max_dim"] == max_dim]
        names = list(group[0]["rates"])
        peer_names = [k for k in names if not k.startswith("torchtopo")]
        header = f"| H0{'+H1' if max_dim else ''} | m | d | " + " | ".join(names) + " | " + " | ".join(f"vs {k}" for k in peer_names) + " |"
        lines = [header, "|" + "---|" * (header.count("|") - 1)]
        for row in group:
            mine = row["rates"]["torchtopo (auto)"]
            rates = " | ".join(f"{row['rates'][k]:.1f}" for k in names)
            ratios = " | ".join(f"{mine / row['rates'][k]:.1f}x" for k in peer_names)
            lines.append(f"| {row['kind']} | {row['m']} | {row['d']} | {rates} | {ratios} |")
        tables.append("\n".join(lines))
    return "\n\n".join(tables)


if __name__ == "__main__":
    main()
