"""Helpers that fused-op unit tests import: one implementation, reused by every test file of every workspace.

tt-metal's fused-op tests each carry private copies of these helpers (ref §1.3); here they live once, so a
test file holds only what is specific to its op. What each helper reproduces:

- ``comp_pcc`` / ``comp_allclose``: ``models/common/utility_functions.py`` (ref §6.1), exactly.
- ``Profiler`` / ``profiler``: that module's e2e profiler, timed with ``host_time_ns()`` — the sim's
  deterministic host clock (``ttnn.sim.host_time_ns``) when present, else ``time.perf_counter_ns``.
- ``measure_perf_us``: the e2e loop (warm-up, then measured iterations; trace mode captures the measured
  iterations into one trace and replays it once).
- ``run_device_perf_iterations``: the device-perf branch inside a test (signposts ``start``/``stop`` around
  ``DEVICE_PERF_ITERS`` iterations after warm-up; trace mode captures ONE iteration and replays it).
- ``run_device_profiler``: ``python -m tracy`` with an explicit output dir and a free port; the CSV comes from
  the run's own ``OPs csv generated at:`` line (or the one report folder the run created), never from the
  lexicographically latest folder (ref §9.4).
- ``collect_device_perf`` / ``device_perf_from_csv``: signpost window, CCL-aware merge, per-op stats and
  totals — all through ``pipeline.opsperf`` — into a ``DevicePerfResult``, logged in tt-metal's wording.
- ``BenchmarkProfiler`` / ``BenchmarkData``: ``models/perf/benchmarking_utils.py`` (ref §6.2), writing
  ``generated/benchmark_data/partial_run_<ts>.json`` in the pydantic field order, never overwriting.
- trace_region_size: ``TRACE_MODEL_KEY_PARAM`` resolution from a sizes YAML and the trace-region error parser.

ttnn and tracy are imported inside the functions that need them: the pipeline's own tests import this
module on machines with neither.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import logging
import os
import re
import shlex
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

logger = logging.getLogger(__name__)

# ref §1.3 / §1.4: iteration counts and margins of tt-metal's fused-op tests.
PERF_WARMUP_ITERS = 10
PERF_MEASURE_ITERS = 100
DEVICE_PERF_ITERS = 10
DEVICE_PERF_MARGIN = 0.1
E2E_PERF_MARGIN = 0.2
PROFILER_OP_SUPPORT_COUNT = 10000
DEVICE_ANALYSIS_TYPES = ("device_kernel_duration",)

# ref §1.3 trace_region_size
TRACE_MODEL_KEY_PARAM = "_trace_model_key"
TRACE_REGION_SIZE_DYNAMIC = 0
_TRACE_REGION_ERROR = re.compile(
    r"Creating trace buffers of size (\d+)B on (?:MeshDevice|device) \S+, but only (\d+)B is allocated for trace region"
)
_OPS_CSV_LINE = re.compile(r"OPs csv generated at: (\S+\.csv)")


# ----------------------------------------------------------------------------------------------------------
# Accuracy (ref §6.1)
# ----------------------------------------------------------------------------------------------------------
def comp_pcc(golden, calculated, pcc=0.99):
    """(passing, pcc) exactly as tt-metal's utility_functions.comp_pcc; golden first."""
    golden = _as_tensor(golden)
    calculated = _as_tensor(calculated)
    if golden.dtype != calculated.dtype:
        calculated = calculated.type(golden.dtype)
    if _is_fp8(golden):  # numpy has no fp8: compare in fp32
        golden, calculated = golden.float(), calculated.float()

    golden_nan, calculated_nan = torch.all(torch.isnan(golden)), torch.all(torch.isnan(calculated))
    if golden_nan and calculated_nan:
        logger.warning("Both tensors are 'nan'")
        return True, 1.0
    if golden_nan or calculated_nan:
        logger.error("One tensor is all nan, the other is not.")
        return False, 0.0
    if torch.any(golden.bool()) != torch.any(calculated.bool()):
        logger.error("One tensor is all zero")
        return False, 0.0

    golden, calculated = _zero_non_finite(golden), _zero_non_finite(calculated)
    if torch.equal(golden, calculated):
        return True, 1.0
    if golden.dtype == torch.bfloat16:
        golden, calculated = golden.type(torch.float32), calculated.type(torch.float32)
    cal_pcc = np.min(
        np.ma.corrcoef(
            np.ma.masked_invalid(torch.squeeze(golden).detach().numpy()).flatten(),
            np.ma.masked_invalid(torch.squeeze(calculated).detach().numpy()).flatten(),
        )
    )
    if isinstance(cal_pcc, np.ma.core.MaskedConstant):  # constant tensors: corrcoef is undefined
        return True, 1.0
    return cal_pcc >= pcc, cal_pcc


