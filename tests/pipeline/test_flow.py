"""`doit` on a fake checkout: the whole graph, incrementality, failures, locks, signals, state portability.

One first run is shared (module scope); each test works on its own copy of that checkout, so the copy
starts with doit's state and artifacts in place.
"""

import hashlib
import json
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fakes import doit, executed, make_doit_env, make_fake_repo

from pipeline import doit_support
from pipeline.lock import read_lock_log

UNIT_TEST = "examples/demo/models/demo/tests/fused/test_demo_router.py"
SPEC = "fused_ops/demo_router.toml"


@pytest.fixture(scope="module")
def first_run(fake_first_run):
    return fake_first_run


@pytest.fixture
def repo(first_run, tmp_path) -> Path:
    """A copy of the checkout after the first run (mtimes preserved, as a local copy would)."""
    return Path(shutil.copytree(first_run[0], tmp_path / "repo", symlinks=True))


def tasks_of_graph(repo: Path) -> set[str]:
    argv = [sys.executable, "-m", "doit", "list", "--all", "--quiet"]
    env = make_doit_env(repo.parent)
    listing = subprocess.run(argv, cwd=repo, env=env, capture_output=True, text=True, check=True)
    names = {line.split()[0] for line in listing.stdout.splitlines() if line.strip()}
    return {n for n in names if ":" in n or n == "index"}


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new))


