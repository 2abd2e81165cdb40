"""`doit scaffold fused_op=NAME` on a copy of the bundled workspace with specs holding only the three inputs
(issue 12, acceptance 3 and 4): the test file is written once, ruff-clean, imports nothing from `pipeline`,
and skips its single-device tests naming the CCLs when the sequence has any."""

import ast
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from doit.doit_cmd import DoitMain

from pipeline.scaffold import expected, testgen
from ttnn_sim.profiler import TENSOR_FIELDS

REPO = Path(__file__).resolve().parents[2]
UNIT_TESTS = "examples/gpt_oss_mini/models/demos/gpt_oss_mini/tests/fused_op_unit_tests"
FUSED_OPS_REFERENCE = "models.demos.gpt_oss_mini.reference.fused_ops"
PLUGIN = {"COMMAND": {"scaffold": "pipeline.scaffold.command:Scaffold"}}
GROUP = TENSOR_FIELDS  # a tensor's columns in an ops_perf_results CSV: INPUT_<i>_<field>
ROUTER_CSV = [  # the router module's run on one device: reshape, linear (x, weight, bias), topk, softmax
    # (OP CODE, each input tensor's W Z Y X LAYOUT DATATYPE MEMORY)
    ("ReshapeViewDeviceOperation", "32[32] 1[1] 32[32] 64[64] TILE BFLOAT16 DEV_0_L1_INTERLEAVED"),
    (
        "MatmulDeviceOperation",
        "1[1] 1[1] 32[32] 64[64] TILE BFLOAT16 DEV_0_L1_INTERLEAVED",
        "1[1] 1[1] 64[64] 32[8] TILE BFLOAT8_B DEV_0_DRAM_INTERLEAVED",
        "1[1] 1[1] 32[1] 32[8] TILE BFLOAT16 DEV_0_DRAM_INTERLEAVED",
    ),
    ("TopKDeviceOperation", "1[1] 1[1] 32[32] 32[8] TILE BFLOAT16 DEV_0_L1_INTERLEAVED"),
    ("SoftmaxDeviceOperation", "1[1] 1[1] 32[32] 32[4] TILE BFLOAT16 DEV_0_L1_INTERLEAVED"),
]


def _three_inputs_spec(name: str, unit_test: str) -> str:
    """The bundled spec with a new unit-test path and no `call` lines (what scaffolding starts from)."""
    text = (REPO / "fused_ops" / f"{name}.toml").read_text()
    kept = [line for line in text.splitlines() if not line.startswith(("call =", "unit_test ="))]
    return "\n".join([f'unit_test = "{unit_test}"', *kept]) + "\n"


@pytest.fixture
def repo(tmp_path, monkeypatch):
    """A repo root holding pyproject.toml (the workspace's ruff.toml extends it), the workspace and specs."""
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    ignore = shutil.ignore_patterns("__pycache__", "generated", ".pytest_cache")
    shutil.copytree(REPO / "examples" / "gpt_oss_mini", tmp_path / "examples" / "gpt_oss_mini", ignore=ignore)
    (tmp_path / "fused_ops").mkdir()
    for name in ("router", "experts"):
        unit_test = f"models/demos/gpt_oss_mini/tests/fused_op_unit_tests/test_scaffolded_{name}.py"
        (tmp_path / "fused_ops" / f"{name}.toml").write_text(_three_inputs_spec(name, unit_test))
    header = ["OP CODE", "OP TYPE", "DEVICE ID"] + [f"INPUT_{i}_{f}" for i in range(3) for f in GROUP]
    rows = []
    for op, *tensors in ROUTER_CSV:
        cells = [op, "tt_dnn_device", "0", *" ".join(tensors).split()]
        rows.append(",".join(cells + [""] * (len(header) - len(cells))))
    (tmp_path / "router_decode.csv").write_text("\n".join([",".join(header), *rows]) + "\n")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def scaffold(*args) -> int:
    return DoitMain(extra_config=PLUGIN).run(["scaffold", *args])


def _unit_test(repo: Path, name: str) -> Path:
    return repo / UNIT_TESTS / f"test_scaffolded_{name}.py"


