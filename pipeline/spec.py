"""Fused-op specs: ``fused_ops/<name>.toml`` -> validated, frozen ``FusedOpSpec``.

Every problem is one ``SpecError`` line naming the file, the field and the fix, raised before anything
runs. Schema (docs/internals.md §2.2)::

    name = "router"                       # [a-z][a-z0-9_]*, equal to the file stem
    description = "..."
    workspace = "examples/gpt_oss_mini"   # repo-relative, absolute, or with ${VARS} such as ${TT_METAL_HOME}
    unit_test = "models/.../test_<op>.py" # workspace-relative; its stem gives every function name
    modes = ["decode", "prefill"]         # no "prefill" => decode-only
    prefill_seqlens = [128, 1024]         # required with "prefill"; perf/config steps use the shortest
    env_vars = ["HF_MODEL"]               # optional: more env vars whose values join the environment key
    extra_deps = ["models/.../unit_test_thresholds.json"]  # optional: data files the tests read
    pcc_tolerance = 0.0                   # optional: patch_verify tolerance (default: exact as printed)
    timeouts = { wall = 1800 }            # optional seconds: wall (per test case), silence, reset
    reference = "pkg.module:callable"     # optional: the PyTorch reference `doit scaffold` calls

    [deviations]                          # optional: the test's perf-loop constants that differ from the
    PERF_WARMUP_ITERS = { value = 0, reason = "..." }   # guide's (GUIDE_CONSTANTS), each with its reason

    [module_test]
    argv = ["pytest", "path/test_modules.py::test_decoder", "--test-modules", "router"]
    select = { decode = "decode_32 and layer_0", prefill = "prefill_128 and layer_0" }

    [sequence.decode]                     # one table per mode
    file = "models/.../tt/router.py"
    start = "logits = ttnn.linear("       # anchors: each matches exactly once in `file`; or
    end = "weights = ttnn.softmax("       # lines = [first, last], or function = "Class.method"
    call = "indices, weights = <op>_ttnn(x, ...)"  # written by `doit scaffold fused_op=<name>`
"""

import ast
import json
import os
import re
import tomllib
from pathlib import Path
from typing import NamedTuple

from pipeline import anchors, unit_test_names
from pipeline.deviations import DEVIATION_FIELDS, GUIDE_CONSTANTS, Deviation
from pipeline.unit_test_names import UnitTestNames

NAME_PATTERN = re.compile(r"[a-z][a-z0-9_]*")
MODES = ("decode", "prefill")
BACKENDS = ("sim", "ttnn")
DECODE_SEQ_LEN = 1  # tt-metal's decode rows are ("decode", 1, ...)

_REQUIRED = ("name", "description", "workspace", "unit_test", "modes", "module_test", "sequence")
_OPTIONAL = (
    "prefill_seqlens",
    "env_vars",
    "extra_deps",
    "pcc_tolerance",
    "timeouts",
    "reference",
    "deviations",
)
_SEQUENCE_FIELDS = ("file", "start", "end", "lines", "function", "call")
_REFERENCE = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_][\w.]*")
TIMEOUT_FIELDS = ("wall", "silence", "reset")  # seconds: per test case, without output, per reset command
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)")


class SpecError(Exception):
    """One line: '<file>: field '<field>': <problem>; <fix>'."""


class Overrides(NamedTuple):
    """doit variables that win over the spec files."""

    backend: str = "sim"
    workspace: str | None = None


class ModuleTest(NamedTuple):
    argv: tuple[str, ...]
    select: dict[str, str]  # mode -> pytest -k expression


class Sequence(NamedTuple):
    """Where the fused ops live in the module, for patch_verify."""

    file: str  # workspace-relative
    start: str
    end: str
    call: str


