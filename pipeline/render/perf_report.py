"""tt-perf-report's per-op table for each perf CSV, as the tt-metal ecosystem reads a profiler report.

``tt-perf-report <csv> --csv <out>`` over the window the pipeline measured: between the ``start`` and
``stop`` signposts for the unit-test runs (unit_perf, single_perf; tt-perf-report takes the first of
each, which is the pipeline's window when the test signposts once), the whole run for the module test
(it has no signposts). Written to ``artifacts/<op>/perf_report/<task>.csv`` and linked from the op
page; a report is remade only when its source CSV changed. A run that fails leaves
``<task>.error.txt`` with the tool's last lines instead, and the page says so.
"""

import hashlib
import inspect
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from pipeline import artifacts, opsperf
from pipeline.render.evidence import PERF_STEPS, OpEvidence, Step
from pipeline.render.history import path_for
from pipeline.render.outputs import REPORT_DIR

TIMEOUT_S = 180
_WINDOW = inspect.signature(opsperf.signpost_window).parameters  # the pipeline's window, defined once there
SIGNPOSTS = (_WINDOW["start"].default, _WINDOW["stop"].default)


@dataclass(frozen=True)
class Report:
    task: str
    href: str | None  # relative to the op's directory
    error: str = ""


def make_all(op: OpEvidence) -> dict[str, Report]:
    return {s.task: make(op, s) for s in op.steps if s.step in PERF_STEPS and s.links.get("csv")}


def make(op: OpEvidence, step: Step) -> Report:
    source = op.link(step.links["csv"])
    out = _out_path(op.directory, step.task)
    error_path, stamp = out.with_suffix(".error.txt"), out.with_suffix(".source")
    if not source.is_file():
        return Report(step.task, None, f"the CSV {step.links['csv']} is not in this artifacts tree")
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    if _read(stamp) == digest:
        return _existing(op.directory, step.task, out, error_path)
    out.unlink(missing_ok=True)
    error_path.unlink(missing_ok=True)
    error = _run(source, out, windowed=step.step != "module_perf")
    if error:
        artifacts.write_text(error_path, error)
    artifacts.write_text(stamp, digest)
    return _existing(op.directory, step.task, out, error_path)


def command(source: Path, out: Path, windowed: bool) -> list[str]:
    window = (
        ["--start-signpost", SIGNPOSTS[0], "--end-signpost", SIGNPOSTS[1]]
        if windowed
        else ["--ignore-signposts"]
    )
    return [
        _executable(),
        str(source),
        *window,
        "--csv",
        str(out),
        "--no-advice",
        "--no-summary",
        "--no-color",
    ]


def _run(source: Path, out: Path, windowed: bool) -> str:
    """'' on success, else what went wrong (the tool's last lines)."""
    with tempfile.TemporaryDirectory(prefix="tt-perf-report-") as scratch:
        tmp_out = Path(scratch) / out.name
        try:
            done = subprocess.run(
                command(source, tmp_out, windowed),
                cwd=scratch,
                capture_output=True,
                text=True,
                timeout=TIMEOUT_S,
                check=False,
            )
        except (OSError, subprocess.SubprocessError) as error:
            return f"tt-perf-report could not run: {error}\n"
        if done.returncode != 0 or not tmp_out.is_file():
            tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-12:])
            return f"tt-perf-report exited {done.returncode}:\n{tail}\n"
        artifacts.copy_file(tmp_out, out)
    return ""


def _existing(op_dir: Path, task: str, out: Path, error_path: Path) -> Report:
    if out.is_file():
        return Report(task, out.relative_to(op_dir).as_posix())
    return Report(task, None, _read(error_path) or "no report")


def _out_path(op_dir: Path, task: str) -> Path:
    name = path_for(op_dir, task).with_suffix(".csv").name  # the same task -> file name rule as history
    return Path(op_dir) / REPORT_DIR / name


def _executable() -> str:
    beside = Path(sys.executable).parent / "tt-perf-report"
    return str(beside) if beside.is_file() else (shutil.which("tt-perf-report") or "tt-perf-report")


def _read(path: Path) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""
