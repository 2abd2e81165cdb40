"""patch_verify [guide step 6]: the module test with the fused sequence replaced by a call to <op>_ttnn.

The patch is served at import time in the child (pipeline.patching); no file of the workspace changes,
which the step also checks. Passes iff the test passes and every PCC equals the baseline's (exactly as
printed, or within the spec's pcc_tolerance) and the patched module called <op>_ttnn at least once (a
module test that never runs the replaced code proves nothing). The run also captures the first call's
arguments and results (pipeline.region_probe, read by pipeline.capture) into <step dir>/capture/.
"""

import hashlib

from pipeline import artifacts, capture, logparse, patching, region_probe
from pipeline.steps import _cases
from pipeline.steps._common import Job, finish, relative_files, run_device, start


def run(job: Job) -> dict:
    clock = start(job)
    spec = job.spec
    baseline = job.upstream_result("baseline")
    if not baseline or baseline["verdict"] != artifacts.PASSED:
        return finish(
            job, clock, artifacts.BLOCKED, f"the baseline ({baseline and baseline['task']}) did not pass"
        )
    sequence = spec.sequences[job.mode]
    try:
        where = (sequence.file, sequence.start, sequence.end, sequence.call)
        patch = patching.plan(spec.workspace, *where, spec.unit_test, spec.names.ttnn)
    except patching.PatchError as error:
        return finish(job, clock, artifacts.FAILED, str(error))
    description = artifacts.write_text(job.step_dir / "patch.json", patch.to_json())
    diff = artifacts.write_text(job.step_dir / "patch.diff", patch.diff)
    module_file = spec.workspace / sequence.file
    before = _sha256(module_file)
    junit = job.step_dir / "junit.xml"
    pytest_args = [*spec.module_test.argv, "-p", patching.PLUGIN, "-k", spec.module_test.select[job.mode]]
    argv = job.ctx.backend.pytest_argv([*pytest_args, f"--junitxml={junit}", "-o", "junit_logging=all"])
    capture_dir = job.step_dir / capture.DIRECTORY
    env = {patching.ENV_VAR: str(description), region_probe.CAPTURE_ENV: str(capture_dir)}
    outcome = run_device(job, argv, env)
    calls = capture.calls(description)
    produced = {
        "log": job.step_dir / "log.txt",
        "patch_diff": diff,
        "patch": description,
        "junit": junit if junit.exists() else None,
        "capture": _existing(capture_dir / region_probe.RECORD),
    }
    files = relative_files(job, produced)
    if _sha256(module_file) != before:
        problem = f"{sequence.file} changed on disk during the run"
        return finish(job, clock, artifacts.FAILED, problem, files=files, outcomes=[outcome], commands=[argv])
    comparison = compare(baseline["figures"]["pcc"], logparse.module_pccs(outcome.output), spec.pcc_tolerance)
    figures = {
        "file": sequence.file,
        "replaced_lines": list(patch.replaced_lines),
        "pcc": comparison,
        "calls": calls,
    }
    verdict, message = _verdict(outcome, comparison, _served(description), junit)
    if verdict == artifacts.PASSED and calls == 0:
        verdict, message = artifacts.FAILED, never_called(spec.names.ttnn, job.mode)
    return finish(job, clock, verdict, message, figures, files, outcomes=[outcome], commands=[argv])


def never_called(function: str, mode: str) -> str:
    return (
        f"the module test never ran the replaced code in {mode}: {function} was called 0 times; "
        "anchor the sequence on code the selected module test executes (check select and the anchors)"
    )


def compare(baseline: list[dict], patched: list[logparse.Pcc], tolerance: float | None) -> list[dict]:
    """Pair PCC lines by name (then the leftovers by order), so each difference is one row with both values;
    equal means equal as printed (or within `tolerance`)."""
    remaining = list(patched)
    pairs = []
    for base in baseline:
        match = next((p for p in remaining if p.name == base["name"]), None)
        if match:
            remaining.remove(match)
        pairs.append([base, match])
    for pair in pairs:
        if pair[1] is None and remaining:
            pair[1] = remaining.pop(0)
    rows = [_row(base, match, tolerance) for base, match in pairs]
    rows += [
        {"name": extra.name, "baseline": None, "patched": extra.text, "equal": False} for extra in remaining
    ]
    return rows


def _row(base: dict, match, tolerance: float | None) -> dict:
    equal = (
        match is not None
        and match.name == base["name"]
        and (
            match.value == base["value"]
            if tolerance is None
            else abs(match.value - base["value"]) <= tolerance
        )
    )
    row = {
        "name": base["name"],
        "baseline": base["text"],
        "patched": match.text if match else None,
        "equal": equal,
    }
    if match is not None and match.name != base["name"]:
        row["patched_name"] = match.name
    return row


def _describe(row: dict) -> str:
    if row["baseline"] is None:
        return f"{row['name']}: only the patched run printed it ({row['patched']})"
    if row["patched"] is None:
        return f"{row['name']}: baseline {row['baseline']}, the patched run printed no PCC for it"
    renamed = f" (printed as {row['patched_name']!r})" if "patched_name" in row else ""
    return f"{row['name']}: baseline {row['baseline']}, patched {row['patched']}{renamed}"


def _verdict(outcome, comparison, served: bool, junit) -> tuple[str, str]:
    changed = [r for r in comparison if not r["equal"]]
    described = "; ".join(_describe(r) for r in changed)
    if outcome.verdict == artifacts.INFRA_FAILURE:
        return outcome.verdict, outcome.message
    if outcome.verdict != artifacts.PASSED:
        failure = _cases.failure_summary(_cases.from_junit(junit)) or outcome.message
        return artifacts.FAILED, f"the patched module test failed: {failure}" + (
            f"; PCC {described}" if described else ""
        )
    if not served:
        return (
            artifacts.FAILED,
            "the patched module was never imported: check sequence.file against the module test",
        )
    if changed:
        return artifacts.FAILED, f"PCC differs from the baseline: {described}"
    return artifacts.PASSED, "PCC unchanged: " + ", ".join(f"{r['name']} {r['patched']}" for r in comparison)


def _served(description) -> bool:
    served = description.with_name(description.name + patching.SERVED_SUFFIX)
    return served.exists() and patching.SERVED_MARKER in served.read_text()


def _existing(path):
    return path if path.exists() else None


def _sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
