"""pipeline.warm: children forked from the warm process are isolated from each other, faults in them do not
harm it, it restarts when what it imported may have changed, and only the sim backend uses it by default."""

import io
import json
import os
import signal
import sys
import textwrap
from pathlib import Path

import pytest

from pipeline import artifacts, runner, warm
from pipeline.backends import Backend, get_backend

PY = sys.executable
REPO = Path(__file__).resolve().parents[2]
# Printed by every child: whether it runs warm (torch already imported by `python -c`: only a fork of the
# warm process has that) and which process it was forked from (the guard's parent: the warm process).
REPORT = """
import json, os, sys
guard = os.getppid()
warm_pid = int(open(f"/proc/{guard}/stat").read().rsplit(")", 1)[1].split()[1])
print("REPORT " + json.dumps({"warm": "torch" in sys.modules, "server": warm_pid}), flush=True)
"""


@pytest.fixture(autouse=True)
def warm_on(monkeypatch):
    monkeypatch.setenv(warm.MODE_ENV, "on")


def run(tmp_path, code="", *, argv=None, env=None, silence=60.0, wall=120.0):
    be = Backend("fake", PY, (), (), None, "test")
    request = runner.Request(
        task="step:op",
        argv=argv or [PY, "-c", textwrap.dedent(code) + REPORT],
        cwd=tmp_path,
        env={**os.environ, **(env or {})},
        log_path=tmp_path / "step" / "log.txt",
    )
    timeouts = runner.Timeouts(wall=wall, silence=silence, reset=30)
    outcome = runner.run(request, be, timeouts, lock_path=tmp_path / "device.lock", out=io.StringIO())
    return outcome, report(outcome.output)


def report(output: str) -> dict:
    lines = [line for line in output.splitlines() if line.startswith("REPORT ")]
    return json.loads(lines[-1][len("REPORT ") :]) if lines else {}


def test_env_global_and_sys_path_of_one_child_are_invisible_to_the_next(tmp_path):
    first, seen = run(
        tmp_path,
        """
        import os, sys, pytest
        os.environ["WARM_LEAK"] = "1"
        pytest.WARM_LEAK = 1
        sys.path.append("/warm-leak")
        """,
    )
    assert first.verdict == artifacts.PASSED and seen["warm"]
    second, again = run(
        tmp_path,
        """
        import os, sys, pytest
        leaks = [os.environ.get("WARM_LEAK"), getattr(pytest, "WARM_LEAK", None), "/warm-leak" in sys.path]
        assert leaks == [None, None, False], leaks
        """,
    )
    assert second.verdict == artifacts.PASSED, second.output
    assert again["warm"] and again["server"] == seen["server"]


def test_child_gets_its_own_argv_env_cwd_and_sys_path(tmp_path):
    code = """
        import os, sys
        assert sys.argv == ["-c", "one", "two"], sys.argv
        print("CWD", os.getcwd(), "PATH0", sys.path[:2], "VALUE", os.environ["STEP_VALUE"], flush=True)
    """
    argv = [PY, "-c", textwrap.dedent(code) + REPORT, "one", "two"]
    outcome, seen = run(tmp_path, argv=argv, env={"STEP_VALUE": "42", "PYTHONPATH": "/step/path"})
    assert outcome.verdict == artifacts.PASSED, outcome.output
    assert seen["warm"]
    assert f"CWD {tmp_path} PATH0 ['', '/step/path'] VALUE 42" in outcome.output


@pytest.mark.parametrize(
    "fault, verdict",
    [
        ("import os; os.abort()", artifacts.INFRA_FAILURE),
        ("import os, signal; os.kill(os.getpid(), signal.SIGKILL)", artifacts.INFRA_FAILURE),
        ("import time; print('hanging', flush=True); time.sleep(600)", artifacts.INFRA_FAILURE),
        ("raise SystemExit(3)", artifacts.FAILED),
    ],
    ids=["crash", "kill-9", "hang", "exit-3"],
)
def test_a_crashed_hung_or_killed_child_leaves_the_warm_process_serving(tmp_path, fault, verdict):
    _, before = run(tmp_path, "")
    outcome, _ = run(tmp_path, fault, silence=2.0)
    assert outcome.verdict == verdict, outcome.message
    after_outcome, after = run(tmp_path, "")
    assert after_outcome.verdict == artifacts.PASSED and after["server"] == before["server"]


