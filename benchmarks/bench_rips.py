"""Throughput of batched Vietoris–Rips persistence against gudhi, ripser and giotto-ph.

One run times every implementation on the same clouds and reports clouds/s (median over
repeats that go round-robin over the implementations, as the machine may be shared) and the
ratio of torchtopo to each peer. Each peer gets the clouds in the dtype it computes in,
converted before timing:

- gudhi: float64 (``RipsComplex`` computes in double; float32 input costs it a conversion);
- ripser: float64 (its distances come from scikit-learn's ``pairwise_distances``, which upcasts
  float32 input chunk by chunk; its reduction then runs on a float32 copy of the matrix);
- giotto-ph: float32 (``ripser_parallel`` casts its distance matrix to float32 and reduces in
  float32);
- torchtopo: float32 (what a network hands it).

Slow peers (and torchtopo's gudhi backend) are timed on a prefix of the batch (at least
``--min-clouds`` clouds) and their rate extrapolated; the table says how many clouds each rate
is measured on. Every torchtopo result is checked against gudhi's diagrams first (bottleneck distance within 1e-5 relative), so a fast
wrong answer cannot enter the table.

``--targets`` runs the rows of the project's speed targets instead (issue 17): H0 at m = 64
against gudhi, H0+H1 at m = 64 ... 1024 against giotto-ph, and H0+H1+H2 at m = 64 and 128 in 3-D
and in 512-D against giotto-ph (the clouds of ``bench_h2.py``), B = 64 clouds, d = 512 unless
said; each row gives the ratio and its target.

    python benchmarks/bench_rips.py                       # the grid (several minutes)
    python benchmarks/bench_rips.py --m 64 --d 512 --dims 0 --repeats 3
    python benchmarks/bench_rips.py --targets             # the target rows, into bench_rips_targets.md
"""

from __future__ import annotations

import os

# torch's OpenMP workers spin for a while after each parallel region; in one process with
# single-threaded peers they would steal a core from the peer being timed.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse
import time
import warnings
from functools import partial
from typing import Callable

import gudhi
import numpy as np
import torch
from common import add_output_arguments, interleaved_medians, output_dir, write_results

from torchtopo import rips_persistence

GIOTTO = "giotto-ph"


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


def peers(max_dim: int, threads: int) -> dict[str, tuple[Callable[[np.ndarray], object], type]]:
    """Per-cloud callables of the peers that are installed, each with the dtype to give it."""
    found: dict[str, tuple[Callable[[np.ndarray], object], type]] = {
        "gudhi": (partial(gudhi_cloud, max_dim=max_dim, collapse=False), np.float64),
    }
    if max_dim >= 1:
        found["gudhi+collapse"] = (partial(gudhi_cloud, max_dim=max_dim, collapse=True), np.float64)
    try:
        from ripser import ripser

        found["ripser"] = (lambda cloud: ripser(cloud, maxdim=max_dim), np.float64)
    except ImportError:
        pass
    try:
        from gph import ripser_parallel

        found[f"{GIOTTO} ({threads} threads)"] = (
            lambda cloud: ripser_parallel(cloud, maxdim=max_dim, n_threads=threads), np.float32)
    except ImportError:
        pass
    return found


#: The name of torchtopo's default backend in the tables (always timed on the whole batch).
AUTO = "torchtopo (auto)"


def ours(max_dim: int, gudhi_backend: bool = True) -> dict[str, Callable[[torch.Tensor], object]]:
    """torchtopo's backends for this dimension, batched."""
    found = {AUTO: lambda points: rips_persistence(points, max_dim)}
    if max_dim >= 1 and gudhi_backend:
        found["torchtopo (gudhi backend)"] = lambda points: rips_persistence(points, max_dim, backend="gudhi")
    return found