def comp_allclose(golden, calculated, rtol=1e-05, atol=1e-08):
    """(allclose, "Max ATOL Delta: a, Max RTOL Delta: r") as tt-metal's utility_functions.comp_allclose."""
    if golden.dtype != calculated.dtype:
        calculated = calculated.type(golden.dtype)
    atol_delta = torch.max(torch.abs(golden - calculated)).item()
    rtol_delta = torch.max(torch.abs(golden - calculated) / torch.abs(calculated)).item()
    return (
        torch.allclose(golden, calculated, rtol, atol, True),
        f"Max ATOL Delta: {atol_delta}, Max RTOL Delta: {rtol_delta}",
    )


def compare_with_reference(tt_output, ref_output, expected_pcc, name=""):
    """comp_pcc(reference, tt) and the ``PCC {name}: {pcc}`` line of the fused-op tests (ref §1.3)."""
    passing, pcc = comp_pcc(ref_output.float(), tt_output.float(), expected_pcc)
    logger.info(f"PCC {name}: {pcc}")
    return passing, pcc


def _as_tensor(value) -> torch.Tensor:
    return value if isinstance(value, torch.Tensor) else torch.Tensor(value)


def _is_fp8(tensor: torch.Tensor) -> bool:
    return tensor.is_floating_point() and tensor.element_size() == 1


def _zero_non_finite(tensor: torch.Tensor) -> torch.Tensor:
    tensor = tensor.clone()
    tensor[torch.logical_or(torch.isnan(tensor), torch.isinf(tensor))] = 0
    return tensor


# ----------------------------------------------------------------------------------------------------------
# E2E timing (ref §1.3 "E2E perf", §6.1 profiler)
# ----------------------------------------------------------------------------------------------------------
def host_time_ns() -> int:
    """The sim's deterministic host clock when running on ttnn_sim, else the wall clock."""
    try:
        import ttnn
    except ImportError:
        return time.perf_counter_ns()
    sim = getattr(ttnn, "sim", None)
    clock = getattr(sim, "host_time_ns", None)
    return int(clock()) if clock is not None else time.perf_counter_ns()


class Profiler:
    """tt-metal's utility_functions.Profiler: start/end a key, get() = mean seconds per recorded entry."""

    def __init__(self, clock: Callable[[], int] = host_time_ns):
        self._clock = clock
        self.clear()

    def clear(self) -> None:
        self._starts: dict[str, int] = {}
        self._times: dict[str, list[float]] = {}

    def start(self, key: str) -> None:
        self._starts[key] = self._clock()

    def end(self, key: str, PERF_CNT: int = 1) -> None:  # noqa: N803 - tt-metal's keyword
        elapsed_s = (self._clock() - self._starts[key]) / 1e9
        self._times.setdefault(key, []).append(elapsed_s / PERF_CNT)

    def get(self, key: str) -> float:
        times = self._times.get(key)
        return sum(times) / len(times) if times else 0


profiler = Profiler()


def deallocate_outputs(outputs) -> None:
    """Free what an op function returned: one tensor or a tuple/list of them."""
    import ttnn

    for tensor in outputs if isinstance(outputs, tuple | list) else (outputs,):
        ttnn.deallocate(tensor)


def measure_perf_us(
    mesh_device, op_fn, warmup_iters: int, measure_iters: int, trace_mode: bool = False
) -> float:
    """Average e2e microseconds per iteration of ``op_fn`` (ref §1.3): eager loops with a sync per iteration;
    trace mode replays a warm-up trace, then one trace holding all measured iterations."""
    import ttnn

    key = "fused_op_perf"
    ttnn.synchronize_device(mesh_device)
    if trace_mode:
        deallocate_outputs(op_fn())  # allocates every buffer the captured ops will reuse
        ttnn.synchronize_device(mesh_device)
        if warmup_iters > 0:
            _replay_once(mesh_device, _capture(mesh_device, op_fn, warmup_iters))
        trace_id = _capture(mesh_device, op_fn, measure_iters)
        profiler.clear()
        profiler.start(key)
        ttnn.execute_trace(mesh_device, trace_id, blocking=False)
        ttnn.synchronize_device(mesh_device)
        profiler.end(key, PERF_CNT=measure_iters)
        ttnn.release_trace(mesh_device, trace_id)
        return profiler.get(key) * 1e6

    _run_synchronized(mesh_device, op_fn, warmup_iters)
    profiler.clear()
    profiler.start(key)
    _run_synchronized(mesh_device, op_fn, measure_iters)
    profiler.end(key, PERF_CNT=measure_iters)
    return profiler.get(key) * 1e6