def test_the_warm_process_restarts_when_a_dependency_changes(tmp_path, monkeypatch):
    source = tmp_path / "deps" / "module.py"
    source.parent.mkdir()
    source.write_text("VALUE = 1\n")
    monkeypatch.setattr(warm, "DEPENDENCY_DIRS", (source.parent,))
    _, first = run(tmp_path)
    _, same = run(tmp_path)
    source.write_text("VALUE = 22\n")
    _, changed = run(tmp_path)
    assert first["server"] == same["server"] != changed["server"]
    assert changed["warm"]


def test_the_warm_process_restarts_when_the_import_environment_changes(tmp_path):
    _, first = run(tmp_path, env={"HF_HUB_OFFLINE": "1"})
    _, step_only = run(tmp_path, env={"HF_HUB_OFFLINE": "1", "PIPELINE_STEP_DIR": "/elsewhere"})
    _, changed = run(tmp_path, env={"HF_HUB_OFFLINE": "0"})
    assert first["server"] == step_only["server"] != changed["server"]


def test_a_killed_warm_process_is_replaced(tmp_path):
    _, first = run(tmp_path)
    os.kill(first["server"], signal.SIGKILL)
    outcome, second = run(tmp_path)
    assert outcome.verdict == artifacts.PASSED and second["warm"] and second["server"] != first["server"]


def test_a_path_entry_shadowing_a_preloaded_module_gets_a_plain_start(tmp_path):
    shadow = tmp_path / "shadow"
    shadow.mkdir()
    (shadow / "pandas.py").write_text("SHADOW = True\n")
    outcome, seen = run(tmp_path, "import pandas; assert pandas.SHADOW", env={"PYTHONPATH": str(shadow)})
    assert outcome.verdict == artifacts.PASSED, outcome.output
    assert not seen["warm"]


def test_pytest_plugins_given_with_p_load_in_the_warm_child(tmp_path):
    (tmp_path / "warm_probe_plugin.py").write_text(
        "def pytest_configure(config):\n    print('probe plugin configured', flush=True)\n"
    )
    (tmp_path / "test_probe.py").write_text(
        "import sys\n\ndef test_warm():\n    assert 'torch' in sys.modules\n"
    )
    argv = get_backend("sim", tmp_path).pytest_argv(["pytest", "-p", "warm_probe_plugin", "test_probe.py"])
    env = {"PYTHONPATH": f"{REPO}{os.pathsep}{tmp_path}"}
    outcome, _ = run(tmp_path, argv=argv, env=env)
    assert outcome.verdict == artifacts.PASSED, outcome.output
    assert "probe plugin configured" in outcome.output and "1 passed" in outcome.output
    assert "warning" not in outcome.output.lower()  # no "already imported" warnings a cold start lacks


@pytest.mark.parametrize(
    "mode, backend, wanted", [("auto", "sim", True), ("auto", "ttnn", False), ("off", "sim", False)]
)
def test_only_the_sim_backend_is_warm_by_default(monkeypatch, mode, backend, wanted):
    monkeypatch.setenv(warm.MODE_ENV, mode)
    assert warm.wanted(backend) is wanted


def test_a_bad_mode_is_a_one_line_failure_and_nothing_starts(tmp_path, monkeypatch):
    monkeypatch.setenv(warm.MODE_ENV, "sometimes")
    marker = tmp_path / "ran"
    outcome, _ = run(tmp_path, f"open({str(marker)!r}, 'w')")
    assert outcome.verdict == artifacts.FAILED and not marker.exists()
    assert outcome.message == "PIPELINE_WARM_CHILD='sometimes': expected one of auto, on, off"


def test_tracy_and_the_pytest_it_starts_both_run_warm(tmp_path):
    (tmp_path / "test_probe.py").write_text(
        "import logging, sys\n\n"
        "def test_inner_is_warm():\n"
        "    logging.getLogger('probe').info('must not reach stderr: logging is unconfigured')\n"
        "    assert 'transformers.models.gpt_oss.modeling_gpt_oss' in sys.modules\n"
    )
    be = get_backend("sim", tmp_path)
    argv = be.tracy_argv(tmp_path / "profiler", 0, 10, ["pytest", "-s", "test_probe.py"])
    outcome, _ = run(tmp_path, argv=argv, env=be.env(tmp_path))
    assert outcome.verdict == artifacts.PASSED, outcome.output
    assert "1 passed" in outcome.output and "OPs csv generated at:" in outcome.output
    assert "must not reach stderr" not in outcome.output
