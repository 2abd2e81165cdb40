"""OP CODEs and the row set as tt-metal writes them: docs/sim-opcodes.md covers every simulated op, and a
workload with to_layout both ways, reshapes and a traced window gives tt-metal's rows, which tt-perf-report
reads."""

import csv
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "ttnn_sim" / "shim"))

import ttnn  # noqa: E402

from ttnn_sim import profiler  # noqa: E402
from ttnn_sim.ops import COMPOSITES, OPS  # noqa: E402

DOC = REPO / "docs" / "sim-opcodes.md"
ROW = re.compile(r"^\| `([\w.]+)` \| (.+?) \|")


def documented(text: str) -> dict[str, set[str]]:
    """{ttnn op: the OP CODEs its row names} for every table row of the doc."""
    entries = {}
    for line in text.splitlines():
        if match := ROW.match(line):
            entries[match.group(1)] = set(re.findall(r"`(\w+)`", match.group(2)))
    return entries


def undocumented(text: str) -> list[str]:
    """Ops of the tables (and composites) the doc lacks, or documents with other op codes than they write."""
    entries = documented(text)
    wrong = [name for name, op in OPS.items() if entries.get(name) != set(op.codes())]
    return wrong + [name for name in COMPOSITES if name not in entries]


def test_every_simulated_op_has_its_row_in_the_doc():
    text = DOC.read_text(encoding="utf-8")
    assert undocumented(text) == []
    dropped = "\n".join(line for line in text.splitlines() if not line.startswith("| `topk` |"))
    assert undocumented(dropped) == ["topk"]  # the check notices a missing row
    renamed = text.replace("| `softmax` | `SoftmaxDeviceOperation`", "| `softmax` | `Softmax`")
    assert undocumented(renamed) == ["softmax"]  # and a wrong op code


@pytest.fixture
def csv_rows(tmp_path, monkeypatch):
    """Run a workload with the profiler on, then give back the CSV rows and the CSV path."""
    monkeypatch.setenv("TT_METAL_DEVICE_PROFILER", "1")
    monkeypatch.setenv("TT_METAL_PROFILER_DIR", str(tmp_path))
    profiler._reset_for_tests()

    def written():
        profiler.flush()
        path = profiler.write_ops_perf_csv(profiler.load_records(tmp_path / ".logs"), tmp_path / "ops.csv")
        with path.open(newline="") as f:
            return list(csv.DictReader(f)), path

    yield written
    profiler._reset_for_tests()


def _workload(mesh):
    odd = ttnn.from_torch(torch.randn(1, 1, 40, 50), dtype=ttnn.bfloat16, device=mesh)  # ROW_MAJOR, not tiles
    tiled = ttnn.to_layout(odd, ttnn.TILE_LAYOUT)  # TilizeWithValPadding
    ttnn.to_layout(tiled, ttnn.ROW_MAJOR_LAYOUT)  # UntilizeWithUnpadding
    ttnn.to_layout(tiled, ttnn.TILE_LAYOUT)  # same layout: no row
    aligned = ttnn.from_torch(
        torch.randn(1, 1, 64, 64), dtype=ttnn.bfloat16, layout=ttnn.TILE_LAYOUT, device=mesh
    )
    ttnn.to_layout(ttnn.to_layout(aligned, ttnn.ROW_MAJOR_LAYOUT), ttnn.TILE_LAYOUT)  # Untilize, Tilize
    ttnn.reshape(aligned, (1, 2, 32, 64))  # second-last dims both whole tiles: a view, no row
    ttnn.reshape(aligned, (1, 1, 32, 128))  # the last dim changes: ReshapeView
    ttnn.add(aligned, aligned)  # compile
    trace = ttnn.begin_trace_capture(mesh)
    ttnn.add(ttnn.reshape(aligned, (64, 64)), aligned)  # the view inside the trace writes no row either
    ttnn.end_trace_capture(mesh, trace)
    for _ in range(2):
        ttnn.execute_trace(mesh, trace)
    return trace


