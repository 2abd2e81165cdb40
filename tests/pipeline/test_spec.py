"""pipeline.spec: a valid spec loads into read-only records; every mistake is one line naming file and
field."""

from pathlib import Path

import pytest

from pipeline import spec as specmod
from pipeline.spec import Overrides, SpecError, load_spec, load_specs

REPO = Path(__file__).resolve().parents[2]


def load(spec_dir, **overrides):
    return load_spec(spec_dir / "demo_router.toml", Overrides(**overrides), REPO)


def edit(spec_dir, old, new):
    path = spec_dir / "demo_router.toml"
    text = path.read_text()
    assert old in text, old
    path.write_text(text.replace(old, new))


def test_valid_spec_loads(spec_dir, workspace):
    spec = load(spec_dir)
    assert spec.name == "demo_router"
    assert spec.workspace == workspace.resolve()
    assert spec.modes == ("decode", "prefill")
    assert (spec.seq_len("decode"), spec.seq_len("prefill")) == (1, 128)
    assert spec.module_test.argv == ("pytest", "models/demo/tests/test_modules.py::test_block")
    assert spec.module_test.select == {"decode": "decode_32", "prefill": "prefill_128"}
    assert spec.sequences["decode"].call == "b = demo_router_ttnn(x)"
    assert spec.names.op == "demo_router"
    assert spec.names.ttnn == "demo_router_ttnn"
    assert spec.names.single_device_device_perf == "test_demo_router_single_device_device_perf"
    assert spec.names.device_perf_env_var == "DEMO_ROUTER_DEVICE_PERF"
    assert spec.names.device_perf_iters == 10
    assert not spec.decode_only
    with pytest.raises(AttributeError):  # read-only
        spec.name = "other"


def test_decode_only_needs_no_prefill_fields(spec_dir):
    edit(spec_dir, 'modes = ["decode", "prefill"]\nprefill_seqlens = [128, 1024]', 'modes = ["decode"]')
    edit(
        spec_dir,
        'select = { decode = "decode_32", prefill = "prefill_128" }',
        'select = { decode = "decode_32" }',
    )
    spec = load(spec_dir)
    assert spec.decode_only and spec.modes == ("decode",) and list(spec.sequences) == ["decode"]


def test_workspace_from_environment_variable(spec_dir, workspace, monkeypatch):
    monkeypatch.setenv("TT_METAL_HOME", str(workspace))
    edit(spec_dir, f'workspace = "{workspace}"', 'workspace = "${TT_METAL_HOME}"')
    assert load(spec_dir).workspace == workspace.resolve()


def test_workspace_relative_to_repo_and_doit_override(spec_dir, workspace, tmp_path):
    other = tmp_path / "copy"
    other.symlink_to(workspace)
    assert load(spec_dir, workspace=str(other)).workspace == workspace.resolve()
    edit(spec_dir, f'workspace = "{workspace}"', 'workspace = "examples/does_not_exist"')
    with pytest.raises(SpecError, match=r"field 'workspace': .*examples/does_not_exist is not a directory"):
        load(spec_dir)


def test_device_perf_iters_read_from_the_file_without_importing_it(spec_dir, workspace):
    unit = workspace / "models/demo/tests/fused/test_demo_router.py"
    unit.write_text(
        "import no_such_module_anywhere\n"
        + unit.read_text().replace("DEVICE_PERF_ITERS = 10", "DEVICE_PERF_ITERS = 7")
    )
    assert load(spec_dir).names.device_perf_iters == 7


ERRORS = [
    (
        'modes = ["decode", "prefill"]',
        'modes = ["decode", "prefil"]',
        "modes",
        'unknown mode \'prefil\'; use "decode" and/or "prefill"',
    ),
    ('name = "demo_router"', 'name = "Demo-Router"', "name", "invalid fused-op name"),
    ('name = "demo_router"', 'name = "other"', "name", "rename the file"),
    ('description = "x + 1, * 2"\n', "", "description", "missing"),
    ("prefill_seqlens = [128, 1024]", "prefill_seqlens = []", "prefill_seqlens", "positive integers"),
    ('"pytest", "models', '"python", "models', "module_test.argv", 'start it with "pytest"'),
    (', prefill = "prefill_128" }', " }", "module_test.select.prefill", "expected a non-empty string"),
    ('start = "a = add(x, 1)"', 'start = "x"', "sequence.decode.start", "'x' matches 2 times"),
    ('end = "b = mul(a, 2)"', 'end = "nowhere"', "sequence.decode.end", "occurs nowhere"),
    (
        'call = "b = demo_router_ttnn(x)"',
        'call = "b = other(x)"',
        "sequence.decode.call",
        "does not call demo_router_ttnn",
    ),
    (
        'file = "models/demo/tt/model.py"',
        'file = "models/demo/tt/missing.py"',
        "sequence.decode.file",
        "does not exist",
    ),
    ("test_demo_router.py", "test_missing.py", "unit_test", "does not exist"),
    ('description = "x + 1, * 2"', 'description = "d"\nbogus = 1', "bogus", "unknown field"),
    ("[sequence.prefill]", "[sequence.prefil]", "sequence.prefil", "unknown mode"),
    ('description = "x + 1, * 2"', 'description = "d"\ntimeouts = { wall = -1 }', "timeouts.wall", "> 0"),
    (
        'description = "x + 1, * 2"',
        'description = "d"\ntimeouts = { wal = 5 }',
        "timeouts.wal",
        "unknown field",
    ),
    ('description = "x + 1, * 2"', 'description = "d"\ntimeouts = 5', "timeouts", "not a table"),
]