def run_device_perf_iterations(
    mesh_device, op_fn, warmup_iters: int, trace_mode: bool, iters: int = DEVICE_PERF_ITERS
):
    """The device-perf branch of a fused-op test (ref §1.3): eager warm-up, then ``iters`` measured iterations
    between the ``start`` and ``stop`` signposts. Trace mode captures ONE iteration and replays it ``iters``
    times, so the window holds only replay rows."""
    import ttnn
    from tracy import signpost

    logger.info("Skipping e2e perf measurement during device-perf profiling.")
    _run_synchronized(mesh_device, op_fn, warmup_iters)
    ttnn.synchronize_device(mesh_device)
    if trace_mode:
        trace_id = _capture(mesh_device, op_fn, 1)
        signpost("start")
        for _ in range(iters):
            ttnn.execute_trace(mesh_device, trace_id, blocking=False)
            ttnn.synchronize_device(mesh_device)
        signpost("stop")
        ttnn.release_trace(mesh_device, trace_id)
        return
    signpost("start")
    _run_synchronized(mesh_device, op_fn, iters)
    signpost("stop")


def device_perf_requested(env_var: str) -> bool:
    """True inside the profiled child of ``test_<op>_device_perf`` (the parent sets the env var)."""
    return os.getenv(env_var) is not None


def _run_synchronized(mesh_device, op_fn, iterations: int) -> None:
    import ttnn

    for _ in range(iterations):
        outputs = op_fn()
        ttnn.synchronize_device(mesh_device)
        deallocate_outputs(outputs)


def _capture(mesh_device, op_fn, iterations: int):
    import ttnn

    trace_id = ttnn.begin_trace_capture(mesh_device, cq_id=0)
    for _ in range(iterations):
        deallocate_outputs(op_fn())
    ttnn.end_trace_capture(mesh_device, trace_id, cq_id=0)
    ttnn.synchronize_device(mesh_device)
    return trace_id


def _replay_once(mesh_device, trace_id) -> None:
    import ttnn

    ttnn.execute_trace(mesh_device, trace_id, blocking=False)
    ttnn.release_trace(mesh_device, trace_id)
    ttnn.synchronize_device(mesh_device)


# ----------------------------------------------------------------------------------------------------------
# Benchmark JSON (ref §6.2)
# ----------------------------------------------------------------------------------------------------------
def _utc_now() -> datetime.datetime:
    return datetime.datetime.now(tz=datetime.UTC)


def _json_ts(moment: datetime.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")  # how pydantic v2 serializes the UTC timestamps


class BenchmarkProfiler:
    """benchmarking_utils.BenchmarkProfiler: UTC start/end per (iteration, step)."""

    def __init__(self):
        self.start_times: dict[tuple[int, str], datetime.datetime] = {}
        self.end_times: dict[tuple[int, str], datetime.datetime] = {}

    def start(self, step_name: str, iteration: int = 0) -> None:
        self.start_times[(iteration, step_name)] = _utc_now()

    def end(self, step_name: str, iteration: int = 0) -> None:
        self.end_times[(iteration, step_name)] = _utc_now()

    def get_duration(self, step_name: str, iteration: int = 0) -> float:
        key = (iteration, step_name)
        return (self.end_times[key] - self.start_times[key]).total_seconds()

    def get_str_start(self, step_name: str, iteration: int = 0) -> str:
        return self.start_times[(iteration, step_name)].strftime("%Y-%m-%dT%H:%M:%S%z")

    def get_str_end(self, step_name: str, iteration: int = 0) -> str:
        return self.end_times[(iteration, step_name)].strftime("%Y-%m-%dT%H:%M:%S%z")

    def contains_step(self, step_name: str, iteration: int = 0) -> bool:
        key = (iteration, step_name)
        return key in self.start_times and key in self.end_times

    @contextlib.contextmanager
    def __call__(self, step_name: str, iteration: int = 0):
        self.start(step_name, iteration)
        try:
            yield
        finally:
            self.end(step_name, iteration)


_RUN_FIELDS = (
    "run_type",
    "git_repo_name",
    "git_commit_hash",
    "git_commit_ts",
    "git_branch_name",
    "github_pipeline_id",
    "github_pipeline_link",
    "github_job_id",
    "user_name",
    "docker_image",
    "device_hostname",
    "device_ip",
    "device_info",
    "ml_model_name",
    "ml_model_type",
    "num_layers",
    "batch_size",
    "config_params",
    "precision",
    "dataset_name",
    "profiler_name",
    "input_sequence_length",
    "output_sequence_length",
    "image_dimension",
    "perf_analysis",
    "training",
)


class BenchmarkData:
    """benchmarking_utils.BenchmarkData: measurements, then one partial-run JSON per save."""

    def __init__(self):
        self.measurements: list[dict] = []

    def add_measurement(
        self,
        profiler,
        iteration,
        step_name,
        name,
        value,
        step_warm_up_num_iterations=None,
        target=None,
        device_power=None,
        device_temperature=None,
    ) -> None:
        assert step_name and name and value is not None, "step_name, name and value are required"
        assert profiler.contains_step(step_name, iteration), (
            f"Completed step '{step_name}' for iteration {iteration} not found in profiler"
        )
        self.measurements.append(
            {
                "step_start_ts": _json_ts(profiler.start_times[(iteration, step_name)]),
                "step_end_ts": _json_ts(profiler.end_times[(iteration, step_name)]),
                "iteration": iteration,
                "step_name": step_name,
                "step_warm_up_num_iterations": step_warm_up_num_iterations,
                "name": name,
                "value": float(value),
                "target": None if target is None else float(target),
                "device_power": device_power,
                "device_temperature": device_temperature,
            }
        )

    def save_partial_run_json(
        self, profiler, run_type, ml_model_name, output_dir="generated/benchmark_data", **run_fields
    ) -> Path:
        """Write the run (requires a completed "run" step) and log ``Run and measurement data saved to ...``."""
        assert profiler.contains_step("run"), "Completed step 'run' for iteration 0 not found in profiler"
        unknown = set(run_fields) - set(_RUN_FIELDS)
        assert not unknown, f"Unknown run fields: {sorted(unknown)}"
        run = {
            "run_start_ts": _json_ts(profiler.start_times[(0, "run")]),
            "run_end_ts": _json_ts(profiler.end_times[(0, "run")]),
        }
        values = {**_git_fields(), "run_type": run_type, "ml_model_name": ml_model_name, **run_fields}
        run.update({name: values.get(name) for name in _RUN_FIELDS})
        run["measurements"] = self.measurements
        path = _unused_path(Path(output_dir), f"partial_run_{run['run_start_ts']}")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(run, separators=(",", ":")))
        logger.info(f"Run and measurement data saved to {path}")
        return path