def _ruff(repo: Path, *args) -> subprocess.CompletedProcess:
    workspace = repo / "examples" / "gpt_oss_mini"
    return subprocess.run(
        [sys.executable, "-m", "ruff", *args], cwd=workspace, capture_output=True, text=True
    )


def test_scaffold_writes_a_ruff_clean_test_and_the_spec_calls_once(repo, capsys):
    assert scaffold("fused_op=router", f"decode_csv={repo / 'router_decode.csv'}") == 0
    path = _unit_test(repo, "router")
    text = path.read_text()
    tree = ast.parse(text)
    imported = [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    imported += [a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names]
    assert not [m for m in imported if m.split(".")[0] == "pipeline"]
    functions = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
    for suffix in ("reference", "ttnn"):
        assert f"scaffolded_router_{suffix}" in functions
    for suffix in ("", "_single_device", "_device_perf", "_single_device_device_perf"):
        assert f"test_scaffolded_router{suffix}" in functions
    assert '"x": ((1, 1, 32, 64), ttnn.bfloat16, ttnn.TILE_LAYOUT, ttnn.L1_MEMORY_CONFIG)' in text
    assert '"weight": ((1, 1, 64, 8), ttnn.bfloat8_b, ttnn.TILE_LAYOUT, ttnn.DRAM_MEMORY_CONFIG)' in text
    reference = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name.endswith("_reference"))
    # the spec's reference callable, given the parameters it takes by name (read from its source)
    assert ast.unparse(reference.body[-1]) == "return router(x=x, weight=weight, bias=bias, top_k=top_k)"
    assert "pytest.skip(SINGLE_DEVICE_SKIP)" not in text  # no CCL: the single-device tests run
    relative = str(path.relative_to(repo / "examples" / "gpt_oss_mini"))
    assert _ruff(repo, "check", relative).returncode == 0
    assert _ruff(repo, "format", "--check", relative).returncode == 0

    spec = tomllib.loads((repo / "fused_ops" / "router.toml").read_text())
    expected = (
        "indices, weights = scaffolded_router_ttnn(x, self.weight, self.bias, memory_config, self.top_k, "
    )
    assert spec["sequence"]["decode"]["call"].startswith(expected)
    assert spec["sequence"]["prefill"]["call"] == spec["sequence"]["decode"]["call"]
    assert "row 1 (MatmulDeviceOperation)" in capsys.readouterr().out

    # Never overwrite: a second scaffold stops (exit 2, one line); --force writes <file>.new beside it.
    path.write_text(text + "# edited by hand\n")
    assert scaffold("fused_op=router") == 2
    assert "exists; move it aside, or add --force" in capsys.readouterr().err
    assert scaffold("fused_op=router", "--force") == 0
    assert path.read_text().endswith("# edited by hand\n")
    assert path.with_name(path.name + ".new").is_file()
    assert (repo / "fused_ops" / "router.toml").read_text().count("call =") == 2  # not added twice


def test_a_sequence_with_ccls_skips_the_single_device_tests_naming_them(repo):
    assert scaffold("fused_op=experts") == 0
    text = _unit_test(repo, "experts").read_text()
    names = "all_to_all_dispatch, all_to_all_combine, all_reduce"
    tree = ast.parse(text)
    skip = next(
        n.value for n in tree.body if isinstance(n, ast.Assign) and n.targets[0].id == "SINGLE_DEVICE_SKIP"
    )
    expected = f"Single-device test is not applicable because scaffolded_experts includes CCL ops ({names})."
    assert ast.literal_eval(skip) == expected
    bodies = {n.name: n.body for n in tree.body if isinstance(n, ast.FunctionDef)}
    for test in (
        "test_scaffolded_experts_single_device",
        "test_scaffolded_experts_single_device_device_perf",
    ):
        assert ast.unparse(bodies[test][0]) == "pytest.skip(SINGLE_DEVICE_SKIP)"
    assert "SINGLE_DEVICE_SKIP" not in ast.unparse(bodies["test_scaffolded_experts"])
    relative = str(_unit_test(repo, "experts").relative_to(repo / "examples" / "gpt_oss_mini"))
    assert _ruff(repo, "check", relative).returncode == 0


