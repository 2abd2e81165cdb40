"""Extracting the bundled fused ops' regions gives what their hand-written tests and specs have."""

import ast
import tomllib
from pathlib import Path

import pytest

from pipeline.patching import module_name
from pipeline.scaffold import facts
from pipeline.scaffold.extract import extract_file

REPO = Path(__file__).resolve().parents[2]
SPECS = sorted((REPO / "fused_ops").glob("*.toml"))


def _spec(path: Path) -> dict:
    return tomllib.loads(path.read_text())


def _hand_written(spec: dict, function: str) -> ast.FunctionDef:
    test_file = REPO / spec["workspace"] / spec["unit_test"]
    tree = ast.parse(test_file.read_text())
    return next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == function)


def _returned_names(function: ast.FunctionDef) -> list[str]:
    value = function.body[-1].value
    elements = value.elts if isinstance(value, ast.Tuple) else [value]
    return [e.id for e in elements]


def _extract(spec: dict, mode: str):
    sequence = spec["sequence"][mode]
    op = Path(spec["unit_test"]).stem.removeprefix("test_")
    return extract_file(
        REPO / spec["workspace"] / sequence["file"],
        f"{op}_ttnn",
        file=sequence["file"],
        module=module_name(sequence["file"]),
        start=sequence["start"],
        end=sequence["end"],
    )


# The per-mode ops (one function per mode, scaffolded: docs/scaffold.md) have no single hand-written function.
ONE_FUNCTION = [p for p in SPECS if len({t.get("call") for t in _spec(p)["sequence"].values()}) == 1]


def test_every_bundled_op_is_covered():
    assert {p.stem for p in SPECS} >= {"router", "experts", "experts_mlp"}


@pytest.mark.parametrize("spec_path", ONE_FUNCTION, ids=lambda p: p.stem)
def test_extraction_matches_the_hand_written_function_and_the_spec_call(spec_path):
    spec = _spec(spec_path)
    for mode in spec["modes"]:
        extraction = _extract(spec, mode)
        hand_written = _hand_written(spec, extraction.function_name)
        taken = {a.arg for a in hand_written.args.args}
        # the scaffold gives each field a container's only use is (`weights.w1`) a parameter of its own;
        # the hand-written function takes the container
        roots = [p.argument.partition(".")[0] for p in extraction.parameters]
        folded = {
            root if root in taken else p.name for root, p in zip(roots, extraction.parameters, strict=True)
        }
        assert folded == taken
        call = ast.parse(spec["sequence"][mode]["call"]).body[0]
        if isinstance(call, ast.Return):  # the region ends the module's function: its value is returned
            assert extraction.returns == () and extraction.call.startswith("return ")
            call_arguments = call.value.args
        else:
            assert list(extraction.returns) == _returned_names(hand_written)
            targets = call.targets[0].elts if isinstance(call.targets[0], ast.Tuple) else call.targets
            assert list(extraction.returns) == [t.id for t in targets]
            call_arguments = call.value.args
        arguments = {
            root if root in taken else p.argument
            for root, p in zip(roots, extraction.parameters, strict=True)
        }
        assert arguments == {ast.unparse(a) for a in call_arguments}
        compile(extraction.source, extraction.function_name, "exec")


@pytest.mark.parametrize("spec_path", ONE_FUNCTION, ids=lambda p: p.stem)
def test_modes_sharing_a_sequence_share_one_function(spec_path):
    spec = _spec(spec_path)
    extractions = {mode: _extract(spec, mode) for mode in spec["modes"]}
    if len({tuple(sorted(spec["sequence"][m].items())) for m in spec["modes"]}) == 1:
        assert len({e.source for e in extractions.values()}) == 1


def test_ccls_are_found_in_the_region_and_in_the_module_functions_it_calls():
    experts = _extract(_spec(REPO / "fused_ops" / "experts.toml"), "decode")
    assert experts.ccl_ops == ("ttnn.all_to_all_dispatch", "ttnn.all_to_all_combine", "ttnn.all_reduce")
    assert "ttnn.sparse_matmul" in experts.ops  # inside expert_mlp_forward, which the region calls
    assert "from models.demos.gpt_oss_mini.tt.experts import expert_mlp_forward" in experts.imports
    for name in ("router", "experts_mlp"):
        assert _extract(_spec(REPO / "fused_ops" / f"{name}.toml"), "decode").ccl_ops == ()


def test_experts_containers_passed_to_expert_mlp_forward_list_the_fields_it_reads():
    passed = dict(_extract(_spec(REPO / "fused_ops" / "experts.toml"), "decode").passed)
    assert passed["weights"] == ("w1", "w1_bias", "w3", "w3_bias", "w2", "w2_bias")  # read by the callee only
    region_only, callee_only = {"dispatch_devices", "dispatch_axis", "reduce_axis"}, {"swiglu_alpha"}
    assert region_only | callee_only <= set(passed["args"])


def test_experts_routing_inputs_are_built_to_the_contracts_the_moe_ops_read():
    experts = _extract(_spec(REPO / "fused_ops" / "experts.toml"), "decode")
    assert facts.value_contracts(experts) == {
        "expert_mapping": (facts.EXPERT_MAP,),  # dispatch, remap, combine
        "topk_indices": (facts.EXPERT_IDS,),  # to_layout(reshape(topk_indices)) is dispatch's indices
        "remap_topk_mask": (facts.ONES,),  # reshape(repeat(remap_topk_mask)) is remap's scores
    }
    assert facts.value_contracts(_extract(_spec(REPO / "fused_ops" / "experts_mlp.toml"), "decode")) == {
        "sparsity": (facts.ONES,)
    }