@pytest.mark.parametrize("old, new, field, problem", ERRORS, ids=[e[2] + ":" + e[3][:20] for e in ERRORS])
def test_errors_are_one_line_with_file_and_field(spec_dir, old, new, field, problem):
    edit(spec_dir, old, new)
    with pytest.raises(SpecError) as error:
        load(spec_dir)
    message = str(error.value)
    assert "\n" not in message
    assert "demo_router.toml: field '" + field + "': " in message
    assert problem in message


def test_unit_test_contract_errors(spec_dir, workspace):
    unit = workspace / "models/demo/tests/fused/test_demo_router.py"
    original = unit.read_text()
    unit.write_text(original.replace('DEVICE_PERF_ENV_VAR = "DEMO_ROUTER_DEVICE_PERF"', ""))
    with pytest.raises(SpecError, match=r"field 'unit_test': .*no module-level DEVICE_PERF_ENV_VAR"):
        load(spec_dir)
    unit.write_text(original.replace("def test_demo_router_single_device(", "def renamed("))
    with pytest.raises(SpecError, match=r"defines no function test_demo_router_single_device;"):
        load(spec_dir)


def test_unset_environment_variable_names_the_fix(spec_dir, workspace, monkeypatch):
    monkeypatch.delenv("TT_METAL_HOME", raising=False)
    edit(spec_dir, f'workspace = "{workspace}"', 'workspace = "${TT_METAL_HOME}"')
    with pytest.raises(
        SpecError, match=r"field 'workspace': \$\{TT_METAL_HOME\} is not set; export TT_METAL_HOME="
    ):
        load(spec_dir)


def test_invalid_toml_is_one_line(spec_dir):
    edit(spec_dir, 'name = "demo_router"', "name = ")
    with pytest.raises(SpecError, match=r"demo_router.toml: invalid TOML") as error:
        load(spec_dir)
    assert "\n" not in str(error.value)


def test_load_specs_selection_and_doit_vars(spec_dir):
    assert [s.name for s in load_specs(spec_dir, None, Overrides(), REPO)] == ["demo_router"]
    assert load_specs(spec_dir, ["demo_router"], Overrides(backend="ttnn"), REPO)[0].backend == "ttnn"
    with pytest.raises(SpecError, match=r"doit var 'fused_op': no spec .*nope.toml; use one of: demo_router"):
        load_specs(spec_dir, ["nope"], Overrides(), REPO)
    with pytest.raises(SpecError, match=r"doit var 'fused_op': invalid fused-op name '../x'"):
        load_specs(spec_dir, ["../x"], Overrides(), REPO)
    with pytest.raises(
        SpecError, match=r"doit var 'backend': unknown backend 'gpu'; use backend=sim or backend=ttnn"
    ):
        load_specs(spec_dir, None, Overrides(backend="gpu"), REPO)


def test_name_pattern():
    assert specmod.NAME_PATTERN.fullmatch("experts_mlp")
    assert not specmod.NAME_PATTERN.fullmatch("_x")


def test_spec_timeouts_apply_unless_the_environment_sets_them(spec_dir, monkeypatch):
    from pipeline.runner import DEFAULT_SILENCE_TIMEOUT, Timeouts

    edit(spec_dir, 'description = "x + 1, * 2"', 'description = "d"\ntimeouts = { wall = 1800, reset = 60 }')
    spec = load(spec_dir)
    monkeypatch.delenv("PIPELINE_WALL_TIMEOUT", raising=False)
    monkeypatch.delenv("PIPELINE_RESET_TIMEOUT", raising=False)
    monkeypatch.delenv("PIPELINE_SILENCE_TIMEOUT", raising=False)
    assert Timeouts.from_env(spec.timeouts) == Timeouts(wall=1800, silence=DEFAULT_SILENCE_TIMEOUT, reset=60)
    monkeypatch.setenv("PIPELINE_WALL_TIMEOUT", "99")
    assert Timeouts.from_env(spec.timeouts).wall == 99


TWO_PATHS = """\
from models.demo.tt.fake_device import add, mul


def decode(x):
    a = add(x, 1)
    b = mul(a, 2)
    return b


def prefill(x):
    a = add(x, 10)
    b = mul(a, 2)
    return b
"""