class FusedOpSpec(NamedTuple):
    name: str
    description: str
    source: Path  # the .toml file
    workspace: Path  # absolute
    unit_test: str  # workspace-relative
    modes: tuple[str, ...]
    prefill_seqlens: tuple[int, ...]
    module_test: ModuleTest
    sequences: dict[str, Sequence]
    names: UnitTestNames
    backend: str
    env_vars: tuple[str, ...]
    extra_deps: tuple[str, ...]
    pcc_tolerance: float | None
    timeouts: dict  # TIMEOUT_FIELDS given by the spec
    raw: dict  # the table as written
    deviations: dict = {}  # GUIDE_CONSTANTS name -> Deviation (never mutated)

    @property
    def decode_only(self) -> bool:
        return "prefill" not in self.modes

    def seq_len(self, mode: str) -> int:
        """The sequence length the perf and config steps use for `mode` (the shortest prefill)."""
        return DECODE_SEQ_LEN if mode == "decode" else min(self.prefill_seqlens)


def validate_name(name: str, where: str) -> str:
    if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
        raise SpecError(
            f"{where}: invalid fused-op name {name!r}; use lowercase letters, digits and '_' "
            "([a-z][a-z0-9_]*)"
        )
    return name


def validate_backend(backend: str) -> str:
    if backend not in BACKENDS:
        raise SpecError(f"doit var 'backend': unknown backend {backend!r}; use backend=sim or backend=ttnn")
    return backend


def load_specs(
    spec_dir: Path, selected: list[str] | None, overrides: Overrides, repo_root: Path, cache=None
) -> list[FusedOpSpec]:
    """The specs named in `selected` (all ``*.toml`` in `spec_dir` when None), validated, sorted by name."""
    validate_backend(overrides.backend)
    available = {n[: -len(".toml")]: Path(spec_dir) / n for n in sorted(_spec_files(spec_dir))}
    if selected is None:
        names = sorted(available)
    else:
        names = [validate_name(n, "doit var 'fused_op'") for n in selected]
        unknown = [n for n in names if n not in available]
        if unknown:
            known = ", ".join(sorted(available)) or "none"
            raise SpecError(
                f"doit var 'fused_op': no spec {_display(Path(spec_dir) / (unknown[0] + '.toml'))}; "
                f"use one of: {known}"
            )
    return [load_spec(available[n], overrides, repo_root, cache) for n in names]


def load_spec(path: Path, overrides: Overrides, repo_root: Path, cache=None) -> FusedOpSpec:
    """One spec, validated. `cache` (a sources.SourceCache) keeps what was read of it and its unit test."""
    path = Path(path)
    where = _display(path)
    read = _toml_reader(where)
    try:
        raw = cache.get("toml", path, read) if cache else read(path.read_bytes())
    except OSError as error:
        raise SpecError(f"{where}: cannot read ({error.strerror}); check the path") from None
    check = _Checker(where)
    check.known_fields(raw, _REQUIRED + _OPTIONAL, "")
    for key in _REQUIRED:
        check.present(raw, key, "")

    name = check.string(raw, "name")
    validate_name(name, f"{where}: field 'name'")
    if name != path.stem:
        check.fail(
            "name",
            f"{name!r} differs from the file name",
            f"rename the file to {name}.toml or set name = {path.stem!r}",
        )
    description = check.string(raw, "description")
    workspace = _workspace(overrides.workspace or check.string(raw, "workspace"), repo_root, check, overrides)
    modes = _modes(raw, check)
    prefill_seqlens = _prefill_seqlens(raw, modes, check)
    module_test = _module_test(raw, modes, check)
    if "reference" in raw and not _REFERENCE.fullmatch(str(raw["reference"])):
        check.fail("reference", f"{raw['reference']!r} is not package.module:callable", "fix it or omit it")
    unit_test = check.string(raw, "unit_test")
    names = unit_test_names.read(workspace, unit_test, name, check.fail, cache)
    sequences = _sequences(raw, modes, workspace, names, check)
    env_vars = tuple(check.string_list(raw, "env_vars", default=[]))
    for var in env_vars:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", var):
            check.fail(
                "env_vars", f"{var!r} is not an environment variable name", 'list names such as "HF_MODEL"'
            )
    extra_deps = tuple(check.string_list(raw, "extra_deps", default=[]))
    for dep in extra_deps:
        if not (workspace / dep).is_file():
            check.fail("extra_deps", f"{dep} does not exist in {workspace}", "list workspace-relative files")
    pcc_tolerance = raw.get("pcc_tolerance")
    if pcc_tolerance is not None and (
        isinstance(pcc_tolerance, bool) or not isinstance(pcc_tolerance, int | float) or pcc_tolerance < 0
    ):
        check.fail(
            "pcc_tolerance",
            f"{pcc_tolerance!r} is not a number >= 0",
            "use e.g. pcc_tolerance = 1e-6, or omit it",
        )
    timeouts = _timeouts(raw, check)
    deviations = _deviations(raw, check)
    return FusedOpSpec(
        name=name,
        description=description,
        source=path.resolve(),
        workspace=workspace,
        unit_test=unit_test,
        modes=modes,
        prefill_seqlens=prefill_seqlens,
        module_test=module_test,
        sequences=sequences,
        names=names,
        backend=validate_backend(overrides.backend),
        env_vars=env_vars,
        extra_deps=extra_deps,
        pcc_tolerance=None if pcc_tolerance is None else float(pcc_tolerance),
        timeouts=timeouts,
        raw=raw,
        deviations=deviations,
    )


