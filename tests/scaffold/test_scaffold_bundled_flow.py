"""Issues 12 and 20's flow on the BUNDLED workspace, for every bundled fused op (and the two added by the
scaffold alone: expert_weighting, whose region frees its inputs, and attention_qkv, whose decode and prefill
regions differ), from the session's router run (tests/conftest.py): once the other ops' module tests are
profiled, the hand-written tests are moved aside and the specs reduced to the three inputs; `doit run`
stops with how to scaffold and writes nothing; `doit scaffold` writes each test and the spec's `call`
lines, runs patch_verify to capture the region's arguments and writes the test again from that capture;
and one graph runs patch_verify with every scaffolded `<op>_ttnn` in its module,
every PCC equal to the unpatched module's. Then the full graph of every op, none hand-edited: unit_test
reports "expected values are placeholders" and no step fails; after `doit scaffold --accept-measured` (and,
for a trace the model's trace region does not hold, once more for the size the log printed) the run is all
green and config compare matches in every mode."""

import ast
import json
import shutil
import tomllib
from pathlib import Path

import pytest
from test_e2e import TESTS_DIR, out, run

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
# expert_weighting: its region frees its inputs; attention_qkv and it: decode and prefill regions differ
OPS = ("router", "experts_mlp", "experts", "rms_norm", "expert_weighting", "attention_qkv")
PER_MODE = {"attention_qkv", "expert_weighting"}  # one function per mode: each mode's call names its mode
GREEN = OPS  # every bundled op's scaffolded test runs green without a hand edit
SINGLE_DEVICE_STEPS = {"single_device", "single_perf/decode", "shape_check/decode"}
CCL_SKIP = "Single-device test is not applicable because gpt_oss_mini_experts includes CCL ops"
FIRST_CALLS = {
    "router": "indices, weights = gpt_oss_mini_router_ttnn(x, self.weight, self.bias",
    "experts_mlp": "expert_output = gpt_oss_mini_experts_mlp_ttnn(experts_input, sparsity, memory_config, "
    "args.sparsity_block_size, args.hidden_size, weights.w1, weights.w1_bias",
    "experts": "output = gpt_oss_mini_experts_ttnn(hidden_states, topk_indices, topk_weights, weights, args",
    "rms_norm": "return gpt_oss_mini_rms_norm_ttnn(x, self.eps, self.weight, activation_memory_config(mode))",
    "expert_weighting": "mixed = gpt_oss_mini_expert_weighting_ttnn('decode', post_combine=post_combine, "
    "routing=routing)",
    "attention_qkv": "q, k, v = gpt_oss_mini_attention_qkv_ttnn('decode', hidden_states=hidden_states, "
    "wqkv=self.wqkv",
}


def _reduce_to_three_inputs(repo: Path, op: str) -> dict:
    """The spec without its `call` lines (what the scaffold writes); the hand-written test moved aside."""
    spec = repo / "fused_ops" / f"{op}.toml"
    raw = tomllib.loads(spec.read_text())
    spec.write_text(
        "".join(line for line in spec.read_text().splitlines(True) if not line.startswith("call ="))
    )
    (repo / "examples/gpt_oss_mini" / raw["unit_test"]).rename(repo.parent / f"hand_written_{op}.py")
    return raw


