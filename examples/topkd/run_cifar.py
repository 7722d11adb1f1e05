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

A bad configuration (unknown key, bad value, unknown preset), a run folder in use by another
run, or an unusable file ends with one line saying what to do, before any work.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

START = time.perf_counter()  # the total wall time printed at the end counts the imports too
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
# OpenMP threads sleep instead of spinning while they wait: on a shared or oversubscribed CPU,
# spinning made a training step 14x slower (16 s against 1.1 s, 2 threads, load 12); on an
# idle machine the difference is within noise. Set before torch loads its OpenMP runtime.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from topkd import distributed as D  # noqa: E402
from topkd import pipeline  # noqa: E402
from topkd.config import ConfigError, load_config, preset_path  # noqa: E402
from topkd.layout import layout  # noqa: E402
from topkd.report import write_results  # noqa: E402
from topkd.storage import RunFileError, RunLockedError  # noqa: E402

STAGES = (*pipeline.STAGES, "all", "table")
#: Errors that end a run with one line (no traceback): the user has something to fix.
USER_ERRORS = (ConfigError, RunFileError, RunLockedError, FileNotFoundError)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("stage", nargs="?", default=None, choices=STAGES,
                        help="stage to run; none: 'table' for table presets and several seeds, "
                             "else 'all'")
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument("--preset", help="a config of examples/topkd/configs (e.g. smoke, "
                                      "res56_res20, table1)")
    src.add_argument("--config", help="path of a YAML config")
    parser.add_argument("--distiller", help="'student'/'all': the compare entry to train "
                                            "(none: every entry)")
    parser.add_argument("--seed", type=int, help="'student'/'all': one seed instead of the "
                                                 "config's seeds")
    parser.add_argument("--out", help="output folder (overrides out_dir; for tables, the "
                                      "folder of the results)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config entry, e.g. --set train.epochs=10 (repeatable)")
    return parser.parse_args(argv)


def _run(args: argparse.Namespace, cfg, pairs) -> None:
    stage = args.stage or ("table" if "pairs" in cfg or len(pairs[0]["seeds"]) > 1 else "all")
    entries = [args.distiller] if args.distiller else None
    seeds = [args.seed] if args.seed is not None else None
    tic = time.perf_counter()
    rows = []
    for pair in pairs:
        if stage in ("all", "table"):
            rows += pipeline.run_pair(pair, entries, seeds)
        elif stage == "student":
            for entry in entries or pair["compare"]:
                for seed in seeds or pair["seeds"]:
                    print(json.dumps(pipeline.stage_student(pair, entry, seed), indent=2))
        else:
            result = pipeline.STAGE_FUNCTIONS[stage](pair)
            print(json.dumps({k: v for k, v in result.items() if k != "history"}, indent=2))
    if stage in ("all", "table") and D.is_main():
        out = args.out if (args.out and "pairs" in cfg) else (
            layout(pairs[0]).table if len(pairs) == 1 else os.path.join("runs", cfg["name"], "table"))
        print(write_results(rows, pairs, out))
        print(f"results in {out} (stages {time.perf_counter() - tic:.1f} s)")


def main(argv=None) -> int:
    start = START if __name__ == "__main__" else time.perf_counter()
    args = parse_args(argv)
    D.init_distributed()  # under torchrun: DDP training, rank 0 writes (topkd/distributed.py)
    try:
        cfg = load_config(preset_path(args.preset) if args.preset else args.config, args.set)
        pairs = cfg["pairs"] if "pairs" in cfg else [cfg]
        if args.out and "pairs" not in cfg:
            pairs[0]["out_dir"] = args.out
        for pair in pairs:
            if args.distiller and args.distiller not in pair["compare"]:
                raise ConfigError(f"--distiller {args.distiller!r} is not in {pair['name']}'s "
                                  f"compare list {pair['compare']}; add it with "
                                  "--set 'compare=[...]'")
            pipeline.validate(pair, pipeline.STAGES if args.stage in (None, "all", "table")
                              else (args.stage,))
        with pipeline.locked(pair["out_dir"] for pair in pairs):
            _run(args, cfg, pairs)
    except USER_ERRORS as err:
        raise SystemExit(f"run_cifar.py: error: {err}") from None
    finally:
        main_rank = D.is_main()
        D.cleanup()
    if main_rank:
        print(f"total wall time {time.perf_counter() - start:.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