def _deviations(raw: dict, check: "_Checker") -> dict[str, Deviation]:
    """[deviations]: NAME = { value = <int>, reason = "..." } for NAME in GUIDE_CONSTANTS."""
    table = raw.get("deviations", {})
    example = 'PERF_WARMUP_ITERS = { value = 0, reason = "why the guide\'s 10 do not fit" }'
    if not isinstance(table, dict):
        check.fail("deviations", "is not a table", f"write [deviations] with lines such as {example}")
    check.known_fields(table, tuple(GUIDE_CONSTANTS), "deviations.")
    deviations = {}
    for name, entry in table.items():
        where = f"deviations.{name}"
        if not isinstance(entry, dict):
            check.fail(where, f"{entry!r} is not a table", f"write {example}")
        check.known_fields(entry, DEVIATION_FIELDS, where + ".")
        for key in DEVIATION_FIELDS:
            check.present(entry, key, where + ".")
        value, guide = entry["value"], GUIDE_CONSTANTS[name]
        lowest = 0 if name == "PERF_WARMUP_ITERS" else 1
        if isinstance(value, bool) or not isinstance(value, int) or value < lowest:
            check.fail(f"{where}.value", f"{value!r} is not an integer >= {lowest}", "give the test's number")
        if value == guide:
            check.fail(f"{where}.value", f"{value} is the guide's own number", f"remove {where}")
        reason = check.string(entry, "reason", where + ".")
        deviations[name] = Deviation(value, reason.strip())
    return deviations


def _timeouts(raw: dict, check: "_Checker") -> dict:
    table = raw.get("timeouts", {})
    if not isinstance(table, dict):
        check.fail("timeouts", "is not a table", "use timeouts = { wall = 1800, silence = 300 }")
    check.known_fields(table, TIMEOUT_FIELDS, "timeouts.")
    for key, value in table.items():
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            check.fail(
                f"timeouts.{key}", f"{value!r} is not a number of seconds > 0", f"use e.g. {key} = 600"
            )
    return {key: float(value) for key, value in table.items()}


class _Checker:
    """Field access that turns every problem into one SpecError line."""

    def __init__(self, where: str):
        self.where = where

    def fail(self, field_name: str, problem: str, fix: str):
        raise SpecError(f"{self.where}: field '{field_name}': {problem}; {fix}")

    def known_fields(self, table: dict, known: tuple[str, ...], prefix: str) -> None:
        for key in table:
            if key not in known:
                self.fail(prefix + key, "unknown field", f"use one of: {', '.join(known)}")

    def present(self, table: dict, key: str, prefix: str) -> None:
        if key not in table:
            self.fail(prefix + key, "missing", f"add {prefix + key} (see docs/internals.md §2.2)")

    def string(self, table: dict, key: str, prefix: str = "") -> str:
        value = table.get(key)
        if not isinstance(value, str) or not value.strip():
            self.fail(prefix + key, f"expected a non-empty string, got {value!r}", f'write {key} = "..."')
        return value

    def string_list(self, table: dict, key: str, prefix: str = "", default=None) -> list[str]:
        value = table.get(key, default)
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            self.fail(
                prefix + key, f"expected a list of strings, got {value!r}", f'write {key} = ["...", ...]'
            )
        return value


