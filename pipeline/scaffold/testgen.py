"""The unit-test file of a fused op, in tt-metal's dialect, from the extraction and the module's tensors.

The file imports only ttnn, torch, pytest, loguru, the model's own code and the per-model helper
module beside it (`fused_op_test_utils`; helper.py writes it when missing), never `pipeline`. It is rendered from
templates/scaffold/fused_op_test.py.j2, then ruff sorts its imports and formats it with the
workspace's configuration; a result ruff still complains about is an error, not a file.
"""

import ast
import importlib.util
import keyword
import subprocess
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

import jinja2

from pipeline.scaffold import expected, facts, freed, helper, modes, ops
from pipeline.scaffold.captured import Captured
from pipeline.scaffold.extract import Extraction
from pipeline.scaffold.inputs import TensorFact

TEMPLATES = Path(__file__).resolve().parent.parent / "templates" / "scaffold"
_RESERVED = {
    "OP",
    "INPUT_TENSORS",
    "SINGLE_DEVICE_SKIP",
    "REAL_WEIGHTS_SKIP",
    "DEVICE_PERF_ENV_VAR",
    "DEVICE_PERF_TARGETS_US",
    "FUSED_OP_MATRIX",
    "VALUE_CONTRACTS",
    expected.TRACE_REGION_CONSTANT,
}
CAPTURED = "the region's capture at the patch point (patch_verify)"
_MEMORY = {"DRAM": "ttnn.DRAM_MEMORY_CONFIG", "L1": "ttnn.L1_MEMORY_CONFIG"}
# What the generated test says each value contract (facts.VALUE_CONTRACTS) builds.
CONTRACT_NOTES = {
    facts.ONES: "('ones',): a mask or scores, all on (every block computed, so every output is compared)",
    facts.EXPERT_MAP: "('expert_map',): one-hot [1, 1, E, D], expert e on device e // (E / D) (MoE ops)",
    facts.EXPERT_IDS: "('expert_ids', E): each token's k experts, distinct ids in [0, E), as top-k picks",
}


class GenerateError(Exception):
    """The test cannot be written (one line, with what to do)."""


@dataclass(frozen=True)
class TestPlan:
    """What the test file is about: the spec's three inputs plus what extraction and profiling found."""

    name: str  # the spec's fused-op name (router)
    unit_test: str  # workspace-relative path, test_<op>.py
    modes: tuple[str, ...]
    prefill_seqlens: tuple[int, ...]
    extraction: Extraction
    inputs: dict = field(default_factory=dict)  # (mode, seq_len) -> RegionInputs
    reference: str = ""  # "package.module:callable", or "" for a NotImplementedError TODO


def render(plan: TestPlan, workspace: Path) -> str:
    """The formatted, ruff-clean test source."""
    return render_template("fused_op_test.py.j2", context(plan, workspace), workspace, plan.unit_test)


def render_template(template: str, values: dict, workspace: Path, path: str) -> str:
    """A template of templates/scaffold rendered, then sorted, formatted and checked by ruff as `path`."""
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=False,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )  # autoescape off: Python source, not HTML; values go in through the `py` filter (repr)
    environment.filters["py"] = repr
    return ruff_clean(environment.get_template(template).render(**values), workspace, path)


