"""Throughput of torchtopo's diagram distances and vectorizations against gudhi and persim.

Diagrams: H1 of 2-D Gaussian clouds and of noisy unit circles (noise 0.1) of 10, 50, 100 and
200 points, computed once (float64). Distances: ``--pairs`` pairs per set, each implementation
given the whole list (torchtopo one batched call; gudhi and persim one call per pair), checked
against gudhi first (largest absolute difference in the table), then timed interleaved. Rates in
pairs/s; persim is timed on a prefix of ``--persim-pairs`` pairs. Peers: gudhi's
``wasserstein_distance`` (POT) for order 1 and 2, ``bottleneck_distance`` (exact by default
precision); persim's ``wasserstein`` (order 1, L-inf ground metric) and ``bottleneck``.
Sinkhorn: its relative excess over the exact distance and its rate for several ``epsilon``.
Vectorizations: ``--batch`` H1 diagrams of 100-point clouds, torchtopo in float32 (the dtype of a
training step) against gudhi.representations' ``fit_transform`` in float64, largest difference
relative to the output's peak checked first. Writes ``distances``, ``distances_sinkhorn`` and
``vectorizations`` (``.md`` and ``.json``).

    python benchmarks/bench_distances.py                    # about 25 minutes on one core
    python benchmarks/bench_distances.py --write-results    # the recorded tables
    python benchmarks/bench_distances.py --tables vectorizations
"""

from __future__ import annotations

import os

# One thread for every library unless told otherwise (before numpy reads it).
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse
import warnings

import gudhi
import numpy as np
import persim
import torch
from common import add_output_arguments, interleaved_medians, machine, output_dir, write_results
from gudhi import representations as gudhi_representations
from gudhi.wasserstein import wasserstein_distance as gudhi_wasserstein

import torchtopo
from torchtopo import rips_persistence
from torchtopo.distances import bottleneck_distance, wasserstein_distance
from torchtopo.vectorize import BettiCurve, Landscape, PersistenceEntropy, PowerWeight, Silhouette

SIZES = (10, 50, 100, 200)


def clouds(kind: str, n: int, count: int, rng: np.random.Generator) -> np.ndarray:
    if kind == "gaussian":
        return rng.normal(size=(count, n, 2))
    angles = rng.uniform(0, 2 * np.pi, size=(count, n))
    return np.stack([np.cos(angles), np.sin(angles)], -1) + 0.1 * rng.normal(size=(count, n, 2))


def h1(points: np.ndarray) -> list[np.ndarray]:
    return [d.numpy() for d in rips_persistence(torch.from_numpy(points), max_dim=1).to_list(1)]


def distance_rows(args: argparse.Namespace, rng: np.random.Generator) -> list[dict]:
    rows = []
    for kind in ("gaussian", "circle"):
        for n in SIZES:
            diagrams = h1(clouds(kind, n, 2 * args.pairs, rng))
            a, b = diagrams[::2], diagrams[1::2]
            ta, tb = [torch.from_numpy(d) for d in a], [torch.from_numpy(d) for d in b]
            prefix = slice(0, args.persim_pairs)
            row = {"set": kind, "points": n, "mean_diagram_points": float(np.mean([len(d) for d in diagrams]))}
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                calls = {
                    "W1": (lambda: wasserstein_distance(ta, tb),
                           lambda: [gudhi_wasserstein(x, y, order=1.0) for x, y in zip(a, b)],
                           lambda: [persim.wasserstein(x, y) for x, y in zip(a[prefix], b[prefix])]),
                    "W2": (lambda: wasserstein_distance(ta, tb, order=2.0),
                           lambda: [gudhi_wasserstein(x, y, order=2.0) for x, y in zip(a, b)], None),
                    "bottleneck": (lambda: bottleneck_distance(ta, tb),
                                   lambda: [gudhi.bottleneck_distance(x, y) for x, y in zip(a, b)],
                                   lambda: [persim.bottleneck(x, y) for x, y in zip(a[prefix], b[prefix])]),
                }
                for name, (ours, theirs, persims) in calls.items():
                    reference = np.array(theirs())
                    row[f"{name}_max_abs_error"] = float(np.abs(ours().numpy() - reference).max())
                    if persims is not None:
                        row[f"{name}_persim_max_abs_error"] = float(
                            np.abs(np.array(persims()) - reference[prefix]).max())
                    timed = {"torchtopo": ours, "gudhi": theirs} | ({"persim": persims} if persims else {})
                    seconds = interleaved_medians(timed, args.repeats)
                    row[f"{name}_torchtopo"] = args.pairs / seconds["torchtopo"]
                    row[f"{name}_gudhi"] = args.pairs / seconds["gudhi"]
                    if persims is not None:
                        row[f"{name}_persim"] = len(a[prefix]) / seconds["persim"]
            rows.append(row)
            print(f"{kind} {n}: " + ", ".join(f"{k} {row[f'{k}_torchtopo'] / row[f'{k}_gudhi']:.1f}x gudhi"
                                              for k in ("W1", "W2", "bottleneck")), flush=True)
    return rows


