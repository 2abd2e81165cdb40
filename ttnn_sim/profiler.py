"""The simulated device profiler: op/signpost records in the child, the ops_perf_results CSV in the parent.

Child side (the process running the model, docs/internals.md §1.4): when ``TT_METAL_DEVICE_PROFILER=1``,
``emit()`` buffers one record per op per device (and ``record_signpost()`` one per signpost); ``flush()``
appends them as JSON lines to ``$TT_METAL_PROFILER_DIR/.logs/ttnn_sim_ops.jsonl``. The sim core flushes
at device close; an ``atexit`` hook flushes whatever is left.

A device holds at most ``TT_METAL_PROFILER_PROGRAM_SUPPORT_COUNT`` (default 1000, tt-metal's
tools/tracy/common.py) op records; later ones for that device are dropped with tt-metal's buffer-overflow
warning, once per device.

Parent side (``python -m tracy``): ``load_records()`` + ``write_ops_perf_csv()`` write tracy's
process_ops_logs.py format exactly. How each column is derived from a record (missing keys give empty cells):

- ``OP CODE`` op_code · ``OP TYPE`` op_type · ``GLOBAL CALL COUNT`` global_call_count
  · ``DEVICE ID`` device_id · ``DEVICE ARCH`` arch · ``ATTRIBUTES`` ``str(attributes)`` (a Python dict
  literal) · ``MATH FIDELITY`` math_fidelity · ``CORE COUNT`` core_count · ``AVAILABLE WORKER CORE COUNT``
  available_worker_core_count · ``SUB DEVICE ID`` sub_device_id · ``PARALLELIZATION STRATEGY``
  parallelization_strategy.
- ``HOST START TS`` / ``HOST END TS`` host_start_ts / host_end_ts; ``HOST DURATION [ns]`` their difference.
- ``DEVICE FW START CYCLE`` / ``END CYCLE`` fw_start_cycle / fw_end_cycle; ``DEVICE FW DURATION [ns]`` their
  difference (the sim clocks chips at 1 GHz, so cycles are ns).
- ``OP TO OP LATENCY [ns]`` op_to_op_latency_ns; ``DEVICE KERNEL DURATION [ns]`` kernel_duration_ns.
- Every other device-duration and performance-model column comes from the record key named in
  ``_OPTIONAL_KEYS`` (e.g. ``PM IDEAL [ns]`` <- pm_ideal_ns); ``PM FPU UTIL (%)`` is rounded to 3 decimals.
- ``INPUT_i_*`` / ``OUTPUT_j_*`` from inputs[i] / outputs[j]: W, Z, Y, X are the shape left-padded with 1s
  to rank 4 (leading dims of a higher rank fold into W), each cell ``padded[logical]``; LAYOUT, DATATYPE
  and MEMORY (``DEV_{id}_{BUFFER}_{LAYOUT}``, built by the core) verbatim.
- ``METAL TRACE ID`` trace_id · ``METAL TRACE REPLAY SESSION ID`` replay_session_id.
- ``COMPUTE KERNEL SOURCE`` / ``HASH`` compute_kernel_source / compute_kernel_hash, ``DATA MOVEMENT KERNEL
  SOURCE`` / ``HASH`` dm_kernel_source / dm_kernel_hash (lists, rendered ``['a'; 'b']``) · ``PROGRAM HASH``
  program_hash · ``PROGRAM CACHE HIT`` program_cache_hit.
- ``<CLASS> <idx> MAX KERNEL SIZE [B]`` from max_kernel_size_b ({"TENSIX DM 0": 1068, ...}); such a column
  exists only when some row has it, right after ``PROGRAM CACHE HIT``.
- A signpost record gives OP CODE = header, OP TYPE = ``signpost``, ATTRIBUTES = message (or empty),
  HOST START TS = host_ts, everything else empty.
Rows are sorted by sort_ts (stable, so records with equal times keep their emission order).
"""

import atexit
import csv
import json
import logging
import math
import os
from pathlib import Path

OPS_LOG_NAME = "ttnn_sim_ops.jsonl"
DEFAULT_PROGRAM_SUPPORT_COUNT = 1000

