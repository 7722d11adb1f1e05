"""Helpers shared by the benchmark scripts: the machine's description, interleaved median
timing, and writing a result as JSON plus a markdown table (imported as ``common`` by the
scripts, which run from this folder)."""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Callable

import torch

RESULTS = Path(__file__).parent / "results"


def cpu_name() -> str:
    """The processor's model name (Linux), else what ``platform`` knows."""
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def machine(**versions: str) -> str:
    """``"<cpu>, <n> cores, torch <v>"`` followed by ``", <name> <version>"`` for each keyword."""
    extra = "".join(f", {name} {version}" for name, version in versions.items())
    return f"{cpu_name()}, {os.cpu_count()} cores, torch {torch.__version__}{extra}"


def interleaved_medians(
    calls: dict[str, Callable[[], object]], repeats: int, *, warmup: int = 1, sync: Callable[[], None] | None = None
) -> dict[str, float]:
    """Median seconds of each call over ``repeats``, after ``warmup`` untimed rounds.

    Repeats go round-robin over the calls, so a change in the load of a shared machine weighs on
    all of them alike and their ratios stay meaningful. ``sync`` (e.g.
    ``torch.cuda.synchronize``) runs before each clock read.
    """
    sync = sync or (lambda: None)
    for _ in range(warmup):
        for call in calls.values():
            call()
    times: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(repeats):
        for name, call in calls.items():
            sync()
            start = time.perf_counter()
            call()
            sync()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(samples) for name, samples in times.items()}


def clouds_per_second(
    run: Callable[[], object], clouds: int, repeats: int, *, warmup: int = 0, sync: Callable[[], None] | None = None
) -> float:
    """``clouds`` divided by the median seconds of ``run``."""
    return clouds / interleaved_medians({"run": run}, repeats, warmup=warmup, sync=sync)["run"]


def write_results(out: Path, payload: dict, table: str) -> None:
    """Write ``payload`` to ``out`` as ``.json`` and ``table`` beside it as ``.md``; print the table."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(payload, indent=1) + "\n")
    out.with_suffix(".md").write_text(table.rstrip("\n") + "\n")
    print(table)
