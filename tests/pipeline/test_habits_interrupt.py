"""Ctrl-C during a device step ends in one line and exit 130; the step's previous files stay, marked
superseded, until a new run replaces them (issue 22, acceptance 2)."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fakes import as_in_a_terminal, doit, executed, make_doit_env

from pipeline import artifacts
from pipeline.lock import read_lock_log

TASK = "unit_perf:demo_router:decode"
STEP = "artifacts/demo_router/unit_perf/decode"


@pytest.fixture(scope="module")
def first_run(fake_first_run):
    repo, result = fake_first_run
    assert result.returncode == 0, result.stdout[-3000:]
    return repo


@pytest.fixture
def repo(first_run, tmp_path) -> Path:
    return Path(shutil.copytree(first_run, tmp_path / "repo", symlinks=True))


def interrupt_during(repo: Path, task: str, *args) -> tuple[subprocess.CompletedProcess, str]:
    """`doit run ARGS` with a slow device step, Ctrl-C'd (SIGINT to the foreground group) once `task`'s
    child has started."""
    env = {**make_doit_env(repo.parent), "FAKE_SLOW": "60"}
    argv = [sys.executable, "-m", "doit", "run", *args]
    run = subprocess.Popen(
        argv,
        cwd=repo,
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
        preexec_fn=as_in_a_terminal,
    )
    seen = []
    for line in run.stdout:
        seen.append(line)
        if line.startswith(f"[{task}] pipeline: $ "):
            time.sleep(1.0)
            break
    os.killpg(run.pid, signal.SIGINT)
    out, err = run.communicate(timeout=60)
    return subprocess.CompletedProcess(argv, run.returncode, "".join(seen) + out, err), err


def test_ctrl_c_is_one_closing_line_exit_130_and_keeps_the_previous_files_marked(repo):
    step = repo / STEP
    before = json.loads((step / artifacts.RESULT).read_text())
    kept = {name: (step / path).read_bytes() for name, path in before["files"].items()}
    doit(repo, make_doit_env(repo.parent), "forget", TASK)
    done, err = interrupt_during(repo, TASK, "fused_op=demo_router")
    assert done.returncode == 130, done.stdout[-2000:] + err
    assert "Traceback" not in done.stdout + err
    last = done.stdout.strip().splitlines()[-1]
    assert last == (
        f"interrupted during {TASK}: child stopped, lock released; "
        "rerun `doit run fused_op=demo_router` to continue"
    ), done.stdout[-2000:]
    assert read_lock_log(repo.parent / "device.lock.log")[-1]["event"] == "release"
    marked = json.loads((step / artifacts.RESULT).read_text())
    assert marked["verdict"] == artifacts.SUPERSEDED  # never taken for a fresh result
    assert marked["superseded"]["previous_verdict"] == before["verdict"] == "passed"
    for name, content in kept.items():  # every file the old result listed is still there, unchanged
        assert (step / marked["files"][name]).read_bytes() == content, name
    after = doit(repo, make_doit_env(repo.parent), "run")
    assert after.returncode == 0, after.stdout[-2000:]
    assert {n for n in executed(after) if n.split(":")[0] not in ("summary", "index")} == {TASK}
    assert json.loads((step / artifacts.RESULT).read_text())["verdict"] == "passed"
    assert not (step / artifacts.PREVIOUS).exists()  # replaced by the new run


def test_a_marked_result_does_not_count_as_passed_for_the_steps_after_it(repo):
    step = repo / STEP
    old = json.loads((step / artifacts.RESULT).read_text())
    artifacts.set_aside(step, "2026-01-01T00:00:00+0000")
    from pipeline import doit_support

    assert not doit_support.passed_before(step / artifacts.RESULT)(None, {})
    assert artifacts.read_result(step)["verdict"] == "superseded"
    artifacts.set_aside(step, "2026-01-01T00:01:00+0000")  # a second interrupted run keeps the first's files
    kept = json.loads((step / artifacts.PREVIOUS / artifacts.RESULT).read_text())
    assert kept == old
