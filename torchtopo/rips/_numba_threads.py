"""How the compiled CPU kernels share the machine with torch.

numba's default OpenMP threading layer is the same libgomp torch uses, and launching a parallel
kernel on it resets the process-wide OpenMP thread count (``torch.get_num_threads()`` would jump
to every core, ignoring ``OMP_NUM_THREADS`` and ``torch.set_num_threads``). The kernels therefore
run on numba's own ``workqueue`` layer, unless the user chose a layer with
``NUMBA_THREADING_LAYER``, and use as many threads as torch is allowed to.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Iterator

import torch

__all__ = ["torch_thread_budget"]


@contextmanager
def torch_thread_budget() -> Iterator[None]:
    """Run numba parallel kernels with ``torch.get_num_threads()`` threads, leaving torch's setting as it was."""
    import numba

    if "NUMBA_THREADING_LAYER" not in os.environ:
        numba.config.THREADING_LAYER = "workqueue"
    torch_threads = torch.get_num_threads()
    previous = numba.get_num_threads()
    numba.set_num_threads(max(1, min(torch_threads, numba.config.NUMBA_NUM_THREADS)))
    try:
        yield
    finally:
        numba.set_num_threads(previous)
        torch.set_num_threads(torch_threads)
