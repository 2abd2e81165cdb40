"""The fake checkout after edits and faults: what a user sees and what the next run does (sets of task names).

Faults use real processes and signals. Hang, profiler overflow and a too-small trace region are in
test_flow.py; reset faults in test_runner.py.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from fakes import (
    as_in_a_terminal,
    doit,
    executed,
    make_doit_env,
    tagged_processes,
    tree_digest,
)

from pipeline.lock import DeviceLock, read_lock_log

WORKSPACE = "examples/demo"
UNIT_TEST = f"{WORKSPACE}/models/demo/tests/fused/test_demo_router.py"
STEP_STARTED = "pipeline: $ "  # the runner's line as it starts a device command


@pytest.fixture(scope="module")
def first_run(fake_first_run):
    repo, result = fake_first_run
    assert result.returncode == 0, result.stdout[-3000:]
    return repo


@pytest.fixture
def repo(first_run, tmp_path) -> Path:
    return Path(shutil.copytree(first_run, tmp_path / "repo", symlinks=True))


def popen_doit_run(repo: Path, env: dict, *args, **popen) -> subprocess.Popen:
    """`doit run ARGS` in the background, its stdout and stderr piped together."""
    argv = [sys.executable, "-m", "doit", "run", *args]
    return subprocess.Popen(
        argv, cwd=repo, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, **popen
    )


def start_doit(repo: Path, env: dict, task: str, *args) -> tuple[subprocess.Popen, list[str]]:
    """`doit run ARGS` in a session of its own, read until `task`'s device command has started."""
    run = popen_doit_run(repo, env, *args, start_new_session=True, preexec_fn=as_in_a_terminal)
    lines = []
    for line in run.stdout:
        lines.append(line)
        if line.startswith(f"[{task}] {STEP_STARTED}"):
            time.sleep(1.0)  # let the child get going
            return run, lines
    raise AssertionError("the step never started:\n" + "".join(lines))


def tagged_env(repo: Path, **extra) -> tuple[dict, str]:
    tag = uuid.uuid4().hex
    return {**make_doit_env(repo.parent), "PIPELINE_RUN_TAG": tag, **extra}, tag


def wait_gone(tag: str, seconds: float) -> list[int]:
    deadline = time.monotonic() + seconds
    while tagged_processes(tag) and time.monotonic() < deadline:
        time.sleep(0.1)
    return tagged_processes(tag)


@pytest.mark.parametrize(
    "task, slow",
    [
        ("patch_verify:demo_router:decode", {"FAKE_SLOW_MODULE": "60"}),
        ("unit_perf:demo_router:decode", {"FAKE_SLOW": "60"}),
    ],
)
def test_kill_9_of_doit_mid_step_leaves_nothing_behind_and_the_next_run_recovers(repo, task, slow):
    workspace_before = tree_digest(repo / WORKSPACE)
    doit(repo, make_doit_env(repo.parent), "forget", task)
    env, tag = tagged_env(repo, **slow)
    run, _ = start_doit(repo, env, task)
    assert len(tagged_processes(tag)) >= 3  # doit, the guard, the test (tracy and its pytest for unit_perf)
    run.kill()
    killed = time.monotonic()
    run.wait()
    assert wait_gone(tag, 5.0) == [], "processes of the killed run still alive after 5 s"
    with DeviceLock(repo.parent / "device.lock", task="probe", say=lambda message: None):
        assert time.monotonic() - killed < 5.5  # free once the tree is gone
    assert tree_digest(repo / WORKSPACE) == workspace_before
    after = doit(repo, make_doit_env(repo.parent), "run")
    assert after.returncode == 0, after.stdout[-3000:]
    assert task in executed(after)  # the killed step was not counted done


@pytest.mark.parametrize("how", ["SIGHUP", "Ctrl-C"])  # SIGTERM: test_flow.py
def test_signal_mid_step_kills_the_child_group_frees_the_lock_and_saves_doit_state(repo, how):
    task = "unit_perf:demo_router:decode"
    doit(repo, make_doit_env(repo.parent), "forget", task)
    env, tag = tagged_env(repo, FAKE_SLOW="60")
    run, lines = start_doit(repo, env, task)
    if how == "Ctrl-C":
        os.killpg(run.pid, signal.SIGINT)  # the terminal sends it to the whole foreground group
    else:
        run.send_signal(getattr(signal, how))
    rest = run.communicate(timeout=60)[0]
    assert run.returncode != 0
    assert wait_gone(tag, 5.0) == []
    assert read_lock_log(repo.parent / "device.lock.log")[-1]["event"] == "release"
    after = doit(repo, make_doit_env(repo.parent), "run")
    assert after.returncode == 0, "".join(lines) + rest + after.stdout[-2000:]
    assert task in executed(after) and "unit_test:demo_router" not in executed(after)


