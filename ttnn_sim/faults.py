"""Fault injection for the pipeline's own tests: `TTNN_SIM_FAULT=<kind>@<n>`.

Acts when the n-th device op of the process (1-based) is launched:
- `hang`: stop producing output and sleep forever (a silent hang; the runner's watchdog must kill it);
- `crash`: `os.abort()` (SIGABRT, like a segfault in the driver);
- `device_error`: raise RuntimeError with a TT_FATAL text, as a device-side assertion does;
- `profiler_overflow`: from then on the profiler keeps only n-1 ops per device, so rows are dropped and
  the overflow warning is printed, as when the real profiler's DRAM buffers fill up.
"""

import os
import sys
import time

from ttnn_sim import profiler

KINDS = ("hang", "crash", "device_error", "profiler_overflow")
_launched = 0


def parse(value: str | None):
    if not value:
        return None
    kind, _, count = value.partition("@")
    if kind not in KINDS or not count.isdigit() or int(count) < 1:
        raise ValueError(f"TTNN_SIM_FAULT={value!r}: expected <kind>@<n> with kind in {KINDS} and n >= 1")
    return kind, int(count)


def on_device_op(op_name: str) -> None:
    """Called by dispatch before each device op."""
    global _launched
    _launched += 1
    fault = parse(os.environ.get("TTNN_SIM_FAULT"))
    if fault is None or _launched != fault[1]:
        return
    kind = fault[0]
    if kind == "hang":
        sys.stdout.flush()
        sys.stderr.flush()
        while True:
            time.sleep(3600)
    if kind == "crash":
        os.abort()
    if kind == "device_error":
        raise RuntimeError(
            "TT_FATAL @ ttnn_sim/faults.py: injected device error\ninfo:\n"
            f"Device error while running {op_name} "
            f"(TTNN_SIM_FAULT={os.environ['TTNN_SIM_FAULT']})"
        )
    profiler.set_support_count_override(fault[1] - 1)