def test_workload_rows_are_tt_metals(csv_rows):
    mesh = ttnn.open_mesh_device(ttnn.MeshShape(1, 2), trace_region_size=1 << 20)
    try:
        trace = _workload(mesh)
    finally:
        ttnn.close_mesh_device(mesh)
    rows, path = csv_rows()
    eager = [r["OP CODE"] for r in rows if r["DEVICE ID"] == "0" and not r["METAL TRACE ID"]]
    assert eager == [
        "TilizeWithValPaddingDeviceOperation",
        "UntilizeWithUnpaddingDeviceOperation",
        "UntilizeDeviceOperation",
        "TilizeDeviceOperation",
        "ReshapeViewDeviceOperation",
        "BinaryNgDeviceOperation",
    ]
    captured = [r for r in rows if r["DEVICE ID"] == ""]
    assert [r["OP CODE"] for r in captured] == ["BinaryNgDeviceOperation"]  # one host record, at capture
    assert captured[0]["OP TYPE"] == "tt_dnn_device" and captured[0]["HOST START TS"]
    assert all(
        captured[0][c] == ""
        for c in ("METAL TRACE ID", "DEVICE KERNEL DURATION [ns]", "DEVICE FW START CYCLE")
    )
    replays = [r for r in rows if r["METAL TRACE ID"]]
    assert [(r["OP CODE"], r["DEVICE ID"], r["METAL TRACE REPLAY SESSION ID"]) for r in replays] == [
        ("BinaryNgDeviceOperation", "0", "1"),
        ("BinaryNgDeviceOperation", "1", "1"),
        ("BinaryNgDeviceOperation", "0", "2"),
        ("BinaryNgDeviceOperation", "1", "2"),
    ]
    assert {r["METAL TRACE ID"] for r in replays} == {str(trace)}
    assert rows.index(captured[0]) < rows.index(replays[0])

    report = subprocess.run(
        [str(Path(sys.executable).parent / "tt-perf-report"), str(path), "--no-color"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert report.returncode == 0, report.stdout + report.stderr
    assert "UntilizeWithUnpadding" in report.stdout and "TilizeWithValPadding" in report.stdout


def test_softmax_row_records_numeric_stable(csv_rows):
    mesh = ttnn.open_mesh_device(ttnn.MeshShape(1, 1))
    try:
        x = ttnn.from_torch(torch.randn(32, 32), dtype=ttnn.bfloat16, layout=ttnn.TILE_LAYOUT, device=mesh)
        ttnn.softmax(x, dim=-1, numeric_stable=False)
        ttnn.softmax(x, dim=-1)
    finally:
        ttnn.close_mesh_device(mesh)
    rows, _ = csv_rows()
    attributes = [r["ATTRIBUTES"] for r in rows if r["OP CODE"] == "SoftmaxDeviceOperation"]
    assert "'numeric_stable': 'false'" in attributes[0] and "'numeric_stable': 'true'" in attributes[1]


def test_scalar_operands_are_in_the_row_as_tt_metal_writes_them(csv_rows):
    """BinaryNg's `scalar` and a unary's `params` carry the module's numbers (clamp's open bound: float
    max)."""
    mesh = ttnn.open_mesh_device(ttnn.MeshShape(1, 1))
    try:
        x = ttnn.from_torch(torch.randn(32, 32), dtype=ttnn.bfloat16, layout=ttnn.TILE_LAYOUT, device=mesh)
        ttnn.mul(x, 1.702)
        ttnn.add(x, x)
        ttnn.clamp(x, min=None, max=7.0)
        ttnn.sigmoid(x)
    finally:
        ttnn.close_mesh_device(mesh)
    rows, _ = csv_rows()
    binary = [r["ATTRIBUTES"] for r in rows if r["OP CODE"] == "BinaryNgDeviceOperation"]
    assert "'binary_op_type': 'BinaryOpType::MULTIPLY'; 'scalar': '1.702'" in binary[0], binary
    assert "'scalar': 'std::nullopt'" in binary[1], binary
    unary = [r["ATTRIBUTES"] for r in rows if r["OP CODE"] == "UnaryDeviceOperation"]
    assert "UnaryOpType::CLAMP; params=[-3.4028234663852886e+38; 7.0])]" in unary[0], unary
    assert "[UnaryWithParam(op_type=UnaryOpType::SIGMOID)]" in unary[1], unary
