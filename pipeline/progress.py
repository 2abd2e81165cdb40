"""doit reporter: doit's own lines plus live progress, and a table of what happened at the end.

Keeps every line doit's console reporter writes (``.  task`` executed, ``-- task`` up to date, failures)
because people and CI scripts read them. On a terminal it adds a status line pinned to the bottom row
(a scroll region keeps the task's output above it), redrawn every second: the running task, its
elapsed time, why it reruns (pipeline/why.py), and the last line of its log.txt, which says who holds
the device lock while the step waits for it. Not on a terminal (CI) it adds a line saying why each step
runs and one per finished step. At the end: a table of the
steps run / up to date / failed / blocked with their verdicts and durations.

Hooked in through dodo.py's ``DOIT_CONFIG["reporter"]``.
"""

import os
import shutil
import sys
import threading
import time
from typing import NamedTuple

from doit.reporter import ConsoleReporter

from pipeline import doit_support, termination, why

REFRESH_S = 1.0
LOCK_WAIT = "waiting for the device lock"  # the runner's log line while another holds the lock
LOCK_TAKEN = "pipeline: $ "  # the runner logs the command once it holds the lock
FAILING = ("failed", "infra_failure", "profiler_failure", "missing")


class Outcome(NamedTuple):
    task: str
    outcome: str  # run / up to date / failed / blocked
    verdict: str = ""
    seconds: float | None = None


class ProgressReporter(ConsoleReporter):
    desc = "doit's console lines, live progress on a terminal, a table of outcomes at the end"

    def __init__(self, outstream, options):
        super().__init__(outstream, options)
        self.outcomes: dict[str, Outcome] = {}
        self.started: dict[str, float] = {}
        self.live = StatusLine(outstream) if _is_tty(outstream) else None

    def execute_task(self, task):
        super().execute_task(task)
        if not task.actions:  # a group task has no work of its own
            return
        self.started[task.name] = time.monotonic()
        reason = why.CURRENT[task.name] = why.explain(task)  # the step's result.json records it too
        if self.live:
            self.live.show(task.name, _log_path(task), reason)
        else:
            self.write(f"   {task.name}: why: {reason}\n")

    def add_success(self, task):
        super().add_success(task)
        verdict = _verdict(task)
        outcome = "blocked" if verdict == "blocked" else "failed" if verdict in FAILING else "run"
        self._finish(task, outcome, verdict)

    def add_failure(self, task, fail):
        self._finish(task, "failed", _verdict(task) or "doit failure")
        super().add_failure(task, fail)

    def skip_uptodate(self, task):
        super().skip_uptodate(task)
        if task.actions:
            self.outcomes[task.name] = Outcome(task.name, "up to date", _verdict(task))

    def complete_run(self):
        if self.live:
            self.live.stop()
        self.write(table(list(self.outcomes.values())))
        super().complete_run()
        interrupt = sys.exc_info()[1]  # doit calls this from a `finally`: an interrupt is on its way out
        if isinstance(interrupt, KeyboardInterrupt):
            self._end_interrupted(interrupt)

    def _end_interrupted(self, interrupt: KeyboardInterrupt):
        """One closing line and the shell's exit code instead of doit's traceback. By now the runner's
        `finally` stopped the child and released the device lock, and doit closed its database."""
        line = termination.closing_line(interrupt, list(self.started), sys.argv[1:])
        self.write("\n" + line + "\n")
        self.outstream.flush()
        raise SystemExit(termination.exit_code(interrupt)) from None

    def _finish(self, task, outcome: str, verdict: str) -> None:
        if not task.actions:
            return
        seconds = time.monotonic() - self.started.pop(task.name, time.monotonic())
        self.outcomes[task.name] = Outcome(task.name, outcome, verdict, seconds)
        if self.live:
            self.live.idle()
        else:
            self.write(f"   {task.name}: {verdict or outcome} in {seconds:.1f} s\n")


