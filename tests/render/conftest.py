"""Fixtures: two pipeline runs on the fake workspace of tests/pipeline merged into one artifacts tree
(the browser fixtures are tests/conftest.py's).

Run A builds `demo_router` as it is. Run B builds `demo_other`, whose spec's description holds HTML,
whose unit test's ops use another memory config than the module (a config mismatch) and whose
single-device test fails with `<script>alert(1)</script>`. Both `artifacts/<op>` directories are
copied into a fresh tree and indexed there with GITHUB_STEP_SUMMARY pointing at a file.
"""

import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "pipeline"))  # the fake workspace

from fakes import doit, make_doit_env, make_fake_repo  # noqa: E402

SCRIPT = "<script>alert(1)</script>"
HTML_DESCRIPTION = "<b>bold</b> & <i>x + 1</i>"
PREVIOUS_SUMMARY = "## an earlier step's summary\n"
UNIT_DIR = "examples/demo/models/demo/tests/fused"


@dataclass
class Merged:
    repo: Path
    root: Path  # the merged artifacts tree
    step_summary: Path
    index_run: object  # the CompletedProcess of `doit run index`


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{path}: {old!r} not found (the fake workspace changed?)"
    path.write_text(text.replace(old, new))


def add_other_op(repo: Path) -> None:
    """`demo_other`: demo_router's files renamed, with the three injected problems."""
    unit = repo / UNIT_DIR / "test_demo_other.py"
    unit.write_text(
        (repo / UNIT_DIR / "test_demo_router.py").read_text().replace("demo_router", "demo_other")
    )
    edit(unit, "    return mul(a, 2)", '    return mul(a, 2, memory="L1_INTERLEAVED")')
    single = "    _run(trace, program_cache, expected_pcc, expected_perf_us, single_device=True)"
    edit(unit, single, f'    assert False, "{SCRIPT}"')
    spec = (repo / "fused_ops" / "demo_router.toml").read_text().replace("demo_router", "demo_other")
    (repo / "fused_ops" / "demo_other.toml").write_text(spec.replace('"x + 1, * 2"', f'"{HTML_DESCRIPTION}"'))


@pytest.fixture(scope="session")
def merged(tmp_path_factory) -> Merged:
    base = tmp_path_factory.mktemp("render")
    repo = make_fake_repo(base / "repo")
    add_other_op(repo)
    env = make_doit_env(base)
    for op, tree in (("demo_router", "A"), ("demo_other", "B")):
        run = doit(repo, env, "run", f"fused_op={op}", f"artifacts={base / tree}")
        assert (base / tree / op / "summary.json").is_file(), run.stdout[-3000:] + run.stderr[-3000:]
    root = base / "merged"
    shutil.copytree(base / "A" / "demo_router", root / "demo_router")
    shutil.copytree(base / "B" / "demo_other", root / "demo_other")
    step_summary = base / "step_summary.md"
    step_summary.write_text(PREVIOUS_SUMMARY)
    summary_env = {**env, "GITHUB_STEP_SUMMARY": str(step_summary)}
    index_run = doit(repo, summary_env, "run", "index", f"artifacts={root}")
    return Merged(repo, root, step_summary, index_run)