def sinkhorn_rows(args: argparse.Namespace, rng: np.random.Generator) -> list[dict]:
    rows = []
    for kind in ("gaussian", "circle"):
        diagrams = h1(clouds(kind, 100, 2 * args.pairs, rng))
        ta, tb = [torch.from_numpy(d) for d in diagrams[::2]], [torch.from_numpy(d) for d in diagrams[1::2]]
        for order in (1.0, 2.0):
            exact = wasserstein_distance(ta, tb, order=order)
            for epsilon in (1e-1, 1e-2, 1e-3):
                for dtype in (torch.float64, torch.float32):
                    a, b = [t.to(dtype) for t in ta], [t.to(dtype) for t in tb]

                    def run() -> torch.Tensor:
                        return wasserstein_distance(a, b, order=order, method="sinkhorn", epsilon=epsilon)

                    excess = ((run().double() - exact) / exact.clamp_min(1e-12)).numpy()
                    seconds = interleaved_medians({"sinkhorn": run}, 1, warmup=0)["sinkhorn"]
                    rows.append({"set": kind, "order": order, "epsilon": epsilon, "dtype": str(dtype).split(".")[-1],
                                 "mean_rel_excess": float(np.mean(excess)), "max_rel_excess": float(np.max(excess)),
                                 "min_rel_excess": float(np.min(excess)), "pairs_per_s": args.pairs / seconds})
                    print(f"sinkhorn {kind} W{order:g} eps={epsilon:g} {rows[-1]['dtype']}: mean "
                          f"{rows[-1]['mean_rel_excess']:.1e} max {rows[-1]['max_rel_excess']:.1e}", flush=True)
    return rows


def vectorization_rows(args: argparse.Namespace, rng: np.random.Generator) -> list[dict]:
    rows = []
    for kind in ("gaussian", "circle"):
        # float32 diagrams, and gudhi given exactly those values in float64
        single = [torch.from_numpy(d).float() for d in h1(clouds(kind, 100, args.batch, rng))]
        diagrams = [d.double().numpy() for d in single]
        batch = torchtopo.Diagrams.from_list([single])
        pairs, mask = batch.pairs[0], batch.mask[0]
        cases = {
            "Landscape": (Landscape(5, 100), gudhi_representations.Landscape(5, 100)),
            "Silhouette": (Silhouette(PowerWeight(1.0), 100), gudhi_representations.Silhouette(
                lambda x: x[1] - x[0], 100)),
            "BettiCurve": (BettiCurve(100), gudhi_representations.BettiCurve(100)),
            "Entropy (vector)": (PersistenceEntropy("vector", resolution=100),
                                 gudhi_representations.Entropy("vector", resolution=100)),
            "Entropy (scalar)": (PersistenceEntropy(), gudhi_representations.Entropy()),
        }
        for name, (ours, theirs) in cases.items():
            ours.fit(single)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                reference = theirs.fit_transform(diagrams)

            def run() -> torch.Tensor:
                with torch.no_grad():
                    return ours(pairs, mask=mask)

            out = run().flatten(1).double().numpy()
            defined = ~np.isnan(reference)
            peak = max(np.abs(reference[defined]).max(), 1e-300)
            error = float(np.abs(out[defined] - reference[defined]).max() / peak)
            seconds = interleaved_medians({"torchtopo": run, "gudhi": lambda: theirs.transform(diagrams)}, args.repeats)
            rows.append({"set": kind, "vectorization": name, "max_rel_error": error,
                         "torchtopo": args.batch / seconds["torchtopo"], "gudhi": args.batch / seconds["gudhi"]})
            print(f"{name} {kind}: {rows[-1]['torchtopo'] / rows[-1]['gudhi']:.1f}x gudhi, error {error:.1e}",
                  flush=True)
    return rows


