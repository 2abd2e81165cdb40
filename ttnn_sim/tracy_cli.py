"""`python -m tracy` for the sim: run a command with the device profiler on, then write its ops report.

Mirrors tt-metal's ``tools/tracy/__main__.py`` (tt-metal's tracy/__main__.py and its report layout) minus the
Tracy capture server:

1. Output dir: ``-o DIR``, else ``$TT_METAL_PROFILER_DIR``, else ``$TT_METAL_HOME/generated/profiler``
   (TT_METAL_HOME defaults to the CWD). ``DIR/.logs`` is wiped before the run.
2. The command (one shell-quoted string, or the remaining argv) runs as an argv list, never via a shell:
   a leading ``pytest`` becomes ``sys.executable -m pytest``, a leading ``python``/``python3`` becomes
   ``sys.executable``, and with ``-m`` any other first word is a module (``sys.executable -m X``).
   It runs in a new session, inherits stdout/stderr, and gets ``TT_METAL_DEVICE_PROFILER=1``,
   ``TT_METAL_PROFILER_DIR=DIR`` and ``TT_METAL_PROFILER_PROGRAM_SUPPORT_COUNT=N`` (``--op-support-count``).
   SIGINT/SIGTERM kill the child's process group and exit 3, as the real tool does.
3. ``--check-exit-code`` and a failing command: log ``<command> exited with a non-zero return code`` and
   exit 4 without a report.
4. With ``-r`` the report is built from whatever the child captured in ``.logs/ttnn_sim_ops.jsonl``:
   ``DIR/reports/<date>/ops_perf_results_<date>.csv`` (``-n NAME``: ``reports/NAME/<date>/
   ops_perf_results_NAME_<date>.csv``), the date folder wiped first, then ``OPs csv generated at: <path>``
   is logged. A child that profiled nothing still gets a header-only CSV, so consumers fail on their own
   terms (e.g. "No signposts found") rather than on a missing file.
5. Exit 0 otherwise, even when the command failed without ``--check-exit-code``: the real tool's main()
   returns normally after writing the report. Callers that care pass ``--check-exit-code``.

Options of the real tool that only concern Tracy or the hardware are accepted and ignored, or just set
the environment variable the real tool would set.
"""

import argparse
import datetime
import logging
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from ttnn_sim import profiler

log = logging.getLogger("tracy")

EXIT_INTERRUPTED = 3  # the real tool's exit code after SIGINT/SIGTERM
EXIT_COMMAND_FAILED = 4  # the real tool's exit code with --check-exit-code and a failing command
_KILL_GRACE_SECONDS = 5

# Real flags that only set an environment variable for the child.
_ENV_FLAGS = {
    "no_op_info_cache": "TT_METAL_PROFILER_NO_CACHE_OP_INFO",
    "profile_dispatch_cores": "TT_METAL_DEVICE_PROFILER_DISPATCH",
    "enable_sum_profiling": "TT_METAL_PROFILER_SUM",
    "sync_host_device": "TT_METAL_PROFILER_SYNC",
    "device_trace_profiler": "TT_METAL_TRACE_PROFILER",
    "device_memory_profiler": "TT_METAL_MEM_PROFILER",
    "dump_device_data_mid_run": "TT_METAL_PROFILER_MID_RUN_DUMP",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m tracy", usage="python3 -m tracy [-m module | scriptfile] [arg] ..."
    )
    flag = parser.add_argument
    flag("-m", dest="module", action="store_true", help="run a library module (the command's first word)")
    flag("-p", dest="partial", action="store_true", help="only profile enabled zones (accepted, no effect)")
    flag("-l", dest="lines", action="store_true", help="profile every python line (accepted, no effect)")
    flag("-r", dest="report", action="store_true", help="generate the ops report")
    flag("-v", dest="verbose", action="store_true", help="more logging")
    flag("--no-device", dest="device", action="store_false", help="do not turn the device profiler on")
    flag("-o", "--output-folder", dest="output_folder", help="profiler artifacts folder")
    flag("-n", "--name-append", dest="name_append", help="name added to the report folder and file")
    flag("-t", "--port", dest="port", help="Tracy's internal port (accepted, no effect)")
    flag("--op-support-count", dest="op_support_count", type=int, help="max profiled ops per device")
    flag("-a", "--device-analysis-types", dest="device_analysis_types", action="append", default=[])
    flag(
        "--check-exit-code",
        dest="check_exit_code",
        action="store_true",
        help="no report if the command fails",
    )
    flag("--process-logs-only", dest="process_logs_only", action="store_true", help="only rebuild the report")
    for name in _ENV_FLAGS:
        flag("--" + name.replace("_", "-"), dest=name, action="store_true")
    for name in (
        "--no-runtime-analysis",
        "--collect-noc-traces",
        "--no-web-server",
        "--no-capture-tool",
        "--disable-device-data-dump-to-files",
        "--disable-device-data-push-to-tracy",
        "--perf-counter-multipass",
    ):
        flag(name, action="store_true", help=argparse.SUPPRESS)
    for name in (
        "--child-functions",
        "--tracy-tools-folder",
        "--web-app-port",
        "--profiler-capture-perf-counters",
    ):
        flag(name, help=argparse.SUPPRESS)
    flag("command", nargs=argparse.REMAINDER, help="the command: one quoted string or the remaining words")
    return parser


