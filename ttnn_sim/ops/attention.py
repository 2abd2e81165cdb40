"""Attention ops: head split/concat, llama rotary embedding, KV-cache updates, SDPA (prefill and decode).

Semantics and shapes (ttnn docs for each op; tt-metal's models/demos/gpt_oss/tt/attention):
- nlp_create_qkv_heads(x [B, 1, S, (nh + 2 nkv) * d]) -> q [B, nh, S, d], k [B, nkv, S, d] (or [B, nkv, d, S]
  with transpose_k_heads), v [B, nkv, S, d]; the fused last dim is q heads, then k heads, then v heads.
- nlp_create_qkv_heads_decode(x [1, 1, B, (nh + 2 nkv) * d]) -> q [1, B, nh, d], k, v [1, B, nkv, d].
- nlp_concat_heads(x [B, nh, S, d]) -> [B, 1, S, nh * d]; nlp_concat_heads_decode(x [1, B, nh_padded, d],
  num_heads) -> [1, 1, B, num_heads * d] (only the first num_heads heads are kept).
- rotary_embedding_llama(x, cos, sin, trans_mat): out = x * cos + (x @ T) * sin, where T is the 32x32
  transformation matrix applied to each 32-wide tile of the head dim. With llama's T, x @ T maps each adjacent
  pair (x[2i], x[2i+1]) to (-x[2i+1], x[2i]), i.e. rotation of interleaved pairs, unlike HF's rotate_half on
  the two halves; cos/sin carry each frequency twice, once per pair member. Prefill: x [B, nh, S, d], cos/sin
  [1, 1, S, d]; decode (is_decode_mode=True): x [1, B, nh, d], cos/sin [1, B, 1, d].
- fill_cache(cache [B, nkv, S_max, d], x [1, nkv, S, d], batch_idx): cache[batch_idx, :, :S] = x (in place).
- paged_update_cache(cache, x [1, B, nkv, d], update_idxs / update_idxs_tensor [B], page_table=None): for each
  user b with position p >= 0, cache[b, :, p] = x[0, b] (in place); a position of -1 skips the user. With a
  page table [B, blocks_per_user] the cache is [num_blocks, nkv, block_size, d] and position p of user b lives
  in block page_table[b, p // block_size] at row p % block_size.
- scaled_dot_product_attention(q [B, nh, S, d], k, v [B, nkv, S, d]): softmax(q k^T * scale + mask) v with
  grouped-query heads (q head h reads kv head h // (nh / nkv)), scale default 1/sqrt(d), causal mask when
  is_causal, an additive attn_mask otherwise, sliding_window_size w limiting query i to keys i-w < j <= i.
- scaled_dot_product_attention_decode(q [1, B, nh, d], k, v caches [B, nkv, S_max, d], cur_pos /
  cur_pos_tensor [B]): user b attends to cache positions 0..cur_pos[b] (inclusive) -> [1, B, nh, d].
- paged_scaled_dot_product_attention_decode(q, k, v, page_table_tensor, cur_pos_tensor=...) and
  scaled_dot_product_attention_decode(..., page_table_tensor=...): the caches are [num_blocks, nkv,
  block_size, d]; user b's position p lives in block page_table[b, p // block_size] at row p % block_size, so
  user b's keys are its blocks concatenated in page-table order; the result equals the unpaged op on those
  keys.
- attention_sink (gpt-oss): one extra logit per head joins the softmax and is then dropped, so it absorbs part
  of the probability mass. Prefill passes it as [1, nh, 1, 1], decode as [nh, 32] (value in column 0).
"""

import math

import torch

from ttnn_sim import cost
from ttnn_sim.dispatch import OpDef
from ttnn_sim.ops.common import memory_cost, not_simulated
from ttnn_sim.tensor import to_storage

TILE = 32


def _f32(t: torch.Tensor) -> torch.Tensor:
    return t.to(torch.float32)


def _like(ctx, reference, shards, memory_config, dtype=None):
    return ctx.output(
        shards, dtype or reference.dtype, reference.layout, memory_config or reference.memory_config()
    )


# --- heads -----------------------------------------------------------------------------------------
def _split_fused_heads(x: torch.Tensor, num_heads: int, num_kv_heads: int):
    """[..., (nh + 2 nkv) * d] -> q [..., nh, d], k [..., nkv, d], v [..., nkv, d]."""
    head_dim = x.shape[-1] // (num_heads + 2 * num_kv_heads)
    heads = x.reshape(*x.shape[:-1], num_heads + 2 * num_kv_heads, head_dim)
    return heads.split([num_heads, num_kv_heads, num_kv_heads], dim=-2)


