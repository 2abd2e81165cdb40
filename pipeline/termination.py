"""SIGTERM and SIGHUP unwind the doit process the way Ctrl-C does.

A dropped ssh session sends SIGHUP, a CI runner that gives up sends SIGTERM; either raises `Terminated`
(a KeyboardInterrupt) in the main thread, so every `finally` runs: the runner stops the child's tree
and releases the device lock, and doit saves its database.
"""

import signal


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP, raised like Ctrl-C so every `finally` (child stop, lock release, doit's db) runs."""


def install_termination_handler() -> None:
    """Turn SIGTERM and SIGHUP (a dropped ssh session) into `Terminated` in this (main-thread) process."""

    def handler(signum, frame):
        raise Terminated(f"signal {signal.Signals(signum).name}")

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGHUP, handler)
