"""The supervised runner: the only way a device step starts a process (ARCHITECTURE.md).

1. take the machine-wide device lock (saying who holds it while waiting);
2. start the child in its own process group; tee its output to log.txt (command line and environment
   key at the top, every line timestamped) and to the terminal with the step name in front;
3. watchdog: a wall timeout and a no-output timeout kill the child's group (and any descendant that
   started its own session, as tracy does);
4. after a hang or a crash: the backend's reset, then its health check, still holding the lock;
5. classify the attempt: passed / failed / infrastructure failure; retry an infrastructure failure once;
6. release the lock. SIGINT/SIGTERM (a KeyboardInterrupt here) kill the child group and release it too.

Timeouts: ``PIPELINE_WALL_TIMEOUT`` (default 900 s) and ``PIPELINE_SILENCE_TIMEOUT`` (default 300 s),
the guide's 15 minutes and 5 minutes. Whether a finished run is a profiler failure is the perf
steps' call: they know which report they expected.
"""

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from pipeline import artifacts
from pipeline.backends import Backend
from pipeline.lock import DeviceLock

DEFAULT_WALL_TIMEOUT = 15 * 60.0
DEFAULT_SILENCE_TIMEOUT = 5 * 60.0
KILL_GRACE_SECONDS = 3.0  # SIGTERM first so tracy can stop its own session, then SIGKILL
HOUSEKEEPING_TIMEOUT = 300.0  # reset and health commands
MAX_ATTEMPTS = 2  # "retry an infrastructure failure once"
_POLL_SECONDS = 0.1

