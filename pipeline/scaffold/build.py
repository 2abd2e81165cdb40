"""One scaffold: a spec with the guide's three inputs -> the unit-test file and the spec's `call` lines.

Never overwrites: an existing unit test makes it stop, unless `force`, which writes `<file>.new`
beside it. The spec only gains the fields it lacks (`call` of each sequence), in place.
"""

import json
import os
import re
import subprocess
import sys
import tomllib
from dataclasses import dataclass, replace
from pathlib import Path

from pipeline import artifacts
from pipeline.patching import module_name
from pipeline.scaffold import captured, helper
from pipeline.scaffold import inputs as module_inputs
from pipeline.scaffold.extract import extract_file
from pipeline.scaffold.modes import merge, per_mode_name
from pipeline.scaffold.region import ExtractError
from pipeline.scaffold.testgen import (
    UNFORMATTED_NOTE,
    GenerateError,
    TestPlan,
    have_ruff,
    model_dir,
    render,
    render_template,
)
from pipeline.spec import MODES, NAME_PATTERN


class ScaffoldError(Exception):
    """One line naming the file or field and what to do; nothing was written."""


@dataclass(frozen=True)
class Options:
    reference: str = ""  # package.module:callable, else the spec's `reference`, else a TODO
    csvs: tuple[tuple[str, str], ...] = ()  # (mode, module_perf CSV path) given on the command line
    force: bool = False
    artifacts_dir: str = "artifacts"  # where `doit run` left the module test's profiled runs
    capture: bool = True  # without a capture in the artifacts, run patch_verify to make one, then use it
    doit_variables: tuple[str, ...] = ()  # passed on to that run (backend=..., workspace=...)


def scaffold(repo_root: Path, name: str, options: Options) -> list[str]:
    """Write the files; return one line per thing done or left to do."""
    spec_path = spec_path_of(repo_root, name)
    spec = read_spec(spec_path)
    workspace = workspace_of(spec, spec_path, repo_root)
    unit_test = spec_field(spec, "unit_test", spec_path)
    op = Path(unit_test).stem.removeprefix("test_")
    modes = tuple(spec.get("modes", ["decode"]))
    extractions = {mode: _extract(spec, mode, workspace, f"{op}_ttnn", spec_path) for mode in modes}
    if len({e.source for e in extractions.values()}) > 1:  # one function per mode, and a dispatcher
        per_mode = {m: _extract(spec, m, workspace, per_mode_name(f"{op}_ttnn", m), spec_path) for m in modes}
        extractions = merge(f"{op}_ttnn", per_mode)
    extraction = extractions[modes[0]]
    seqlens = tuple(spec.get("prefill_seqlens", ()))
    artifacts_root = repo_root / options.artifacts_dir
    found = captured.find(artifacts_root, name, modes, seqlens, extraction.parameter_names)
    notes = [_captured_note(key, c) for key, c in found.items()]
    if not found:
        found, notes = _inputs(repo_root, spec, extraction, modes, seqlens, options)
    reference = options.reference or spec.get("reference", "")
    plan = TestPlan(name, unit_test, modes, seqlens, extraction, found, reference)
    try:
        text = render(plan, workspace)
        helpers = _helpers(workspace, unit_test)
    except GenerateError as error:
        raise ScaffoldError(str(error)) from None
    written = _write_test(workspace / unit_test, text, options.force)
    notes += [] if have_ruff() else [UNFORMATTED_NOTE]
    done = [
        *(_write_helper(workspace / path, helper_text) for path, helper_text in helpers.items()),
        *_write_calls(spec_path, extractions),
    ]
    if written.name.endswith(".new"):
        return notes + [f"wrote {written} beside the existing test (--force never overwrites it)", *done]
    if any(isinstance(c, captured.Captured) for c in found.values()) or not options.capture:
        return notes + [f"wrote {written}", *done]
    return [*done, *_from_capture(repo_root, plan, workspace, written, options, notes)]