def reference_diagrams(cloud: np.ndarray, max_dim: int, reference: str) -> list[np.ndarray]:
    """Finite diagrams of dimensions 0 to ``max_dim`` of one cloud by gudhi (float64, edges
    collapsed first: the same diagrams) or by giotto-ph (float32: gudhi's collapse takes minutes
    on clouds of a thousand points in 512 dimensions)."""
    if reference == "gudhi":
        tree = gudhi.RipsComplex(points=cloud.astype(np.float64)).create_simplex_tree(max_dimension=1)
        tree.collapse_edges(nb_iterations=10)
        tree.expansion(max_dim + 1)
        tree.compute_persistence()
        found = [tree.persistence_intervals_in_dimension(dim) for dim in range(max_dim + 1)]
    else:
        from gph import ripser_parallel

        found = ripser_parallel(cloud.astype(np.float32), maxdim=max_dim)["dgms"]
    return [d[np.isfinite(d[:, 1])] if len(d) else np.zeros((0, 2)) for d in found]


def check_against_gudhi(points: np.ndarray, max_dim: int, run: Callable[[torch.Tensor], object],
                        reference: str = "gudhi") -> float:
    """Largest bottleneck distance to the reference's diagrams (:func:`reference_diagrams`) over
    ``points`` ``(b, m, d)``, relative to the diagram's scale."""
    dgm = run(torch.from_numpy(points))
    worst = 0.0
    for b, cloud in enumerate(points):
        for dim, expected in enumerate(reference_diagrams(cloud, max_dim, reference)):
            mine = dgm.to_list(dim)[b].double().numpy()
            scale = max(np.abs(expected).max(initial=0), 1e-12)
            worst = max(worst, float(gudhi.bottleneck_distance(mine, expected) / scale))
    return worst


def _clouds_to_time(run: Callable[[], object], total: int, args) -> int:
    """How many of ``total`` clouds to time an implementation on, from ``run()`` on one cloud
    (also its warm-up): all, or when that would take longer than ``--budget`` seconds, as many as
    fit and at least ``--min-clouds``."""
    start = time.perf_counter()
    run()
    per_cloud = time.perf_counter() - start
    return min(total, max(args.min_clouds, int(args.budget / max(per_cloud, 1e-9))))


def time_row(points: np.ndarray, mine: dict, theirs: dict, args) -> tuple[dict, dict]:
    """Clouds/s of each implementation (torchtopo's default backend on the whole batch; its gudhi
    backend and each peer on the whole batch or a prefix, see :func:`_clouds_to_time`), repeats
    interleaved. Returns ``(rates, clouds timed)``."""
    tensor = torch.from_numpy(points)
    calls = {}
    for name, run in mine.items():
        # The gudhi backend goes cloud by cloud like the peers (0.3 clouds/s at m = 256).
        count = len(points) if name == AUTO else _clouds_to_time(partial(run, tensor[:1]), len(points), args)
        calls[name] = (partial(run, tensor[:count]), count)
    for name, (run, dtype) in theirs.items():
        cast = points.astype(dtype)
        count = _clouds_to_time(partial(run, cast[0]), len(points), args)
        calls[name] = (partial(lambda run, subset: [run(c) for c in subset], run, cast[:count]), count)
    seconds = interleaved_medians({name: call for name, (call, _) in calls.items()}, args.repeats)
    return ({name: count / seconds[name] for name, (_, count) in calls.items()},
            {name: count for name, (_, count) in calls.items()})


def grid(args) -> tuple[list[dict], str]:
    rows = []
    for max_dim in args.dims:
        for kind in args.kinds:
            for m in args.m:
                for d in args.d:
                    points = make_batch(kind, args.batch, m, d, seed=m * d)
                    mine = ours(max_dim)
                    error = {name: check_against_gudhi(points[:2], max_dim, run) for name, run in mine.items()}
                    rates, clouds = time_row(points, mine, peers(max_dim, args.threads), args)
                    rows.append({"max_dim": max_dim, "kind": kind, "m": m, "d": d, "batch": args.batch,
                                 "rates": rates, "clouds": clouds, "error": error})
                    print(f"H0{'+H1' if max_dim else ''} {kind} m={m} d={d}: "
                          + ", ".join(f"{k}: {v:.1f}" for k, v in rates.items()), flush=True)
    return rows, markdown(rows)