def test_crash_mid_step_is_an_infrastructure_failure_retried_once(repo):
    env = {**make_doit_env(repo.parent), "FAKE_CRASH": "1"}
    doit(repo, env, "forget", "unit_test:demo_router")
    result = doit(repo, env, "run", "unit_test:demo_router")
    assert result.returncode != 0
    outcome = json.loads((repo / "artifacts/demo_router/unit_test/result.json").read_text())
    assert outcome["verdict"] == "infra_failure", outcome["message"]
    assert "crash: killed by signal SIGABRT" in outcome["message"]
    assert "attempt 2 of 2" in result.stdout
    fixed = doit(repo, make_doit_env(repo.parent), "run", "unit_test:demo_router")
    assert fixed.returncode == 0 and "unit_test:demo_router" in executed(fixed)


def test_device_error_fails_the_step_with_the_tt_fatal_line_in_the_log(repo):
    env = {**make_doit_env(repo.parent), "FAKE_TT_FATAL": "1"}
    doit(repo, env, "forget", "unit_test:demo_router")
    result = doit(repo, env, "run", "unit_test:demo_router")
    assert result.returncode != 0
    outcome = json.loads((repo / "artifacts/demo_router/unit_test/result.json").read_text())
    assert outcome["verdict"] == "failed"
    log = (repo / "artifacts/demo_router/unit_test/log.txt").read_text()
    assert "TT_FATAL @ tt_metal/impl/device.cpp:42: device 0 timed out" in log


def test_input_edited_while_its_step_runs_is_not_recorded_as_fresh(repo):
    task = "unit_test:demo_router"
    doit(repo, make_doit_env(repo.parent), "forget", task)
    run, lines = start_doit(repo, {**make_doit_env(repo.parent), "FAKE_SLOW": "0.5"}, task, task)
    unit_test = repo / UNIT_TEST
    unit_test.write_text(unit_test.read_text() + "\nEDITED_MID_STEP = 1\n")
    rest = run.communicate(timeout=120)[0]
    assert run.returncode != 0
    assert f"{task}: {UNIT_TEST} changed while the step ran; run doit again" in rest
    again = doit(repo, make_doit_env(repo.parent), "run", task)
    assert again.returncode == 0 and task in executed(again)


