"""The machine-wide device lock: one device step at a time per (backend, device set).

A ``filelock`` lock (flock: the OS releases it when the holder dies, even after ``kill -9``), with the
holder recorded beside it as JSON (pid, host, task, since) so a waiter can say who it waits for, and
one line per acquire/release appended to a lock log so tests (and people) can check that holders
never overlapped.

Paths: ``PIPELINE_DEVICE_LOCK`` overrides the lock file; the default lives in the system temp dir,
keyed by backend and device set. ``PIPELINE_LOCK_LOG`` overrides the log (default: ``<lock>.log``).
"""

import json
import os
import re
import socket
import sys
import tempfile
import time
from pathlib import Path

import filelock

from pipeline import artifacts

WAIT_REPORT_SECONDS = 30.0  # how often a waiter repeats who holds the lock


def default_lock_path(backend: str, device_set: str) -> Path:
    configured = os.environ.get("PIPELINE_DEVICE_LOCK")
    if configured:
        return Path(configured)
    key = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{backend}-{device_set}")
    return Path(tempfile.gettempdir()) / f"tt-fused-op-pipeline-device-{key}.lock"


class DeviceLock:
    """Context manager: ``with DeviceLock(path, task="unit_test:router"): ...``."""

    def __init__(self, path: Path, task: str, log_path: Path | None = None, say=None):
        self.path = Path(path)
        self.task = task
        self.holder_path = self.path.with_name(self.path.name + ".holder.json")
        self.log_path = Path(
            log_path or os.environ.get("PIPELINE_LOCK_LOG") or self.path.with_name(self.path.name + ".log")
        )
        self.say = say or _say
        self._lock = filelock.FileLock(str(self.path), mode=0o666, thread_local=False)

    def __enter__(self):
        self.acquire()
        return self

    def __exit__(self, *exc):
        self.release()

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._lock.acquire(timeout=0)
        except filelock.Timeout:
            self._wait()
        holder = {"pid": os.getpid(), "host": socket.gethostname(), "task": self.task, "since": _now()}
        artifacts.write_json(self.holder_path, holder)
        self._log("acquire")

    def release(self) -> None:
        if not self._lock.is_locked:
            return
        self._log("release")
        self.holder_path.unlink(missing_ok=True)
        self._lock.release()

    def holder(self) -> dict | None:
        try:
            return json.loads(self.holder_path.read_text())
        except (OSError, ValueError):
            return None

    def _wait(self) -> None:
        last_told = None
        while True:
            holder = self.holder()
            if holder != last_told:
                self.say(f"waiting for the device lock {self.path}: {describe(holder)}")
                last_told = holder
            try:
                self._lock.acquire(timeout=WAIT_REPORT_SECONDS)
                self.say(f"got the device lock {self.path}")
                return
            except filelock.Timeout:
                last_told = None  # repeat who holds it, so a long wait keeps saying why

    def _log(self, event: str) -> None:
        line = json.dumps({"event": event, "pid": os.getpid(), "task": self.task, "time": time.time()})
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "a") as log:  # one short append per event: lines never interleave
            log.write(line + "\n")


def describe(holder: dict | None) -> str:
    if not holder:
        return "held by another process (no holder record)"
    alive = (
        "" if _pid_alive(holder.get("pid"), holder.get("host")) else " (process gone; the lock frees itself)"
    )
    return f"held by {holder.get('task')} (pid {holder.get('pid')} on {holder.get('host')}, since {holder.get('since')}){alive}"


def read_lock_log(path: Path) -> list[dict]:
    try:
        return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
    except OSError:
        return []


def _pid_alive(pid, host) -> bool:
    if host != socket.gethostname() or not isinstance(pid, int):
        return True  # cannot tell for another host
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