def _from_capture(
    repo_root: Path, plan, workspace: Path, written: Path, options: Options, notes
) -> list[str]:
    """Run patch_verify (the module test with the region replaced by the test's <op>_ttnn) to capture what
    the module passes the region in each mode, and write the test again from that capture."""
    tasks = [f"patch_verify:{plan.name}:{mode}" for mode in plan.modes]
    # fused_op=: only this spec's graph (another spec whose test is not written yet must not stop it)
    argv = [sys.executable, "-m", "doit", "run", *tasks, f"fused_op={plan.name}", *options.doit_variables]
    if options.artifacts_dir != "artifacts":
        argv.append(f"artifacts={options.artifacts_dir}")
    ran = subprocess.run(argv, cwd=repo_root, capture_output=True, text=True)
    said = f"capture run `doit run {' '.join(tasks)}` exited {ran.returncode}"
    found = captured.find(
        repo_root / options.artifacts_dir,
        plan.name,
        plan.modes,
        plan.prefill_seqlens,
        plan.extraction.parameter_names,
    )
    if not found:
        tail = (ran.stdout + ran.stderr).strip().splitlines()[-1:] or [""]
        return [*notes, f"wrote {written}", f"{said} and captured nothing ({tail[0]}); the inputs above stay"]
    plan = replace(plan, inputs=found)
    try:
        artifacts.write_text(written, render(plan, workspace))
    except GenerateError as error:
        raise ScaffoldError(str(error)) from None
    unformatted = [] if have_ruff() else [UNFORMATTED_NOTE]
    return [
        said,
        *(_captured_note(k, c) for k, c in found.items()),
        *unformatted,
        f"wrote {written} from the capture",
    ]


def _captured_note(key, found) -> str:
    return f"{key[0]} inputs from the capture {found.directory}: {found.how}"


def spec_path_of(repo_root: Path, name: str) -> Path:
    if not NAME_PATTERN.fullmatch(name or ""):
        raise ScaffoldError(
            f"fused_op={name!r}: give the name of a fused_ops/<name>.toml spec ([a-z][a-z0-9_]*)"
        )
    return repo_root / "fused_ops" / f"{name}.toml"


def read_spec(path: Path) -> dict:
    try:
        return tomllib.loads(path.read_text())
    except FileNotFoundError:
        known = sorted(p.stem for p in path.parent.glob("*.toml"))
        raise ScaffoldError(
            f"{path}: no such spec; write it (name, sequence, module_test) or pick one of {known}"
        ) from None
    except tomllib.TOMLDecodeError as error:
        raise ScaffoldError(f"{path}: not valid TOML ({error})") from None


def spec_field(spec: dict, key: str, spec_path: Path):
    if key not in spec:
        raise ScaffoldError(f"{spec_path}: field '{key}' missing; add it")
    return spec[key]


def workspace_of(spec: dict, spec_path: Path, repo_root: Path) -> Path:
    path = Path(os.path.expandvars(spec_field(spec, "workspace", spec_path)))
    path = path if path.is_absolute() else repo_root / path
    if not path.is_dir():
        raise ScaffoldError(f"{spec_path}: field 'workspace': {path} is not a directory")
    return path


def _extract(spec: dict, mode: str, workspace: Path, function: str, spec_path: Path):
    if mode not in MODES:
        raise ScaffoldError(f"{spec_path}: field 'modes': unknown mode {mode!r}; use {list(MODES)}")
    sequence = spec.get("sequence", {}).get(mode)
    if not isinstance(sequence, dict) or "file" not in sequence:
        raise ScaffoldError(
            f"{spec_path}: [sequence.{mode}] missing; add file and start/end (or lines, or function)"
        )
    way = {k: sequence[k] for k in ("start", "end", "function") if k in sequence}
    if "lines" in sequence:
        way["lines"] = tuple(sequence["lines"])
    try:
        module = module_name(sequence["file"])
        return extract_file(
            workspace / sequence["file"], function, file=sequence["file"], module=module, **way
        )
    except ExtractError as error:
        raise ScaffoldError(f"[sequence.{mode}] {error}") from None


