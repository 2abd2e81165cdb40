"""backend=ttnn end to end against a stand-in tt-metal environment, on the fake checkout.

TT_METAL_HOME is a copy of the workspace with a python_env/bin/python that sees the simulator, and a
tt-smi stand-in on PATH lists devices and resets them, so the argv, environment, reset and health paths
a real card takes are the ones under test.
"""

import json
import re
from pathlib import Path

from fakes import doit, executed, make_doit_env, make_fake_repo, make_tt_metal_home, make_tt_smi


def ttnn_env(tmp_path: Path, repo: Path, **smi) -> dict:
    env = make_doit_env(tmp_path)
    del env["PIPELINE_HEALTH_COMMAND"]  # the backend's own: tt-smi -ls
    home = make_tt_metal_home(tmp_path / "tt-metal", repo / "examples/demo")
    return {
        **env,
        **make_tt_smi(tmp_path / "smi", **smi),
        "TT_METAL_HOME": str(home),
        "TT_VISIBLE_DEVICES": "0,1",
    }


def test_whole_graph_passes_with_the_ttnn_backend_and_a_crash_resets_by_machine(tmp_path):
    repo = make_fake_repo(tmp_path / "repo")
    env = ttnn_env(tmp_path, repo)
    result = doit(repo, env, "run", "backend=ttnn", "workspace=" + env["TT_METAL_HOME"])
    assert result.returncode == 0, result.stdout[-3000:]
    assert "index" in executed(result)
    python = str(Path(env["TT_METAL_HOME"]) / "python_env/bin/python")
    # unit_perf runs the user's test_<op>_device_perf, whose run_device_profiler starts tracy itself;
    # the module test is profiled by the pipeline's own tracy command line.
    unit_log = (repo / "artifacts/demo_router/unit_perf/decode/log.txt").read_text()
    assert f"# command: {python} -m pytest " in unit_log
    (module_log,) = (repo / "artifacts/_module_tests").glob("*/module_perf/decode/log.txt")
    log = module_log.read_text()
    assert f"# command: {python} -m tracy -r -p -o " in log
    assert f"# cwd: {env['TT_METAL_HOME']}\n" in log and "# backend: ttnn\n" in log
    assert '"device_set": "0,1"' in log  # the environment key names the cards
    assert re.search(r" -t \d+ --check-exit-code", log)  # a free port for tracy, not a timeout
    assert (
        json.loads((repo / "artifacts/demo_router/unit_test/result.json").read_text())["verdict"] == "passed"
    )

    crash = {**env, "FAKE_CRASH": "1", "TT_SMI_DEVICES": "32"}
    doit(repo, crash, "forget", "unit_test:demo_router")
    failed = doit(
        repo, crash, "run", "backend=ttnn", "workspace=" + env["TT_METAL_HOME"], "unit_test:demo_router"
    )
    assert failed.returncode != 0
    calls = (tmp_path / "smi/calls.txt").read_text().splitlines()
    assert calls == ["tt-smi -ls", "tt-smi -glx_reset", "tt-smi -ls"] * 2  # a Galaxy: after each crash


def test_reset_that_brings_back_fewer_devices_is_an_infrastructure_failure(tmp_path):
    repo = make_fake_repo(tmp_path / "repo")
    env = {**ttnn_env(tmp_path, repo, devices=8, fault="fewer"), "FAKE_CRASH": "1"}
    result = doit(
        repo, env, "run", "backend=ttnn", "workspace=" + env["TT_METAL_HOME"], "unit_test:demo_router"
    )
    assert result.returncode != 0
    outcome = json.loads((repo / "artifacts/demo_router/unit_test/result.json").read_text())
    assert outcome["verdict"] == "infra_failure"
    assert "not retried: health: 7 of 8 devices came back after the reset (missing: 7)" in outcome["message"]


def test_bundled_router_graph_passes_with_the_ttnn_backend(tmp_path):
    """The one bundled-workspace run of this file: the whole router graph, backend=ttnn, stand-in tt-metal."""
    from test_e2e import copy_parts, env_for

    repo = copy_parts(tmp_path / "repo")
    home = make_tt_metal_home(tmp_path / "tt-metal", repo / "examples/gpt_oss_mini")
    env = {k: v for k, v in env_for(repo).items() if k != "PIPELINE_HEALTH_COMMAND"}
    env.update(make_tt_smi(tmp_path / "smi"), TT_METAL_HOME=str(home))
    result = doit(repo, env, "run", "fused_op=router", "backend=ttnn", f"workspace={home}", timeout=1800)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    summary = json.loads((repo / "artifacts/router/summary.json").read_text())
    assert summary["verdict"] == "passed", [s for s in summary["steps"] if s["verdict"] != "passed"]
    (module_log,) = (repo / "artifacts/_module_tests").glob("*/module_perf/decode/log.txt")
    log = module_log.read_text()
    assert f"# command: {home / 'python_env/bin/python'} -m tracy " in log and "# backend: ttnn\n" in log
    unit_log = (repo / "artifacts/router/unit_perf/decode/log.txt").read_text()
    assert f"# command: {home / 'python_env/bin/python'} -m pytest " in unit_log
