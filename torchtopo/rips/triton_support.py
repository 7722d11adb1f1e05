"""Whether the optional Triton GPU kernels can run here."""

from __future__ import annotations

import importlib.util
import os
from functools import lru_cache

__all__ = ["triton_available", "MAX_POINTS"]

#: Most points per cloud of the Triton kernels (H0 and H1): one cloud's Prim vector must fit in a
#: program's registers. Larger clouds take the CPU path.
MAX_POINTS = 2048


@lru_cache(maxsize=None)
def triton_available() -> bool:
    """True when Triton is importable and not disabled by ``TORCHTOPO_DISABLE_TRITON=1``."""
    if os.environ.get("TORCHTOPO_DISABLE_TRITON") == "1":
        return False
    return importlib.util.find_spec("triton") is not None