def _spec_files(spec_dir: Path) -> list[str]:
    """What `glob("*.toml")` finds, without compiling its pattern on every run."""
    try:
        return [n for n in os.listdir(spec_dir) if n.endswith(".toml") and not n.startswith(".")]
    except OSError:
        return []


def _toml_reader(where: str):
    """bytes -> the spec's table, as JSON keeps it: a no-op run reads the table remembered in the cache."""

    def read(data: bytes) -> dict:
        try:
            return json.loads(json.dumps(tomllib.loads(data.decode()), default=str))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
            raise SpecError(f"{where}: invalid TOML ({error}); fix the syntax") from None

    return read


def _display(path: Path) -> str:
    """The path as the user would type it: relative to the current directory when inside it."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _workspace(value: str, repo_root: Path, check: _Checker, overrides: Overrides) -> Path:
    field_name = "workspace (doit var workspace=)" if overrides.workspace else "workspace"
    for match in _VAR.finditer(value):
        var = match.group(1) or match.group(2)
        if not os.environ.get(var):
            check.fail(
                field_name,
                f"${{{var}}} is not set",
                f"export {var}=<your tt-metal checkout> or pass workspace=PATH",
            )
    expanded = Path(_VAR.sub(lambda m: os.environ[m.group(1) or m.group(2)], value)).expanduser()
    workspace = expanded if expanded.is_absolute() else Path(repo_root) / expanded
    if not workspace.is_dir():
        check.fail(
            field_name, f"{workspace} is not a directory", "point it at the checkout the tests run from"
        )
    return workspace.resolve()


def _modes(raw: dict, check: _Checker) -> tuple[str, ...]:
    modes = check.string_list(raw, "modes")
    for mode in modes:
        if mode not in MODES:
            check.fail("modes", f"unknown mode {mode!r}", 'use "decode" and/or "prefill"')
    if "decode" not in modes:
        check.fail(
            "modes",
            "decode is missing",
            'every fused op has a decode sequence; use ["decode"] or ["decode", "prefill"]',
        )
    if len(set(modes)) != len(modes):
        check.fail("modes", f"duplicate mode in {modes}", "list each mode once")
    return tuple(m for m in MODES if m in modes)


def _prefill_seqlens(raw: dict, modes: tuple[str, ...], check: _Checker) -> tuple[int, ...]:
    if "prefill" not in modes:
        return ()
    value = raw.get("prefill_seqlens")
    if (
        not isinstance(value, list)
        or not value
        or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value)
    ):
        check.fail(
            "prefill_seqlens",
            f"expected a non-empty list of positive integers, got {value!r}",
            'write prefill_seqlens = [128, 1024], or drop "prefill" from modes',
        )
    return tuple(value)


def _module_test(raw: dict, modes: tuple[str, ...], check: _Checker) -> ModuleTest:
    table = raw["module_test"]
    if not isinstance(table, dict):
        check.fail("module_test", "expected a table", "write a [module_test] section with argv and select")
    check.known_fields(table, ("argv", "select"), "module_test.")
    check.present(table, "argv", "module_test.")
    check.present(table, "select", "module_test.")
    argv = check.string_list(table, "argv", "module_test.")
    if not argv:
        check.fail("module_test.argv", "empty", 'write argv = ["pytest", "path/to/test.py::test_name", ...]')
    if Path(argv[0]).name != "pytest":
        check.fail(
            "module_test.argv",
            f"starts with {argv[0]!r}",
            'start it with "pytest" (the runner adds the python and -k)',
        )
    if "-k" in argv:
        check.fail("module_test.argv", "contains -k", "put the selection in module_test.select per mode")
    select = table["select"]
    if not isinstance(select, dict):
        check.fail(
            "module_test.select", "expected a table", 'write select = { decode = "...", prefill = "..." }'
        )
    for mode in select:
        if mode not in MODES:
            check.fail(f"module_test.select.{mode}", "unknown mode", 'use "decode" and/or "prefill"')
    for mode in modes:
        check.string(select, mode, "module_test.select.")
    return ModuleTest(argv=tuple(argv), select={m: select[m] for m in modes})


def _sequences(
    raw: dict, modes, workspace: Path, names: UnitTestNames, check: _Checker
) -> dict[str, Sequence]:
    table = raw["sequence"]
    if not isinstance(table, dict):
        check.fail("sequence", "expected tables", "write [sequence.decode] (and [sequence.prefill]) sections")
    for mode in table:
        if mode not in MODES:
            check.fail(f"sequence.{mode}", "unknown mode", "use [sequence.decode] and/or [sequence.prefill]")
    sequences = {}
    for mode in modes:
        prefix = f"sequence.{mode}."
        if mode not in table:
            check.fail(
                f"sequence.{mode}", "missing", f"add a [sequence.{mode}] section (file, start, end, call)"
            )
        entry = table[mode]
        check.known_fields(entry, _SEQUENCE_FIELDS, prefix)
        if "call" not in entry:
            check.fail(
                prefix + "call",
                "missing",
                f"`doit scaffold fused_op={raw['name']}` writes it (--force "
                "when the unit test exists: it then writes <unit test>.new)",
            )
        file = check.string(entry, "file", prefix)
        start, end = _anchors(entry, workspace, file, prefix, check)
        sequence = Sequence(file, start, end, check.string(entry, "call", prefix))
        try:
            call = ast.parse(sequence.call.strip())
        except SyntaxError:
            check.fail(
                prefix + "call", "is not a Python statement", "write one statement such as 'out = f(x)'"
            )
        if not _calls(call, names.ttnn):
            check.fail(
                prefix + "call",
                f"does not call {names.ttnn}(...)",
                f'write e.g. call = "out = {names.ttnn}(x, ...)"',
            )
        sequences[mode] = sequence
    return sequences


def _calls(tree: ast.AST, function: str) -> bool:
    return any(isinstance(n, ast.Call) and getattr(n.func, "id", None) == function for n in ast.walk(tree))


def _anchors(entry: dict, workspace: Path, file: str, prefix: str, check: _Checker) -> tuple[str, str]:
    """start/end as given (located in `file`), or the anchors naming exactly `lines` / `function`."""
    ways = [key for key in ("lines", "function") if key in entry] + (["start"] if "start" in entry else [])
    if len(ways) != 1 or ("end" in entry) != ("start" in entry):
        check.fail(
            prefix.rstrip("."),
            f"names the sequence by {ways or 'nothing'}",
            'give exactly one of: start and end (anchors), lines = [first, last], function = "name"',
        )
    path = workspace / file
    if not path.is_file():
        check.fail(
            prefix + "file", f"{file} does not exist in {workspace}", "give it relative to the workspace"
        )
    if ways[0] != "start":
        from pipeline.scaffold import region  # only for sequences named by lines or function

        try:
            found = region.named_by(path.read_text(), file, entry.get("lines"), entry.get("function", ""))
            return region.anchors_for(found)
        except region.ExtractError as error:
            problem, _, fix = str(error).removeprefix(f"{file}: ").rpartition("; ")
            check.fail(prefix + ways[0], problem or fix, fix if problem else "fix the region")
    try:
        start, end = check.string(entry, "start", prefix), check.string(entry, "end", prefix)
        anchors.locate(path.read_text(), start, end, file)
        return start, end
    except anchors.AnchorError as error:
        check.fail(prefix + error.key, error.problem, error.fix)
