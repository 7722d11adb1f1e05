"""Whether the optional Triton GPU kernels can run here."""

from __future__ import annotations

import importlib.util
import os
from functools import lru_cache

__all__ = ["triton_available"]


@lru_cache(maxsize=None)
def triton_available() -> bool:
    """True when Triton is importable and not disabled by ``TORCHTOPO_DISABLE_TRITON=1``."""
    if os.environ.get("TORCHTOPO_DISABLE_TRITON") == "1":
        return False
    return importlib.util.find_spec("triton") is not None
