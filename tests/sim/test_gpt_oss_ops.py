"""Ops of tt-metal's gpt_oss decode/prefill paths, each against torch: paged SDPA decode, the fused top-k
router, the async CCLs and the all_reduce composite, and the distributed RMS norm."""

import math
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "ttnn_sim" / "shim"))

import ttnn  # noqa: E402

from ttnn_sim import profiler  # noqa: E402


@pytest.fixture
def mesh():
    device = ttnn.open_mesh_device(ttnn.MeshShape(2, 4))
    yield device
    ttnn.close_mesh_device(device)


@pytest.fixture
def single():
    device = ttnn.open_mesh_device(ttnn.MeshShape(1, 1))
    yield device
    ttnn.close_mesh_device(device)


@pytest.fixture
def rows(tmp_path, monkeypatch):
    """Profiler records emitted while the test runs, read back after a flush."""
    monkeypatch.setenv("TT_METAL_DEVICE_PROFILER", "1")
    monkeypatch.setenv("TT_METAL_PROFILER_DIR", str(tmp_path))
    profiler._reset_for_tests()

    def read():
        profiler.flush()
        return [r for r in profiler.load_records(tmp_path / ".logs") if r["kind"] == "op"]

    yield read
    profiler._reset_for_tests()


def _put(device, x, dtype=ttnn.float32, layout=ttnn.TILE_LAYOUT, mapper=None):
    return ttnn.from_torch(x, dtype=dtype, layout=layout, device=device, mesh_mapper=mapper)


def _first(t):
    return ttnn.to_torch(ttnn.get_device_tensors(t)[0]).float()


def test_paged_sdpa_decode_equals_unpaged_on_the_same_keys(single):
    users, heads, kv_heads, dim, block, blocks_per_user = 2, 4, 2, 64, 32, 3
    keys = torch.randn(users, kv_heads, block * blocks_per_user, dim)
    values = torch.randn(users, kv_heads, block * blocks_per_user, dim)
    table = torch.randperm(users * blocks_per_user).reshape(users, blocks_per_user)  # shuffled blocks
    paged_k = torch.zeros(users * blocks_per_user, kv_heads, block, dim)
    paged_v = torch.zeros_like(paged_k)
    for user in range(users):
        for j in range(blocks_per_user):
            paged_k[table[user, j]] = keys[user, :, j * block : (j + 1) * block]
            paged_v[table[user, j]] = values[user, :, j * block : (j + 1) * block]
    q = torch.randn(1, users, heads, dim)
    positions = _put(single, torch.tensor([40, 90]), ttnn.int32, ttnn.ROW_MAJOR_LAYOUT)
    page_table = _put(single, table.to(torch.int32), ttnn.int32, ttnn.ROW_MAJOR_LAYOUT)

    unpaged = ttnn.transformer.scaled_dot_product_attention_decode(
        _put(single, q), _put(single, keys), _put(single, values), cur_pos_tensor=positions
    )
    paged = ttnn.transformer.paged_scaled_dot_product_attention_decode(
        _put(single, q), _put(single, paged_k), _put(single, paged_v), page_table, cur_pos_tensor=positions
    )
    with pytest.raises(TypeError, match="unexpected keyword argument 'page_table_tensor'"):
        ttnn.transformer.scaled_dot_product_attention_decode(  # ttnn: paging is the paged op's alone
            _put(single, q), _put(single, paged_k), _put(single, paged_v), cur_pos_tensor=positions,
            page_table_tensor=page_table,
        )

    torch.testing.assert_close(_first(paged), _first(unpaged))
    # and against torch: user 1 attends to its first 91 keys, GQA groups of 2
    k1 = keys[1, :, :91].repeat_interleave(2, 0)
    v1 = values[1, :, :91].repeat_interleave(2, 0)
    expected = torch.softmax(q[0, 1].unsqueeze(1) @ k1.transpose(-1, -2) / math.sqrt(dim), -1) @ v1
    torch.testing.assert_close(_first(paged)[0, 1], expected.squeeze(1), rtol=1e-4, atol=1e-4)


def test_fused_router_equals_linear_topk_softmax(single, rows):
    x, w, b = torch.randn(32, 256), torch.randn(256, 128), torch.randn(1, 128).expand(32, 128).contiguous()
    bf16 = {"dtype": ttnn.bfloat16}
    indices, weights = ttnn.experimental.topk_router_gpt(
        _put(single, x, **bf16),
        weight_tensor=_put(single, w, **bf16),
        bias_tensor=_put(single, b, **bf16),
        k=4,
        num_experts=128,
    )
    assert (indices.shape, indices.dtype, indices.layout) == (
        ttnn.Shape([32, 8]),
        ttnn.uint16,
        ttnn.ROW_MAJOR_LAYOUT,
    )
    assert weights.dtype is ttnn.bfloat16
    as_bf16 = [t.to(torch.bfloat16).float() for t in (x, w, b)]
    logits = as_bf16[0] @ as_bf16[1] + as_bf16[2]
    top_values, top_indices = torch.topk(logits, 4, dim=-1)
    assert torch.equal(_first(indices)[:, :4].long(), top_indices)
    torch.testing.assert_close(_first(weights)[:, :4], torch.softmax(top_values, -1), rtol=2e-2, atol=1e-2)
    assert [r["op_code"] for r in rows()] == ["TopkRouterGptDeviceOperation"]
    with pytest.raises(RuntimeError, match="num_experts=128"):
        ttnn.experimental.topk_router_gpt(
            _put(single, x, **bf16),
            weight_tensor=_put(single, w[:, :64], **bf16),
            bias_tensor=_put(single, b[:, :64], **bf16),
            k=4,
            num_experts=64,
        )


