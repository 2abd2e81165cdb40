"""ttnn_sim.profiler: the ops_perf_results CSV in tt-metal's schema and the per-device op-support limit."""

import csv
import logging

import pytest

from ttnn_sim import profiler


def _tensor(shape, padded, memory="DEV_0_DRAM_INTERLEAVED", layout="TILE", dtype="BFLOAT16"):
    return {"shape": shape, "padded_shape": padded, "layout": layout, "dtype": dtype, "memory": memory}


def _op(sort_ts, op_code="MatmulDeviceOperation", device_id=0, inputs=None, outputs=None, **extra):
    record = {
        "kind": "op",
        "op_code": op_code,
        "op_type": "tt_dnn_device",
        "global_call_count": 1024,
        "device_id": device_id,
        "arch": "wormhole_b0",
        "attributes": {"transpose_a": "false", "dtype": "BFLOAT16"},
        "math_fidelity": "HiFi2",
        "core_count": 64,
        "available_worker_core_count": 64,
        "host_start_ts": 100,
        "host_end_ts": 250,
        "fw_start_cycle": 1000,
        "fw_end_cycle": 1900,
        "kernel_start_cycle": 1010,
        "kernel_end_cycle": 1890,
        "kernel_duration_ns": 880,
        "op_to_op_latency_ns": 0,
        "inputs": inputs if inputs is not None else [_tensor([1, 1, 32, 64], [1, 1, 32, 64])],
        "outputs": outputs if outputs is not None else [_tensor([1, 1, 32, 32], [1, 1, 32, 32])],
        "trace_id": None,
        "replay_session_id": None,
        "program_cache_hit": True,
        "program_hash": 123,
        "compute_kernel_source": ["bmm.cpp"],
        "dm_kernel_source": ["reader.cpp", "writer.cpp"],
        "sort_ts": sort_ts,
    }
    record.update(extra)
    return record


def _signpost(header, ts, message=None):
    return {"kind": "signpost", "header": header, "message": message, "host_ts": ts, "sort_ts": ts}


def _write_and_read(tmp_path, records):
    path = profiler.write_ops_perf_csv(records, tmp_path / "ops.csv")
    raw = path.read_bytes()
    with path.open(newline="") as f:
        rows = list(csv.reader(f))
    return raw, rows[0], [dict(zip(rows[0], r, strict=True)) for r in rows[1:]]


def _reference_header(max_inputs, max_outputs):
    groups = {
        "INPUTS": [f"INPUT_{i}_{f}" for i in range(max_inputs) for f in profiler.TENSOR_FIELDS],
        "OUTPUTS": [f"OUTPUT_{j}_{f}" for j in range(max_outputs) for f in profiler.TENSOR_FIELDS],
    }
    return [c for name in profiler.OPS_CSV_HEADER for c in groups.get(name, [name])]


def test_base_header_is_the_57_reference_entries():
    assert len(profiler.OPS_CSV_HEADER) == 57
    assert profiler.OPS_CSV_HEADER[:3] == ["OP CODE", "OP TYPE", "GLOBAL CALL COUNT"]
    assert profiler.OPS_CSV_HEADER[34:38] == [
        "DISPATCH GO SEND WAIT TIME [ns]",
        "INPUTS",
        "OUTPUTS",
        "METAL TRACE ID",
    ]
    assert profiler.OPS_CSV_HEADER[-1] == "NPE CONG IMPACT (%)"


def test_header_sizes_tensor_groups_to_the_max_count_over_all_rows(tmp_path):
    two_inputs = [_tensor([1, 1, 32, 64], [1, 1, 32, 64]), _tensor([1, 1, 64, 32], [1, 1, 64, 32])]
    records = [_op(1), _op(2, inputs=two_inputs), _signpost("start", 0)]

    _, header, rows = _write_and_read(tmp_path, records)

    assert len(header) == 76  # tt-metal's header: 57 columns - 2 + 3 * 7 per tensor
    assert header == _reference_header(2, 1)
    assert header[35:42] == [f"INPUT_0_{f}" for f in profiler.TENSOR_FIELDS]
    assert rows[1]["INPUT_1_MEMORY"] == ""  # the one-input row leaves the second group empty


def test_file_uses_crlf_and_replaces_commas_inside_cells(tmp_path):
    raw, _, rows = _write_and_read(tmp_path, [_op(1)])

    assert raw.count(b"\r\n") == 2 and b"\n" not in raw.replace(b"\r\n", b"")
    assert rows[0]["ATTRIBUTES"] == "{'transpose_a': 'false'; 'dtype': 'BFLOAT16'}"
    assert rows[0]["DATA MOVEMENT KERNEL SOURCE"] == "['reader.cpp'; 'writer.cpp']"


def test_op_row_cells(tmp_path):
    record = _op(
        1, inputs=[_tensor([3, 65], [32, 96])], pm_fpu_util=12.05349, trace_id=7, replay_session_id=2
    )
    record["program_cache_hit"] = False

    _, _, (row,) = _write_and_read(tmp_path, [record])

    assert [row[f"INPUT_0_{d}_PAD[LOGICAL]"] for d in "WZYX"] == ["1[1]", "1[1]", "32[3]", "96[65]"]
    assert row["INPUT_0_MEMORY"] == "DEV_0_DRAM_INTERLEAVED" and row["INPUT_0_LAYOUT"] == "TILE"
    assert row["HOST DURATION [ns]"] == "150" and row["DEVICE FW DURATION [ns]"] == "900"
    assert row["DEVICE KERNEL DURATION [ns]"] == "880" and row["OP TO OP LATENCY [ns]"] == "0"
    assert row["DEVICE ARCH"] == "wormhole_b0" and row["MATH FIDELITY"] == "HiFi2"
    assert row["PROGRAM CACHE HIT"] == "False" and row["PM FPU UTIL (%)"] == "12.053"
    assert row["METAL TRACE ID"] == "7" and row["METAL TRACE REPLAY SESSION ID"] == "2"
    assert row["SUB DEVICE ID"] == "" and row["PM IDEAL [ns]"] == ""  # no figure -> empty


