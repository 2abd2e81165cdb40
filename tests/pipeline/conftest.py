"""Fixtures over tests/pipeline/fakes.py (the fake workspace, spec and repo)."""

from pathlib import Path

import pytest
from fakes import SPEC, make_doit_env, make_fake_repo, make_workspace, write


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
