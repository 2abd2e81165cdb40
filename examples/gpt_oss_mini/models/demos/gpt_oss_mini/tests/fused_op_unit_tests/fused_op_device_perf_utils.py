"""Device perf of gpt_oss_mini's fused-op tests (tt-metal's gpt_oss ``fused_op_device_perf_utils.py``).

``test_<op>_device_perf`` profiles the matching cases of ``test_<op>`` under ``python -m tracy`` with the test's
DEVICE_PERF_ENV_VAR set (the test then runs its signposted iterations), and reduces the report: rows strictly
between the first ``start`` and the last ``stop`` signpost, one row per op occurrence across devices (the slowest
device, or the device average for collectives), per-op averages and totals.
"""

import json
import math
import os
import time
from dataclasses import dataclass

import pandas as pd
from loguru import logger

from models.perf.benchmarking_utils import BenchmarkData, BenchmarkProfiler
from tools.tracy.process_model_log import get_latest_ops_log_filename, run_device_profiler

DEVICE_PERF_ITERS = 10
DEVICE_PERF_MARGIN = 0.1
PERF_WARMUP_ITERS = 10
PERF_MEASURE_ITERS = 100
DEVICE_PERF_OP_SUPPORT_COUNT = 10000
DEVICE_ANALYSIS_TYPES = ["device_kernel_duration"]
COLLECTIVE_OPS = ("AllGather", "ReduceScatter", "AllReduce", "AllToAll")
KERNEL = "DEVICE KERNEL DURATION [ns]"
OP_TO_OP = "OP TO OP LATENCY [ns]"


@dataclass
class DevicePerfResult:
    op_name: str
    step_name: str
    total_kernel_us: float
    total_op_to_op_us: float
    avg_kernel_us: float
    avg_op_to_op_us: float
    op_stats: dict
    batch_size: int
    seq_len: int


def device_perf_selection(mode: str, seq_len: int, use_trace: bool = True) -> str:
    """The one ``-k`` rule for profiled cases: program cache on, decode traced and prefill eager, the mode and
    sequence length, random weights (real-weights cases exist with HF_MODEL set; they never enter the window)."""
    run_kind = "trace" if use_trace and mode == "decode" else "eager"
    return (
        f"program_cache and not no_program_cache and {run_kind} and {mode} and {seq_len} and random_weights"
    )


def merge_device_rows_for_perf(df: pd.DataFrame) -> pd.DataFrame:
    """One row per op occurrence: devices' op lists are walked in step; a device whose next op differs waits.
    Ordinary ops keep the row of the slowest device, collectives the first row with the devices' mean duration."""
    pending = {}
    for _, row in df[df["OP TYPE"] == "tt_dnn_device"].iterrows():
        if pd.isna(row["DEVICE ID"]):
            continue  # host records of a trace capture: no device ran them
        pending.setdefault(int(row["DEVICE ID"]), []).append(row)
    queues = [(device_id, pending[device_id]) for device_id in sorted(pending)]
    merged = []
    while any(rows for _, rows in queues):
        op_name = next(rows[0]["OP CODE"] for _, rows in queues if rows)
        for device_id, rows in queues:
            if not rows:
                logger.warning(
                    f"Warning: Device {device_id} is missing operation {op_name} at index {len(merged)}"
                )
        lagging = [device_id for device_id, rows in queues if rows and rows[0]["OP CODE"] != op_name]
        if lagging:
            logger.warning(
                f"Warning: {op_name} at index {len(merged)} not present in CSV for {len(lagging)} devices {lagging}"
                " - do not trust data for this op or directly subsequent ops with the same name"
            )
        same_op = [rows.pop(0) for _, rows in queues if rows and rows[0]["OP CODE"] == op_name]
        merged.append(_merged_occurrence(same_op, any(tag in op_name for tag in COLLECTIVE_OPS)))
    return pd.DataFrame(merged)


def _merged_occurrence(rows: list, collective: bool) -> pd.Series:
    durations = [float(row[KERNEL]) for row in rows]
    if not collective:
        return rows[
            max(range(len(rows)), key=lambda i: -math.inf if math.isnan(durations[i]) else durations[i])
        ]
    known = [d for d in durations if not math.isnan(d)]
    row = rows[0].copy()
    row[KERNEL] = sum(known) / len(known) if known else math.nan
    return row


def ops_perf_stats(filename, warmup_iters: int = 0, use_signposts: bool = False):
    """``(op_stats, total_kernel_ns, total_op_to_op_ns)`` of an ops report (per op: averages, totals, calls)."""
    df = pd.read_csv(filename)
    if use_signposts:
        markers = df[df["OP TYPE"] == "signpost"]["OP CODE"]
        assert not markers.empty, "No signposts found in device perf log."
        starts, stops = markers[markers == "start"].index, markers[markers == "stop"].index
        assert not starts.empty, "Missing signpost 'start' in device perf log."
        assert not stops.empty, "Missing signpost 'stop' in device perf log."
        assert starts[0] < stops[-1], "Signpost 'stop' must come after 'start'."
        df = df.iloc[starts[0] + 1 : stops[-1]]
    df = merge_device_rows_for_perf(df)
    missing = [column for column in ("OP CODE", KERNEL, OP_TO_OP) if column not in df.columns]
    assert not missing, f"Missing device perf columns: {missing}"
    op_stats = {}
    for op_code, group in df.groupby("OP CODE"):
        kernel = pd.to_numeric(group[KERNEL], errors="coerce").fillna(0.0).tolist()[warmup_iters:]
        op_to_op = pd.to_numeric(group[OP_TO_OP], errors="coerce").fillna(0.0).tolist()[warmup_iters:]
        assert kernel, f"No kernel duration samples for op {op_code}"
        op_stats[op_code] = {
            "avg_kernel_duration_ns": sum(kernel) / len(kernel),
            "avg_op_to_op_latency_ns": sum(op_to_op) / len(op_to_op),
            "total_kernel_duration_ns": sum(kernel),
            "total_op_to_op_latency_ns": sum(op_to_op),
            "call_count": len(kernel),
        }
    total_kernel_ns = sum(stats["total_kernel_duration_ns"] for stats in op_stats.values())
    total_op_to_op_ns = sum(stats["total_op_to_op_latency_ns"] for stats in op_stats.values())
    return op_stats, total_kernel_ns, total_op_to_op_ns