# (max_dim, kind, m, d, peer, target ratio or None): the rows of issue 17, B = 64 clouds (H2: at
# least 3x giotto-ph at m = 64).
TARGETS = [
    (0, "gaussian", 64, 512, "gudhi", 15.0),
    (1, "gaussian", 64, 512, GIOTTO, 8.0),
    (1, "circle", 64, 512, GIOTTO, 8.0),
    (1, "gaussian", 128, 512, GIOTTO, 4.0),
    (1, "circle", 128, 512, GIOTTO, 4.0),
    (1, "gaussian", 256, 512, GIOTTO, 5.0),
    (1, "circle", 256, 512, GIOTTO, None),
    (1, "gaussian", 512, 512, GIOTTO, 1.0),
    (1, "circle", 512, 512, GIOTTO, 1.0),
    (1, "gaussian", 1024, 512, GIOTTO, 1.0),
    (1, "circle", 1024, 512, GIOTTO, 1.0),
    (2, "sphere", 64, 3, GIOTTO, 3.0),
    (2, "gaussian", 64, 3, GIOTTO, 3.0),
    (2, "gaussian-512", 64, 512, GIOTTO, 3.0),
    (2, "sphere", 128, 3, GIOTTO, None),
    (2, "gaussian", 128, 3, GIOTTO, None),
    (2, "gaussian-512", 128, 512, GIOTTO, None),
]


