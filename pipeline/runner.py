"""The supervised runner: the only way a device step starts a process (ARCHITECTURE.md).

1. take the machine-wide device lock (saying who holds it while waiting);
2. start the child under a guard (pipeline/guard.py) that holds the lock's descriptor and kills the
   child's whole tree when asked or when this process dies by any signal, ``kill -9`` included;
   tee its output to log.txt (command line and environment key at the top, every line timestamped)
   and to the terminal with the step name in front;
3. watchdog: a wall timeout (per test case: pytest's clock restarts it, see pipeline/case_clock.py)
   and a no-output timeout stop the child's tree (any descendant that started its own session too,
   as tracy does);
4. after a hang or a crash: the backend's reset, then its health check, still holding the lock;
5. classify the attempt: passed / failed / infrastructure failure; retry an infrastructure failure once;
6. release the lock. SIGINT/SIGTERM/SIGHUP (a KeyboardInterrupt here) stop the child tree and release
   it too. Reset and health commands run the same supervised way, bounded by the reset timeout.

Timeouts (``Timeouts``): wall (default 900 s, per test case) and no output (default 300 s), the guide's
15 minutes and 5 minutes; a spec's ``[timeouts]`` table and ``PIPELINE_*_TIMEOUT`` override them.
Whether a finished run is a profiler failure is the perf steps' call: they know which report they expected.
"""

import codecs
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from pipeline import artifacts, devices, guard, warm
from pipeline.backends import Backend
from pipeline.lock import DeviceLock, LockError
from pipeline.termination import Terminated, install_termination_handler  # noqa: F401 - re-exported
from pipeline.timeouts import (  # noqa: F401 - re-exported
    DEFAULT_SILENCE_TIMEOUT,
    DEFAULT_WALL_TIMEOUT,
    HOUSEKEEPING_TIMEOUT,
    Timeouts,
)

GUARD_SCRIPT = Path(guard.__file__)
# Stopping takes the guard's SIGTERM grace and SIGKILL grace; past this the guard itself is stuck.
GUARD_STOP_SECONDS = 2 * guard.KILL_GRACE_SECONDS + 5
MAX_ATTEMPTS = 2  # "retry an infrastructure failure once"
_POLL_SECONDS = 0.1

# Output that means the process died rather than a test failing (pytest enables faulthandler).
CRASH_MARKERS = re.compile(
    r"Fatal Python error: |Segmentation fault|core dumped|terminate called after throwing"
)
# pytest: 0 passed, 1 tests failed, 2 interrupted, 3 internal error, 4 usage error, 5 nothing collected.
PYTEST_EXIT_MEANING = {
    1: "tests failed",
    2: "interrupted",
    3: "pytest internal error",
    4: "usage error",
    5: "no tests collected",
}
# `python -m tracy`: 2 bad arguments (argparse), 3 interrupted (SIGINT/SIGTERM), 4 the command failed
# (with --check-exit-code; the test's own exit code is only in the log, and no report is written).
TRACY_EXIT_MEANING = {2: "tracy usage error", 3: "tracy interrupted", 4: "test failed under tracy"}


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