def context(plan: TestPlan, workspace: Path) -> dict:
    extraction = plan.extraction
    op = _op(plan)
    tensors = _tensor_parameters(extraction, plan.inputs)
    per_mode = modes.is_merged(extraction)
    constants = [
        c
        for c in _constants(extraction, tensors, plan.inputs, plan.modes)
        if not (per_mode and c["parameter"] == modes.MODE)
    ]
    by_name = {c["parameter"]: c["name"] + ("[case.mode]" if c["per_mode"] else "") for c in constants}
    by_name.update({modes.MODE: "case.mode"} if per_mode else {})
    builders = {c["parameter"]: f"_build_{c['parameter']}" for c in constants if c["builder"]}
    deallocated = set(extraction.deallocated)

    def argument(parameter: str, inputs: str) -> str:
        if parameter in builders:
            return f"{builders[parameter]}({inputs})"
        if parameter in tensors:  # per mode: a tensor the other mode's region does not take is None
            return f'{inputs}.get("{parameter}")' if per_mode else f'{inputs}["{parameter}"]'
        return by_name[parameter]

    deallocated |= {
        name for found in plan.inputs.values() if isinstance(found, Captured) for name in found.freed()
    }
    ttnn_arguments = [argument(p, "tt_inputs") for p in extraction.parameter_names]
    if per_mode:  # <op>_ttnn(mode, **arguments): the mode first, every other parameter by name
        ttnn_arguments = ["case.mode"] + [
            f"{p}={argument(p, 'tt_inputs')}" for p in extraction.parameter_names[1:]
        ]
    function_source = freed.keep_inputs(extraction.source, deallocated)
    if function_source != extraction.source:  # the region frees an input: not in the test's repeated calls
        ttnn_arguments.append(f"{freed.FLAG}=False")
    accepted = reference_parameters(plan.reference, workspace, extraction.parameter_names)
    reference_arguments = [f"{p}={argument(p, 'torch_inputs')}" for p in accepted]
    region_inputs = next(iter(plan.inputs.values()), None)
    contracts = facts.value_contracts(extraction, region_inputs)
    rows = [(mode, 1) if mode == "decode" else (mode, s) for mode in plan.modes for s in _seqlens(plan, mode)]
    return {
        "name": plan.name,
        "op": _identifier(op, "unit_test"),
        "short": _identifier(plan.name, "name"),
        "title": plan.name.replace("_", " ").capitalize(),
        "where": extraction.where,
        "file": extraction.file,
        "lines": extraction.lines,
        "ops": [o for o in extraction.ops if o != "ttnn.deallocate"],
        "ccl": [o.rsplit(".", 1)[-1] for o in extraction.ccl_ops],
        "modes_text": _modes_text(plan, rows),
        "imports": [line for line in extraction.imports if line != "import ttnn"],
        "helper_module": helper.module_of(Path(plan.unit_test).parent / helper.TEST_UTILS),
        "tokens_module": helper.tokens_module(workspace, plan.unit_test, model_dir(plan.unit_test)),
        "reference": _reference(plan.reference),
        "env_var": f"{op.upper()}_DEVICE_PERF",
        "constants": constants,
        "unset": [c["name"] for c in constants if c["value"] is None],
        "containers": [c for c in constants if c["fields"]],
        "scaffold_note": _scaffold_note(plan, [c["name"] for c in constants if c["value"] is None]),
        "reference_parameters": accepted,
        "reference_keywords": ", ".join(f"{p}={p}" for p in accepted),
        "sorted_outputs": _topk_indices(extraction),
        "derived_seqlens": _derived_note(plan, rows),
        "input_tensors": _input_tensors(plan, rows, tensors),
        "contracts": {n: c for n, c in sorted(contracts.items()) if n in tensors},
        "contract_notes": [
            note for kind, note in CONTRACT_NOTES.items() if any(c[0] == kind for c in contracts.values())
        ],
        "ones": facts.ONES,
        "expert_map": facts.EXPERT_MAP,
        "expert_ids": facts.EXPERT_IDS,
        "parameters": extraction.parameter_names,
        "function_source": function_source,
        "reference_arguments": reference_arguments,
        "ttnn_arguments": ttnn_arguments,
        "returns": list(extraction.returns) or ["output"],
        "cases_name": f"{plan.name.upper()}_CASES",
        "values_from": _values_from(plan),
        "captured": CAPTURED,
        "placeholder_note": expected.PLACEHOLDER_NOTE,
        "trace_region_constant": expected.TRACE_REGION_CONSTANT,
        "placeholder_pcc": expected.PLACEHOLDER_PCC,
        "placeholder_perf_us": expected.PLACEHOLDER_PERF_US,
        "rows": rows,
        "perf_rows": [rows[0]] + [r for r in rows if r[0] == "prefill"][:1]
        if rows[0][0] == "decode"
        else rows[:1],
    }


UNFORMATTED_NOTE = (
    "ruff is not installed, so the test is written as rendered (valid, not formatted); "
    "`pip install ruff` (or the [test] extra) and scaffold again to sort, format and check it"
)


def have_ruff() -> bool:
    """Formatting is optional: README's first command installs no ruff (it is a [test] extra)."""
    return importlib.util.find_spec("ruff") is not None