_BASE_COLUMNS = [
    "OP CODE",
    "OP TYPE",
    "GLOBAL CALL COUNT",
    "DEVICE ID",
    "DEVICE ARCH",
    "ATTRIBUTES",
    "MATH FIDELITY",
    "CORE COUNT",
    "AVAILABLE WORKER CORE COUNT",
    "SUB DEVICE ID",
    "PARALLELIZATION STRATEGY",
    "HOST START TS",
    "HOST END TS",
    "HOST DURATION [ns]",
    "DEVICE FW START CYCLE",
    "DEVICE FW END CYCLE",
    "OP TO OP LATENCY [ns]",
    "OP TO OP LATENCY BR/NRISC START [ns]",
    "DEVICE FW DURATION [ns]",
    "DEVICE KERNEL DURATION [ns]",
    "DEVICE KERNEL DURATION DM START [ns]",
    "DEVICE KERNEL DURATION PER CORE MIN [ns]",
    "DEVICE KERNEL DURATION PER CORE MAX [ns]",
    "DEVICE KERNEL DURATION PER CORE AVG [ns]",
    "DEVICE KERNEL FIRST TO LAST START [ns]",
    "DEVICE BRISC KERNEL DURATION [ns]",
    "DEVICE NCRISC KERNEL DURATION [ns]",
    "DEVICE TRISC0 KERNEL DURATION [ns]",
    "DEVICE TRISC1 KERNEL DURATION [ns]",
    "DEVICE TRISC2 KERNEL DURATION [ns]",
    "DEVICE ERISC KERNEL DURATION [ns]",
    "DEVICE COMPUTE CB WAIT FRONT [ns]",
    "DEVICE COMPUTE CB RESERVE BACK [ns]",
    "DISPATCH TOTAL CQ CMD OP TIME [ns]",
    "DISPATCH GO SEND WAIT TIME [ns]",
]
_PROGRAM_COLUMNS = [
    "METAL TRACE ID",
    "METAL TRACE REPLAY SESSION ID",
    "COMPUTE KERNEL SOURCE",
    "COMPUTE KERNEL HASH",
    "DATA MOVEMENT KERNEL SOURCE",
    "DATA MOVEMENT KERNEL HASH",
    "PROGRAM HASH",
    "PROGRAM CACHE HIT",
]
_PERF_MODEL_COLUMNS = [
    "PM IDEAL [ns]",
    "PM COMPUTE [ns]",
    "PM BANDWIDTH [ns]",
    "PM REQ I BW",
    "PM REQ O BW",
    "PM FPU UTIL (%)",
    "NOC UTIL (%)",
    "MULTICAST NOC UTIL (%)",
    "DRAM BW UTIL (%)",
    "DRAM BW UTIL PER CTRL (%)",
    "ETH BW UTIL (%)",
    "NPE CONG IMPACT (%)",
]
# tracy's process_ops_logs.py: the 57-entry base header; INPUTS / OUTPUTS are placeholders for the tensor
# column groups.
OPS_CSV_HEADER = [*_BASE_COLUMNS, "INPUTS", "OUTPUTS", *_PROGRAM_COLUMNS, *_PERF_MODEL_COLUMNS]
TENSOR_FIELDS = [
    "W_PAD[LOGICAL]",
    "Z_PAD[LOGICAL]",
    "Y_PAD[LOGICAL]",
    "X_PAD[LOGICAL]",
    "LAYOUT",
    "DATATYPE",
    "MEMORY",
]
KERNEL_SIZE_CLASSES = ["TENSIX DM", "TENSIX COMPUTE", "ACTIVE ETH DM", "IDLE ETH DM"]