def _unused_path(folder: Path, stem: str) -> Path:
    """``stem.json``, or ``stem_2.json``, ``stem_3.json``...: many test cases finish within one second."""
    path, counter = folder / f"{stem}.json", 2
    while path.exists():
        path, counter = folder / f"{stem}_{counter}.json", counter + 1
    return path


def _git_fields() -> dict:
    def git(*args):
        try:
            out = subprocess.run(["git", *args], capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    top = git("rev-parse", "--show-toplevel")
    return {
        "git_repo_name": Path(top).name if top else None,
        "git_commit_hash": git("rev-parse", "HEAD"),
        "git_branch_name": git("rev-parse", "--abbrev-ref", "HEAD"),
        "user_name": os.getenv("USER"),
        "device_hostname": socket.gethostname(),
    }


def report_e2e_perf(
    mesh_device,
    op_fn,
    *,
    step_prefix: str,
    trace_mode: bool,
    program_cache_enabled: bool,
    expected_perf_us: float,
    run_type: str,
    ml_model_name: str,
    batch_size: int,
    seq_len: int,
    warmup_iters: int = PERF_WARMUP_ITERS,
    measure_iters: int = PERF_MEASURE_ITERS,
    label: str = "Perf avg",
) -> float | None:
    """The e2e block of ``test_<op>`` (ref §1.3): measure, log, record in BenchmarkData, check the target.

    Skipped (None) for trace without program cache: trace needs the cache, so that combination times nothing.
    A target counts only eager with program cache, as in tt-metal."""
    if trace_mode and not program_cache_enabled:
        return None
    perf_profiler, benchmark_data = BenchmarkProfiler(), BenchmarkData()
    step_name = f"{step_prefix}_{'trace' if trace_mode else 'no_trace'}_{'pcache' if program_cache_enabled else 'no_pcache'}"
    perf_profiler.start("run")
    perf_profiler.start(step_name)
    perf_us = measure_perf_us(mesh_device, op_fn, warmup_iters, measure_iters, trace_mode=trace_mode)
    logger.info(f"{label}: {perf_us:.3f} us over {measure_iters} iters (warmup {warmup_iters})")
    perf_profiler.end(step_name)
    perf_profiler.end("run")

    target_applies = expected_perf_us > 0 and not trace_mode and program_cache_enabled
    benchmark_data.add_measurement(
        perf_profiler,
        0,
        step_name,
        f"{step_name}-avg_us",
        perf_us,
        step_warm_up_num_iterations=warmup_iters,
        target=expected_perf_us if target_applies else None,
    )
    benchmark_data.save_partial_run_json(
        perf_profiler,
        run_type=run_type,
        ml_model_name=ml_model_name,
        batch_size=batch_size,
        input_sequence_length=seq_len,
    )
    if target_applies:
        limit = expected_perf_us * (1 + E2E_PERF_MARGIN)
        assert perf_us <= limit, f"Perf regression: {perf_us:.3f}us exceeds expected {expected_perf_us:.3f}us"
    elif not trace_mode and program_cache_enabled:
        logger.warning("TODO: Set expected_perf_us using a measured baseline.")
    return perf_us


# ----------------------------------------------------------------------------------------------------------
# Device perf: python -m tracy, then the CSV (ref §1.3 device-perf function, §1.4, §4)
# ----------------------------------------------------------------------------------------------------------
@dataclass
class DevicePerfResult:
    """fused_op_device_perf_utils.DevicePerfResult (ref §1.4), plus where the figures came from."""

    op_name: str
    step_name: str
    total_kernel_us: float
    total_op_to_op_us: float
    avg_kernel_us: float
    avg_op_to_op_us: float
    op_stats: dict
    batch_size: int
    seq_len: int
    csv_path: Path | None = None
    merge_warnings: list[str] = field(default_factory=list)


def free_port() -> int:
    """A TCP port nobody listens on now: tracy's ``-t`` port, unique per run so parallel runs never collide."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def tracy_argv(
    command: str,
    output_dir: Path,
    *,
    op_support_count: int = PROFILER_OP_SUPPORT_COUNT,
    device_analysis_types=DEVICE_ANALYSIS_TYPES,
    port: int | None = None,
) -> list[str]:
    """``python -m tracy -p -r -o DIR --check-exit-code -a T... --op-support-count N -t PORT -m "<command>"``."""
    analysis = [arg for kind in device_analysis_types for arg in ("-a", kind)]
    return [
        sys.executable,
        "-m",
        "tracy",
        "-p",
        "-r",
        "-o",
        str(output_dir),
        "--check-exit-code",
        *analysis,
        "--op-support-count",
        str(op_support_count),
        "-t",
        str(port or free_port()),
        "-m",
        command,
    ]


def run_device_profiler(
    command: str,
    output_dir,
    *,
    op_support_count: int = PROFILER_OP_SUPPORT_COUNT,
    device_analysis_types=DEVICE_ANALYSIS_TYPES,
    cwd=None,
    env=None,
    port: int | None = None,
) -> Path:
    """Run ``command`` under ``python -m tracy`` and return the ops CSV this run wrote.

    Output is streamed through (and kept) so the report line can be read back. A failing command raises
    ``subprocess.CalledProcessError`` (``--check-exit-code``: tracy exits 4 and writes no report)."""
    output_dir = Path(output_dir).resolve()
    output_dir.mkdir(parents=True, exist_ok=True)
    argv = tracy_argv(
        command,
        output_dir,
        op_support_count=op_support_count,
        device_analysis_types=device_analysis_types,
        port=port,
    )
    reports_before = _report_csvs(output_dir)
    logger.info(f"Running device profiler: {shlex.join(argv)}")
    output = _stream(argv, cwd=cwd, env=env)
    csv_path = find_ops_csv(output, output_dir, reports_before)
    logger.info(f"Device perf ops CSV: {csv_path}")
    return csv_path


def find_ops_csv(output: str, output_dir: Path, reports_before: set[Path] = frozenset()) -> Path:
    """The CSV named by the run's last ``OPs csv generated at:`` line; else the one CSV that appeared under
    ``output_dir/reports`` during the run. Anything else is an error, never a guess."""
    named = _OPS_CSV_LINE.findall(output)
    if named:
        path = Path(named[-1])
        path = path if path.is_absolute() else Path(output_dir) / path
        if path.is_file():
            return path
    new = sorted(_report_csvs(Path(output_dir)) - set(reports_before))
    if len(new) == 1:
        return new[0]
    raise FileNotFoundError(
        f"The profiler run did not report its ops CSV (no 'OPs csv generated at:' line; {len(new)} new CSVs "
        f"under {Path(output_dir) / 'reports'})"
    )


def _report_csvs(output_dir: Path) -> set[Path]:
    return set((output_dir / "reports").rglob("ops_perf_results_*.csv"))


def _stream(argv: list[str], *, cwd=None, env=None) -> str:
    """Run argv, echo its merged output line by line, return it; non-zero exit raises CalledProcessError."""
    lines = []
    with subprocess.Popen(
        argv, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
    ) as child:
        for line in child.stdout:
            sys.stdout.write(line)
            lines.append(line)
    output = "".join(lines)
    if child.returncode != 0:
        raise subprocess.CalledProcessError(child.returncode, argv, output=output)
    return output


@contextlib.contextmanager
def env_var_set(name: str | None, value: str = "1") -> Iterator[None]:
    """Set ``name`` for the duration (the profiled child inherits it, ref §9.8), then remove it."""
    if name is None:
        yield
        return
    previous = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = previous


def device_perf_from_csv(
    csv_path,
    *,
    op_name: str,
    step_name: str,
    batch_size: int,
    seq_len: int,
    warmup_iters: int = 0,
    use_signposts: bool = True,
    iters: int = DEVICE_PERF_ITERS,
) -> DevicePerfResult:
    """Signpost window -> CCL-aware merge -> per-op stats -> totals, all by pipeline.opsperf (ref §1.4)."""
    from pipeline import opsperf

    frame = opsperf.read_ops_csv(csv_path)
    if use_signposts:
        frame = opsperf.signpost_window(frame)
    frame = frame[frame["OP TYPE"] == "tt_dnn_device"]
    merged, warnings = opsperf.merge_device_rows(frame)
    for warning in warnings:
        logger.warning(warning)
    stats = opsperf.op_stats(merged, warmup_iters=warmup_iters)
    total_kernel_ns, total_op_to_op_ns = opsperf.totals(stats)
    total_kernel_us, total_op_to_op_us = total_kernel_ns / 1000, total_op_to_op_ns / 1000
    return DevicePerfResult(
        op_name=op_name,
        step_name=step_name,
        total_kernel_us=total_kernel_us,
        total_op_to_op_us=total_op_to_op_us,
        avg_kernel_us=total_kernel_us / iters,
        avg_op_to_op_us=total_op_to_op_us / iters,
        op_stats=stats,
        batch_size=batch_size,
        seq_len=seq_len,
        csv_path=Path(csv_path),
        merge_warnings=list(warnings),
    )


def collect_device_perf(
    command: str,
    output_dir,
    *,
    op_name: str,
    step_name: str,
    batch_size: int,
    seq_len: int,
    env_var: str | None = None,
    warmup_iters: int = 0,
    use_signposts: bool = True,
    iters: int = DEVICE_PERF_ITERS,
    cwd=None,
    op_support_count: int = PROFILER_OP_SUPPORT_COUNT,
) -> DevicePerfResult:
    """Profile ``command`` with ``env_var`` set, reduce its CSV and log the figures (ref §1.3 step 9)."""
    with env_var_set(env_var):
        port = int(os.environ["TRACY_PORT"]) if os.environ.get("TRACY_PORT") else None
        csv_path = run_device_profiler(command, output_dir, cwd=cwd, op_support_count=op_support_count, port=port)
    result = device_perf_from_csv(
        csv_path,
        op_name=op_name,
        step_name=step_name,
        batch_size=batch_size,
        seq_len=seq_len,
        warmup_iters=warmup_iters,
        use_signposts=use_signposts,
        iters=iters,
    )
    log_device_perf(result, iters)
    return result


def log_device_perf(result: DevicePerfResult, iters: int = DEVICE_PERF_ITERS) -> None:
    logger.info(f"Device perf per-op averages (ns): {json.dumps(result.op_stats, indent=2)}")
    logger.info(
        f"Device perf totals ({iters} iterations): kernel={result.total_kernel_us:.3f} us, "
        f"op_to_op={result.total_op_to_op_us:.3f} us"
    )
    logger.info(
        f"Device perf per-iteration averages: kernel={result.avg_kernel_us:.3f} us, "
        f"op_to_op={result.avg_op_to_op_us:.3f} us"
    )


def check_device_perf(
    result: DevicePerfResult, mode: str, targets: dict | None, margin: float = DEVICE_PERF_MARGIN
) -> None:
    """The asserts of ``test_<op>_device_perf`` (ref §1.3 steps 7 and 10)."""
    assert result.op_stats, "No device perf ops found in the signpost window."
    assert result.total_kernel_us > 0, f"Total kernel duration must be positive, got {result.total_kernel_us}"
    assert result.total_op_to_op_us >= 0, (
        f"Total op-to-op latency must be >= 0, got {result.total_op_to_op_us}"
    )
    target = (targets or {}).get((mode, result.seq_len))
    if target is None:
        logger.warning("No device perf targets configured; skipping perf assertions.")
        return
    kernel_limit, op_to_op_limit = target["kernel"] * (1 + margin), target["op_to_op"] * (1 + margin)
    pct = f"+{margin * 100:.0f}%"
    assert result.avg_kernel_us <= kernel_limit, (
        f"Kernel perf regression: {result.avg_kernel_us:.3f}us exceeds {target['kernel']:.3f}us ({pct})"
    )
    assert result.avg_op_to_op_us <= op_to_op_limit, (
        f"Op-to-op perf regression: {result.avg_op_to_op_us:.3f}us exceeds {target['op_to_op']:.3f}us ({pct})"
    )


def save_device_perf_benchmark(
    result: DevicePerfResult,
    perf_profiler: BenchmarkProfiler,
    *,
    run_type: str,
    ml_model_name: str,
    output_dir="generated/benchmark_data",
) -> Path:
    """The four BenchmarkData measurements of ref §1.3 step 11 (iteration 0, the device-perf step)."""
    benchmark_data = BenchmarkData()
    for name, value in (
        ("total_kernel_duration_us", result.total_kernel_us),
        ("total_op_to_op_latency_us", result.total_op_to_op_us),
        ("avg_kernel_duration_us", result.avg_kernel_us),
        ("avg_op_to_op_latency_us", result.avg_op_to_op_us),
    ):
        benchmark_data.add_measurement(perf_profiler, 0, result.step_name, name, value)
    return benchmark_data.save_partial_run_json(
        perf_profiler,
        run_type=run_type,
        ml_model_name=ml_model_name,
        output_dir=output_dir,
        batch_size=result.batch_size,
        input_sequence_length=result.seq_len,
    )


def device_perf_command(
    test_path: str, test_function: str, mode: str, seq_len: int, extra_filter: str | None = "random_weights"
) -> str:
    """``pytest <path>::<fn> -k "program_cache and not no_program_cache and <trace|eager> and <mode> and <seq>"``.

    Decode is profiled traced, prefill eager (guide). ``extra_filter`` narrows to one weights variant, else both
    would run inside one profile and the first-start/last-stop window would span them."""
    trace_filter = "trace" if mode == "decode" else "eager"
    expr = f"program_cache and not no_program_cache and {trace_filter} and {mode} and {seq_len}"
    if extra_filter:
        expr += f" and {extra_filter}"
    return f'pytest {test_path}::{test_function} -k "{expr}"'


# ----------------------------------------------------------------------------------------------------------
# trace_region_size (ref §1.3)
# ----------------------------------------------------------------------------------------------------------
class TraceRegionSizeNotConfiguredError(KeyError):
    def __str__(self) -> str:
        return str(self.args[0])


def resolve_trace_region_size(device_params: dict, sizes_file, sku: str) -> dict:
    """device_params with TRACE_MODEL_KEY_PARAM replaced by ``trace_region_size`` from the sizes YAML
    (``sizes -> model -> skus -> sku -> trace_region_size``). An explicit trace_region_size wins."""
    params = dict(device_params)
    model = params.pop(TRACE_MODEL_KEY_PARAM, None)
    if model is None or "trace_region_size" in params:
        return params
    import yaml

    sizes = yaml.safe_load(Path(sizes_file).read_text()) or {}
    entry = (((sizes.get("sizes") or {}).get(model) or {}).get("skus") or {}).get(sku) or {}
    size = entry.get("trace_region_size")
    if not isinstance(size, int) or size < 0:
        raise TraceRegionSizeNotConfiguredError(
            f"trace_region_size is not configured for model='{model}' and SKU='{sku}'. "
            f"Add a (model, SKU) entry with trace_region_size to {sizes_file}."
        )
    params["trace_region_size"] = size
    return params


def required_trace_region_size(text: str) -> int | None:
    """The size (bytes) a failed trace capture asked for, from tt-metal's trace-region error, else None."""
    match = _TRACE_REGION_ERROR.search(text)
    return int(match.group(1)) if match else None


# ----------------------------------------------------------------------------------------------------------
# One fused-op test file: its parametrization and the perf plumbing named after its stem (ref §1.3)
# ----------------------------------------------------------------------------------------------------------
def fused_op_matrix(
    mesh_shape: tuple[int, int],
    mesh_id: str,
    device_params: dict,
    *,
    real_weights: tuple[bool, ...] = (False, True),
    program_cache: tuple[bool, ...] = (True, False),
    trace: tuple[bool, ...] = (False, True),
):
    """The decorators under the mode/seq_len rows of every fused-op test, in tt-metal's order (ref §1.3 items 2-6).

    Node ids come out as ``test_x[device_params0-<mesh_id>-<eager|trace>-<program_cache|no_program_cache>-
    <random_weights|real_weights>-<row id>]``, exactly as the hand-written decorator stack gives them."""
    import pytest

    stack = [
        pytest.mark.parametrize(
            "use_real_weights",
            list(real_weights),
            ids=["real_weights" if w else "random_weights" for w in real_weights],
        ),
        pytest.mark.parametrize(
            "program_cache_enabled",
            list(program_cache),
            ids=["program_cache" if c else "no_program_cache" for c in program_cache],
        ),
        pytest.mark.parametrize("trace_mode", list(trace), ids=["trace" if t else "eager" for t in trace]),
        pytest.mark.parametrize("mesh_device", [mesh_shape], ids=[mesh_id], indirect=True),
        pytest.mark.parametrize("device_params", [device_params], indirect=True),
    ]

    def decorate(function):
        for decorator in reversed(stack):  # the decorator nearest the function gives the first id part
            function = decorator(function)
        return function

    return decorate


@dataclass(frozen=True)
class FusedOpCase:
    """One parametrized case of ``test_<op>`` / ``test_<op>_single_device``."""

    mode: str
    seq_len: int
    expected_pcc: float
    expected_perf_us: float
    use_real_weights: bool
    program_cache_enabled: bool
    trace_mode: bool


@dataclass(frozen=True)
class FusedOpTest:
    """What a fused-op test file derives from its stem: ``test_<op>.py`` -> step names, run types, the
    device-perf command, and the e2e / device-perf plumbing shared by every such file."""

    test_file: str
    env_var: str
    ml_model_name: str
    run_type: str  # e.g. "gpt_oss_mini_fused_ops"
    warmup_iters: int = PERF_WARMUP_ITERS
    measure_iters: int = PERF_MEASURE_ITERS
    device_perf_iters: int = DEVICE_PERF_ITERS

    @property
    def op(self) -> str:
        return Path(self.test_file).stem.removeprefix("test_")

    @property
    def workspace_root(self) -> Path:
        """The checkout root: the first ancestor that is not a Python package (tests run from there)."""
        folder = Path(self.test_file).resolve().parent
        while (folder / "__init__.py").exists():
            folder = folder.parent
        return folder

    @property
    def test_path(self) -> str:
        return Path(self.test_file).resolve().relative_to(self.workspace_root).as_posix()

    def case(self, mesh_device, mode, seq_len, expected_pcc, expected_perf_us, use_real_weights,
             program_cache_enabled, trace_mode) -> FusedOpCase:  # fmt: skip
        """The case's parameters; first, as tt-metal's tests do, the program cache of the mesh the ops will run on
        is disabled and cleared for no_program_cache cases (it is on by default)."""
        if not program_cache_enabled:
            mesh_device.disable_and_clear_program_cache()
        return FusedOpCase(mode, seq_len, expected_pcc, expected_perf_us, use_real_weights, program_cache_enabled,
                           trace_mode)  # fmt: skip

    def measure(self, mesh_device, op_fn, case: FusedOpCase, batch_size: int, single_device: bool = False):
        """The perf tail of ``_run_<op>_test``: inside the profiled child of ``test_<op>_device_perf`` (the
        DEVICE_PERF_ENV_VAR is set) the signposted device-perf iterations, otherwise the e2e measurement."""
        if device_perf_requested(self.env_var):
            run_device_perf_iterations(
                mesh_device, op_fn, self.warmup_iters, case.trace_mode, self.device_perf_iters
            )
            return None
        return self.report_e2e(mesh_device, op_fn, case, batch_size, single_device)

    def report_e2e(self, mesh_device, op_fn, case: FusedOpCase, batch_size: int, single_device: bool = False):
        """e2e timing of ``op_fn`` with its BenchmarkData record (step ``<op>_<mode>_seq<S>[_single_device]_...``)."""
        infix = "_single_device" if single_device else ""
        return report_e2e_perf(
            mesh_device,
            op_fn,
            step_prefix=f"{self.op}_{case.mode}_seq{case.seq_len}{infix}",
            trace_mode=case.trace_mode,
            program_cache_enabled=case.program_cache_enabled,
            expected_perf_us=case.expected_perf_us,
            run_type=self.run_type + infix,
            ml_model_name=self.ml_model_name,
            batch_size=batch_size,
            seq_len=case.seq_len,
            warmup_iters=self.warmup_iters,
            measure_iters=self.measure_iters,
            label="Single device perf avg" if single_device else "Perf avg",
        )

    def device_perf(self, mode: str, seq_len: int, batch_size: int, targets: dict | None,
                    single_device: bool = False) -> DevicePerfResult:  # fmt: skip
        """``test_<op>[_single_device]_device_perf``: profile the matching case of the main test under tracy,
        reduce the signpost window, log, assert, and record the four BenchmarkData measurements."""
        infix = "_single_device" if single_device else ""
        step_name = f"{self.op}{infix}_device_perf_{mode}_seq{seq_len}"
        command = device_perf_command(self.test_path, f"test_{self.op}{infix}", mode, seq_len)
        logger.info(f"Running device perf for {self.op}: {command}")
        perf_profiler = BenchmarkProfiler()
        perf_profiler.start("run")
        perf_profiler.start(step_name)
        # The pipeline's contract: profile into $TT_METAL_PROFILER_DIR on $TRACY_PORT when it sets them.
        output_dir = os.environ.get("TT_METAL_PROFILER_DIR") or (
            self.workspace_root / "generated" / "profiler" / f"{self.run_type}{infix}_device_perf" / step_name
        )
        result = collect_device_perf(
            command,
            output_dir,
            op_name=self.op,
            step_name=step_name,
            batch_size=batch_size,
            seq_len=seq_len,
            env_var=self.env_var,
            cwd=self.workspace_root,
            op_support_count=int(os.environ.get("TT_METAL_PROFILER_PROGRAM_SUPPORT_COUNT") or PROFILER_OP_SUPPORT_COUNT),
        )
        perf_profiler.end(step_name)
        perf_profiler.end("run")
        check_device_perf(result, mode, targets)
        save_device_perf_benchmark(
            result,
            perf_profiler,
            run_type=f"{self.run_type}{infix}_device_perf",
            ml_model_name=self.ml_model_name,
            output_dir=self.workspace_root / "generated" / "benchmark_data",
        )
        return result
