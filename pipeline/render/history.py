"""Small per-step history of the device-perf figures (the trend chart) and of each test case's outcome
(flaky cases, pipeline/render/flaky.py).

``artifacts/<op>/history/<task>.jsonl``: one JSON line per run of a perf step (unit_perf, module_perf,
single_perf) with when it ran, the workspace's git commit, the environment key and the per-iteration
totals. It lives beside the op's summary (a step's own directory is emptied when it reruns) and
travels with ``artifacts/<op>/``. A line is added only for a run not yet recorded (same start time =
same run), and only the last KEEP lines are kept.
"""

import hashlib
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
    """Append this run's line to each perf and test step's history (idempotent for a run already
    recorded): perf steps keep their per-iteration totals, test steps (CASE_STEPS) each case's
    outcome under the digest of the code it ran (`code`: its result.json's input hashes)."""
    commit = None
    for step in op.steps:
        if not _recorded(step):
            continue
        lines = read(path_for(op.directory, step.task))
        if any(line.get("started") == step.run["started"] for line in lines):
            continue
        if commit is None:
            commit = git_commit(workspace) or ""
        lines.append(line_for(step, commit))
        text = "".join(json.dumps(line, sort_keys=True) + "\n" for line in lines[-KEEP:])
        artifacts.write_text(path_for(op.directory, step.task), text)


CASE_STEPS = ("unit_test", "single_device")  # their history lines hold each case's outcome


def _recorded(step: Step) -> bool:
    if not step.run.get("started"):
        return False
    if step.step in PERF_STEPS:
        return step.figure("kernel_us") is not None
    return step.step in CASE_STEPS and bool(step.cases)


def line_for(step: Step, commit: str) -> dict:
    line = {
        "started": step.run["started"],
        "commit": commit or None,
        "environment": step.run.get("environment") or {},
        "verdict": step.verdict,
    }
    if step.step in CASE_STEPS:
        return {**line, "code": code_digest(step.run), "cases": {c.id: c.outcome for c in step.cases}}
    return {
        **line,
        "kernel_us": step.figure("kernel_us"),
        "op_to_op_us": step.figure("op_to_op_us"),
        "iterations": step.figure("iterations"),
    }


def code_digest(run: dict) -> str:
    """One digest of every input a run hashed (the test, the model's modules) and its environment key:
    two runs with the same digest ran the same code the same way."""
    identity = {"inputs": run.get("inputs") or {}, "environment": run.get("environment") or {}}
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:12]


def case_series(op: OpEvidence) -> dict[str, list[dict]]:
    """task -> its history lines (oldest first), for every test step of the op."""
    return {s.task: read(path_for(op.directory, s.task)) for s in op.steps if s.step in CASE_STEPS}


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