# Output that means the process died rather than a test failing (pytest enables faulthandler).
CRASH_MARKERS = re.compile(
    r"Fatal Python error: |Segmentation fault|core dumped|terminate called after throwing"
)
# pytest: 0 passed, 1 tests failed, 2 interrupted, 3 internal error, 4 usage error, 5 nothing collected.
PYTEST_EXIT_MEANING = {1: "tests failed", 2: "interrupted", 3: "pytest internal error", 4: "usage error",
                       5: "no tests collected"}  # fmt: skip


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C so every `finally` (child kill, lock release, doit's db) runs."""


def install_termination_handler() -> None:
    """Turn SIGTERM into `Terminated` in this (main-thread) process."""

    def handler(signum, frame):
        raise Terminated(f"signal {signum}")

    signal.signal(signal.SIGTERM, handler)


@dataclass(frozen=True)
class Timeouts:
    wall: float = DEFAULT_WALL_TIMEOUT
    silence: float = DEFAULT_SILENCE_TIMEOUT

    @classmethod
    def from_env(cls) -> "Timeouts":
        return cls(
            wall=float(os.environ.get("PIPELINE_WALL_TIMEOUT") or DEFAULT_WALL_TIMEOUT),
            silence=float(os.environ.get("PIPELINE_SILENCE_TIMEOUT") or DEFAULT_SILENCE_TIMEOUT),
        )


@dataclass
class Request:
    """One supervised command of a step."""

    task: str  # the doit task name, printed in front of every terminal line
    argv: list[str]
    cwd: Path
    env: dict[str, str]
    log_path: Path
    environment_key: dict = field(default_factory=dict)


@dataclass
class Attempt:
    number: int
    returncode: int | None
    verdict: str  # artifacts.PASSED / FAILED / INFRA_FAILURE
    reason: str
    duration_s: float
    housekeeping: list[str] = field(default_factory=list)  # reset / health lines


@dataclass
class Outcome:
    verdict: str
    message: str
    output: str  # the last attempt's raw output (no timestamps), for the parsers
    attempts: list[Attempt]
    log_path: Path

    @property
    def returncode(self) -> int | None:
        return self.attempts[-1].returncode if self.attempts else None

    def record(self) -> dict:
        """The runner's part of result.json's `run`."""
        return {
            "attempts": [vars(a) for a in self.attempts],
            "retried": len(self.attempts) > 1,
            "resets": sum(1 for a in self.attempts for h in a.housekeeping if h.startswith("reset")),
        }


def run(request: Request, backend: Backend, timeouts: Timeouts | None = None, lock_path: Path | None = None,
        out=None) -> Outcome:  # fmt: skip
    """Run `request` under the device lock with watchdog, reset, classification and one infra retry."""
    timeouts = timeouts or Timeouts.from_env()
    out = out or sys.stdout
    log = _Log(request, out)
    attempts: list[Attempt] = []
    output = ""
    try:
        log.header(request, backend, timeouts)
        with DeviceLock(lock_path or backend.lock_path, task=request.task, say=log.say):
            for number in range(1, MAX_ATTEMPTS + 1):
                if number > 1:
                    log.say(
                        f"=== attempt {number} of {MAX_ATTEMPTS} (retrying an infrastructure failure) ==="
                    )
                attempt, output = _attempt(number, request, timeouts, log)
                attempts.append(attempt)
                if attempt.verdict != artifacts.INFRA_FAILURE:
                    break
                healthy = _recover(backend, request, attempt, log)
                if not healthy:
                    break
            log.say(f"=== {_final_verdict(attempts)}: {attempts[-1].reason} ===")
    finally:
        log.close()
    verdict = _final_verdict(attempts)
    message = attempts[-1].reason
    if verdict == artifacts.INFRA_FAILURE:
        message = f"infrastructure failure after {len(attempts)} attempt(s): " + "; ".join(
            a.reason for a in attempts
        )
    return Outcome(verdict, message, output, attempts, request.log_path)


def _final_verdict(attempts: list[Attempt]) -> str:
    return attempts[-1].verdict


def _attempt(number: int, request: Request, timeouts: Timeouts, log: "_Log") -> tuple[Attempt, str]:
    started = time.monotonic()
    try:
        child = subprocess.Popen(
            request.argv, cwd=request.cwd, env=request.env, stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    except OSError as error:  # a wrong interpreter path is a set-up problem, not a machine problem
        reason = f"cannot start {request.argv[0]}: {error.strerror or error}"
        log.say(reason)
        return Attempt(number, None, artifacts.FAILED, reason, 0.0), ""
    pump = _Pump(child.stdout, log)
    pump.start()
    killed_because = None
    try:
        while child.poll() is None:
            now = time.monotonic()
            if now - started > timeouts.wall:
                killed_because = f"wall timeout: still running after {timeouts.wall:g} s"
            elif now - pump.last_output > timeouts.silence:
                killed_because = f"hang: no output for {timeouts.silence:g} s"
            if killed_because:
                log.say(f"watchdog: {killed_because}; killing process group {child.pid}")
                kill_tree(child)
                break
            time.sleep(_POLL_SECONDS)
    finally:
        if child.poll() is None:  # interrupted (Ctrl-C / SIGTERM) or an error in the loop
            log.say(f"interrupted: killing process group {child.pid}")
            kill_tree(child)
        pump.join(timeout=10)
    returncode = child.wait()
    output = pump.text()
    verdict, reason = classify(returncode, output, killed_because)
    return Attempt(number, returncode, verdict, reason, round(time.monotonic() - started, 3)), output


def classify(returncode: int, output: str, killed_because: str | None = None) -> tuple[str, str]:
    """(verdict, reason) of one finished attempt."""
    if killed_because:
        return artifacts.INFRA_FAILURE, killed_because
    if returncode < 0:
        return artifacts.INFRA_FAILURE, f"crash: killed by signal {signal.Signals(-returncode).name}"
    crash = CRASH_MARKERS.search(output)
    if returncode != 0 and crash:
        line = output[crash.start() :].splitlines()[0].strip()
        return artifacts.INFRA_FAILURE, f"crash: {line} (exit {returncode})"
    if returncode == 0:
        return artifacts.PASSED, "exit 0"
    meaning = PYTEST_EXIT_MEANING.get(returncode, "failed")
    return artifacts.FAILED, f"exit {returncode} ({meaning})"


def _recover(backend: Backend, request: Request, attempt: Attempt, log: "_Log") -> bool:
    """Reset the device and check its health, still holding the lock; False: do not retry."""
    if not backend.reset_commands:
        line = f"reset: {backend.name} backend has no device to reset (no-op)"
        log.say(line)
        attempt.housekeeping.append(line)
    for command in backend.reset_commands:
        ok, line = _housekeeping("reset", command, request, log)
        attempt.housekeeping.append(line)
        if not ok:
            return False
    if backend.health_command:
        ok, line = _housekeeping("health", backend.health_command, request, log)
        attempt.housekeeping.append(line)
        return ok
    return True


def _housekeeping(kind: str, command, request: Request, log: "_Log") -> tuple[bool, str]:
    log.say(f"{kind}: {shlex.join(command)}")
    try:
        done = subprocess.run(list(command), cwd=request.cwd, env=request.env, stdin=subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=HOUSEKEEPING_TIMEOUT)  # fmt: skip
    except (OSError, subprocess.TimeoutExpired) as error:
        line = f"{kind}: {shlex.join(command)} failed: {error}"
        log.say(line)
        return False, line
    for text in (done.stdout + done.stderr).splitlines():
        log.line(f"{kind}| {text}")
    line = f"{kind}: {shlex.join(command)} exit {done.returncode}"
    log.say(line)
    return done.returncode == 0, line


def kill_tree(child: subprocess.Popen) -> None:
    """SIGTERM the child's group and every descendant's group, then SIGKILL whatever is left."""
    groups = {child.pid} | {_pgid(pid) for pid in descendants(child.pid)}
    groups.discard(None)
    _signal_groups(groups, signal.SIGTERM)
    deadline = time.monotonic() + KILL_GRACE_SECONDS
    while time.monotonic() < deadline and child.poll() is None:
        time.sleep(_POLL_SECONDS)
    groups |= {_pgid(pid) for pid in descendants(child.pid)}
    groups.discard(None)
    _signal_groups(groups, signal.SIGKILL)
    child.wait()


def descendants(pid: int) -> list[int]:
    """Every live descendant of `pid` (Linux /proc; empty elsewhere)."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents.setdefault(int(fields[1]), []).append(int(entry.name))
    found, stack = [], [pid]
    while stack:
        for kid in parents.get(stack.pop(), []):
            found.append(kid)
            stack.append(kid)
    return found


def _pgid(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except ProcessLookupError:
        return None


def _signal_groups(groups, sig) -> None:
    own = os.getpgrp()
    for group in groups:
        if group == own:
            continue  # never our own group
        try:
            os.killpg(group, sig)
        except (ProcessLookupError, PermissionError):
            pass


class _Pump(threading.Thread):
    """Reads the child's output as it comes (partial lines count as output for the watchdog)."""

    def __init__(self, stream, log: "_Log"):
        super().__init__(daemon=True)
        self.stream = stream
        self.log = log
        self.last_output = time.monotonic()
        self._chunks: list[str] = []
        self._pending = ""

    def run(self) -> None:
        fd = self.stream.fileno()
        while True:
            data = os.read(fd, 65536)
            if not data:
                break
            self.last_output = time.monotonic()
            text = self._pending + data.decode("utf-8", errors="replace")
            *lines, self._pending = text.split("\n")
            for line in lines:
                self._emit(line)
        if self._pending:
            self._emit(self._pending)
            self._pending = ""
        self.stream.close()

    def _emit(self, line: str) -> None:
        self._chunks.append(line + "\n")
        self.log.line(line.rstrip("\r"), echo=True)

    def text(self) -> str:
        return "".join(self._chunks)


class _Log:
    """log.txt (timestamped, relative to the start) and the terminal (prefixed with the task name)."""

    def __init__(self, request: Request, out):
        self.out = out
        self.prefix = f"[{request.task}] "
        self.started = time.monotonic()
        request.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.file = open(request.log_path, "w", encoding="utf-8")
        self._mutex = threading.Lock()

    def header(self, request: Request, backend: Backend, timeouts: Timeouts) -> None:
        changed_env = {k: v for k, v in request.env.items() if os.environ.get(k) != v}
        lines = [
            f"# command: {shlex.join(request.argv)}",
            f"# cwd: {request.cwd}",
            f"# backend: {backend.name}",
            f"# environment key: {_json(request.environment_key)}",
            f"# environment set for the child: {_json(changed_env)}",
            f"# timeouts: wall {timeouts.wall:g} s, no output {timeouts.silence:g} s",
            f"# started: {time.strftime('%Y-%m-%d %H:%M:%S')}",
        ]
        for line in lines:
            self.line(line)
        self.say(f"$ {shlex.join(request.argv)}")

    def line(self, text: str, echo: bool = False) -> None:
        stamp = f"[{time.monotonic() - self.started:9.3f}s] "
        with self._mutex:
            if not self.file.closed:
                self.file.write(stamp + text + "\n")
                self.file.flush()
            if echo:
                self.out.write(self.prefix + text + "\n")
                self.out.flush()

    def say(self, text: str) -> None:
        """A line of the runner's own, in both the log and the terminal."""
        self.line(f"pipeline: {text}", echo=True)

    def close(self) -> None:
        with self._mutex:
            self.file.close()


def _json(data) -> str:
    return json.dumps(data, sort_keys=True, default=str)
