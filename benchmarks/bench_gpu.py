"""GPU check and timing: one prepared script for a lent CUDA machine.

1. Correctness: for every shape, the diagrams computed from CUDA points (Triton H0 kernel;
   H1 ordered, cleared and marked by the Triton kernels, the rest reduced on the CPU) equal
   those computed from the same points on the CPU, and the H1 generators are identical.
2. Timing: clouds/s of ``rips_persistence`` on the GPU for B in {64, 1024}, m in {64, 128, 256},
   d = 512, H0 and H0+H1, against giotto-ph on the same machine's CPU (all its cores) when it is
   installed; for H0+H1 also the seconds of the GPU marking and of the CPU reduction. The
   native path needs no gudhi.

    python benchmarks/bench_gpu.py                    # writes benchmarks/_scratch/gpu.{json,md}
    python benchmarks/bench_gpu.py --write-results    # writes benchmarks/results/gpu.{json,md}

Writes the JSON and a markdown table (``.md`` beside it) naming the card.
"""

from __future__ import annotations

import argparse
import os

import numpy as np
import torch
from common import add_output_arguments, clouds_per_second, interleaved_medians, machine, output_dir, write_results

from torchtopo import rips_persistence
from torchtopo.rips.distances import pairwise_distances
from torchtopo.rips.native import reduce_marked_columns


def make_batch(batch: int, m: int, d: int, seed: int) -> torch.Tensor:
    return torch.randn(batch, m, d, generator=torch.Generator().manual_seed(seed))


def same_diagrams(a, b) -> bool:
    for dim in range(a.max_dim + 1):
        for x, y in zip(a.to_list(dim), b.to_list(dim)):
            x = np.sort(x.detach().cpu().double().numpy(), axis=0)
            y = np.sort(y.detach().cpu().double().numpy(), axis=0)
            if x.shape != y.shape or not np.allclose(x, y, rtol=1e-5, atol=0):
                return False
    return True


def stage_seconds(points: torch.Tensor, repeats: int) -> dict[str, float]:
    """Median seconds of the two H1 stages on CUDA points: GPU marks (with the distances), and
    the copy of the marks to the CPU with the reduction there."""
    from torchtopo.rips.triton_h1 import mark_columns_triton

    def marks():
        return mark_columns_triton(pairwise_distances(points), None, None)

    done = marks()
    seconds = interleaved_medians(
        {
            "marks_gpu_s": marks,
            "transfer_and_reduce_cpu_s": lambda: reduce_marked_columns(*(t.cpu().numpy() for t in done), points.shape[1]),
        },
        repeats,
        sync=torch.cuda.synchronize,
    )
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--batches", type=int, nargs="+", default=[64, 1024], help="clouds per batch")
    parser.add_argument("--m", type=int, nargs="+", default=[64, 128, 256], help="points per cloud")
    parser.add_argument("--d", type=int, default=512, help="ambient dimension")
    parser.add_argument("--repeats", type=int, default=5, help="interleaved repeats")
    parser.add_argument("--device", default="cuda", help="'cpu' only to dry-run the script itself")
    add_output_arguments(parser)
    args = parser.parse_args()
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("bench_gpu.py needs a CUDA device")
    card = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu (dry run)"
    sync = torch.cuda.synchronize if device.type == "cuda" else None
    try:
        from gph import ripser_parallel
    except ImportError:
        ripser_parallel = None

    rows, checks = [], []
    for m in args.m:
        sample = make_batch(8, m, args.d, seed=m)
        for max_dim in (0, 1):
            gpu = rips_persistence(sample.to(device), max_dim)
            cpu = rips_persistence(sample, max_dim)
            equal = same_diagrams(gpu, cpu)
            if max_dim == 1 and device.type == "cuda":
                # Generators on one distance matrix (GPU and CPU products round differently, which
                # may reorder near-ties): the GPU marks must give exactly the CPU path's pairs.
                order = pairwise_distances(sample.to(device))
                from torchtopo.rips.native import h1_pairing
                from torchtopo.rips.triton_h1 import h1_pairing_triton

                pairs = zip(h1_pairing_triton(order, None, None), h1_pairing(order.cpu(), None, None))
                equal &= all(torch.equal(a.cpu(), b) for a, b in pairs)
            checks.append({"m": m, "max_dim": max_dim, "equal": bool(equal)})
            print(f"check m={m} H0{'+H1' if max_dim else ''}: {'ok' if checks[-1]['equal'] else 'MISMATCH'}", flush=True)
        for batch in args.batches:
            points = make_batch(batch, m, args.d, seed=batch + m).to(device)
            for max_dim in (0, 1):
                row = {"batch": batch, "m": m, "d": args.d, "max_dim": max_dim}
                row["torchtopo_gpu"] = clouds_per_second(
                    lambda: rips_persistence(points, max_dim), batch, args.repeats, warmup=1, sync=sync
                )
                if max_dim == 1 and device.type == "cuda":
                    row.update(stage_seconds(points, args.repeats))
                if ripser_parallel is not None:
                    host = points[: min(batch, 64)].cpu().numpy()
                    row["giotto_ph_cpu"] = clouds_per_second(
                        lambda: [ripser_parallel(c, maxdim=max_dim, n_threads=os.cpu_count()) for c in host],
                        len(host),
                        max(1, args.repeats // 2),
                        warmup=1,
                    )
                    row["ratio"] = row["torchtopo_gpu"] / row["giotto_ph_cpu"]
                rows.append(row)
                print(row, flush=True)
    meta = {"card": card, "machine": machine(), "unit": "clouds/s, median"}
    lines = [f"GPU: {card}; CPU: {meta['machine']}; giotto-ph on the same machine's CPU ({os.cpu_count()} threads)", "",
             "| dims | B | m | torchtopo GPU | giotto-ph CPU | ratio | H1 marks, GPU (s) | H1 reduction, CPU (s) |",
             "|---|---|---|---|---|---|---|---|"]
    for row in rows:
        peer = f"{row['giotto_ph_cpu']:.1f}" if "giotto_ph_cpu" in row else "n/a"
        ratio = f"{row['ratio']:.1f}x" if "ratio" in row else "n/a"
        marks = f"{row['marks_gpu_s']:.4f}" if "marks_gpu_s" in row else ""
        reduce = f"{row['transfer_and_reduce_cpu_s']:.4f}" if "marks_gpu_s" in row else ""
        dims = "H0+H1" if row["max_dim"] else "H0"
        lines.append(
            f"| {dims} | {row['batch']} | {row['m']} | {row['torchtopo_gpu']:.1f} | {peer} | {ratio} | {marks} | {reduce} |"
        )
    write_results(output_dir(args) / "gpu.json", {"meta": meta, "checks": checks, "rows": rows}, "\n".join(lines))
    if not all(c["equal"] for c in checks):
        raise SystemExit("GPU and CPU diagrams differ")


if __name__ == "__main__":
    main()
