"""artifacts/results.csv: one row per unit-test case in the schema tt-metal's DeepSeek team keeps its
per-test results in (`test_name, status, pcc, e2e perf, device perf, failure_reason, comment, link,
timestamp`).

Built from every artifacts/*/summary.json by the index step, so a tree merged from several machines
gets one merged file. `test_name` is `<unit test file>::<case id>`; `status` the case's outcome, or
`not applicable` for trace + no_program_cache (guide 7.6); `pcc` the case's lowest PCC to 4 decimals;
`e2e perf` the case's last e2e figure (µs per iteration); `device perf` the unit_perf step's total kernel
duration per iteration for the case's mode (µs); `failure_reason` the case's message when it did not
pass; `comment` flaky runs and not-applicable notes; `link` the step's log relative to artifacts/;
`timestamp` when the unit_test step finished.
"""

import csv
import io
from pathlib import Path

from pipeline import artifacts
from pipeline.render.evidence import Case, OpEvidence, Step
from pipeline.render.flaky import flaky_cases
from pipeline.render.outputs import RESULTS_CSV
from pipeline.steps._cases import NOT_APPLICABLE, pcc_text

COLUMNS = (
    "test_name",
    "status",
    "pcc",
    "e2e perf",
    "device perf",
    "failure_reason",
    "comment",
    "link",
    "timestamp",
)


def write(root: Path, ops: list[OpEvidence]) -> Path:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    for op in ops:
        writer.writerows(rows(op))
    return artifacts.write_text(Path(root) / RESULTS_CSV, buffer.getvalue())


def rows(op: OpEvidence) -> list[dict]:
    unit = op.step("unit_test")
    if unit is None:
        return []
    flaky = {f.case: f for f in flaky_cases(op) if f.task == unit.task}
    return [_row(op, unit, case, flaky.get(case.id)) for case in unit.cases]


def _row(op: OpEvidence, unit: Step, case: Case, flaky) -> dict:
    comments = []
    if case.not_applicable:
        comments.append(f"trace + no_program_cache: {NOT_APPLICABLE}")
    if flaky:
        comments.append(f"flaky: {flaky.summary}")
    link = unit.links.get("log") or unit.links.get("result") or ""
    return {
        "test_name": f"{op.unit_test}::{case.id}",
        "status": "not applicable" if case.not_applicable else case.outcome,
        "pcc": pcc_text(case.min_pcc) if case.min_pcc is not None else "",
        "e2e perf": f"{case.e2e_us[-1]:.3f}" if case.e2e_us else "",
        "device perf": _device_perf(op, case),
        "failure_reason": case.message if case.outcome not in ("passed", "skipped") else "",
        "comment": "; ".join(comments),
        "link": f"{op.op}/{link}" if link else "",
        "timestamp": unit.finished or "",
    }


def _device_perf(op: OpEvidence, case: Case) -> str:
    perf = op.step("unit_perf", case.mode) if case.mode else None
    kernel = perf.figure("kernel_us") if perf else None
    return f"{kernel:.3f}" if kernel is not None else ""
