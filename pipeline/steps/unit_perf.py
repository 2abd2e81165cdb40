"""unit_perf [guide steps 9, 10.1]: test_<op> under tracy for one mode, as test_<op>_device_perf runs it.

Selection (ref §1.3): ``-k "program_cache and not no_program_cache and {trace|eager} and {mode} and {seq_len}"``
(trace for decode, eager for prefill), with the test file's DEVICE_PERF_ENV_VAR=1 in the child's env.
"""

from pipeline import artifacts, opsperf
from pipeline.steps import _perf
from pipeline.steps._common import Job, finish, relative_files, start

DOC = "[guide 9, 10.1] unit-test device perf under tracy: signpost window, CCL-aware merge, per-op stats and totals"


def selection(mode: str, seq_len: int) -> str:
    run_kind = "trace" if mode == "decode" else "eager"
    return f"program_cache and not no_program_cache and {run_kind} and {mode} and {seq_len}"


def run(job: Job, function: str | None = None) -> dict:
    clock = start(job)
    spec = job.spec
    function = function or spec.names.test
    expression = selection(job.mode, spec.seq_len(job.mode))
    pytest_args = ["pytest", f"{spec.unit_test}::{function}", "-k", expression]
    profiled = _perf.profile(job, pytest_args, {spec.names.device_perf_env_var: "1"})
    return report(job, clock, profiled, lambda csv: _perf.window_figures(csv, spec.names.device_perf_iters),
                  {"function": function, "selection": expression})  # fmt: skip


def report(job: Job, clock, profiled: _perf.Profiled, analyse, extra: dict) -> dict:
    """Shared ending of the perf steps: figures from the CSV, or the reason there are none."""
    figures = {**extra, "op_support_count": profiled.op_support_count, "cases": profiled.cases}
    if profiled.trace_region_size:
        figures["required_trace_region_size"] = profiled.trace_region_size
    verdict, message, notes = profiled.verdict, profiled.message, list(profiled.notes)
    if verdict == artifacts.PASSED:
        try:
            figures.update(analyse(profiled.csv))
        except opsperf.DevicePerfError as error:
            verdict, message = artifacts.PROFILER_FAILURE, str(error)
        else:
            message = (f"kernel {figures['total_kernel_us']:.3f} us, op-to-op {figures['total_op_to_op_us']:.3f} us "
                       f"over {figures['iterations']} iteration(s), {len(figures['one_iteration_ops'])} ops per iteration")  # fmt: skip
            notes += [f"{job.task}: merge: {w}" for w in figures["merge_warnings"]]
    return finish(job, clock, verdict, message, figures, relative_files(job, profiled.files), notes,
                  outcomes=profiled.outcomes, commands=profiled.commands)  # fmt: skip
