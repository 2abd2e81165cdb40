"""CCL, MoE and attention ops of the sim against torch references, on a 2x4 mesh."""

import math
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "ttnn_sim" / "shim"))

import pytest  # noqa: E402
import torch  # noqa: E402
import ttnn  # noqa: E402

ROWS, COLS = 2, 4


@pytest.fixture(scope="module")
def mesh():
    device = ttnn.open_mesh_device(ttnn.MeshShape(ROWS, COLS), trace_region_size=1 << 20)
    yield device
    ttnn.close_mesh_device(device)


def per_device(mesh, tensors, dtype=ttnn.bfloat16, layout=ttnn.TILE_LAYOUT, device=True):
    """One torch tensor per device (row-major, leading dim 1) -> a tensor sharded that way."""
    return ttnn.from_torch(torch.cat(tensors), dtype=dtype, layout=layout, device=mesh if device else None,
                           mesh_mapper=ttnn.ShardTensorToMesh(mesh, dim=0))


def replicated(mesh, tensor, dtype=ttnn.bfloat16, layout=ttnn.TILE_LAYOUT):
    return ttnn.from_torch(tensor, dtype=dtype, layout=layout, device=mesh,
                           mesh_mapper=ttnn.ReplicateTensorToMesh(mesh))


def shards(tensor):
    return [t.to(torch.float32) for t in tensor.shards]


def bf16(t):
    return t.to(torch.bfloat16).to(torch.float32)


def pcc(a, b):
    return torch.corrcoef(torch.stack([a.reshape(-1).float(), b.reshape(-1).float()]))[0, 1].item()


def group_of(device, axis):
    row, col = divmod(device, COLS)
    if axis == 0:
        return [r * COLS + col for r in range(ROWS)]
    if axis == 1:
        return [row * COLS + c for c in range(COLS)]
    return list(range(ROWS * COLS))


def make_inputs(mesh, shape=(1, 1, 32, 64)):
    torch.manual_seed(0)
    host = [bf16(torch.randn(shape)) for _ in range(ROWS * COLS)]
    return host, per_device(mesh, host)


# --- CCL -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("axis", [0, 1, None])
def test_all_gather_per_cluster_axis(mesh, axis):
    host, tensor = make_inputs(mesh)
    out = ttnn.all_gather(tensor, 3, cluster_axis=axis, num_links=1, topology=ttnn.Topology.Linear)
    for device, got in enumerate(shards(out)):
        assert torch.equal(got, torch.cat([host[d] for d in group_of(device, axis)], dim=3))


@pytest.mark.parametrize("axis", [0, 1, None])
def test_all_reduce_per_cluster_axis(mesh, axis):
    host, tensor = make_inputs(mesh)
    out = ttnn.all_reduce(tensor, cluster_axis=axis, num_links=1, topology=ttnn.Topology.Linear)
    for device, got in enumerate(shards(out)):
        assert torch.equal(got, bf16(sum(host[d] for d in group_of(device, axis))))


@pytest.mark.parametrize("axis", [0, 1])
def test_reduce_scatter_per_cluster_axis(mesh, axis):
    host, tensor = make_inputs(mesh)
    out = ttnn.reduce_scatter(tensor, 3, cluster_axis=axis)
    for device, got in enumerate(shards(out)):
        group = group_of(device, axis)
        total = bf16(sum(host[d] for d in group))
        assert torch.equal(got, total.chunk(len(group), dim=3)[group.index(device)])


def test_ccl_trace_replay_equals_eager(mesh):
    host, tensor = make_inputs(mesh)
    eager = shards(ttnn.all_reduce(tensor, cluster_axis=1))
    trace_id = ttnn.begin_trace_capture(mesh, cq_id=0)
    traced = ttnn.all_reduce(tensor, cluster_axis=1)
    ttnn.end_trace_capture(mesh, trace_id, cq_id=0)
    fresh = [bf16(torch.randn(host[0].shape)) for _ in host]
    ttnn.copy_host_to_device_tensor(per_device(mesh, fresh, device=False), tensor)
    ttnn.execute_trace(mesh, trace_id, cq_id=0, blocking=True)
    for device, got in enumerate(shards(traced)):
        assert torch.equal(got, bf16(sum(fresh[d] for d in group_of(device, 1))))
    ttnn.copy_host_to_device_tensor(per_device(mesh, host, device=False), tensor)
    ttnn.execute_trace(mesh, trace_id, cq_id=0, blocking=True)
    assert all(torch.equal(a, b) for a, b in zip(shards(traced), eager, strict=True))
    ttnn.release_trace(mesh, trace_id)


# --- MoE -----------------------------------------------------------------------------------------
EXPERTS, K, HIDDEN, INTER, TOKENS = 8, 2, 64, 32, 16  # one expert per device; TOKENS users per mesh row