@pytest.mark.parametrize(
    "artifact, task",
    [
        ("demo_router/unit_perf/decode/ops_perf_results.csv", "unit_perf:demo_router:decode"),
        ("demo_router/unit_test/result.json", "unit_test:demo_router"),
    ],
)
@pytest.mark.parametrize("tamper", ["edit", "truncate"])
def test_tampered_artifact_is_detected_and_its_step_reruns(repo, artifact, task, tamper):
    path = repo / "artifacts" / artifact
    text = path.read_text()
    path.write_text(text[: len(text) // 2] if tamper == "truncate" else text.replace("0", "9", 1))
    result = doit(repo, make_doit_env(repo.parent), "run")
    assert result.returncode == 0, result.stdout[-2000:]
    assert task in executed(result)
    assert path.read_text() != text[: len(text) // 2] or tamper == "edit"


# ---- rerun precision: edits that can't change behaviour rerun nothing; others exactly their dependants ----

MODEL = f"{WORKSPACE}/models/demo/tt/model.py"
UNIT_STEPS = {
    "unit_test:demo_router",
    "single_device:demo_router",
    "unit_perf:demo_router:decode",
    "unit_perf:demo_router:prefill",
    "single_perf:demo_router:decode",
    "single_perf:demo_router:prefill",
    "patch_verify:demo_router:decode",
    "patch_verify:demo_router:prefill",
}


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new))


@pytest.mark.parametrize(
    "path, old, new",
    [
        (UNIT_TEST, "import logging\n", "# a comment\nimport logging  # why\n\n\n"),
        (UNIT_TEST, "CASES = [(", "CASES = [\n    ("),
        (MODEL, "    a = add(x, 1)\n", "    # the fused part starts here\n\n    a = add(x, 1)  # first op\n"),
        (MODEL, 'op("LayerNormDeviceOperation")', 'op(\n        "LayerNormDeviceOperation",\n    )'),
        (MODEL, 'op("EmbeddingsDeviceOperation")', "op('EmbeddingsDeviceOperation')"),
    ],
    ids=[
        "comment+blank lines in the unit test",
        "reformatted unit test",
        "comment+blank line in the module",
        "reformatted module",
        "quote style in the module",
    ],
)
def test_edit_that_cannot_change_behaviour_reruns_nothing(repo, path, old, new):
    edit(repo / path, old, new)
    result = doit(repo, make_doit_env(repo.parent), "run")
    assert result.returncode == 0 and executed(result) == set(), result.stdout[-2000:]


def test_docstring_edit_counts_as_code(repo):
    edit(
        repo / UNIT_TEST,
        "def demo_router_reference(x):\n",
        'def demo_router_reference(x):\n    """Docs."""\n',
    )
    assert executed(doit(repo, make_doit_env(repo.parent), "run")) == UNIT_STEPS


def test_code_edit_in_the_module_reruns_exactly_its_dependants(repo):
    edit(repo / MODEL, 'op("LayerNormDeviceOperation")', 'op("LayerNormDeviceOperation")\n    op("RMSNorm")')
    result = doit(repo, make_doit_env(repo.parent), "run")
    steps_and_modes = {(name.split(":")[0], name.split(":")[-1]) for name in executed(result)}
    per_mode = {
        "baseline",
        "patch_verify",
        "module_perf",
        "config_compare",
    }  # config_compare: module_perf changed
    expected = {(step, mode) for step in per_mode for mode in ("decode", "prefill")}
    assert steps_and_modes == expected | {("summary", "demo_router"), ("index", "index")}, result.stdout[
        -2000:
    ]


def test_clean_leaves_no_empty_dirs_and_drops_module_tests_no_spec_uses(repo):
    env = make_doit_env(repo.parent)
    stale = repo / "artifacts/_module_tests/test_old-000000/baseline/decode"
    stale.mkdir(parents=True)
    (stale / "result.json").write_text("{}")
    assert doit(repo, env, "clean", "fused_op=demo_router").returncode == 0  # a selection keeps other dirs
    assert stale.exists()
    assert doit(repo, env, "clean").returncode == 0
    left = [p for p in (repo / "artifacts").rglob("*") if p.is_dir()]
    assert left == [], left


# ---- concurrency: one device set is never held twice; two device sets run side by side ----

RERUN = ("unit_test:demo_router", "unit_perf:demo_router:decode")


def held_intervals(log_path: Path) -> list[tuple[float, float, int]]:
    """(acquired, released, pid) per holder, checking the log alternates acquire/release of one holder."""
    events, intervals = read_lock_log(log_path), []
    for acquire, release in zip(events[::2], events[1::2], strict=True):
        assert (acquire["event"], release["event"]) == ("acquire", "release"), (acquire, release)
        assert acquire["pid"] == release["pid"]
        intervals.append((acquire["time"], release["time"], acquire["pid"]))
    return intervals


def start_copy(first_run: Path, folder: Path, env: dict) -> tuple[Path, subprocess.Popen]:
    repo = Path(shutil.copytree(first_run, folder / "repo", symlinks=True))
    doit(repo, env, "forget", *RERUN)
    return repo, popen_doit_run(repo, env, *RERUN)


def test_six_pipelines_on_one_device_set_never_overlap_and_all_finish(first_run, tmp_path):
    env = {**make_doit_env(tmp_path), "FAKE_SLOW": "0.05"}
    runs = [start_copy(first_run, tmp_path / f"copy{i}", env) for i in range(4)]
    same_copy = popen_doit_run(runs[0][0], env, *RERUN)
    runs.append((runs[0][0], same_copy))
    for _, run in runs:
        out = run.communicate(timeout=300)[0]
        assert run.returncode == 0, out[-2000:]
    intervals = sorted(held_intervals(tmp_path / "device.lock.log"))
    # Each copy's run holds the lock once per device command (its steps, and unit_test's oracle reruns), the
    # same number of times in every copy; the second doit on copy 0 found everything done and held it never.
    assert len(intervals) >= 4 * len(RERUN) and len(intervals) % 4 == 0, len(intervals)
    assert all(earlier[1] <= later[0] for earlier, later in zip(intervals, intervals[1:], strict=False))
    for repo, _ in runs[:4]:
        assert executed(doit(repo, make_doit_env(tmp_path), "run", *RERUN)) == set()  # state intact


def test_two_device_sets_run_side_by_side(first_run, tmp_path):
    runs = []
    for name in ("card0", "card1"):
        env = {**make_doit_env(tmp_path / name), "FAKE_SLOW": "0.3"}
        (tmp_path / name).mkdir()
        runs.append(start_copy(first_run, tmp_path / name, env))
    for _, run in runs:
        out = run.communicate(timeout=300)[0]
        assert run.returncode == 0, out[-2000:]
    first, second = (held_intervals(tmp_path / name / "device.lock.log") for name in ("card0", "card1"))
    assert any(a[0] < b[1] and b[0] < a[1] for a in first for b in second)  # some device step ran at once