def collect_device_perf(command: str, subdir: str, warmup_iters: int = 0, use_signposts: bool = False):
    """Profile ``command`` and reduce the report it wrote (see ``ops_perf_stats``)."""
    started = time.time()
    run_device_profiler(
        command,
        subdir,
        device_analysis_types=DEVICE_ANALYSIS_TYPES,
        op_support_count=DEVICE_PERF_OP_SUPPORT_COUNT,
    )
    filename = get_latest_ops_log_filename(subdir)
    # The latest report folder may be an older run's if this one wrote none: never measure that.
    assert os.path.getmtime(filename) >= started - 1, f"The profiler run wrote no new ops report ({filename})"
    logger.info(f"Device perf ops CSV: {filename}")
    return ops_perf_stats(filename, warmup_iters, use_signposts)


def run_single_op_device_perf(
    op_name,
    test_path,
    test_function,
    env_var,
    mode,
    seq_len,
    batch_size,
    subdir="gpt_oss_mini_fused_ops_device_perf",
    use_trace=True,
    iterations=DEVICE_PERF_ITERS,
) -> DevicePerfResult:
    """Profile ``test_function``'s case for (mode, seq_len) with ``env_var`` set; log the figures (per iteration =
    over the ``iterations`` the test runs between its signposts)."""
    step_name = f"{op_name}_device_perf_{mode}_seq{seq_len}"
    command = f'pytest {test_path}::{test_function} -k "{device_perf_selection(mode, seq_len, use_trace)}"'
    logger.info(f"Running device perf for {op_name}: {command}")
    os.environ[env_var] = "1"
    try:
        op_stats, kernel_ns, op_to_op_ns = collect_device_perf(
            command, subdir, warmup_iters=0, use_signposts=True
        )
    finally:
        os.environ.pop(env_var, None)
    assert op_stats, f"No device perf stats captured for {op_name}."
    kernel_us, op_to_op_us = kernel_ns / 1000.0, op_to_op_ns / 1000.0
    result = DevicePerfResult(
        op_name,
        step_name,
        kernel_us,
        op_to_op_us,
        kernel_us / iterations,
        op_to_op_us / iterations,
        op_stats,
        batch_size,
        seq_len,
    )
    log_device_perf(result, iterations)
    return result


def log_device_perf(result: DevicePerfResult, iterations: int = DEVICE_PERF_ITERS) -> None:
    """Per iteration = the window's total over its iterations = the sum over ops of each op's time per iteration."""
    logger.info(f"Device perf per-op averages (ns): {json.dumps(result.op_stats, indent=2)}")
    logger.info(
        f"Device perf totals ({iterations} iterations): kernel={result.total_kernel_us:.3f} us, "
        f"op_to_op={result.total_op_to_op_us:.3f} us"
    )
    logger.info(
        f"Device perf per-iteration averages: kernel={result.avg_kernel_us:.3f} us, "
        f"op_to_op={result.avg_op_to_op_us:.3f} us"
    )


def check_device_perf(
    result: DevicePerfResult, mode: str, targets: dict, margin: float = DEVICE_PERF_MARGIN
) -> None:
    """The device-perf test's asserts; per-iteration targets ``(mode, seq_len) -> {"kernel", "op_to_op"}`` in us."""
    assert result.total_kernel_us > 0, f"Total kernel duration must be positive, got {result.total_kernel_us}"
    assert result.total_op_to_op_us >= 0, (
        f"Total op-to-op latency must be >= 0, got {result.total_op_to_op_us}"
    )
    target = targets.get((mode, result.seq_len))
    if target is None:
        logger.warning("No device perf targets configured; skipping perf assertions.")
        return
    for label, measured, limit in (
        ("Kernel", result.avg_kernel_us, target["kernel"]),
        ("Op-to-op", result.avg_op_to_op_us, target["op_to_op"]),
    ):
        assert measured <= limit * (1 + margin), (
            f"{label} perf regression: {measured:.3f}us exceeds {limit:.3f}us (+{margin * 100:.0f}%)"
        )


def add_result_to_benchmark(
    benchmark_data: BenchmarkData, perf_profiler: BenchmarkProfiler, result: DevicePerfResult
) -> None:
    for name, value in (
        ("total_kernel_duration_us", result.total_kernel_us),
        ("total_op_to_op_latency_us", result.total_op_to_op_us),
        ("avg_kernel_duration_us", result.avg_kernel_us),
        ("avg_op_to_op_latency_us", result.avg_op_to_op_us),
    ):
        benchmark_data.add_measurement(perf_profiler, 0, result.step_name, name, value)
