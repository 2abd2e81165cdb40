"""tt-metal's ``tools/tracy/process_model_log.py``: run a command under ``python -m tracy`` and find its ops report.

Paths follow tt-metal's tracy: profiler artifacts live in ``$TT_METAL_PROFILER_DIR`` when it is set, else in
``$TT_METAL_HOME/generated/profiler`` (TT_METAL_HOME defaults to the working directory); a run's report is
``<artifacts>/<subdir>/reports/<date>/ops_perf_results_<date>.csv``. Whoever starts the test may pick tracy's
port with ``$TRACY_PORT`` (else tt-metal's 5000) and the op-support count with
``$TT_METAL_PROFILER_PROGRAM_SUPPORT_COUNT`` (else the argument), so parallel runs never share a port.
"""

import os
import shlex
import subprocess
import sys
from pathlib import Path

from loguru import logger

PROFILER_DEFAULT_OP_SUPPORT_COUNT = 1000  # tracy's own default: no --op-support-count flag is passed for it
DEFAULT_TRACY_PORT = 5000


def profiler_artifacts_dir() -> Path:
    configured = os.environ.get("TT_METAL_PROFILER_DIR")
    if configured:
        return Path(configured)
    return Path(os.environ.get("TT_METAL_HOME") or os.getcwd()) / "generated" / "profiler"


def get_profiler_folder(output_logs_subdir):
    return profiler_artifacts_dir() / output_logs_subdir


def get_latest_ops_log_filename(output_logs_subdir=""):
    """The report of the lexicographically latest run folder under ``<subdir>/reports`` (dated names sort by time)."""
    reports = get_profiler_folder(output_logs_subdir) / "reports"
    run_date = sorted(os.listdir(reports))[-1]
    return reports / run_date / f"ops_perf_results_{run_date}.csv"


def run_device_profiler(
    command,
    output_logs_subdir,
    check_test_return_code=True,
    device_analysis_types=(),
    python_post_process=True,
    capture_perf_counters_groups=(),
    sum_profiling=False,
    op_support_count=int(PROFILER_DEFAULT_OP_SUPPORT_COUNT * 1.333),
    is_command_binary_exe=False,
):
    """``python -m tracy -p -r -o <folder> --check-exit-code -a <type>... --op-support-count N -t <port> -m "<command>"``.

    The child shares this process's stdout/stderr (its ``OPs csv generated at:`` line lands where the caller's
    output goes) and its process group (whoever stops this process stops the profiled run). A failing run
    raises ``subprocess.CalledProcessError``."""
    op_support_count = int(os.environ.get("TT_METAL_PROFILER_PROGRAM_SUPPORT_COUNT") or op_support_count)
    argv = [sys.executable, "-m", "tracy", "-p"]
    argv += ["-r"] if python_post_process else []
    argv += ["-o", str(get_profiler_folder(output_logs_subdir))]
    argv += ["--check-exit-code"] if check_test_return_code else []
    argv += [word for analysis in device_analysis_types for word in ("-a", analysis)]
    argv += ["--enable-sum-profiling"] if sum_profiling else []
    if op_support_count != PROFILER_DEFAULT_OP_SUPPORT_COUNT:
        argv += ["--op-support-count", str(op_support_count)]
    if capture_perf_counters_groups:
        argv += ["--profiler-capture-perf-counters=" + ",".join(capture_perf_counters_groups)]
    argv += ["-t", os.environ.get("TRACY_PORT") or str(DEFAULT_TRACY_PORT)]
    argv += shlex.split(command) if is_command_binary_exe else ["-m", command]
    logger.info(shlex.join(argv))
    subprocess.run(argv, check=True)


def get_samples_per_s(time_ns, num_samples):
    return num_samples / (time_ns * 1e-9)
