"""unit_test's oracle (issue 19, acceptance 2): one case per mode rerun with <op>_ttnn's outputs perturbed
by pipeline.oracle_plugin must FAIL; a test that still passes is blind and unit_test fails.

The bundled ops run the oracle function directly against the bundled unit tests (no doit: the cases are
collected, the perturbed reruns are the only device work); router's full `doit run` is the session's
shared run (tests/conftest.py bundled_router_run)."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pipeline import logparse
from pipeline.steps import _oracle
from pipeline.steps._common import Job
from pipeline.tasks import Pipeline

REPO = Path(__file__).resolve().parents[2]
ROUTER_TEST = "models/demos/gpt_oss_mini/tests/fused_op_unit_tests/test_gpt_oss_mini_router.py"
ROUTER_ASSERTS = (
    '    assert indices_ok, f"Router indices test failed. PCC: {indices_pcc} < {expected_pcc}"\n',
    '    assert weights_ok, f"Router weights test failed. PCC: {weights_pcc} < {expected_pcc}"\n',
)
DECODE = "test_x[device_params0-mesh_2x4-{}-{}-{}-decode-1-0.99-0.0]"


def case(params: str, outcome="passed") -> dict:
    return {"id": f"test_x[{params}]", "outcome": outcome}


def test_the_cheapest_passed_case_per_mode_is_chosen():
    cases = [
        case("trace-program_cache-random_weights-decode-1-0.99-0.0"),
        case("eager-program_cache-real_weights-decode-1-0.99-0.0"),
        case("eager-program_cache-random_weights-decode-1-0.99-0.0", outcome="failed"),
        case("eager-no_program_cache-random_weights-decode-1-0.99-0.0"),
        case("eager-program_cache-random_weights-decode-1-0.98-0.0"),
        case("eager-program_cache-random_weights-prefill-1024-0.98-0.0"),
        case("eager-program_cache-random_weights-prefill-128-0.98-0.0"),
    ]
    assert (
        _oracle.choose(cases, "decode", 1) == "test_x[eager-program_cache-random_weights-decode-1-0.98-0.0]"
    )
    assert _oracle.choose(cases, "prefill", 128).endswith("prefill-128-0.98-0.0]")
    assert _oracle.choose(cases[:4], "decode", 1) is None


def junit_case(outcome: str, message="", output=""):
    return logparse.Case("test_x[a]", "m", outcome, message, 0.1, output)


@pytest.mark.parametrize(
    "run, case, calls, verdict",
    [
        ("failed", junit_case("failed", "AssertionError: PCC 0.2 < 0.99"), 1, "caught"),
        ("passed", junit_case("passed"), 1, "blind"),
        ("passed", junit_case("passed"), 0, "error"),  # never perturbed: says nothing
        ("failed", junit_case("failed", "OracleError: ORACLE_ERROR: could not perturb"), 1, "error"),
        ("failed", junit_case("error", "fixture 'x' not found"), 1, "error"),
        ("infrastructure_failure", None, 0, "error"),
        ("failed", None, 0, "error"),
    ],
)
def test_only_a_failure_with_perturbed_outputs_is_caught(run, case, calls, verdict):
    assert _oracle.classify(run, "m", case, calls)["verdict"] == verdict


def test_a_blind_mode_fails_the_step_naming_the_case():
    caught = {"case": "test_x[decode]", "verdict": "caught", "message": "AssertionError"}
    blind = {"case": "test_x[prefill-128]", "verdict": "blind", "message": "passed"}
    verdict, message = _oracle.judge("x_ttnn", {"decode": caught, "prefill": blind}, "6/6 cases passed")
    assert verdict == "failed"
    assert message.startswith(
        "the unit test passes when x_ttnn is wrong: its reference or its assertion is blind"
    )
    assert "prefill: test_x[prefill-128]" in message
    assert _oracle.judge("x_ttnn", {"decode": caught}, "6/6 cases passed") == (
        "passed",
        "6/6 cases passed; oracle: decode caught",
    )
    error = {"case": None, "verdict": "error", "message": "no passed decode case"}
    assert _oracle.judge("x_ttnn", {"decode": error}, "")[0] == "failed"


PERTURB = """
import json, torch, ttnn
from pipeline import oracle_plugin
mesh = ttnn.open_mesh_device(ttnn.MeshShape(2, 4))
x = torch.randn(1, 1, 64, 8)
made = {
    "bf16 sharded rows, L1": ttnn.from_torch(x, dtype=ttnn.bfloat16, layout=ttnn.TILE_LAYOUT, device=mesh,
        mesh_mapper=ttnn.ShardTensorToMesh(mesh, dim=2), memory_config=ttnn.L1_MEMORY_CONFIG),
    "uint16 indices replicated": ttnn.from_torch(torch.arange(256).reshape(1, 1, 64, 4) % 32,
        dtype=ttnn.uint16,
        layout=ttnn.TILE_LAYOUT, device=mesh, mesh_mapper=ttnn.ReplicateTensorToMesh(mesh)),
    "bfloat8_b replicated": ttnn.from_torch(x, dtype=ttnn.bfloat8_b, layout=ttnn.TILE_LAYOUT, device=mesh,
        mesh_mapper=ttnn.ReplicateTensorToMesh(mesh)),
    "one integer": ttnn.from_torch(torch.tensor([[7]]), dtype=ttnn.int32, layout=ttnn.ROW_MAJOR_LAYOUT,
        device=mesh, mesh_mapper=ttnn.ReplicateTensorToMesh(mesh)),
}
report = {}
for name, tensor in made.items():
    def props(t):
        return [list(t.shape), str(t.dtype), str(t.layout), str(t.memory_config())]
    composer = ttnn.ConcatMeshToTensor(mesh, dim=0)
    before, expected = props(tensor), ttnn.to_torch(tensor, mesh_composer=composer).float()
    wrong = oracle_plugin.perturb(tensor)
    after = ttnn.to_torch(wrong, mesh_composer=composer).float()
    report[name] = {"same": before == props(wrong), "shape": list(after.shape) == list(expected.shape),
                    "changed": bool((after != expected).any())}