_DIRECT_KEYS = {
    "OP CODE": "op_code",
    "OP TYPE": "op_type",
    "GLOBAL CALL COUNT": "global_call_count",
    "DEVICE ID": "device_id",
    "DEVICE ARCH": "arch",
    "MATH FIDELITY": "math_fidelity",
    "CORE COUNT": "core_count",
    "AVAILABLE WORKER CORE COUNT": "available_worker_core_count",
    "SUB DEVICE ID": "sub_device_id",
    "PARALLELIZATION STRATEGY": "parallelization_strategy",
    "HOST START TS": "host_start_ts",
    "HOST END TS": "host_end_ts",
    "DEVICE FW START CYCLE": "fw_start_cycle",
    "DEVICE FW END CYCLE": "fw_end_cycle",
    "OP TO OP LATENCY [ns]": "op_to_op_latency_ns",
    "DEVICE KERNEL DURATION [ns]": "kernel_duration_ns",
    "METAL TRACE ID": "trace_id",
    "METAL TRACE REPLAY SESSION ID": "replay_session_id",
    "COMPUTE KERNEL SOURCE": "compute_kernel_source",
    "COMPUTE KERNEL HASH": "compute_kernel_hash",
    "DATA MOVEMENT KERNEL SOURCE": "dm_kernel_source",
    "DATA MOVEMENT KERNEL HASH": "dm_kernel_hash",
    "PROGRAM HASH": "program_hash",
    "PROGRAM CACHE HIT": "program_cache_hit",
}
_OPTIONAL_KEYS = {
    "OP TO OP LATENCY BR/NRISC START [ns]": "op_to_op_latency_br_nrisc_start_ns",
    "DEVICE KERNEL DURATION DM START [ns]": "kernel_duration_dm_start_ns",
    "DEVICE KERNEL DURATION PER CORE MIN [ns]": "kernel_duration_per_core_min_ns",
    "DEVICE KERNEL DURATION PER CORE MAX [ns]": "kernel_duration_per_core_max_ns",
    "DEVICE KERNEL DURATION PER CORE AVG [ns]": "kernel_duration_per_core_avg_ns",
    "DEVICE KERNEL FIRST TO LAST START [ns]": "kernel_first_to_last_start_ns",
    "DEVICE BRISC KERNEL DURATION [ns]": "brisc_kernel_duration_ns",
    "DEVICE NCRISC KERNEL DURATION [ns]": "ncrisc_kernel_duration_ns",
    "DEVICE TRISC0 KERNEL DURATION [ns]": "trisc0_kernel_duration_ns",
    "DEVICE TRISC1 KERNEL DURATION [ns]": "trisc1_kernel_duration_ns",
    "DEVICE TRISC2 KERNEL DURATION [ns]": "trisc2_kernel_duration_ns",
    "DEVICE ERISC KERNEL DURATION [ns]": "erisc_kernel_duration_ns",
    "DEVICE COMPUTE CB WAIT FRONT [ns]": "compute_cb_wait_front_ns",
    "DEVICE COMPUTE CB RESERVE BACK [ns]": "compute_cb_reserve_back_ns",
    "DISPATCH TOTAL CQ CMD OP TIME [ns]": "dispatch_total_cq_cmd_op_time_ns",
    "DISPATCH GO SEND WAIT TIME [ns]": "dispatch_go_send_wait_time_ns",
    "PM IDEAL [ns]": "pm_ideal_ns",
    "PM COMPUTE [ns]": "pm_compute_ns",
    "PM BANDWIDTH [ns]": "pm_bandwidth_ns",
    "PM REQ I BW": "pm_req_i_bw",
    "PM REQ O BW": "pm_req_o_bw",
    "PM FPU UTIL (%)": "pm_fpu_util",
    "NOC UTIL (%)": "noc_util",
    "MULTICAST NOC UTIL (%)": "multicast_noc_util",
    "DRAM BW UTIL (%)": "dram_bw_util",
    "DRAM BW UTIL PER CTRL (%)": "dram_bw_util_per_ctrl",
    "ETH BW UTIL (%)": "eth_bw_util",
    "NPE CONG IMPACT (%)": "npe_cong_impact",
}

# Wording of tt-metal's device-profiler overflow warning (tt_metal/impl/profiler/profiler.cpp,
# "Profiler DRAM buffers were full, markers were dropped! device {}, worker core {}, {}, Risc {}, ...").
# The sim has no cores or RISCs to name, so it reports the op-support count in their place.
OVERFLOW_WARNING = (
    "Profiler DRAM buffers were full, markers were dropped! device {device_id}, op support count {limit}. "
    "Please either decrease the number of ops being profiled or run read device profiler more often"
)

log = logging.getLogger(__name__)