def tree_digest(folder: Path) -> dict:
    """Every file of the workspace but what tests are expected to write (generated/: BenchmarkData JSON)."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and "generated" not in p.parts
    }


def test_first_run_builds_every_step_and_all_pass(first_run):
    repo, result = first_run
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert executed(result) == tasks_of_graph(repo)
    summary = json.loads((repo / "artifacts/demo_router/summary.json").read_text())
    assert summary["verdict"] == "passed"
    assert {s["step"] for s in summary["steps"]} == {
        "baseline",
        "patch_verify",
        "unit_test",
        "unit_perf",
        "module_perf",
        "config_compare",
        "single_device",
        "single_perf",
        "shape_check",
    }
    for step in summary["steps"]:
        assert step["verdict"] == "passed", step
    config = json.loads((repo / "artifacts/demo_router/config_compare/decode/result.json").read_text())
    assert config["figures"]["result"] == "match"
    unit_perf = json.loads((repo / "artifacts/demo_router/unit_perf/decode/result.json").read_text())
    assert unit_perf["figures"]["one_iteration_ops"] == ["BinaryNgDeviceOperation", "MatmulDeviceOperation"]
    figures = unit_perf["figures"]
    assert figures["total_kernel_duration_us"] == pytest.approx(
        0.6 + 0.6
    )  # per iteration, slowest of 2 devices
    assert figures["iterations"] == 10 and figures["window_sum_kernel_duration_us"] == pytest.approx(12.0)
    assert figures["printed_total_kernel_duration_us"] == pytest.approx(
        1.2
    )  # what the user's function logged
    assert "test_demo_router_device_perf printed the same" in unit_perf["message"]
    assert (repo / "artifacts/demo_router/unit_perf/decode/ops_perf_results.csv").is_file()
    assert (repo / "artifacts/demo_router/patch_verify/decode/patch.diff").read_text().startswith("--- a/")
    assert "| [demo_router](demo_router/summary.md) | passed |" in (repo / "artifacts/index.md").read_text()
    log = (repo / "artifacts/demo_router/unit_test/log.txt").read_text().splitlines()
    assert log[0].startswith("[") and "# command: " in log[0] and "# environment key: " in log[3]


def test_second_run_executes_nothing(repo):
    result = doit(repo, make_doit_env(repo.parent), "run")
    assert result.returncode == 0, result.stdout[-2000:]
    assert executed(result) == set()


def test_code_edit_in_unit_test_reruns_only_the_unit_steps(repo):
    (repo / UNIT_TEST).write_text((repo / UNIT_TEST).read_text() + "\nCODE_EDIT = 1\n")
    result = doit(repo, make_doit_env(repo.parent), "run")
    assert result.returncode == 0, result.stdout[-2000:]
    assert executed(result) == {
        "unit_test:demo_router",
        "single_device:demo_router",
        "unit_perf:demo_router:decode",
        "unit_perf:demo_router:prefill",
        "single_perf:demo_router:decode",
        "single_perf:demo_router:prefill",
        "patch_verify:demo_router:decode",
        "patch_verify:demo_router:prefill",
    }


def test_unrelated_workspace_file_reruns_nothing(repo):
    (repo / "examples/demo/models/demo/tt/unused.py").write_text("UNUSED = 2\n")
    (repo / "examples/demo/README.md").write_text("notes\n")
    assert executed(doit(repo, make_doit_env(repo.parent), "run")) == set()


def test_module_selection_change_reruns_that_module_test_and_its_dependants(repo):
    edit(repo / SPEC, 'decode = "decode_32"', 'decode = "decode_32 and not prefill"')
    result = doit(repo, make_doit_env(repo.parent), "run")
    assert result.returncode == 0, result.stdout[-2000:]
    names = executed(result)
    assert {n.split(":")[0] for n in names} == {
        "baseline",
        "module_perf",
        "patch_verify",
        "config_compare",
        "summary",
        "index",
    }
    assert all(n.endswith(":decode") for n in names if n.split(":")[0] not in ("summary", "index"))


def test_environment_key_change_reruns_everything(repo):
    env = {**make_doit_env(repo.parent), "TTNN_SIM_NUM_DEVICES": "8"}
    result = doit(repo, env, "run")
    assert executed(result) == tasks_of_graph(repo)


def test_wrong_ttnn_function_fails_patch_verify_with_both_pccs(repo):
    before = tree_digest(repo / "examples")
    edit(
        repo / UNIT_TEST, "    a = add(x, 1)\n    return mul(a, 2)", "    a = add(x, 2)\n    return mul(a, 2)"
    )
    after_edit = tree_digest(repo / "examples")
    result = doit(repo, make_doit_env(repo.parent), "run")
    assert result.returncode != 0
    verify = json.loads((repo / "artifacts/demo_router/patch_verify/decode/result.json").read_text())
    assert verify["verdict"] == "failed"
    assert "baseline 0.9876" in verify["message"] and "patched 0.5012" in verify["message"]
    assert (
        "TaskFailed" in result.stdout + result.stderr and "patch_verify:demo_router:decode" in result.stdout
    )
    assert tree_digest(repo / "examples") == after_edit != before  # the workspace as the user left it
    # A failed step is not up to date: the next run retries it.
    assert "patch_verify:demo_router:decode" in executed(doit(repo, make_doit_env(repo.parent), "run"))


def test_failing_patch_verify_blocks_the_unit_steps_until_fixed(repo):
    env = make_doit_env(repo.parent)
    good = (repo / UNIT_TEST).read_text()
    edit(
        repo / UNIT_TEST, "    a = add(x, 1)\n    return mul(a, 2)", "    a = add(x, 2)\n    return mul(a, 2)"
    )
    doit(repo, env, "run")
    gated = [
        "unit_test",
        "single_device",
        "unit_perf/decode",
        "unit_perf/prefill",
        "single_perf/decode",
        "config_compare/decode",
        "shape_check/prefill",
    ]
    for step in gated:
        result = json.loads((repo / "artifacts/demo_router" / step / "result.json").read_text())
        assert result["verdict"] == "blocked", (step, result["message"])
    unit = json.loads((repo / "artifacts/demo_router/unit_test/result.json").read_text())
    assert unit["message"].startswith("patch_verify:demo_router:decode failed (guide step 6: do not proceed")
    perf = json.loads((repo / "artifacts/demo_router/unit_perf/decode/result.json").read_text())
    assert (
        perf["message"]
        == "unit_test:demo_router blocked (guide step 8: do not proceed to perf or single-device work until the unit test passes)"
    )
    assert (
        "Running device" not in (repo / "artifacts/demo_router/unit_test").joinpath("result.json").read_text()
    )

    (repo / UNIT_TEST).write_text(good)
    fixed = doit(repo, env, "run")
    assert fixed.returncode == 0, fixed.stdout[-2000:]
    assert executed(fixed) == {
        "patch_verify:demo_router:decode",
        "patch_verify:demo_router:prefill",
        "unit_test:demo_router",
        "single_device:demo_router",
        "unit_perf:demo_router:decode",
        "unit_perf:demo_router:prefill",
        "single_perf:demo_router:decode",
        "single_perf:demo_router:prefill",
        "config_compare:demo_router:decode",
        "config_compare:demo_router:prefill",
        "shape_check:demo_router:decode",
        "shape_check:demo_router:prefill",
        "summary:demo_router",
        "index",
    }


def record_outputs_as_made_by(artifacts_dir: Path, task: str, step_dir: Path) -> None:
    with sqlite3.connect(artifacts_dir / ".doit.db") as db:
        (data,) = db.execute("SELECT task_data FROM doit WHERE task_id = ?", (task,)).fetchone()
        data = json.loads(data)
        data["_values_:"][doit_support.OUTPUTS_VALUE] = doit_support.folder_record(step_dir)
        db.execute("UPDATE doit SET task_data = ? WHERE task_id = ?", (json.dumps(data), task))


def test_a_changed_csv_column_reruns_the_steps_that_read_it(repo):
    csv = repo / "artifacts/demo_router/unit_perf/decode/ops_perf_results.csv"
    text = csv.read_text()
    assert "_DRAM_INTERLEAVED" in text
    csv.write_text(text.replace("_DRAM_INTERLEAVED", "_L1_INTERLEAVED"))  # the figures stay the same
    # As if unit_perf had rerun and written this CSV: record its folder as its own output (a hand edit
    # without this is tampering, which reruns unit_perf itself and restores the CSV).
    record_outputs_as_made_by(repo / "artifacts", "unit_perf:demo_router:decode", csv.parent)
    result = doit(repo, make_doit_env(repo.parent), "run", "--continue", "config_compare", "shape_check")
    assert executed(result) == {"config_compare:demo_router:decode", "shape_check:demo_router:decode"}
    compare = json.loads((repo / "artifacts/demo_router/config_compare/decode/result.json").read_text())
    assert compare["verdict"] == "failed" and "INPUT_0_MEMORY" in compare["message"]


def test_config_difference_fails_config_compare_naming_op_and_field(repo):
    edit(repo / UNIT_TEST, "    return mul(a, 2)", '    return mul(a, 2, memory="L1_INTERLEAVED")')
    after_edit = tree_digest(repo / "examples")
    result = doit(repo, make_doit_env(repo.parent), "run")
    assert result.returncode != 0
    compare = json.loads((repo / "artifacts/demo_router/config_compare/decode/result.json").read_text())
    assert compare["verdict"] == "failed" and compare["figures"]["result"] == "mismatch"
    assert (
        "MatmulDeviceOperation ATTRIBUTES" in compare["message"]
        or "MatmulDeviceOperation INPUT_0_MEMORY" in compare["message"]
    )
    fields = {(m["op"], m["field"]) for m in compare["figures"]["mismatches"]}
    assert ("MatmulDeviceOperation", "OUTPUT_0_MEMORY") in fields
    report = (repo / "artifacts/demo_router/config_compare/decode/report.txt").read_text()
    assert (
        "Result: MISMATCH" in report and "fused=DEV_*_L1_INTERLEAVED module=DEV_*_DRAM_INTERLEAVED" in report
    )
    assert tree_digest(repo / "examples") == after_edit


def test_hang_is_killed_reset_retried_and_reported(repo):
    env = {**make_doit_env(repo.parent), "FAKE_HANG": "1", "PIPELINE_SILENCE_TIMEOUT": "2"}
    (repo / UNIT_TEST).write_text((repo / UNIT_TEST).read_text() + "\nTOUCHED = 1\n")
    started = time.monotonic()
    result = doit(repo, env, "run", "unit_test:demo_router")
    unit = json.loads((repo / "artifacts/demo_router/unit_test/result.json").read_text())
    assert unit["verdict"] == "infra_failure"
    assert [a["reason"] for a in unit["run"]["runner"][0]["attempts"]] == ["hang: no output for 2 s"] * 2
    assert all(a["duration_s"] < 2 + 10 for a in unit["run"]["runner"][0]["attempts"])
    assert time.monotonic() - started < 120
    log = (repo / "artifacts/demo_router/unit_test/log.txt").read_text()
    assert "reset: sim backend has no device to reset (no-op)" in log and "attempt 2 of 2" in log
    assert (
        result.returncode != 0
        and "unit_test:demo_router: infra_failure: infrastructure failure" in result.stdout
    )
    events = read_lock_log(repo.parent / "device.lock.log")
    assert [e["event"] for e in events][-2:] == ["acquire", "release"]


def test_bad_spec_is_one_line_exit_2_and_writes_nothing(fake_repo, doit_env):
    edit(fake_repo / SPEC, 'modes = ["decode", "prefill"]', 'modes = ["decode", "prefil"]')
    result = doit(fake_repo, doit_env, "run", "fused_op=demo_router")
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "Traceback" not in result.stderr + result.stdout
    assert (
        "demo_router.toml: field 'modes': unknown mode 'prefil'; use \"decode\" and/or \"prefill\""
        in result.stderr
    )
    assert not (fake_repo / "artifacts").exists()
    unknown = doit(fake_repo, doit_env, "list", "fused_op=nope")
    assert unknown.returncode == 2 and "doit var 'fused_op': no spec" in unknown.stderr


def test_doit_list_shows_every_step_with_its_guide_step(fake_repo, doit_env):
    result = doit(fake_repo, doit_env, "list")
    assert result.returncode == 0, result.stderr
    lines = {line.split()[0]: line for line in result.stdout.splitlines() if line.strip()}
    for step in (
        "baseline",
        "patch_verify",
        "unit_test",
        "unit_perf",
        "module_perf",
        "config_compare",
        "single_device",
        "single_perf",
        "shape_check",
        "summary",
        "index",
    ):
        assert step in lines and "[guide " in lines[step], result.stdout


def test_info_forget_and_clean_work(repo):
    env = make_doit_env(repo.parent)
    info = doit(repo, env, "info", "unit_test:demo_router")
    assert info.returncode == 0 and "up-to-date" in info.stdout
    assert doit(repo, env, "forget", "unit_test:demo_router").returncode == 0
    assert executed(doit(repo, env, "run", "unit_test:demo_router")) == {"unit_test:demo_router"}
    assert doit(repo, env, "clean", "unit_test:demo_router").returncode == 0
    assert not (repo / "artifacts/demo_router/unit_test").exists()


def test_copied_artifacts_make_a_fresh_clone_up_to_date(first_run, tmp_path):
    clone = make_fake_repo(tmp_path / "clone")  # same content, new mtimes, another path
    shutil.copytree(first_run[0] / "artifacts", clone / "artifacts", copy_function=shutil.copy)  # new mtimes
    result = doit(clone, make_doit_env(tmp_path), "run")
    assert result.returncode == 0, result.stdout[-2000:]
    assert executed(result) == set()


def _start_doit_run(cwd: Path, env: dict, stderr=subprocess.STDOUT) -> subprocess.Popen:
    """`doit run` in the background, its output piped."""
    argv = [sys.executable, "-m", "doit", "run"]
    return subprocess.Popen(argv, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=stderr, text=True)


def test_second_doit_on_the_same_artifacts_waits_then_both_finish(repo):
    env = make_doit_env(repo.parent)
    (repo / UNIT_TEST).write_text((repo / UNIT_TEST).read_text() + "\nCHANGED = 1\n")
    slow = {**env, "FAKE_SLOW": "0.2"}
    first = _start_doit_run(repo, slow, stderr=subprocess.PIPE)
    _wait_for(lambda: _holder_pid(repo / "artifacts/.doit.lock.holder.json") == first.pid, 30)
    second = doit(repo, slow, "run")
    out, err = first.communicate(timeout=600)
    assert first.returncode == 0 and second.returncode == 0, out[-1000:] + second.stdout[-1000:]
    assert "another doit is using" in second.stderr and "waiting for it to finish" in second.stderr
    assert executed(second) == set()  # the first did everything
    assert executed(doit(repo, env, "run")) == set()


def test_two_checkouts_never_hold_the_device_together(first_run, tmp_path):
    env = make_doit_env(tmp_path)  # one device lock for both
    runs = []
    for name in ("a", "b"):
        copy = Path(shutil.copytree(first_run[0], tmp_path / name, symlinks=True))
        (copy / UNIT_TEST).write_text((copy / UNIT_TEST).read_text() + f"\nCHECKOUT = {name!r}\n")
        runs.append(_start_doit_run(copy, env))
    for run in runs:
        out = run.communicate(timeout=600)[0]
        assert run.returncode == 0, out[-2000:]
    events = read_lock_log(tmp_path / "device.lock.log")
    assert len(events) >= 2 * 2 * 8
    holder = None
    for event in events:  # strictly alternating acquire/release: never two holders
        if event["event"] == "acquire":
            assert holder is None, f"{event} while {holder} holds the device"
            holder = (event["pid"], event["task"])
        else:
            assert holder == (event["pid"], event["task"])
            holder = None


def test_sigterm_keeps_doit_state_and_frees_the_locks(repo):
    env = {**make_doit_env(repo.parent), "FAKE_SLOW": "0.5"}
    (repo / UNIT_TEST).write_text((repo / UNIT_TEST).read_text() + "\nSIGTERM_EDIT = 1\n")
    run = _start_doit_run(repo, env)
    lines = []
    for line in run.stdout:  # unit_test is done once unit_perf has started
        lines.append(line)
        if line.startswith(".  unit_perf:demo_router:decode"):
            break
    run.send_signal(signal.SIGTERM)
    rest = run.communicate(timeout=60)[0]
    assert run.returncode != 0
    events = read_lock_log(repo.parent / "device.lock.log")
    assert events[-1]["event"] == "release"
    after = doit(repo, make_doit_env(repo.parent), "run")
    assert after.returncode == 0, after.stdout[-2000:]
    again = executed(after)
    assert "unit_test:demo_router" not in again, "".join(lines) + rest  # saved before the signal
    assert "unit_perf:demo_router:decode" in again  # interrupted: reruns


def test_dropped_profiler_rows_rerun_once_with_a_larger_op_support_count(repo):
    env = {**make_doit_env(repo.parent), "PIPELINE_OP_SUPPORT_COUNT": "5"}
    result = doit(repo, env, "run", "unit_perf:demo_router:decode")
    assert result.returncode == 0, result.stdout[-2000:]
    perf = json.loads((repo / "artifacts/demo_router/unit_perf/decode/result.json").read_text())
    assert perf["verdict"] == "passed" and perf["figures"]["op_support_count"] == 50
    assert perf["notes"] == [
        "unit_perf:demo_router:decode: the device profiler dropped rows with op-support count 5; reran with 50"
    ]
    assert perf["files"]["log_rerun"] == "log.rerun.txt"
    assert perf["figures"]["one_iteration_ops"] == ["BinaryNgDeviceOperation", "MatmulDeviceOperation"]


def test_too_small_trace_region_reports_the_size_to_set(repo):
    env = {**make_doit_env(repo.parent), "FAKE_TRACE_REGION": "1"}
    doit(repo, env, "forget", "unit_perf:demo_router:decode")
    doit(repo, env, "run", "unit_perf:demo_router:decode")
    perf = json.loads((repo / "artifacts/demo_router/unit_perf/decode/result.json").read_text())
    assert perf["verdict"] == "failed"
    assert "set trace_region_size to at least 2818048" in perf["message"]
    assert perf["figures"]["required_trace_region_size"] == 2818048
    assert not (repo / "artifacts/demo_router/unit_perf/decode/ops_perf_results.csv").exists()


def _result_path(repo: Path, task: str) -> Path:
    """A demo_router task's result.json: `<step>:demo_router[:<mode>]` -> <step>[/<mode>]/result.json."""
    parts = task.split(":")
    mode = parts[2] if len(parts) == 3 else ""
    return repo / "artifacts/demo_router" / parts[0] / mode / "result.json"