def _create_qkv_heads(ctx, input_tensor, input_tensor_kv=None, *, num_heads, num_kv_heads=None,
                      transpose_k_heads=True, memory_config=None, output_tensors=None):
    not_simulated(input_tensor_kv, "experimental.nlp_create_qkv_heads", "input_tensor_kv")
    not_simulated(output_tensors, "experimental.nlp_create_qkv_heads", "output_tensors")
    num_kv_heads = num_kv_heads or num_heads

    def one(x):
        q, k, v = (t[:, 0].transpose(1, 2) for t in _split_fused_heads(x, num_heads, num_kv_heads))
        return q, (k.transpose(-1, -2) if transpose_k_heads else k), v

    per_device = ctx.per_device(one, input_tensor)
    return tuple(_like(ctx, input_tensor, [r[i] for r in per_device], memory_config) for i in range(3))


def _create_qkv_heads_decode(ctx, input_tensor, *, num_heads, num_kv_heads=None, overlap_qk_coregrid=True,
                             batch_offset=None, slice_size=None, memory_config=None, output_tensors=None):
    not_simulated(batch_offset, "experimental.nlp_create_qkv_heads_decode", "batch_offset")
    not_simulated(slice_size, "experimental.nlp_create_qkv_heads_decode", "slice_size")
    not_simulated(output_tensors, "experimental.nlp_create_qkv_heads_decode", "output_tensors")
    num_kv_heads = num_kv_heads or num_heads
    per_device = ctx.per_device(lambda x: _split_fused_heads(x[:, 0], num_heads, num_kv_heads), input_tensor)
    return tuple(_like(ctx, input_tensor, [r[i] for r in per_device], memory_config) for i in range(3))


def _concat_heads(ctx, input_tensor, *, memory_config=None):
    def one(x):
        batch, heads, seq, dim = x.shape
        return x.transpose(1, 2).reshape(batch, 1, seq, heads * dim)

    return _like(ctx, input_tensor, ctx.per_device(one, input_tensor), memory_config)


def _concat_heads_decode(ctx, input_tensor, *, num_heads, memory_config=None, sub_core_grids=None):
    def one(x):
        users = x.shape[1]
        return x[:, :, :num_heads].reshape(1, 1, users, num_heads * x.shape[-1])

    return _like(ctx, input_tensor, ctx.per_device(one, input_tensor), memory_config)


