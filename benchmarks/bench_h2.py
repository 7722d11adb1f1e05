"""Throughput of the native H0+H1+H2 backend against giotto-ph and gudhi.

B clouds (default 64) of m points (default 64 and 128): noisy samples of the unit sphere S² in
R³, Gaussian clouds in R³ and Gaussian clouds in R^512. Each rate is clouds/s (median over
repeats that interleave the implementations, as the machine may be shared) of:

- torchtopo: ``rips_persistence(points, max_dim=2)`` on float32 points, the whole pipeline
  (distances, native pairing of H0, H1 and H2, exact differentiable gather);
- giotto-ph: ``ripser_parallel(cloud, maxdim=2, n_threads=--threads)`` on float32 clouds (it
  converts its distances to float32 whatever it is given);
- gudhi: ``RipsComplex(points=cloud).create_simplex_tree(max_dimension=3).persistence()`` on
  float64 clouds (its own dtype).

A peer whose whole batch would take longer than ``--budget`` seconds is timed on as many of its
first clouds as fit in that time (at least ``--min-clouds``) and its rate extrapolated; the table
says on how many. Before timing,
torchtopo's diagrams of the first clouds are checked against gudhi's (with edge collapse, the
same diagrams) in every dimension: bottleneck distance within 1e-5 of the diagram's scale.

    python benchmarks/bench_h2.py                     # writes benchmarks/_scratch/native_h2.{json,md}
    python benchmarks/bench_h2.py --write-results     # writes benchmarks/results/native_h2.{json,md}
    python benchmarks/bench_h2.py --m 64 --kinds sphere --repeats 3 --peers giotto-ph
"""

from __future__ import annotations

import os

# torch's OpenMP workers spin for a while after each parallel region; in one process with
# single-threaded peers they would steal a core from the peer being timed.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse
import time
from functools import partial
from typing import Callable

import gudhi
import numpy as np
import torch
from common import add_output_arguments, interleaved_medians, output_dir, write_results

from torchtopo import rips_persistence
from torchtopo.rips.distances import pairwise_distances
from torchtopo.rips.native_h2 import h2_apparent_share

KINDS = {"sphere": 3, "gaussian": 3, "gaussian-512": 512}


def make_batch(kind: str, batch: int, m: int, seed: int) -> np.ndarray:
    """``(batch, m, d)`` float32 clouds: noisy samples of the unit sphere in R³ (noise 0.05),
    or standard Gaussian clouds in R³ or R^512."""
    rng = np.random.default_rng(seed)
    if kind == "sphere":
        points = rng.normal(size=(batch, m, 3))
        points /= np.linalg.norm(points, axis=-1, keepdims=True)
        points += 0.05 * rng.normal(size=points.shape)
    else:
        points = rng.normal(size=(batch, m, KINDS[kind]))
    return points.astype(np.float32)


def native(points: torch.Tensor):
    """H0+H1+H2 diagrams of ``points`` ``(B, m, d)`` through the native backend."""
    return rips_persistence(points, 2, backend="native")


def gudhi_cloud(cloud: np.ndarray, collapse: bool = False) -> gudhi.SimplexTree:
    """gudhi's Rips complex of one float64 cloud up to tetrahedra, its persistence computed;
    with ``collapse``, edges are collapsed first (the same diagrams, far fewer simplices)."""
    rips = gudhi.RipsComplex(points=cloud.astype(np.float64))
    if collapse:
        tree = rips.create_simplex_tree(max_dimension=1)
        tree.collapse_edges(nb_iterations=10)
        tree.expansion(3)
    else:
        tree = rips.create_simplex_tree(max_dimension=3)
    tree.persistence()
    return tree


def peers(threads: int) -> dict[str, Callable[[np.ndarray], object]]:
    """Per-cloud callables of the peers, each given the dtype it computes in."""
    from gph import ripser_parallel

    return {
        f"giotto-ph ({threads} threads)": lambda cloud: ripser_parallel(cloud, maxdim=2, n_threads=threads),
        "gudhi": gudhi_cloud,
    }