def test_single_device_skip_is_accepted_only_with_a_ccl_op_in_the_window(repo):
    tasks = ["single_device:demo_router", "single_perf:demo_router:decode", "shape_check:demo_router:decode"]
    doit(repo, make_doit_env(repo.parent), "forget", *tasks)
    claimed = doit(repo, {**make_doit_env(repo.parent), "FAKE_CCL": "1"}, "run", *tasks)
    single = json.loads((repo / "artifacts/demo_router/single_device/result.json").read_text())
    assert claimed.returncode != 0 and single["verdict"] == "failed"
    assert "includes CCL ops (all_reduce)" in single["message"] and "has no CCL op" in single["message"]

    env = {**make_doit_env(repo.parent), "FAKE_CCL": "1", "FAKE_CCL_OP": "1"}
    perf = ["unit_perf:demo_router:decode", "unit_perf:demo_router:prefill"]
    doit(repo, env, "forget", *perf, *tasks)
    doit(repo, env, "run", *perf, *tasks)
    results = {t: json.loads(_result_path(repo, t).read_text()) for t in tasks}
    assert {r["verdict"] for r in results.values()} == {"skipped"}
    assert (
        "accepted: the unit test's device-perf window has AllReduceDeviceOperation"
        in results[tasks[0]]["message"]
    )
    assert "includes CCL ops (all_reduce)" in results["shape_check:demo_router:decode"]["message"]


def _holder_pid(path: Path):
    try:
        return json.loads(path.read_text())["pid"]
    except (OSError, ValueError):
        return None


def _wait_for(condition, seconds):
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)
