"""Device-perf runs shared by unit_perf, module_perf and single_perf (guide steps 9, 10.1-10.2, 12).

Two ways to get an ops CSV, one way to adopt it:

- the user's ``test_<op>_device_perf`` / ``test_<op>_single_device_device_perf`` run as they are
  (``pytest <file>::<function> -k <mode>``, not wrapped in tracy): the function profiles its own test
  case under ``python -m tracy`` with ``TT_METAL_PROFILER_DIR`` and ``TRACY_PORT`` from us, prints its
  totals, and its tracy prints ``OPs csv generated at:``. The case selection is the test's business;
  the pipeline reads the same CSV the function measured, so nothing is profiled twice.
- the module test, which has no such function, runs under ``python -m tracy`` directly.

The report must be the one the run names and lie inside this step's dir (never "the latest folder").
Dropped profiler rows rerun once with a 10x larger op-support count.
"""

import json
from dataclasses import dataclass, field
from pathlib import Path

from pipeline import artifacts, backends, deviations, logparse, opsperf
from pipeline.steps import _cases, _window
from pipeline.steps._common import Job, finish, relative_files, run_device

CSV_NAME = "ops_perf_results.csv"
SUPPORT_COUNT_GROWTH = 10
AGREEMENT = 0.01  # the user's printed per-iteration totals vs ours, same CSV


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
    printed: dict | None = None  # the device-perf function's own per-iteration totals


def run_device_perf_function(job: Job, function: str) -> Profiled:
    """`pytest <unit test>::<function> -k <mode>`, which profiles its own case (the function's contract)."""
    junit = job.step_dir / "junit.xml"
    test = f"{job.spec.unit_test}::{function}"
    junit_args = [f"--junitxml={junit}", "-o", "junit_logging=all"]
    pytest_args = ["pytest", test, "-k", job.mode, "--capture=tee-sys", *junit_args]

    def attempt(count: int):
        env = {
            "TT_METAL_PROFILER_DIR": str(job.step_dir / "profiler"),
            "TRACY_PORT": str(backends.free_port()),
            "TT_METAL_PROFILER_PROGRAM_SUPPORT_COUNT": str(count),
        }
        return job.ctx.backend.pytest_argv(pytest_args), env

    profiled = _attempts(job, attempt, junit)
    if profiled.verdict == artifacts.PASSED:
        profiled.printed = logparse.device_perf_per_iteration(profiled.outcomes[-1].output)
    return profiled


def profile(job: Job, pytest_args: list[str]) -> Profiled:
    """Run a pytest command under tracy (the module test: it has no device-perf function of its own)."""
    junit = job.step_dir / "junit.xml"

    def attempt(count: int):
        args = [*pytest_args, f"--junitxml={junit}", "-o", "junit_logging=all"]
        return job.ctx.backend.tracy_argv(job.step_dir / "profiler", backends.free_port(), count, args), {}

    return _attempts(job, attempt, junit)


def _attempts(job: Job, make_argv, junit: Path) -> Profiled:
    count = job.ctx.op_support_count
    result = Profiled(artifacts.PASSED, "")
    for number in (1, 2):
        log_name = "log.txt" if number == 1 else "log.rerun.txt"
        argv, env = make_argv(count)
        outcome = run_device(job, argv, env, log_name=log_name)
        result.outcomes.append(outcome)
        result.commands.append(argv)
        result.files["log" if number == 1 else "log_rerun"] = job.step_dir / log_name
        result.op_support_count = count
        result.cases = _cases.from_junit(junit)
        if outcome.verdict != artifacts.PASSED:
            return _failed_run(result, outcome)
        if _cases.all_skipped(result.cases):
            result.verdict, result.message = artifacts.SKIPPED, _cases.skip_reason(result.cases)
            return result
        if not logparse.dropped_profiler_rows(outcome.output):
            break
        if number == 1:
            result.notes.append(
                f"{job.task}: the device profiler dropped rows with op-support count {count}; "
                f"reran with {count * SUPPORT_COUNT_GROWTH}"
            )
            count *= SUPPORT_COUNT_GROWTH
        else:
            result.verdict = artifacts.PROFILER_FAILURE
            result.message = f"the device profiler still dropped rows with op-support count {count}"
            return result
    return _adopt_csv(job, result, outcome.output, job.step_dir / "profiler")


