"""pipeline.opsperf on small synthetic CSVs: window, multi-device merge, stats, name-only column lookup."""

import csv

import pytest

from pipeline import opsperf

# Deliberately not tt-metal's column order: lookups must be by name.
COLUMNS = [
    "DEVICE ID",
    "OP TYPE",
    "OP CODE",
    "OP TO OP LATENCY [ns]",
    "DEVICE KERNEL DURATION [ns]",
    "INPUT_0_MEMORY",
]


def op(code, device, kernel, o2o="10", memory="DEV_0_DRAM_INTERLEAVED"):
    return [str(device), "tt_dnn_device", code, o2o, str(kernel), memory]


def signpost(name):
    return ["", "signpost", name, "", "", ""]


def write_csv(path, rows, columns=COLUMNS):
    with open(path, "w", newline="") as f:
        writer = csv.writer(f, lineterminator="\r\n")  # tt-metal writes CRLF
        writer.writerow(columns)
        writer.writerows(rows)
    return path


def frame(tmp_path, rows):
    return opsperf.read_ops_csv(write_csv(tmp_path / "ops.csv", rows))


def test_read_keeps_cells_as_strings(tmp_path):
    df = frame(tmp_path, [op("Matmul", 0, 100), signpost("start")])
    assert df["DEVICE ID"].tolist() == ["0", ""]
    assert df["DEVICE KERNEL DURATION [ns]"].tolist() == ["100", ""]


def test_window_is_first_start_to_last_stop(tmp_path):
    rows = [
        op("Warm", 0, 1),
        signpost("start"),
        op("A", 0, 2),
        signpost("stop"),
        op("B", 0, 3),
        signpost("start"),
        op("C", 0, 4),
        signpost("stop"),
        op("After", 0, 5),
    ]
    window = opsperf.signpost_window(frame(tmp_path, rows))
    assert window["OP CODE"].tolist() == ["A", "stop", "B", "start", "C"]


@pytest.mark.parametrize(
    "rows, message",
    [
        ([op("A", 0, 1)], "No signposts found in device perf log."),
        ([signpost("stop"), op("A", 0, 1)], "Missing signpost 'start' in device perf log."),
        ([signpost("start"), op("A", 0, 1)], "Missing signpost 'stop' in device perf log."),
        ([signpost("stop"), op("A", 0, 1), signpost("start")], "Signpost 'stop' must come after 'start'."),
    ],
)
def test_window_errors_use_tt_metal_texts(tmp_path, rows, message):
    with pytest.raises(opsperf.DevicePerfError) as error:
        opsperf.signpost_window(frame(tmp_path, rows))
    assert str(error.value) == message


def test_window_with_custom_names(tmp_path):
    rows = [signpost("begin"), op("A", 0, 1), signpost("end")]
    assert opsperf.signpost_window(frame(tmp_path, rows), "begin", "end")["OP CODE"].tolist() == ["A"]


def test_merge_takes_slowest_device_row_for_ordinary_ops(tmp_path):
    rows = [
        op("Matmul", 0, 100, o2o="7", memory="DEV_0_X"),
        op("Matmul", 1, 300, o2o="9", memory="DEV_1_X"),
        op("Softmax", 0, 50),
        op("Softmax", 1, 40),
    ]
    merged, warnings = opsperf.merge_device_rows(frame(tmp_path, rows))
    assert warnings == []
    assert merged["OP CODE"].tolist() == ["Matmul", "Softmax"]
    # The whole row of the slowest device: its op-to-op latency and memory cell come with it.
    columns = ["DEVICE KERNEL DURATION [ns]", "OP TO OP LATENCY [ns]", "INPUT_0_MEMORY"]
    assert merged.iloc[0][columns].tolist() == ["300", "9", "DEV_1_X"]
    assert merged.index.tolist() == [1, 2]  # source rows, for reports


def test_merge_averages_collectives_over_devices(tmp_path):
    rows = [op("AllGatherAsync", 0, 100), op("AllGatherAsync", 1, 300), op("AllGatherAsync", 2, "")]
    merged, _ = opsperf.merge_device_rows(frame(tmp_path, rows))
    assert len(merged) == 1
    assert float(merged.iloc[0]["DEVICE KERNEL DURATION [ns]"]) == 200.0
    assert merged.iloc[0]["DEVICE ID"] == "0"  # the first block's row


