#!/usr/bin/env python
"""TopKD on ImageNet-1K (Tables 3 and 4), on one GPU or many with PyTorch DDP.

Examples
--------
One node, 8 GPUs, every stage of ResNet34 -> ResNet18 (NCCL)::

    torchrun --nproc_per_node=8 examples/topkd/run_imagenet.py \\
        --config examples/topkd/configs/imagenet/res34_res18.yaml all

Two nodes of 8 GPUs (run on each node, NODE_RANK = 0 or 1, MASTER = node 0's address)::

    torchrun --nnodes=2 --node_rank=$NODE_RANK --nproc_per_node=8 \\
        --rdzv_backend=c10d --rdzv_endpoint=$MASTER:29500 --rdzv_id=topkd \\
        examples/topkd/run_imagenet.py --config .../res34_res18.yaml all

One process (CPU or one GPU), one stage, continuing an interrupted student::

    python examples/topkd/run_imagenet.py --config .../res34_res18.yaml student \\
        --distiller topkd --resume

Batch sizes in the config are global (256 by default, lr 0.1 scaled linearly); a run resumes
from ``latest.pt`` on any number of ranks. The stages are those of ``run_cifar.py``
(:mod:`topkd.pipeline`); ``teacher`` evaluates the configured torchvision teacher.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from topkd import distributed as D  # noqa: E402
from topkd import pipeline  # noqa: E402
from topkd.config import IMAGENET_DEFAULTS, ConfigError, load_config  # noqa: E402
from topkd.layout import layout  # noqa: E402
from topkd.report import write_results  # noqa: E402
from topkd.storage import RunFileError, RunLockedError  # noqa: E402

STAGES = (*pipeline.STAGES, "all")
#: Errors that end a run with one line (no traceback): the user has something to fix.
USER_ERRORS = (ConfigError, RunFileError, RunLockedError, FileNotFoundError)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("stages", nargs="*", default=["all"], choices=STAGES, metavar="stage",
                        help=f"stages to run in order, among {', '.join(STAGES)}")
    parser.add_argument("--config", required=True, help="YAML pair config "
                        "(examples/topkd/configs/imagenet/*.yaml)")
    parser.add_argument("--distiller", help="'student'/'all': one compare entry (none: all)")
    parser.add_argument("--seed", type=int, help="'student'/'all': one seed instead of the "
                                                 "config's seeds")
    parser.add_argument("--out", help="output folder (overrides out_dir)")
    parser.add_argument("--resume", action="store_true",
                        help="continue students from their latest.pt (any number of ranks)")
    parser.add_argument("--stop-after-epochs", type=int, default=None, metavar="N",
                        help="'student': stop after N epochs in total (for time-limited jobs; "
                             "continue with --resume)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config entry, e.g. --set train.epochs=10 (repeatable)")
    return parser.parse_args(argv)


def run_stage(cfg, stage: str, entries, seeds, args):
    """Run one stage; returns what it reports (a dict, a list of dicts or the markdown table)."""
    if stage == "student":
        return [pipeline.stage_student(cfg, e, s, args.resume, args.stop_after_epochs)
                for e in entries for s in seeds]
    if stage == "all":
        rows = pipeline.run_pair(cfg, entries, seeds, args.resume)
        return write_results(rows, [cfg], layout(cfg).table) if D.is_main() else ""
    return {k: v for k, v in pipeline.STAGE_FUNCTIONS[stage](cfg).items() if k != "history"}


def main(argv=None) -> int:
    args = parse_args(argv)
    D.init_distributed()
    try:
        cfg = load_config(args.config, args.set, IMAGENET_DEFAULTS)
        if args.out:
            cfg["out_dir"] = args.out
        if args.distiller and args.distiller not in cfg["compare"]:
            raise ConfigError(f"--distiller {args.distiller!r} is not in {cfg['name']}'s compare "
                              f"list {cfg['compare']}")
        pipeline.validate(cfg, pipeline.STAGES if "all" in args.stages else args.stages)
        entries = [args.distiller] if args.distiller else cfg["compare"]
        seeds = [args.seed] if args.seed is not None else cfg["seeds"]
        with pipeline.locked([cfg["out_dir"]]):
            for stage in args.stages:
                tic = time.perf_counter()
                result = run_stage(cfg, stage, entries, seeds, args)
                if D.is_main():
                    print(result if isinstance(result, str) else json.dumps(result, indent=2))
                    print(f"{stage}: {time.perf_counter() - tic:.1f} s on {D.world_size()} "
                          "rank(s)", flush=True)
    except USER_ERRORS as err:
        raise SystemExit(f"run_imagenet.py: error: {err}") from None
    finally:
        D.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