def test_missing_and_nan_values_are_empty(tmp_path):
    _, _, (row,) = _write_and_read(tmp_path, [_op(1, math_fidelity=None, kernel_duration_ns=float("nan"))])
    assert row["MATH FIDELITY"] == "" and row["DEVICE KERNEL DURATION [ns]"] == ""


def test_signpost_row_has_only_code_type_message_and_host_ts(tmp_path):
    records = [_signpost("start", 123456789), _signpost("stop", 5, "a, b"), _op(9)]
    _, _, rows = _write_and_read(tmp_path, records)

    stop, start = rows[0], rows[2]
    assert {k: v for k, v in start.items() if v} == {
        "OP CODE": "start",
        "OP TYPE": "signpost",
        "HOST START TS": "123456789",
    }
    assert stop["ATTRIBUTES"] == "a; b"


def test_signpost_line_shape_matches_reference(tmp_path):
    raw, header, _ = _write_and_read(tmp_path, [_signpost("start", 123456789), _op(1)])
    line = raw.split(b"\r\n")[2].decode()
    assert line.startswith("start,signpost,,,,,,,,,,123456789,")
    assert line.count(",") == len(header) - 1


def test_rows_are_sorted_by_sort_ts_stably(tmp_path):
    records = [_op(5, op_code="B"), _signpost("start", 3), _op(5, op_code="C"), _op(1, op_code="A")]
    _, _, rows = _write_and_read(tmp_path, records)
    assert [r["OP CODE"] for r in rows] == ["A", "start", "B", "C"]


def test_rank_above_four_folds_into_w_and_lower_rank_pads_with_ones(tmp_path):
    record = _op(1, inputs=[_tensor([2, 3, 4, 32, 32], [2, 3, 4, 32, 32]), _tensor([7], [32])])
    _, _, (row,) = _write_and_read(tmp_path, [record])
    assert row["INPUT_0_W_PAD[LOGICAL]"] == "6[6]"
    assert row["INPUT_1_X_PAD[LOGICAL]"] == "32[7]" and row["INPUT_1_Y_PAD[LOGICAL]"] == "1[1]"


def test_kernel_size_columns_follow_program_cache_hit_when_present(tmp_path):
    sizes = {"TENSIX COMPUTE 0": 1644, "TENSIX DM 1": 900, "TENSIX DM 0": 1068}
    _, header, (row,) = _write_and_read(tmp_path, [_op(1, max_kernel_size_b=sizes)])
    at = header.index("PROGRAM CACHE HIT")
    assert header[at + 1 : at + 4] == [
        "TENSIX DM 0 MAX KERNEL SIZE [B]",
        "TENSIX DM 1 MAX KERNEL SIZE [B]",
        "TENSIX COMPUTE 0 MAX KERNEL SIZE [B]",
    ]
    assert header[at + 4] == "PM IDEAL [ns]" and row["TENSIX DM 0 MAX KERNEL SIZE [B]"] == "1068"


@pytest.fixture
def profiling_child(tmp_path, monkeypatch):
    """This process acts as a profiled child writing into tmp_path."""
    monkeypatch.setenv("TT_METAL_DEVICE_PROFILER", "1")
    monkeypatch.setenv("TT_METAL_PROFILER_DIR", str(tmp_path))
    monkeypatch.delenv("TT_METAL_PROFILER_PROGRAM_SUPPORT_COUNT", raising=False)
    profiler._reset_for_tests()
    yield tmp_path
    profiler._reset_for_tests()


def test_ops_past_the_support_count_are_dropped_per_device_with_one_warning(
    profiling_child, monkeypatch, caplog
):
    monkeypatch.setenv("TT_METAL_PROFILER_PROGRAM_SUPPORT_COUNT", "3")
    caplog.set_level(logging.WARNING, logger="ttnn_sim.profiler")

    for ts in range(5):
        profiler.emit(_op(ts, device_id=0))
        profiler.emit(_op(ts, device_id=1))
    profiler.record_signpost("stop", None, 99)
    profiler.flush()

    records = profiler.load_records(profiling_child / ".logs")
    assert [r["device_id"] for r in records if r["kind"] == "op"] == [0, 1, 0, 1, 0, 1]
    assert records[-1]["kind"] == "signpost"  # signposts never count against the limit
    assert profiler.dropped_count() == 4
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 2
    assert warnings[0].startswith("Profiler DRAM buffers were full, markers were dropped! device 0")


def test_support_count_override_lowers_the_limit(profiling_child):
    profiler.set_support_count_override(1)
    profiler.emit(_op(1))
    profiler.emit(_op(2))
    profiler.flush()
    assert len(profiler.load_records(profiling_child / ".logs")) == 1
    assert profiler.dropped_count() == 1


def test_nothing_is_recorded_when_profiling_is_off(profiling_child, monkeypatch):
    monkeypatch.delenv("TT_METAL_DEVICE_PROFILER")
    profiler.emit(_op(1))
    profiler.flush()
    assert profiler.load_records(profiling_child / ".logs") == []


def test_flush_appends(profiling_child):
    profiler.emit(_op(1))
    profiler.flush()
    profiler.record_signpost("start", "msg", 5)
    profiler.flush()
    assert [r["kind"] for r in profiler.load_records(profiling_child / ".logs")] == ["op", "signpost"]
