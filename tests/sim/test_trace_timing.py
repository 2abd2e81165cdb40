"""Trace replay timing: the device runs a replay only after the host issued execute_trace, so a trace's e2e
time covers its device time and the host's gap between replays shows as the first op's op-to-op latency."""

import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "ttnn_sim" / "shim"))

import ttnn  # noqa: E402

from ttnn_sim import cost, profiler  # noqa: E402

ITERATIONS = 100


@pytest.fixture
def records(tmp_path, monkeypatch):
    """The profiler's op records of what ran so far (profiling on for the test)."""
    monkeypatch.setenv("TT_METAL_DEVICE_PROFILER", "1")
    monkeypatch.setenv("TT_METAL_PROFILER_DIR", str(tmp_path))
    monkeypatch.setenv("TT_METAL_PROFILER_PROGRAM_SUPPORT_COUNT", "100000")
    profiler._reset_for_tests()

    def written():
        profiler.flush()
        return [r for r in profiler.load_records(tmp_path / ".logs") if r.get("device_id") is not None]

    yield written
    profiler._reset_for_tests()


@pytest.fixture
def mesh():
    device = ttnn.open_mesh_device(ttnn.MeshShape(1, 2), trace_region_size=1 << 24)
    yield device
    ttnn.close_mesh_device(device)


def _capture(mesh, x, iterations):
    ttnn.add(x, x)  # compiles, so the capture hits the program cache
    ttnn.synchronize_device(mesh)
    trace = ttnn.begin_trace_capture(mesh, cq_id=0)
    for _ in range(iterations):
        ttnn.add(x, x)
    ttnn.end_trace_capture(mesh, trace, cq_id=0)
    ttnn.synchronize_device(mesh)
    return trace


def _input(mesh):
    return ttnn.from_torch(
        torch.randn(1, 1, 64, 64), dtype=ttnn.bfloat16, layout=ttnn.TILE_LAYOUT, device=mesh
    )


def _replays(rows, session=None):
    return [r for r in rows if r["trace_id"] is not None and r["device_id"] == rows[0]["device_id"]
            and (session is None or r["replay_session_id"] == session)]


def test_a_trace_e2e_figure_covers_the_device_time_of_its_replay(mesh, records):
    trace = _capture(mesh, _input(mesh), ITERATIONS)
    host_start = ttnn.sim.host_time_ns()
    ttnn.execute_trace(mesh, trace, cq_id=0, blocking=False)
    ttnn.synchronize_device(mesh)
    e2e = ttnn.sim.host_time_ns() - host_start
    replayed = _replays(records())
    assert len(replayed) == ITERATIONS
    assert min(r["kernel_start_cycle"] for r in replayed) >= host_start
    device_time = sum(r["kernel_duration_ns"] for r in replayed)
    assert device_time >= ITERATIONS * cost.MIN_KERNEL_NS
    assert e2e >= device_time  # before the fix: 4.3 us for 100 replayed kernels of 1.5 us


def test_decode_op_to_op_holds_the_host_gap_between_replays(mesh, records):
    trace = _capture(mesh, _input(mesh), 2)
    ttnn.execute_trace(mesh, trace, cq_id=0, blocking=False)
    ttnn.synchronize_device(mesh)
    first_end = ttnn.sim.host_time_ns()
    ttnn.execute_trace(mesh, trace, cq_id=0, blocking=False)
    ttnn.synchronize_device(mesh)
    first, second = _replays(records(), 1), _replays(records(), 2)
    issued = first_end + cost.HOST_EXECUTE_TRACE_NS
    assert second[0]["kernel_start_cycle"] == issued
    assert second[0]["op_to_op_latency_ns"] == issued - first[-1]["kernel_end_cycle"]
    assert second[0]["op_to_op_latency_ns"] >= cost.HOST_EXECUTE_TRACE_NS
    assert second[1]["op_to_op_latency_ns"] == cost.TRACE_OP_TO_OP_NS  # inside a replay: the device's own gap
