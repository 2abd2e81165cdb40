"""single_device [guide step 11]: every case of test_<op>_single_device, checked against the unit test.

Blocked until unit_test passed. A skip is accepted only when the unit test's own device-perf window
holds a CCL op (AllGather, ReduceScatter, AllReduce, AllToAll), and the accepted skip names it. Guide
step 11.6: each case's PCC equals the multi-device run's for the same case to the precision expected_pcc
is written with (0.001): the single device sees only the first device's share of the input, so the
digits beyond that differ by construction.
"""

from pipeline import artifacts, facts
from pipeline.steps import _cases, _claims
from pipeline.steps._common import Job, blocked, finish, start

SUFFIX = "_single_device"
PCC_PRECISION = 0.001


def run(job: Job) -> dict:
    clock = start(job)
    gate = blocked(job, clock, "unit_test")
    if gate:
        return gate
    spec = job.spec
    outcome, cases, files, argv = _cases.run_function(job, spec.names.single_device)
    _claims.attach(cases, facts.read(job.step_dir))
    ccl = _ccl_ops(job)
    if _cases.all_skipped(cases) and not ccl:
        gate = blocked(job, clock, "unit_perf")  # the skip's claim is checked against that window
        if gate:
            return gate
    verdict, message = _cases.verdict(outcome, cases, spec.prefill_seqlens, skip_ok=lambda _: bool(ccl))
    if verdict == artifacts.SKIPPED:
        message = f"{message} (accepted: the unit test's device-perf window has {', '.join(ccl)})"
    elif _cases.all_skipped(cases):
        verdict = artifacts.FAILED
        message = (
            f"the single-device test skips ({_cases.skip_reason(cases)}) but the unit test's device-perf "
            f"window has no CCL op ({', '.join(_window_ops(job)) or 'no window'}): run it (guide step 11)"
        )
    elif verdict == artifacts.PASSED and claim_problems(spec, cases):
        found = claim_problems(spec, cases)
        more = f" (+{len(found) - 3} more)" if len(found) > 3 else ""
        verdict, message = artifacts.FAILED, "; ".join(found[:3]) + more
    elif verdict == artifacts.PASSED:
        differences = pcc_differences(job.upstream_result("unit_test"), cases)
        if differences:
            verdict, message = (
                artifacts.FAILED,
                "PCC differs from the multi-device test (guide step 11.6): " + "; ".join(differences[:3]),
            )
    figures = {"function": spec.names.single_device, "cases": cases}
    return finish(job, clock, verdict, message, figures, files, outcomes=[outcome], commands=[argv])


def claim_problems(spec, cases: list[dict]) -> list[str]:
    """Every required case present, and each case's claims against its facts (one device, ...)."""
    missing = _claims.missing_cases(cases, spec.prefill_seqlens, spec.modes)
    return [f"no case for {m} (guide step 11)" for m in missing] + _claims.problems(cases, single_device=True)


def pcc_differences(unit_test: dict | None, cases: list[dict]) -> list[str]:
    """Same parameters, same PCC name (without the _single_device suffix), as printed."""
    multi = {
        tuple(_cases.params(c["id"])): c for c in ((unit_test or {}).get("figures") or {}).get("cases", [])
    }
    found = []
    for case in cases:
        other = multi.get(tuple(_cases.params(case["id"])))
        if other is None or case["outcome"] != "passed":
            continue
        theirs = {name.removesuffix(SUFFIX): value for name, value in other["pcc"].items()}
        for name, value in case["pcc"].items():
            expected = theirs.get(name.removesuffix(SUFFIX))
            if expected is not None and abs(value - expected) > PCC_PRECISION:
                found.append(
                    f"{case['id']} {name}: single {_cases.pcc_text(value)}, multi {_cases.pcc_text(expected)}"
                )
    return found


def _ccl_ops(job: Job) -> list[str]:
    found = set()
    for key in job.upstream:
        if key.startswith("unit_perf"):
            result = job.upstream_result(key) or {}
            found.update((result.get("figures") or {}).get("ccl_ops", []))
    return sorted(found)


def _window_ops(job: Job) -> list[str]:
    ops = []
    for key in job.upstream:
        if key.startswith("unit_perf"):
            ops += ((job.upstream_result(key) or {}).get("figures") or {}).get("one_iteration_ops", [])
    return list(dict.fromkeys(ops))
