#!/usr/bin/env python
"""Measure the TopKD suite's two costs on this machine.

1. Point cloud -> persistence image throughput: torchtopo (batched native H0 +
   ``PersistenceImage.topkd``) against the official recipe (gudhi ``RipsComplex`` + persistence
   per cloud, then ``gudhi.representations.PersistenceImage``), on the same clouds, checking
   that both give the same images.
2. Training-step time of TopKD relative to KD for a teacher/student pair (same batch, same
   models; the RipsNet is untrained, which does not change its cost).

Example::

    python examples/topkd/bench_topology.py --clouds 256 --dim 64 --pair resnet56 resnet20
    python examples/topkd/bench_topology.py --write-results   # replace benchmarks/results/bench_topology.md

A run writes ``bench_topology.json`` and ``bench_topology.md`` to ``benchmarks/_scratch/``
(git-ignored), or to ``benchmarks/results/`` with ``--write-results``.
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import time

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
# The benchmarks' shared helpers (output folder, provenance header of the table).
sys.path.insert(0, os.path.join(HERE, "..", "..", "benchmarks"))


def official_images(clouds: np.ndarray, bandwidth: float, im_range, scale: float) -> np.ndarray:
    """TopKD's official recipe: gudhi per cloud (H0, infinite bar dropped), gudhi's 20×20
    persistence image with weight ``10 tanh(p) + 10 log(100 b + 1)``, divided by the max."""
    import gudhi
    from gudhi.representations import PersistenceImage

    diagrams = []
    for cloud in clouds:
        st = gudhi.RipsComplex(points=cloud).create_simplex_tree(max_dimension=1)
        st.persistence()
        dgm = st.persistence_intervals_in_dimension(0)
        diagrams.append(dgm[np.isfinite(dgm[:, 1])])
    pi = PersistenceImage(bandwidth=bandwidth, resolution=[20, 20], im_range=list(im_range),
                          weight=lambda x: 10 * math.tanh(x[1]) + 10 * math.log(100 * x[0] + 1))
    return pi.fit_transform(diagrams) * scale


def bench_images(n: int, m: int, dim: int, repeats: int = 3, seed: int = 0) -> dict:
    import torchtopo

    g = torch.Generator().manual_seed(seed)
    # teacher-like clouds: ReLU features of a few clusters
    centers = torch.randn(8, dim, generator=g).relu() * 2
    labels = torch.randint(0, 8, (n, m), generator=g)
    clouds = (centers[labels] + 0.5 * torch.randn(n, m, dim, generator=g)).relu()

    def ours():
        dgm = torchtopo.rips_persistence(clouds, max_dim=0)
        pi = torchtopo.PersistenceImage.topkd(faithful=True).fit(dgm)
        return pi, pi(dgm).flatten(1)

    # best of `repeats` (the first call also loads the compiled kernels)
    t_ours, t_official = math.inf, math.inf
    for _ in range(repeats):
        tic = time.perf_counter()
        pi, images = ours()
        t_ours = min(t_ours, time.perf_counter() - tic)
        tic = time.perf_counter()
        theirs = official_images(clouds.double().numpy(), pi.bandwidth_[0], pi.range_[0],
                                 pi.scale_[0])
        t_official = min(t_official, time.perf_counter() - tic)
    err = float(np.abs(images.double().numpy() - theirs).max())
    return {"clouds": n, "points": m, "dim": dim, "torchtopo_s": t_ours, "official_s": t_official,
            "torchtopo_clouds_per_s": n / t_ours, "official_clouds_per_s": n / t_official,
            "speedup": t_official / t_ours, "max_abs_image_difference": err,
            "note": "official = gudhi RipsComplex per cloud + gudhi PersistenceImage, with the "
                    "bandwidth/range/scale fitted by torchtopo (its fit is timed on our side)"}


def bench_steps(teacher: str, student: str, batch: int, steps: int, seed: int = 0) -> dict:
    """Median step time of KD and TopKD, steps interleaved so that load changes on a shared
    machine affect both alike."""
    import torchtopo

    from topkd.distillers import build_distiller
    from topkd.models import build_model

    runs = {}
    for name in ("kd", "topkd"):
        torch.manual_seed(seed)
        s, t = build_model(student, 100), build_model(teacher, 100)
        kw = {}
        if name == "topkd":
            kw = {"ripsnet": torchtopo.RipsNet.for_features(t.feature_channels()["pooled"], 20),
                  "cloud_size": 64}
        d = build_distiller(name, s, t, **kw).train()
        runs[name] = (d, torch.optim.SGD(d.get_learnable_parameters(), lr=0.01, momentum=0.9), [])
    x, y = torch.randn(batch, 3, 32, 32), torch.randint(0, 100, (batch,))
    for i in range(steps + 2):
        for name, (d, opt, times) in runs.items():
            tic = time.perf_counter()
            _, losses = d.forward_train(x, y)
            opt.zero_grad()
            sum(losses.values()).backward()
            opt.step()
            if i >= 2:  # warm-up
                times.append(time.perf_counter() - tic)
    out = {f"{name}_step_s": float(np.median(times)) for name, (_, _, times) in runs.items()}
    out["topkd_over_kd"] = out["topkd_step_s"] / out["kd_step_s"]
    out.update(teacher=teacher, student=student, batch=batch)
    return out


def markdown(result: dict) -> str:
    images, steps = result["images"], result["steps"]
    return "\n".join([
        f"TopKD's topology stage: {images['clouds']} clouds of {images['points']} points in dimension "
        f"{images['dim']}, H0, the official 20 x 20 image; best of 3 runs. Training steps: "
        f"{steps['teacher']} -> {steps['student']}, batch {steps['batch']}, median.",
        "",
        "| measure | torchtopo | official recipe / KD | ratio |",
        "|---|---|---|---|",
        f"| clouds -> images, clouds/s | {images['torchtopo_clouds_per_s']:,.0f} | "
        f"{images['official_clouds_per_s']:,.0f} | {images['speedup']:.3g}x the official rate |",
        f"| training step, s | {steps['topkd_step_s']:.3f} (TopKD) | {steps['kd_step_s']:.3f} (KD) | "
        f"{steps['topkd_over_kd']:.2f}x the KD step |",
        "",
        f"Largest difference between the two pipelines' images: {images['max_abs_image_difference']:.1e}.",
    ])


def main(argv=None) -> int:
    from common import add_output_arguments, output_dir, write_results

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--clouds", type=int, default=256, help="point clouds turned into images")
    parser.add_argument("--points", type=int, default=64, help="points per cloud (TopKD: the batch size)")
    parser.add_argument("--dim", type=int, default=64, help="dimension of the points (the teacher's feature width)")
    parser.add_argument("--pair", nargs=2, default=["resnet56", "resnet20"],
                        metavar=("TEACHER", "STUDENT"), help="models of the timed training steps")
    parser.add_argument("--batch", type=int, default=64, help="images per training step")
    parser.add_argument("--steps", type=int, default=5, help="timed training steps per distiller, after 2 warm-up steps")
    add_output_arguments(parser)
    args = parser.parse_args(argv)
    result = {"images": bench_images(args.clouds, args.points, args.dim),
              "steps": bench_steps(*args.pair, args.batch, args.steps),
              "threads": torch.get_num_threads()}
    write_results(output_dir(args) / "bench_topology", result, markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
