"""The mutation corpus (corpus.py): each broken variant of the bundled router test is caught, in a full
`doit run fused_op=router`, FIRST by the task named for it, with the verdict and words given; the
unmutated bundled run passes every step.

Each mutant works on a copy of the session's passed router run (doit's state db and the artifacts come
along), so only the tasks the edit made stale rerun; the first task in the summary's order whose verdict
is neither good nor blocked is the one that caught it.
"""

import fnmatch
import json
import shutil
from pathlib import Path

import pytest
from corpus import HARNESS_MUTANTS, MUTANTS, Mutant
from test_e2e import _write_checkpoint, out, run

from pipeline import artifacts

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, bundled_router_run):
    return _write_checkpoint(
        tmp_path_factory.mktemp("checkpoint"), bundled_router_run[0] / "examples/gpt_oss_mini"
    )


def test_the_unmutated_router_passes_every_step(bundled_router_run):
    repo, result = bundled_router_run
    summary = json.loads((repo / "artifacts/router/summary.json").read_text())
    assert {s["task"]: s["verdict"] for s in summary["steps"] if s["verdict"] != "passed"} == {}
    assert result.returncode == 0


def test_the_corpus_is_large_enough_and_names_unique():
    assert len(HARNESS_MUTANTS) >= 15 and len({m.name for m in MUTANTS}) == len(MUTANTS)


@pytest.mark.parametrize("mutant", MUTANTS, ids=[m.name for m in MUTANTS])
def test_mutant_is_caught_first_by_its_step(mutant: Mutant, bundled_router_run, tmp_path, request):
    repo = Path(shutil.copytree(bundled_router_run[0], tmp_path / "repo", symlinks=True))
    apply(repo, mutant)
    env = {
        k: (str(request.getfixturevalue("checkpoint")) if v == "<checkpoint>" else v)
        for k, v in mutant.env.items()
    }
    done = run(repo, "run", "fused_op=router", **env)
    summary = json.loads((repo / "artifacts/router/summary.json").read_text())
    caught = first_catch(summary["steps"])
    assert caught is not None, out(done)
    assert fnmatch.fnmatchcase(caught["task"], mutant.tasks[-1]), (caught["task"], caught["message"])
    assert caught["verdict"] == mutant.verdict, caught["message"]
    for word in mutant.words:
        assert word in caught["message"], (word, caught["message"])
    assert done.returncode != 0


def first_catch(steps: list[dict]) -> dict | None:
    """The first step (in the summary's order, the pipeline's) whose verdict is neither good nor blocked."""
    bad = [
        s for s in steps if s["verdict"] not in artifacts.GOOD_VERDICTS and s["verdict"] != artifacts.BLOCKED
    ]
    return bad[0] if bad else None


def apply(repo: Path, mutant: Mutant) -> None:
    path = repo / mutant.file
    text = path.read_text()
    for search, replace in mutant.edits:
        assert search in text, f"{mutant.name}: {search!r} is not in {mutant.file} any more"
        text = text.replace(search, replace)
    path.write_text(text)
