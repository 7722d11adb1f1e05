"""Shared test configuration: a bounded, reproducible hypothesis profile."""

import os
import sys

import torch

# Without a GPU the Triton kernels run under Triton's interpreter, on the CPU; this must be set
# before any kernel is defined (kernel modules are imported lazily, by the tests below).
if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

from hypothesis import HealthCheck, settings

# Test modules import shared helpers (tests/helpers.py) by name under --import-mode=importlib.
sys.path.insert(0, os.path.dirname(__file__))

# Stable and bounded: CI runs on 2 cores, so every property test gets a fixed budget, no deadline
# (timings are noisy there) and derandomized inputs (a failure reproduces on every run).
settings.register_profile(
    "ci",
    deadline=None,
    max_examples=40,
    derandomize=True,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile("dev", deadline=None, max_examples=200)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
