"""What the op page (artifacts/<op>/summary.html) shows, as plain data for its template.

Every step with its verdict, figures under the fused-op guide's names (per-iteration totals), timings,
the exact reproducer and links; the grouped findings; config compare with unit-test and module values
side by side; single- vs multi-device PCC, perf and shapes side by side; the charts; the tt-perf-report
tables.
"""

import shlex
from dataclasses import dataclass

from pipeline.render import charts, findings, flaky, history, perf_report
from pipeline.render.evidence import OpEvidence, Step, figure
from pipeline.render.matrix import state_of
from pipeline.steps._cases import pcc_text

# Figure rows of the steps table: label (the guide's words) -> how to read it from a step.
PERF_FIGURES = (
    ("total kernel duration per iteration (µs)", "kernel_us"),
    ("total op-to-op latency per iteration (µs)", "op_to_op_us"),
    ("kernel duration printed by the device-perf test (µs)", "printed_kernel_us"),
    ("op-to-op latency printed by the device-perf test (µs)", "printed_op_to_op_us"),
    ("iterations measured", "iterations"),
)
SIDE_FIGURES = (
    ("lowest PCC", "min_pcc"),
    ("total kernel duration per iteration (µs)", "kernel_us"),
    ("total op-to-op latency per iteration (µs)", "op_to_op_us"),
)


@dataclass(frozen=True)
class StepView:
    task: str
    step: str
    mode: str
    state: str
    verdict: str
    message: str
    figures: list  # (label, text)
    finished: str
    duration: str
    reproduce: list  # shell lines
    links: dict  # name -> href (relative to the op dir)
    perf_report: object  # perf_report.Report | None


def context(op: OpEvidence, reports: dict) -> dict:
    return {
        "op": op,
        "steps": [_view(op, s, reports.get(s.task)) for s in op.steps],
        "findings": findings.group(op.unexpected),
        "flaky": flaky.flaky_cases(op),
        "flaky_rule": flaky.RULE,
        "config_compare": [_config(s) for s in op.steps_of("config_compare")],
        "single_vs_multi": [_single_vs_multi(op, s) for s in op.steps_of("shape_check")],
        "charts": {
            "device_time": charts.device_time(op),
            "unit_vs_module": charts.unit_vs_module(op),
            "trend": charts.trend(history.series(op)),
        },
    }


def make_reports(op: OpEvidence) -> dict:
    return perf_report.make_all(op)


def _view(op: OpEvidence, step: Step, report) -> StepView:
    return StepView(
        task=step.task,
        step=step.step,
        mode=step.mode or "",
        state=state_of(step),
        verdict=step.verdict,
        message=step.message,
        figures=figures_of(step),
        finished=(step.finished or "").replace("T", " "),
        duration=f"{step.duration_s:.1f} s" if step.duration_s is not None else "",
        reproduce=reproducer(op, step),
        links=step.links,
        perf_report=report,
    )


def figures_of(step: Step) -> list[tuple[str, str]]:
    shown = [
        (label, _number(step.figure(name))) for label, name in PERF_FIGURES if step.figure(name) is not None
    ]
    for key, min_pcc, e2e_us in step.per_mode:
        if min_pcc is not None:
            shown.append((f"lowest PCC {key}", pcc_text(min_pcc)))
        if e2e_us is not None:
            shown.append((f"e2e perf {key} (µs)", f"{e2e_us:.3f}"))
    shown += [(f"PCC {name}", pcc_text(value)) for name, value in step.pcc_lines]
    cases = step.counted_cases  # the count the step's message gives
    if cases:
        passed = sum(c.outcome == "passed" for c in cases)
        shown.append(("cases passed", f"{passed}/{len(cases)}"))
    other = len(step.cases) - len(cases)
    if other:
        shown.append(("not applicable (trace + no_program_cache)", str(other)))
    if step.compare_result:
        shown.append(("result", step.compare_result))
    return shown


def reproducer(op: OpEvidence, step: Step) -> list[str]:
    lines = [f"doit forget {step.task} && doit run {step.task}"]
    if step.commands:
        lines.append(f"cd {shlex.quote(op.workspace)}  # the workspace root")
        lines += step.commands
    return lines


def _config(step: Step) -> dict:
    return {
        "task": step.task,
        "mode": step.mode,
        "verdict": step.verdict,
        "message": step.message,
        "result": step.compare_result,
        "ops": step.compared_ops,
        "rows": step.differences,
    }


def _single_vs_multi(op: OpEvidence, step: Step) -> dict:
    multi, single = step.sides
    tests = {"multi": op.step("unit_test"), "single": op.step("single_device")}
    rows = []
    for label, name in SIDE_FIGURES:
        ours, theirs = figure(multi, name), figure(single, name)
        if name == "min_pcc":  # shape_check compares shapes; the PCCs are the two test steps' own
            ours = ours if ours is not None else _case_pcc(tests["multi"])
            theirs = theirs if theirs is not None else _case_pcc(tests["single"])
        if ours is None and theirs is None:
            continue
        digits = 4 if name == "min_pcc" else 3
        rows.append({"label": label, "multi": _number(ours, digits), "single": _number(theirs, digits)})
    return {
        "task": step.task,
        "mode": step.mode,
        "verdict": step.verdict,
        "message": step.message,
        "rows": rows,
        "shapes": step.differences,
        "compared": step.compared_ops,
    }


def _case_pcc(step: Step | None) -> float | None:
    return step.min_case_pcc if step else None


def _number(value, digits: int = 3) -> str:
    if value is None:
        return "not recorded"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)