def ruff_clean(text: str, workspace: Path, unit_test: str) -> str:
    """Sort imports and format with the workspace's ruff settings; then it must pass `ruff check`. Without
    ruff, the text as rendered (the scaffold says so: UNFORMATTED_NOTE)."""
    if not have_ruff():
        return text
    ruff = [sys.executable, "-m", "ruff"]
    name = ["--stdin-filename", unit_test]
    text = _ruff([*ruff, "check", "--fix", "--select", "I", "--quiet", *name, "-"], text, workspace)
    text = _ruff([*ruff, "format", "--quiet", *name, "-"], text, workspace)
    check = [*ruff, "check", "--quiet", *name, "-"]
    result = subprocess.run(check, input=text, capture_output=True, text=True, cwd=workspace, timeout=60)
    if result.returncode != 0:
        first = (result.stdout or result.stderr).strip().splitlines()[:1]
        raise GenerateError(f"{unit_test}: the generated test does not pass ruff check: {first}")
    return text


def _ruff(argv: list[str], text: str, workspace: Path) -> str:
    result = subprocess.run(argv, input=text, capture_output=True, text=True, cwd=workspace, timeout=60)
    if result.returncode not in (0, 1) or not result.stdout:
        raise GenerateError(f"ruff failed on the generated test: {result.stderr.strip()[:200]}")
    return result.stdout


def _values_from(plan: TestPlan) -> str:
    if any(isinstance(found, Captured) for found in plan.inputs.values()):
        return CAPTURED
    return "the module's profiled run (module_perf CSV)"


def _tensor_parameters(extraction: Extraction, inputs: dict) -> set[str]:
    """Parameters the module's CSV shows as an op's input tensor."""
    found = set()
    for region_inputs in inputs.values():
        found.update(name for name, _ in facts.named_facts(extraction, region_inputs))
    return found


def _input_tensors(plan: TestPlan, rows, tensors: set[str]) -> list:
    table = []
    for key in rows:
        region_inputs, profiled = _profiled_inputs(plan, key)
        if region_inputs is None:
            continue
        named = facts.named_facts(plan.extraction, region_inputs)
        first = f"row {region_inputs.row} ({region_inputs.first_op})"
        source = f"module_perf CSV rows of the region's ops, from {first}"
        if isinstance(region_inputs, Captured):
            source = f"captured at the patch point: the module's {region_inputs.first_op} call ({key[0]})"
        if profiled != key and isinstance(region_inputs, Captured):
            decode = plan.inputs.get(("decode", 1))
            named = [(n, region_inputs.at_seq_len(n, f, key[1], decode)) for n, f in named]
            source = f"{profiled[0]} {profiled[1]}'s capture, the token dimensions {profiled[1]} -> {key[1]}"
        elif profiled != key:
            weights = facts.matmul_weights(plan.extraction)
            named = [(n, f if n in weights else facts.with_seq_len(f, profiled[1], key[1])) for n, f in named]
            source = f"{profiled[0]} {profiled[1]}'s ({source}), seq_len {profiled[1]} -> {key[1]}"
        table.append((key, source, [_tensor_entry(name, fact) for name, fact in named]))
    return table


def _profiled_inputs(plan: TestPlan, key):
    """The profiled inputs of `key`, else (prefill) those of the shortest profiled prefill seq_len."""
    if key in plan.inputs:
        return plan.inputs[key], key
    profiled = sorted(k for k in plan.inputs if k[0] == key[0] == "prefill")
    return (plan.inputs[profiled[0]], profiled[0]) if profiled else (None, None)


def _derived_note(plan: TestPlan, rows) -> list[str]:
    derived = [key for key in rows if key not in plan.inputs and _profiled_inputs(plan, key)[0] is not None]
    return [f"{mode} {seq_len}" for mode, seq_len in derived]