def test_async_ccls_equal_the_plain_ones(mesh):
    x = torch.randn(2, 4, 32, 128)
    mapper = ttnn.ShardTensor2dMesh(mesh, dims=(0, 1), mesh_shape=(2, 4))
    t = _put(mesh, x, mapper=mapper)
    gathered = ttnn.experimental.all_gather_async(t, dim=3, cluster_axis=1, num_links=1)
    torch.testing.assert_close(_first(gathered), _first(ttnn.all_gather(t, 3, cluster_axis=1)))
    scattered = ttnn.experimental.reduce_scatter_minimal_async(t, None, 3, cluster_axis=1)
    torch.testing.assert_close(_first(scattered), _first(ttnn.reduce_scatter(t, 3, cluster_axis=1)))
    buffer = _put(mesh, torch.zeros(1, 1, 32, 512))
    assert (
        ttnn.experimental.all_gather_async(t, dim=3, cluster_axis=1, persistent_output_buffer=buffer)
        is buffer
    )
    torch.testing.assert_close(_first(buffer), _first(gathered))


def test_all_reduce_runs_tt_metals_composite(mesh, rows):
    x = torch.randn(8, 1, 32, 128)
    t = _put(mesh, x, mapper=ttnn.ShardTensorToMesh(mesh, dim=0))
    reduced = ttnn.all_reduce(t, cluster_axis=1)
    torch.testing.assert_close(_first(reduced), x[:4].sum(0, keepdim=True), rtol=1e-5, atol=1e-5)
    codes = [r["op_code"] for r in rows() if r["device_id"] == 0]
    assert codes == ["ReduceScatterMinimalAsyncDeviceOperation", "AllGatherAsyncDeviceOperation"]


def test_distributed_rms_norm_equals_the_full_norm(mesh):
    x, gamma = torch.randn(1, 1, 32, 512), torch.randn(512)
    columns = ttnn.ShardTensor2dMesh(mesh, dims=(None, 3), mesh_shape=(2, 4))
    t = _put(mesh, x, mapper=columns)
    weight = _put(
        mesh,
        gamma.reshape(1, 1, 4, 128),
        ttnn.float32,
        ttnn.ROW_MAJOR_LAYOUT,
        ttnn.ShardTensor2dMesh(mesh, dims=(None, 2), mesh_shape=(2, 4)),
    )
    config = ttnn.LayerNormShardedMultiCoreProgramConfig(
        compute_with_storage_grid_size=ttnn.CoreCoord(4, 1), subblock_w=1, block_h=1, block_w=1, inplace=False
    )
    stats = ttnn.rms_norm_pre_all_gather(t, program_config=config, dtype=ttnn.float32)
    assert stats.shape == ttnn.Shape([1, 1, 32, 32])
    gathered = ttnn.all_gather(stats, 3, cluster_axis=1)
    out = ttnn.rms_norm_post_all_gather(t, gathered, epsilon=1e-5, weight=weight, program_config=config)
    full = ttnn.to_torch(out, mesh_composer=ttnn.ConcatMesh2dToTensor(mesh, mesh_shape=(2, 4), dims=(0, 3)))[
        :1
    ]
    expected = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-5) * gamma
    torch.testing.assert_close(full, expected, rtol=1e-4, atol=1e-4)


def test_matmul_of_mostly_zero_rows_equals_the_dense_product(single):
    x = torch.zeros(1, 4, 128, 64)
    x[0, :, ::9] = torch.randn(4, 15, 64)  # the rows a dispatch sent here; the rest are zero
    w = torch.randn(1, 4, 64, 96)
    config = ttnn.WormholeComputeKernelConfig(math_fidelity=ttnn.MathFidelity.HiFi4)
    out = ttnn.matmul(_put(single, x), _put(single, w), compute_kernel_config=config)
    torch.testing.assert_close(_first(out), x @ w, rtol=1e-5, atol=1e-5)
    w[0, 1, 3, 5] = float("inf")  # 0 * inf is NaN: the dense product must be taken then
    out = ttnn.matmul(_put(single, x), _put(single, w), compute_kernel_config=config)
    assert torch.isnan(_first(out)[0, 1, 1:9, 5]).all()
