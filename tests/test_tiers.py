"""The fast tier (`pytest -m "not slow"`, tests/tiers.py) covers every module of pipeline/ and ttnn_sim/:
each is imported by a fast test file or by what those tests run (dodo.py, whose tasks load the steps by
name; doit's command plugins named in pyproject.toml), directly or through what it imports, or loaded by
name into the children they start (a `-p` plugin, a `python -m` module, the shim's `ttnn` and `tracy` on
the children's PYTHONPATH)."""

from pathlib import Path

import tiers

from pipeline import sources
from pipeline.steps import STEPS

REPO = tiers.TESTS.parent
SHIM = REPO / "ttnn_sim" / "shim"
PACKAGES = ("pipeline", "ttnn_sim")


def modules() -> dict[str, Path]:
    """Every module by the name it is imported with (the shim's packages are top-level there)."""
    found = {}
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            root = SHIM if path.is_relative_to(SHIM) else REPO
            parts = path.relative_to(root).with_suffix("").parts
            found[".".join(parts[:-1] if parts[-1] in ("__init__", "__main__") else parts)] = path
    return found


def uncovered(fast: list[Path]) -> list[str]:
    roots = [REPO, SHIM, *{p.parent for p in fast}, tiers.TESTS / "pipeline"]
    project = (REPO / "pyproject.toml").read_text()  # doit's command plugins, loaded by name
    plugins = [path for name, path in modules().items() if f"{name}:" in project]
    closure = set(sources.follow_imports([*fast, REPO / "dodo.py", *plugins], roots))
    text = "\n".join(path.read_text() for path in closure if path.suffix == ".py")
    if REPO / "pipeline" / "tasks.py" in closure:  # tasks.run_step: import_module(f"pipeline.steps.{step}")
        loaded = [sources.resolve(f"pipeline.steps.{step}", [REPO]) for step in STEPS]
        closure |= set(sources.follow_imports([path for paths in loaded for path in paths], roots))
    named = [path for name, path in modules().items() if path not in closure and name in text]
    closure |= set(sources.follow_imports(named, roots))  # what a module loaded by name imports
    return [name for name, path in modules().items() if path not in closure and name not in text]


def test_the_fast_tier_covers_every_module():
    assert uncovered(tiers.fast_files()) == []


def test_a_module_only_slow_tests_reach_is_reported():
    """The check catches a gap: with only the lock's tests fast, the reference check's child (which only the
    unit_test step starts, by name) is not covered."""
    missing = uncovered([tiers.TESTS / "pipeline" / "test_lock.py"])
    assert "pipeline.reference_child" in missing


def test_slow_entries_name_existing_tests():
    for entry in (*tiers.SLOW, *tiers.KEPT_FAST):
        file, _, test = entry.partition("::")
        path = tiers.TESTS / file
        assert path.is_file(), entry
        assert not test or f"def {test}(" in path.read_text(), entry