def _inputs(repo_root: Path, spec: dict, extraction, modes, seqlens, options: Options):
    given = dict(options.csvs)
    found, notes = {}, []
    for mode in modes:
        key = (mode, 1) if mode == "decode" else (mode, min(seqlens, default=0))
        csv = given.get(mode) or _profiled_csv(repo_root / options.artifacts_dir, spec, mode)
        if csv is None:
            notes.append(
                f"no module_perf CSV for {mode}: the test's inputs are TODOs; after `doit run` "
                f"profiles the module, scaffold again with --force (or give {mode}_csv=PATH)"
            )
            continue
        try:
            found[key] = module_inputs.region_inputs(csv, list(extraction.op_sequence))
        except module_inputs.InputsError as error:
            raise ScaffoldError(str(error)) from None
        notes.append(
            f"{mode} inputs from {csv} row {found[key].row} ({found[key].first_op}): {found[key].how}"
        )
    return found, notes


def _profiled_csv(artifacts_root: Path, spec: dict, mode: str) -> str | None:
    """The module test's profiled run (this argv and selection), if exactly one is in the artifacts."""
    module_test = spec.get("module_test", {})
    wanted = {"argv": module_test.get("argv"), "select": module_test.get("select", {}).get(mode)}
    layout = artifacts.Layout(artifacts_root)
    pattern = layout.module_dir("*", "module_perf", mode).relative_to(layout.root) / artifacts.RESULT
    matches = []
    for result_path in layout.root.glob(str(pattern)):
        result = artifacts.read_result(result_path.parent) or {}
        csv = result.get("files", {}).get("csv")
        config = result.get("run", {}).get("config", {})
        if csv and {key: config.get(key) for key in wanted} == wanted:
            matches.append(str(result_path.parent / csv))
    return matches[0] if len(matches) == 1 else None


def _write_test(path: Path, text: str, force: bool) -> Path:
    if path.exists():
        if not force:
            raise ScaffoldError(
                f"{path} exists; move it aside, or add --force to write {path.name}.new beside it"
            )
        path = path.with_name(path.name + ".new")
    artifacts.write_text(path, text)
    return path


def _helpers(workspace: Path, unit_test: str) -> dict[str, str]:
    """The per-model helper files the test's directory lacks, rendered for its model."""
    absent = helper.missing(workspace, unit_test)
    values = helper.values(workspace, unit_test, model_dir(unit_test)) if absent else {}
    return {
        path: render_template(helper.TEMPLATES[Path(path).name], values, workspace, path) for path in absent
    }


def _write_helper(path: Path, text: str) -> str:
    artifacts.write_text(path, text)
    todo = " (set its TODOs: MESH_SHAPE, DECODE_BATCH)" if "raise NotImplementedError" in text else ""
    return f"wrote {path}, the per-model helper the test imports{todo}"


def _write_calls(spec_path: Path, extractions: dict) -> list[str]:
    """Add `call = ...` to each [sequence.<mode>] table that lacks one."""
    text = spec_path.read_text()
    spec = tomllib.loads(text)
    done = []
    for mode, extraction in extractions.items():
        if "call" in spec["sequence"][mode]:
            continue
        header = re.search(rf"^\[sequence\.{mode}\][ \t]*(#.*)?$", text, flags=re.MULTILINE)
        if header is None:
            done.append(f"{spec_path}: add call = {json.dumps(extraction.call)} to [sequence.{mode}]")
            continue
        line = f"call = {json.dumps(extraction.call)}\n"  # a JSON string is a TOML basic string
        if header.end() == len(text):
            text += "\n"
        text = text[: header.end() + 1] + line + text[header.end() + 1 :]
        done.append(f"{spec_path}: [sequence.{mode}] call = {extraction.call}")
    if done:
        artifacts.write_text(spec_path, text)
    return done
