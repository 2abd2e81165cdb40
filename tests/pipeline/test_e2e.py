"""Issue 4's acceptance on the BUNDLED workspace (examples/gpt_oss_mini + fused_ops/*.toml), sim backend.

The repo's needed parts are copied once per module into a tmp dir (the real tree is never touched);
`doit run fused_op=router` runs there once, and each test works on its own copy of that result, so it
starts with doit's state and every artifact in place. Task names are compared as sets.
"""

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from fakes import doit, executed, make_doit_env

from pipeline.doit_support import content_digest
from pipeline.lock import read_lock_log

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
PARTS = ("dodo.py", "pipeline", "fused_ops", "examples/gpt_oss_mini", "ttnn_sim")
IGNORE = shutil.ignore_patterns("__pycache__", "generated", "artifacts", "logs", ".pytest_cache")
TESTS_DIR = "examples/gpt_oss_mini/models/demos/gpt_oss_mini/tests/fused_op_unit_tests"
ROUTER_TEST = f"{TESTS_DIR}/test_gpt_oss_mini_router.py"
DEVICE_STEPS = (
    "baseline",
    "patch_verify",
    "unit_test",
    "unit_perf",
    "module_perf",
    "single_device",
    "single_perf",
)
HOST_STEPS = ("config_compare", "shape_check", "summary", "index")
ALL_STEPS = {
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


def env_for(repo: Path, **extra) -> dict:
    """The fakes' doit environment (private device lock, test timeouts), pointed at this copy's pipeline."""
    return {**make_doit_env(repo.parent), "PYTHONPATH": str(repo), **extra}


def copy_parts(dest: Path) -> Path:
    for part in PARTS:
        src = REPO / part
        if src.is_dir():
            shutil.copytree(src, dest / part, ignore=IGNORE)
        else:
            (dest / part).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / part)
    return dest


def run(repo: Path, *args, **extra_env) -> subprocess.CompletedProcess:
    return doit(repo, env_for(repo, **extra_env), *args)


def out(result: subprocess.CompletedProcess) -> str:
    return result.stdout[-4000:] + "\n--- stderr ---\n" + result.stderr[-2000:]


def graph(repo: Path, fused_op: str) -> set[str]:
    argv = [sys.executable, "-m", "doit", "list", "--all", "--quiet", f"fused_op={fused_op}"]
    listing = subprocess.run(argv, cwd=repo, env=env_for(repo), capture_output=True, text=True, check=True)
    names = {line.split()[0] for line in listing.stdout.splitlines() if line.strip()}
    return {n for n in names if ":" in n or n == "index"}


