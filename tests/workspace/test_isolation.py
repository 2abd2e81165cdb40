"""The workspace and the orchestrator stay apart: tests import nothing of the pipeline, and the pipeline's own
process runs where torch, transformers and ttnn cannot be imported."""

import ast
import subprocess
import sys
import textwrap

import pytest
from workspace_helpers import REPO

EXAMPLES = REPO / "examples"
DEVICE_SIDE = ("torch", "transformers", "ttnn", "ttnn_sim", "tracy")
BLOCKER = textwrap.dedent(
    f"""
    import sys

    class _Blocked:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in {DEVICE_SIDE!r}:
                raise ImportError(f"{{name}} is blocked in the orchestrator's process")
            return None

    sys.meta_path.insert(0, _Blocked())
    """
)


def imported_roots(path) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


def test_no_workspace_file_imports_the_pipeline():
    files = sorted(EXAMPLES.rglob("*.py"))
    assert len(files) > 20
    offenders = [str(f.relative_to(REPO)) for f in files if "pipeline" in imported_roots(f)]
    assert offenders == []


def test_the_import_check_sees_a_pipeline_import(tmp_path):
    module = tmp_path / "t.py"
    module.write_text("def f():\n    from pipeline.steps import _perf\n")
    assert "pipeline" in imported_roots(module)


@pytest.fixture(scope="module")
def blocked_env(tmp_path_factory):
    """sitecustomize.py (run at interpreter start) installs a finder that refuses the device-side packages."""
    folder = tmp_path_factory.mktemp("blocker")
    (folder / "sitecustomize.py").write_text(BLOCKER)
    import os

    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(folder), str(REPO)])}


def _python(env, *args, cwd=REPO):
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


def test_the_blocker_blocks(blocked_env):
    done = _python(blocked_env, "-c", "import torch")
    assert done.returncode != 0 and "torch is blocked" in done.stderr


def test_pipeline_imports_and_doit_list_without_device_packages(blocked_env):
    imported = _python(
        blocked_env, "-c", "import pipeline.tasks, pipeline.steps, pipeline.runner; print('ok')"
    )
    assert imported.returncode == 0 and imported.stdout.strip() == "ok", imported.stderr
    listed = _python(blocked_env, "-m", "doit", "list")
    assert listed.returncode == 0, listed.stderr
    assert "unit_test" in listed.stdout


def test_fused_op_tests_stay_small_because_the_shared_parts_live_in_the_helper():
    """Each well under half of tt-metal's test_gpt_oss_router.py (about 39 KB)."""
    tests = sorted((EXAMPLES / "gpt_oss_mini").rglob("fused_op_unit_tests/test_*.py"))
    assert len(tests) >= 3
    assert {t.name: t.stat().st_size for t in tests if t.stat().st_size >= 39_000 // 2} == {}


def test_pipeline_modules_stay_under_500_lines():
    sizes = {
        str(p.relative_to(REPO)): len(p.read_text().splitlines()) for p in (REPO / "pipeline").rglob("*.py")
    }
    assert {name: lines for name, lines in sizes.items() if lines >= 500} == {}
