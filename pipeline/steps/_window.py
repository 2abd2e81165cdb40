"""Figures from an ops CSV, named as the guide names them, from a window that was checked, not assumed.

The signpost window (first ``start`` .. last ``stop``) must hold, on every device, an exact repetition
of one iteration's op sequence, repeated exactly the test's configured number of times, after at least
the guide's 10 warm-up iterations. Anything else is a ``profiler_failure`` (DevicePerfError) whose
message gives the numbers and the fix. Per-iteration totals divide by the count found.

Figures (µs): ``total_kernel_duration_us`` / ``total_op_to_op_latency_us`` per iteration (the guide's
total_kernel_duration: sum over the iteration's ops of each op's average), ``op_stats`` per op code
(ns, averages per call), and the window sums only as ``window_sum_*`` next to ``iterations``.
"""

import hashlib
import json

import pandas as pd

from pipeline import opsperf

GUIDE_WARMUPS = 10


def config_columns(df: pd.DataFrame) -> list[str]:
    """OP CODE, ATTRIBUTES and every INPUT_/OUTPUT_ column (in the file's order)."""
    named = [c for c in ("OP CODE", "ATTRIBUTES") if c in df.columns]
    return named + [c for c in df.columns if c.startswith(("INPUT_", "OUTPUT_"))]


def window_figures(csv, iterations: int) -> dict:
    """Checked window -> merge -> stats."""
    frame = opsperf.read_ops_csv(csv)
    window = opsperf.signpost_window(frame)
    count, period = count_iterations(frame, window, iterations)
    merged, warnings = opsperf.merge_device_rows(window)
    return _figures(merged, warnings, merged.iloc[:period], count)


def module_figures(csv) -> dict:
    """A module-test report: every device op of the run (no signposts, one iteration), merged."""
    merged, warnings = opsperf.merge_device_rows(opsperf.read_ops_csv(csv))
    if merged.empty:
        raise opsperf.DevicePerfError("No device ops in the module test's device perf log.")
    return _figures(merged, warnings, merged, 1)


def one_iteration(csv) -> pd.DataFrame:
    """The merged rows of the window's first iteration (the window is checked by window_figures)."""
    frame = opsperf.read_ops_csv(csv)
    window = opsperf.signpost_window(frame)
    merged, _ = opsperf.merge_device_rows(window)
    return merged.iloc[: period_of(list(merged["OP CODE"]))]


def period_of(codes: list[str]) -> int:
    """Ops per iteration of a (checked) window's op codes."""
    return _period(codes)[0]


def count_iterations(frame: pd.DataFrame, window: pd.DataFrame, configured: int) -> tuple[int, int]:
    """(iterations, ops per iteration) found in the window, the same on every device, else an error."""
    found = {}
    for device, codes in _device_codes(window).items():
        period, exact = _period(codes)
        if not exact:
            full = len(codes) // period
            raise opsperf.DevicePerfError(
                f"device {device}: the window's {len(codes)} ops are not an exact repetition of one iteration "
                f"({full} repetitions of {period} ops {codes[:period]}, then {len(codes) - full * period} ops "
                f"of a partial one): each signposted iteration must run the same op sequence"
            )
        found[device] = (len(codes) // period, period)
    if not found:
        raise opsperf.DevicePerfError("No device ops between the signposts in device perf log.")
    if len(set(found.values())) > 1:
        raise opsperf.DevicePerfError(
            f"devices disagree on the window's iterations (iterations, ops): {found}"
        )
    count, period = next(iter(found.values()))
    if count != configured:
        warm_up = " - the window holds warm-up iterations: put signpost('start') after the warm-up loop"
        hint = warm_up if count > configured else ""
        raise opsperf.DevicePerfError(
            f"the signpost window holds {count} iterations of the {period}-op sequence but the test configures "
            f"{configured} (DEVICE_PERF_ITERS): run exactly DEVICE_PERF_ITERS iterations between "
            f"signpost('start') and signpost('stop'){hint}"
        )
    _check_warmups(frame, window, period)
    return count, period


def _check_warmups(frame: pd.DataFrame, window: pd.DataFrame, period: int) -> None:
    first = window.index[0] if len(window) else len(frame)
    before = frame[frame.index < first]
    codes_in_window = _device_codes(window)
    for device, codes in _device_codes(before).items():
        iteration = codes_in_window.get(device, [])[:period]
        seen = _occurrences(codes, iteration)
        if seen < GUIDE_WARMUPS:
            raise opsperf.DevicePerfError(
                f"device {device}: {seen} iterations ran before signpost('start') but the guide asks for at "
                f"least {GUIDE_WARMUPS} warm-up iterations: set PERF_WARMUP_ITERS = {GUIDE_WARMUPS} and run them "
                f"before signpost('start')"
            )


def _device_codes(rows: pd.DataFrame) -> dict[str, list[str]]:
    device_rows = rows[rows[opsperf.OP_TYPE] == opsperf.DEVICE_OP]
    codes: dict[str, list[str]] = {}
    for device, code in zip(device_rows[opsperf.DEVICE_ID], device_rows[opsperf.OP_CODE], strict=True):
        if str(device).strip():
            codes.setdefault(str(device).strip(), []).append(code)
    return codes


def _period(codes: list[str]) -> tuple[int, bool]:
    """The shortest p with codes[i] == codes[i % p] for all i; exact when len(codes) is a multiple of p."""
    n = len(codes)
    for p in range(1, n + 1):
        if all(codes[i] == codes[i % p] for i in range(p, n)):
            if n % p == 0:
                return p, True
            if n // p >= 2:
                return p, False
    return n, True


def _occurrences(codes: list[str], iteration: list[str]) -> int:
    """Non-overlapping occurrences of `iteration` as a contiguous run in `codes`."""
    count, i, n = 0, 0, len(iteration)
    while n and i + n <= len(codes):
        if codes[i : i + n] == iteration:
            count, i = count + 1, i + n
        else:
            i += 1
    return count


def _figures(merged, warnings, iteration, count) -> dict:
    stats = opsperf.op_stats(merged)
    kernel_ns, op_to_op_ns = opsperf.totals(stats)
    ccl = sorted({code for code in merged["OP CODE"] if any(tag in code for tag in opsperf.COLLECTIVES)})
    return {
        "total_kernel_duration_us": kernel_ns / 1000 / count,
        "total_op_to_op_latency_us": op_to_op_ns / 1000 / count,
        "iterations": count,
        "window_sum_kernel_duration_us": kernel_ns / 1000,
        "window_sum_op_to_op_latency_us": op_to_op_ns / 1000,
        "merged_rows": len(merged),
        "op_stats": stats,
        "one_iteration_ops": list(iteration["OP CODE"]),
        "ccl_ops": ccl,
        "merge_warnings": warnings,
        "config_digest": config_digest(iteration),
    }


def describe(figures: dict) -> str:
    return (
        f"total kernel duration {figures['total_kernel_duration_us']:.3f} us, total op-to-op latency "
        f"{figures['total_op_to_op_latency_us']:.3f} us per iteration "
        f"({figures['iterations']} iteration(s) of {len(figures['one_iteration_ops'])} ops)"
    )


def config_digest(rows: pd.DataFrame) -> str:
    """Changes iff a compared property changes."""
    columns = config_columns(rows)
    payload = json.dumps([columns, rows[columns].astype(str).values.tolist()])
    return hashlib.sha256(payload.encode()).hexdigest()[:16]
