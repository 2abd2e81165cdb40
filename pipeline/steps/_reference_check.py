"""The reference checked against the module (issue 20): the test's `<op>_reference` on the inputs the module
passed to the region, compared with what the region returned there (patch_verify's capture, per mode).

The captured results are the module's own answer, so a reference that computes something else (another
activation, another top-k), or one that is not independent of the ttnn path in a way that hides a bug,
shows here with a PCC below the guide's 0.99, even when the test's own comparison passes. The reference
runs in a child (pipeline.reference_child): the orchestrator never imports torch.
"""

from pathlib import Path

from pipeline import artifacts, capture, patching
from pipeline.steps._common import Job, run_device

PCC_FLOOR = 0.99  # guide step 8
CHILD = "pipeline.reference_child"
OUTPUT = "reference_check.json"  # in unit_test's step dir: per mode the PCCs, or why none was measured
LOG = "reference_check.log"


def apply(job: Job, cases: list[dict], verdict: tuple[str, str]) -> tuple[str, str]:
    """unit_test's verdict, or a failure naming both PCCs when the reference disagrees with the capture."""
    found = run(job)
    if not found:
        return verdict
    failure = judge(found, cases)
    if failure is None or verdict[0] == artifacts.INFRA_FAILURE:
        return verdict
    other = f"; besides: {verdict[1]}" if verdict[0] != artifacts.PASSED else ""
    return artifacts.FAILED, failure + other


def captures(job: Job) -> dict[str, Path]:
    """mode -> patch_verify's capture directory of that mode, for the modes that captured."""
    found = {}
    for mode in job.spec.modes:
        step_dir = job.upstream.get(f"patch_verify:{mode}")
        if step_dir and capture.read(Path(step_dir)):
            found[mode] = Path(step_dir) / capture.DIRECTORY
    return found


def run(job: Job) -> dict:
    """{mode: {"pccs": [...]} | {"problem": "..."}} from the child, or {} when nothing was captured."""
    where = captures(job)
    if not where:
        return {}
    out = job.step_dir / OUTPUT
    module = patching.module_name(job.spec.unit_test)
    argv = [job.ctx.backend.python, "-m", CHILD, module, job.spec.names.op, str(out)]
    outcome = run_device(job, [*argv, *(f"{mode}={path}" for mode, path in where.items())], log_name=LOG)
    if not out.exists():
        return {mode: {"problem": f"the reference check did not finish: {outcome.message}"} for mode in where}
    return artifacts.read_json(out)


def judge(found: dict, cases: list[dict]) -> str | None:
    """The first mode whose reference output is below the floor, with the test's own PCC beside it."""
    for mode, result in found.items():
        # Indices (top-k) are compared as sets, but tied scores may still pick another expert: the values
        # beside them (the routing weights) show a reference computing something else.
        indices = set(result.get("index_outputs", []))
        pccs = enumerate(result.get("pccs", []))
        low = [(i, value) for i, value in pccs if value < PCC_FLOOR and i not in indices]
        if low:
            index, value = low[0]
            return (
                f"the reference does not compute what the module does: {mode} output {index}: "
                f"PCC {value:.6f} "
                f"< {PCC_FLOOR} between <op>_reference on the module's captured inputs and the module's "
                f"captured result (patch_verify's capture); the test's own PCC in {mode}: "
                f"{_test_pcc(cases, mode)}"
            )
    return None


def _test_pcc(cases: list[dict], mode: str) -> str:
    values = [
        v for c in cases if f"{mode}-" in c["id"] or c["id"].startswith(mode) for v in c["pcc"].values()
    ]
    return f"{min(values):.6f} (lowest of its cases)" if values else "not measured"