def table(outcomes: list[Outcome]) -> str:
    if not outcomes:
        return ""
    width = max(len(o.task) for o in outcomes)
    lines = ["", f"{'task'.ljust(width)}  {'outcome':<10}  {'verdict':<16}  time"]
    for o in outcomes:
        seconds = f"{o.seconds:.1f} s" if o.seconds is not None else ""
        lines.append(f"{o.task.ljust(width)}  {o.outcome:<10}  {o.verdict:<16}  {seconds}")
    counts = {
        kind: sum(o.outcome == kind for o in outcomes) for kind in ("run", "up to date", "failed", "blocked")
    }
    total = sum(o.seconds or 0 for o in outcomes)
    lines.append(", ".join(f"{n} {kind}" for kind, n in counts.items()) + f"; {total:.1f} s in steps")
    return "\n".join(lines) + "\n"


class StatusLine:
    """The bottom terminal row, redrawn by a daemon thread; the rows above scroll as usual."""

    def __init__(self, stream):
        self.stream = stream
        self.task: str | None = None
        self.why = ""  # why the running task reruns (pipeline/why.py)
        self.log: str | None = None
        self.since = 0.0
        self.locked = False  # the running step holds the device lock
        self.rows = shutil.get_terminal_size().lines
        self.columns = shutil.get_terminal_size().columns
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def show(self, task: str, log: str | None, reason: str = "") -> None:
        self.task, self.log, self.since, self.locked = task, log, time.monotonic(), False
        self.why = reason
        if self._thread is None:
            # one blank row, then keep the last row out of the scroll region for the status
            self._write(f"\n\0337\033[1;{self.rows - 1}r\0338\033[{self.rows - 1};1H")
            self._thread = threading.Thread(target=self._loop, name="doit-progress", daemon=True)
            self._thread.start()
        self.draw()

    def idle(self) -> None:
        self.task = None
        self.draw()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2 * REFRESH_S)
            self._write(f"\0337\033[r\033[{self.rows};1H\033[2K\0338")
            self._thread = None

    def text(self) -> str:
        if self.task is None:
            return "doit: between steps"
        elapsed = time.monotonic() - self.since
        last = last_line(self.log) if self.log else ""
        if self.log and not self.locked:
            self.locked = LOCK_TAKEN in _head(self.log)
        if LOCK_WAIT in last:  # name the holder first: the lock's path is long
            return f"▶ {self.task}  {elapsed:5.0f} s  {LOCK_WAIT}, held by {last.partition('held by ')[2]}"
        where = "under the device lock · " if self.locked else ""
        reason = f"({self.why}) " if self.why else ""
        return f"▶ {self.task}  {elapsed:5.0f} s  {reason}{where}{last}"

    def draw(self) -> None:
        if self._thread is not None:
            self._write(
                f"\0337\033[{self.rows};1H\033[2K\033[7m{self.text()[: self.columns - 1]}\033[0m\0338"
            )

    def _loop(self) -> None:
        while not self._stop.wait(REFRESH_S):
            self.draw()

    def _write(self, text: str) -> None:
        try:
            self.stream.write(text)
            self.stream.flush()
        except (OSError, ValueError):
            self._stop.set()


def last_line(path: str, tail: int = 4096) -> str:
    """The last non-empty line of a growing log (it says who holds the device lock while waiting)."""
    try:
        with open(path, "rb") as f:
            f.seek(0, 2)
            f.seek(max(0, f.tell() - tail))
            lines = f.read().decode("utf-8", "replace").splitlines()
    except OSError:
        return ""
    return next((line.strip() for line in reversed(lines) if line.strip()), "")


def _head(path: str, size: int = 8192) -> str:
    try:
        with open(path, "rb") as f:
            return f.read(size).decode("utf-8", "replace")
    except OSError:
        return ""


def _result_path(task) -> str | None:
    return next((t for t in task.targets if doit_support.is_result(t)), None)


def _log_path(task) -> str | None:
    result = _result_path(task)
    return os.path.join(os.path.dirname(result), "log.txt") if result else None


def _verdict(task) -> str:
    result = _result_path(task)
    return doit_support.read_verdict(result) if result else ""


def _is_tty(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
