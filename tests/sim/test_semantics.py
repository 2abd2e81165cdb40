"""ttnn semantics the simulator follows: preallocated outputs, in-place ops, deallocation, as_tensor's cache,
creation ops, host helpers and the sub-device API (facts and sources: docs/sim-semantics.md)."""

import gc
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "ttnn_sim" / "shim"))

import ttnn  # noqa: E402

from ttnn_sim.host import cache_path  # noqa: E402


@pytest.fixture
def mesh():
    device = ttnn.open_mesh_device(ttnn.MeshShape(1, 2), trace_region_size=1 << 20)
    yield device
    ttnn.close_mesh_device(device)


def _put(mesh, x, dtype=ttnn.float32, layout=ttnn.TILE_LAYOUT):
    return ttnn.from_torch(x, dtype=dtype, layout=layout, device=mesh)


def _back(t):
    return ttnn.to_torch(ttnn.get_device_tensors(t)[0]).float()


def test_output_tensor_is_filled_and_returned(mesh):
    a, b, x = torch.randn(32, 64), torch.randn(32, 64), torch.randn(32, 64)
    out = _put(mesh, x)
    result = ttnn.add(_put(mesh, a), _put(mesh, b), output_tensor=out)
    assert result is out
    torch.testing.assert_close(_back(out), a + b)


def test_output_tensor_keeps_its_dtype(mesh):
    a = torch.randn(32, 32)
    out = _put(mesh, torch.zeros(32, 32), dtype=ttnn.bfloat16)
    ttnn.multiply(_put(mesh, a), _put(mesh, a), output_tensor=out)
    assert out.dtype is ttnn.bfloat16
    torch.testing.assert_close(_back(out), (a * a).to(torch.bfloat16).float())


def test_matmul_optional_output_tensor(mesh):
    a, w = torch.randn(32, 64), torch.randn(64, 32)
    out = _put(mesh, torch.zeros(32, 32))
    config = ttnn.WormholeComputeKernelConfig(math_fidelity=ttnn.MathFidelity.HiFi4, fp32_dest_acc_en=True)
    result = ttnn.matmul(
        _put(mesh, a), _put(mesh, w), optional_output_tensor=out, compute_kernel_config=config
    )
    assert result is out
    torch.testing.assert_close(_back(out), a @ w, rtol=2e-2, atol=2e-2)


def test_output_tensor_of_the_wrong_shape_or_op_is_refused(mesh):
    a = _put(mesh, torch.randn(32, 64))
    with pytest.raises(RuntimeError, match="output tensor shape"):
        ttnn.add(a, a, output_tensor=_put(mesh, torch.zeros(32, 32)))
    with pytest.raises(TypeError, match="output_tensor"):
        ttnn.softmax(a, dim=-1, output_tensor=_put(mesh, torch.zeros(32, 64)))


def test_in_place_variants_write_their_first_argument(mesh):
    a, b = torch.randn(32, 32), torch.randn(32, 32)
    ta = _put(mesh, a)
    assert ttnn.add_(ta, _put(mesh, b)) is ta
    torch.testing.assert_close(_back(ta), a + b)
    ttnn.multiply_(ta, _put(mesh, b))
    torch.testing.assert_close(_back(ta), (a + b) * b)


def test_output_tensor_inside_a_trace_is_rewritten_on_replay(mesh):
    x = _put(mesh, torch.ones(32, 32))
    out = _put(mesh, torch.zeros(32, 32))
    ttnn.add(x, x, output_tensor=out)  # compile
    trace = ttnn.begin_trace_capture(mesh)
    ttnn.add(x, x, output_tensor=out)
    ttnn.end_trace_capture(mesh, trace)
    ttnn.copy_host_to_device_tensor(
        ttnn.from_torch(torch.full((32, 32), 3.0), dtype=ttnn.float32, layout=ttnn.TILE_LAYOUT), x
    )
    ttnn.execute_trace(mesh, trace)
    torch.testing.assert_close(_back(out), torch.full((32, 32), 6.0))


def test_deallocate_force_and_views(mesh):
    dram = mesh.chips[0].dram
    gc.collect()  # earlier tests' tensors held in reference cycles free their buffers now, not mid-test
    before = dram.used
    t = _put(mesh, torch.randn(1, 1, 64, 64))
    view = ttnn.reshape(t, (1, 64, 64))  # a view: shares t's buffer
    allocated = dram.used
    assert allocated > before
    view.deallocate(False)  # not the only owner: the buffer stays
    assert dram.used == allocated and t.is_allocated() and not view.is_allocated()
    t2 = ttnn.reshape(t, (64, 64))
    t.deallocate(True)  # forced: freed although t2 still views it
    assert dram.used == before
    with pytest.raises(RuntimeError, match="is_allocated"):
        ttnn.add(t2, t2)


