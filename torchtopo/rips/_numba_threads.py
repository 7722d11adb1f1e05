"""How the compiled CPU kernels share the machine with torch.

- numba's OpenMP threading layer is the libgomp torch uses, and launching a parallel kernel
  there resets the calling thread's OpenMP thread count: ``torch.get_num_threads()`` would jump
  to every core, ignoring ``OMP_NUM_THREADS`` and ``torch.set_num_threads`` (training after a
  Rips call ran 10-30x slower on a busy machine). The count is restored after each launch.
- numba's fallback ``workqueue`` layer aborts the process when two Python threads launch
  parallel kernels at once, so launches are serialised by a lock.
- The kernels use as many threads as torch is allowed to.
"""

from __future__ import annotations

import threading
from contextlib import contextmanager
from typing import Iterator

import torch

__all__ = ["torch_thread_budget"]

_LAUNCH = threading.Lock()


@contextmanager
def torch_thread_budget() -> Iterator[None]:
    """Launch numba parallel kernels with ``torch.get_num_threads()`` threads, one launch at a time,
    leaving torch's thread setting as it was."""
    import numba

    with _LAUNCH:
        torch_threads = torch.get_num_threads()
        previous = numba.get_num_threads()
        numba.set_num_threads(max(1, min(torch_threads, numba.config.NUMBA_NUM_THREADS)))
        try:
            yield
        finally:
            numba.set_num_threads(previous)
            torch.set_num_threads(torch_threads)
