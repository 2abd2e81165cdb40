"""Small per-step history of the device-perf figures, for the trend chart.

``artifacts/<op>/history/<task>.jsonl``: one JSON line per run of a perf step (unit_perf, module_perf,
single_perf) with when it ran, the workspace's git commit, the environment key and the per-iteration
totals. It lives beside the op's summary (a step's own directory is emptied when it reruns) and
travels with ``artifacts/<op>/``. A line is added only for a run not yet recorded (same start time =
same run), and only the last KEEP lines are kept.
"""

import json
import re
import subprocess
from pathlib import Path

from pipeline import artifacts
from pipeline.render.evidence import PERF_STEPS, OpEvidence, Step
from pipeline.render.outputs import HISTORY_DIR

KEEP = 50


def path_for(op_dir: Path, task: str) -> Path:
    return Path(op_dir) / HISTORY_DIR / (re.sub(r"[^A-Za-z0-9_.-]+", "-", task) + ".jsonl")


def record(op: OpEvidence, workspace: Path | None) -> None:
    """Append this run's line to each perf step's history (idempotent for a run already recorded)."""
    commit = None
    for step in op.steps:
        if step.step not in PERF_STEPS or step.figure("kernel_us") is None or not step.run.get("started"):
            continue
        lines = read(path_for(op.directory, step.task))
        if any(line.get("started") == step.run["started"] for line in lines):
            continue
        if commit is None:
            commit = git_commit(workspace) or ""
        lines.append(line_for(step, commit))
        text = "".join(json.dumps(line, sort_keys=True) + "\n" for line in lines[-KEEP:])
        artifacts.write_text(path_for(op.directory, step.task), text)


def line_for(step: Step, commit: str) -> dict:
    return {
        "started": step.run["started"],
        "commit": commit or None,
        "environment": step.run.get("environment") or {},
        "verdict": step.verdict,
        "kernel_us": step.figure("kernel_us"),
        "op_to_op_us": step.figure("op_to_op_us"),
        "iterations": step.figure("iterations"),
    }


def read(path: Path) -> list[dict]:
    try:
        text = Path(path).read_text()
    except OSError:
        return []
    lines = []
    for raw in text.splitlines():
        try:
            lines.append(json.loads(raw))
        except ValueError:
            continue  # a torn line from a foreign copy: skip it, keep the rest
    return lines


def series(op: OpEvidence) -> dict[str, list[dict]]:
    """task -> its history lines (oldest first), for every perf step of the op."""
    return {s.task: read(path_for(op.directory, s.task)) for s in op.steps if s.step in PERF_STEPS}


def git_commit(folder: Path | None) -> str | None:
    if folder is None:
        return None
    try:
        done = subprocess.run(
            ["git", "-C", str(folder), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() or None if done.returncode == 0 else None
