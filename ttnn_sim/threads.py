"""The simulator's own torch work runs on one thread (TTNN_SIM_TORCH_THREADS overrides).

A simulated op is many small torch calls, one per chip. Spread over two threads each call costs about what
it saves, and when other processes hold the cores torch's idle OpenMP threads spin waiting for the next call:
on a loaded 2-core machine a 32-chip decode case ran 6x slower with torch's default threads than with one.
Only the simulator's calls are limited; the caller's own torch work between them keeps the thread count it
set. Results do not depend on the count (each op's per-chip calls are the same either way).
"""

import functools
import os

import torch

ENV = "TTNN_SIM_TORCH_THREADS"


def wanted() -> int:
    value = os.environ.get(ENV, "1")
    if not value.isdigit() or int(value) < 1:
        raise RuntimeError(f"{ENV} must be a positive number of threads, got {value!r}")
    return int(value)


def on_sim_threads(fn):
    """Run fn with torch limited to the simulator's thread count, restoring the caller's count afterwards."""

    @functools.wraps(fn)
    def limited(*args, **kwargs):
        before, count = torch.get_num_threads(), wanted()
        if before == count:
            return fn(*args, **kwargs)
        torch.set_num_threads(count)
        try:
            return fn(*args, **kwargs)
        finally:
            torch.set_num_threads(before)

    return limited