@pytest.mark.parametrize(
    "args, message",
    [
        (["fused_op=missing"], "no such spec; write it"),
        (["fused_op=../x"], "fused_op='../x': give the name of a fused_ops/<name>.toml spec"),
        (["fused_op=router", "reference=not a path"], "reference 'not a path': give package.module:callable"),
        (
            ["fused_op=router", f"reference={FUSED_OPS_REFERENCE}:rms_norm"],
            "requires ['eps'], which ['x', 'weight', 'bias', 'memory_config', 'top_k', "
            "'softmax_compute_config'] (the parameters of the extracted function) do not include",
        ),
        (
            ["fused_op=router", f"reference={FUSED_OPS_REFERENCE}:nope"],
            "fused_ops.py defines no function nope",
        ),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(repo, capsys, args, message):
    before = sorted(p for p in repo.rglob("*") if p.is_file())
    assert scaffold(*args) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err
    assert sorted(p for p in repo.rglob("*") if p.is_file()) == before


def test_placeholders_are_reported_and_measured_values_accepted(repo):
    assert scaffold("fused_op=router", f"decode_csv={repo / 'router_decode.csv'}") == 0
    path = _unit_test(repo, "router")
    before = path.read_text()
    assert expected.placeholder_rows(path) == [("decode", 1), ("prefill", 128), ("prefill", 1024)]
    lines = expected.accept_measured(
        path, {("decode", 1): (0.99874, 12.34), ("prefill", 128): (0.9912, 40.01)}
    )
    assert len(lines) == 2 and "expected_pcc=0.998 expected_perf_us=12.4" in lines[0]
    assert expected.placeholder_rows(path) == [("prefill", 1024)]
    text = path.read_text()
    assert '("decode", 1, 0.998, 12.4),' in text and '("prefill", 1024, 1.0, 0.0),' in text
    assert expected.PLACEHOLDER_NOTE in text  # one row is still a placeholder
    # Only the rows changed; the file stays ruff-clean.
    assert [a for a in before.splitlines() if a not in text.splitlines()] == [
        '    ("decode", 1, 1.0, 0.0),',
        '    ("prefill", 128, 1.0, 0.0),',
    ]
    relative = str(path.relative_to(repo / "examples" / "gpt_oss_mini"))
    assert _ruff(repo, "check", relative).returncode == 0
    assert _ruff(repo, "format", "--check", relative).returncode == 0
    expected.accept_measured(path, {("prefill", 1024): (0.97, 300.0)})
    assert expected.placeholder_rows(path) == [] and expected.ACCEPTED_NOTE in path.read_text()
    with pytest.raises(expected.ExpectedError, match="no rows for"):
        expected.accept_measured(path, {("prefill", 4096): (0.9, 1.0)})


def test_the_reference_gets_the_parameters_its_signature_names(tmp_path):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "refs.py").write_text(
        "def some(x, top_k, scale=1.0): ...\n"
        "def every(x, **options): ...\n"
        "def keyword_only(x, mode='decode', *, k): ...\n"
    )
    parameters = ["x", "weight", "top_k", "scale"]
    assert testgen.reference_parameters("pkg.refs:some", tmp_path, parameters) == ["x", "top_k", "scale"]
    assert testgen.reference_parameters("pkg.refs:every", tmp_path, parameters) == parameters
    assert (
        testgen.reference_parameters("other.pkg:ref", tmp_path, parameters) == parameters
    )  # not in the workspace
    with pytest.raises(testgen.GenerateError, match=r"requires \['k'\]"):
        testgen.reference_parameters("pkg.refs:keyword_only", tmp_path, parameters)


def test_without_ruff_the_test_is_written_unformatted_with_a_note(repo, capsys, monkeypatch):
    """README's first command installs no ruff (a [test] extra): formatting is optional, and said so."""
    from pipeline.scaffold import build

    monkeypatch.setattr(testgen, "have_ruff", lambda: False)
    monkeypatch.setattr(build, "have_ruff", lambda: False)
    monkeypatch.setattr(testgen, "_ruff", lambda *a: pytest.fail("ruff must not run"))
    assert scaffold("fused_op=router", f"decode_csv={repo / 'router_decode.csv'}") == 0
    said = capsys.readouterr().out
    assert "ruff is not installed, so the test is written as rendered" in said and "pip install ruff" in said
    ast.parse(_unit_test(repo, "router").read_text())  # valid Python all the same
