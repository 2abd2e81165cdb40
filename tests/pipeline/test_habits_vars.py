"""A misspelled doit variable or an impossible value stops `doit run` before anything is built (issue 22)."""

import shutil

import pytest
from fakes import doit, make_doit_env, make_fake_repo, tree_digest

from pipeline.doit_vars import KNOWN

CASES = [
    ("fused_ops=demo_router", ["'fused_ops'", "fused_op=", *KNOWN]),
    ("backend=simm", ["backend=simm", "backend=sim?", "sim, ttnn"]),
    ("workspcae=examples/demo", ["'workspcae'", "workspace=", *KNOWN]),
]


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    return make_fake_repo(tmp_path_factory.mktemp("vars") / "repo")


@pytest.mark.parametrize("variable, words", CASES, ids=[c[0].split("=")[0] + "-" + c[0] for c in CASES])
def test_misspelled_variable_is_one_line_exit_2_and_writes_nothing(pristine, tmp_path, variable, words):
    repo = shutil.copytree(pristine, tmp_path / "repo")
    before = tree_digest(tmp_path)
    result = doit(repo, make_doit_env(tmp_path), "run", variable, timeout=60)
    said = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    assert result.returncode == 2, said
    assert len(said) == 1 and said[0].startswith("error: "), said
    assert all(word in said[0] for word in words), (words, said[0])
    assert tree_digest(tmp_path) == before  # nothing written: not artifacts/, not doit's db


def test_known_variables_still_run(pristine, tmp_path):
    repo = shutil.copytree(pristine, tmp_path / "repo")
    result = doit(repo, make_doit_env(tmp_path), "list", "fused_op=demo_router", "backend=sim", timeout=60)
    assert result.returncode == 0, result.stderr
