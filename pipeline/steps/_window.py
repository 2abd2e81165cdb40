"""Figures from an ops CSV, named as the guide names them, from a window that was checked, not assumed.

The signpost window (first ``start`` .. last ``stop``) holds, on every device, the test's configured
number of iterations (DEVICE_PERF_ITERS): one iteration is the device's window rows divided by that count,
and the window must be an exact repetition of that iteration's ops WITH THEIR PROPERTIES (op code,
attributes, every input/output column). A fused op whose one iteration is itself periodic in op codes
(q/k/v as three ``ttnn.linear`` in a row) is one iteration of all its ops, never a third of one. Before
``start`` the same iteration must have run at least the guide's 10 warm-up times (the exact warm-up count
comes from the run's facts, see _perf). Anything else is a ``profiler_failure`` (DevicePerfError) whose
message gives the numbers and the fix. Per-iteration totals divide by the count.

Figures (µs): ``total_kernel_duration_us`` / ``total_op_to_op_latency_us`` per iteration (the guide's
total_kernel_duration: sum over the iteration's ops of each op's average), ``op_stats`` per op code
(ns, averages per call), the window sums only as ``window_sum_*`` next to ``iterations``, and the
``devices`` whose rows the window holds.
"""

import hashlib
import json
import re

import pandas as pd

from pipeline import opsperf
from pipeline.deviations import GUIDE_CONSTANTS

GUIDE_WARMUPS = GUIDE_CONSTANTS["PERF_WARMUP_ITERS"]
# The merged row is whichever device was slowest: its device id in a MEMORY cell says nothing of the config.
_DEVICE_IN_MEMORY = re.compile(r"^DEV_\d+_")


def config_columns(df: pd.DataFrame) -> list[str]:
    """OP CODE, ATTRIBUTES and every INPUT_/OUTPUT_ column (in the file's order)."""
    named = [c for c in ("OP CODE", "ATTRIBUTES") if c in df.columns]
    return named + [c for c in df.columns if c.startswith(("INPUT_", "OUTPUT_"))]


def config_values(rows: pd.DataFrame, columns: list[str]) -> list[tuple[str, ...]]:
    """Compared cells as stripped strings ('' when the column is missing), device ids out of MEMORY."""
    table = []
    for _, row in rows.iterrows():
        cells = []
        for column in columns:
            value = str(row[column]).strip() if column in row.index else ""
            if column.endswith("_MEMORY"):
                value = _DEVICE_IN_MEMORY.sub("DEV_*_", value)
            cells.append(value)
        table.append(tuple(cells))
    return table


def window_figures(csv, iterations: int, warmups: int = GUIDE_WARMUPS) -> dict:
    """Checked window -> merge -> stats."""
    frame = opsperf.read_ops_csv(csv)
    window = opsperf.signpost_window(frame)
    count, period = count_iterations(frame, window, iterations, warmups)
    merged, warnings = opsperf.merge_device_rows(window)
    figures = _figures(merged, warnings, merged.iloc[:period], count)
    figures["devices"] = devices(window)
    return figures


def devices(rows: pd.DataFrame) -> list[str]:
    """The device ids of the device op rows, in numeric order."""
    return sorted(_device_rows(rows), key=_device_order)


def module_figures(csv) -> dict:
    """A module-test report: every device op of the run (no signposts, one iteration), merged."""
    merged, warnings = opsperf.merge_device_rows(opsperf.read_ops_csv(csv))
    if merged.empty:
        raise opsperf.DevicePerfError("No device ops in the module test's device perf log.")
    return _figures(merged, warnings, merged, 1)


def one_iteration(csv, iterations: int) -> pd.DataFrame:
    """The merged rows of the window's first iteration (the window is checked by window_figures)."""
    frame = opsperf.read_ops_csv(csv)
    window = opsperf.signpost_window(frame)
    merged, _ = opsperf.merge_device_rows(window)
    return merged.iloc[: period_of(merged, iterations)]