def run(
    request: Request,
    backend: Backend,
    timeouts: Timeouts | None = None,
    lock_path: Path | None = None,
    out=None,
) -> Outcome:
    """Run `request` under the device lock with watchdog, reset, classification and one infra retry."""
    timeouts = timeouts or Timeouts.from_env()
    out = out or sys.stdout
    log = _Log(request, out)
    attempts: list[Attempt] = []
    output, healthy = "", True
    try:
        log.header(request, backend, timeouts)
        try:
            log.warm_child = warm.wanted(backend.name)
        except warm.WarmError as error:  # a bad PIPELINE_WARM_CHILD: one line, nothing started
            log.say(str(error))
            failed = Attempt(1, None, artifacts.FAILED, str(error), 0.0)
            return Outcome(artifacts.FAILED, failed.reason, "", [failed], request.log_path)
        lock = DeviceLock(lock_path or backend.lock_path, task=request.task, say=log.say)
        try:
            lock.acquire()
        except LockError as error:  # a lock nobody can use safely: say so in one line, start nothing
            log.say(f"device lock: {error}")
            failed = Attempt(1, None, artifacts.INFRA_FAILURE, f"device lock: {error}", 0.0)
            return Outcome(artifacts.INFRA_FAILURE, failed.reason, "", [failed], request.log_path)
        try:
            for number in range(1, MAX_ATTEMPTS + 1):
                if number > 1:
                    log.say(
                        f"=== attempt {number} of {MAX_ATTEMPTS} (retrying an infrastructure failure) ==="
                    )
                attempt, output = _attempt(number, request, timeouts, log, lock.fd)
                attempts.append(attempt)
                if attempt.verdict != artifacts.INFRA_FAILURE:
                    break
                healthy = _recover(backend, request, attempt, log, lock.fd, timeouts)
                if not healthy:
                    break
            log.say(f"=== {_final_verdict(attempts)}: {attempts[-1].reason} ===")
        finally:
            lock.release(child_s=round(log.child_seconds, 3))  # benchmarks/graph_first_run.py: overhead
    finally:
        log.close()
    verdict = _final_verdict(attempts)
    message = attempts[-1].reason
    if verdict == artifacts.INFRA_FAILURE:
        message = f"infrastructure failure after {len(attempts)} attempt(s): " + "; ".join(
            a.reason for a in attempts
        )
        if not healthy and attempts[-1].housekeeping:
            message += f"; not retried: {attempts[-1].housekeeping[-1]}"
    return Outcome(verdict, message, output, attempts, request.log_path)


def _final_verdict(attempts: list[Attempt]) -> str:
    return attempts[-1].verdict


@dataclass
class Finished:
    """What one supervised process did."""

    returncode: int | None
    output: str
    killed_because: str | None
    start_error: str | None
    duration_s: float


def _attempt(number: int, request: Request, timeouts: Timeouts, log: "_Log", lock_fd: int | None):
    finished = supervise(request.argv, request.cwd, request.env, timeouts, log, lock_fd, echo=True)
    if finished.start_error:  # a wrong interpreter path is a set-up problem, not a machine problem
        log.say(finished.start_error)
        return Attempt(number, None, artifacts.FAILED, finished.start_error, 0.0), ""
    verdict, reason = classify(finished.returncode, finished.output, finished.killed_because, request.argv)
    return Attempt(number, finished.returncode, verdict, reason, finished.duration_s), finished.output


def supervise(
    argv,
    cwd: Path,
    env: dict,
    timeouts: Timeouts,
    log: "_Log",
    lock_fd: int | None = None,
    echo: bool = True,
    prefix: str = "",
) -> Finished:
    """Start `argv` under a guard holding `lock_fd`; stop its tree on a timeout or when we are interrupted."""
    clock = CaseClock(env)
    status_read, status_write = os.pipe()
    try:
        keeper = _start_guard(argv, cwd, clock.env, status_write, lock_fd, log)
        started = time.monotonic()  # after a warm process's own start-up: the timeouts are the child's
    except (OSError, warm.WarmError) as error:  # e.g. the working directory is gone
        os.close(status_read)
        clock.close()
        reason = error.strerror if isinstance(error, OSError) and error.strerror else error
        return Finished(None, "", None, f"cannot start {argv[0]} in {cwd}: {reason}", 0.0)
    finally:
        os.close(status_write)
    pump = _Pump(keeper.stdout, log, echo, prefix)
    pump.start()
    killed_because = None
    try:
        while keeper.poll() is None:
            killed_because = _watchdog(timeouts, started, clock, pump)
            if killed_because:
                log.say(f"watchdog: {killed_because}; stopping the process tree")
                _stop(keeper)
                break
            time.sleep(_POLL_SECONDS)
    finally:
        if keeper.poll() is None:  # interrupted (Ctrl-C / SIGTERM / SIGHUP) or an error in the loop
            log.say("interrupted: stopping the process tree")
            _stop(keeper)
        pump.join(timeout=10)
        clock.close()
    status = _read_status(status_read)
    if "child_s" in status:
        log.line(f"# child wall: {status['child_s']:.3f} s")
        log.child_seconds += status["child_s"]
    duration_s = round(time.monotonic() - started, 3)
    return Finished(status.get("returncode"), pump.text(), killed_because, status.get("error"), duration_s)


