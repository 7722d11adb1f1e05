"""Throughput of torchtopo's PersistenceImage against gudhi's and persim's on the same diagrams.

Three sets of diagrams, computed once with ripser (then tiled to the batch size): H1 of Gaussian
clouds (about 180 diagram points each), H1 of noisy circles (a few points each) and H0 of
128-point clouds (127 finite points each). Each implementation turns a batch of 1024 diagrams
into 50 x 50 images in its own convention (gudhi: sampled density; persim: pixel integrals),
and is checked against torchtopo in that convention first (max error relative to the batch's
peak), so a fast wrong answer cannot enter the table. Rates are diagrams/s, median of repeats
(implementations interleaved); persim is timed on a prefix of the batch and extrapolated.

    python benchmarks/bench_image.py                  # about a minute on one core
    python benchmarks/bench_image.py --write-results  # replace results/bench_image.md
    python benchmarks/bench_image.py --threads 4 --device cuda

A run writes ``bench_image.json`` and ``bench_image.md`` to ``benchmarks/_scratch/`` (git-ignored),
or to ``benchmarks/results/`` with ``--write-results``.
"""

from __future__ import annotations

import os

# One thread for every library unless told otherwise (before numpy reads it): gudhi and persim
# run on one core, and BLAS threads would otherwise blur the comparison.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse

import numpy as np
import torch
from common import add_output_arguments, interleaved_medians, machine, output_dir, write_results
from gudhi.representations import PersistenceImage as GudhiPI
from persim import PersistenceImager
from ripser import ripser

from torchtopo import Diagrams, PersistenceImage


def diagram_sets(unique: int, seed: int) -> dict[str, list[np.ndarray]]:
    """``unique`` float32 diagrams (birth, death) per set, finite bars only."""
    rng = np.random.default_rng(seed)
    gaussian = rng.normal(size=(unique, 200, 8))
    angles = rng.uniform(0, 2 * np.pi, size=(unique, 40))
    circles = np.stack([np.cos(angles), np.sin(angles)], -1) + 0.1 * rng.normal(size=(unique, 40, 2))
    h0 = rng.normal(size=(unique, 128, 16))

    def bars(clouds: np.ndarray, dim: int) -> list[np.ndarray]:
        out = [ripser(c, maxdim=dim)["dgms"][dim] for c in clouds]
        return [d[np.isfinite(d[:, 1])].astype(np.float32) for d in out]

    return {"H1 gaussian": bars(gaussian, 1), "H1 circles": bars(circles, 1), "H0": bars(h0, 0)}


