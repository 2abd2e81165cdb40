"""Fixtures over tests/pipeline/fakes.py (the fake workspace, spec and repo)."""

from pathlib import Path

import pytest
from fakes import SPEC, doit, make_doit_env, make_fake_repo, make_workspace, write


@pytest.fixture
def workspace(tmp_path) -> Path:
    return make_workspace(tmp_path / "ws")


@pytest.fixture
def spec_dir(tmp_path, workspace) -> Path:
    specs = tmp_path / "fused_ops"
    write(specs / "demo_router.toml", SPEC.format(workspace=workspace))
    return specs


@pytest.fixture
def fake_repo(tmp_path) -> Path:
    return make_fake_repo(tmp_path / "repo")


@pytest.fixture
def doit_env(tmp_path) -> dict:
    return make_doit_env(tmp_path)


@pytest.fixture(scope="session")
def fake_first_run(tmp_path_factory):
    """One `doit run` of the fake checkout, shared by every test that starts from a completed run: (repo,
    result). Tests work on copies of it (mtimes kept, as a local copy would), so none sees another's edits."""
    base = tmp_path_factory.mktemp("fake_first_run")
    repo = make_fake_repo(base / "repo")
    return repo, doit(repo, make_doit_env(base), "run")