def _tensor_entry(name: str, fact: TensorFact) -> dict:
    memory, note = _MEMORY.get(fact.buffer_type) if fact.memory_layout == "INTERLEAVED" else None, ""
    memory = fact.memory_expression or memory
    if memory is None:
        memory = "ttnn.DRAM_MEMORY_CONFIG"
        note = f"TODO: the module has {fact.memory} (shard spec not in the CSV)"
    return {
        "name": name,
        "shape": fact.shape,
        "dtype": f"ttnn.{fact.dtype.lower()}",
        "layout": f"ttnn.{fact.layout.upper()}_LAYOUT",
        "memory": memory,
        "note": note,
    }


def _constants(extraction: Extraction, tensors: set[str], inputs: dict, modes) -> list[dict]:
    """The non-tensor parameters, each with the value the profiled module ran it with (one expression,
    or one per mode when the modes differ), or None (a TODO) when no profiled op row says. A container
    the region passes whole is built from its fields (`_container`)."""
    constants, taken = [], set(_RESERVED)
    passed = dict(extraction.passed)
    for parameter in extraction.parameters:
        if parameter.name in tensors:
            continue
        name = parameter.name.upper()
        while name in taken:
            name = f"MODULE_{name}"
        taken.add(name)
        constant = {
            "name": name,
            "parameter": parameter.name,
            "argument": parameter.argument,
            "uses": _uses(extraction, parameter.name),
            "per_mode": False,
            "fields": [],
            "builder": False,
            "missing": "",
        }
        if parameter.name in passed:
            constants.append(_container(constant, passed[parameter.name], extraction, tensors, inputs, modes))
            continue
        values = {mode: _profiled_value(extraction, parameter.name, inputs, mode) for mode in modes}
        known = set(values.values())
        constant["per_mode"] = None not in known and len(known) > 1
        constant["value"] = values if constant["per_mode"] else (known.pop() if len(known) == 1 else None)
        constants.append(constant)
    return constants


def _container(
    constant: dict, fields, extraction: Extraction, tensors: set[str], inputs: dict, modes
) -> dict:
    """A container as a `SimpleNamespace` of the fields the module reads: a constant when they are all
    values, a builder over the test's inputs (torch or ttnn) when some are tensors; None (a TODO) when
    the profiled run does not show a value field, or shows it differently per mode."""
    built, missing, tensor_fields = [], [], False
    for field_name in fields:
        key = f"{constant['parameter']}.{field_name}"
        if key in tensors:
            built.append({"name": field_name, "value": f"inputs[{key!r}]", "uses": ""})
            tensor_fields = True
            continue
        values = {_profiled_value(extraction, key, inputs, mode) for mode in modes}
        if len(values) != 1 or None in values:
            missing.append(field_name)
            continue
        uses = _uses(extraction, key) or f"{key}, as captured"
        built.append({"name": field_name, "value": values.pop(), "uses": uses})
    constant["value"] = None if missing else "SimpleNamespace"
    constant["missing"] = ", ".join(f"{constant['parameter']}.{f}" for f in missing)
    constant["fields"] = [] if missing else built
    constant["builder"] = not missing and tensor_fields
    return constant


def _profiled_value(extraction: Extraction, parameter: str, inputs: dict, mode: str) -> str | None:
    for (row_mode, _), region_inputs in inputs.items():
        value = facts.profiled_value(extraction, parameter, region_inputs) if row_mode == mode else None
        if value is not None:
            return value
    return None


def _uses(extraction: Extraction, parameter: str) -> str:
    settings = [(index, keyword) for index, keyword, name in extraction.settings if name == parameter]
    uses = [f"{extraction.op_sequence[index]}({_setting_text(keyword)})" for index, keyword in settings]
    return ", ".join(dict.fromkeys(uses))


def _setting_text(keyword: str) -> str:
    """`max` -> `max=`; a view's target dimension -> `shape[2]`; a positional scalar -> `scalar operand`."""
    if keyword.startswith(ops.SHAPE):
        return f"shape[{keyword.removeprefix(ops.SHAPE).split('/')[0]}]"
    return "scalar operand" if keyword == ops.SCALAR else f"{keyword}="


