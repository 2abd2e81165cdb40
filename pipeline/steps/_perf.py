"""Device-perf runs shared by unit_perf, module_perf and single_perf (guide steps 9, 10.1-10.2, 12).

``python -m tracy -r -p -o <this step's dir> -t <free port> --check-exit-code --op-support-count N -m
"pytest ..."``; the report is the one the run names on its ``OPs csv generated at:`` line and it must lie
inside this step's output dir (never "the latest folder", ref §9.4-9.5). Dropped profiler rows rerun
once with a 10x larger op-support count.
"""

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from pipeline import artifacts, backends, logparse, opsperf
from pipeline.steps import _cases
from pipeline.steps._common import Job, run_device

CSV_NAME = "ops_perf_results.csv"
SUPPORT_COUNT_GROWTH = 10


@dataclass
class Profiled:
    verdict: str
    message: str
    csv: Path | None = None
    cases: list = field(default_factory=list)
    outcomes: list = field(default_factory=list)
    commands: list = field(default_factory=list)
    notes: list = field(default_factory=list)
    files: dict = field(default_factory=dict)
    op_support_count: int = 0
    trace_region_size: int | None = None


def profile(job: Job, pytest_args: list[str], env_extra: dict | None = None) -> Profiled:
    """Run the pytest command under tracy for this step; verdict passed means a usable CSV was copied in."""
    count = job.ctx.op_support_count
    profiler_dir = job.step_dir / "profiler"
    junit = job.step_dir / "junit.xml"
    result = Profiled(artifacts.PASSED, "")
    for attempt in (1, 2):
        log_name = "log.txt" if attempt == 1 else "log.rerun.txt"
        argv = job.ctx.backend.tracy_argv(profiler_dir, backends.free_port(), count,
                                          [*pytest_args, f"--junitxml={junit}", "-o", "junit_logging=all"])  # fmt: skip
        outcome = run_device(job, argv, env_extra, log_name=log_name)
        result.outcomes.append(outcome)
        result.commands.append(argv)
        result.files["log" if attempt == 1 else "log_rerun"] = job.step_dir / log_name
        result.op_support_count = count
        result.cases = _cases.from_junit(junit)
        if outcome.verdict != artifacts.PASSED:
            return _failed_run(result, outcome)
        if _cases.all_skipped(result.cases):
            result.verdict, result.message = artifacts.SKIPPED, _cases.skip_reason(result.cases)
            return result
        if not logparse.dropped_profiler_rows(outcome.output):
            break
        if attempt == 1:
            result.notes.append(f"{job.task}: the device profiler dropped rows with --op-support-count {count}; "
                                f"reran with {count * SUPPORT_COUNT_GROWTH}")  # fmt: skip
            count *= SUPPORT_COUNT_GROWTH
        else:
            result.verdict = artifacts.PROFILER_FAILURE
            result.message = f"the device profiler still dropped rows with --op-support-count {count}"
            return result
    return _adopt_csv(job, result, outcome.output, profiler_dir)


def _failed_run(result: Profiled, outcome) -> Profiled:
    result.verdict = outcome.verdict
    needed = logparse.required_trace_region_size(outcome.output)
    if needed:
        result.trace_region_size = needed
        result.message = (f"the trace region is too small: set trace_region_size to at least {needed} in the "
                          f"test's device_params (guide step 7.5)")  # fmt: skip
        result.notes.append(f"trace_region_size too small; the log asks for {needed} B")
    elif outcome.verdict == artifacts.FAILED:
        result.message = (
            _cases.failure_summary(result.cases) or f"the profiled pytest failed ({outcome.message})"
        )
    else:
        result.message = outcome.message
    return result