def test_merge_all_to_all_is_collective_by_default_but_configurable(tmp_path):
    rows = [op("AllToAllDispatch", 0, 100), op("AllToAllDispatch", 1, 300)]
    df = frame(tmp_path, rows)
    assert float(opsperf.merge_device_rows(df)[0].iloc[0]["DEVICE KERNEL DURATION [ns]"]) == 200.0
    tt_perf_report = ("AllGather", "ReduceScatter", "AllReduce")
    assert opsperf.merge_device_rows(df, tt_perf_report)[0].iloc[0]["DEVICE KERNEL DURATION [ns]"] == "300"


def test_merge_reports_missing_devices_with_tt_metal_wording(tmp_path):
    # Device 1 lacks the Softmax: its Add is not consumed until the other devices reach theirs.
    rows = [op("Matmul", 0, 1), op("Matmul", 1, 1), op("Softmax", 0, 1), op("Add", 0, 1), op("Add", 1, 1)]
    merged, warnings = opsperf.merge_device_rows(frame(tmp_path, rows))
    assert merged["OP CODE"].tolist() == ["Matmul", "Softmax", "Add"]
    assert warnings == [
        "Warning: Softmax at index 1 not present in CSV for 1 devices [1] - do not trust data for this op "
        "or directly subsequent ops with the same name"
    ]


def test_merge_reports_exhausted_devices(tmp_path):
    rows = [op("Matmul", 0, 1), op("Matmul", 1, 1), op("Add", 1, 1)]
    merged, warnings = opsperf.merge_device_rows(frame(tmp_path, rows))
    assert merged["OP CODE"].tolist() == ["Matmul", "Add"]
    assert warnings == ["Warning: Device 0 is missing operation None at index 1"]


def test_merge_ignores_signposts_and_host_ops(tmp_path):
    rows = [signpost("start"), ["0", "python_fallback", "torch_op", "", "", ""], op("A", 0, 5)]
    merged, _ = opsperf.merge_device_rows(frame(tmp_path, rows))
    assert merged["OP CODE"].tolist() == ["A"]


def test_merge_of_nothing_is_empty_with_columns(tmp_path):
    merged, warnings = opsperf.merge_device_rows(frame(tmp_path, [signpost("start")]))
    assert merged.empty and list(merged.columns) == COLUMNS and warnings == []
    assert opsperf.op_stats(merged) == {}


def test_stats_and_totals_over_two_iterations_on_two_devices(tmp_path):
    rows = [signpost("start")]
    for _ in range(2):
        rows += [
            op("Matmul", 0, 100, o2o="5"),
            op("Matmul", 1, 120, o2o="6"),
            op("AllReduce", 0, 40, o2o="1"),
            op("AllReduce", 1, 60, o2o="2"),
        ]
    rows.append(signpost("stop"))
    merged, _ = opsperf.merge_device_rows(opsperf.signpost_window(frame(tmp_path, rows)))
    stats = opsperf.op_stats(merged)
    assert list(stats) == ["AllReduce", "Matmul"]  # sorted like pandas groupby
    assert stats["Matmul"] == {
        "avg_kernel_duration_ns": 120.0,
        "avg_op_to_op_latency_ns": 6.0,
        "total_kernel_duration_ns": 240.0,
        "total_op_to_op_latency_ns": 12.0,
        "call_count": 2,
    }
    assert stats["AllReduce"]["total_kernel_duration_ns"] == 100.0  # mean over devices, per iteration
    assert stats["AllReduce"]["total_op_to_op_latency_ns"] == 2.0  # the first device's row
    assert opsperf.totals(stats) == (340.0, 14.0)


def test_stats_drop_warmup_samples_per_op_and_count_empty_cells_as_zero(tmp_path):
    rows = [op("A", 0, 1000), op("A", 0, 10), op("A", 0, "", o2o="")]
    merged, _ = opsperf.merge_device_rows(frame(tmp_path, rows))
    stats = opsperf.op_stats(merged, warmup_iters=1)
    assert stats["A"]["call_count"] == 2
    assert stats["A"]["total_kernel_duration_ns"] == 10.0
    assert stats["A"]["avg_op_to_op_latency_ns"] == 5.0


def test_stats_name_missing_columns(tmp_path):
    df = opsperf.read_ops_csv(
        write_csv(tmp_path / "x.csv", [["A", "1"]], ["OP CODE", "DEVICE KERNEL DURATION [ns]"])
    )
    with pytest.raises(
        opsperf.DevicePerfError, match=r"Missing device perf columns: \['OP TO OP LATENCY \[ns\]'\]"
    ):
        opsperf.op_stats(df)