def targets(args) -> tuple[list[dict], str]:
    """The rows of :data:`TARGETS`: torchtopo against the one peer its target names."""
    import bench_h2

    rows = []
    for max_dim, kind, m, d, peer, target in TARGETS:
        if m not in args.m_targets:
            continue
        batch = args.batch if m < 512 else args.large_batch
        if max_dim == 2:
            points = bench_h2.make_batch(kind, batch, m, seed=m * bench_h2.KINDS[kind])
        else:
            points = make_batch(kind, batch, m, d, seed=m * d)
        mine = ours(max_dim, gudhi_backend=False)
        (name,) = mine
        theirs = {k: v for k, v in peers(max_dim, args.threads).items() if k.split(" (")[0] == peer}
        if not theirs:
            print(f"skipped {kind} m={m}: {peer} is not installed", flush=True)
            continue
        error = check_against_gudhi(points[:2] if m <= 256 else points[:1], max_dim, mine[name],
                                    "gudhi" if m <= 256 else GIOTTO)
        rates, clouds = time_row(points, mine, theirs, args)
        (peer_name,) = theirs
        row = {"max_dim": max_dim, "kind": kind, "m": m, "d": d, "batch": batch, "rates": rates,
               "clouds": clouds, "error": error, "peer": peer_name, "target": target,
               "ratio": rates[name] / rates[peer_name]}
        rows.append(row)
        print(f"H0..H{max_dim} {kind} m={m} d={d}: {row['ratio']:.2f}x {peer_name} (target {target})", flush=True)
    header = ("| homology | clouds | m | d | B | torchtopo clouds/s | peer | peer clouds/s (timed on) | ratio "
              "| target | met | error vs reference |")
    lines = [header, "|" + "---|" * (header.count("|") - 1)]
    for row in rows:
        mine, theirs = row["rates"][AUTO], row["rates"][row["peer"]]
        target = "-" if row["target"] is None else f">= {row['target']:g}x"
        met = "-" if row["target"] is None else ("yes" if row["ratio"] >= row["target"] else "no")
        lines.append(
            f"| H0{''.join(f'+H{k}' for k in range(1, row['max_dim'] + 1))} | {row['kind']} | {row['m']} | {row['d']} "
            f"| {row['batch']} "
            f"| {mine:.1f} | {row['peer']} | {theirs:.2f} ({row['clouds'][row['peer']]}) | {row['ratio']:.2f}x "
            f"| {target} | {met} | {row['error']:.1e} |")
    note = ("\n\nError vs reference: bottleneck distance relative to the diagram's scale, against gudhi (float64, "
            "edge collapse) up to m = 256 and giotto-ph (float32) above.")
    return rows, "\n".join(lines) + note


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--targets", action="store_true",
                        help="run the rows of the speed targets (issue 17) instead of the grid")
    parser.add_argument("--m-targets", type=int, nargs="+", default=[64, 128, 256, 512, 1024],
                        help="with --targets: the cloud sizes to run (a subset for a quick look)")
    parser.add_argument("--batch", type=int, default=64, help="clouds per batch")
    parser.add_argument("--large-batch", type=int, default=8,
                        help="with --targets: clouds per batch at m >= 512 (rates are per cloud; keeps the run short)")
    parser.add_argument("--m", type=int, nargs="+", default=[32, 64, 128, 256], help="grid: points per cloud")
    parser.add_argument("--d", type=int, nargs="+", default=[64, 512], help="grid: ambient dimensions")
    parser.add_argument("--kinds", nargs="+", choices=["gaussian", "circle"], default=["gaussian", "circle"],
                        help="grid: clouds")
    parser.add_argument("--dims", type=int, nargs="+", default=[0, 1], help="grid: max_dim values (0 = H0, 1 = H0+H1)")
    parser.add_argument("--repeats", type=int, default=5, help="interleaved repeats")
    parser.add_argument("--min-clouds", type=int, default=4, help="fewest clouds a peer slower than --budget is timed on")
    parser.add_argument("--budget", type=float, default=2.0, help="seconds a peer may spend per repeat")
    parser.add_argument("--threads", type=int, default=2, help="threads of torchtopo and giotto-ph")
    add_output_arguments(parser)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    # ripser warns about point clouds with d >= m, which are what we mean to pass.
    warnings.filterwarnings("ignore", message="The input point cloud has more columns than rows")
    warnings.filterwarnings("ignore", message="The input matrix is square")

    load_before = os.getloadavg()[0]  # the machine may be shared: say how busy it was
    rows, table = targets(args) if args.targets else grid(args)
    meta = {
        "versions": f"gudhi {gudhi.__version__}, torch {torch.__version__}",
        "unit": "clouds/s, median over interleaved repeats",
        "load": f"load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after",
        "dtypes": "gudhi and ripser get float64 clouds, giotto-ph and torchtopo float32 (each its own dtype)",
    }
    title = "speed targets (issue 17)" if args.targets else "Vietoris-Rips persistence"
    text = (f"{title}, B = {args.batch} clouds; {meta['unit']} ({args.repeats}); {meta['load']}; {meta['dtypes']}; "
            f"a slow peer is timed on a prefix of the batch (the count in parentheses or the clouds column).\n\n{table}")
    out = output_dir(args) / ("bench_rips_targets.json" if args.targets else "bench_rips.json")
    write_results(out, {"meta": meta, "rows": rows}, text, threads=args.threads)


def markdown(rows: list[dict]) -> str:
    """One markdown table per homology range, with the ratio of torchtopo (auto) to each peer and
    the clouds each rate was timed on."""
    tables = []
    for max_dim in sorted({row["max_dim"] for row in rows}):
        group = [row for row in rows if row["max_dim"] == max_dim]
        names = list(group[0]["rates"])
        peer_names = [k for k in names if not k.startswith("torchtopo")]
        header = (f"| H0{'+H1' if max_dim else ''} | m | d | " + " | ".join(names) + " | "
                  + " | ".join(f"vs {k}" for k in peer_names) + " |")
        lines = [header, "|" + "---|" * (header.count("|") - 1)]
        for row in group:
            mine = row["rates"][AUTO]
            rates = " | ".join(
                f"{row['rates'][k]:.1f}" + ("" if row["clouds"][k] == row["batch"] else f" ({row['clouds'][k]})")
                for k in names)
            ratios = " | ".join(f"{mine / row['rates'][k]:.1f}x" for k in peer_names)
            lines.append(f"| {row['kind']} | {row['m']} | {row['d']} | {rates} | {ratios} |")
        tables.append("\n".join(lines))
    return "\n\n".join(tables)


if __name__ == "__main__":
    main()
