"""Acceptance 2 of the workspace: replacing each fused sequence of the module by a call to ``<op>_ttnn``
(by hand, on a copy of the workspace) leaves the module test's PCC lines unchanged — the guide's step 6,
proven once."""

import ast
import re
import shutil
import tomllib
from pathlib import Path

import pytest
from workspace_helpers import REPO, WORKSPACE, requires_sim, run_workspace_pytest

pytestmark = requires_sim

SPECS = REPO / "fused_ops"
MODULE_TEST = "models/demos/gpt_oss_mini/tests/unit/test_modules.py::test_decoder"
SELECT = {"decode": "decode_32 and layer_0", "prefill": "prefill_128 and layer_0"}
PCC_LINE = re.compile(r"(?P<what>.+?) test passed\. Output: (?P<pcc>\S+)")


def splice(source: str, start: str, end: str, call: str, import_line: str) -> str:
    """Replace the statements from the one on ``start``'s line through the one starting on ``end``'s line."""
    assert source.count(start) == 1 and source.count(end) == 1
    start_line = source[: source.index(start)].count("\n") + 1
    end_line = source[: source.index(end)].count("\n") + 1
    statements = [node for node in ast.walk(ast.parse(source)) if isinstance(node, ast.stmt)]
    first = next(node for node in statements if node.lineno == start_line)
    last = next(node for node in statements if node.lineno == end_line)
    lines = source.splitlines(keepends=True)
    indent = lines[first.lineno - 1][: first.col_offset]
    return "".join(
        [
            *lines[: first.lineno - 1],
            f"{indent}{import_line}\n",
            f"{indent}{call}\n",
            *lines[last.end_lineno :],
        ]
    )


def pcc_lines(output: str) -> dict[str, str]:
    """{"<Name>": "<pcc as printed>"} from the loguru-shaped log lines."""
    return {m["what"].split(" - ")[-1]: m["pcc"] for m in map(PCC_LINE.search, output.splitlines()) if m}


@pytest.fixture(scope="module")
def workspace_copy(tmp_path_factory) -> Path:
    copy = tmp_path_factory.mktemp("ws") / "gpt_oss_mini"
    shutil.copytree(WORKSPACE, copy, ignore=shutil.ignore_patterns("__pycache__", "generated", "logs"))
    return copy


@pytest.fixture(scope="module")
def baseline():
    """The unpatched module test per mode, for the modules the three fused ops live in."""
    runs = {}
    for mode, select in SELECT.items():
        run = run_workspace_pytest(MODULE_TEST, "-k", select, "--test-modules", "router,experts")
        assert run.returncode == 0, run.output[-3000:]
        runs[mode] = pcc_lines(run.output)
    return runs


CASES = [(op, mode) for op in ("router", "experts_mlp", "experts") for mode in ("decode", "prefill")]


@pytest.mark.parametrize("op, mode", CASES, ids=[f"{op}-{mode}" for op, mode in CASES])
def test_spliced_module_keeps_the_baseline_pcc(op, mode, workspace_copy, baseline):
    spec = tomllib.loads((SPECS / f"{op}.toml").read_text())
    if mode not in spec["modes"]:
        pytest.skip(f"{op} is decode-only")
    sequence = spec["sequence"][mode]
    unit_test = Path(spec["unit_test"])
    module = ".".join(unit_test.with_suffix("").parts)
    ttnn_function = f"{unit_test.stem.removeprefix('test_')}_ttnn"
    target = workspace_copy / sequence["file"]
    original = (WORKSPACE / sequence["file"]).read_text()
    patched = splice(
        original,
        sequence["start"],
        sequence["end"],
        sequence["call"],
        f"from {module} import {ttnn_function}",
    )
    target.write_text(patched)
    try:
        module_argv = spec["module_test"]["argv"][1:]
        run = run_workspace_pytest(
            *module_argv, "-k", spec["module_test"]["select"][mode], workspace=workspace_copy
        )
    finally:
        target.write_text(original)
    assert run.returncode == 0, run.output[-3000:]
    spliced = pcc_lines(run.output)
    assert spliced, "the module test printed no PCC line"
    for name, pcc in spliced.items():
        assert baseline[mode][name] == pcc, (
            f"{op} {mode}: {name} PCC {pcc} != baseline {baseline[mode][name]}"
        )


def test_a_wrong_call_changes_the_result(workspace_copy, baseline):
    """Control: the copy really runs the spliced module (a call with top-1 routing must not reproduce the
    baseline)."""
    spec = tomllib.loads((SPECS / "router.toml").read_text())
    sequence = spec["sequence"]["decode"]
    wrong_call = sequence["call"].replace("self.top_k", "1")
    target = workspace_copy / sequence["file"]
    original = target.read_text()
    import_line = (
        "from models.demos.gpt_oss_mini.tests.fused_op_unit_tests.test_gpt_oss_mini_router "
        "import gpt_oss_mini_router_ttnn"
    )
    target.write_text(splice(original, sequence["start"], sequence["end"], wrong_call, import_line))
    try:
        run = run_workspace_pytest(
            MODULE_TEST, "-k", SELECT["decode"], "--test-modules", "router", workspace=workspace_copy
        )
    finally:
        target.write_text(original)
    assert run.returncode != 0 or pcc_lines(run.output) != {
        k: v for k, v in baseline["decode"].items() if "Router" in k
    }