def period_of(rows: pd.DataFrame, iterations: int) -> int:
    """Ops per iteration of one device's (or the merged) window rows: the rows over the configured count."""
    return max(len(rows) // iterations, 1)


def count_iterations(
    frame: pd.DataFrame, window: pd.DataFrame, configured: int, warmups: int = GUIDE_WARMUPS
) -> tuple[int, int]:
    """(iterations, ops per iteration) of the window, the same on every device, else an error."""
    found = {}
    per_device = _device_rows(window)
    for device, rows in per_device.items():
        found[device] = (configured, _checked_period(device, _keys(rows), configured))
    if not found:
        raise opsperf.DevicePerfError("No device ops between the signposts in device perf log.")
    if len(set(found.values())) > 1:
        raise opsperf.DevicePerfError(
            f"devices disagree on the window's iterations (iterations, ops): {found}"
        )
    count, period = next(iter(found.values()))
    _check_warmups(frame, window, (per_device, period, count), warmups)
    return count, period


def _checked_period(device: str, keys: list[tuple], configured: int) -> int:
    """The window's rows over the configured count, verified as an exact repetition with properties."""
    n = len(keys)
    if n % configured:
        raise opsperf.DevicePerfError(
            f"device {device}: the window's {n} ops are not an exact repetition of DEVICE_PERF_ITERS = "
            f"{configured} iterations ({n} is not a multiple of {configured})"
            f"{_found_instead(keys, configured)}"
            f": each signposted iteration must run the same op sequence, DEVICE_PERF_ITERS times"
        )
    period = n // configured
    for i in range(period, n):
        if keys[i] != keys[i % period]:
            raise opsperf.DevicePerfError(
                f"device {device}: the window is not {configured} repetitions of one {period}-op iteration: "
                f"op {i % period} of iteration {i // period + 1} "
                f"({_describe_difference(keys[i % period], keys[i])})"
                f"{_found_instead(keys, configured)}: run exactly DEVICE_PERF_ITERS identical iterations "
                f"between signpost('start') and signpost('stop')"
            )
    return period


def _found_instead(keys: list[tuple], configured: int) -> str:
    """What the window does hold, when it is a repetition of some other iteration."""
    period = _shortest_period(keys)
    count = len(keys) // period
    if period == len(keys) or count == configured:
        return ""
    hint = " - the window holds warm-up iterations: put signpost('start') after the warm-up loop"
    return (
        f"; the signpost window holds {count} iterations of the {period}-op sequence "
        f"{[k[0] for k in keys[:period]]} but the "
        f"test configures {configured} (DEVICE_PERF_ITERS){hint if count > configured else ''}"
    )


def _describe_difference(first: tuple, other: tuple) -> str:
    if first[0] != other[0]:
        return f"{other[0]} where the first iteration has {first[0]}"
    fields = [i for i, (a, b) in enumerate(zip(first, other, strict=True)) if a != b]
    return f"{first[0]} differs from the first iteration's in {len(fields)} property cell(s)"


def _check_warmups(frame: pd.DataFrame, window: pd.DataFrame, found: tuple, warmups: int) -> None:
    """At least `warmups` before `start`: the iteration (with its properties) ran that often (the CSV cannot
    tell a warm-up from an accuracy call; the facts' exact count is checked by _perf)."""
    per_device, period, count = found
    first = window.index[0] if len(window) else len(frame)
    before = _device_rows(frame[frame.index < first])
    for device, rows in before.items():
        iteration = _keys(per_device.get(device, rows.iloc[0:0]))[:period]
        seen = _occurrences(_keys(rows), iteration)
        if seen < warmups:
            raise opsperf.DevicePerfError(
                f"device {device}: {seen} iterations ran before signpost('start') but the guide asks for "
                f"{GUIDE_WARMUPS} warm-up iterations: set PERF_WARMUP_ITERS = {GUIDE_WARMUPS} and run them "
                f"before signpost('start'){_periodic_iteration(iteration, count)}"
            )


def _periodic_iteration(iteration: list[tuple], count: int) -> str:
    period = _shortest_period(iteration)
    if period == len(iteration):
        return ""
    repeats = len(iteration) // period
    return (
        f" (the measured iteration's {len(iteration)} ops are {repeats} repetitions of {period} ops: "
        f"if one iteration is {period} ops, the window holds {repeats * count} iterations, not "
        f"DEVICE_PERF_ITERS = {count}: then put signpost('start') after the warm-up loop)"
    )


def one_device_text(found: list[str]) -> str:
    """guide steps 11.3, 12: a single-device run whose rows name several devices."""
    return (
        f"the single-device device-perf CSV holds {len(found)} devices ({', '.join(found)}): the "
        f"single-device test must run on the first device only "
        f"(mesh_device.create_submesh(ttnn.MeshShape(1, 1)), guide steps 11.3 and 12)"
    )


def _device_rows(rows: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Device op rows per device id (rows without one, host records of trace captures, measure nothing)."""
    device_rows = rows[rows[opsperf.OP_TYPE] == opsperf.DEVICE_OP]
    ids = device_rows[opsperf.DEVICE_ID].astype(str).str.strip()
    return {device: device_rows[ids == device] for device in dict.fromkeys(ids) if device}


def _device_order(device: str):
    try:
        return (0, float(device), device)
    except ValueError:
        return (1, 0.0, device)


def _keys(rows: pd.DataFrame) -> list[tuple]:
    """One op's identity in an iteration: its op code and every configuration property."""
    return config_values(rows, config_columns(rows))


def _shortest_period(keys: list) -> int:
    """The shortest p that divides len(keys) with keys[i] == keys[i % p] for all i."""
    n = len(keys)
    for p in range(1, n + 1):
        if n % p == 0 and all(keys[i] == keys[i % p] for i in range(p, n)):
            return p
    return n


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