print(json.dumps(report))
"""


def test_the_perturbation_keeps_every_property_but_the_values():
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "ttnn_sim" / "shim")])}
    done = subprocess.run([sys.executable, "-c", PERTURB], env=env, capture_output=True, text=True, cwd=REPO)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report and all(r == {"same": True, "shape": True, "changed": True} for r in report.values()), (
        report
    )


# ---- the bundled ops: the oracle against their unit tests -------------------------------------------


def oracle_job(tmp_path: Path, op: str, workspace: str | None = None) -> Job:
    pipeline = Pipeline.load(
        REPO, fused_op=op, workspace=workspace, artifacts_dir=str(tmp_path / "artifacts")
    )
    spec = pipeline.specs[0]
    step_dir = tmp_path / "unit_test"
    step_dir.mkdir(parents=True)
    ctx = pipeline.ctx.for_spec(spec.timeouts)
    return Job(ctx, spec, "unit_test", f"unit_test:{op}", step_dir, None, (), {}, (), {})


def collected(job: Job) -> list[dict]:
    """The main function's cases as a passed main run lists them (collected, not run: no device work)."""
    spec = job.spec
    argv = job.ctx.backend.pytest_argv([f"{spec.unit_test}::{spec.names.test}", "--collect-only", "-q"])
    env = job.ctx.backend.env(spec.workspace)
    done = subprocess.run(argv, cwd=spec.workspace, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return [
        {"id": line.split("::")[-1], "outcome": "passed"} for line in done.stdout.splitlines() if "::" in line
    ]


@pytest.mark.parametrize("op", ["experts_mlp", "experts", "rms_norm"])
def test_every_bundled_op_and_mode_is_caught(op, tmp_path):
    job = oracle_job(tmp_path, op)
    figures = {}
    verdict, message = _oracle.check(job, collected(job), "passed", "cases passed", figures)
    assert verdict == "passed", message
    assert {mode: r["verdict"] for mode, r in figures["oracle"].items()} == {
        m: "caught" for m in job.spec.modes
    }
    assert all(
        r["perturbed_calls"] >= 1 and "AssertionError" in r["message"] for r in figures["oracle"].values()
    )
    assert message.endswith("oracle: " + ", ".join(f"{m} caught" for m in job.spec.modes))


def test_router_is_caught_in_every_mode_of_the_bundled_run(bundled_router_run):
    repo, _ = bundled_router_run
    result = json.loads((repo / "artifacts/router/unit_test/result.json").read_text())
    oracle = result["figures"]["oracle"]
    assert {mode: r["verdict"] for mode, r in oracle.items()} == {"decode": "caught", "prefill": "caught"}
    assert oracle["decode"]["case"].endswith("eager-program_cache-random_weights-decode-1-0.998-37.5]")
    assert "oracle: decode caught, prefill caught" in result["message"]


def test_a_router_test_without_its_assertions_is_blind_and_fails(tmp_path):
    workspace = Path(shutil.copytree(REPO / "examples/gpt_oss_mini", tmp_path / "ws", symlinks=True))
    test = workspace / ROUTER_TEST
    text = test.read_text()
    assert all(line in text for line in ROUTER_ASSERTS)
    for line in ROUTER_ASSERTS:
        text = text.replace(line, "")
    test.write_text(text)
    job = oracle_job(tmp_path, "router", workspace=str(workspace))
    figures = {}
    verdict, message = _oracle.check(job, collected(job), "passed", "cases passed", figures)
    assert verdict == "failed"
    assert message.startswith(
        "the unit test passes when gpt_oss_mini_router_ttnn is wrong: its reference or its assertion is blind"
    )
    assert "decode: test_gpt_oss_mini_router[" in message
    assert {mode: r["verdict"] for mode, r in figures["oracle"].items()} == {
        "decode": "blind",
        "prefill": "blind",
    }
