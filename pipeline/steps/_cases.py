"""Test cases of a pytest run, from its junit XML (written with junit_logging=all so each case carries
its own log): outcome, PCC/ATOL lines and e2e perf per case, and what the guide makes of them.

Durations are left out on purpose: they differ on every run, and a result that only differs in them
must not make downstream steps rerun.

The guide's required cases (step 7): decode; prefill at the shortest declared seq_len; trace on and
off; program cache on and off; random weights. ``trace`` + ``no_program_cache`` is not applicable
(step 7.6: a trace needs the program cache): it is counted apart, never as a trace case.
"""

from pathlib import Path

from pipeline import artifacts, logparse
from pipeline.steps._common import Job, relative_files, run_device

NOT_APPLICABLE = "not applicable (guide 7.6: trace requires the program cache)"


def run_function(job: Job, function: str):
    """Every case of `<unit test>::<function>`: (outcome, cases, files, argv)."""
    junit = job.step_dir / "junit.xml"
    argv = job.ctx.backend.pytest_argv(
        [f"{job.spec.unit_test}::{function}", f"--junitxml={junit}", "-o", "junit_logging=all"]
    )
    outcome = run_device(job, argv)
    files = relative_files(job, {"log": job.step_dir / "log.txt", "junit": junit if junit.exists() else None})
    return outcome, from_junit(junit), files, argv


def from_junit(path: Path) -> list[dict]:
    cases = []
    for case in logparse.junit_cases(path):
        cases.append(
            {
                "id": case.name,
                "outcome": case.outcome,
                "message": _first_line(case.message),
                "pcc": {p.name: p.value for p in logparse.unit_pccs(case.output)},
                "atol": {p.name: p.value for p in logparse.unit_atols(case.output)},
                "e2e_us": [p["us"] for p in logparse.e2e_perf(case.output)],
            }
        )
    return cases


def params(case_id: str) -> list[str]:
    return case_id.partition("[")[2].rstrip("]").split("-")


def mode_and_seq_len(case_id: str) -> tuple[str | None, int | None]:
    parts = params(case_id)
    for i, part in enumerate(parts):
        if part in ("decode", "prefill"):
            following = parts[i + 1] if i + 1 < len(parts) else ""
            return part, int(following) if following.isdigit() else None
    return None, None


def not_applicable(case_id: str) -> bool:
    parts = params(case_id)
    return "trace" in parts and "no_program_cache" in parts


def required(case_id: str, prefill_seqlens) -> bool:
    mode, seq_len = mode_and_seq_len(case_id)
    shortest = min(prefill_seqlens) if prefill_seqlens else None
    wanted = mode == "decode" or (mode == "prefill" and seq_len == shortest)
    return wanted and "real_weights" not in params(case_id) and not not_applicable(case_id)


def verdict(outcome, cases: list[dict], prefill_seqlens, skip_ok=None) -> tuple[str, str]:
    """The run's verdict from the runner outcome and the cases: a required case that skipped fails
    (unless `skip_ok(reason)` accepts it), a run of nothing fails, every skip is named."""
    if outcome.verdict == artifacts.FAILED:
        return artifacts.FAILED, failure_summary(cases) or outcome.message
    if outcome.verdict != artifacts.PASSED:
        return outcome.verdict, outcome.message
    if not cases:
        return artifacts.FAILED, "no test case ran"
    if all_skipped(cases) and skip_ok and skip_ok(skip_reason(cases)):
        return artifacts.SKIPPED, skip_reason(cases)
    skipped = [c for c in cases if c["outcome"] == "skipped" and required(c["id"], prefill_seqlens)]
    if skipped:
        shown = "; ".join(f"{c['id']}: {c['message'] or 'no reason given'}" for c in skipped[:3])
        more = f" (+{len(skipped) - 3} more)" if len(skipped) > 3 else ""
        return artifacts.FAILED, f"{len(skipped)} case(s) the guide requires skipped: {shown}{more}"
    return artifacts.PASSED, passed_line(cases)


def passed_line(cases: list[dict]) -> str:
    counted = [c for c in cases if not not_applicable(c["id"])]
    passed = sum(c["outcome"] == "passed" for c in counted)
    text = f"{passed}/{len(counted)} cases passed"
    skipped = [c for c in counted if c["outcome"] == "skipped"]
    if skipped:
        text += f", {len(skipped)} optional case(s) skipped ({skip_reason(skipped)})"
    other = len(cases) - len(counted)
    if other:
        text += f"; {other} trace + no_program_cache case(s) {NOT_APPLICABLE}"
    pccs = [v for c in counted for v in c["pcc"].values()]
    return text + (f", min PCC {pcc_text(min(pccs))}" if pccs else "")


def pcc_text(value: float) -> str:
    """For people: 4 decimals (JSON keeps the exact value)."""
    return f"{value:.4f}"


def all_skipped(cases: list[dict]) -> bool:
    return bool(cases) and all(c["outcome"] == "skipped" for c in cases)


def skip_reason(cases: list[dict]) -> str:
    reasons = sorted({c["message"] for c in cases if c["outcome"] == "skipped" and c["message"]})
    return "; ".join(reasons) or "every case was skipped"


def failure_summary(cases: list[dict], limit: int = 3) -> str:
    failed = [c for c in cases if c["outcome"] in ("failed", "error")]
    if not failed:
        return ""
    shown = "; ".join(f"{c['id']}: {c['message']}" for c in failed[:limit])
    more = f" (+{len(failed) - limit} more)" if len(failed) > limit else ""
    return f"{len(failed)} of {len(cases)} cases failed: {shown}{more}"


def trace_region_text(needed: int) -> str:
    """guide step 7: the trace region is too small; set it from the size the log prints."""
    return (
        f"the trace region is too small: set trace_region_size to at least {needed} in the test's "
        "device_params (guide step 7.5)"
    )


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else ""
