"""Helpers shared by the benchmark scripts: the machine's description, interleaved median
timing, where results go, and writing a result as JSON plus a markdown table (imported as
``common`` by the scripts, which run from this folder)."""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import threading
import time
from pathlib import Path
from typing import Callable

import torch

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"  # the committed tables, shown in the docs
SCRATCH = ROOT / "benchmarks" / "_scratch"  # git-ignored: where a plain run writes


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


def _other_threads_cpu_ns() -> int | None:
    """CPU time (ns) used so far by this process's threads other than the calling one, from
    ``/proc/self/task/*/schedstat`` (Linux); None where that cannot be read."""
    own = str(threading.get_native_id())
    try:
        tasks = os.listdir("/proc/self/task")
    except OSError:
        return None
    total = 0
    for task in tasks:
        if task != own:
            try:
                with open(f"/proc/self/task/{task}/schedstat") as f:
                    total += int(f.read().split()[0])
            except (OSError, IndexError, ValueError):
                # The thread ended meanwhile: its file is gone (FileNotFoundError), or it is still
                # listed but reading it fails (ProcessLookupError) or gives nothing.
                pass
    return total


def wait_for_idle_threads(window: float = 0.005, busy: float = 0.2, limit: float = 1.0) -> None:
    """Return once this process's other threads have used under ``busy`` of a core over
    ``window`` seconds (at most ``limit`` seconds of waiting).

    Some peers leave threads running after a call returns: giotto-ph's pool spins for about
    100 ms after each ``ripser_parallel`` call, which took one of two cores from whatever ran
    next (a torchtopo call after it measured up to twice its time). Waiting before each timed
    call keeps every call, each peer's included, from paying for the previous one's threads.
    Without ``/proc`` (not Linux), waits ``4 * window`` instead.
    """
    deadline = time.perf_counter() + limit
    before = _other_threads_cpu_ns()
    if before is None:
        time.sleep(4 * window)
        return
    while time.perf_counter() < deadline:
        time.sleep(window)
        after = _other_threads_cpu_ns()
        if after - before < busy * window * 1e9:
            return
        before = after


def interleaved_medians(
    calls: dict[str, Callable[[], object]], repeats: int, *, warmup: int = 1, sync: Callable[[], None] | None = None,
    wait_for_threads: bool = True,
) -> dict[str, float]:
    """Median seconds of each call over ``repeats``, after ``warmup`` untimed rounds.

    Repeats go round-robin over the calls, so a change in the load of a shared machine weighs on
    all of them alike and their ratios stay meaningful. With ``wait_for_threads``, each timed
    call starts once the threads a previous call left running are idle
    (:func:`wait_for_idle_threads`). ``sync`` (e.g. ``torch.cuda.synchronize``) runs before each
    clock read.
    """
    sync = sync or (lambda: None)
    for _ in range(warmup):
        for call in calls.values():
            call()
    times: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(repeats):
        for name, call in calls.items():
            sync()
            if wait_for_threads:
                wait_for_idle_threads()
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


def add_output_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--out-dir`` (default the git-ignored ``benchmarks/_scratch/``) and ``--write-results``
    (write into ``benchmarks/results/`` instead, replacing the committed table); read them back
    with :func:`output_dir`. A run without arguments thus never overwrites a committed table."""
    group = parser.add_argument_group("output").add_mutually_exclusive_group()
    group.add_argument("--out-dir", type=Path, default=SCRATCH,
                       help="folder for the .json result and its .md table (the default is git-ignored)")
    group.add_argument("--write-results", action="store_true",
                       help=f"write into {RESULTS.relative_to(ROOT)}/ instead, replacing the committed table "
                            "(for the recorded run on a quiet machine)")


def output_dir(args: argparse.Namespace) -> Path:
    """The folder chosen by the arguments of :func:`add_output_arguments`."""
    return RESULTS if args.write_results else args.out_dir


def _git(*command: str) -> str:
    run = subprocess.run(["git", "-C", str(ROOT), *command], capture_output=True, text=True)
    return run.stdout.strip() if run.returncode == 0 else ""


def provenance(threads: int | None = None) -> str:
    """``"Recorded <date>, commit <hash>, <cpu>, <n> cores, <t> threads, load average <l>."``

    The commit gets a ``+`` when the measured code (tracked files under ``torchtopo/``,
    ``benchmarks/`` but its recorded tables, ``examples/``) differs from it; ``threads`` defaults
    to torch's intra-op thread count.
    """
    threads = torch.get_num_threads() if threads is None else threads
    commit = _git("rev-parse", "--short=10", "HEAD") or "unknown"
    measured = ["torchtopo", "benchmarks", "examples", f":!{RESULTS.relative_to(ROOT)}"]
    if commit != "unknown" and _git("status", "--porcelain", "--untracked-files=no", "--", *measured):
        commit += "+ (uncommitted changes)"
    load = f", load average {os.getloadavg()[0]:.1f}" if hasattr(os, "getloadavg") else ""
    date = datetime.datetime.now(datetime.timezone.utc).date().isoformat()
    return (f"Recorded {date}, commit {commit}, {cpu_name()}, {os.cpu_count()} cores, "
            f"{threads} thread{'s' if threads != 1 else ''}{load}.")


def _plain(value):
    """JSON form of what ``json`` does not know: NumPy scalars (a rate or an error computed from
    float32 arrays) as numbers, anything else as its string."""
    return value.item() if hasattr(value, "item") else str(value)


def write_results(out: Path, payload: dict, table: str, *, threads: int | None = None) -> None:
    """Write ``payload`` to ``out`` as ``.json`` and ``table`` beside it as ``.md``, both headed by
    :func:`provenance` (date, commit, CPU, threads); print the table."""
    header = provenance(threads)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps({"provenance": header, **payload}, indent=1, default=_plain) + "\n")
    table = f"{header}\n\n{table.strip()}\n"
    out.with_suffix(".md").write_text(table)
    print(table)
