"""The reference checked against the module: `<op>_reference` on the region's captured inputs vs its captured
results, in a child; a reference that computes something else fails naming both PCCs."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

SHIM = Path(__file__).resolve().parents[2] / "ttnn_sim" / "shim"
sys.path.insert(0, str(SHIM))

import ttnn  # noqa: E402

from pipeline import capture, patching, region_probe  # noqa: E402
from pipeline.steps import _reference_check  # noqa: E402

REPO = Path(__file__).resolve().parents[2]

UNIT_TEST = '''\
import torch


def demo_op_reference(x, weight, top_k):
    """The module's region: logits, top-k, softmax over the kept logits (indices, weights)."""
    values, indices = torch.topk(x @ weight, top_k{extra_k}, dim=-1)
    return indices, torch.softmax({activation}(values), dim=-1)
'''


def demo_op_ttnn(x, weight, top_k, memory_config):
    logits = ttnn.linear(x, weight, memory_config=memory_config)
    values, indices = ttnn.topk(logits, k=top_k, dim=-1, sorted=True)
    return indices, ttnn.softmax(values, dim=-1)


@pytest.fixture(scope="module")
def captured(tmp_path_factory):
    """One capture of demo_op_ttnn on the 2x4 mesh, as patch_verify's run leaves it."""
    root = tmp_path_factory.mktemp("captured")
    mesh = ttnn.open_mesh_device(ttnn.MeshShape(2, 4))
    saved = {k: os.environ.get(k) for k in (patching.ENV_VAR, region_probe.CAPTURE_ENV)}
    os.environ[patching.ENV_VAR] = str(root / "patch.json")
    os.environ[region_probe.CAPTURE_ENV] = str(root / capture.DIRECTORY)
    try:
        torch.manual_seed(0)
        x = ttnn.from_torch(
            torch.randn(1, 1, 32, 64), dtype=ttnn.float32, layout=ttnn.TILE_LAYOUT, device=mesh
        )
        w = ttnn.from_torch(
            torch.randn(1, 1, 64, 16), dtype=ttnn.float32, layout=ttnn.TILE_LAYOUT, device=mesh
        )
        region_probe.probed(demo_op_ttnn)(x, w, 4, ttnn.L1_MEMORY_CONFIG)
    finally:
        ttnn.close_mesh_device(mesh)
        for key, value in saved.items():
            os.environ.pop(key) if value is None else os.environ.__setitem__(key, value)
    return root / capture.DIRECTORY


def _check(tmp_path, captured, activation: str, extra_k: str = "", skip_line: str = "") -> dict:
    package = tmp_path / "demo"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "test_demo_op.py").write_text(
        UNIT_TEST.format(activation=activation, extra_k=extra_k) + skip_line
    )
    out = tmp_path / "out.json"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(SHIM), str(tmp_path)])}
    argv = [sys.executable, "-m", _reference_check.CHILD, "demo.test_demo_op", "demo_op", str(out)]
    done = subprocess.run(
        [*argv, f"decode={captured}"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return json.loads(out.read_text())


def test_a_reference_that_computes_what_the_module_does_passes(tmp_path, captured):
    found = _check(tmp_path, captured, "")
    indices, weights = found["decode"]["pccs"]
    assert indices > 0.99 and weights > 0.99, found
    assert _reference_check.judge(found, []) is None


def test_a_reference_with_another_activation_fails_naming_both_pccs(tmp_path, captured):
    found = _check(tmp_path, captured, "torch.sigmoid")
    weights_pcc = found["decode"]["pccs"][1]
    assert weights_pcc < 0.99, found
    cases = [{"id": "test_demo_op[decode-1-0.999]", "pcc": {"weights": 0.9993}}]
    message = _reference_check.judge(found, cases)
    assert message.startswith("the reference does not compute what the module does: decode output 1: ")
    assert f"PCC {weights_pcc:.6f} < 0.99" in message and "the test's own PCC in decode: 0.999300" in message


def test_a_reference_whose_parameters_the_call_does_not_pass_is_a_problem_not_a_pcc(tmp_path, captured):
    package = tmp_path / "other"
    found = _check(tmp_path, captured, "")
    assert "problem" not in found["decode"]
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "test_demo_op.py").write_text("def demo_op_reference(hidden_states, weight):\n    return 0\n")
    out = tmp_path / "problem.json"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(SHIM), str(tmp_path)])}
    argv = [sys.executable, "-m", _reference_check.CHILD, "other.test_demo_op", "demo_op", str(out)]
    subprocess.run([*argv, f"decode={captured}"], cwd=tmp_path, env=env, check=True, timeout=120)
    problem = json.loads(out.read_text())["decode"]["problem"]
    assert problem.startswith("demo_op_reference takes hidden_states, which the module's call"), problem


def test_the_check_overrides_a_passing_unit_test_and_keeps_an_infra_failure(monkeypatch):
    low = {"prefill": {"pccs": [0.5]}}
    monkeypatch.setattr(_reference_check, "run", lambda job: low)
    verdict, message = _reference_check.apply(None, [], ("passed", "all cases passed"))
    assert verdict == "failed" and "prefill output 0: PCC 0.500000 < 0.99" in message
    verdict, message = _reference_check.apply(None, [], ("failed", "expected values are placeholders"))
    assert message.endswith("; besides: expected values are placeholders")
    assert _reference_check.apply(None, [], ("infra_failure", "device hung")) == (
        "infra_failure",
        "device hung",
    )
    monkeypatch.setattr(_reference_check, "run", lambda job: {"decode": {"problem": "takes hidden_states"}})
    assert _reference_check.apply(None, [], ("passed", "ok")) == ("passed", "ok")


def test_a_reference_with_another_top_k_fails_on_the_weights(tmp_path, captured):
    found = _check(tmp_path, captured, "", extra_k=" + 1")
    assert found["decode"]["index_outputs"] == [0] and found["decode"]["pccs"] == [0.0, 0.0], found
    assert "decode output 1: PCC 0.000000 < 0.99" in _reference_check.judge(found, [])


def test_index_outputs_alone_below_the_floor_do_not_fail():
    """Tied scores may pick another expert; the routing weights beside the indices judge the reference."""
    assert _reference_check.judge({"decode": {"pccs": [0.95, 0.999], "index_outputs": [0]}}, []) is None


def test_a_region_with_ccl_ops_is_not_compared_on_one_device(tmp_path, captured):
    skip = 'SKIP = "Single-device test is not applicable because demo_op includes CCL ops (AllReduce)."\n'
    found = _check(tmp_path, captured, "torch.sigmoid", skip_line=skip)
    assert found["decode"]["problem"].startswith("the region has CCL ops"), found
    assert _reference_check.judge(found, []) is None


def test_with_one_function_per_mode_the_other_modes_parameters_are_none(tmp_path, captured):
    per_mode = (
        "\n\ndef demo_op_ttnn_decode(x, weight, top_k):\n    pass\n"
        "\n\n_plain = demo_op_reference\n\n\ndef demo_op_reference(x, weight, top_k, prefill_only):\n"
        "    assert prefill_only is None\n    return _plain(x, weight, top_k)\n"
    )
    found = _check(tmp_path, captured, "", skip_line=per_mode)
    assert "problem" not in found["decode"] and found["decode"]["pccs"][1] > 0.99, found
