"""The per-model helper a scaffolded test imports, written when the model directory lacks it.

tt-metal's fused-op tests share their scaffolding through modules beside them: `fused_op_test_utils.py`
(the parametrization matrix, the PCC comparison, the perf tail of `_run_<op>_test`, the device-perf tests'
body) and `fused_op_device_perf_utils.py` (profiling a test under tracy and reducing its report). A model
that has none gets both, rendered from templates/scaffold for its own name and package. What only the
model knows comes from its own modules when they say it — `MODEL_NAME` from `reference/model.py`, the mesh
(`MESH_SHAPE`) and `tokens_for` from `tests/test_factory.py` — else it is a TODO the helper raises on at
import, naming it, so the test fails visibly instead of running on a guessed mesh. The bundled workspace's
helper is this rendering for gpt_oss_mini (a test keeps the two equal).
"""

import ast
from pathlib import Path

from pipeline.scaffold import bindings

TEST_UTILS = "fused_op_test_utils.py"
DEVICE_PERF_UTILS = "fused_op_device_perf_utils.py"
TEMPLATES = {name: f"{name}.j2" for name in (TEST_UTILS, DEVICE_PERF_UTILS)}


def module_of(path: Path) -> str:
    """A workspace-relative `.py` path -> its dotted module."""
    return ".".join(Path(path).with_suffix("").parts)


def missing(workspace: Path, unit_test: str) -> list[str]:
    """The helper files the test's directory lacks (workspace-relative paths)."""
    folder = Path(unit_test).parent
    return [str(folder / name) for name in TEMPLATES if not (workspace / folder / name).is_file()]


def tokens_module(workspace: Path, unit_test: str, model_dir: Path) -> str:
    """Where the test imports `tokens_for` from: the model's test factory when it defines it, else the
    helper (which then defines it)."""
    factory = model_dir / "tests" / "test_factory.py"
    if {"tokens_for"} <= _defines(workspace / factory):
        return module_of(factory)
    return module_of(Path(unit_test).parent / TEST_UTILS)


def values(workspace: Path, unit_test: str, model_dir: Path) -> dict:
    """The templates' values for this model."""
    reference, factory = model_dir / "reference" / "model.py", model_dir / "tests" / "test_factory.py"
    has_factory = {"MESH_SHAPE", "tokens_for"} <= _defines(workspace / factory)
    return {
        "model": model_dir.name,
        "model_key": model_dir.name.replace("_", "-"),
        "helper_package": module_of(Path(unit_test).parent / TEST_UTILS).rpartition(".")[0],
        "model_name_module": module_of(reference) if "MODEL_NAME" in _defines(workspace / reference) else "",
        "mesh_shape_module": module_of(factory) if has_factory else "",
    }


def _defines(path: Path) -> set[str]:
    """The names a module binds at its top level; empty when it is missing or does not parse."""
    try:
        return bindings.bound_names(ast.parse(path.read_text(), filename=str(path)).body)
    except (OSError, SyntaxError, ValueError):
        return set()