def distances_table(results: dict) -> str:
    lines = [
        f"Diagram distances, pairs/s: {results['pairs']} pairs of H1 diagrams per row (persim on "
        f"{results['persim_pairs']}); {results['machine']}.",
        "",
        "| set | points | diagram points | W1 torchtopo | W1 gudhi | W1 persim | x gudhi | W2 torchtopo | W2 gudhi "
        "| x gudhi | bottleneck torchtopo | bottleneck gudhi | bottleneck persim | x gudhi | max abs diff vs gudhi |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results["rows"]:
        error = max(r[f"{k}_max_abs_error"] for k in ("W1", "W2", "bottleneck"))
        lines.append(
            f"| {r['set']} | {r['points']} | {r['mean_diagram_points']:.1f} | {r['W1_torchtopo']:,.0f} "
            f"| {r['W1_gudhi']:,.0f} | {r['W1_persim']:,.0f} | {r['W1_torchtopo'] / r['W1_gudhi']:.1f} "
            f"| {r['W2_torchtopo']:,.0f} | {r['W2_gudhi']:,.0f} | {r['W2_torchtopo'] / r['W2_gudhi']:.1f} "
            f"| {r['bottleneck_torchtopo']:,.0f} | {r['bottleneck_gudhi']:,.0f} | {r['bottleneck_persim']:,.0f} "
            f"| {r['bottleneck_torchtopo'] / r['bottleneck_gudhi']:.1f} | {error:.0e} |")
    return "\n".join(lines) + "\n"


def sinkhorn_table(results: dict) -> str:
    lines = [
        "Sinkhorn (`method=\"sinkhorn\"`, default `tol`): relative excess over the exact Wasserstein distance, "
        f"H1 diagrams of 100-point clouds, {results['pairs']} pairs, on the CPU.",
        "",
        "| set | order | epsilon | input dtype | mean excess | max excess | pairs/s |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results["rows"]:
        lines.append(f"| {r['set']} | {r['order']:g} | {r['epsilon']:g} | {r['dtype']} | {r['mean_rel_excess']:.1e} "
                     f"| {r['max_rel_excess']:.1e} | {r['pairs_per_s']:,.0f} |")
    return "\n".join(lines) + "\n"


def vectorizations_table(results: dict) -> str:
    lines = [
        f"Vectorizations, diagrams/s: {results['batch']} H1 diagrams of 100-point clouds, torchtopo in float32, "
        f"gudhi.representations in float64; {results['machine']}.",
        "",
        "| set | vectorization | torchtopo | gudhi | x gudhi | max error / peak |",
        "|---|---|---|---|---|---|",
    ]
    for r in results["rows"]:
        lines.append(f"| {r['set']} | {r['vectorization']} | {r['torchtopo']:,.0f} | {r['gudhi']:,.0f} "
                     f"| {r['torchtopo'] / r['gudhi']:.1f} | {r['max_rel_error']:.0e} |")
    return "\n".join(lines) + "\n"


TABLES = {"distances": (distance_rows, distances_table), "distances_sinkhorn": (sinkhorn_rows, sinkhorn_table),
          "vectorizations": (vectorization_rows, vectorizations_table)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--pairs", type=int, default=256, help="diagram pairs per distance row")
    parser.add_argument("--persim-pairs", type=int, default=32, help="persim is timed on this prefix")
    parser.add_argument("--batch", type=int, default=1024, help="diagrams per vectorization row")
    parser.add_argument("--repeats", type=int, default=3, help="timed rounds (interleaved medians)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (gudhi and persim use one)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the point clouds")
    parser.add_argument("--tables", nargs="+", choices=TABLES, default=list(TABLES), help="which tables to run")
    add_output_arguments(parser)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(args.seed)
    common = {"machine": machine(gudhi=gudhi.__version__, POT=__import__("ot").__version__),
              "threads": args.threads, "pairs": args.pairs, "persim_pairs": args.persim_pairs, "batch": args.batch}
    out = output_dir(args)
    for name in args.tables:
        rows, table = TABLES[name]
        results = {**common, "rows": rows(args, rng)}
        write_results(out / name, results, table(results), threads=args.threads)


if __name__ == "__main__":
    main()
