"""Throughput of batched cubical persistence against gudhi's and giotto-tda's per-image loops.

One run times every implementation on the same images and reports images/s (interleaved
medians over repeats) and the ratio of torchtopo to each peer. torchtopo gets the batch as one
float32 tensor; the peers get the same values as float64 arrays (the type they compute in), one
image per call, in one thread:

- gudhi: ``CubicalComplex(top_dimensional_cells=image).persistence()``; it computes every
  dimension whatever ``max_dim``.
- giotto-tda (when installed): the routine its ``CubicalPersistence`` runs on each image,
  ``gtda.externals.CubicalComplex(...).persistence()`` (the transformer itself is not imported:
  its package imports pyflagser and plotly, which a cubical benchmark does not need).

Slow peers are timed on a prefix of the batch (at least ``--min-images``) and their rate
extrapolated; the table says on how many images. Every torchtopo diagram is first checked against
gudhi's on a few images (same multiset of pairs, exactly), so a fast wrong answer cannot enter
the table.

    python benchmarks/bench_cubical.py                   # the full grid, into benchmarks/_scratch/
    python benchmarks/bench_cubical.py --write-results   # the same, into benchmarks/results/
    python benchmarks/bench_cubical.py --sizes 28 --kinds noise --repeats 3
"""

from __future__ import annotations

import os

# torch's OpenMP workers spin for a while after each parallel region; in one process with
# single-threaded peers they would steal a core from the peer being timed.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse
import time
from typing import Callable

import gudhi
import numpy as np
import torch
from common import add_output_arguments, interleaved_medians, machine, output_dir, write_results
from scipy.ndimage import gaussian_filter

from torchtopo import cubical_persistence


def make_batch(kind: str, batch: int, shape: tuple[int, ...], seed: int) -> np.ndarray:
    """``(batch, *shape)`` float32: uniform noise, or noise smoothed by a Gaussian of 2 pixels
    (fewer critical points, like a feature map or a probability map)."""
    rng = np.random.default_rng(seed)
    noise = rng.random((batch, *shape))
    if kind == "smooth":
        noise = gaussian_filter(noise, sigma=(0, *[2.0] * len(shape)))
    return noise.astype(np.float32)


def peers() -> dict[str, Callable[[np.ndarray], object]]:
    """Per-image callables of the peers that are installed (float64 input)."""
    found: dict[str, Callable[[np.ndarray], object]] = {
        "gudhi": lambda image: gudhi.CubicalComplex(top_dimensional_cells=image).persistence(homology_coeff_field=2),
    }
    try:
        from gtda.externals.python import CubicalComplex as GiottoCubical

        found["giotto-tda"] = lambda image: GiottoCubical(
            dimensions=image.shape, top_dimensional_cells=image.flatten(order="F")
        ).persistence(homology_coeff_field=2, min_persistence=0)
    except ImportError:
        pass
    return found


def check_against_gudhi(images: np.ndarray, max_dim: int) -> None:
    """Raise unless torchtopo's diagrams of the first images equal gudhi's exactly."""
    sample = images[:2]
    dgm = cubical_persistence(torch.from_numpy(sample), max_dim, spatial_dims=sample.ndim - 1, keep_infinite=True)
    for b, image in enumerate(sample.astype(np.float64)):
        complex_ = gudhi.CubicalComplex(top_dimensional_cells=image)
        complex_.compute_persistence(homology_coeff_field=2)
        for d in range(max_dim + 1):
            reference = complex_.persistence_intervals_in_dimension(d).reshape(-1, 2)
            ours = dgm.to_list(d)[b].double().numpy()
            if not np.array_equal(np.sort(ours.view("f8,f8"), axis=0), np.sort(reference.view("f8,f8"), axis=0)):
                raise AssertionError(f"torchtopo differs from gudhi in dimension {d} on {image.shape} images")


