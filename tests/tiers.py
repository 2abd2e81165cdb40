"""The test suite's tiers, in one place: what `pytest -m "not slow"` (the fast tier) leaves out.

Every `e2e` test (a run of the bundled workspace) is slow; `SLOW` names the rest: a file (every test in
it) or `file::test` (every parameter of one test), paths relative to tests/, with why.
tests/conftest.py marks them; tests/test_tiers.py checks the fast tier still covers every module.
"""

from pathlib import Path

TESTS = Path(__file__).resolve().parent
PLACEHOLDERS = "scaffold/test_scaffold_placeholders.py"  # its first test keeps scaffold-run-accept fast

SLOW = {
    "pipeline/test_faults.py": "doit runs killed, interrupted and resumed on a fake checkout",
    "pipeline/test_users.py": "two users' doit runs sharing one device lock",
    "pipeline/test_flow.py": "a doit run per edit of the fake checkout",
    "pipeline/test_ttnn_backend.py": "the router graph with backend=ttnn: plain process starts",
    "pipeline/test_warm_faults.py": "the runner's fault matrix again, on the warm path",
    "pipeline/test_warm.py::test_the_warm_process_restarts_when_a_dependency_changes": "two warm starts",
    "pipeline/test_warm.py::test_the_warm_process_restarts_when_the_import_environment_changes": "two",
    "pipeline/test_warm.py::test_a_killed_warm_process_is_replaced": "a second warm start",
    "workspace/test_workspace_suite.py": "the bundled workspace's own test suite",
    "workspace/test_real_weights.py": "a checkpoint written and loaded",
    "render/test_render_browser.py": "chromium over two merged runs",
    "sim/test_coverage_script.py::test_bundled_workspace_uses_only_names_the_simulator_has": "whole tree",
    "workspace/test_splice.py::test_spliced_module_keeps_the_baseline_pcc": "6 module tests, 22 s each",
    "render/test_render_ci.py": "a doit run of the fake checkout per CI shape (70 s)",
    PLACEHOLDERS + "::test_a_trace_region_too_small_is_reported_with_its_size_then_accepted": "30 s",
    PLACEHOLDERS + "::test_a_case_failing_before_any_pcc_keeps_its_real_failure": "15 s",
}
# Tests of a slow file kept in the fast tier: one whole graph on the fake checkout runs every step.
KEPT_FAST = ("pipeline/test_flow.py::test_first_run_builds_every_step_and_all_pass",)
E2E_FILE_MARK = "pytestmark = pytest.mark.e2e"  # how a whole file is marked e2e


def relative(path: Path) -> str:
    path = Path(path).resolve()
    return path.relative_to(TESTS).as_posix() if path.is_relative_to(TESTS) else str(path)


def is_slow(path: Path, test: str, e2e: bool) -> bool:
    name = relative(path)
    if f"{name}::{test}" in KEPT_FAST:
        return False
    return e2e or name in SLOW or f"{name}::{test}" in SLOW


def fast_files() -> list[Path]:
    """Test files with at least one test in the fast tier."""
    return [
        path
        for path in sorted(TESTS.rglob("test_*.py"))
        if (relative(path) not in SLOW and E2E_FILE_MARK not in path.read_text())
        or any(kept.startswith(f"{relative(path)}::") for kept in KEPT_FAST)
    ]
