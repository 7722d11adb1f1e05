#!/usr/bin/env python
"""How well the RipsNet learns the teacher's persistence images, against the number of passes
over the training set that make its clouds (and against its epochs).

One pair's teacher (trained, or loaded from ``teacher.checkpoint``) embeds ``max(--passes) +
--heldout-passes`` passes; the clouds of the last ``--heldout-passes`` passes are never fitted
on and measure every fit: held-out MSE, the MSE of the mean training image on the same clouds,
R² = 1 − MSE / MSE_const. A RipsNet is fitted (the config's ``topology.ripsnet`` settings, its
own validation split for early stopping) on the clouds of the first ``k`` passes for each
``k`` of ``--passes``. Also reports the rate of the cloud → diagram → image stage.

Example (the smoke preset's digits, offline)::

    python examples/topkd/bench_ripsnet.py --preset smoke --passes 1 4 16 64 256

Writes ``<out>/bench_ripsnet.md`` and ``.json`` (default ``runs/bench_ripsnet``, scratch).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
# OpenMP threads sleep instead of spinning while they wait: on a shared or oversubscribed CPU,
# spinning made a training step 14x slower (16 s against 1.1 s, 2 threads, load 12); on an
# idle machine the difference is within noise. Set before torch loads its OpenMP runtime.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402

from topkd import pipeline  # noqa: E402
from topkd.config import load_config, preset_path  # noqa: E402
from topkd.storage import write_json, write_text  # noqa: E402
from topkd.topology import heldout_quality, ripsnet_data, ripsnet_pooling  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument("--preset", help="a config of examples/topkd/configs (e.g. smoke)")
    src.add_argument("--config", help="path of a YAML config")
    parser.add_argument("--passes", type=int, nargs="+", default=[1, 4, 16, 64, 256],
                        help="numbers of passes whose clouds each RipsNet is fitted on")
    parser.add_argument("--heldout-passes", type=int, default=8,
                        help="passes after the largest --passes whose clouds measure every fit")
    parser.add_argument("--out", default="runs/bench_ripsnet", help="scratch output folder")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config entry (repeatable)")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    import torchtopo

    args = parse_args(argv)
    if min(args.passes) < 1 or args.heldout_passes < 1:
        raise SystemExit("bench_ripsnet.py: error: --passes and --heldout-passes must be >= 1")
    total = max(args.passes) + args.heldout_passes
    cfg = load_config(preset_path(args.preset) if args.preset else args.config,
                      [*args.set, f"topology.passes={total}", f"out_dir={args.out}"])
    pipeline.validate(cfg, ("teacher", "clouds", "diagrams"))
    tic = time.perf_counter()
    teacher = pipeline.stage_teacher(cfg)
    teacher_s = time.perf_counter() - tic
    clouds_meta = pipeline.stage_clouds(cfg)
    images_meta = pipeline.stage_diagrams(cfg)
    clouds, targets = ripsnet_data(cfg)
    per_pass = clouds_meta["num_clouds"] // total
    heldout = torch.arange(max(args.passes) * per_pass, total * per_pass)
    rn = cfg["topology"]["ripsnet"]
    rows = []
    for k in sorted(set(args.passes)):
        fit = torch.arange(k * per_pass)
        torch.manual_seed(cfg["teacher"]["seed"])
        model = torchtopo.RipsNet.for_features(clouds.shape[-1], targets.shape[-1],
                                               pooling=ripsnet_pooling(cfg),
                                               input_norm=rn["data_init"],
                                               output_bias=rn["data_init"])
        start = time.perf_counter()
        history = torchtopo.fit_ripsnet(
            model, clouds[fit], targets[fit], epochs=rn["epochs"], lr=rn["lr"],
            batch_size=rn["batch_size"], val_batch_size=rn["val_batch_size"],
            val_fraction=rn["val_fraction"], split=rn["split"], patience=rn["patience"],
            min_delta=rn["min_delta"], seed=cfg["teacher"]["seed"], progress=False)
        quality = heldout_quality(model, clouds, targets, fit, heldout)
        rows.append({"passes": k, "clouds": int(fit.numel()), **quality,
                     "val_r2": history["best_val_r2"], "epochs": len(history["train_loss"]),
                     "best_epoch": history["best_epoch"] + 1,
                     "seconds": time.perf_counter() - start,
                     "val_r2_by_epoch": history["val_r2"]})
        print(f"passes {k}: {fit.numel()} clouds, held-out R² {quality['r2']:.3f} (MSE "
              f"{quality['heldout_mse']:.5f} vs {quality['constant_mse']:.5f}), "
              f"{rows[-1]['epochs']} epochs, {rows[-1]['seconds']:.1f} s", flush=True)
    load = os.getloadavg()[0]
    lines = [f"RipsNet held-out R² against the passes that make its clouds: {cfg['name']} "
             f"({cfg['dataset']['name']}, {cfg['teacher']['arch']} teacher, top-1 "
             f"{teacher['top1']:.2f}), {per_pass} clouds of {clouds.shape[1]} points per pass, "
             f"held out: the {heldout.numel()} clouds of {args.heldout_passes} later passes; "
             f"load average {load:.1f}.", "",
             "| passes | clouds fitted | held-out R² | held-out MSE | mean-image MSE | epochs "
             "(best) | fit s |", "|---|---|---|---|---|---|---|"]
    lines += [f"| {r['passes']} | {r['clouds']} | {r['r2']:.3f} | {r['heldout_mse']:.5f} | "
              f"{r['constant_mse']:.5f} | {r['epochs']} ({r['best_epoch']}) | "
              f"{r['seconds']:.1f} |" for r in rows]
    lines += ["", f"Teacher stage {teacher_s:.1f} s; clouds {clouds_meta['seconds']:.1f} s "
                  f"({clouds_meta['num_clouds'] / max(clouds_meta['seconds'], 1e-9):.0f} "
                  f"clouds/s); diagrams + images {images_meta['seconds']:.1f} s "
                  f"({images_meta['clouds_per_second']:.0f} clouds/s of topology time)."]
    text = "\n".join(lines) + "\n"
    os.makedirs(args.out, exist_ok=True)
    write_text(text, os.path.join(args.out, "bench_ripsnet.md"))
    write_json({"rows": rows, "clouds": clouds_meta, "images": images_meta, "load": load},
               os.path.join(args.out, "bench_ripsnet.json"))
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
