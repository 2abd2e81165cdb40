"""The patched-module verification's patch (guide step 6), applied at import time in the child.

The guide edits the module, runs the module test and reverts. Here no file ever changes: the
orchestrator plans the patch (``plan``) and writes it as JSON; in the child, the pytest plugin
``pipeline.patch_plugin`` installs ``PatchFinder``, a meta-path finder that serves the patched source
for that one file, whatever name it is imported under. The replaced statements become a function-local
import of ``<op>_ttnn`` from the unit-test module (which avoids import cycles), that function wrapped by
``pipeline.region_probe.probed`` (it counts the calls, and captures the first one's arguments and results
when asked), and the spec's call.
"""

import ast
import difflib
import hashlib
import importlib.abc
import importlib.machinery
import importlib.util
import json
import os
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

from pipeline import anchors

ENV_VAR = "PIPELINE_PATCH"  # path of the JSON patch description, read by pipeline.patch_plugin
PLUGIN = "pipeline.patch_plugin"
SERVED_MARKER = "pipeline.patching: serving patched"
SERVED_SUFFIX = ".served"  # beside the JSON description: proof the child imported the patched module
PROBE = "pipeline.region_probe"  # wraps <op>_ttnn in the child: counts its calls, captures the first


class PatchError(Exception):
    """The sequence cannot be replaced as specified (one line, naming the file and the fix)."""


@dataclass(frozen=True)
class Patch:
    file: str  # absolute path of the module file
    relative: str  # workspace-relative, for the diff
    original_sha256: str
    patched_source: str
    diff: str
    replaced_lines: tuple[int, int]  # 1-based, inclusive

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)


def plan(
    workspace: Path, file: str, start: str, end: str, call: str, unit_test: str, ttnn_function: str
) -> Patch:
    """Replace the statements from the one starting on `start`'s line to the one starting on `end`'s line."""
    path = Path(workspace) / file
    source = path.read_text()
    lines = source.splitlines(keepends=True)
    try:
        span = anchors.locate(source, start, end, file)
    except anchors.AnchorError as error:
        raise PatchError(f"{file}: {error.key} anchor: {error}") from None
    start_line, end_line = span.start_line, span.end_line
    tree = ast.parse(source, filename=str(path))
    first, first_block = _statement_at(tree, start_line, file, "start")
    last, last_block = _statement_at(tree, end_line, file, "end")
    if first_block is not last_block:
        raise PatchError(
            f"{file}: the start and end anchors are in different blocks; anchor statements of one block"
        )
    indent = lines[first.lineno - 1][: first.col_offset]
    module = module_name(unit_test)
    replacement = [
        f"{indent}from {module} import {ttnn_function}\n",
        f"{indent}from {PROBE} import probed\n",
        f"{indent}{ttnn_function} = probed({ttnn_function})\n",
        f"{indent}{call.strip()}\n",
    ]
    patched_lines = lines[: first.lineno - 1] + replacement + lines[last.end_lineno :]
    patched = "".join(patched_lines)
    try:
        ast.parse(patched, filename=str(path))
    except SyntaxError as error:
        raise PatchError(
            f"{file}: the patched module does not parse ({error.msg}, line {error.lineno}); check call"
        ) from None
    diff = "".join(difflib.unified_diff(lines, patched_lines, fromfile=f"a/{file}", tofile=f"b/{file}"))
    return Patch(
        str(path.resolve()), file, _sha256(source.encode()), patched, diff, (first.lineno, last.end_lineno)
    )


def module_name(relative_path: str) -> str:
    """`models/demos/x/tests/test_y.py` -> `models.demos.x.tests.test_y` (run from the workspace root)."""
    parts = list(Path(relative_path).with_suffix("").parts)
    return ".".join(parts)


def _statement_at(tree: ast.AST, line: int, file: str, which: str):
    """The outermost statement that starts on `line`, and the body list it belongs to."""
    for node in ast.walk(tree):
        for field in ("body", "orelse", "finalbody", "handlers"):
            block = getattr(node, field, None)
            if not isinstance(block, list):
                continue
            for statement in block:
                if isinstance(statement, ast.stmt) and statement.lineno == line:
                    return statement, block
    raise PatchError(
        f"{file}: no statement starts on line {line} ({which} anchor); anchor the first line of a statement"
    )


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# ---- child side ------------------------------------------------------------------------------------


class PatchFinder(importlib.abc.MetaPathFinder):
    """Finds modules like the normal path finder, but serves the patched source for one file."""

    def __init__(self, patch: dict):
        self.patch = patch
        self.file = os.path.realpath(patch["file"])

    def find_spec(self, fullname, path=None, target=None):
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or not spec.origin or os.path.realpath(spec.origin) != self.file:
            return None
        loader = _PatchedLoader(fullname, spec.origin, self.patch)
        patched = importlib.util.spec_from_file_location(fullname, spec.origin, loader=loader)
        patched.cached = None  # never read or write bytecode of the original file
        return patched


class _PatchedLoader(importlib.abc.Loader):
    def __init__(self, fullname: str, origin: str, patch: dict):
        self.fullname = fullname
        self.origin = origin
        self.patch = patch

    def create_module(self, spec):
        return None

    def get_source(self, fullname):
        return self.patch["patched_source"]

    def exec_module(self, module):
        on_disk = _sha256(Path(self.origin).read_bytes())
        if on_disk != self.patch["original_sha256"]:
            raise ImportError(f"{self.origin} changed after the patch was planned; rerun the step")
        line = f"{SERVED_MARKER} {self.origin} as {self.fullname} (lines {self.patch['replaced_lines']})"
        # pytest captures output during collection, so the proof goes to a file as well as to stderr.
        print(line, file=sys.stderr, flush=True)
        if os.environ.get(ENV_VAR):
            with open(os.environ[ENV_VAR] + SERVED_SUFFIX, "a") as served:
                served.write(line + "\n")
        code = compile(self.patch["patched_source"], self.origin, "exec")
        exec(code, module.__dict__)


def install_from_env() -> PatchFinder | None:
    """Install the finder described by $PIPELINE_PATCH (no-op when unset)."""
    description = os.environ.get(ENV_VAR)
    if not description:
        return None
    finder = PatchFinder(json.loads(Path(description).read_text()))
    sys.meta_path.insert(0, finder)
    return finder
