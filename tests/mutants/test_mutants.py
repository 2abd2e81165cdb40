"""The mutation corpus (corpus.py): each broken variant of the bundled router test is caught by the task
named for it, with the verdict and words given, and by none of the tasks listed before it; the unmutated
bundled run passes every step.

Each mutant works on a copy of the session's passed router run and runs only its own tasks (the step
modules' actions, in order), so upstream results are the passed ones and nothing else reruns: each mutant
costs the steps that must catch it, not the whole graph (a full `doit run` per mutant is about an hour
for the corpus on this machine, more than CI can give).
"""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from corpus import HARNESS_MUTANTS, MUTANTS, Mutant
from test_e2e import _write_checkpoint, env_for

from pipeline import artifacts

pytestmark = pytest.mark.e2e

RUN_TASKS = """
import fnmatch, json, os
from pathlib import Path
from pipeline.tasks import Pipeline, _execute
pipeline = Pipeline.load(Path('.'), fused_op='router')
wanted = json.loads(os.environ['MUTANT_TASKS'])
tasks = {}
for step in {name.split(':')[0] for name in wanted}:
    for task in pipeline.tasks(step):
        if task.get('name'):
            tasks[task['basename'] + ':' + task['name']] = task
done = []
for pattern in wanted:
    (name,) = [n for n in tasks if fnmatch.fnmatchcase(n, pattern)]
    action, args = tasks[name]['actions'][0]
    action(*args)
    done.append(name)
print('MUTANT_TASKS_RAN ' + json.dumps(done))
"""


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
def test_mutant_is_caught_by_its_step(mutant: Mutant, bundled_router_run, tmp_path, request):
    repo = Path(shutil.copytree(bundled_router_run[0], tmp_path / "repo", symlinks=True))
    apply(repo, mutant)
    env = {
        k: (str(request.getfixturevalue("checkpoint")) if v == "<checkpoint>" else v)
        for k, v in mutant.env.items()
    }
    run_env = {**env_for(repo), **env, "MUTANT_TASKS": json.dumps(mutant.tasks)}
    done = subprocess.run(
        [sys.executable, "-c", RUN_TASKS], cwd=repo, capture_output=True, text=True, timeout=900, env=run_env
    )
    assert "MUTANT_TASKS_RAN" in done.stdout, done.stdout[-3000:] + done.stderr[-3000:]
    ran = json.loads(done.stdout.split("MUTANT_TASKS_RAN ", 1)[1].splitlines()[0])
    results = [json.loads((result_dir(repo, task) / "result.json").read_text()) for task in ran]
    for earlier in results[:-1]:  # the task named for it is the first that catches it
        assert earlier["verdict"] in artifacts.GOOD_VERDICTS, (earlier["task"], earlier["message"])
    result = results[-1]
    assert result["verdict"] == mutant.verdict, result["message"]
    for word in mutant.words:
        assert word in result["message"], (word, result["message"])


def apply(repo: Path, mutant: Mutant) -> None:
    path = repo / mutant.file
    text = path.read_text()
    for search, replace in mutant.edits:
        assert search in text, f"{mutant.name}: {search!r} is not in {mutant.file} any more"
        text = text.replace(search, replace)
    path.write_text(text)


def result_dir(repo: Path, task: str) -> Path:
    step, owner, *mode = task.split(":")
    if step in ("baseline", "module_perf"):
        return repo / "artifacts/_module_tests" / owner / step / mode[0]
    return repo / "artifacts" / owner / step / (mode[0] if mode else "")
