"""`import tracy` on the sim: signposts for the simulated device profiler."""

import logging

from ttnn_sim import profiler
from ttnn_sim.clock import host_time_ns

_log = logging.getLogger("tracy")


def signpost(header, message=None):
    """Mark a point in the profile (a `signpost` row in the ops report) and log it as tracy does."""
    if profiler.enabled():
        profiler.record_signpost(header, message, host_time_ns())
    _log.info(f"{header} : {message} " if message else f"{header}")
