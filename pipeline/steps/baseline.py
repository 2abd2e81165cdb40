"""baseline [guide step 1]: the module test as given, per mode; its PCC lines are the reference for step 6."""

from pipeline import artifacts, logparse, selections
from pipeline.steps import _cases
from pipeline.steps._common import Job, finish, relative_files, run_device, start


def run(job: Job) -> dict:
    clock = start(job)
    spec = job.spec
    select = spec.module_test.select[job.mode]
    junit = job.step_dir / "junit.xml"
    collect_argv = job.ctx.backend.pytest_argv([*spec.module_test.argv, "-k", select, "--collect-only", "-q"])
    collected = run_device(job, collect_argv, log_name="collect.txt")
    ids = logparse.collected_ids(collected.output)
    files = {"collect": job.step_dir / "collect.txt"}
    if not ids:
        verdict = artifacts.FAILED if collected.verdict != artifacts.INFRA_FAILURE else collected.verdict
        message = f"{_selection_error(job, select, [])} ({collected.message})"
        files = relative_files(job, files)
        return finish(
            job, clock, verdict, message, files=files, outcomes=[collected], commands=[collect_argv]
        )
    argv = job.ctx.backend.pytest_argv(
        [*spec.module_test.argv, "-k", select, f"--junitxml={junit}", "-o", "junit_logging=all"]
    )
    outcome = run_device(job, argv)
    files.update(log=job.step_dir / "log.txt", junit=junit if junit.exists() else None)
    pccs = logparse.module_pccs(outcome.output)
    cases = _cases.from_junit(junit)
    verdict, message = outcome.verdict, outcome.message
    if verdict == artifacts.FAILED:
        message = _cases.failure_summary(cases) or message
    elif verdict == artifacts.PASSED and not pccs:
        verdict, message = (
            artifacts.FAILED,
            "no PCC line ('<Name> test passed. Output: <pcc>') in the module test's output",
        )
    elif verdict == artifacts.PASSED:
        message = ", ".join(f"{p.name} {p.text}" for p in pccs)
    notes = []
    if len(ids) != 1 and verdict != artifacts.INFRA_FAILURE:
        verdict, message = artifacts.FAILED, _selection_error(job, select, ids)
    figures = {
        "selected": ids,
        "pcc": [{"name": p.name, "text": p.text, "value": p.value, "passed": p.passed} for p in pccs],
        "cases": [{k: c[k] for k in ("id", "outcome", "message")} for c in cases],
    }
    files = relative_files(job, files)
    outcomes, commands = [collected, outcome], [collect_argv, argv]
    return finish(job, clock, verdict, message, figures, files, notes, outcomes=outcomes, commands=commands)


def _selection_error(job: Job, select: str, ids: list[str]) -> str:
    available = _available_ids(job) if not ids else []
    return selections.error_message(job.ctx.display(job.spec.source), job.mode, select, ids, available)


def _available_ids(job: Job) -> list[str]:
    """What the module test offers (ids differ between tt-metal versions, so show them rather than guess)."""
    argv = job.ctx.backend.pytest_argv([*job.spec.module_test.argv, "--collect-only", "-q"])
    outcome = run_device(job, argv, log_name="collect_all.txt")
    return logparse.collected_ids(outcome.output)
