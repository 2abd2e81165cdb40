"""The sim core: tensors, mesh mapping, program cache, trace, memory accounting, determinism, shims."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[2]
SHIM = REPO / "ttnn_sim" / "shim"
sys.path.insert(0, str(SHIM))

import ttnn  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples" / "gpt_oss_mini"))
from models.common.utility_functions import comp_pcc  # noqa: E402  (the workspace's tt-metal helper)


@pytest.fixture
def mesh():
    device = ttnn.open_mesh_device(ttnn.MeshShape(2, 4), trace_region_size=1 << 20)
    yield device
    ttnn.close_mesh_device(device)


def _device0(t):
    return ttnn.to_torch(ttnn.get_device_tensors(t)[0]).float()


def test_api_strings_match_ttnn():
    assert str(ttnn.bfloat8_b) == "DataType.BFLOAT8_B" and ttnn.bfloat8_b.value == 3
    assert str(ttnn.TILE_LAYOUT) == "Layout.TILE"
    assert str(ttnn.DRAM_MEMORY_CONFIG).startswith(
        "MemoryConfig(memory_layout=TensorMemoryLayout::INTERLEAVED,buffer_type=BufferType::DRAM,shard_spec=std::nullopt"
    )
    sharded = ttnn.create_sharded_memory_config(
        shape=(1, 1, 2048, 64), core_grid=ttnn.CoreGrid(y=8, x=8), strategy=ttnn.ShardStrategy.HEIGHT
    )
    assert 'shape=[32, 64], orientation=ShardOrientation::ROW_MAJOR' in str(sharded)
    assert '[{"start":{"x":0,"y":0},"end":{"x":7,"y":7}}]' in str(sharded)


def test_tile_padding_and_shapes():
    t = ttnn.from_torch(torch.randn(1, 1, 40, 50), dtype=ttnn.bfloat8_b, layout=ttnn.TILE_LAYOUT)
    assert str(t.shape) == "Shape([1, 1, 40, 50])"
    assert str(t.padded_shape) == "Shape([1, 1, 64, 64])"
    assert (t.volume(), t.logical_volume()) == (4096, 2000)


@pytest.mark.parametrize("dims", [(0, 3), (None, 3), (3, None)])
def test_mesh_2d_shard_round_trip(mesh, dims):
    x = torch.randn(2, 1, 32, 128)
    t = ttnn.from_torch(x, dtype=ttnn.float32, device=mesh,
                        mesh_mapper=ttnn.ShardTensor2dMesh(mesh, dims=dims, mesh_shape=(2, 4)))
    compose_dims = tuple(d if d is not None else (1 if i == 0 else 2) for i, d in enumerate(dims))
    back = ttnn.to_torch(
        t, mesh_composer=ttnn.ConcatMesh2dToTensor(mesh, mesh_shape=(2, 4), dims=compose_dims)
    )
    expected_rows = x if dims[0] is not None else torch.cat([x, x], dim=1)
    if dims[1] is None:
        expected_rows = torch.cat([expected_rows] * 4, dim=2)
    assert torch.equal(back, expected_rows)


def test_shard_to_mesh_and_concat(mesh):
    x = torch.randn(1, 1, 32, 256)
    t = ttnn.from_torch(x, device=mesh, mesh_mapper=ttnn.ShardTensorToMesh(mesh, dim=3), dtype=ttnn.float32)
    assert list(t.shape) == [1, 1, 32, 32]
    assert torch.equal(ttnn.to_torch(t, mesh_composer=ttnn.ConcatMeshToTensor(mesh, dim=3)), x)


def test_program_cache_hit_and_miss(mesh):
    a = ttnn.from_torch(torch.randn(1, 1, 32, 32), dtype=ttnn.bfloat16, layout=ttnn.TILE_LAYOUT, device=mesh)
    ttnn.add(a, a)
    assert mesh.num_program_cache_entries() == 1
    ttnn.add(a, a)
    assert mesh.num_program_cache_entries() == 1  # same op + specs: a hit
    ttnn.mul(a, a)
    assert mesh.num_program_cache_entries() == 2
    mesh.disable_and_clear_program_cache()
    ttnn.add(a, a)
    assert mesh.num_program_cache_entries() == 0


def test_cache_miss_costs_host_time(mesh):
    a = ttnn.from_torch(torch.randn(1, 1, 32, 32), dtype=ttnn.bfloat16, layout=ttnn.TILE_LAYOUT, device=mesh)
    start = ttnn.sim.host_time_ns()
    ttnn.sub(a, a)
    miss = ttnn.sim.host_time_ns() - start
    start = ttnn.sim.host_time_ns()
    ttnn.sub(a, a)
    hit = ttnn.sim.host_time_ns() - start
    assert miss > hit > 0


def test_trace_replay_equals_eager(mesh):
    x = torch.randn(1, 1, 32, 64)
    w = torch.randn(64, 32)
    tx = ttnn.from_torch(x, dtype=ttnn.bfloat16, layout=ttnn.TILE_LAYOUT, device=mesh)
    tw = ttnn.from_torch(w, dtype=ttnn.bfloat8_b, layout=ttnn.TILE_LAYOUT, device=mesh)

    def step():
        return ttnn.softmax(ttnn.linear(tx, tw), dim=-1)

    step()  # compile
    trace_id = ttnn.begin_trace_capture(mesh, cq_id=0)
    traced = step()
    ttnn.end_trace_capture(mesh, trace_id, cq_id=0)
    new_x = torch.randn(1, 1, 32, 64)
    ttnn.copy_host_to_device_tensor(ttnn.from_torch(new_x, dtype=ttnn.bfloat16, layout=ttnn.TILE_LAYOUT), tx)
    ttnn.execute_trace(mesh, trace_id, cq_id=0, blocking=True)
    eager = step()
    assert torch.equal(_device0(traced), _device0(eager))
    ttnn.release_trace(mesh, trace_id)


def test_trace_requires_program_cache(mesh):
    mesh.disable_and_clear_program_cache()
    with pytest.raises(RuntimeError, match="program cache"):
        ttnn.begin_trace_capture(mesh, cq_id=0)


def test_trace_region_too_small_message():
    small = ttnn.open_mesh_device(ttnn.MeshShape(1, 1), trace_region_size=1000)
    try:
        a = ttnn.from_torch(
            torch.randn(1, 1, 32, 32), dtype=ttnn.bfloat16, layout=ttnn.TILE_LAYOUT, device=small
        )
        ttnn.add(a, a)
        trace_id = ttnn.begin_trace_capture(small, cq_id=0)
        ttnn.add(a, a)
        with pytest.raises(RuntimeError, match=r"Creating trace buffers of size 4096B on MeshDevice \d+, "
                                                r"but only 1000B is allocated for trace region\."):
            ttnn.end_trace_capture(small, trace_id, cq_id=0)
    finally:
        ttnn.close_mesh_device(small)


@pytest.fixture
def single():
    device = ttnn.open_mesh_device(ttnn.MeshShape(1, 1))
    yield device
    ttnn.close_mesh_device(device)


def test_l1_out_of_memory_and_deallocate(single):
    mesh = single
    big = torch.zeros(1, 1, 8192, 6144)  # 96 MiB of bf16: over the 64 banks x 1.3 MB of L1
    with pytest.raises(
        RuntimeError, match=r"Out of Memory: Not enough space to allocate \d+ B L1 buffer across 64 banks"
    ):
        ttnn.from_torch(big, dtype=ttnn.bfloat16, layout=ttnn.TILE_LAYOUT, device=mesh,
                        memory_config=ttnn.L1_MEMORY_CONFIG)
    half = torch.zeros(1, 1, 2048, 2048)  # 8 MiB: fits once; a second copy with the first freed fits again
    first = ttnn.from_torch(half, dtype=ttnn.bfloat16, layout=ttnn.TILE_LAYOUT, device=mesh,
                            memory_config=ttnn.L1_MEMORY_CONFIG)
    used = mesh.chips[0].l1.used
    ttnn.deallocate(first)
    assert mesh.chips[0].l1.used == used - 8 * 1024 * 1024 // 64
    with pytest.raises(RuntimeError, match="not allocated"):
        ttnn.add(first, first)


def test_math_fidelity_changes_accuracy(mesh):
    torch.manual_seed(0)
    x, w = torch.randn(1, 1, 64, 256), torch.randn(256, 64)
    tx = ttnn.from_torch(x, dtype=ttnn.bfloat16, layout=ttnn.TILE_LAYOUT, device=mesh)
    tw = ttnn.from_torch(w, dtype=ttnn.bfloat16, layout=ttnn.TILE_LAYOUT, device=mesh)
    pcc = {}
    for fidelity in ("LoFi", "HiFi2", "HiFi4"):
        config = ttnn.init_device_compute_kernel_config(
            mesh.arch(), math_fidelity=getattr(ttnn.MathFidelity, fidelity)
        )
        pcc[fidelity] = comp_pcc(x @ w, _device0(ttnn.matmul(tx, tw, compute_kernel_config=config)))[1]
    assert pcc["LoFi"] < pcc["HiFi2"] <= pcc["HiFi4"]


def test_bfloat8_weights_lower_pcc_than_bfloat16(mesh):
    torch.manual_seed(1)
    x, w = torch.randn(1, 1, 32, 128), torch.randn(128, 64)
    tx = ttnn.from_torch(x, dtype=ttnn.bfloat16, layout=ttnn.TILE_LAYOUT, device=mesh)
    hifi4 = ttnn.init_device_compute_kernel_config(mesh.arch(), math_fidelity=ttnn.MathFidelity.HiFi4)
    results = {}
    for dtype in (ttnn.bfloat16, ttnn.bfloat8_b, ttnn.bfloat4_b):
        tw = ttnn.from_torch(w, dtype=dtype, layout=ttnn.TILE_LAYOUT, device=mesh)
        results[dtype.name] = comp_pcc(x @ w, _device0(ttnn.matmul(tx, tw, compute_kernel_config=hifi4)))[1]
    assert results["BFLOAT4_B"] < results["BFLOAT8_B"] < results["BFLOAT16"] and results["BFLOAT16"] > 0.999


def test_injected_device_error(monkeypatch, mesh):
    from ttnn_sim import faults

    monkeypatch.setattr(faults, "_launched", 0)
    monkeypatch.setenv("TTNN_SIM_FAULT", "device_error@2")
    a = ttnn.from_torch(torch.randn(1, 1, 32, 32), dtype=ttnn.bfloat16, layout=ttnn.TILE_LAYOUT, device=mesh)
    ttnn.add(a, a)
    with pytest.raises(RuntimeError, match="TT_FATAL"):
        ttnn.add(a, a)


def test_no_ttnn_or_tracy_without_the_shim():
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    for module in ("ttnn", "tracy"):
        result = subprocess.run([sys.executable, "-c", f"import {module}"], cwd="/", env=env,
                                capture_output=True, text=True)
        assert result.returncode != 0 and "ModuleNotFoundError" in result.stderr
    with_shim = subprocess.run([sys.executable, "-c", "import ttnn, tracy"], cwd="/",
                               env={**env, "PYTHONPATH": str(SHIM)}, capture_output=True, text=True)
    assert with_shim.returncode == 0, with_shim.stderr


_PROFILED_RUN = """
import torch, ttnn, tracy
d = ttnn.open_mesh_device(ttnn.MeshShape(1, 2), trace_region_size=1 << 20)
torch.manual_seed(0)
x = ttnn.from_torch(torch.randn(1, 1, 32, 64), dtype=ttnn.bfloat16, layout=ttnn.TILE_LAYOUT, device=d)
w = ttnn.from_torch(torch.randn(64, 64), dtype=ttnn.bfloat8_b, layout=ttnn.TILE_LAYOUT, device=d)
tracy.signpost("start")
for _ in range(3):
    ttnn.softmax(ttnn.linear(x, w), dim=-1)
    ttnn.synchronize_device(d)
tracy.signpost("stop")
ttnn.close_mesh_device(d)
"""


def _profiled_csv(tmp_path: Path, name: str) -> str:
    out = tmp_path / name
    script = tmp_path / f"{name}.py"
    script.write_text(_PROFILED_RUN)
    env = {**os.environ, "PYTHONPATH": f"{SHIM}{os.pathsep}{REPO}"}
    subprocess.run([sys.executable, "-m", "tracy", "-r", "-p", "-o", str(out), "-m", f"python {script}"],
                   cwd=tmp_path, env=env, check=True, capture_output=True)
    (csv,) = out.glob("reports/*/ops_perf_results_*.csv")
    return csv.read_text()


def test_profiled_figures_are_deterministic(tmp_path):
    first, second = _profiled_csv(tmp_path, "a"), _profiled_csv(tmp_path, "b")
    assert "MatmulDeviceOperation" in first
    assert first == second
