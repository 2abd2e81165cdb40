"""tt-metal ops_perf_results CSVs: read, signpost window, CCL-aware device merge, per-op stats.

Implements tt-metal's fused_op_device_perf_utils.py (`fused_op_device_perf_utils.py`): the window is
FIRST `start` .. LAST `stop`
(strictly between), the merge walks the per-device op lists in lockstep and keeps the slowest device
for ordinary ops and the device average for collectives. Columns are looked up by name only; cells
stay strings (an empty cell is ``""``) until a figure is computed from them.
"""

import math

import pandas as pd

COLLECTIVES = ("AllGather", "ReduceScatter", "AllReduce", "AllToAll")

OP_CODE = "OP CODE"
OP_TYPE = "OP TYPE"
DEVICE_ID = "DEVICE ID"
KERNEL_NS = "DEVICE KERNEL DURATION [ns]"
OP_TO_OP_NS = "OP TO OP LATENCY [ns]"
DEVICE_OP = "tt_dnn_device"
SIGNPOST = "signpost"


class DevicePerfError(AssertionError):
    """A device-perf log that cannot be measured; tt-metal asserts here, hence AssertionError."""


def read_ops_csv(path) -> pd.DataFrame:
    """The CSV with every cell a string and a positional index (0 = first data row)."""
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def signpost_window(df: pd.DataFrame, start: str = "start", stop: str = "stop") -> pd.DataFrame:
    """Rows strictly between the FIRST `start` and the LAST `stop` signpost (tt-metal's fused tests)."""
    _require_columns(df, [OP_CODE, OP_TYPE])
    positions = [i for i, kind in enumerate(df[OP_TYPE]) if kind == SIGNPOST]
    if not positions:
        raise DevicePerfError("No signposts found in device perf log.")
    names = [df[OP_CODE].iloc[i] for i in positions]
    if start not in names:
        raise DevicePerfError(f"Missing signpost '{start}' in device perf log.")
    if stop not in names:
        raise DevicePerfError(f"Missing signpost '{stop}' in device perf log.")
    first_start = positions[names.index(start)]
    last_stop = positions[len(names) - 1 - names[::-1].index(stop)]
    if last_stop <= first_start:
        raise DevicePerfError(f"Signpost '{stop}' must come after '{start}'.")
    return df.iloc[first_start + 1 : last_stop]


def merge_device_rows(df: pd.DataFrame, collectives=COLLECTIVES) -> tuple[pd.DataFrame, list[str]]:
    """One row per op occurrence across devices, in per-device order (tt-metal's
    fused_op_device_perf_utils.py), plus the warnings.

    The result keeps the source frame's columns; its index is the source index of the row that was
    kept, so reports can point back into the CSV. A collective's kernel duration becomes the mean over
    devices (as ``str(float)``, or ``""`` when no device has one).
    """
    _require_columns(df, [OP_CODE, OP_TYPE, DEVICE_ID, KERNEL_NS])
    warnings: list[str] = []
    queues = _rows_per_device(df, warnings)
    device_ids = sorted(queues)
    merged: list[pd.Series] = []
    global_index = 0
    while any(queues[d] for d in device_ids):
        op_name = None
        blocks: list[pd.Series] = []
        missing: list[int] = []
        for device_id in device_ids:
            queue = queues[device_id]
            if not queue:
                warnings.append(
                    f"Warning: Device {device_id} is missing operation {op_name} at index {global_index}"
                )
                continue
            if op_name is None:
                op_name = queue[0][OP_CODE]
            elif queue[0][OP_CODE] != op_name:
                missing.append(device_id)
                continue
            blocks.append(queue.pop(0))
        if missing:
            warnings.append(
                f"Warning: {op_name} at index {global_index} not present in CSV for {len(missing)} devices "
                f"{missing} - do not trust data for this op or directly subsequent ops with the same name"
            )
        merged.append(_merge_block(blocks, any(tag in op_name for tag in collectives)))
        global_index += 1
    if not merged:
        return df.iloc[0:0].copy(), warnings
    return pd.DataFrame(merged), warnings


def op_stats(merged: pd.DataFrame, warmup_iters: int = 0) -> dict[str, dict]:
    """Per OP CODE (sorted): average and total kernel duration and op-to-op latency, and the call count.

    The first `warmup_iters` occurrences of each op are dropped; empty cells count as 0 (as tt-metal's
    ``fillna(0.0)``).
    """
    missing = [c for c in (OP_CODE, KERNEL_NS, OP_TO_OP_NS) if c not in merged.columns]
    if missing:
        raise DevicePerfError(f"Missing device perf columns: {missing}")
    kernel = pd.to_numeric(merged[KERNEL_NS], errors="coerce").fillna(0.0)
    op_to_op = pd.to_numeric(merged[OP_TO_OP_NS], errors="coerce").fillna(0.0)
    frame = pd.DataFrame(
        {"op": merged[OP_CODE].to_numpy(), "kernel": kernel.to_numpy(), "o2o": op_to_op.to_numpy()}
    )
    stats = {}
    for op_code, group in frame.groupby("op", sort=True):
        samples = group.iloc[warmup_iters:]
        if samples.empty:
            continue
        stats[str(op_code)] = {
            "avg_kernel_duration_ns": float(samples["kernel"].mean()),
            "avg_op_to_op_latency_ns": float(samples["o2o"].mean()),
            "total_kernel_duration_ns": float(samples["kernel"].sum()),
            "total_op_to_op_latency_ns": float(samples["o2o"].sum()),
            "call_count": len(samples),
        }
    return stats


def totals(stats: dict[str, dict]) -> tuple[float, float]:
    """(total kernel ns, total op-to-op ns) over every op: the whole window, all iterations."""
    kernel = sum(s["total_kernel_duration_ns"] for s in stats.values())
    op_to_op = sum(s["total_op_to_op_latency_ns"] for s in stats.values())
    return float(kernel), float(op_to_op)


def _rows_per_device(df: pd.DataFrame, warnings: list[str]) -> dict[int, list[pd.Series]]:
    queues: dict[int, list[pd.Series]] = {}
    for index, row in df[df[OP_TYPE] == DEVICE_OP].iterrows():
        device = str(row[DEVICE_ID]).strip()
        if not device:
            # Host records of trace captures carry no device columns (tracy's process_ops_logs.py);
            # they measure nothing.
            warnings.append(f"Warning: row {index} ({row[OP_CODE]}) has no DEVICE ID; skipped")
            continue
        queues.setdefault(int(float(device)), []).append(row)
    return queues


def _merge_block(blocks: list[pd.Series], collective: bool) -> pd.Series:
    durations = [_number(b[KERNEL_NS]) for b in blocks]
    if collective:
        known = [d for d in durations if not math.isnan(d)]
        row = blocks[0].copy()
        row[KERNEL_NS] = str(sum(known) / len(known)) if known else ""
        return row
    # The slowest device bounds the op; rows without a duration only win when no device has one.
    slowest = max(range(len(blocks)), key=lambda i: -math.inf if math.isnan(durations[i]) else durations[i])
    return blocks[slowest]


def _number(cell) -> float:
    try:
        return float(cell)
    except (TypeError, ValueError):
        return math.nan


def _require_columns(df: pd.DataFrame, columns: list[str]) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise DevicePerfError(f"Missing device perf columns: {missing}")