def _start_guard(argv, cwd: Path, env: dict, status_fd: int, lock_fd: int | None, log: "_Log"):
    """The guard of `argv`: forked by the warm process (pipeline/warm.py) if wanted and up, else started."""
    if log.warm_child:
        try:
            return warm.start_guard(argv, cwd, env, status_fd, lock_fd)
        except warm.WarmError as error:
            log.say(f"warm child unavailable ({error}); starting the process the plain way")
    return subprocess.Popen(
        [sys.executable, "-I", str(GUARD_SCRIPT), str(status_fd), "--", *argv],
        cwd=cwd,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        pass_fds=(status_fd, *([lock_fd] if lock_fd is not None else [])),
        start_new_session=True,
    )


def _watchdog(timeouts: Timeouts, started: float, clock: "CaseClock", pump: "_Pump") -> str | None:
    now = time.monotonic()
    case_started = max(started, clock.last_case_started())
    if now - case_started > timeouts.wall:
        what = "test case" if case_started > started else "process"
        return f"wall timeout: {what} still running after {timeouts.wall:g} s"
    if now - pump.last_output > timeouts.silence:
        return f"hang: no output for {timeouts.silence:g} s"
    return None


def _stop(keeper: subprocess.Popen) -> None:
    """EOF on the guard's stdin: it kills the tree and exits. A guard that doesn't is killed with it."""
    try:
        keeper.stdin.close()
    except OSError:
        pass
    try:
        keeper.wait(timeout=GUARD_STOP_SECONDS)
    except subprocess.TimeoutExpired:
        guard.kill_tree(keeper.pid)
        keeper.kill()
        keeper.wait()


def _read_status(fd: int) -> dict:
    with os.fdopen(fd, "rb") as stream:
        records = [json.loads(line) for line in stream.read().splitlines() if line.strip()]
    return {k: v for record in records for k, v in record.items()}


class CaseClock:
    """When the current pytest test case started, from the file pipeline/case_clock.py touches."""

    def __init__(self, env: dict):
        fd, path = tempfile.mkstemp(prefix="pipeline-case-clock-")
        os.close(fd)
        self.path = Path(path)
        self.env = {**env, "PIPELINE_CASE_CLOCK": str(self.path)}
        self._initial = self.path.stat().st_mtime

    def last_case_started(self) -> float:
        """On the monotonic clock; 0 before the first case."""
        try:
            mtime = self.path.stat().st_mtime
        except OSError:
            return 0.0
        if mtime == self._initial:
            return 0.0
        return time.monotonic() - max(0.0, time.time() - mtime)

    def close(self) -> None:
        self.path.unlink(missing_ok=True)


def exit_meaning(argv: list[str], returncode: int) -> str:
    """The exit code as the tool that produced it names it (tracy wraps pytest with its own codes)."""
    if "tracy" in argv[1:3]:
        return TRACY_EXIT_MEANING.get(returncode, "failed")
    return PYTEST_EXIT_MEANING.get(returncode, "failed")


def classify(
    returncode: int | None, output: str, killed_because: str | None = None, argv: list[str] = ()
) -> tuple[str, str]:
    """(verdict, reason) of one finished attempt."""
    if killed_because:
        return artifacts.INFRA_FAILURE, killed_because
    if returncode is None:
        return artifacts.INFRA_FAILURE, "the guard lost the child's exit status"
    if returncode < 0:
        return artifacts.INFRA_FAILURE, f"crash: killed by signal {signal.Signals(-returncode).name}"
    crash = CRASH_MARKERS.search(output)
    if returncode != 0 and crash:
        line = output[crash.start() :].splitlines()[0].strip()
        return artifacts.INFRA_FAILURE, f"crash: {line} (exit {returncode})"
    if returncode == 0:
        return artifacts.PASSED, "exit 0"
    return artifacts.FAILED, f"exit {returncode} ({exit_meaning(list(argv), returncode)})"


