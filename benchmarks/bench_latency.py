"""Latency of one small call of torchtopo.rips_persistence, quiet and beside other busy processes.

TopKD's exact mode calls ``rips_persistence`` on one or two clouds per training step, often
beside data-loader workers: what counts there is the time of one call, not a batch's
throughput. For B clouds (default 1 and 4) of m points (default 64 and 128), H0+H1 in
d = 512 and H0 in d = 64, on float32 points that require a gradient (as a network's features
do), this script reports the median milliseconds of one call, repeats interleaved with gudhi's
own calls on the same clouds (float64, its dtype; one ``RipsComplex(...).persistence()`` per
cloud), under three loads it starts and stops itself:

- ``quiet``: nothing else started (the machine's own load is reported);
- ``torch``: two processes doing float32 matrix products with torch's default threads;
- ``mixed``: a training-like torch process (an MLP's forward, backward and step) and a NumPy
  process (sorting and FFTs).

The load processes are started anew for each case and stopped when its measurement is over;
each also ends by itself after ``--phase-seconds`` or when this script is gone. The table gives each median, the ratio to gudhi's time (higher is better) and the ratio
to torchtopo's quiet time (1 is ideal).

    python benchmarks/bench_latency.py                # about a minute on a quiet machine
    python benchmarks/bench_latency.py --quick        # a few seconds: one case, short phases
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse
import subprocess
import sys
import time

import gudhi
import numpy as np
import torch
from common import add_output_arguments, interleaved_medians, output_dir, write_results

from torchtopo import rips_persistence

# Each load process sets up, prints "ready", then runs one step of its loop at a time until its
# deadline (argv[1], seconds from now) or until its parent (argv[2]) is gone.
_LOOP = ("print('ready', flush=True)\nend = time.time() + float(sys.argv[1])\n"
         "while time.time() < end and os.getppid() == int(sys.argv[2]):\n")
LOADS = {
    "torch": [
        "import os, sys, time, torch\na = torch.randn(768, 768)\n" + _LOOP + "    a @ a\n",
    ] * 2,
    "mixed": [
        "import os, sys, time, torch\n"
        "net = torch.nn.Sequential(torch.nn.Linear(512, 1024), torch.nn.ReLU(), torch.nn.Linear(1024, 100))\n"
        "opt = torch.optim.SGD(net.parameters(), lr=1e-3)\nx, y = torch.randn(256, 512), torch.randint(0, 100, (256,))\n"
        + _LOOP + "    opt.zero_grad()\n    torch.nn.functional.cross_entropy(net(x), y).backward()\n    opt.step()\n",
        "import os, sys, time\nimport numpy as np\nrng = np.random.default_rng(0)\n"
        + _LOOP + "    np.sort(rng.random(1 << 18))\n    np.fft.rfft(rng.random(1 << 18))\n",
    ],
}


def start_load(name: str, seconds: float) -> list[subprocess.Popen]:
    """Start the processes of load ``name`` (none for ``quiet``) and wait until each is running;
    each exits after ``seconds``, or when this process is gone."""
    processes = [subprocess.Popen([sys.executable, "-c", code, str(seconds), str(os.getpid())],
                                  stdout=subprocess.PIPE, text=True) for code in LOADS.get(name, [])]
    for process in processes:
        process.stdout.readline()
    time.sleep(0.2 if processes else 0.0)
    return processes


def stop_load(processes: list[subprocess.Popen]) -> None:
    for process in processes:
        process.terminate()
    for process in processes:
        process.wait()


def gudhi_calls(clouds: np.ndarray, max_dim: int) -> None:
    for cloud in clouds:
        gudhi.RipsComplex(points=cloud).create_simplex_tree(max_dimension=max_dim + 1).persistence()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--batch", type=int, nargs="+", default=[1, 4], help="clouds per call")
    parser.add_argument("--m", type=int, nargs="+", default=[64, 128], help="points per cloud")
    parser.add_argument("--loads", nargs="+", choices=["quiet", "torch", "mixed"], default=["quiet", "torch", "mixed"],
                        help="loads to measure under (quiet first: the others are compared with it)")
    parser.add_argument("--repeats", type=int, default=21, help="interleaved repeats per case and load")
    parser.add_argument("--phase-seconds", type=float, default=60.0,
                        help="longest life of a load's processes (started anew for each case and load, "
                             "stopped when its measurement ends)")
    parser.add_argument("--threads", type=int, default=2, help="torch's intra-op threads in this process")
    parser.add_argument("--quick", action="store_true",
                        help="one case (B = 1, m = 64, H0+H1), 5 repeats, phases of at most 10 s")
    add_output_arguments(parser)
    args = parser.parse_args()
    if args.quick:
        args.batch, args.m, args.repeats, args.phase_seconds = [1], [64], 5, 10.0
    torch.set_num_threads(args.threads)

    cases = [(b, m, d, max_dim) for max_dim, d in ((1, 512), (0, 64)) for b in args.batch for m in args.m]
    if args.quick:
        cases = cases[:1]
    rng = np.random.default_rng(0)
    data = {case: rng.normal(size=case[:3]).astype(np.float32) for case in cases}
    loads = sorted(args.loads, key=["quiet", "torch", "mixed"].index)
    results: dict[str, dict] = {load: {} for load in loads}
    load_average: dict[str, list[float]] = {load: [] for load in loads}
    for case in cases:
        b, m, d, max_dim = case
        points = torch.from_numpy(data[case]).requires_grad_()
        clouds = data[case].astype(np.float64)
        calls = {"torchtopo": lambda: rips_persistence(points, max_dim), "gudhi": lambda: gudhi_calls(clouds, max_dim)}
        for load in loads:
            processes = start_load(load, args.phase_seconds)
            try:
                # Each call follows the other's directly, as a call in a training loop follows other
                # work: gudhi leaves no thread running, and a pause before each call (the wait of the
                # throughput scripts) would time a colder call (a quarter to twice as long here).
                seconds = interleaved_medians(calls, args.repeats, warmup=2, wait_for_threads=False)
                load_average[load].append(os.getloadavg()[0])
            finally:
                stop_load(processes)
            results[load][str(case)] = seconds
            print(f"{load}: B={b} m={m} d={d} H0{'+H1' if max_dim else ''}: torchtopo "
                  f"{1e3 * seconds['torchtopo']:.3f} ms, gudhi {1e3 * seconds['gudhi']:.3f} ms", flush=True)

    header = "| clouds | m | d | homology | " + " | ".join(
        f"{load}: torchtopo ms | gudhi ms | vs gudhi" + (" | vs quiet" if load != "quiet" and "quiet" in loads else "")
        for load in loads) + " |"
    lines = [header, "|" + "---|" * (header.count("|") - 1)]
    for case in cases:
        b, m, d, max_dim = case
        cells = []
        for load in loads:
            seconds = results[load][str(case)]
            cells += [f"{1e3 * seconds['torchtopo']:.3f}", f"{1e3 * seconds['gudhi']:.3f}",
                      f"{seconds['gudhi'] / seconds['torchtopo']:.1f}x"]
            if load != "quiet" and "quiet" in loads:
                cells.append(f"{seconds['torchtopo'] / results['quiet'][str(case)]['torchtopo']:.2f}x")
        lines.append(f"| {b} | {m} | {d} | H0{'+H1' if max_dim else ''} | " + " | ".join(cells) + " |")
    meta = {
        "unit": f"ms per call, median of {args.repeats} interleaved repeats",
        "load": ", ".join(f"{load}: load average {min(values):.1f} to {max(values):.1f}"
                          for load, values in load_average.items()),
        "loads": {load: LOADS.get(load, []) for load in loads},
    }
    text = (f"Latency of one rips_persistence call (float32 points requiring a gradient) against gudhi's calls on "
            f"the same clouds (float64); {meta['unit']}; {meta['load']} (at the end of each measurement).\n\n"
            + "\n".join(lines))
    write_results(output_dir(args) / "bench_latency.json", {"meta": meta, "results": results}, text,
                  threads=args.threads)


if __name__ == "__main__":
    main()
