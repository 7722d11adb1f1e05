"""How the compiled CPU kernels run in parallel: ranges of clouds on Python threads.

The kernels are serial numba functions that release the GIL (``nogil=True``); a batch is split
into ranges of clouds run by the calling thread and a shared thread pool, as many threads at once
as ``torch.get_num_threads()`` allows. numba's own parallel layers are not used: its OpenMP layer resets torch's OpenMP thread
count (training after a Rips call ran 10-30x slower), its spinning workers fought torch's for
the cores (a 20x slowdown per call on 2 cores), and its workqueue layer aborts when two Python
threads launch at once. Idle pool threads sleep; they never spin.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from queue import Empty, SimpleQueue
from typing import Callable

import torch

__all__ = ["run_on_threads", "thread_count"]


@lru_cache(maxsize=None)
def _pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=os.cpu_count() or 1, thread_name_prefix="torchtopo")


# Below this much work (one or two milliseconds of one core; see ``work``) a call runs in the calling
# thread: handing it to the pool costs more than it saves, and on a loaded machine the pool's
# threads may wait for a core for milliseconds.
SERIAL_WORK = 1 << 23


def thread_count(batch: int, work: float) -> int:
    """The threads :func:`run_on_threads` runs ``batch`` clouds of ``work`` on: 1 under
    ``SERIAL_WORK``, else as many as ``torch.get_num_threads()`` allows, at most one a cloud."""
    return max(1, min(torch.get_num_threads(), batch)) if work >= SERIAL_WORK else 1


def run_on_threads(kernel: Callable[[int, int], None], batch: int, *, work: float = float("inf")) -> None:
    """Call ``kernel(start, stop)`` on ranges covering ``0 .. batch - 1``, in parallel.

    Ranges are smaller than an even split (four per thread), so that clouds of unequal cost
    still balance; with one thread, or ``work`` (an estimate of the whole call's elementary
    operations) under ``SERIAL_WORK``, the kernel runs in the calling thread. Otherwise the
    calling thread takes ranges too, beside ``threads - 1`` pool threads: it starts at once,
    while a pool thread asleep on an idle core may take a while to wake (after a pause, a
    two-thread H0 call on 64 clouds measured as slow as one thread when the caller only waited).
    """
    threads = thread_count(batch, work)
    if threads == 1:
        kernel(0, batch)
        return
    step = max(1, -(-batch // (4 * threads)))
    ranges = SimpleQueue()
    for start in range(0, batch, step):
        ranges.put((start, min(start + step, batch)))

    def take_ranges() -> None:
        while True:
            try:
                start, stop = ranges.get_nowait()
            except Empty:
                return
            kernel(start, stop)

    helpers = [_pool().submit(take_ranges) for _ in range(threads - 1)]
    try:
        take_ranges()
    finally:
        for helper in helpers:
            helper.result()