def _recover(
    backend: Backend, request: Request, attempt: Attempt, log: "_Log", lock_fd: int | None, timeouts: Timeouts
) -> bool:
    """Reset the device and check its health, still holding the lock; False: do not retry."""
    commands, before = backend.reset_commands, None
    if backend.reset_by_machine and backend.health_command:
        ok, text = _housekeeping("devices", backend.health_command, request, log, lock_fd, attempt, timeouts)
        if not ok:
            return False
        before = devices.parse_listing(text)
        commands = devices.reset_for(before)
        _note(attempt, log, f"reset: found {before.describe()}; resetting with {shlex.join(commands[0])}")
    if not commands:
        _note(attempt, log, f"reset: {backend.name} backend has no device to reset (no-op)")
    for command in commands:
        if not _housekeeping("reset", command, request, log, lock_fd, attempt, timeouts)[0]:
            return False
    if not backend.health_command:
        return True
    ok, text = _housekeeping("health", backend.health_command, request, log, lock_fd, attempt, timeouts)
    missing = devices.came_back(before, devices.parse_listing(text)) if ok and before else None
    if missing:
        _note(attempt, log, f"health: {missing}")
    return ok and not missing


def _note(attempt: Attempt, log: "_Log", line: str) -> None:
    log.say(line)
    attempt.housekeeping.append(line)


def _housekeeping(
    kind: str,
    command,
    request: Request,
    log: "_Log",
    lock_fd: int | None,
    attempt: Attempt,
    timeouts: Timeouts,
) -> tuple[bool, str]:
    """Run a reset / health command, bounded by the reset timeout; (ok, its output)."""
    log.say(f"{kind}: {shlex.join(command)}")
    bound = Timeouts(wall=timeouts.reset, silence=timeouts.reset)
    done = supervise(
        list(command), request.cwd, request.env, bound, log, lock_fd, echo=False, prefix=f"{kind}| "
    )
    if done.start_error or done.killed_because:
        _note(
            attempt, log, f"{kind}: {shlex.join(command)} failed: {done.start_error or done.killed_because}"
        )
        return False, done.output
    _note(attempt, log, f"{kind}: {shlex.join(command)} exit {done.returncode}")
    return done.returncode == 0, done.output


class _Pump(threading.Thread):
    """Reads the child's output as it comes (partial lines count as output for the watchdog).

    Bytes are decoded incrementally: a multi-byte character split across two reads stays whole.
    """

    def __init__(self, stream, log: "_Log", echo: bool = True, prefix: str = ""):
        super().__init__(daemon=True)
        self.stream = stream
        self.log = log
        self.echo = echo
        self.prefix = prefix
        self.last_output = time.monotonic()
        self._chunks: list[str] = []
        self._pending = ""
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def run(self) -> None:
        fd = self.stream.fileno()
        while True:
            data = os.read(fd, 65536)
            self.feed(data, final=not data)
            if not data:
                break
        self.stream.close()

    def feed(self, data: bytes, final: bool = False) -> None:
        if data:
            self.last_output = time.monotonic()
        text = self._pending + self._decoder.decode(data, final=final)
        *lines, self._pending = text.split("\n")
        for line in lines:
            self._emit(line)
        if final and self._pending:
            self._emit(self._pending)
            self._pending = ""

    def _emit(self, line: str) -> None:
        self._chunks.append(line + "\n")
        self.log.line(self.prefix + line.rstrip("\r"), echo=self.echo)

    def text(self) -> str:
        return "".join(self._chunks)


class _Log:
    """log.txt (timestamped, relative to the start) and the terminal (prefixed with the task name)."""

    def __init__(self, request: Request, out):
        self.out = out
        self.prefix = f"[{request.task}] "
        self.started = time.monotonic()
        self.child_seconds = 0.0  # every supervised command's own wall time, resets included
        self.warm_child = False  # start commands from the warm process (pipeline/warm.py)
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