def test_end_anchor_is_searched_after_start_and_anchors_may_span_lines(spec_dir, workspace):
    from pipeline import anchors

    (workspace / "models/demo/tt/model.py").write_text(TWO_PATHS)
    span = anchors.locate(TWO_PATHS, "a = add(x, 10)", "b = mul(a, 2)", "model.py")
    assert (span.start_line, span.end_line) == (11, 12)  # the prefill one, not the decode one on line 6
    assert (
        anchors.locate(TWO_PATHS, "a = add(x, 1)", "b = mul(a, 2)", "m").end_line == 6
    )  # the first after start
    span = anchors.locate(
        TWO_PATHS, "def prefill(x):\n    a = add", "b = mul(a, 2)\n    return b", "model.py"
    )
    assert (span.start_line, span.end_line) == (10, 12)
    path = spec_dir / "demo_router.toml"
    decode, prefill = path.read_text().split("[sequence.prefill]")
    decode = decode.replace('start = "a = add(x, 1)"', 'start = """def decode(x):\n    a = add(x, 1)"""')
    path.write_text(decode + "[sequence.prefill]" + prefill.replace("add(x, 1)", "add(x, 10)"))
    loaded = load(spec_dir)
    assert loaded.sequences["decode"].start == "def decode(x):\n    a = add(x, 1)"


@pytest.mark.parametrize(
    "start, end, problem",
    [
        ("a = add(x, 10)", "a = add(x, 1)", "'a = add(x, 1)' occurs only before start"),
        ("a = add(x, 1)", "c = 3", "'c = 3' occurs nowhere"),
        ("a = add(x", "b = mul(a, 2)", "'a = add(x' matches 2 times"),
        ("a = add(x, 1)", " ", "expected a non-empty string"),
    ],
)
def test_anchor_errors_name_the_field(spec_dir, workspace, start, end, problem):
    (workspace / "models/demo/tt/model.py").write_text(TWO_PATHS)
    text = (spec_dir / "demo_router.toml").read_text()
    (spec_dir / "demo_router.toml").write_text(
        text.replace('start = "a = add(x, 1)"', f"start = {start!r}", 1).replace(
            'end = "b = mul(a, 2)"', f"end = {end!r}", 1
        )
    )
    with pytest.raises(SpecError) as error:
        load(spec_dir)
    assert "field 'sequence.decode." in str(error.value) and problem in str(error.value)


def add_deviations(spec_dir, body: str) -> None:
    path = spec_dir / "demo_router.toml"
    path.write_text(path.read_text() + "\n[deviations]\n" + body + "\n")


def test_deviations_default_to_none_and_load_with_their_reason(spec_dir):
    assert load(spec_dir).deviations == {}
    add_deviations(spec_dir, 'PERF_WARMUP_ITERS = { value = 0, reason = "slow e2e loop" }')
    assert load(spec_dir).deviations == {"PERF_WARMUP_ITERS": specmod.Deviation(0, "slow e2e loop")}


DEVIATION_ERRORS = [
    ('WARMUPS = { value = 0, reason = "r" }', "deviations.WARMUPS", "unknown field"),
    ("PERF_WARMUP_ITERS = 0", "deviations.PERF_WARMUP_ITERS", "is not a table"),
    ('PERF_WARMUP_ITERS = { reason = "r" }', "deviations.PERF_WARMUP_ITERS.value", "missing"),
    ("PERF_WARMUP_ITERS = { value = 0 }", "deviations.PERF_WARMUP_ITERS.reason", "missing"),
    ('PERF_WARMUP_ITERS = { value = 0, reason = " " }', "deviations.PERF_WARMUP_ITERS.reason", "non-empty"),
    ('DEVICE_PERF_ITERS = { value = 0, reason = "r" }', "deviations.DEVICE_PERF_ITERS.value", "integer >= 1"),
    ('DEVICE_PERF_ITERS = { value = 2.5, reason = "r" }', "deviations.DEVICE_PERF_ITERS.value", "integer"),
    ('DEVICE_PERF_ITERS = { value = 10, reason = "r" }', "deviations.DEVICE_PERF_ITERS.value", "guide's own"),
    ('DEVICE_PERF_ITERS = { value = 5, why = "r" }', "deviations.DEVICE_PERF_ITERS.why", "unknown field"),
]


@pytest.mark.parametrize(
    "body, field, problem", DEVIATION_ERRORS, ids=[e[1] + ":" + e[2] for e in DEVIATION_ERRORS]
)
def test_deviation_errors_are_one_line_naming_the_field(spec_dir, body, field, problem):
    add_deviations(spec_dir, body)
    with pytest.raises(SpecError) as error:
        load(spec_dir)
    message = str(error.value)
    assert "\n" not in message and f"demo_router.toml: field '{field}': " in message and problem in message