def prefix_size(run: Callable[[np.ndarray], object], images: np.ndarray, args) -> int:
    """All images, or ``--min-images`` when a repeat over all would take over ``--budget`` s."""
    start = time.perf_counter()
    run(images[0])
    estimate = (time.perf_counter() - start) * len(images)
    return len(images) if estimate < args.budget else min(len(images), args.min_images)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--batch", type=int, default=64, help="images (or volumes) per batch")
    parser.add_argument("--sizes", type=int, nargs="+", default=[28, 64, 256], help="sides of the 2-D images")
    parser.add_argument("--volume", type=int, default=32, help="side of the 3-D volumes (0: none)")
    parser.add_argument("--kinds", nargs="+", default=["noise", "smooth"],
                        help="uniform noise, and noise smoothed by a Gaussian of 2 pixels")
    parser.add_argument("--repeats", type=int, default=5, help="interleaved timed repeats per row")
    parser.add_argument("--min-images", type=int, default=8, help="peers slower than --budget s are timed on this many")
    parser.add_argument("--budget", type=float, default=3.0, help="seconds a peer may spend per repeat")
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="torchtopo's threads (the peers use one)")
    add_output_arguments(parser)
    args = parser.parse_args()

    configs = [((side, side), max_dim) for side in args.sizes for max_dim in (0, 1)]
    if args.volume:
        configs += [((args.volume,) * 3, max_dim) for max_dim in (0, 1, 2)]
    rows = []
    for shape, max_dim in configs:
        for kind in args.kinds:
            images = make_batch(kind, args.batch, shape, seed=sum(shape) + max_dim)
            check_against_gudhi(images, max_dim)
            batch = torch.from_numpy(images)
            spatial_dims = len(shape)

            def ours(threads: int) -> Callable[[], object]:
                def call() -> object:
                    previous = torch.get_num_threads()
                    torch.set_num_threads(threads)  # the numba kernels split images over this many
                    try:
                        return cubical_persistence(batch, max_dim, spatial_dims=spatial_dims)
                    finally:
                        torch.set_num_threads(previous)
                return call

            calls = {f"torchtopo ({args.threads} threads)": ours(args.threads), "torchtopo (1 thread)": ours(1)}
            counts = {name: args.batch for name in calls}
            as_float64 = images.astype(np.float64)
            for name, run in peers().items():
                count = prefix_size(run, as_float64, args)
                prefix = as_float64[:count]
                calls[name] = lambda run=run, prefix=prefix: [run(image) for image in prefix]
                counts[name] = count
            seconds = interleaved_medians(calls, args.repeats)
            rates = {name: counts[name] / seconds[name] for name in calls}
            dims = "+".join(f"H{d}" for d in range(max_dim + 1))
            row = {"shape": list(shape), "dims": dims, "kind": kind, "batch": args.batch, "rates": rates,
                   "images": counts}
            rows.append(row)
            print(f"{dims} {kind} {'x'.join(map(str, shape))}: "
                  + ", ".join(f"{k}: {v:.1f}/s" for k, v in rates.items()), flush=True)
    meta = {
        "machine": machine(gudhi=gudhi.__version__) + f", threads {args.threads}",
        "unit": "images/s, interleaved medians over repeats",
    }
    table = (
        f"Cubical persistence, B = {args.batch} images per batch, {meta['machine']}. "
        f"Rates in images/s (median of {args.repeats} interleaved repeats); torchtopo gets the batch in "
        f"float32, the peers loop over float64 images in one thread; peers slower than {args.budget:g} s a "
        "repeat are timed on a prefix of the batch (images column).\n\n" + markdown(rows)
    )
    write_results(output_dir(args) / "bench_cubical.json", {"meta": meta, "rows": rows}, table, threads=args.threads)


def markdown(rows: list[dict]) -> str:
    """One table: rates of every implementation and the ratios of torchtopo (all threads, and
    one thread) to each peer."""
    names = list(rows[0]["rates"])
    ours_all, ours_one = names[0], names[1]
    peer_names = names[2:]
    header = ("| dims | image | kind | " + " | ".join(names) + " | images timed (peers) | "
              + " | ".join(f"vs {p}" for p in peer_names) + " |")
    lines = [header, "|" + "---|" * (header.count("|") - 1)]
    for row in rows:
        rates = " | ".join(f"{row['rates'][k]:.1f}" for k in names)
        timed = ", ".join(str(row["images"][p]) for p in peer_names)
        ratios = " | ".join(
            f"{row['rates'][ours_all] / row['rates'][p]:.1f}x ({row['rates'][ours_one] / row['rates'][p]:.1f}x)"
            for p in peer_names
        )
        lines.append(f"| {row['dims']} | {'x'.join(map(str, row['shape']))} | {row['kind']} | {rates} | {timed} | "
                     f"{ratios} |")
    lines.append("")
    lines.append(f"Ratios: {ours_all} over the peer (in brackets: {ours_one}).")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