def run(args: argparse.Namespace) -> dict:
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    results = {"machine": machine(), "torch": torch.__version__,
               "threads": args.threads, "device": str(device), "batch": args.batch,
               "resolution": args.resolution, "sets": {}}
    n = args.resolution
    for name, unique in diagram_sets(args.unique, args.seed).items():
        diagrams = [unique[i % len(unique)] for i in range(args.batch)]
        batch = Diagrams.from_list([[torch.from_numpy(d) for d in diagrams]]).to(device)
        pairs, mask = batch.pairs[0], batch.mask[0]
        points = np.concatenate(diagrams)
        persistence = points[:, 1] - points[:, 0]
        lo_b, hi_b = float(points[:, 0].min()), float(points[:, 0].max())
        lo_p, hi_p = 0.0, float(persistence.max())
        bandwidth = 0.05 * max(hi_p, hi_b - lo_b, 1e-3)
        row = {"mean_points": float(np.mean([len(d) for d in diagrams]))}

        # gudhi convention: gudhi's own PersistenceImage, linear weight
        im_range = (lo_b, hi_b, lo_p, hi_p)
        ours = PersistenceImage((n, n), bandwidth, "linear", im_range, dims=(0,), h0="image")
        gudhi = GudhiPI(bandwidth, lambda x: x[1], [n, n], list(im_range)).fit([diagrams[0]])
        with torch.no_grad():
            out = ours(pairs, mask=mask).flatten(1).cpu().double().numpy()
        ref = gudhi.transform(diagrams[: args.check])
        row["gudhi_max_rel_error"] = float(np.abs(out[: args.check] - ref).max() / np.abs(ref).max())

        def ours_call():
            with torch.no_grad():
                ours(pairs, mask=mask)
            if device.type == "cuda":
                torch.cuda.synchronize()

        # persim convention: pixel integrals, persim's PersistenceImager (square pixels)
        pixel = max(hi_b - lo_b, hi_p - lo_p) / n
        birth_range, pers_range = (lo_b, lo_b + n * pixel), (lo_p, lo_p + n * pixel)
        imager = PersistenceImager(birth_range=birth_range, pers_range=pers_range, pixel_size=pixel,
                                   kernel_params={"sigma": bandwidth**2})
        n_b, n_p = imager.resolution
        edges_b, edges_p = imager._bpnts, imager._ppnts  # persim's own pixel edges, after its rounding
        ours_p = PersistenceImage((n_b, n_p), bandwidth, "linear",
                                  (edges_b[0], edges_b[-1], edges_p[0], edges_p[-1]), dims=(0,), h0="image",
                                  convention="persim")
        prefix = diagrams[: args.persim_diagrams]
        with torch.no_grad():
            out = ours_p(pairs[: args.check], mask=mask[: args.check]).transpose(1, 2).cpu().double().numpy()
        ref = np.stack(imager.transform(diagrams[: args.check]))
        row["persim_max_rel_error"] = float(np.abs(out - ref).max() / np.abs(ref).max())

        def ours_persim_call():
            with torch.no_grad():
                ours_p(pairs, mask=mask)
            if device.type == "cuda":
                torch.cuda.synchronize()

        timed = interleaved_medians({"torchtopo": ours_call, "gudhi": lambda: gudhi.transform(diagrams),
                              "torchtopo_persim": ours_persim_call, "persim": lambda: imager.transform(prefix)},
                             args.repeats)
        row.update({f"{name}_s": seconds for name, seconds in timed.items()})
        row["persim_s"] *= args.batch / len(prefix)
        row["persim_measured_on"] = len(prefix)
        for peer, ours_key in (("gudhi", "torchtopo"), ("persim", "torchtopo_persim")):
            row[f"{peer}_diagrams_per_s"] = args.batch / row[f"{peer}_s"]
            row[f"{ours_key}_diagrams_per_s"] = args.batch / row[f"{ours_key}_s"]
            row[f"speedup_vs_{peer}"] = row[f"{peer}_s"] / row[f"{ours_key}_s"]
        results["sets"][name] = row
        print(f"{name}: x{row['speedup_vs_gudhi']:.1f} gudhi, x{row['speedup_vs_persim']:.1f} persim; "
              f"errors {row['gudhi_max_rel_error']:.1e} / {row['persim_max_rel_error']:.1e}", flush=True)
    return results


def markdown(results: dict) -> str:
    lines = [
        f"Persistence images, batches of {results['batch']} diagrams, {results['resolution']}x"
        f"{results['resolution']} pixels, float32, {results['device']}, torch {results['torch']}. "
        "Rates in diagrams/s (median); persim extrapolated from a prefix.",
        "",
        "| set | points/diagram | torchtopo (gudhi conv.) | gudhi | x gudhi | torchtopo (persim conv.) | persim"
        " | x persim | max rel. error vs gudhi / persim |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in results["sets"].items():
        lines.append(
            f"| {name} | {r['mean_points']:.0f} | {r['torchtopo_diagrams_per_s']:,.0f} | {r['gudhi_diagrams_per_s']:,.0f}"
            f" | {r['speedup_vs_gudhi']:.1f} | {r['torchtopo_persim_diagrams_per_s']:,.0f}"
            f" | {r['persim_diagrams_per_s']:,.0f} | {r['speedup_vs_persim']:.1f}"
            f" | {r['gudhi_max_rel_error']:.1e} / {r['persim_max_rel_error']:.1e} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--batch", type=int, default=1024, help="diagrams per batch, per set")
    parser.add_argument("--resolution", type=int, default=50, help="pixels per side of the square images")
    parser.add_argument("--unique", type=int, default=128, help="distinct diagrams per set, tiled to --batch")
    parser.add_argument("--persim-diagrams", type=int, default=64,
                        help="persim is timed on this prefix of the batch and its rate extrapolated")
    parser.add_argument("--check", type=int, default=32, help="diagrams compared with the peers before timing")
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats (median), implementations interleaved")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (gudhi and persim use one)")
    parser.add_argument("--device", default="cpu", help="device of torchtopo's images (cpu, cuda)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random clouds")
    add_output_arguments(parser)
    args = parser.parse_args()
    results = run(args)
    write_results(output_dir(args) / "bench_image", results, markdown(results), threads=args.threads)


if __name__ == "__main__":
    main()
