"""The artifacts tree: where each step writes, atomic writes, and result.json.

Layout (artifacts/README.md)::

    artifacts/
      index.md                          status matrix over every <op>/summary.json
      .doit.db  .doit.lock              doit's state (copy it along for incremental CI)
      <op>/summary.json  summary.md
      <op>/<step>/[<mode>/]             log.txt, result.json, CSVs, reports, patch.diff
      _module_tests/<key>/<step>/<mode>/ module-test runs shared by every fused op that uses them

A result.json holds ``verdict``, ``message``, ``figures`` and ``files`` (paths relative to its
directory), which depend only on what the step found, plus ``run`` (timings, attempts, command, input
hashes, environment key), which changes on every execution. Downstream tasks depend on the former
only (``stable_content``), so rerunning a step that finds the same thing reruns nothing after it.
"""

import json
import os
import shutil
import tempfile
from pathlib import Path

RESULT = "result.json"
MODULE_TESTS = "_module_tests"  # not a valid fused-op name, so it never collides with <op>/

PASSED = "passed"
FAILED = "failed"  # the test or the check failed: a finding about the code under test
INFRA_FAILURE = "infra_failure"  # hang, crash or reset: a finding about the machine
PROFILER_FAILURE = "profiler_failure"  # the run passed but its device-perf report is unusable
SKIPPED = "skipped"  # not applicable, with the reason (e.g. single-device with a CCL)
BLOCKED = "blocked"  # an upstream step did not pass
SUPERSEDED = "superseded"  # a newer run of the step started and has not finished (or was interrupted)
VERDICTS = (PASSED, FAILED, INFRA_FAILURE, PROFILER_FAILURE, SKIPPED, BLOCKED, SUPERSEDED)
GOOD_VERDICTS = (PASSED, SKIPPED)


class Layout:
    """Paths inside one artifacts directory."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self._paths: dict = {}  # a graph names each step's folder several times

    def op_dir(self, op: str) -> Path:
        return self.root / op

    def step_dir(self, op: str, step: str, mode: str | None = None) -> Path:
        return self._path(op, step, mode) if mode else self._path(op, step)

    def module_dir(self, key: str, step: str, mode: str) -> Path:
        return self._path(MODULE_TESTS, key, step, mode)

    def _path(self, *parts: str) -> Path:
        known = self._paths.get(parts)
        if known is None:
            known = self._paths[parts] = self.root.joinpath(*parts)
        return known

    def summary_json(self, op: str) -> Path:
        return self.root / op / "summary.json"

    def summary_md(self, op: str) -> Path:
        return self.root / op / "summary.md"

    @property
    def index_md(self) -> Path:
        return self.root / "index.md"

    @property
    def doit_db(self) -> Path:
        return self.root / ".doit.db"

    @property
    def doit_lock(self) -> Path:
        return self.root / ".doit.lock"


def write_bytes(path: Path, data: bytes) -> Path:
    """Write via a temporary file in the same directory, then rename: readers see old or new, never half."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_text(path: Path, text: str) -> Path:
    return write_bytes(path, text.encode("utf-8"))


def write_json(path: Path, data) -> Path:
    return write_text(path, json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")


def copy_file(source: Path, destination: Path) -> Path:
    """Atomic copy (the destination appears complete or not at all)."""
    destination = Path(destination)
    destination.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{destination.name}.", suffix=".tmp", dir=destination.parent)
    os.close(fd)
    try:
        shutil.copyfile(source, tmp)
        os.replace(tmp, destination)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return destination


def read_json(path: Path):
    return json.loads(Path(path).read_text())


def read_result(step_dir: Path) -> dict | None:
    """The step's result.json, or None when the step has not finished (or its file is unreadable)."""
    try:
        return read_json(Path(step_dir) / RESULT)
    except (OSError, ValueError):
        return None


def stable_content(result: dict) -> dict:
    """What downstream tasks depend on: everything but the per-execution ``run`` record and ``why``
    the step ran (pipeline/why.py)."""
    return {key: value for key, value in result.items() if key not in ("run", "why")}


PREVIOUS = "previous"  # <step dir>/previous/: the last finished run's files while a new run is under way


def set_aside(step_dir: Path, started: str) -> None:
    """Before a step runs: move its last finished run's files into `previous/` and leave a result.json
    that still lists them (paths into previous/) but says `superseded`, so no reader takes it for a
    fresh result while the new run is under way, or after it was interrupted. An already superseded
    result (an earlier run was interrupted) keeps its previous/; only the interrupted run's files go."""
    step_dir = Path(step_dir)
    old = read_result(step_dir)
    previous = step_dir / PREVIOUS
    if old is not None and old.get("verdict") != SUPERSEDED:
        shutil.rmtree(previous, ignore_errors=True)
        previous.mkdir(parents=True)
        for entry in list(step_dir.iterdir()):
            if entry.name != PREVIOUS:
                entry.rename(previous / entry.name)
        write_json(step_dir / RESULT, superseded(old, started))
        return
    keep = {PREVIOUS, RESULT} if old is not None else set()
    for entry in list(step_dir.iterdir()) if step_dir.is_dir() else []:
        if entry.name not in keep:
            shutil.rmtree(entry) if entry.is_dir() and not entry.is_symlink() else entry.unlink()


def superseded(old: dict, started: str) -> dict:
    """`old` marked as replaced by a run that started at `started` and has not (yet) finished."""
    files = {name: f"{PREVIOUS}/{path}" for name, path in (old.get("files") or {}).items()}
    return {
        **old,
        "verdict": SUPERSEDED,
        "message": (
            f"a run started {started} did not finish (interrupted or still running); the files are the "
            f"previous run's ({old.get('verdict')}: {old.get('message', '')}), kept in {PREVIOUS}/"
        ),
        "files": files,
        "superseded": {"previous_verdict": old.get("verdict"), "by_run_started": started},
    }


def drop_previous(step_dir: Path) -> None:
    """After a step wrote its new result: the previous run's files are no longer what any result lists."""
    shutil.rmtree(Path(step_dir) / PREVIOUS, ignore_errors=True)


def clear_dir(path: Path) -> None:
    """Remove a step's previous outputs before it runs, so a failed run leaves no stale target behind."""
    shutil.rmtree(path, ignore_errors=True)


def make_result(
    task: str,
    step: str,
    op: str | None,
    mode: str | None,
    verdict: str,
    message: str = "",
    figures: dict | None = None,
    files: dict | None = None,
    notes: list | None = None,
    run: dict | None = None,
) -> dict:
    """A result.json document. `notes` are the "unexpected and workarounds" items for the summary."""
    if verdict not in VERDICTS:
        raise ValueError(f"unknown verdict {verdict!r}")
    return {
        "task": task,
        "step": step,
        "op": op,
        "mode": mode,
        "verdict": verdict,
        "message": message,
        "figures": figures or {},
        "files": files or {},
        "notes": notes or [],
        "run": run or {},
    }
