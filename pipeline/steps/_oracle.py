"""The oracle of unit_test [guide steps 7.3, 8]: a unit test that passes when <op>_ttnn is wrong is blind.

After the main run passed, for each mode ONE case reruns with ``-p pipeline.oracle_plugin``, which makes
every call of ``<op>_ttnn`` (the unit-test module's attribute) return a clearly wrong answer (its outputs
permuted and, for floats, scaled by -2: see the plugin). The case must FAIL. One that still passes means
the test cannot see a wrong answer: unit_test fails with "the unit test passes when <op>_ttnn is wrong:
its reference or its assertion is blind", naming the case.

Cost: one short case per mode, chosen as the cheapest required one (eager, program_cache,
random_weights; decode, or the shortest prefill) and selected by its exact node id. Its perf tail never
runs: a test that sees the wrong answer fails at its assertion, which comes before the perf tail (the
guide's order: compare, then measure); only a blind test pays for its perf tail, and it fails anyway.

A rerun that cannot say (the perturbation raised, the case never called <op>_ttnn through the module's
global, a crash) is "error", never "caught". Figures: ``oracle = {mode: {"case", "verdict", ...}}``,
verdict ``caught`` | ``blind`` | ``error``.
"""

import json
from pathlib import Path

from pipeline import artifacts, logparse, oracle_plugin
from pipeline.steps import _cases
from pipeline.steps._common import Job, run_device

# The costly or alternative options of the guide's matrix; the cheapest case has none of them (it is
# eager, with the program cache and random weights).
COSTLY = ("trace", "no_program_cache", "real_weights")
CAUGHT, BLIND, ERROR = "caught", "blind", "error"


def check(job: Job, cases: list[dict], verdict: str, message: str, figures: dict) -> tuple[str, str]:
    """unit_test's hook: after a passing main run, one perturbed case per mode; the step's verdict."""
    figures["oracle"] = {}
    if verdict != artifacts.PASSED:
        return verdict, message  # a failing test is already not trusted; no rerun spent on it
    for mode in job.spec.modes:
        case = choose(cases, mode, job.spec.seq_len(mode))
        figures["oracle"][mode] = rerun(job, mode, case) if case else _no_case(mode)
    return judge(job.spec.names.ttnn, figures["oracle"], message)


def choose(cases: list[dict], mode: str, seq_len: int) -> str | None:
    """The cheapest passed case of `mode` (at `seq_len` for prefill): eager, program cache, random weights."""
    for case in cases:
        case_mode, case_seq_len = _cases.mode_and_seq_len(case["id"])
        if case_mode != mode or (mode == "prefill" and case_seq_len != seq_len):
            continue
        if case["outcome"] == "passed" and not set(COSTLY) & set(_cases.params(case["id"])):
            return case["id"]
    return None


def rerun(job: Job, mode: str, case_id: str) -> dict:
    """`pytest <unit test>::<case> -p pipeline.oracle_plugin` with <op>_ttnn perturbed: what happened."""
    out_dir = job.step_dir / "oracle" / mode
    out_dir.mkdir(parents=True, exist_ok=True)
    junit = out_dir / "junit.xml"
    node = f"{job.spec.unit_test}::{case_id}"
    argv = job.ctx.backend.pytest_argv(
        [node, "-p", "pipeline.oracle_plugin", f"--junitxml={junit}", "-o", "junit_logging=all"]
    )
    # Its own PIPELINE_STEP_DIR: the rerun's facts and record never mix with the main run's.
    env = {"PIPELINE_STEP_DIR": str(out_dir), oracle_plugin.ENV: job.spec.names.ttnn}
    outcome = run_device(job, argv, env, log_name=f"oracle/{mode}/log.txt")
    found = {c.name: c for c in logparse.junit_cases(junit)}
    result = {  # no command here: its paths differ per checkout, and the log's first line has it
        "case": case_id,
        "log": f"oracle/{mode}/log.txt",
        "perturbed_calls": _perturbed_calls(out_dir),
    }
    result.update(classify(outcome.verdict, outcome.message, found.get(case_id), result["perturbed_calls"]))
    return result


def classify(run_verdict: str, run_message: str, case, perturbed_calls: int) -> dict:
    """caught: the case failed with <op>_ttnn's outputs perturbed; blind: it passed; error: neither says."""
    if run_verdict not in (artifacts.PASSED, artifacts.FAILED):
        return {"verdict": ERROR, "message": f"the rerun did not finish ({run_verdict}: {run_message})"}
    if case is None:
        return {"verdict": ERROR, "message": "the rerun ran no such case"}
    first_line = case.message.strip().splitlines()[0] if case.message.strip() else ""
    if oracle_plugin.ERROR_TAG in case.message or oracle_plugin.ERROR_TAG in case.output:
        return {"verdict": ERROR, "message": first_line or "the perturbation failed"}
    if not perturbed_calls:
        return {
            "verdict": ERROR,
            "message": "the case never called the fused function through the unit-test module's global, "
            "so no output was perturbed",
        }
    if case.outcome == "passed":
        return {"verdict": BLIND, "message": "passed with every output perturbed"}
    if case.outcome == "failed":
        return {"verdict": CAUGHT, "message": first_line}
    return {"verdict": ERROR, "message": f"{case.outcome}: {first_line}"}


def judge(function: str, oracle: dict, message: str) -> tuple[str, str]:
    """failed when a mode's test is blind (or its oracle could not say); else the message says 'caught'."""
    blind = [(mode, r) for mode, r in oracle.items() if r["verdict"] == BLIND]
    if blind:
        mode, result = blind[0]
        return artifacts.FAILED, (
            f"the unit test passes when {function} is wrong: its reference or its assertion is blind "
            f"({mode}: {result['case']} passed with {function}'s outputs perturbed)"
        )
    errors = [(mode, r) for mode, r in oracle.items() if r["verdict"] == ERROR]
    if errors:
        mode, result = errors[0]
        case = result.get("case") or "no case"
        return artifacts.FAILED, f"the oracle could not check {mode} ({case}): {result['message']}"
    caught = ", ".join(f"{mode} caught" for mode in oracle)
    return artifacts.PASSED, f"{message}; oracle: {caught}"


def _no_case(mode: str) -> dict:
    return {
        "case": None,
        "verdict": ERROR,
        "message": f"no passed {mode} case without {', '.join(COSTLY)} to rerun with wrong outputs",
    }


def _perturbed_calls(out_dir: Path) -> int:
    try:
        return int(json.loads((out_dir / oracle_plugin.RECORD).read_text()).get("perturbed_calls", 0))
    except (OSError, ValueError, AttributeError):
        return 0
