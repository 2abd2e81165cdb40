"""The guard: a small process between the runner and a device child, so the child can't outlive the lock.

Run as a script by pipeline/runner.py (stdlib only, ``python -I``): ``guard.py STATUS_FD -- ARGV...``.

Why a guard rather than only ``PR_SET_PDEATHSIG`` or only an inherited lock descriptor:
- PDEATHSIG is per process and cleared on fork: it would kill tracy, but not the test that tracy starts
  in a session of its own, which is the process that drives the device.
- a lock descriptor inherited by the child is closed by tracy before it starts the test
  (``close_fds``), so the test would run on with the lock already free.
- the guard is a child subreaper (``PR_SET_CHILD_SUBREAPER``): every descendant whose parent dies is
  re-parented to it, whatever session or group it moved to, so the guard can always find and kill the
  whole tree. It holds the lock descriptor (passed by the runner), so the lock is free only once the
  tree is dead. It runs in its own session, out of reach of the terminal's SIGINT/SIGHUP and of a kill
  of doit's process group, and the child gets PDEATHSIG=SIGKILL in case the guard itself is killed.

Protocol: the guard's stdin is a pipe from the runner. EOF on it (the runner asked, or the runner died,
by any signal including ``kill -9``) means: kill the tree (SIGTERM to every process group in it, so
tracy can stop its own session, then SIGKILL after a grace period), reap it, exit. After the child
exits on its own, anything it left running is killed too. On STATUS_FD the guard writes JSON lines:
``{"pid": N}`` once the child runs, then ``{"returncode": N, "child_s": wall seconds}`` (negative: killed
by that signal) or
``{"error": "cannot start ...: reason"}``.
"""

import ctypes
import json
import os
import select
import signal
import subprocess
import sys
import time

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36
KILL_GRACE_SECONDS = 3.0
_POLL_SECONDS = 0.1

_libc = ctypes.CDLL(None, use_errno=True)


def main(argv: list[str]) -> int:
    return guard(int(argv[0]), argv[argv.index("--") + 1 :], start_process)


def start_process(command: list[str], guard_pid: int, env: dict | None = None) -> int:
    """The plain start: a new process of `command` in a session of its own; its pid."""
    child = subprocess.Popen(
        command,
        env=env,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
        preexec_fn=lambda: _die_with(guard_pid),
    )
    _started.append(child)  # a dropped Popen would be waited for by subprocess, stealing its exit status
    return child.pid


_started: list[subprocess.Popen] = []


def guard(status_fd: int, command: list[str], start) -> int:
    """Guard `command`, started by `start(command, guard_pid) -> pid` (pipeline/warm_server.py forks)."""
    for sig in (signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)  # only the runner (or its death) stops the guard
    signal.signal(signal.SIGTERM, lambda *_: _stop_requested.append(True))
    _libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    guard_pid = os.getpid()
    started = time.monotonic()
    try:
        child_pid = start(command, guard_pid)
    except OSError as error:
        _report(status_fd, {"error": f"cannot start {command[0]}: {error.strerror or error}"})
        return 0
    _report(status_fd, {"pid": child_pid})
    returncode = _watch(child_pid)
    wall = time.monotonic() - started
    kill_tree(guard_pid)  # whatever the child left behind, or all of it after a stop
    _report(status_fd, {"returncode": returncode, "child_s": round(wall, 3)})
    return 0


_stop_requested: list[bool] = []


def _die_with(guard_pid: int) -> None:
    """In the child, before exec (or before a warm child runs its command): SIGKILL when the guard dies
    (and already now if it is gone)."""
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != guard_pid:
        os._exit(1)


def _watch(child_pid: int) -> int | None:
    """Wait for the child or a stop (EOF on stdin / SIGTERM); the child's exit code (None: unknown)."""
    control = sys.stdin.fileno()
    while True:
        _reap_all()
        if child_pid in _exited:
            return _exited[child_pid]
        if _stop_requested:
            break
        ready, _, _ = select.select([control], [], [], _POLL_SECONDS)
        if ready and not os.read(control, 4096):
            break
    kill_tree(os.getpid())
    if child_pid not in _exited:
        try:
            _exited[child_pid] = os.waitstatus_to_exitcode(os.waitpid(child_pid, 0)[1])
        except ChildProcessError:
            return None
    return _exited[child_pid]


_exited: dict[int, int] = {}  # exit codes of reaped processes (negative: the signal that killed them)


def _reap_all() -> None:
    """Reap every exited descendant: orphans of the tree are re-parented to the guard."""
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        _exited[pid] = os.waitstatus_to_exitcode(status)


def kill_tree(root: int) -> None:
    """SIGTERM every process group of `root`'s descendants, then SIGKILL what is left after the grace."""
    if not descendants(root):
        return
    _signal_groups(root, signal.SIGTERM)
    deadline = time.monotonic() + KILL_GRACE_SECONDS
    while time.monotonic() < deadline and _live(descendants(root)):
        _reap_all()
        time.sleep(_POLL_SECONDS)
    _signal_groups(root, signal.SIGKILL)
    deadline = time.monotonic() + KILL_GRACE_SECONDS  # a process stuck in the kernel (D state) can't die
    while time.monotonic() < deadline and _live(descendants(root)):
        _reap_all()
        time.sleep(_POLL_SECONDS / 10)
    _reap_all()


def _signal_groups(root: int, sig: int) -> None:
    own = os.getpgrp()
    for pid in descendants(root):
        try:
            group = os.getpgid(pid)
            if group != own:
                os.killpg(group, sig)
            os.kill(pid, sig)  # a descendant in the guard's own group
        except (ProcessLookupError, PermissionError):
            pass


def descendants(pid: int) -> list[int]:
    """Every descendant of `pid` still in the process table (Linux /proc)."""
    parents: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as stat_file:
                fields = stat_file.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents.setdefault(int(fields[1]), []).append(int(name))
    found, stack = [], [pid]
    while stack:
        for kid in parents.get(stack.pop(), []):
            found.append(kid)
            stack.append(kid)
    return found


def _live(pids: list[int]) -> list[int]:
    """`pids` minus zombies (a zombie holds no device; reaping it is its parent's job)."""
    alive = []
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as stat_file:
                if stat_file.read().rsplit(")", 1)[1].split()[0] != "Z":
                    alive.append(pid)
        except OSError:
            pass
    return alive


def _report(fd: int, record: dict) -> None:
    os.write(fd, (json.dumps(record) + "\n").encode())


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
