"""config_compare [guide step 10.3]: the unit test runs the module's ops with the module's configuration.

One iteration of the unit test's merged signpost window must occur as a contiguous run of the
module's merged device ops, comparing OP CODE, ATTRIBUTES and every INPUT_/OUTPUT_ column that EITHER
CSV has, as stripped strings: a column one side lacks (say the module's INPUT_2_* of a bias the unit
test dropped) is a mismatch. The module is the ground truth; report.txt lists the compared columns.
Outcomes: match (exactly one place) / mismatch (the op codes
line up but properties differ: one row per op and field) / no match / ambiguous (several places).

One deliberate difference from the deepseek script: the ``DEV_<id>_`` of MEMORY cells is not compared.
The merged row is whichever device was slowest, so its device id says nothing about the configuration.
"""

import pandas as pd

from pipeline import artifacts, opsperf
from pipeline.steps import _window
from pipeline.steps._common import Job, blocked, finish, start

MATCH, MISMATCH, NO_MATCH, AMBIGUOUS = "match", "mismatch", "no match", "ambiguous"


def run(job: Job) -> dict:
    clock = start(job)
    gate = blocked(job, clock, "unit_test", "unit_perf", "module_perf")
    if gate:
        return gate
    unit_csv, module_csv = job.upstream_file("unit_perf", "csv"), job.upstream_file("module_perf", "csv")
    try:
        report = compare(unit_csv, module_csv, job.spec.names.device_perf_iters)
    except opsperf.DevicePerfError as error:
        return finish(job, clock, artifacts.FAILED, str(error))
    report["case"] = f"{job.spec.name} {job.mode}"
    json_path = artifacts.write_json(job.step_dir / "report.json", report)
    text_path = artifacts.write_text(job.step_dir / "report.txt", render_text(report))
    verdict = artifacts.PASSED if report["result"] == MATCH else artifacts.FAILED
    figures = {k: report[k] for k in ("result", "unit_ops", "match_starts", "mismatches")}
    return finish(
        job,
        clock,
        verdict,
        summary_line(report),
        figures,
        {"report_json": json_path.name, "report_txt": text_path.name},
    )


def compare(unit_csv, module_csv, iterations: int) -> dict:
    unit_rows = _window.one_iteration(unit_csv, iterations)
    method = f"one of {iterations} checked iterations"
    module_df = opsperf.read_ops_csv(module_csv)
    module_merged, _ = opsperf.merge_device_rows(module_df)
    columns = _both_sides(_used_columns(unit_rows), _used_columns(module_merged))
    unit_values = _values(unit_rows, columns)
    module_values = _values(module_merged, columns)
    n, m = len(unit_values), len(module_values)
    starts = [s for s in range(m - n + 1) if n and module_values[s : s + n] == unit_values]
    report = {
        "unit_ops": [row[0] for row in unit_values],
        "unit_rows": n,
        "unit_iteration": method,
        "module_rows": m,
        "columns": columns,
        "match_starts": starts,
        "mismatches": [],
    }
    if len(starts) == 1:
        report["result"] = MATCH
    elif len(starts) > 1:
        report["result"] = AMBIGUOUS
    else:
        report.update(_closest(unit_values, module_values, columns, unit_rows, module_merged))
    return report


def _used_columns(rows: pd.DataFrame) -> list[str]:
    """The compared columns with a value in at least one row (tt-metal's CSV has INPUT_0..N columns
    for the widest op; an empty column is an input no op here has)."""
    return [c for c in _window.config_columns(rows) if (rows[c].astype(str).str.strip() != "").any()]


def _both_sides(unit: list[str], module: list[str]) -> list[str]:
    return unit + [c for c in module if c not in unit]


def _values(rows: pd.DataFrame, columns: list[str]) -> list[tuple[str, ...]]:
    return _window.config_values(rows, columns)


def _closest(unit_values, module_values, columns, unit_rows, module_rows) -> dict:
    """Where the op codes line up: the differing fields (mismatch); nowhere: no match."""
    n = len(unit_values)
    code = columns.index("OP CODE")
    unit_codes = [row[code] for row in unit_values]
    aligned = [
        s
        for s in range(len(module_values) - n + 1)
        if n and [r[code] for r in module_values[s : s + n]] == unit_codes
    ]
    if not aligned:
        return {"result": NO_MATCH, "module_ops": [row[code] for row in module_values]}
    best = min(aligned, key=lambda s: _differences(unit_values, module_values[s : s + n]))
    mismatches = []
    for offset, (unit_row, module_row) in enumerate(
        zip(unit_values, module_values[best : best + n], strict=True)
    ):
        for column, unit_value, module_value in zip(columns, unit_row, module_row, strict=True):
            if unit_value != module_value:
                mismatches.append(
                    {
                        "row": offset,
                        "op": unit_row[code],
                        "field": column,
                        "unit": unit_value,
                        "module": module_value,
                        "module_row": best + offset,
                    }
                )
    return {"result": MISMATCH, "aligned_at": best, "aligned_candidates": aligned, "mismatches": mismatches}


def _differences(unit_values, module_values) -> int:
    return sum(
        a != b for u, m in zip(unit_values, module_values, strict=True) for a, b in zip(u, m, strict=True)
    )


def summary_line(report: dict) -> str:
    result = report["result"]
    if result == MATCH:
        return (
            f"MATCH: {report['unit_rows']} ops found once in the module's {report['module_rows']} "
            f"(at {report['match_starts'][0]})"
        )
    if result == AMBIGUOUS:
        return (
            f"AMBIGUOUS: the unit test's ops occur {len(report['match_starts'])} times in the module "
            f"(at {report['match_starts']})"
        )
    if result == NO_MATCH:
        return f"NO MATCH: the unit test's op sequence {report['unit_ops']} does not occur in the module"
    shown = "; ".join(
        f"{m['op']} {m['field']}: unit {m['unit']!r} != module {m['module']!r}"
        for m in report["mismatches"][:3]
    )
    more = f" (+{len(report['mismatches']) - 3} more)" if len(report["mismatches"]) > 3 else ""
    return f"MISMATCH: {shown}{more}"


def render_text(report: dict) -> str:
    """The deepseek script's report lines (tt-metal's deepseek example_compare_fused_wqkva_configs.py),
    then ours."""
    lines = [
        f"Case: {report['case']}",
        f"Fused merged rows: {report['unit_rows']}; period: {report['unit_rows']} "
        f"({report['unit_iteration']})",
        f"Module merged rows: {report['module_rows']}",
        f"Fused op codes (one iter): {report['unit_ops']}",
        f"Compared columns (either CSV): {', '.join(report['columns'])}",
    ]
    result = report["result"]
    if result == NO_MATCH:
        lines += ["Result: NO MATCHING SUBSEQUENCE", f"Module op codes: {report.get('module_ops')}"]
    elif result == AMBIGUOUS:
        lines += [
            f"Result: matched subsequence at start indices: {report['match_starts']}",
            "Result: MULTIPLE MATCHES (ambiguous)",
        ]
    elif result == MATCH:
        lines += [f"Result: matched subsequence at start indices: {report['match_starts']}", "Result: MATCH"]
    else:
        lines.append(f"Op codes aligned at module index {report['aligned_at']}")
        lines += [
            f"MISMATCH row {m['row']} op {m['op']} key {m['field']}: fused={m['unit']} module={m['module']}"
            for m in report["mismatches"]
        ]
        lines.append("Result: MISMATCH")
    return "\n".join(lines) + "\n"
