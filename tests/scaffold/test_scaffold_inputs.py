"""The region's input tensors from a module_perf CSV: the first op's inputs and every matmul's weight."""

import csv

import pytest

from pipeline.scaffold.inputs import InputsError, TensorFact, op_matches, region_inputs
from ttnn_sim.profiler import TENSOR_FIELDS

GROUP = TENSOR_FIELDS  # a tensor's columns in an ops_perf_results CSV: INPUT_<i>_<field>
COLUMNS = ["OP CODE", "OP TYPE", "DEVICE ID", "DEVICE KERNEL DURATION [ns]"] + [
    f"INPUT_{i}_{field}" for i in range(2) for field in GROUP
]


def tensor(shape, layout="TILE", dtype="BFLOAT16", memory="DEV_0_L1_INTERLEAVED"):
    padded = [f"{-(-d // 32) * 32 if i >= 2 and layout == 'TILE' else d}[{d}]" for i, d in enumerate(shape)]
    return [*padded, layout, dtype, memory]


def write_csv(path, ops, devices=(0, 1), signposts=False):
    """ops: (op code, [input tensors]) in order; each device runs them all, device 1 with DEV_1 memory."""
    rows = [] if not signposts else [["start", "signpost", "", ""] + [""] * 14]
    for device in devices:
        for code, inputs in ops:
            cells = []
            for i in range(2):
                cells += (
                    [c.replace("DEV_0", f"DEV_{device}") for c in inputs[i]] if i < len(inputs) else [""] * 7
                )
            rows.append([code, "tt_dnn_device", str(device), "1000", *cells])
    if signposts:
        rows.append(["stop", "signpost", "", ""] + [""] * 14)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(COLUMNS)
        writer.writerows(rows)
    return path


ROUTER_RUN = [
    (
        "MatmulDeviceOperation",
        [tensor((1, 1, 32, 64)), tensor((1, 1, 64, 64), dtype="BFLOAT8_B")],
    ),  # another module
    ("ReshapeViewDeviceOperation", [tensor((1, 1, 32, 64))]),
    (
        "MatmulDeviceOperation",
        [tensor((1, 1, 32, 64)), tensor((1, 1, 64, 8), memory="DEV_0_DRAM_INTERLEAVED")],
    ),
    ("TopKDeviceOperation", [tensor((1, 1, 32, 8))]),
    ("SoftmaxDeviceOperation", [tensor((1, 1, 32, 4))]),
]
ROUTER_OPS = ["ttnn.linear", "ttnn.topk", "ttnn.deallocate", "ttnn.softmax"]


def test_the_first_op_is_where_the_region_lines_up(tmp_path):
    found = region_inputs(write_csv(tmp_path / "m.csv", ROUTER_RUN), ROUTER_OPS)
    assert (found.first_op, found.row) == ("MatmulDeviceOperation", 2)
    assert found.inputs == (
        TensorFact((1, 1, 32, 64), "TILE", "BFLOAT16", "DEV_0_L1_INTERLEAVED"),
        TensorFact((1, 1, 64, 8), "TILE", "BFLOAT16", "DEV_0_DRAM_INTERLEAVED"),
    )
    assert [code for code, _ in found.matmul_weights] == ["MatmulDeviceOperation"]
    assert found.matmul_weights[0][1].buffer_type == "DRAM"
    assert found.matmul_weights[0][1].memory_layout == "INTERLEAVED"
    assert "3 of the region's 3 ops" in found.how


def test_signposts_mark_the_region_when_present(tmp_path):
    found = region_inputs(write_csv(tmp_path / "m.csv", ROUTER_RUN[2:], signposts=True), [])
    assert found.first_op == "MatmulDeviceOperation"
    assert found.inputs[0].shape == (1, 1, 32, 64)


def test_a_region_no_op_of_the_run_matches_is_a_one_line_error(tmp_path):
    with pytest.raises(
        InputsError, match="no device op matches the region's first op ttnn.all_gather; the module ran"
    ):
        region_inputs(write_csv(tmp_path / "m.csv", ROUTER_RUN), ["ttnn.all_gather"])


@pytest.mark.parametrize(
    "op, code, expected",
    [
        ("ttnn.linear", "Matmul", True),
        ("ttnn.sparse_matmul", "SparseMatmulDeviceOperation", True),
        ("ttnn.mul", "BinaryNgDeviceOperation", True),
        ("ttnn.sigmoid", "UnaryDeviceOperation", True),
        ("ttnn.to_layout", "Untilize", True),
        ("ttnn.topk", "SoftmaxDeviceOperation", False),
        ("ttnn.linear", "TopKDeviceOperation", False),
        ("ttnn.all_reduce", "AllReduceAsync", True),
        ("ttnn.rms_norm", "LayerNormDeviceOperation", True),
        ("ttnn.rms_norm", "SoftmaxDeviceOperation", False),
    ],
)
def test_op_names_match_op_codes(op, code, expected):
    assert op_matches(op, code) is expected


def test_an_op_without_a_row_does_not_pull_the_rest_out_of_line(tmp_path):
    """A view (no device op) in the region, and the same op code again much later in the module run: the
    region's other ops keep their own rows, never the far later ones."""
    x = [tensor((1, 1, 32, 64))]
    run = [("MatmulDeviceOperation", x), ("TopKDeviceOperation", x), ("SoftmaxDeviceOperation", x)]
    run += [("EmbeddingsDeviceOperation", x)] * 20 + [("ReshapeViewDeviceOperation", x)]
    run += [("TopKDeviceOperation", x), ("SoftmaxDeviceOperation", x)]
    csv_path = write_csv(tmp_path / "run.csv", run, devices=(0,))
    found = region_inputs(csv_path, ["ttnn.linear", "ttnn.reshape", "ttnn.topk", "ttnn.softmax"])
    assert found.row == 0 and found.how.startswith("3 of the region's 3 ops")  # views are not lined up
    assert [cells is not None for cells in found.op_cells] == [True, False, True, True]
