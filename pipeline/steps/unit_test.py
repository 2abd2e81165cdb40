"""unit_test [guide steps 7-8]: every case of test_<op>; per-case PCC and e2e perf.

Flags (as notes, not failures): a PCC below 0.99 (the guide's "likely something wrong"), an expected_pcc
that differs from what was measured, and an expected_perf_us that is missing (0.0) or off by more than
20 % — each with the value to put in the test.
"""

import ast
import math

from pipeline import artifacts
from pipeline.spec import FusedOpSpec
from pipeline.steps import _cases
from pipeline.steps._common import Job, finish, relative_files, run_device, start

DOC = "[guide 7-8] unit test: every case of test_<op>; per-case PCC and e2e perf; flags PCC < 0.99 and stale expected values"
PCC_FLOOR = 0.99
PERF_TOLERANCE = 0.2  # tt-metal asserts perf_us <= expected * 1.2


def run(job: Job, function: str | None = None) -> dict:
    clock = start(job)
    spec = job.spec
    function = function or spec.names.test
    junit = job.step_dir / "junit.xml"
    argv = job.ctx.backend.pytest_argv(
        [f"{spec.unit_test}::{function}", f"--junitxml={junit}", "-o", "junit_logging=all"]
    )
    outcome = run_device(job, argv)
    cases = _cases.from_junit(junit)
    files = relative_files(job, {"log": job.step_dir / "log.txt", "junit": junit if junit.exists() else None})
    rows = expected_rows(spec, function)
    for case in cases:
        case["expected"] = match_row(case["id"], rows)
    suggestions, notes = review(job.task, cases)
    figures = {"function": function, "cases": cases, "suggestions": suggestions, "by_mode": by_mode(cases)}
    verdict, message = outcome.verdict, outcome.message
    if verdict == artifacts.FAILED:
        message = _cases.failure_summary(cases) or message
    elif verdict == artifacts.PASSED and _cases.all_skipped(cases):
        verdict, message = artifacts.SKIPPED, _cases.skip_reason(cases)
    elif verdict == artifacts.PASSED and not cases:
        verdict, message = artifacts.FAILED, "no test case ran"
    elif verdict == artifacts.PASSED:
        passed = sum(c["outcome"] == "passed" for c in cases)
        pccs = [v for c in cases for v in c["pcc"].values()]
        message = f"{passed}/{len(cases)} cases passed" + (f", min PCC {min(pccs)}" if pccs else "")
    return finish(job, clock, verdict, message, figures, files, notes, outcomes=[outcome], commands=[argv])


def by_mode(cases: list[dict]) -> dict:
    """min PCC and the eager+program-cache e2e perf per (mode, seq_len), for the summary."""
    table = {}
    for case in cases:
        expected = case.get("expected") or {}
        if "mode" not in expected:
            continue
        key = f"{expected['mode']}_{expected.get('seq_len', '')}"
        entry = table.setdefault(key, {"min_pcc": None, "e2e_us": None})
        for value in case["pcc"].values():
            entry["min_pcc"] = value if entry["min_pcc"] is None else min(entry["min_pcc"], value)
        if _eager_program_cache(case["id"]) and case["e2e_us"]:
            entry["e2e_us"] = case["e2e_us"][-1]
    return table


def review(task: str, cases: list[dict]) -> tuple[list[dict], list[str]]:
    notes, suggestions = [], []
    for case in cases:
        for name, value in case["pcc"].items():
            if value < PCC_FLOOR:
                notes.append(
                    f"{task}: {case['id']} {name} PCC {value} < {PCC_FLOOR} (guide step 8: likely a bug)"
                )
    rows: dict = {}
    for case in cases:
        if case.get("expected") and case["pcc"]:
            rows.setdefault(_row_key(case["expected"]), []).append(case)
    for key, group in rows.items():
        expected = group[0]["expected"]
        measured_pcc = min(v for c in group for v in c["pcc"].values())
        suggestion = {
            "row": key,
            "measured_pcc": measured_pcc,
            "suggested_expected_pcc": math.floor(measured_pcc * 1000) / 1000,
        }
        if "expected_pcc" in expected and expected["expected_pcc"] != suggestion["suggested_expected_pcc"]:
            notes.append(f"{task}: {key}: expected_pcc {expected['expected_pcc']} but measured {measured_pcc}; "
                         f"suggest expected_pcc={suggestion['suggested_expected_pcc']}")  # fmt: skip
        perf = [c["e2e_us"][-1] for c in group if c["e2e_us"] and _eager_program_cache(c["id"])]
        if perf and "expected_perf_us" in expected:
            measured = perf[0]
            suggestion.update(measured_perf_us=measured, suggested_expected_perf_us=round(measured, 3))
            target = expected["expected_perf_us"]
            if not target:
                notes.append(f"{task}: {key}: expected_perf_us is 0.0 (no target); suggest expected_perf_us={measured:.3f} "
                             "with a TODO for the theoretical target (guide step 8.2)")  # fmt: skip
            elif abs(measured - target) > PERF_TOLERANCE * target:
                notes.append(f"{task}: {key}: expected_perf_us {target} but measured {measured:.3f}")
        suggestions.append(suggestion)
    return suggestions, notes


def expected_rows(spec: FusedOpSpec, function: str) -> list[dict]:
    """The parametrize rows of `function` that carry expected_pcc/expected_perf_us, read with ast."""
    try:
        tree = ast.parse((spec.workspace / spec.unit_test).read_text())
    except (OSError, SyntaxError):
        return []
    constants = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            try:
                constants[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError:
                pass
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == function:
            for decorator in node.decorator_list:
                rows = _parametrize_rows(decorator, constants)
                if rows:
                    return rows
    return []


def _parametrize_rows(decorator, constants) -> list[dict]:
    if not (
        isinstance(decorator, ast.Call)
        and getattr(decorator.func, "attr", "") == "parametrize"
        and len(decorator.args) >= 2
    ):
        return []
    try:
        names = ast.literal_eval(decorator.args[0])
        values = decorator.args[1]
        values = constants.get(values.id) if isinstance(values, ast.Name) else ast.literal_eval(values)
    except ValueError:
        return []
    names = [n.strip() for n in names.split(",")] if isinstance(names, str) else list(names)
    if "expected_pcc" not in names or not isinstance(values, list | tuple):
        return []
    return [
        dict(zip(names, row, strict=False))
        for row in values
        if isinstance(row, list | tuple) and len(row) == len(names)
    ]


def match_row(case_id: str, rows: list[dict]) -> dict | None:
    """pytest's auto id of a row is its values joined by '-' (str(float) for floats)."""
    params = "-" + case_id.partition("[")[2].rstrip("]") + "-"
    for row in rows:
        if "-" + "-".join(str(v) for v in row.values()) + "-" in params:
            return row
    return None


def _row_key(row: dict) -> str:
    return f"{row.get('mode', '?')}/seq_len={row.get('seq_len', '?')}"


def _eager_program_cache(case_id: str) -> bool:
    parts = case_id.partition("[")[2].rstrip("]").split("-")
    return "eager" in parts and "program_cache" in parts
