"""Every rerun says why: the progress line, result.json's `why`, and `doit why` (the dry run) agree
(issue 22, acceptance 3). Three kinds of edit on the fake checkout: unit-test code, module code, spec
selection."""

import json
import shutil
from pathlib import Path

import pytest
from fakes import REPO, doit, executed, make_doit_env

from pipeline import why

UNIT_TEST = "examples/demo/models/demo/tests/fused/test_demo_router.py"
MODEL = "examples/demo/models/demo/tt/model.py"
SPEC = "fused_ops/demo_router.toml"
REPORTS = ("summary", "index")  # they rebuild pages from whatever reran; not steps


@pytest.fixture(scope="module")
def first_run(fake_first_run):
    repo, result = fake_first_run
    assert result.returncode == 0, result.stdout[-3000:]
    return repo


@pytest.fixture
def repo(first_run, tmp_path) -> Path:
    copy = Path(shutil.copytree(first_run, tmp_path / "repo", symlinks=True))
    shutil.copy(REPO / "pyproject.toml", copy / "pyproject.toml")  # registers `doit why` as the checkout does
    return copy


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new))


def dry_run(repo: Path) -> dict[str, str]:
    result = doit(repo, make_doit_env(repo.parent), "why")
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[-1].endswith("nothing was run"), lines
    said = dict(line.split(": ", 1) for line in lines[:-1])
    return {task: reason for task, reason in said.items() if task.split(":")[0] not in REPORTS}


def progress_reasons(stdout: str) -> dict[str, str]:
    said = [line.strip().split(": why: ", 1) for line in stdout.splitlines() if ": why: " in line]
    return {task: reason for task, reason in said}


def result_why(repo: Path, task: str) -> str | None:
    for path in (repo / "artifacts").rglob("result.json"):
        data = json.loads(path.read_text())
        if data.get("task") == task:
            return data.get("why")
    raise AssertionError(f"no result.json of {task}")


def run_and_compare(repo: Path) -> dict[str, str]:
    """`doit why`, then `doit run`: the same steps with the same reasons, in the progress lines and in
    each step's result.json. Returns task -> reason."""
    predicted = dry_run(repo)
    before_run = doit(repo, make_doit_env(repo.parent), "run")
    assert before_run.returncode == 0, before_run.stdout[-3000:]
    ran = {t for t in executed(before_run) if t.split(":")[0] not in REPORTS}
    said = progress_reasons(before_run.stdout)
    assert ran == set(predicted), (ran, predicted)
    for task in ran:
        assert said[task] == predicted[task] == result_why(repo, task), task
    assert dry_run(repo) == {}  # and afterwards nothing would run
    return predicted


def test_unit_test_code_edit_names_the_file_and_code(repo):
    edit(repo / UNIT_TEST, "DEVICE_PERF_ITERS = 10\n", "DEVICE_PERF_ITERS = 10\nCODE_EDIT = 1\n")
    reasons = run_and_compare(repo)
    assert len(reasons) == 8
    assert set(reasons.values()) == {f"changed dependency {UNIT_TEST} (code)"}


def test_module_docstring_edit_names_the_file_and_docstrings(repo):
    edit(repo / MODEL, '"""Toy module:', '"""A toy module:')
    reasons = run_and_compare(repo)
    assert {t.split(":")[0] for t in reasons} == {"baseline", "module_perf", "patch_verify"}
    assert set(reasons.values()) == {f"changed dependency {MODEL} (docstrings only)"}


def test_module_code_edit_names_the_file_and_code(repo):
    edit(repo / MODEL, '    op("LayerNormDeviceOperation")', '    op("LayerNormDeviceOperation")\n    x = x')
    reasons = run_and_compare(repo)
    assert {t.split(":")[0] for t in reasons} >= {"baseline", "module_perf", "patch_verify"}
    assert f"changed dependency {MODEL} (code)" in set(reasons.values())
    assert all(MODEL in r or "upstream" in r for r in reasons.values()), reasons


def test_spec_selection_edit_names_the_selection(repo):
    edit(repo / SPEC, 'decode = "decode_32"', 'decode = "decode_32 and not prefill"')
    reasons = run_and_compare(repo)
    assert reasons["patch_verify:demo_router:decode"] == (
        "configuration changed: select (decode_32 and not prefill, was decode_32)"
    )
    new_module_tasks = [t for t in reasons if t.split(":")[0] in ("baseline", "module_perf")]
    assert new_module_tasks and all(
        reasons[t].startswith("no record of an earlier run") for t in new_module_tasks
    )
    assert reasons["config_compare:demo_router:decode"].startswith(
        "changed upstream file artifacts/_module_tests/"
    )


def test_environment_variable_is_named(repo):
    env = {**make_doit_env(repo.parent), "TTNN_SIM_NUM_DEVICES": "8"}
    result = doit(repo, env, "run", "fused_op=demo_router", "unit_test")
    assert (
        "configuration changed: environment key" in progress_reasons(result.stdout)["unit_test:demo_router"]
    )


def test_previous_failure_and_forced(repo):
    step = repo / "artifacts/demo_router/unit_test/result.json"
    data = json.loads(step.read_text())
    step.write_text(json.dumps({**data, "verdict": "failed"}))
    assert dry_run(repo)["unit_test:demo_router"].startswith("previous result failed")
    result = doit(repo, make_doit_env(repo.parent), "run", "-a", "index")
    assert progress_reasons(result.stdout)["index"] == why.FORCED