def _failed_run(result: Profiled, outcome) -> Profiled:
    result.verdict = outcome.verdict
    needed = logparse.required_trace_region_size(outcome.output)
    if needed:
        result.trace_region_size = needed
        result.message = _cases.trace_region_text(needed)
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
        result.message = (
            "the run printed no 'OPs csv generated at:' line: the device-perf function must run "
            "its case under python -m tracy with -o $TT_METAL_PROFILER_DIR"
        )
        return result
    csv = Path(reported[-1])
    csv = csv if csv.is_absolute() else job.workspace / csv
    try:
        csv.resolve().relative_to(profiler_dir.resolve())
    except ValueError:
        result.verdict = artifacts.PROFILER_FAILURE
        result.message = (
            f"the profiler wrote its report outside this step's output dir ({csv}): pass "
            f"-o $TT_METAL_PROFILER_DIR to python -m tracy"
        )
        return result
    if not csv.is_file():
        result.verdict = artifacts.PROFILER_FAILURE
        result.message = f"the reported ops CSV does not exist: {csv}"
        return result
    result.csv = artifacts.copy_file(csv, job.step_dir / CSV_NAME)
    result.files["csv"] = result.csv
    return result


# ---- the guide's numbers, checked in the CSV and in the run's facts ---------------------------------


class Defect(Exception):
    """The test breaks a rule of the guide (a constant, the device count): `failed`, not profiler_failure."""


def checked_window(job: Job, csv: Path, single_device: bool = False) -> dict:
    """unit_perf / single_perf: the guide's constants, the checked window's figures, the facts agreeing.

    DEVICE_PERF_ITERS (read from the test) must be the guide's 10 or the spec's accepted deviation; the
    window is measured as that many iterations; the facts recorded in the profiled child (when the
    child wrote any) say how many <op>_ttnn calls ran inside the window and how many warm-ups before
    it (after the last comparison, so an accuracy call is never counted as a warm-up)."""
    iterations = job.spec.names.device_perf_iters
    problem = deviations.constant_problem(job.spec, "DEVICE_PERF_ITERS", iterations, "the test sets")
    if problem:
        raise Defect(problem)
    warmups = _expected_warmups(job.spec)
    figures = _window.window_figures(csv, iterations, warmups)
    if single_device and len(figures["devices"]) > 1:
        raise Defect(_window.one_device_text(figures["devices"]))
    figures["facts_cases"] = check_facts(job, figures["iterations"], warmups, single_device)
    figures["accepted_deviations"] = [
        note
        for name in ("DEVICE_PERF_ITERS", "PERF_WARMUP_ITERS")
        if (note := deviations.deviation_note(job.spec, name))
    ]
    return figures


def _expected_warmups(fused_op) -> int:
    deviation = fused_op.deviations.get("PERF_WARMUP_ITERS")
    return deviation.value if deviation else deviations.GUIDE_CONSTANTS["PERF_WARMUP_ITERS"]