# --- rotary embedding --------------------------------------------------------------------------------
def apply_trans_mat(x: torch.Tensor, trans_mat: torch.Tensor) -> torch.Tensor:
    """x @ T on every 32-wide tile of the last dim (the kernel multiplies tile by tile)."""
    t = _f32(trans_mat).reshape(-1, TILE, TILE)[-1]
    tiles = x.reshape(*x.shape[:-1], x.shape[-1] // TILE, TILE)
    return (tiles @ t).reshape(x.shape)


def _rotary_embedding_llama(ctx, input_tensor, cos_cache, sin_cache, trans_mat, is_decode_mode=False, *,
                            memory_config=None, compute_kernel_config=None):
    def one(x, cos, sin, t):
        x = _f32(x)
        return x * _f32(cos) + apply_trans_mat(x, t) * _f32(sin)

    shards = ctx.per_device(one, input_tensor, cos_cache, sin_cache, trans_mat)
    return _like(ctx, input_tensor, shards, memory_config)


# --- KV cache (in place) ----------------------------------------------------------------------------
def _own_shard(cache, device: int) -> torch.Tensor:
    """The device's shard, copied first only if its storage is shared with another device's (a replicated host
    tensor becomes one torch tensor on every device), so each device sees only its own in-place updates."""
    shard = cache.shards[device]
    pointer = shard.untyped_storage().data_ptr()
    if any(
        other.untyped_storage().data_ptr() == pointer for i, other in enumerate(cache.shards) if i != device
    ):
        shard = shard.clone()
        cache.shards[device] = shard
    shard.__dict__.pop("_sim_truncated", None)  # about to be written: its cached truncated copy goes stale
    return shard


def _write_rows(cache, device: int, rows: torch.Tensor, index) -> None:
    """cache.shards[device][index] = rows, rounded to the cache dtype."""
    shard = _own_shard(cache, device)
    shard[index] = to_storage(rows, cache.dtype, cache.layout).to(shard.dtype)


def _fill_cache(ctx, cache_tensor, input_tensor, batch_idx):
    for device in range(ctx.num_devices):
        x = input_tensor.shards[device][0]
        _write_rows(cache_tensor, device, x, (batch_idx, slice(None), slice(0, x.shape[-2])))
    return cache_tensor


def _positions(ctx, update_idxs, update_idxs_tensor, device: int) -> list[int]:
    if update_idxs_tensor is not None:
        return [int(p) for p in update_idxs_tensor.shards[device].reshape(-1).tolist()]
    return [int(p) for p in update_idxs]


def _paged_update_cache(ctx, cache_tensor, input_tensor, *, update_idxs=(), update_idxs_tensor=None,
                        share_cache=None, page_table=None, batch_offset=0, compute_kernel_config=None,
                        mesh_coords=None):
    not_simulated(share_cache, "experimental.paged_update_cache", "share_cache")
    not_simulated(mesh_coords, "experimental.paged_update_cache", "mesh_coords")
    for device in range(ctx.num_devices):
        # Block-float exponents are shared along a row's last dim only, so rounding the new rows together
        # equals rounding each in place; one copy per device keeps this linear in the number of users.
        x = to_storage(input_tensor.shards[device][0], cache_tensor.dtype, cache_tensor.layout)  # [B, nkv, d]
        table = None if page_table is None else page_table.shards[device].to(torch.int64)
        updated = _own_shard(cache_tensor, device)
        block_size = updated.shape[-2]
        for user, position in enumerate(_positions(ctx, update_idxs, update_idxs_tensor, device)):
            if position < 0 or user >= x.shape[0]:
                continue  # -1 marks a user that does not update this step
            if table is None:
                index = (user + batch_offset, slice(None), position)
            else:
                index = (int(table[user, position // block_size]), slice(None), position % block_size)
            updated[index] = x[user].to(updated.dtype)
    return cache_tensor


# --- scaled dot-product attention ---------------------------------------------------------------------
def sink_logits(sink: torch.Tensor, num_heads: int) -> torch.Tensor:
    """Per-head sink logit from [1, nh, 1, 1] (prefill) or [nh, 32] with the value in column 0 (decode)."""
    sink = _f32(sink)
    if sink.shape[-1] > 1:
        sink = sink[..., 0]
    return sink.reshape(-1)[:num_heads]


def attend(q, k, v, mask, scale, sink=None) -> torch.Tensor:
    """softmax([q k^T * scale + mask, sink]) v without the sink column; q [B, nh, Sq, d], k/v [B, nkv, Sk, d].

    Query heads are grouped over their shared KV head (GQA) with a view, not copies of k and v; `mask`
    broadcasts against [B, nh, Sq, Sk].
    """
    batch, heads, queries, dim = q.shape
    kv_heads, keys = k.shape[1], k.shape[-2]
    grouped = q.reshape(batch, kv_heads, heads // kv_heads, queries, dim)
    scores = (grouped @ k.unsqueeze(2).transpose(-1, -2)).reshape(batch, heads, queries, keys) * scale + mask
    if sink is not None:
        sink_column = sink.reshape(1, -1, 1, 1).expand(*scores.shape[:-1], 1)
        scores = torch.cat([scores, sink_column], dim=-1)
    probs = torch.softmax(scores, dim=-1)
    if sink is not None:
        probs = probs[..., :-1]
    grouped_probs = probs.reshape(batch, kv_heads, heads // kv_heads, queries, keys)
    return (grouped_probs @ v.unsqueeze(2)).reshape(batch, heads, queries, dim)


def window_mask(query_positions, key_positions, causal: bool, window) -> torch.Tensor:
    """Additive mask [Sq, Sk]: -inf where a key is in the future (causal) or outside the sliding window."""
    distance = query_positions.reshape(-1, 1) - key_positions.reshape(1, -1)
    allowed = torch.ones_like(distance, dtype=torch.bool)
    if causal:
        allowed &= distance >= 0
    if window:
        allowed &= distance < window
    return torch.zeros(distance.shape).masked_fill(~allowed, float("-inf"))


def _sdpa(ctx, input_tensor_q, input_tensor_k, input_tensor_v, *, attn_mask=None, is_causal=True, scale=None,
          sliding_window_size=None, program_config=None, memory_config=None, compute_kernel_config=None,
          attention_sink=None):
    def one(q, k, v, mask, sink):
        q, k, v = _f32(q), _f32(k), _f32(v)
        positions_q, positions_k = torch.arange(q.shape[-2]), torch.arange(k.shape[-2])
        additive = window_mask(positions_q, positions_k, is_causal, sliding_window_size)
        if mask is not None and not is_causal:
            additive = additive + _f32(mask)
        sink = None if sink is None else sink_logits(sink, q.shape[1])
        return attend(q, k, v, additive, scale or 1 / math.sqrt(q.shape[-1]), sink)

    shards = ctx.per_device(one, input_tensor_q, input_tensor_k, input_tensor_v, attn_mask, attention_sink)
    return _like(ctx, input_tensor_q, shards, memory_config)


def _sdpa_decode(ctx, input_tensor_q, input_tensor_k, input_tensor_v, *, is_causal=True, attn_mask=None,
                 cur_pos=(), cur_pos_tensor=None, attention_sink=None, scale=None, sliding_window_size=None,
                 memory_config=None, program_config=None, compute_kernel_config=None):
    not_simulated(attn_mask, "transformer.scaled_dot_product_attention_decode", "attn_mask")
    return _decode(ctx, input_tensor_q, input_tensor_k, input_tensor_v, None, cur_pos, cur_pos_tensor,
                   attention_sink, scale, sliding_window_size, memory_config)


def _paged_sdpa_decode(
    ctx,
    input_tensor_q,
    input_tensor_k,
    input_tensor_v,
    page_table_tensor,
    *,
    is_causal=True,
    attn_mask=None,
    cur_pos_tensor=None,
    attention_sink=None,
    scale=None,
    sliding_window_size=None,
    memory_config=None,
    program_config=None,
    compute_kernel_config=None,
):
    not_simulated(attn_mask, "transformer.paged_scaled_dot_product_attention_decode", "attn_mask")
    return _decode(ctx, input_tensor_q, input_tensor_k, input_tensor_v, page_table_tensor, (), cur_pos_tensor,
                   attention_sink, scale, sliding_window_size, memory_config)


def _decode(ctx, input_tensor_q, input_tensor_k, input_tensor_v, page_table_tensor, cur_pos, cur_pos_tensor,
            attention_sink, scale, sliding_window_size, memory_config):
    """Decode attention, paged when page_table_tensor is given: each user attends up to its position."""
    outputs = []
    for device in range(ctx.num_devices):
        q = _f32(input_tensor_q.shards[device])[0]  # [B, nh, d]
        k, v = _f32(input_tensor_k.shards[device]), _f32(input_tensor_v.shards[device])
        if page_table_tensor is not None:
            table = page_table_tensor.shards[device].to(torch.int64)[: q.shape[0]]
            k, v = _unpage(k, table), _unpage(v, table)
        sink = None if attention_sink is None else sink_logits(attention_sink.shards[device], q.shape[1])
        positions = torch.tensor(_positions(ctx, cur_pos, cur_pos_tensor, device)[: q.shape[0]])
        outputs.append(
            _decode_users(
                q, k[: q.shape[0]], v[: q.shape[0]], positions, sliding_window_size, scale, sink
            ).unsqueeze(0)
        )
    return _like(ctx, input_tensor_q, outputs, memory_config)


def _unpage(cache: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    """[num_blocks, nkv, block, d] paged by table [B, blocks_per_user] -> [B, nkv, blocks_per_user * block,
    d]."""
    blocks = cache[table.reshape(-1)]  # [B * blocks_per_user, nkv, block, d]
    users, per_user = table.shape
    _, heads, block, dim = cache.shape
    return blocks.reshape(users, per_user, heads, block, dim).transpose(1, 2).reshape(users, heads, -1, dim)


def _decode_users(q, k, v, positions, window, scale, sink):
    """Every user's heads q [B, nh, d] against its cache k/v [B, nkv, S_max, d] up to its own position.

    Keys past the furthest position are masked for every user, so they are cut before the product.
    """
    keys = int(max(positions.max().item(), 0)) + 1
    k, v = k[:, :, :keys], v[:, :, :keys]
    masks = torch.stack([window_mask(p.reshape(1), torch.arange(keys), True, window) for p in positions])
    out = attend(q.unsqueeze(2), k, v, masks.unsqueeze(1), scale or 1 / math.sqrt(q.shape[-1]), sink)[:, :, 0]
    return torch.where((positions < 0).reshape(-1, 1, 1), torch.zeros_like(out), out)  # -1: a skipped user


# --- cost and attributes ---------------------------------------------------------------------------
def _sdpa_cost(ctx, inputs, outputs, kwargs):
    q, k = inputs[0], inputs[1]
    keys = k.padded_shape[-2]
    table = kwargs.get("page_table_tensor")
    if table is not None:  # a paged cache: each user reads its page table's blocks
        keys = keys * table.shape[-1]
    flops = 4 * q.padded_shape.volume() * keys  # q k^T and p v, 2 flops per MAC
    return memory_cost(inputs[:3], outputs, cost.matmul_ns(flops, "HiFi2"), fidelity="HiFi2")


def _move_cost(ctx, inputs, outputs, kwargs):
    return memory_cost(inputs, outputs)


def _update_cost(ctx, inputs, outputs, kwargs):
    return memory_cost(inputs[1:2], inputs[1:2])  # reads the new rows, writes as many into the cache


def _rotary_cost(ctx, inputs, outputs, kwargs):
    elements = outputs[0].padded_shape.volume()
    return memory_cost(inputs, outputs, cost.matmul_ns(2 * elements * TILE, "HiFi4"), fidelity="HiFi4")


_EXPERIMENTAL = "ttnn/cpp/ttnn/operations/experimental"
_HEADS = f"{_EXPERIMENTAL}/transformer"
_SDPA_RECORDED = ("is_causal", "scale", "sliding_window_size", "memory_config", "program_config",
                  "compute_kernel_config")
TABLE = {
    "experimental.nlp_create_qkv_heads": OpDef(
        _create_qkv_heads,
        _move_cost,
        "NlpCreateHeadsDeviceOperation",
        source=f"{_HEADS}/nlp_create_qkv_heads/nlp_create_qkv_heads_nanobind.cpp",
        recorded=("num_heads", "num_kv_heads", "transpose_k_heads", "memory_config"),
    ),
    "experimental.nlp_create_qkv_heads_decode": OpDef(
        _create_qkv_heads_decode,
        _move_cost,
        "NLPCreateHeadsDecodeDeviceOperation",
        source=f"{_HEADS}/nlp_create_qkv_heads_decode/nlp_create_qkv_heads_decode_nanobind.cpp",
        recorded=("num_heads", "num_kv_heads", "overlap_qk_coregrid", "memory_config"),
    ),
    "experimental.nlp_concat_heads": OpDef(
        _concat_heads,
        _move_cost,
        "NLPConcatHeadsDeviceOperation",
        source=f"{_HEADS}/nlp_concat_heads/nlp_concat_heads_nanobind.cpp",
        recorded=("memory_config",),
    ),
    "experimental.nlp_concat_heads_decode": OpDef(
        _concat_heads_decode,
        _move_cost,
        "NLPConcatHeadsDecodeDeviceOperation",
        source=f"{_HEADS}/nlp_concat_heads_decode/nlp_concat_heads_decode_nanobind.cpp",
        recorded=("num_heads", "memory_config", "sub_core_grids"),
    ),
    "experimental.rotary_embedding_llama": OpDef(
        _rotary_embedding_llama,
        _rotary_cost,
        "RotaryEmbeddingLlamaDeviceOperation",
        source=f"{_HEADS}/rotary_embedding_llama/rotary_embedding_llama_nanobind.cpp",
        recorded=("is_decode_mode", "memory_config", "compute_kernel_config"),
    ),
    "fill_cache": OpDef(
        _fill_cache,
        _update_cost,
        "UpdateKVCacheOperation",
        source="ttnn/cpp/ttnn/operations/kv_cache/kv_cache_nanobind.cpp",
        recorded=("batch_idx",),
    ),
    "experimental.paged_update_cache": OpDef(
        _paged_update_cache,
        _update_cost,
        "PagedUpdateCacheDeviceOperation",
        source=f"{_EXPERIMENTAL}/paged_cache/paged_cache_nanobind.cpp",
        recorded=("update_idxs", "batch_offset", "compute_kernel_config"),
    ),
    "transformer.scaled_dot_product_attention": OpDef(
        _sdpa,
        _sdpa_cost,
        "SDPAOperation",
        source="ttnn/cpp/ttnn/operations/transformer/sdpa/sdpa_nanobind.cpp",
        recorded=_SDPA_RECORDED,
    ),
    "transformer.scaled_dot_product_attention_decode": OpDef(
        _sdpa_decode,
        _sdpa_cost,
        "SdpaDecodeDeviceOperation",
        source="ttnn/cpp/ttnn/operations/transformer/sdpa_decode/sdpa_decode_nanobind.cpp",
        recorded=(*_SDPA_RECORDED, "cur_pos"),
    ),
    "transformer.paged_scaled_dot_product_attention_decode": OpDef(
        _paged_sdpa_decode,
        _sdpa_cost,
        "SdpaDecodeDeviceOperation",
        lambda kwargs, outputs: {"paged_attention": "true"},
        source="ttnn/cpp/ttnn/operations/transformer/sdpa_decode/sdpa_decode_nanobind.cpp",
        recorded=_SDPA_RECORDED,
    ),
}
