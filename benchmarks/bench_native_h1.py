"""Throughput of the native batched H0+H1 backend against gudhi, ripser and giotto-ph.

The same clouds, peers and timing as ``bench_rips.py`` (whose helpers this script imports), for
H0+H1 only: clouds/s (median over repeats) of the whole torchtopo pipeline from points
(ordering distances, native pairing, exact differentiable gather), and its ratio to each peer;
repeats interleave the implementations, as the machine may be shared.
The torchtopo result is checked against gudhi's diagrams first (bottleneck within 1e-5
relative); the share of apparent columns is reported too, and the milliseconds of the same
work done by the staged path's steps (the path of a cut or of H2; a call like this one takes the
fused path, which runs the same kernels cloud by cloud in one pass), to see where time goes.

    python benchmarks/bench_native_h1.py                   # B = 64, d = 512, m in {64, 128, 256}
    python benchmarks/bench_native_h1.py --m 128 --kinds circle --repeats 3

Writes ``native_h1.json`` and ``native_h1.md`` into ``benchmarks/_scratch/`` (``--out-dir``), or
into ``benchmarks/results/`` with ``--write-results``.
"""

from __future__ import annotations

import argparse
import os
import time
from functools import partial
import gudhi
import numba
import torch
from bench_rips import check_against_gudhi, make_batch, peers
from common import add_output_arguments, clouds_per_second, interleaved_medians, machine, output_dir, write_results

from torchtopo import rips_persistence
from torchtopo.rips.compiled import compiled_gather, h0_pairing_from_points
from torchtopo.rips.distances import pairwise_distances
from torchtopo.rips.native import apparent_share, h1_pairing
from torchtopo.rips.pairing import Pairing


def native(points: torch.Tensor):
    """H0+H1 diagrams of ``points`` ``(B, m, d)`` through the native backend."""
    return rips_persistence(points, 1, backend="native")


def stages(points: torch.Tensor, repeats: int) -> dict[str, float]:
    """Median milliseconds per batch of each step of the staged path (:func:`native` runs the
    same kernels fused, cloud by cloud), to see where time goes."""
    h0 = h0_pairing_from_points(points, None)
    h1 = h1_pairing(h0.distances, None, None)
    pairing = Pairing(*zip((h0.birth_edges, h0.death_edges, h0.valid), h1), h0.death_lengths)
    steps = {
        "distances + H0": lambda: h0_pairing_from_points(points, None),  # one compiled pass per cloud
        "H1": lambda: h1_pairing(h0.distances, None, None),
        "gather": lambda: compiled_gather(points, pairing, keep_infinite=False, max_edge=None),
    }
    return {name: 1e3 * len(points) / clouds_per_second(step, len(points), repeats) for name, step in steps.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--batch", type=int, default=64, help="clouds per batch")
    parser.add_argument("--m", type=int, nargs="+", default=[64, 128, 256], help="points per cloud")
    parser.add_argument("--d", type=int, default=512, help="ambient dimension")
    parser.add_argument("--kinds", nargs="+", choices=["gaussian", "circle"], default=["gaussian", "circle"],
                        help="clouds")
    parser.add_argument("--repeats", type=int, default=5, help="interleaved repeats")
    parser.add_argument("--min-clouds", type=int, default=2, help="peers slower than --budget s are timed on this many")
    parser.add_argument("--budget", type=float, default=2.0, help="seconds a peer may spend per repeat")
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="threads of torchtopo and giotto-ph")
    add_output_arguments(parser)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    numba.set_num_threads(args.threads)

    load_before = os.getloadavg()[0]  # the machine may be shared: say how busy it was
    rows = []
    for kind in args.kinds:
        for m in args.m:
            points = make_batch(kind, args.batch, m, args.d, seed=m * args.d)
            tensor = torch.from_numpy(points)
            error = check_against_gudhi(points[:2], 1, native)
            native(tensor)  # warm-up (and numba's compilation on a first run)
            runs = {"torchtopo (native)": (lambda: native(tensor), args.batch)}
            for name, (run, dtype) in peers(1, args.threads).items():
                cast = points.astype(dtype)  # each peer's own dtype (bench_rips.peers)
                start = time.perf_counter()
                run(cast[0])
                estimate = (time.perf_counter() - start) * args.batch
                count = args.batch if estimate < args.budget else min(args.batch, args.min_clouds)
                runs[name] = (partial(lambda run, subset: [run(c) for c in subset], run, cast[:count]), count)
            seconds = interleaved_medians({name: call for name, (call, _) in runs.items()}, args.repeats, warmup=0)
            rates = {name: runs[name][1] / seconds[name] for name in runs}
            clouds = {name: runs[name][1] for name in runs}
            share = apparent_share(pairwise_distances(tensor))
            split = stages(tensor, args.repeats)
            rows.append(
                {"kind": kind, "m": m, "d": args.d, "batch": args.batch, "rates": rates, "clouds": clouds,
                 "error": error, "apparent": share, "stages_ms": split}
            )
            print(f"{kind} m={m}: " + ", ".join(f"{k}: {v:.1f}" for k, v in rates.items()) + f", apparent {share:.3f}, "
                  + "ms per batch: " + ", ".join(f"{k} {v:.0f}" for k, v in split.items()), flush=True)
    meta = {
        "machine": machine(numba=numba.__version__, gudhi=gudhi.__version__) + f", threads {args.threads}",
        "unit": "clouds/s, median over repeats",
        "load": f"load average {load_before:.1f} before, {os.getloadavg()[0]:.1f} after",
    }
    table = f"{meta['machine']}; {meta['unit']}; {meta['load']}\n\n{markdown(rows)}"
    write_results(output_dir(args) / "native_h1.json", {"meta": meta, "rows": rows}, table, threads=args.threads)


def markdown(rows: list[dict]) -> str:
    """A markdown table: rates, the ratio of torchtopo (native) to each peer, the apparent share and
    the milliseconds per batch of each step of the staged path."""
    names = list(rows[0]["rates"])
    peer_names = names[1:]
    steps = list(rows[0]["stages_ms"])
    header = (
        "| H0+H1 | m | " + " | ".join(names) + " | " + " | ".join(f"vs {k}" for k in peer_names)
        + " | apparent | staged ms: " + ", ".join(steps) + " |"
    )
    lines = [header, "|" + "---|" * (header.count("|") - 1)]
    for row in rows:
        mine = row["rates"][names[0]]
        rates = " | ".join(f"{row['rates'][k]:.1f}" for k in names)
        ratios = " | ".join(f"{mine / row['rates'][k]:.1f}x" for k in peer_names)
        split = ", ".join(f"{row['stages_ms'][k]:.0f}" for k in steps)
        lines.append(f"| {row['kind']} | {row['m']} | {rates} | {ratios} | {100 * row['apparent']:.1f}% | {split} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
