"""pipeline.tasks and pipeline.sources: the graph's names, sharing, dependencies and docs."""

import time
from pathlib import Path

from fakes import SPEC, write

from pipeline import sources
from pipeline.tasks import Pipeline


def test_dependencies_follow_imports_not_the_whole_checkout(workspace):
    deps = sources.test_dependencies(workspace, [workspace / "models/demo/tests/fused/test_demo_router.py"])
    names = {p.relative_to(workspace).as_posix() for p in deps if p.is_relative_to(workspace)}
    assert names == {
        "models/demo/tests/fused/test_demo_router.py",
        "models/__init__.py",
        "models/demo/__init__.py",
        "models/demo/tt/__init__.py",
        "models/demo/tt/fake_device.py",
        "conftest.py",
        "pytest.ini",
        "models/demo/tests/__init__.py",
        "models/demo/tests/device_perf.py",
        "models/common/__init__.py",
        "models/common/utility_functions.py",
    }


def test_relative_and_lazy_imports_are_followed(tmp_path):
    write(tmp_path / "pkg/__init__.py", "")
    write(tmp_path / "pkg/a.py", "def f():\n    from .b import g\n    from . import c\n")
    write(tmp_path / "pkg/b.py", "")
    write(tmp_path / "pkg/c.py", "")
    write(tmp_path / "test_x.py", "import pkg.a\n")
    deps = {p.name for p in sources.test_dependencies(tmp_path, [tmp_path / "test_x.py"])}
    assert deps == {"test_x.py", "__init__.py", "a.py", "b.py", "c.py"}


def test_a_cached_closure_is_recomputed_when_a_file_or_a_folder_changes(tmp_path):
    write(tmp_path / "pkg/__init__.py", "")
    write(tmp_path / "pkg/a.py", "import pkg.later\n")  # does not resolve yet
    write(tmp_path / "test_x.py", "import pkg.a\n")
    cache = sources.SourceCache(tmp_path / "cache.json")

    def names():  # as each doit command does, in a process of its own
        sources._resolve.cache_clear()
        return {p.name for p in sources.test_dependencies(tmp_path, [tmp_path / "test_x.py"], cache=cache)}

    assert names() == {"test_x.py", "__init__.py", "a.py"} and names() == {"test_x.py", "__init__.py", "a.py"}
    time.sleep(0.05)  # file times tick with the kernel's coarse clock (a few ms); a user's edit is later
    write(tmp_path / "pkg/later.py", "")  # only the folder's stamp says the import resolves now
    assert names() == {"test_x.py", "__init__.py", "a.py", "later.py"}
    time.sleep(0.05)
    write(tmp_path / "pkg/a.py", "import pkg.later\nimport pkg.other\n")
    write(tmp_path / "pkg/other.py", "")
    assert "other.py" in names()


def test_the_cache_drops_entries_of_files_that_are_gone_when_it_saves(tmp_path):
    kept, gone = write(tmp_path / "kept.csv", "a"), write(tmp_path / "gone.csv", "b")
    cache = sources.SourceCache(tmp_path / "cache.json")
    for path in (kept, gone):
        assert cache.get("md5", path, len) == 1
    cache.remember("closure:x", "fingerprint", ["answer"])
    gone.unlink()
    cache.save()
    entries = sources.SourceCache(tmp_path / "cache.json").entries
    assert sorted(entries) == ["closure:x", f"file:md5:{kept}"]


def fake_pipeline(tmp_path, *specs) -> Pipeline:
    repo = tmp_path / "repo"
    from fakes import make_workspace

    make_workspace(repo / "ws")
    for name, text in specs:
        write(repo / "fused_ops" / f"{name}.toml", text)
    return Pipeline.load(repo)


def twin_spec() -> str:
    """A second fused op on the same workspace and the same module-test command."""
    return SPEC.format(workspace="ws").replace('name = "demo_router"', 'name = "twin"')


def test_identical_module_tests_are_one_shared_task(tmp_path):
    repo = tmp_path / "repo"
    write(repo / "fused_ops/twin.toml", twin_spec())
    pipeline = fake_pipeline(tmp_path, ("demo_router", SPEC.format(workspace="ws")))
    baselines = [t for t in pipeline.tasks("baseline") if t.get("actions")]
    assert len(baselines) == 2  # decode + prefill, shared by both fused ops
    assert all("(used by demo_router, twin)" in t["doc"] for t in baselines)
    assert baselines[0]["name"].startswith("test_block-") and baselines[0]["name"].endswith(":decode")
    unit = [t for t in pipeline.tasks("unit_test") if t.get("actions")]
    assert [t["name"] for t in unit] == ["demo_router", "twin"]


def test_task_dicts_use_repo_relative_paths_and_content_deps(tmp_path):
    pipeline = fake_pipeline(tmp_path, ("demo_router", SPEC.format(workspace="ws")))
    unit = next(t for t in pipeline.tasks("unit_test") if t.get("actions"))
    assert unit["targets"] == ["artifacts/demo_router/unit_test/result.json"]
    assert "ws/models/demo/tests/fused/test_demo_router.py" in unit["file_dep"]
    assert "ws/models/demo/tt/unused.py" not in unit["file_dep"]
    assert not any(Path(d).is_absolute() and "/ws/" in d for d in unit["file_dep"])
    verify = next(t for t in pipeline.tasks("patch_verify") if t.get("actions"))
    assert any(
        d.startswith("artifacts/_module_tests/test_block-") and d.endswith("/baseline/decode/result.json")
        for d in verify["file_dep"]
    )
    compare = next(t for t in pipeline.tasks("config_compare") if t.get("actions"))
    assert "artifacts/demo_router/unit_perf/decode/result.json" in compare["file_dep"]


def test_every_step_has_a_guide_doc(tmp_path):
    pipeline = fake_pipeline(tmp_path, ("demo_router", SPEC.format(workspace="ws")))
    for step in (
        "baseline",
        "patch_verify",
        "unit_test",
        "unit_perf",
        "module_perf",
        "config_compare",
        "single_device",
        "single_perf",
        "shape_check",
        "summary",
        "index",
    ):
        first = next(pipeline.tasks(step))
        assert first["doc"].startswith("[guide "), step
    assert pipeline.tasks_of(pipeline.specs[0])[-2:] == ["summary:demo_router", "index"]


def test_the_orchestrator_never_imports_a_device_stack():
    import subprocess
    import sys

    code = (
        "import sys\nsys.argv = ['doit', 'list']\nimport dodo\n"
        "import pipeline.steps.baseline, pipeline.steps.unit_perf, pipeline.steps.config_compare, pipeline.steps.summary\n"
        "print(sorted(m for m in ('torch', 'ttnn', 'ttnn_sim', 'tracy') if m in sys.modules))\n"
    )
    repo = Path(__file__).resolve().parents[2]
    env = {"PATH": "", "PYTHONPATH": str(repo)}
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=repo, capture_output=True, text=True, check=True, env=env
    )
    assert done.stdout.strip() == "[]"
