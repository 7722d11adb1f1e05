#!/usr/bin/env python
"""TopKD analysis suite: approximation errors (Table 8), UMAP, diagrams, ablation sweeps.

Every subcommand reads the outputs of ``run_cifar.py`` (teacher, topology stages, student
runs) of the configs it is given; ``--run`` first runs whatever is missing (``run_cifar.py``'s
``all``). Results land in ``<out_dir>/analysis/`` unless ``--out`` says otherwise.

Examples
--------
The poster's Table 8 for the offline smoke preset (vanilla, KD and TopKD students, 3 seeds)::

    python examples/topkd/run_analysis.py table8 --preset smoke --run

Table 8 for every pair of Table 2, 100 clouds per run::

    python examples/topkd/run_analysis.py table8 --preset table2 --num-clouds 100

UMAP of teacher, KD and TopKD features with k-NN agreement and silhouette scores::

    python examples/topkd/run_analysis.py umap --preset smoke --distillers kd topkd

Teacher vs student diagrams and images, and the student's diagram over training::

    python examples/topkd/run_analysis.py diagrams --preset smoke --distiller topkd --every 1

An ablation grid (``configs/ablations/<name>.yaml`` or a path)::

    python examples/topkd/run_analysis.py sweep --grid smoke_delta
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

from topkd import analysis, pipeline, sweep, visualize  # noqa: E402
from topkd.config import CONFIG_DIR, ConfigError, load_config, preset_path  # noqa: E402
from topkd.report import write_table8  # noqa: E402
from topkd.storage import RunFileError, RunLockedError  # noqa: E402

COMMANDS = ("table8", "umap", "diagrams", "sweep")
#: Errors that end a run with one line (no traceback): the user has something to fix.
USER_ERRORS = (ConfigError, RunFileError, RunLockedError, FileNotFoundError)


def parse_args(argv=None) -> argparse.Namespace:
    fmt = argparse.ArgumentDefaultsHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=fmt)
    sub = parser.add_subparsers(dest="command", required=True, help="the analysis to run")

    def pair_args(p, many_distillers: bool):
        src = p.add_mutually_exclusive_group(required=True)
        src.add_argument("--preset", help="a config of examples/topkd/configs (smoke, "
                                          "res56_res20, table2, ...)")
        src.add_argument("--config", help="path of a YAML config")
        p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help="override a config entry, e.g. --set train.epochs=10 (repeatable)")
        p.add_argument("--run", action="store_true",
                       help="first run the missing pipeline stages (run_cifar.py's 'all')")
        if many_distillers:
            p.add_argument("--distillers", nargs="+", help="compare entries (none: the "
                                                           "config's; umap: those that read "
                                                           "the teacher)")
        else:
            p.add_argument("--distiller", default="topkd", help="the student's compare entry")

    t8 = sub.add_parser("table8", help="approximation errors of the RipsNet (poster Table 8)",
                        formatter_class=fmt)
    pair_args(t8, True)
    t8.add_argument("--seeds", type=int, nargs="+", help="the students' seeds (none: the "
                                                         "config's seeds)")
    t8.add_argument("--num-clouds", type=int, help="clouds averaged per run (none: one "
                                                   "pass over the training set)")
    t8.add_argument("--out", help="folder of table8.csv/md (none: <out_dir>/analysis, or "
                                  "runs/<table>/analysis for a table config)")

    um = sub.add_parser("umap", help="UMAP of penultimate features + class separation scores",
                        formatter_class=fmt)
    pair_args(um, True)
    um.add_argument("--seed", type=int, default=0, help="seed of the student runs shown")
    um.add_argument("--max-images", type=int, default=1000, help="test images embedded")
    um.add_argument("--k", type=int, default=10, help="neighbours of the k-NN agreement")

    dg = sub.add_parser("diagrams", help="teacher vs student diagrams/images, and the "
                                         "student's diagram over training", formatter_class=fmt)
    pair_args(dg, False)
    dg.add_argument("--seed", type=int, default=0, help="seed of the student run shown")
    dg.add_argument("--num-clouds", type=int, default=2, help="test clouds drawn")
    dg.add_argument("--every", type=int, default=1,
                    help="log the tracked student's images every this many epochs")
    dg.add_argument("--no-trajectory", action="store_true",
                    help="skip the tracked training run (the side-by-side figure only)")

    sw = sub.add_parser("sweep", help="ablation grid (configs/ablations/*.yaml)",
                        formatter_class=fmt)
    sw.add_argument("--grid", required=True, help="a grid of configs/ablations (name) or a path")
    sw.add_argument("--out", help="output folder (overrides the grid's out_dir)")
    return parser.parse_args(argv)


def _pairs(args):
    path = preset_path(args.preset) if args.preset else args.config
    cfg = load_config(path, args.set)
    pairs = cfg["pairs"] if "pairs" in cfg else [cfg]
    entries = getattr(args, "distillers", None) or (
        [args.distiller] if getattr(args, "distiller", None) else None)
    for pair in pairs:
        if entries:
            missing = [e for e in entries if e not in pair["compare"]]
            if missing:
                raise ConfigError(f"{missing} not in {pair['name']}'s compare list "
                                  f"{pair['compare']}; add them with --set 'compare=[...]'")
        pipeline.validate(pair)
    return cfg, pairs, entries


def grid_path(name: str) -> str:
    """A grid file: a path, or the name of one in ``configs/ablations/``."""
    if os.path.isfile(name):
        return name
    path = os.path.join(CONFIG_DIR, "ablations", f"{name}.yaml")
    if not os.path.isfile(path):
        known = sorted(f[:-5] for f in os.listdir(os.path.dirname(path)) if f.endswith(".yaml"))
        raise ConfigError(f"unknown grid {name!r}; known: {', '.join(known)} (or give a path)")
    return path


def _analyse(args) -> None:
    if args.command == "sweep":
        grid = sweep.load_grid(grid_path(args.grid))
        with pipeline.locked([args.out or grid["out_dir"], grid["base"]["out_dir"]]):
            print(sweep.run_sweep(grid_path(args.grid), args.out))
        return
    cfg, pairs, entries = _pairs(args)
    with pipeline.locked(pair["out_dir"] for pair in pairs):
        for pair in pairs if args.run else ():
            pipeline.run_pair(pair, entries, getattr(args, "seeds", None)
                              or ([args.seed] if hasattr(args, "seed") else None))
        if args.command == "table8":
            rows = []
            for pair in pairs:
                rows += analysis.approximation_errors(pair, entries, args.seeds, args.num_clouds)
            out = args.out or (os.path.join("runs", cfg["name"], "analysis") if "pairs" in cfg
                               else analysis.analysis_dir(pairs[0]))
            print(write_table8(rows, out))
            print(f"table in {out}")
        elif args.command == "umap":
            for pair in pairs:
                distilled = [e for e in pair["compare"] if pipeline.entry_needs_teacher(pair, e)]
                scores = visualize.umap_analysis(pair, entries or distilled, args.seed,
                                                 args.max_images, args.k)
                print(json.dumps(scores, indent=2))
        else:
            for pair in pairs:
                print(visualize.diagram_comparison(pair, args.distiller, args.seed,
                                                   args.num_clouds))
                if not args.no_trajectory:
                    print(visualize.trajectory_figure(pair, args.distiller, args.seed, args.every,
                                                      args.num_clouds))


def main(argv=None) -> int:
    args = parse_args(argv)
    tic = time.perf_counter()
    try:
        _analyse(args)
    except USER_ERRORS as err:
        raise SystemExit(f"run_analysis.py: error: {err}") from None
    print(f"done in {time.perf_counter() - tic:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
