"""What a spec needs of its unit-test file: the functions named after the file, and two module constants.

tt-metal's fused-op tests name everything after the file: ``test_<op>.py`` defines ``<op>_reference``,
``<op>_ttnn``, ``test_<op>``, ``test_<op>_single_device``, ``test_<op>_device_perf`` and
``test_<op>_single_device_device_perf``, and sets ``DEVICE_PERF_ENV_VAR`` and ``DEVICE_PERF_ITERS``. The
file is read with ``ast`` (never imported), once per version of it when a cache is given.
"""

import ast
from pathlib import Path
from typing import NamedTuple

DEFAULT_DEVICE_PERF_ITERS = 10  # tt-metal's gpt_oss fused-op tests


class UnitTestNames(NamedTuple):
    """Names derived from the unit-test file stem (docs/internals.md §2.2) plus its module constants."""

    op: str  # test_gpt_oss_router.py -> gpt_oss_router
    device_perf_env_var: str
    device_perf_iters: int

    @property
    def reference(self) -> str:
        return f"{self.op}_reference"

    @property
    def ttnn(self) -> str:
        return f"{self.op}_ttnn"

    @property
    def test(self) -> str:
        return f"test_{self.op}"

    @property
    def single_device(self) -> str:
        return f"test_{self.op}_single_device"

    @property
    def device_perf(self) -> str:
        return f"test_{self.op}_device_perf"

    @property
    def single_device_device_perf(self) -> str:
        return f"test_{self.op}_single_device_device_perf"


def read(workspace: Path, unit_test: str, name: str, fail, cache=None) -> UnitTestNames:
    """The names `unit_test` must define; `fail(field, problem, fix)` raises for the first one it lacks."""
    path = workspace / unit_test
    if not path.is_file():
        fail(
            "unit_test",
            f"{unit_test} does not exist in {workspace}",
            f"write it with `doit scaffold fused_op={name}`, or give the path relative to the workspace",
        )
    if not (path.stem.startswith("test_") and path.suffix == ".py") or len(path.stem) <= len("test_"):
        fail(
            "unit_test",
            f"{path.name} is not named test_<op>.py",
            "name the file test_<fused op>.py (guide step 3)",
        )
    op = path.stem[len("test_") :]
    outline = cache.get("outline", path, _outline) if cache else _outline(path.read_bytes())
    if "syntax_error" in outline:
        line, message = outline["syntax_error"]
        fail("unit_test", f"{unit_test} line {line}: {message}", "fix the syntax error")
    constants, functions = outline["constants"], set(outline["functions"])
    names = UnitTestNames(
        op=op,
        device_perf_env_var=constants.get("DEVICE_PERF_ENV_VAR", ""),
        device_perf_iters=constants.get("DEVICE_PERF_ITERS", DEFAULT_DEVICE_PERF_ITERS),
    )
    if not isinstance(names.device_perf_env_var, str) or not names.device_perf_env_var:
        fail(
            "unit_test",
            f'{unit_test} has no module-level DEVICE_PERF_ENV_VAR = "..."',
            f'add DEVICE_PERF_ENV_VAR = "{op.upper()}_DEVICE_PERF" (guide step 9)',
        )
    if not isinstance(names.device_perf_iters, int) or names.device_perf_iters <= 0:
        fail(
            "unit_test",
            f"DEVICE_PERF_ITERS = {names.device_perf_iters!r}",
            "make it a positive integer literal",
        )
    required = (
        names.reference,
        names.ttnn,
        names.test,
        names.single_device,
        names.device_perf,
        names.single_device_device_perf,
    )
    for function in required:
        if function not in functions:
            fail(
                "unit_test",
                f"{unit_test} defines no function {function}",
                "add it (guide steps 4-12 name every function after the file)",
            )
    return names


def _outline(source: bytes) -> dict:
    """What the spec checks of a unit test: its top-level functions and the constants it reads."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError) as error:
        return {"syntax_error": [getattr(error, "lineno", None), getattr(error, "msg", str(error))]}
    constants = _module_constants(tree)
    wanted = [name for name in ("DEVICE_PERF_ENV_VAR", "DEVICE_PERF_ITERS") if name in constants]
    return {
        "constants": {
            k: constants[k] if isinstance(constants[k], str | int | float) else None for k in wanted
        },
        "functions": [
            node.name for node in tree.body if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        ],
    }


def _module_constants(tree: ast.Module) -> dict:
    """Top-level `NAME = <literal>` assignments (never imports the file)."""
    constants = {}
    for node in tree.body:
        targets = (
            node.targets
            if isinstance(node, ast.Assign)
            else [node.target]
            if isinstance(node, ast.AnnAssign)
            else []
        )
        value = getattr(node, "value", None)
        if value is None:
            continue
        try:
            literal = ast.literal_eval(value)
        except ValueError:
            continue
        for target in targets:
            if isinstance(target, ast.Name):
                constants[target.id] = literal
    return constants