def main(argv: list[str] | None = None) -> int:
    options = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    _configure_logging(options.verbose)
    output_dir = _output_dir(options)
    logs_dir = output_dir / ".logs"
    if options.process_logs_only:
        write_report(output_dir, options.name_append)
        return 0
    command = command_argv(options.command, options.module)
    if not command:
        build_parser().print_usage()
        return 2
    shutil.rmtree(logs_dir, ignore_errors=True)
    logs_dir.mkdir(parents=True)
    returncode = _run(command, _child_env(options, output_dir))
    if options.check_exit_code and returncode != 0:
        log.error(f"{_display_command(argv)} exited with a non-zero return code")
        return EXIT_COMMAND_FAILED
    if options.report:
        write_report(output_dir, options.name_append)
    return 0


def command_argv(words: list[str], module: bool) -> list[str]:
    """The child's argv: one quoted string is split with shlex; python entry points use sys.executable."""
    argv = shlex.split(words[0]) if len(words) == 1 else list(words)
    if not argv:
        return []
    first = Path(argv[0]).name
    if first == "pytest":
        return [sys.executable, "-m", "pytest", *argv[1:]]
    if re.fullmatch(r"python[0-9.]*", first):
        return [sys.executable, *argv[1:]]
    if module:
        return [sys.executable, "-m", *argv]
    if argv[0].endswith(".py"):
        return [sys.executable, *argv]
    return argv


def write_report(output_dir: Path, name: str | None = None) -> Path:
    """Build the ops_perf_results CSV from the captured records (tracy's process_ops_logs.py layout
    layout)."""
    date = datetime.datetime.now().strftime("%Y_%m_%d_%H_%M_%S")
    reports = output_dir / "reports"
    folder = reports / name / date if name else reports / date
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    stem = f"ops_perf_results_{name}_{date}" if name else f"ops_perf_results_{date}"
    path = profiler.write_ops_perf_csv(profiler.load_records(output_dir / ".logs"), folder / f"{stem}.csv")
    log.info(f"OPs csv generated at: {path}")
    return path


def _output_dir(options) -> Path:
    if options.output_folder:
        log.info(f"Setting profiler artifacts folder to {options.output_folder}")
        folder = Path(options.output_folder)
    else:
        folder = profiler.profiler_dir()
    folder.mkdir(parents=True, exist_ok=True)
    return folder.resolve()


def _child_env(options, output_dir: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["TT_METAL_PROFILER_DIR"] = str(output_dir)
    if options.device:
        env["TT_METAL_DEVICE_PROFILER"] = "1"
    else:
        env.pop("TT_METAL_DEVICE_PROFILER", None)
    if options.op_support_count:
        env["TT_METAL_PROFILER_PROGRAM_SUPPORT_COUNT"] = str(options.op_support_count)
    if options.port:
        env["TRACY_PORT"] = str(options.port)
    if options.report:
        env["TTNN_OP_PROFILER"] = "1"
        env["TT_METAL_PROFILER_TRACE_TRACKING"] = "1"
    for option, variable in _ENV_FLAGS.items():
        if getattr(options, option):
            env[variable] = "1"
    return env


def _run(command: list[str], env: dict[str, str]) -> int:
    """Run the command in its own session; an interrupt takes its whole process group down."""
    log.debug(f"Running {shlex.join(command)}")
    child = subprocess.Popen(command, env=env, start_new_session=True)
    log.info("Test process started")

    def interrupt(signum, frame):
        _kill_group(child)
        sys.exit(EXIT_INTERRUPTED)

    previous = {sig: signal.signal(sig, interrupt) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        return child.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _kill_group(child: subprocess.Popen) -> None:
    try:
        os.killpg(child.pid, signal.SIGTERM)
        child.wait(timeout=_KILL_GRACE_SECONDS)
    except subprocess.TimeoutExpired:
        os.killpg(child.pid, signal.SIGKILL)  # the group ignored SIGTERM (e.g. a hung child)
    except ProcessLookupError:
        pass  # already gone


def _display_command(argv: list[str] | None) -> str:
    """The real tool names the inner `python3 -m tracy ...` command (its argv without -r)."""
    args = [a for a in (sys.argv[1:] if argv is None else argv) if a != "-r"]
    return "python3 -m tracy " + " ".join(args)


def _configure_logging(verbose: bool) -> None:
    """loguru's line shape (docs/internals.md §3), on stderr like loguru."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s.%(msecs)03d | %(levelname)-8s | %(module)s:%(funcName)s:%(lineno)d - %(message)s",
        datefmt="%Y-%m-%d %H:%M:%S",
    )
