"""pipeline.patching: plan the replacement, serve it at import time in a pytest child, never touch the
file."""

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from fakes import doit, make_doit_env, make_fake_repo

from pipeline import capture, patching

REPO = Path(__file__).resolve().parents[2]


def plan(workspace, start="a = add(x, 1)", end="b = mul(a, 2)", call="b = demo_router_ttnn(x)"):
    module, unit_test = "models/demo/tt/model.py", "models/demo/tests/fused/test_demo_router.py"
    return patching.plan(workspace, module, start, end, call, unit_test, "demo_router_ttnn")


def test_plan_replaces_the_statements_with_a_local_import_and_the_call(workspace):
    patch = plan(workspace)
    assert patch.replaced_lines == (8, 9)
    assert (
        "    from models.demo.tests.fused.test_demo_router import demo_router_ttnn\n"
        "    from pipeline.region_probe import probed\n"
        "    demo_router_ttnn = probed(demo_router_ttnn)\n"
        "    b = demo_router_ttnn(x)\n"
    ) in patch.patched_source
    assert "a = add(x, 1)" not in patch.patched_source and "    return b\n" in patch.patched_source
    assert patch.diff.startswith("--- a/models/demo/tt/model.py\n+++ b/models/demo/tt/model.py\n")
    assert "-    a = add(x, 1)\n-    b = mul(a, 2)\n+    from models" in patch.diff


def test_end_anchor_takes_the_whole_compound_statement(workspace):
    model = workspace / "models/demo/tt/model.py"
    model.write_text("def f(x):\n    a = 1\n    for i in range(3):\n        a += i\n    return a\n")
    patch = patching.plan(
        workspace, "models/demo/tt/model.py", "a = 1", "for i in", "a = g(x)", "t/test_g.py", "g"
    )
    assert patch.replaced_lines == (2, 4)
    probe = "    from pipeline.region_probe import probed\n    g = probed(g)\n"
    assert (
        patch.patched_source == f"def f(x):\n    from t.test_g import g\n{probe}    a = g(x)\n    return a\n"
    )


def test_anchors_in_different_blocks_are_refused(workspace):
    model = workspace / "models/demo/tt/model.py"
    model.write_text("def f(x):\n    a = 1\n    if x:\n        b = 2\n    return a\n")
    with pytest.raises(patching.PatchError, match="different blocks"):
        patching.plan(workspace, "models/demo/tt/model.py", "a = 1", "b = 2", "a = g(x)", "t/test_g.py", "g")


def test_patched_module_is_served_in_a_pytest_child_and_the_file_never_changes(workspace, tmp_path):
    model = workspace / "models/demo/tt/model.py"
    before = hashlib.sha256(model.read_bytes()).hexdigest()
    patch = plan(workspace)
    description = tmp_path / "patch.json"
    description.write_text(patch.to_json())
    # The module test asserts forward(3) == 8; make the ttnn function differ so the patch is observable.
    unit = workspace / "models/demo/tests/fused/test_demo_router.py"
    unit.write_text(unit.read_text().replace("    a = add(x, 1)\n    return mul(a, 2)", "    return 0"))
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO), str(workspace)]),
        patching.ENV_VAR: str(description),
    }
    module_test = "models/demo/tests/test_modules.py"
    argv = [sys.executable, "-m", "pytest", "-p", patching.PLUGIN, module_test, "-q", "-s"]
    done = subprocess.run(argv, cwd=workspace, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stdout + done.stderr
    served = Path(str(description) + patching.SERVED_SUFFIX).read_text()
    assert f"{patching.SERVED_MARKER} {model.resolve()} as models.demo.tt.model" in served
    assert "Block test failed. Output: 0.5012" in done.stdout
    assert capture.calls(description) == 2  # one per module-test case: the replaced code ran
    assert hashlib.sha256(model.read_bytes()).hexdigest() == before
    # Without the plugin the same test passes: the patch lives only in the child.
    env.pop(patching.ENV_VAR)
    argv = [sys.executable, "-m", "pytest", module_test, "-q"]
    plain = subprocess.run(argv, cwd=workspace, env=env, capture_output=True, text=True, timeout=120)
    assert plain.returncode == 0, plain.stdout


def test_loader_refuses_a_file_changed_after_planning(workspace, tmp_path):
    patch = plan(workspace)
    (workspace / "models/demo/tt/model.py").write_text("def forward(x):\n    return x\n")
    loader = patching._PatchedLoader(
        "m", patch.file, {**patch.__dict__, "replaced_lines": list(patch.replaced_lines)}
    )
    with pytest.raises(ImportError, match="changed after the patch was planned"):
        loader.exec_module(type(sys)("m"))


NEVER_RUN = """\
from models.demo.tt.fake_device import add, mul, op


def forward(x):
    op("EmbeddingsDeviceOperation")
    b = mul(add(x, 1), 2)
    op("LayerNormDeviceOperation")
    return b


def unused_path(x):
    a = add(x, 1)
    b = mul(a, 2)
    return b
"""


def test_anchors_on_code_the_module_test_never_runs_fail_patch_verify(tmp_path):
    """The patched module is served and the PCC is unchanged, but <op>_ttnn never ran: that proves nothing."""
    repo = make_fake_repo(tmp_path / "repo")
    (repo / "examples/demo/models/demo/tt/model.py").write_text(NEVER_RUN)
    done = doit(repo, make_doit_env(tmp_path), "run", "patch_verify:demo_router:decode")
    result = json.loads((repo / "artifacts/demo_router/patch_verify/decode/result.json").read_text())
    assert done.returncode != 0 and result["verdict"] == "failed", result
    assert result["message"].startswith("the module test never ran the replaced code in decode:"), result
    assert "demo_router_ttnn was called 0 times" in result["message"] and result["figures"]["calls"] == 0


def test_patch_verify_counts_the_calls_and_captures_the_first(tmp_path):
    repo = make_fake_repo(tmp_path / "repo")
    done = doit(repo, make_doit_env(tmp_path), "run", "patch_verify:demo_router:decode")
    step = repo / "artifacts/demo_router/patch_verify/decode"
    result = json.loads((step / "result.json").read_text())
    assert done.returncode == 0 and result["verdict"] == "passed", (result, done.stdout, done.stderr)
    assert result["figures"]["calls"] == 1
    record = capture.read(step)
    assert record["arguments"] == {"x": {"kind": "value", "type": "int", "repr": "3", "rebuild": "3"}}
    assert record["results"][0]["repr"] == "8" and record["freed"] == []