def file_deps(repo: Path, fused_op: str) -> dict[str, list[str]]:
    """task name -> its file_dep (repo-relative), read from the task dicts the copy's pipeline builds."""
    code = (
        "import json, sys\nfrom pathlib import Path\nfrom pipeline.tasks import Pipeline\n"
        f"p = Pipeline.load(Path('.'), fused_op={fused_op!r})\ndeps = {{}}\n"
        f"for step in {list(DEVICE_STEPS + HOST_STEPS)!r}:\n"
        "    for t in p.tasks(step):\n"
        "        if t.get('name') is None and step != 'index':\n            continue\n"
        "        name = t['basename'] + (':' + t['name'] if t.get('name') else '')\n"
        "        deps[name] = list(t.get('file_dep', []))\n"
        "print(json.dumps(deps))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=repo, env=env_for(repo), capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout)


def result_hashes(repo: Path) -> dict[str, str]:
    """Digests as doit's checker sees them (result.json: its stable content, without timings)."""
    root = repo / "artifacts"
    return {
        p.relative_to(repo).as_posix(): content_digest(p)
        for p in root.rglob("*")
        if p.name in ("result.json", "summary.json", "summary.md", "index.md")
    }


def tree_digest(folder: Path) -> dict:
    """Every file of the workspace but what tests are expected to write (generated/: BenchmarkData JSON)."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and not {"generated", "__pycache__", ".pytest_cache", "logs"} & set(p.parts)
    }


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert text.count(old) == 1, old
    path.write_text(text.replace(old, new))


def failed_before(repo: Path, op: str = "router") -> set[str]:
    """Tasks whose last result did not pass: doit reruns them by design (`passed_before`), whatever the edit.
    Empty once the bundled workspace passes; then the sets below are exactly the acceptance's."""
    summary = json.loads((repo / "artifacts" / op / "summary.json").read_text())
    failed = {s["task"] for s in summary["steps"] if s["verdict"] not in ("passed", "skipped")}
    return failed | {"index"} if failed else failed  # the index task fails while an op has a failed step


def step_of(name: str) -> str:
    return name.split(":")[0]


@pytest.fixture
def first_run(bundled_router_run):
    """The session's router run (tests/conftest.py), shared with the mutation corpus."""
    return bundled_router_run


@pytest.fixture
def repo(first_run, tmp_path) -> Path:
    """A copy of the bundled repo after the first router run (mtimes preserved)."""
    return Path(shutil.copytree(first_run[0], tmp_path / "repo", symlinks=True))


def _assert_op_artifacts(repo: Path, op: str, modes: tuple[str, ...], skipped: set[str] = frozenset()):
    root = repo / "artifacts" / op
    assert (root / "summary.json").is_file() and (root / "summary.md").is_file()
    summary = json.loads((root / "summary.json").read_text())
    assert {s["step"] for s in summary["steps"]} == ALL_STEPS
    for step in ("unit_test", "single_device"):
        assert (root / step / "result.json").is_file(), step
        assert step in skipped or (root / step / "log.txt").is_file(), step
    for step in ("patch_verify", "unit_perf", "config_compare", "single_perf", "shape_check"):
        for mode in modes:
            assert (root / step / mode / "result.json").is_file(), (step, mode)
    for mode in modes:
        for step in ("patch_verify", "unit_perf"):
            assert (root / step / mode / "log.txt").is_file(), (step, mode)
        assert (root / "unit_perf" / mode / "ops_perf_results.csv").is_file(), mode
        assert (root / "patch_verify" / mode / "patch.diff").read_text().startswith("--- a/")
        if "single_perf" not in skipped:
            assert (root / "single_perf" / mode / "ops_perf_results.csv").is_file(), mode
    modules = list((repo / "artifacts/_module_tests").glob(f"*/*/{modes[0]}/result.json"))
    assert {p.parent.parent.name for p in modules} >= {"baseline", "module_perf"}
    assert list((repo / "artifacts/_module_tests").glob(f"*/module_perf/{modes[0]}/ops_perf_results.csv"))
    return summary


def test_first_router_run_builds_every_step_for_both_modes(first_run):
    repo, result = first_run
    summary = _assert_op_artifacts(repo, "router", ("decode", "prefill"))
    assert executed(result) == graph(repo, "router")
    failing = {
        s["step"] + ":" + str(s.get("mode")): s.get("message")
        for s in summary["steps"]
        if s["verdict"] != "passed"
    }
    assert failing == {}, failing
    assert summary["verdict"] == "passed"
    assert result.returncode == 0, out(result)
    compare = json.loads((repo / "artifacts/router/config_compare/decode/result.json").read_text())
    assert compare["figures"]["result"] == "match"
    assert "| [router](router/summary.md) | passed |" in (repo / "artifacts/index.md").read_text()


def test_second_run_and_an_unrelated_workspace_file_execute_nothing(repo):
    failed = failed_before(repo)
    result = run(repo, "run", "fused_op=router")
    assert result.returncode == 0 or failed, out(result)
    assert executed(result) == failed
    (repo / "examples/gpt_oss_mini/models/demos/gpt_oss_mini/tt/unused_notes.py").write_text("UNUSED = 2\n")
    (repo / "examples/gpt_oss_mini/NOTES.md").write_text("notes\n")
    result = run(repo, "run", "fused_op=router")
    assert executed(result) == failed_before(repo), out(result)


def test_code_edit_in_unit_test_reruns_the_unit_steps_and_only_changed_hosts(repo):
    before, failed = result_hashes(repo), failed_before(repo)
    (repo / ROUTER_TEST).write_text(
        (repo / ROUTER_TEST).read_text() + "\nEDITED = 1  # code, not a comment\n"
    )
    result = run(repo, "run", "fused_op=router")
    assert result.returncode == 0 or failed, out(result)
    changed = {f for f, h in result_hashes(repo).items() if before.get(f) != h}
    device = {"unit_test:router", "single_device:router"} | {
        f"{s}:router:{m}" for s in ("unit_perf", "patch_verify", "single_perf") for m in ("decode", "prefill")
    }
    deps = file_deps(repo, "router")
    hosts = {t for t, d in deps.items() if step_of(t) in HOST_STEPS and set(d) & changed}
    names = executed(result)
    assert names == device | hosts | failed, (names, changed)
    assert not {n for n in names if step_of(n) in ("baseline", "module_perf")}


def test_module_selection_change_reruns_baseline_patch_verify_module_perf_and_dependants(repo):
    old_graph = graph(repo, "router")
    before, failed = result_hashes(repo), failed_before(repo)
    edit(
        repo / "fused_ops/router.toml", 'decode = "decode_32 and layer_0"', 'decode = "layer_0 and decode_32"'
    )
    result = run(repo, "run", "fused_op=router")
    assert result.returncode == 0 or failed, out(result)
    names = executed(result)
    new_graph = graph(repo, "router")
    decode_modules = {
        n for n in new_graph if step_of(n) in ("baseline", "module_perf") and n.endswith(":decode")
    }
    assert {step_of(n) for n in decode_modules} == {"baseline", "module_perf"}
    changed = {f for f, h in result_hashes(repo).items() if before.get(f) != h}
    deps = file_deps(repo, "router")
    hosts = {t for t, d in deps.items() if step_of(t) in HOST_STEPS and set(d) & changed}
    assert "config_compare:router:decode" in hosts  # it depends on the (new) module_perf result
    assert names == decode_modules | {"patch_verify:router:decode"} | hosts | failed, (names, changed)
    assert new_graph - old_graph == decode_modules  # the module-test tasks are keyed by their command


def test_environment_key_change_makes_everything_stale(repo):
    """doit's own up-to-date check (the one `run` applies) via `doit list --status`, to spare CI a full
    rerun."""

    def stale(**extra_env) -> set[str]:
        listing = doit(
            repo, env_for(repo, **extra_env), "list", "--all", "--status", "--quiet", "fused_op=router"
        )
        assert listing.returncode == 0, out(listing)
        rows = [line.split() for line in listing.stdout.splitlines() if line.strip()]
        return {name for status, name in rows if status == "R" and (":" in name or name == "index")}

    assert stale() == failed_before(repo)
    assert stale(TTNN_SIM_E2E_KEY="1") == graph(repo, "router")  # TTNN_SIM_* variables are in the key


def test_config_difference_fails_config_compare_naming_op_and_field(repo, visit):
    # The module's linear writes to L1 in decode; the unit test's copy now writes to DRAM.
    edit(
        repo / ROUTER_TEST,
        "logits = ttnn.linear(x, weight, bias=bias, memory_config=memory_config)",
        "logits = ttnn.linear(x, weight, bias=bias, memory_config=ttnn.DRAM_MEMORY_CONFIG)",
    )
    after_edit = tree_digest(repo / "examples")
    result = run(repo, "run", "config_compare:router:decode")
    assert result.returncode != 0
    compare = json.loads((repo / "artifacts/router/config_compare/decode/result.json").read_text())
    assert compare["verdict"] == "failed" and compare["figures"]["result"] == "mismatch", compare
    fields = {(m["op"], m["field"]) for m in compare["figures"]["mismatches"]}
    assert ("MatmulDeviceOperation", "OUTPUT_0_MEMORY") in fields, fields  # ttnn.linear's output
    assert "MatmulDeviceOperation OUTPUT_0_MEMORY" in compare["message"], compare["message"]
    report = (repo / "artifacts/router/config_compare/decode/report.txt").read_text()
    assert "Result: MISMATCH" in report and "L1_INTERLEAVED" in report and "DRAM_INTERLEAVED" in report
    run(repo, "run", "-s", "summary:router", "index")  # the op page of what is there now
    page = visit(repo / "artifacts/router/summary.html").page
    table = page.locator('table.config-compare[data-task="config_compare:router:decode"]')
    highlighted = table.locator("td.mismatch").all_inner_texts()
    assert any("L1_INTERLEAVED" in t for t in highlighted) and any(
        "DRAM_INTERLEAVED" in t for t in highlighted
    )
    assert tree_digest(repo / "examples") == after_edit


def test_wrong_ttnn_function_fails_patch_verify_with_both_pccs(repo):
    before = tree_digest(repo / "examples")
    edit(repo / ROUTER_TEST, "    return indices, weights\n", "    return indices, ttnn.exp(weights)\n")
    after_edit = tree_digest(repo / "examples")
    assert after_edit != before
    result = run(repo, "run", "patch_verify:router:decode")
    assert result.returncode != 0
    verify = json.loads((repo / "artifacts/router/patch_verify/decode/result.json").read_text())
    assert verify["verdict"] == "failed", verify
    baseline = next((repo / "artifacts/_module_tests").glob("*/baseline/decode/result.json"))
    baseline_pccs = {p["name"]: p["text"] for p in json.loads(baseline.read_text())["figures"]["pcc"]}
    differing = [p for p in verify["figures"]["pcc"] if not p["equal"]]
    assert differing, verify
    for pcc in differing:
        assert pcc["baseline"] == baseline_pccs[pcc["name"]]
        for value in (pcc["baseline"], pcc["patched"]):  # messages show PCCs to 4 decimals; figures keep them
            assert f"{float(value):.4f}" in verify["message"], (value, verify["message"])
    assert tree_digest(repo / "examples") == after_edit


def test_hang_is_killed_reset_retried_and_reported(repo):
    """The fault is part of the environment key, so the first device step on the way (the decode baseline)
    hangs; it is killed, reset, retried, reported; everything after it is blocked, not run."""
    started = time.monotonic()
    result = run(repo, "run", "unit_test:router", TTNN_SIM_FAULT="hang@3", PIPELINE_SILENCE_TIMEOUT="3")
    elapsed = time.monotonic() - started
    (baseline_dir,) = (repo / "artifacts/_module_tests").glob("test_decoder_router-*/baseline/decode")
    baseline = json.loads((baseline_dir / "result.json").read_text())
    assert baseline["verdict"] == "infra_failure", baseline
    attempts = baseline["run"]["runner"][-1]["attempts"]
    assert [a["reason"] for a in attempts] == ["hang: no output for 3 s"] * 2
    assert all(a["duration_s"] < 3 + 10 for a in attempts), attempts
    files = baseline["files"]  # the hang may come while collecting (collect.txt) or running (log.txt)
    log = (baseline_dir / files.get("log", files["collect"])).read_text()
    assert "reset: sim backend has no device to reset (no-op)" in log and "attempt 2 of 2" in log
    unit = json.loads((repo / "artifacts/router/unit_test/result.json").read_text())
    assert unit["verdict"] == "blocked" and "guide step 6" in unit["message"]
    assert result.returncode != 0 and "unit_test:router: blocked" in result.stdout
    events = read_lock_log(repo.parent / "device.lock.log")
    assert [e["event"] for e in events][-2:] == ["acquire", "release"]
    assert elapsed < 300


def test_copied_artifacts_make_a_fresh_copy_up_to_date(first_run, tmp_path):
    # The same files (not the live tree, which may have moved on), new mtimes, another path.
    ignore = shutil.ignore_patterns("artifacts", "__pycache__", "generated", ".pytest_cache")
    clone = Path(shutil.copytree(first_run[0], tmp_path / "clone", ignore=ignore, copy_function=shutil.copy))
    shutil.copytree(first_run[0] / "artifacts", clone / "artifacts", copy_function=shutil.copy)
    failed = failed_before(clone)
    result = run(clone, "run", "fused_op=router")
    assert result.returncode == 0 or failed, out(result)
    assert executed(result) == failed


def _write_checkpoint(folder: Path, workspace: Path) -> Path:
    """A tiny GptOss checkpoint (save_pretrained) with the workspace's toy config, written in a child python;
    router/experts/sinks on a trained model's scale (not the 0.02 init), as tests/workspace does."""
    code = (
        "import sys, torch\nfrom transformers import GptOssConfig, GptOssForCausalLM\n"
        f"sys.path.insert(0, {str(workspace)!r})\n"
        "from models.demos.gpt_oss_mini.reference.model import TINY_CONFIG\n"
        "torch.manual_seed(1234)\nmodel = GptOssForCausalLM(GptOssConfig(**TINY_CONFIG))\n"
        "with torch.no_grad():\n    for name, p in model.named_parameters():\n"
        "        if any(k in name for k in ('router', 'experts', 'sinks')):\n            p.normal_(0, 0.5)\n"
        f"model.save_pretrained({str(folder)!r})\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, timeout=300)
    return folder


def test_hf_model_set_profiles_the_random_weights_case_only(tmp_path):
    """test_<op>_device_perf as unit_perf runs it, with and without HF_MODEL: with it, the real-weights cases
    exist too, yet the profiled window (its selection lives in the workspace) is the random-weights case,
    so the pipeline's per-iteration figures and the function's printout are the same both times."""
    from pipeline import backends, logparse
    from pipeline.steps import _window

    repo = copy_parts(tmp_path / "repo")
    workspace = repo / "examples/gpt_oss_mini"
    checkpoint = _write_checkpoint(tmp_path / "checkpoint", workspace)
    figures = []
    for name, extra in (("random", {}), ("hf_model", {"HF_MODEL": str(checkpoint)})):
        profiler_dir = tmp_path / name / "profiler"
        profiled = {"TT_METAL_PROFILER_DIR": str(profiler_dir), "TRACY_PORT": str(backends.free_port())}
        env = backends.get_backend("sim", workspace).env(workspace, {**profiled, **extra})
        test = f"{ROUTER_TEST.split('/', 2)[2]}::test_gpt_oss_mini_router_device_perf"
        pytest_cmd = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider"]
        argv = [*pytest_cmd, test, "-k", "decode", "--capture=tee-sys"]
        done = subprocess.run(argv, cwd=workspace, env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stdout[-3000:]
        (csv,) = logparse.ops_csv_paths(done.stdout + done.stderr)
        assert Path(csv).resolve().is_relative_to(profiler_dir.resolve())
        ours = _window.window_figures(csv, 10)
        totals = (ours["total_kernel_duration_us"], ours["total_op_to_op_latency_us"])
        figures.append((*totals, ours["one_iteration_ops"], logparse.device_perf_per_iteration(done.stdout)))
    assert figures[0] == figures[1]


def test_experts_mlp_and_experts_first_run(tmp_path):
    repo = copy_parts(tmp_path / "repo")
    result = run(repo, "run", "fused_op=experts_mlp,experts")
    assert executed(result) == graph(repo, "experts_mlp,experts")
    mlp = _assert_op_artifacts(repo, "experts_mlp", ("decode", "prefill"))
    experts = _assert_op_artifacts(repo, "experts", ("decode",), skipped={"single_device", "single_perf"})
    failing = {
        (op, s["step"], s.get("mode")): s.get("message")
        for op, summ in (("experts_mlp", mlp), ("experts", experts))
        for s in summ["steps"]
        if s["verdict"] not in ("passed", "skipped")
    }
    assert failing == {}, failing
    assert {s["verdict"] for s in mlp["steps"]} == {"passed"}
    skipped = {s["step"] for s in experts["steps"] if s["verdict"] == "skipped"}
    assert skipped == {"single_device", "single_perf", "shape_check"}, experts["steps"]
    assert "CCL" in (repo / "artifacts/experts/single_device/result.json").read_text()
    assert "decode only" in (repo / "artifacts/experts/summary.md").read_text().lower()
    assert result.returncode == 0, out(result)
    assert os.path.isfile(repo / "artifacts/index.md")
