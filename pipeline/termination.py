"""SIGTERM and SIGHUP unwind the doit process the way Ctrl-C does, and every interrupt ends in one line.

A dropped ssh session sends SIGHUP, a CI runner that gives up sends SIGTERM; either raises `Terminated`
(a KeyboardInterrupt) in the main thread, so every `finally` runs: the runner stops the child's tree
and releases the device lock, and doit saves its database. doit then lets the KeyboardInterrupt escape
with its traceback; the progress reporter (which doit calls from that same `finally`) says instead
`closing_line` and exits with `exit_code` (130 for Ctrl-C, 128 + the signal's number otherwise).
"""

import shlex
import signal


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP, raised like Ctrl-C so every `finally` (child stop, lock release, doit's db) runs."""

    def __init__(self, signum: int):
        super().__init__(f"signal {signal.Signals(signum).name}")
        self.signum = signum


def install_termination_handler() -> None:
    """Turn SIGTERM and SIGHUP (a dropped ssh session) into `Terminated` in this (main-thread) process."""

    def handler(signum, frame):
        raise Terminated(signum)

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGHUP, handler)


def exit_code(interrupt: KeyboardInterrupt) -> int:
    """The shell's convention: 128 + the signal's number (Ctrl-C: SIGINT, 130)."""
    return 128 + getattr(interrupt, "signum", signal.SIGINT)


def closing_line(interrupt: KeyboardInterrupt, tasks: list[str], argv: list[str]) -> str:
    """`interrupted during <task>: child stopped, lock released; rerun `doit run ...` to continue`."""
    how = "interrupted" if not isinstance(interrupt, Terminated) else f"stopped by {interrupt.args[0]}"
    during = f"during {', '.join(tasks)}" if tasks else "between steps"
    words = argv[1:] if argv[:1] == ["run"] else list(argv)
    return (
        f"{how} {during}: child stopped, lock released; "
        f"rerun `{shlex.join(['doit', 'run', *words])}` to continue"
    )