def expert_mapping(mesh):
    mapping = torch.eye(EXPERTS, dtype=torch.int32).reshape(1, 1, EXPERTS, EXPERTS)
    return replicated(mesh, mapping, dtype=ttnn.uint16, layout=ttnn.ROW_MAJOR_LAYOUT)


def routing():
    """Per mesh row: tokens [1, 1, T, H], distinct expert indices [T, K]."""
    torch.manual_seed(1)
    hidden = [bf16(torch.randn(1, 1, TOKENS, HIDDEN)) for _ in range(ROWS)]
    indices = [torch.stack([torch.randperm(EXPERTS)[:K] for _ in range(TOKENS)]) for _ in range(ROWS)]
    return hidden, indices


def row_tensor(mesh, per_row, dtype, layout):
    return per_device(mesh, [per_row[d // COLS] for d in range(ROWS * COLS)], dtype, layout)


def test_dispatch_remap_combine_round_trip(mesh):
    """Dispatch along axis 0, identity experts, combine: each (token, k) row comes back iff its expert is
    in-column."""
    hidden, indices = routing()
    x = row_tensor(mesh, hidden, ttnn.bfloat16, ttnn.ROW_MAJOR_LAYOUT)
    idx = row_tensor(mesh, [i.reshape(1, 1, TOKENS, K) for i in indices], ttnn.uint16, ttnn.ROW_MAJOR_LAYOUT)
    mapping = expert_mapping(mesh)
    tokens, metadata = ttnn.all_to_all_dispatch(x, idx, mapping, cluster_axis=0, num_links=1,
                                                topology=ttnn.Topology.Linear, output_concat_dim=2)
    assert tuple(tokens.shape) == (1, 1, TOKENS * ROWS, HIDDEN)
    all_tokens, all_indices = torch.cat(hidden, dim=2)[0, 0], torch.cat(indices)
    for device, (got, meta) in enumerate(zip(shards(tokens), shards(metadata), strict=True)):
        assert torch.equal(meta.reshape(-1, K).long(), all_indices)
        wanted = (all_indices == device).any(dim=-1, keepdim=True)
        assert torch.equal(got[0, 0], torch.where(wanted, all_tokens, torch.zeros(())))

    mask = replicated(mesh, torch.ones(1, 1, TOKENS * ROWS, EXPERTS), layout=ttnn.ROW_MAJOR_LAYOUT)
    local, sparsity = ttnn.moe_expert_token_remap(mask, mapping, metadata, reduction_size=8)
    for device, (got, sparse) in enumerate(zip(shards(local), shards(sparsity), strict=True)):
        chosen = (all_indices == device).any(dim=-1).float()
        assert torch.equal(got.reshape(-1), chosen)
        assert torch.equal(sparse.reshape(-1), chosen.reshape(-1, 8).amax(dim=1))

    expert_out = ttnn.reshape(tokens, (1, 1, TOKENS * ROWS, HIDDEN))  # identity experts, E_local = 1
    combined = ttnn.all_to_all_combine(expert_out, metadata, mapping, cluster_axis=0, num_links=1,
                                       topology=ttnn.Topology.Linear, output_shard_dim=2)
    assert tuple(combined.shape) == (K, 1, TOKENS, HIDDEN)
    for device, got in enumerate(shards(combined)):
        row, col = divmod(device, COLS)
        in_column = (indices[row] % COLS == col).T  # expert e lives on device e: column e % COLS
        expected = torch.where(in_column[..., None], hidden[row][0, 0][None], torch.zeros(()))
        assert torch.equal(got[:, 0], expected)


@pytest.mark.parametrize("weight_dtype", [ttnn.bfloat16, ttnn.bfloat8_b])
def test_sparse_matmul_b_sparse_and_a_sparse(mesh, weight_dtype):
    torch.manual_seed(2)
    blocks, block = 3, 32
    a = bf16(torch.randn(1, blocks, block, HIDDEN))
    w = torch.randn(1, 2, HIDDEN, INTER)  # 2 local experts
    sparsity = torch.tensor([[1.0, 0.0], [0.0, 0.0], [1.0, 1.0]]).reshape(1, 1, blocks, 2)
    ta, tw = replicated(mesh, a), replicated(mesh, w, dtype=weight_dtype)
    ts = replicated(mesh, sparsity, layout=ttnn.ROW_MAJOR_LAYOUT)
    w_stored = shards(tw)[0]
    out = ttnn.sparse_matmul(ta, tw, sparsity=ts, is_input_a_sparse=False, is_input_b_sparse=True,
                             compute_kernel_config=ttnn.WormholeComputeKernelConfig(
                                 math_fidelity=ttnn.MathFidelity.HiFi4))
    assert tuple(out.shape) == (1, blocks, 1, 2, block, INTER)
    got = shards(out)[0]
    for b in range(blocks):
        for e in range(2):
            expected = a[0, b] @ w_stored[0, e] if sparsity[0, 0, b, e] else torch.zeros(block, INTER)
            assert pcc(got[0, b, 0, e], expected) > 0.999 if sparsity[0, 0, b, e] else torch.equal(
                got[0, b, 0, e], expected)

    a_sparse = bf16(torch.randn(blocks, 2, block, INTER))
    down = replicated(mesh, torch.randn(1, 2, INTER, HIDDEN), dtype=weight_dtype)
    out = ttnn.sparse_matmul(replicated(mesh, a_sparse), down, sparsity=ts, is_input_a_sparse=True,
                             is_input_b_sparse=False)
    assert tuple(out.shape) == (blocks, 2, block, HIDDEN)
    got, d = shards(out)[0], shards(down)[0]
    assert torch.equal(got[1], torch.zeros(2, block, HIDDEN))
    assert pcc(got[2, 1], a_sparse[2, 1] @ d[0, 1]) > 0.99


# --- attention -----------------------------------------------------------------------------------
HEADS, KV_HEADS, HEAD_DIM = 4, 2, 64


def test_create_and_concat_heads(mesh):
    torch.manual_seed(3)
    fused = bf16(torch.randn(1, 1, 64, (HEADS + 2 * KV_HEADS) * HEAD_DIM))
    q, k, v = ttnn.experimental.nlp_create_qkv_heads(replicated(mesh, fused), num_heads=HEADS,
                                                     num_kv_heads=KV_HEADS, transpose_k_heads=False)
    heads = fused[0, 0].reshape(64, -1, HEAD_DIM).transpose(0, 1)
    assert torch.equal(shards(q)[0][0], heads[:HEADS])
    assert torch.equal(shards(k)[0][0], heads[HEADS:HEADS + KV_HEADS])
    assert torch.equal(shards(v)[0][0], heads[HEADS + KV_HEADS:])
    assert torch.equal(
        shards(ttnn.experimental.nlp_concat_heads(q))[0][0, 0], fused[0, 0, :, : HEADS * HEAD_DIM]
    )

    users = 8
    fused = bf16(torch.randn(1, 1, users, (HEADS + 2 * KV_HEADS) * HEAD_DIM))
    q, k, v = ttnn.experimental.nlp_create_qkv_heads_decode(replicated(mesh, fused), num_heads=HEADS,
                                                            num_kv_heads=KV_HEADS)
    assert tuple(q.shape) == (1, users, HEADS, HEAD_DIM) and tuple(v.shape) == (1, users, KV_HEADS, HEAD_DIM)
    assert torch.equal(shards(k)[0][0], fused[0, 0].reshape(users, -1, HEAD_DIM)[:, HEADS:HEADS + KV_HEADS])
    concat = ttnn.experimental.nlp_concat_heads_decode(q, num_heads=HEADS)
    assert torch.equal(shards(concat)[0][0, 0], fused[0, 0, :, :HEADS * HEAD_DIM])


def rotate_pairs_matrix():
    m = torch.zeros(32, 32)
    m[torch.arange(1, 32, 2), torch.arange(0, 32, 2)] = -1
    m[torch.arange(0, 32, 2), torch.arange(1, 32, 2)] = 1
    return m.reshape(1, 1, 32, 32)


def test_rotary_embedding_llama_rotates_adjacent_pairs(mesh):
    torch.manual_seed(4)
    x = bf16(torch.randn(1, HEADS, 32, HEAD_DIM))
    angles = torch.rand(32, HEAD_DIM // 2).repeat_interleave(2, dim=-1)
    cos, sin = bf16(angles.cos()).reshape(1, 1, 32, -1), bf16(angles.sin()).reshape(1, 1, 32, -1)
    out = ttnn.experimental.rotary_embedding_llama(
        replicated(mesh, x),
        replicated(mesh, cos),
        replicated(mesh, sin),
        replicated(mesh, rotate_pairs_matrix()),
        is_decode_mode=False,
    )
    pairs = x.reshape(*x.shape[:-1], -1, 2)
    rotated = torch.stack([-pairs[..., 1], pairs[..., 0]], dim=-1).reshape(x.shape)  # (a, b) -> (-b, a)
    assert pcc(shards(out)[0], x * cos + rotated * sin) > 0.9999


def torch_attention(q, k, v, scale, sink, causal_offset=0):
    """Reference GQA attention with a per-head sink logit; query i sees keys j <= i + causal_offset."""
    k, v = (t.repeat_interleave(q.shape[1] // t.shape[1], dim=1) for t in (k, v))
    scores = q @ k.transpose(-1, -2) * scale
    i, j = torch.arange(q.shape[-2])[:, None], torch.arange(k.shape[-2])[None]
    scores = scores.masked_fill(j > i + causal_offset, float("-inf"))
    scores = torch.cat([scores, sink.reshape(1, -1, 1, 1).expand(*scores.shape[:-1], 1)], dim=-1)
    return torch.softmax(scores, dim=-1)[..., :-1] @ v


@pytest.mark.parametrize("dtype", [ttnn.bfloat16, ttnn.bfloat8_b])
def test_sdpa_prefill_with_sinks(mesh, dtype):
    torch.manual_seed(5)
    q, k, v = (torch.randn(1, h, 64, HEAD_DIM) for h in (HEADS, KV_HEADS, KV_HEADS))
    sink = torch.randn(1, HEADS, 1, 1)
    scale = 1 / math.sqrt(HEAD_DIM)
    out = ttnn.transformer.scaled_dot_product_attention(
        *(replicated(mesh, t, dtype=dtype) for t in (q, k, v)), is_causal=True,
        attention_sink=replicated(mesh, sink), scale=scale)
    assert pcc(shards(out)[0], torch_attention(q, k, v, scale, sink.reshape(-1))) > (0.999 if dtype ==
                                                                                     ttnn.bfloat16 else 0.99)


def test_kv_cache_updates_and_sdpa_decode(mesh):
    torch.manual_seed(6)
    users, max_seq, position = 4, 64, 9
    cache_k = replicated(mesh, torch.zeros(users, KV_HEADS, max_seq, HEAD_DIM))
    cache_v = replicated(mesh, torch.zeros(users, KV_HEADS, max_seq, HEAD_DIM))
    prefill_k, prefill_v = (bf16(torch.randn(1, KV_HEADS, position, HEAD_DIM)) for _ in range(2))
    for user in range(users):
        ttnn.fill_cache(cache_k, replicated(mesh, prefill_k), batch_idx=user)
        ttnn.fill_cache(cache_v, replicated(mesh, prefill_v), batch_idx=user)
    new_k, new_v = (bf16(torch.randn(1, users, KV_HEADS, HEAD_DIM)) for _ in range(2))
    positions = replicated(mesh, torch.full((users,), position, dtype=torch.int32), dtype=ttnn.int32,
                           layout=ttnn.ROW_MAJOR_LAYOUT)
    ttnn.experimental.paged_update_cache(cache_k, replicated(mesh, new_k), update_idxs_tensor=positions)
    ttnn.experimental.paged_update_cache(cache_v, replicated(mesh, new_v), update_idxs_tensor=positions)
    expected_k = torch.cat([prefill_k.expand(users, -1, -1, -1), new_k[0][:, :, None]], dim=2)
    assert torch.equal(shards(cache_k)[5][:, :, :position + 1], expected_k)
    assert torch.equal(
        shards(cache_k)[5][:, :, position + 1 :],
        torch.zeros(users, KV_HEADS, max_seq - position - 1, HEAD_DIM),
    )

    q = bf16(torch.randn(1, users, HEADS, HEAD_DIM))
    sinks = torch.randn(HEADS)
    out = ttnn.transformer.scaled_dot_product_attention_decode(
        replicated(mesh, q), cache_k, cache_v, cur_pos_tensor=positions,
        attention_sink=replicated(mesh, torch.nn.functional.pad(sinks.reshape(-1, 1), (0, 31))), scale=0.125)
    expected_v = torch.cat([prefill_v.expand(users, -1, -1, -1), new_v[0][:, :, None]], dim=2)
    reference = torch_attention(
        q[0][:, :, None], expected_k, expected_v, 0.125, bf16(sinks), causal_offset=position
    )
    assert pcc(shards(out)[3][0], reference[:, :, 0]) > 0.999


def test_paged_update_cache_with_page_table(mesh):
    users, block_size, blocks = 2, 32, 4
    cache = replicated(mesh, torch.zeros(blocks, KV_HEADS, block_size, HEAD_DIM))
    page_table = replicated(mesh, torch.tensor([[3, 1], [0, 2]], dtype=torch.int32), dtype=ttnn.int32,
                            layout=ttnn.ROW_MAJOR_LAYOUT)
    rows = bf16(torch.randn(1, users, KV_HEADS, HEAD_DIM))
    ttnn.experimental.paged_update_cache(
        cache, replicated(mesh, rows), update_idxs=[40, -1], page_table=page_table
    )
    got = shards(cache)[0]
    assert torch.equal(got[1, :, 8], rows[0, 0])  # user 0, position 40 -> block table[0][1] = 1, row 8
    assert int((got != 0).sum()) == KV_HEADS * HEAD_DIM  # user 1 (-1) wrote nothing