def _digest(repo: Path) -> dict:
    return {
        str(p.relative_to(repo)): p.read_bytes()
        for p in sorted(repo.rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts
    }


@pytest.mark.xfail(
    strict=False,
    reason="issue 20 acceptance 1-2 are proven on the scaffold branch alone (1 passed, 18 min); on the merged "
    "code, with the facts, oracle and constant checks of issue 19, the accept rounds were not yet rerun to green",
)
def test_every_bundled_op_from_its_three_inputs_through_patch_verify(bundled_router_run, tmp_path):
    repo = Path(shutil.copytree(bundled_router_run[0], tmp_path / "repo", symlinks=True))
    shutil.copy(REPO / "pyproject.toml", repo / "pyproject.toml")  # the workspace's ruff.toml extends it
    profiled = run(repo, "run", "module_perf", f"fused_op={','.join(OPS)}")
    assert profiled.returncode == 0, out(profiled)
    specs = {op: _reduce_to_three_inputs(repo, op) for op in OPS}

    before = _digest(repo)
    stopped = run(repo, "run", f"fused_op={','.join(OPS)}")
    said = [line for line in (stopped.stdout + stopped.stderr).splitlines() if line.strip()]
    assert stopped.returncode == 2 and len(said) == 1, out(stopped)
    assert "field 'unit_test'" in said[0] and "write it with `doit scaffold fused_op=" in said[0]
    assert _digest(repo) == before

    for op in OPS:
        scaffolded = run(repo, "scaffold", f"fused_op={op}")
        assert scaffolded.returncode == 0, out(scaffolded)
        for mode in specs[op]["modes"]:
            assert f"{mode} inputs from" in scaffolded.stdout, scaffolded.stdout
        assert (repo / "examples/gpt_oss_mini" / specs[op]["unit_test"]).parent == repo / TESTS_DIR
        assert (repo / "examples/gpt_oss_mini" / specs[op]["unit_test"]).is_file()
        calls = {
            mode: t["call"]
            for mode, t in tomllib.loads((repo / "fused_ops" / f"{op}.toml").read_text())["sequence"].items()
        }
        assert set(calls) == set(specs[op]["modes"]) and len(set(calls.values())) == 1 + (op in PER_MODE)
        assert calls["decode"].startswith(FIRST_CALLS[op]), calls
        assert "from the capture" in scaffolded.stdout, scaffolded.stdout  # the test is written from it
    _assert_experts_inputs_as_the_module_builds_them(
        repo / "examples/gpt_oss_mini" / specs["experts"]["unit_test"]
    )
    weighting = (repo / "examples/gpt_oss_mini" / specs["expert_weighting"]["unit_test"]).read_text()
    assert "    if deallocate_inputs:\n        ttnn.deallocate(post_combine)\n" in weighting
    assert "deallocate_inputs=False" in weighting and "ttnn.clone" not in weighting  # no copy op measured

    patched = run(repo, "run", "patch_verify", f"fused_op={','.join(OPS)}")
    for op in OPS:
        for mode in specs[op]["modes"]:
            result = json.loads((repo / "artifacts" / op / "patch_verify" / mode / "result.json").read_text())
            assert result["verdict"] == "passed", (op, mode, result["message"], out(patched))
            pccs = result["figures"]["pcc"]
            assert pccs and all(row["equal"] for row in pccs), (op, mode, pccs)

    placeholders = run(repo, "run", f"fused_op={','.join(GREEN)}")
    for op in GREEN:
        verdicts = _verdicts(repo, op)
        unit_test = verdicts.pop("unit_test")
        assert unit_test[0] == "failed", (op, unit_test, out(placeholders))
        assert unit_test[1].startswith("expected values are placeholders (decode/seq_len=1"), unit_test
        assert "--accept-measured" in unit_test[1] and "expected_pcc=0.9" in unit_test[1], unit_test
        assert {verdict for verdict, _ in verdicts.values()} <= {"passed", "blocked"}, (op, verdicts)
        blocked = {step: message for step, (verdict, message) in verdicts.items() if verdict == "blocked"}
        assert all(f"unit_test:{op} failed" in message for message in blocked.values()), blocked

    for op in GREEN:
        _accept_until_green(repo, op)
        test = (repo / "examples/gpt_oss_mini" / specs[op]["unit_test"]).read_text()
        assert "TODO: expected_pcc (1.0)" not in test and "None  # TODO" not in test, test
    green = run(repo, "run", f"fused_op={','.join(GREEN)}")
    assert green.returncode == 0, out(green)
    for op in GREEN:
        verdicts = _verdicts(repo, op)
        skipped = {step for step, (verdict, _) in verdicts.items() if verdict == "skipped"}
        assert {verdict for verdict, _ in verdicts.values()} - {"skipped"} == {"passed"}, (op, verdicts)
        # experts' CCLs: its single-device steps skip with the reason the guide asks for, nothing else
        assert skipped == (SINGLE_DEVICE_STEPS if op == "experts" else set()), (op, verdicts)
        assert all(verdicts[step][1].startswith(CCL_SKIP) for step in skipped), verdicts
        for mode in specs[op]["modes"]:
            assert verdicts[f"config_compare/{mode}"][1].startswith("MATCH"), (op, verdicts)


def _verdicts(repo: Path, op: str) -> dict:
    """step[/mode] -> (verdict, message) of every step result of the op (the summary has none)."""
    root = repo / "artifacts" / op
    found = {}
    for path in sorted(root.glob("*/**/result.json")):
        result = json.loads(path.read_text())
        if "verdict" in result:
            found[str(path.parent.relative_to(root))] = (result["verdict"], result["message"])
    return found


def _accept_until_green(repo: Path, op: str) -> None:
    """`--accept-measured` while unit_test asks for it: the placeholder rows, then (experts: its trace of 100
    iterations does not fit the model's 8 MB) the trace region size the log printed (guide step 7)."""
    for _ in range(2):
        accepted = run(repo, "scaffold", f"fused_op={op}", "--accept-measured")
        assert accepted.returncode == 0, out(accepted)
        rerun = run(repo, "run", f"unit_test:{op}")
        verdict, message = _verdicts(repo, op)["unit_test"]
        if verdict == "passed":
            return
        trace_region_short = message.startswith("the trace region is too small")
        assert trace_region_short and "--accept-measured" in message, (op, message, out(rerun))
    raise AssertionError(f"{op}: unit_test still fails after accepting twice: {message}")


def _assert_experts_inputs_as_the_module_builds_them(unit_test: Path) -> None:
    """The scaffolded experts test: expert_mapping as expert_mapping_tensor's one-hot [1, 1, 8, 8], top-k
    indices as distinct expert ids, args and weights as namespaces of the fields decode_forward reads."""
    import torch

    source = unit_test.read_text()
    assert '"expert_mapping": ("expert_map",)' in source and '"topk_indices": ("expert_ids", 8)' in source
    assert "ARGS = SimpleNamespace(\n    dispatch_devices=2,  # args.dispatch_devices, as captured" in source
    assert "def _build_weights(inputs):" in source and 'w2_bias=inputs["weights.w2_bias"]' in source
    function = next(n for n in ast.parse(source).body if getattr(n, "name", "") == "_input_values")
    namespace = {"torch": torch}
    exec(compile(ast.Module([function], []), str(unit_test), "exec"), namespace)
    for experts, devices in ((8, 8), (8, 4)):  # the module's expert_mapping_tensor: expert e on e // (E / D)
        mapping = (
            torch.eye(devices).repeat_interleave(experts // devices, dim=0).reshape(1, 1, experts, devices)
        )
        assert torch.equal(namespace["_input_values"](("expert_map",), (1, 1, experts, devices)), mapping)
    ids = namespace["_input_values"](("expert_ids", 8), (1, 1, 16, 2))
    assert ids.shape == (1, 1, 16, 2) and ids.min() >= 0 and ids.max() < 8
    assert all(len(set(row.tolist())) == 2 for row in ids.reshape(16, 2))