def test_as_tensor_creates_then_reuses_its_cache_file(mesh, tmp_path):
    name = tmp_path / "weights" / "w1"
    first = torch.randn(32, 64)
    made = ttnn.as_tensor(
        first,
        ttnn.bfloat16,
        layout=ttnn.TILE_LAYOUT,
        device=mesh,
        memory_config=ttnn.DRAM_MEMORY_CONFIG,
        cache_file_name=name,
    )
    path = tmp_path / "weights" / "w1_dtype_BFLOAT16_layout_TILE.tensorbin"
    assert cache_path(name, ttnn.bfloat16, ttnn.TILE_LAYOUT) == path and path.is_file()
    loaded = ttnn.as_tensor(
        torch.zeros(32, 64),
        ttnn.bfloat16,
        layout=ttnn.TILE_LAYOUT,
        device=mesh,
        memory_config=ttnn.DRAM_MEMORY_CONFIG,
        cache_file_name=name,
    )
    torch.testing.assert_close(_back(loaded), first.to(torch.bfloat16).float())
    torch.testing.assert_close(_back(loaded), _back(made))
    assert loaded.layout is ttnn.TILE_LAYOUT and loaded.device() is mesh
    with pytest.raises(RuntimeError, match="memory_config must be specified"):
        ttnn.as_tensor(first, ttnn.bfloat16, device=mesh)


def test_as_tensor_keeps_shards_of_a_sharding_mapper(mesh, tmp_path):
    x = torch.arange(64.0).reshape(1, 64)
    mapper = ttnn.ShardTensorToMesh(mesh, dim=1)
    for _ in range(2):  # the second call loads the file
        t = ttnn.as_tensor(
            x,
            ttnn.float32,
            device=mesh,
            memory_config=ttnn.DRAM_MEMORY_CONFIG,
            mesh_mapper=mapper,
            cache_file_name=tmp_path / "s",
        )
        torch.testing.assert_close(ttnn.to_torch(t, mesh_composer=ttnn.ConcatMeshToTensor(mesh, dim=1)), x)


def test_creation_like_ops(mesh, tmp_path):
    t = _put(mesh, torch.randn(2, 40, 50), dtype=ttnn.bfloat16)
    torch.testing.assert_close(_back(ttnn.zeros_like(t)), torch.zeros(2, 40, 50))
    torch.testing.assert_close(_back(ttnn.ones_like(t)), torch.ones(2, 40, 50))
    filled = ttnn.full_like(t, 2.5, dtype=ttnn.float32)
    assert filled.dtype is ttnn.float32
    torch.testing.assert_close(_back(filled), torch.full((2, 40, 50), 2.5))
    empty = ttnn.empty_like(t)
    assert (empty.shape, empty.dtype, empty.device()) == (t.shape, t.dtype, mesh)


def test_host_helpers():
    assert ttnn.get_arch_name() == "wormhole_b0" and "wormhole_b0" in ttnn.get_arch_name()
    assert (ttnn.core.divup(33, 32), ttnn.core.divup(64, 32), ttnn.core.roundup(33, 32)) == (2, 2, 64)


def test_sub_device_api(mesh):
    cores = ttnn.CoreRangeSet([ttnn.CoreRange(ttnn.CoreCoord(0, 0), ttnn.CoreCoord(7, 7))])
    manager = mesh.create_sub_device_manager([ttnn.SubDevice([cores])], 0)
    mesh.load_sub_device_manager(manager)
    mesh.set_sub_device_stall_group([ttnn.SubDeviceId(0)])
    assert mesh.get_sub_device_ids() == [ttnn.SubDeviceId(0)]
    with pytest.raises(RuntimeError, match="loaded"):
        mesh.remove_sub_device_manager(manager)
    mesh.reset_sub_device_stall_group()
    mesh.clear_loaded_sub_device_manager()
    mesh.remove_sub_device_manager(manager)
    with pytest.raises(RuntimeError, match="does not exist"):
        mesh.load_sub_device_manager(manager)


def test_softmax_numeric_stable_changes_the_result(mesh):
    x = torch.tensor([[100.0, 0.0] * 16] * 32)
    stable = _back(ttnn.softmax(_put(mesh, x), dim=-1, numeric_stable=True))
    unstable = _back(ttnn.softmax(_put(mesh, x), dim=-1, numeric_stable=False))
    torch.testing.assert_close(stable, torch.softmax(x, dim=-1))
    assert torch.isnan(unstable[:, ::2]).all()  # exp(100) overflows float32 without the max subtraction


def test_a_traced_output_tensor_released_after_capture_is_still_written_on_replay(mesh):
    x = _put(mesh, torch.ones(32, 32))
    ttnn.add(ttnn.clone(x), x)  # compile

    def step():
        y = ttnn.clone(x)
        ttnn.add(y, x, output_tensor=y)
        out = ttnn.mul(y, 2.0)
        ttnn.deallocate(y)  # the host lets go of the intermediate inside the captured window
        return out

    step()
    trace = ttnn.begin_trace_capture(mesh)
    out = step()
    ttnn.end_trace_capture(mesh, trace)
    ttnn.execute_trace(mesh, trace)
    torch.testing.assert_close(_back(out), torch.full((32, 32), 4.0))