def _adopt_csv(job: Job, result: Profiled, output: str, profiler_dir: Path) -> Profiled:
    reported = logparse.ops_csv_paths(output)
    if not reported:
        result.verdict = artifacts.PROFILER_FAILURE
        result.message = "the profiler run printed no 'OPs csv generated at:' line"
        return result
    csv = Path(reported[-1])
    try:
        csv.resolve().relative_to(profiler_dir.resolve())
    except ValueError:
        result.verdict = artifacts.PROFILER_FAILURE
        result.message = f"the profiler wrote its report outside this step's output dir: {csv}"
        return result
    if not csv.is_file():
        result.verdict = artifacts.PROFILER_FAILURE
        result.message = f"the reported ops CSV does not exist: {csv}"
        return result
    result.csv = artifacts.copy_file(csv, job.step_dir / CSV_NAME)
    result.files["csv"] = result.csv
    return result


# ---- figures from a CSV --------------------------------------------------------------------------


def config_columns(df: pd.DataFrame) -> list[str]:
    """ref §3: OP CODE, ATTRIBUTES and every INPUT_/OUTPUT_ column (in the file's order)."""
    named = [c for c in ("OP CODE", "ATTRIBUTES") if c in df.columns]
    return named + [c for c in df.columns if c.startswith(("INPUT_", "OUTPUT_"))]


def one_iteration(merged: pd.DataFrame, iterations: int) -> tuple[pd.DataFrame, str]:
    """The first iteration of a window of `iterations` identical iterations, and how it was found."""
    codes = list(merged["OP CODE"]) if len(merged) else []
    n = len(codes)
    if iterations > 0 and n and n % iterations == 0 and codes == codes[: n // iterations] * iterations:
        return merged.iloc[: n // iterations], f"window of {n} ops / {iterations} iterations"
    # ref §3's fallback: up to the second occurrence of the first op code.
    period = next((i for i in range(1, n) if codes[i] == codes[0]), n)
    return (
        merged.iloc[:period],
        f"period {period}: up to the second {codes[0] if codes else '-'} (window not {iterations} equal iterations)",
    )


def window_figures(csv: Path, iterations: int) -> dict:
    """Signpost window -> merge -> stats; raises opsperf.DevicePerfError with tt-metal's texts."""
    window = opsperf.signpost_window(opsperf.read_ops_csv(csv))
    merged, warnings = opsperf.merge_device_rows(window)
    if merged.empty:
        raise opsperf.DevicePerfError("No device ops between the signposts in device perf log.")
    iteration, method = one_iteration(merged, iterations)
    return _figures(merged, warnings, iteration, method, iterations)


def module_figures(csv: Path) -> dict:
    """A module-test report: every device op of the run (no signposts), merged across devices."""
    df = opsperf.read_ops_csv(csv)
    merged, warnings = opsperf.merge_device_rows(df)
    if merged.empty:
        raise opsperf.DevicePerfError("No device ops in the module test's device perf log.")
    return _figures(merged, warnings, merged, "the whole run (one module-test iteration)", 1)


def _figures(merged, warnings, iteration, method, iterations) -> dict:
    stats = opsperf.op_stats(merged)
    kernel_ns, op_to_op_ns = opsperf.totals(stats)
    ccl = sorted({code for code in merged["OP CODE"] if any(tag in code for tag in opsperf.COLLECTIVES)})
    return {
        "total_kernel_us": kernel_ns / 1000,
        "total_op_to_op_us": op_to_op_ns / 1000,
        "avg_kernel_us": kernel_ns / 1000 / iterations,
        "avg_op_to_op_us": op_to_op_ns / 1000 / iterations,
        "iterations": iterations,
        "merged_rows": len(merged),
        "op_stats": stats,
        "one_iteration_ops": list(iteration["OP CODE"]),
        "one_iteration_method": method,
        "ccl_ops": ccl,
        "merge_warnings": warnings,
        "config_digest": config_digest(iteration),
    }


def config_digest(rows: pd.DataFrame) -> str:
    """Changes iff a compared property changes: lets config_compare skip reruns that found the same configs."""
    columns = config_columns(rows)
    payload = json.dumps([columns, rows[columns].astype(str).values.tolist()])
    return hashlib.sha256(payload.encode()).hexdigest()[:16]
