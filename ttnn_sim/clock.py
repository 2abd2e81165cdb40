"""The simulated host clock.

Everything the host does on the sim (op dispatch, tensor transfers, waiting for the device) advances this
clock by a figure from the cost model, so e2e timings are deterministic: the same run gives the same numbers.
"""

_host_ns = 0


def host_time_ns() -> int:
    return _host_ns


def advance_host(ns: int) -> int:
    """Move the host clock forward by `ns` and return the new time."""
    global _host_ns
    _host_ns += max(0, int(ns))
    return _host_ns


def wait_host_until(ns: int) -> int:
    """The host blocks until time `ns` (never goes backwards)."""
    global _host_ns
    _host_ns = max(_host_ns, int(ns))
    return _host_ns
