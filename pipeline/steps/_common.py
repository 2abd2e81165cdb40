"""What every step does around its own work: the job description, running a device command through the
supervised runner, and writing result.json (last, atomically)."""

import hashlib
import os
import shlex
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from pipeline import artifacts, why
from pipeline.backends import FACTS_PLUGIN
from pipeline.context import Context
from pipeline.spec import FusedOpSpec

if TYPE_CHECKING:
    from pipeline import runner


class Job(NamedTuple):
    """One task's work: which step, for which fused op(s) and mode, reading which upstream results."""

    ctx: Context
    spec: FusedOpSpec  # for a shared module-test task: the first of `ops` (they share the command)
    step: str
    task: str
    step_dir: Path
    mode: str | None
    ops: tuple[str, ...]
    upstream: dict  # name -> upstream step dir
    inputs: tuple[Path, ...]  # the task's file dependencies, hashed into result.json
    config: dict  # the task's config (what config_changed watches)

    @property
    def workspace(self) -> Path:
        return self.spec.workspace

    @property
    def environment_key(self) -> dict:
        return self.ctx.key_for(self.spec.env_vars)

    def upstream_result(self, name: str) -> dict | None:
        return artifacts.read_result(self.upstream[name])

    def upstream_file(self, name: str, key: str) -> Path | None:
        result = self.upstream_result(name)
        relative = (result or {}).get("files", {}).get(key)
        return Path(self.upstream[name]) / relative if relative else None


class Clock:
    def __init__(self):
        self.started_at = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        self.started = time.monotonic()

    def record(self) -> dict:
        return {
            "started": self.started_at,
            "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "duration_s": round(time.monotonic() - self.started, 3),
        }


def start(job: Job) -> Clock:
    """Set the previous outputs aside first (artifacts.set_aside): a run that dies half-way leaves them
    in previous/ under a result.json marked `superseded`, never an old result a later run could take
    for a fresh one; the new run starts in an otherwise empty folder."""
    clock = Clock()
    job.step_dir.mkdir(parents=True, exist_ok=True)
    artifacts.set_aside(job.step_dir, clock.started_at)
    return clock


def run_device(
    job: Job, argv: list[str], env_extra: dict | None = None, log_name: str = "log.txt"
) -> "runner.Outcome":
    from pipeline import runner  # only when a step runs: a no-op `doit run` never needs it

    request = runner.Request(
        task=job.task,
        argv=argv,
        cwd=job.workspace,
        env=job.ctx.backend.env(job.workspace, {**_facts_env(job), **(env_extra or {})}),
        log_path=job.step_dir / log_name,
        environment_key=job.environment_key,
    )
    return runner.run(request, job.ctx.backend, job.ctx.timeouts)


def _facts_env(job: Job) -> dict:
    """Where the child's facts plugin writes (pipeline/facts_plugin.py) and which function it watches.
    PYTEST_ADDOPTS loads the plugin in the pytest a test starts itself too (the device-perf test's profiled
    child, started by tt-metal's run_device_profiler), so its window's calls and warm-ups are facts too."""
    addopts = f"{os.environ.get('PYTEST_ADDOPTS', '')} -p {FACTS_PLUGIN}".strip()
    return {
        "PIPELINE_STEP_DIR": str(job.step_dir),
        "PIPELINE_FUSED_FUNCTION": job.spec.names.ttnn,
        "PYTEST_ADDOPTS": addopts,
    }


def finish(
    job: Job,
    clock: Clock,
    verdict: str,
    message: str = "",
    figures: dict | None = None,
    files: dict | None = None,
    notes: list | None = None,
    outcomes: list | None = None,
    commands: list | None = None,
) -> dict:
    """Write result.json (the step's target) and say the verdict in one line. The message is for people:
    its PCCs are rounded to 4 decimals (render.text); the figures keep the exact values."""
    from pipeline.render import text  # it imports _cases, which imports this module

    message = text.readable(message)
    run = {
        **clock.record(),
        "commands": [shlex.join(c) for c in commands or []],
        "environment": job.environment_key,
        "config": job.config,
        "inputs": {job.ctx.display(p): _sha256(p) for p in job.inputs},
        "runner": [o.record() for o in outcomes or []],
    }
    notes = list(notes or [])
    for outcome in outcomes or []:
        if len(outcome.attempts) > 1:
            first = outcome.attempts[0]
            notes.append(
                f"{job.task}: retried once after an infrastructure failure ({first.reason}); "
                f"device reset and health check ran before the retry"
            )
    op = job.spec.name if not job.ops else _ops(job)
    result = artifacts.make_result(
        job.task, job.step, op, job.mode, verdict, message, figures, files, notes, run
    )
    result["why"] = why.CURRENT.get(job.task)  # None when run outside doit's reporter
    artifacts.write_json(job.step_dir / artifacts.RESULT, result)
    artifacts.drop_previous(job.step_dir)
    print(
        f"[{job.task}] {verdict.upper()}: {message}" if message else f"[{job.task}] {verdict.upper()}",
        flush=True,
    )
    sys.stdout.flush()
    return result


# The guide's stop points: which upstream results must have passed before a step may run, and why.
GATES = {
    "patch_verify": "guide step 6: do not proceed until the patched module test passes with unchanged PCC",
    "unit_test": "guide step 8: do not proceed to perf or single-device work until the unit test passes",
    "unit_perf": "guide step 9: the unit test's device-perf run must pass first (it shows which ops run)",
    "baseline": "guide step 1: the module test itself must pass first",
    "module_perf": "guide step 10.2: the module test's device-perf run must pass first",
    "single_perf": "guide step 12: the single-device device-perf run must pass first",
    "single_device": "guide step 11: the single-device test must pass first",
}


def blocked(job: Job, clock: Clock, *names: str) -> dict | None:
    """Write a `blocked` result naming the first gate that is closed, or None when every gate is open.

    `names` are upstream keys or step names (a step name covers its per-mode keys `<step>:<mode>`)."""
    for name in names:
        for key in [k for k in job.upstream if k == name or k.startswith(f"{name}:")]:
            result = job.upstream_result(key)
            if result is None or result["verdict"] != artifacts.PASSED:
                what = f"{result['task']} {result['verdict']}" if result else f"{key} has no result"
                return finish(job, clock, artifacts.BLOCKED, f"{what} ({GATES[name]})")
    return None


def relative_files(job: Job, files: dict) -> dict:
    """Paths of the step's files, relative to its directory (so the tree can be moved or merged)."""
    return {
        k: Path(v).resolve().relative_to(job.step_dir.resolve()).as_posix() for k, v in files.items() if v
    }


def _ops(job: Job) -> str:
    return ",".join(job.ops)


def _sha256(path: Path) -> str:
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError:
        return "missing"