_pending: list[dict] = []
_ops_per_device: dict[int, int] = {}
_warned_devices: set[int] = set()
_dropped = 0
_support_count_override: int | None = None
_atexit_registered = False


# ---- child side -------------------------------------------------------------------------------------


def enabled() -> bool:
    return os.environ.get("TT_METAL_DEVICE_PROFILER") == "1"


def support_count() -> int:
    if _support_count_override is not None:
        return _support_count_override
    value = os.environ.get("TT_METAL_PROFILER_PROGRAM_SUPPORT_COUNT", "")
    return int(value) if value.strip() else DEFAULT_PROGRAM_SUPPORT_COUNT


def set_support_count_override(n: int | None) -> None:
    """Lower (or, with None, restore) the per-device op limit; the profiler_overflow fault uses this."""
    global _support_count_override
    _support_count_override = None if n is None else max(0, int(n))


def dropped_count() -> int:
    """Op records dropped so far because a device's profiler buffer was full."""
    return _dropped


def emit(record: dict) -> None:
    """Buffer one op or signpost record (docs/internals.md §1.4); a no-op unless profiling is on."""
    if not enabled():
        return
    on_device = record.get("kind", "op") == "op" and record.get("device_id") is not None
    if on_device and not _device_has_room(int(record["device_id"])):
        return  # a captured op's host record (no device id) uses no device buffer
    _register_atexit_flush()
    _pending.append(record)


def record_signpost(header: str, message: str | None, host_ts: int) -> None:
    emit({"kind": "signpost", "header": header, "message": message, "host_ts": host_ts, "sort_ts": host_ts})


def flush() -> None:
    """Append the buffered records to the ops log in the profiler dir."""
    if not _pending:
        return
    path = ops_log_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = "".join(json.dumps(record, default=str) + "\n" for record in _pending)
    with path.open("a", encoding="utf-8") as log_file:
        log_file.write(lines)
    _pending.clear()


def profiler_dir() -> Path:
    """tt-metal's tools/tracy/common.py: TT_METAL_PROFILER_DIR, else $TT_METAL_HOME/generated/profiler
    (TT_METAL_HOME or CWD)."""
    if os.environ.get("TT_METAL_PROFILER_DIR"):
        return Path(os.environ["TT_METAL_PROFILER_DIR"])
    return Path(os.environ.get("TT_METAL_HOME") or os.getcwd()) / "generated" / "profiler"


def ops_log_path() -> Path:
    return profiler_dir() / ".logs" / OPS_LOG_NAME


def _device_has_room(device_id: int) -> bool:
    global _dropped
    limit = support_count()
    if _ops_per_device.get(device_id, 0) < limit:
        _ops_per_device[device_id] = _ops_per_device.get(device_id, 0) + 1
        return True
    _dropped += 1
    if device_id not in _warned_devices:
        _warned_devices.add(device_id)
        log.warning(OVERFLOW_WARNING.format(device_id=device_id, limit=limit))
    return False


def _register_atexit_flush() -> None:
    global _atexit_registered
    if not _atexit_registered:
        atexit.register(flush)
        _atexit_registered = True


def _reset_for_tests() -> None:
    global _dropped, _support_count_override
    _pending.clear()
    _ops_per_device.clear()
    _warned_devices.clear()
    _dropped = 0
    _support_count_override = None


# ---- parent side: the CSV -----------------------------------------------------------------------------


def load_records(logs_dir) -> list[dict]:
    """Every record in `logs_dir`/ttnn_sim_ops.jsonl, in file order ([] when the child logged nothing)."""
    path = Path(logs_dir) / OPS_LOG_NAME
    if not path.exists():
        return []
    lines = path.read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def csv_columns(records: list[dict]) -> list[str]:
    """The header for these records: tensor groups sized to the max tensor count, kernel sizes if any."""
    max_inputs = max((len(r.get("inputs") or []) for r in records), default=0)
    max_outputs = max((len(r.get("outputs") or []) for r in records), default=0)
    columns: list[str] = []
    for name in OPS_CSV_HEADER:
        if name == "INPUTS":
            columns += _tensor_columns("INPUT", max_inputs)
        elif name == "OUTPUTS":
            columns += _tensor_columns("OUTPUT", max_outputs)
        else:
            columns.append(name)
            if name == "PROGRAM CACHE HIT":
                columns += _kernel_size_columns(records)
    return columns


