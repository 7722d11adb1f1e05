#!/usr/bin/env python
"""TopKD CIFAR-100 reproduction suite: one command from teacher to table.

Examples
--------
Offline end-to-end smoke run on scikit-learn's digits (every stage, 3 seeds, a few minutes)::

    python examples/topkd/run_cifar.py --preset smoke

One pair of Table 1, every stage, the distillers listed in its ``compare``::

    python examples/topkd/run_cifar.py --preset res56_res20 all

A single stage (stages skip when their outputs exist and resume otherwise)::

    python examples/topkd/run_cifar.py --preset res56_res20 student --distiller topkd --seed 1

A whole table (pairs × seeds → results.csv/json + comparison.md)::

    python examples/topkd/run_cifar.py --preset table1 table --set seeds=[0,1,2]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from topkd import distributed as D  # noqa: E402
from topkd import stages  # noqa: E402
from topkd.config import load_config, preset_path, validate  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("stage", nargs="?", default=None, choices=stages.STAGES,
                        help="stage to run (default: 'table' for table presets, else 'all')")
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument("--preset", help="a config of examples/topkd/configs (e.g. smoke, "
                                      "res56_res20, table1)")
    src.add_argument("--config", help="path of a YAML config")
    parser.add_argument("--distiller", help="'student' stage: the compare entry to train "
                                            "(default: every entry)")
    parser.add_argument("--seed", type=int, help="'student'/'all': one seed instead of the "
                                                 "config's seeds")
    parser.add_argument("--out", help="output folder (overrides out_dir; for tables, the "
                                      "folder of the results)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config entry, e.g. --set train.epochs=10")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    path = preset_path(args.preset) if args.preset else args.config
    cfg = load_config(path, args.set)
    pairs = cfg["pairs"] if "pairs" in cfg else [cfg]
    stage = args.stage or ("table" if "pairs" in cfg or len(pairs[0]["seeds"]) > 1 else "all")
    if args.out and "pairs" not in cfg:
        pairs[0]["out_dir"] = args.out
    for pair in pairs:
        if args.distiller and args.distiller not in pair["compare"]:
            raise SystemExit(f"--distiller {args.distiller!r} is not in {pair['name']}'s compare "
                             f"list {pair['compare']}; add it with --set 'compare=[...]'")
        validate(pair)
    seeds = [args.seed] if args.seed is not None else None
    D.init_distributed()  # under torchrun: DDP training, rank 0 writes (topkd/distributed.py)
    tic = time.perf_counter()
    rows = []
    for pair in pairs:
        if stage == "teacher":
            print(json.dumps(stages.stage_teacher(pair), indent=2))
        elif stage == "clouds":
            print(json.dumps(stages.stage_clouds(pair), indent=2))
        elif stage == "diagrams":
            print(json.dumps(stages.stage_diagrams(pair), indent=2))
        elif stage == "ripsnet":
            metrics = stages.stage_ripsnet(pair)
            print(json.dumps({k: v for k, v in metrics.items() if k != "history"}, indent=2))
        elif stage == "student":
            for entry in [args.distiller] if args.distiller else pair["compare"]:
                for seed in seeds or pair["seeds"]:
                    print(json.dumps(stages.stage_student(pair, entry, seed), indent=2))
        else:
            rows += stages.run_all(pair, [args.distiller] if args.distiller else None, seeds)
    if stage in ("all", "table") and D.is_main():
        out = args.out if (args.out and "pairs" in cfg) else os.path.join(
            pairs[0]["out_dir"] if len(pairs) == 1 else os.path.join("runs", cfg["name"]), "table")
        print(stages.write_table(rows, pairs, out))
        print(f"results in {out} ({time.perf_counter() - tic:.1f} s)")
    D.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