def reference_parameters(reference: str, workspace: Path, parameters: list[str]) -> list[str]:
    """The `<op>_ttnn` parameters the reference callable takes, read from its source with ast (never
    imported): all of them when it takes **kwargs or its source is not in the workspace."""
    if not reference:
        return list(parameters)
    module, _, name = reference.partition(":")
    base = workspace / Path(*module.split("."))
    path = next((p for p in (base.with_suffix(".py"), base / "__init__.py") if p.is_file()), None)
    if path is None:
        return list(parameters)
    try:
        tree = ast.parse(path.read_text(), filename=str(path))
    except (OSError, SyntaxError) as error:
        raise GenerateError(f"reference {reference!r}: cannot read {path} ({error})") from None
    function = next(
        (n for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef) and n.name == name),
        None,
    )
    if function is None:
        raise GenerateError(
            f"reference {reference!r}: {path} defines no function {name}; name one that it does"
        )
    if function.args.kwarg is not None:
        return list(parameters)
    arguments = function.args
    positional = [*arguments.posonlyargs, *arguments.args]
    every = [*positional, *arguments.kwonlyargs]
    required = [a.arg for a in positional[: len(positional) - len(arguments.defaults)]]
    required += [a.arg for a, d in zip(arguments.kwonlyargs, arguments.kw_defaults, strict=True) if d is None]
    unknown = [a for a in required if a not in parameters]
    if unknown:
        raise GenerateError(
            f"reference {reference!r} requires {unknown}, which {parameters} (the parameters of the "
            "extracted function) do not include; take those parameter names, as keyword arguments"
        )
    return [p for p in parameters if p in {a.arg for a in every}]


def _topk_indices(extraction: Extraction) -> list[str]:
    """Returned names bound to ttnn.topk's indices (`values, indices = ttnn.topk(...)`): compared as
    sorted index sets, so tied scores picking the other expert in either order do not count."""
    found = set()
    for node in ast.walk(ast.parse(extraction.source)):
        if (
            isinstance(node, ast.Assign)
            and isinstance(node.targets[0], ast.Tuple)
            and len(node.targets[0].elts) == 2
            and isinstance(node.value, ast.Call)
            and isinstance(node.value.func, ast.Attribute)
            and node.value.func.attr == "topk"
            and isinstance(node.targets[0].elts[1], ast.Name)
        ):
            found.add(node.targets[0].elts[1].id)
    return [name for name in extraction.returns if name in found]


def _op(plan: TestPlan) -> str:
    return Path(plan.unit_test).stem.removeprefix("test_")


def _scaffold_note(plan: TestPlan, unset: list[str]) -> str:
    """What the docstring says is left to the user."""
    left = [] if plan.reference else [f"{_op(plan)}_reference (the spec names no reference callable)"]
    if unset:
        left.append(f"{', '.join(unset)} (the module's values: its profiled run does not show them)")
    left.append(
        f"the expected values (placeholders until a run measures them; "
        f"`doit scaffold fused_op={plan.name} --accept-measured` writes them)"
    )
    text = (
        f"Scaffolded by `doit scaffold fused_op={plan.name}`; the inputs and the module's parameters come "
        f"from {_values_from(plan)}. Left to you (TODO): {'; '.join(left)}."
    )
    return textwrap.fill(text, width=104)


def _seqlens(plan: TestPlan, mode: str):
    return (1,) if mode == "decode" else plan.prefill_seqlens


def _modes_text(plan: TestPlan, rows) -> str:
    listed = ", ".join(f"{mode} {seq_len}" for mode, seq_len in rows)
    return f"Modes: {listed}."


def model_dir(unit_test: str) -> Path:
    """models/demos/<model>/tests/fused_op_unit_tests/test_x.py -> models/demos/<model>."""
    path = Path(unit_test)
    for parent in path.parents:
        if parent.name == "tests":
            return parent.parent
    raise GenerateError(
        f"unit_test {unit_test}: not under a tests/ directory of a model; use tt-metal's layout"
    )


def _reference(reference: str) -> dict | None:
    if not reference:
        return None
    module, _, name = reference.partition(":")
    if not name or not all(_is_identifier(part) for part in [*module.split("."), name]):
        raise GenerateError(f"reference {reference!r}: give package.module:callable")
    return {"module": module, "name": name}


def _identifier(text: str, what: str) -> str:
    if not _is_identifier(text):
        raise GenerateError(f"{what} {text!r} is not a Python identifier")
    return text


def _is_identifier(text: str) -> bool:
    return text.isidentifier() and not keyword.iskeyword(text)