def check_against_gudhi(points: np.ndarray) -> float:
    """Largest bottleneck distance to gudhi's diagrams (dimensions 0 to 2) over ``points``
    ``(b, m, d)``, relative to each diagram's scale."""
    diagrams = native(torch.from_numpy(points))
    worst = 0.0
    for b, cloud in enumerate(points):
        tree = gudhi_cloud(cloud, collapse=True)
        for dim in range(3):
            reference = tree.persistence_intervals_in_dimension(dim)
            reference = reference[np.isfinite(reference[:, 1])] if len(reference) else np.zeros((0, 2))
            mine = diagrams.to_list(dim)[b].double().numpy()
            scale = max(np.abs(reference).max(initial=0), 1e-12)
            worst = max(worst, gudhi.bottleneck_distance(mine, reference) / scale)
    return worst


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--batch", type=int, default=64, help="clouds per batch")
    parser.add_argument("--m", type=int, nargs="+", default=[64, 128], help="points per cloud")
    parser.add_argument("--kinds", nargs="+", choices=list(KINDS), default=list(KINDS),
                        help="clouds")
    parser.add_argument("--peers", nargs="+", choices=["giotto-ph", "gudhi"], default=["giotto-ph", "gudhi"],
                        help="peers to time")
    parser.add_argument("--repeats", type=int, default=5, help="interleaved repeats")
    parser.add_argument("--min-clouds", type=int, default=2,
                        help="fewest clouds a peer slower than --budget is timed on")
    parser.add_argument("--budget", type=float, default=2.0,
                        help="seconds a peer may spend per repeat")
    parser.add_argument("--threads", type=int, default=2,
                        help="threads of torchtopo and giotto-ph")
    add_output_arguments(parser)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    out = output_dir(args) / "bench_h2.json"

    load_before = os.getloadavg()[0]  # the machine may be shared: say how busy it was
    rows = []
    for kind in args.kinds:
        for m in args.m:
            points = make_batch(kind, args.batch, m, seed=m * KINDS[kind])
            tensor = torch.from_numpy(points)
            error = check_against_gudhi(points[:2])  # also numba's compilation on a first run
            runs = {"torchtopo": (lambda: native(tensor), args.batch)}
            for name, run in peers(args.threads).items():
                if not any(name.startswith(peer) for peer in args.peers):
                    continue
                start = time.perf_counter()
                run(points[0])
                per_cloud = time.perf_counter() - start
                count = min(args.batch, max(args.min_clouds, int(args.budget / per_cloud)))
                runs[name] = (partial(lambda run, subset: [run(c) for c in subset], run, points[:count]), count)
            seconds = interleaved_medians({name: call for name, (call, _) in runs.items()}, args.repeats, warmup=0)
            order = pairwise_distances(tensor)
            diagrams = native(tensor)
            rows.append({
                "kind": kind, "m": m, "d": KINDS[kind], "batch": args.batch,
                "rates": {name: runs[name][1] / seconds[name] for name in runs},
                "clouds": {name: runs[name][1] for name in runs},
                "error": error,
                "h2_points": float(diagrams.mask[2].sum(dim=1).double().mean()),
                "h2_apparent": h2_apparent_share(order),
            })
            print(f"{kind} m={m}: " + ", ".join(f"{k}: {v:.3g}" for k, v in rows[-1]["rates"].items()), flush=True)
    meta = {
        "unit": "clouds/s, median over interleaved repeats",
        "load": f"load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after",
    }
    table = (
        f"H0+H1+H2, B = {args.batch} clouds; {meta['unit']} ({args.repeats}); {meta['load']}; a count in "
        f"parentheses: the clouds a slow peer was timed on\n\n{markdown(rows)}"
    )
    write_results(out, {"meta": meta, "rows": rows}, table, threads=args.threads)


def markdown(rows: list[dict]) -> str:
    """A markdown table: rates (clouds timed), the ratio of torchtopo to each peer, the mean number
    of H2 points per cloud, the share of apparent H2 columns and the check against gudhi."""
    names = list(rows[0]["rates"])
    peer_names = names[1:]
    header = (
        "| H0+H1+H2 | m | d | " + " | ".join(names) + " | " + " | ".join(f"vs {k}" for k in peer_names)
        + " | H2 points | apparent H2 | error vs gudhi |"
    )
    lines = [header, "|" + "---|" * (header.count("|") - 1)]
    for row in rows:
        mine = row["rates"]["torchtopo"]
        rates = " | ".join(
            f"{row['rates'][k]:.3g}" + ("" if row["clouds"][k] == row["batch"] else f" ({row['clouds'][k]})")
            for k in names
        )
        ratios = " | ".join(f"{mine / row['rates'][k]:.3g}x" for k in peer_names)
        lines.append(
            f"| {row['kind']} | {row['m']} | {row['d']} | {rates} | {ratios} | {row['h2_points']:.1f} | "
            f"{100 * row['h2_apparent']:.2f}% | {row['error']:.1e} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