def write_ops_perf_csv(records: list[dict], path) -> Path:
    """Write the ops_perf_results CSV (tracy's process_ops_logs.py format): CRLF, `,` -> `;` in cells, empty
    for missing."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ordered = sorted(records, key=lambda r: r.get("sort_ts") or 0)
    columns = csv_columns(ordered)
    with path.open("w", newline="", encoding="utf-8") as out:
        writer = csv.DictWriter(out, fieldnames=columns, extrasaction="ignore", lineterminator="\r\n")
        writer.writeheader()
        for record in ordered:
            row = _signpost_row(record) if record.get("kind") == "signpost" else _op_row(record)
            writer.writerow({name: _cell(value) for name, value in row.items()})
    return path


def _tensor_columns(prefix: str, count: int) -> list[str]:
    return [f"{prefix}_{i}_{field}" for i in range(count) for field in TENSOR_FIELDS]


def _kernel_size_columns(records: list[dict]) -> list[str]:
    present = {name for r in records for name in (r.get("max_kernel_size_b") or {})}

    def order(name: str) -> tuple[int, int]:
        kind, _, index = name.rpartition(" ")
        rank = KERNEL_SIZE_CLASSES.index(kind) if kind in KERNEL_SIZE_CLASSES else len(KERNEL_SIZE_CLASSES)
        return rank, int(index) if index.isdigit() else 0

    return [f"{name} MAX KERNEL SIZE [B]" for name in sorted(present, key=order)]


def _signpost_row(record: dict) -> dict:
    return {
        "OP CODE": record.get("header"),
        "OP TYPE": "signpost",
        "ATTRIBUTES": record.get("message"),
        "HOST START TS": record.get("host_ts"),
    }


def _op_row(record: dict) -> dict:
    row = {column: record.get(key) for column, key in {**_DIRECT_KEYS, **_OPTIONAL_KEYS}.items()}
    row["ATTRIBUTES"] = str(record["attributes"]) if record.get("attributes") is not None else None
    row["HOST DURATION [ns]"] = _difference(record.get("host_end_ts"), record.get("host_start_ts"))
    row["DEVICE FW DURATION [ns]"] = _difference(record.get("fw_end_cycle"), record.get("fw_start_cycle"))
    if row["PM FPU UTIL (%)"] is not None:
        row["PM FPU UTIL (%)"] = round(float(row["PM FPU UTIL (%)"]), 3)
    for name, size in (record.get("max_kernel_size_b") or {}).items():
        row[f"{name} MAX KERNEL SIZE [B]"] = size
    for prefix, tensors in (("INPUT", record.get("inputs")), ("OUTPUT", record.get("outputs"))):
        for index, tensor in enumerate(tensors or []):
            row.update(_tensor_cells(f"{prefix}_{index}_", tensor))
    return row


def _tensor_cells(prefix: str, tensor: dict) -> dict:
    logical = _rank4(tensor.get("shape") or [])
    padded = _rank4(tensor.get("padded_shape") or tensor.get("shape") or [])
    pads = zip(TENSOR_FIELDS[:4], padded, logical, strict=True)
    cells = {f"{prefix}{field}": f"{p}[{s}]" for field, p, s in pads}
    cells[f"{prefix}LAYOUT"] = tensor.get("layout")
    cells[f"{prefix}DATATYPE"] = tensor.get("dtype")
    cells[f"{prefix}MEMORY"] = tensor.get("memory")
    return cells


def _rank4(shape) -> list[int]:
    """W, Z, Y, X: left-pad with 1s to rank 4; leading dims of a higher rank fold into W."""
    dims = [int(d) for d in shape]
    if len(dims) > 4:
        dims = [math.prod(dims[:-3]), *dims[-3:]]
    return [1] * (4 - len(dims)) + dims


def _difference(end, start):
    return None if end is None or start is None else end - start


def _cell(value) -> str:
    """tracy's process_ops_logs.py: None/NaN -> empty; otherwise str() with every ',' replaced by ';'."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value).replace(",", ";")