def check_facts(job: Job, iterations: int, warmups: int, single_device: bool) -> list[str]:
    """The profiled cases' device-perf windows against the CSV's count and the guide's warm-ups; the
    checked case names. No facts (a child without the plugin) leaves the CSV's checks standing alone."""
    function = job.spec.names.ttnn
    checked = []
    for case, record in sorted(read_facts(job.step_dir).items()):
        window = record.get("device_perf_window")
        if not window:
            continue
        checked.append(case)
        if window.get("calls") != iterations:
            raise Defect(
                f"{case}: {window.get('calls')} calls of {function} ran between signpost('start') and "
                f"signpost('stop') (facts: direct and replayed) but the window was measured as "
                f"DEVICE_PERF_ITERS = {iterations} iterations: run exactly DEVICE_PERF_ITERS iterations there"
            )
        problem = deviations.constant_problem(
            job.spec,
            "PERF_WARMUP_ITERS",
            window.get("warmups"),
            f"{case} ran (facts: warm-up calls of "
            f"{function} after its last comparison, before signpost('start'))",
        )
        if problem:
            raise Defect(problem)
        if single_device and record.get("devices") != [1]:
            raise Defect(
                f"{case}: {function} ran on meshes of {record.get('devices')} devices (facts: "
                f"mesh shapes {record.get('mesh_shapes')}): the single-device device-perf test must run "
                f"on one device"
            )
    return checked


def read_facts(step_dir: Path) -> dict[str, dict]:
    """case -> facts record of the step's children: pipeline.facts.read when it exists (engineer h4's
    reader), else the schema's files read here (one JSON per case under <step dir>/facts/)."""
    try:
        from pipeline import facts
    except ImportError:
        records = {}
        for path in sorted((Path(step_dir) / "facts").glob("*.json")):
            record = json.loads(path.read_text())
            records[record.get("case", path.stem)] = record
        return records
    return facts.read(step_dir)


# ---- the shared ending of the perf steps -------------------------------------------------------------


def report(job: Job, clock, profiled: Profiled, analyse, extra: dict) -> dict:
    """Figures from the CSV (or the reason there are none), the user's printed totals beside ours."""
    figures = {**extra, "op_support_count": profiled.op_support_count, "cases": profiled.cases}
    if profiled.trace_region_size:
        figures["required_trace_region_size"] = profiled.trace_region_size
    verdict, message, notes = profiled.verdict, profiled.message, list(profiled.notes)
    if verdict == artifacts.PASSED:
        try:
            figures.update(analyse(profiled.csv))
        except Defect as error:
            verdict, message = artifacts.FAILED, str(error)
        except opsperf.DevicePerfError as error:
            verdict, message = artifacts.PROFILER_FAILURE, str(error)
        else:
            message = _window.describe(figures)
            notes += [f"{job.task}: merge: {w}" for w in figures["merge_warnings"]]
            notes += [f"{job.task}: {note}" for note in figures.get("accepted_deviations", [])]
            if "function" in extra:
                verdict, message = agree_with_printed(
                    figures, profiled.printed, extra.get("function"), message
                )
    files = relative_files(job, profiled.files)
    outcomes, commands = profiled.outcomes, profiled.commands
    return finish(job, clock, verdict, message, figures, files, notes, outcomes=outcomes, commands=commands)


def agree_with_printed(figures: dict, printed: dict | None, function: str, message: str) -> tuple[str, str]:
    """guide step 9: the function's printed per-iteration totals are the pipeline's, within 1 %."""
    if not printed:
        return artifacts.FAILED, (
            f"{function} printed no 'Device perf per-iteration averages: kernel=X us, "
            f"op_to_op=Y us' line: it must measure and log its window (guide step 9)"
        )
    figures["printed_total_kernel_duration_us"] = printed["kernel"]
    figures["printed_total_op_to_op_latency_us"] = printed["op_to_op"]
    for key, ours in (
        ("kernel", figures["total_kernel_duration_us"]),
        ("op_to_op", figures["total_op_to_op_latency_us"]),
    ):
        theirs = printed[key]
        if abs(theirs - ours) > AGREEMENT * max(abs(ours), 1e-9):
            return artifacts.FAILED, (
                f"{function} printed {key}={theirs:.3f} us per iteration but its CSV gives {ours:.3f} us "
                "(more than 1 % apart): it likely divides by another iteration count or measures "
                "another window"
            )
    return artifacts.PASSED, message + f"; {function} printed the same (within 1 %)"
