"""Grouped-query attention with sinks and RoPE, a KV cache, decode and prefill paths (tt-metal's gpt_oss attention).

Attention is replicated across the mesh (each device attends for its own decode users; prefill runs the whole
sequence everywhere): at this size the heads do not split over 4 columns, and the layer's CCLs live in the experts.
"""

import torch

import ttnn

from .model_config import activation_memory_config, weight_tensor
from .rope import interleave_permutation


class Attention:
    def __init__(self, mesh_device, hf_config, state_dict, args, batch_size: int):
        self.mesh_device, self.args = mesh_device, args
        self.num_heads, self.num_kv_heads, self.head_dim = args.num_heads, args.num_kv_heads, args.head_dim
        self.users = args.users_per_device(batch_size) if batch_size > 1 else 1
        self.rope_order = interleave_permutation(self.head_dim)
        q, q_bias = self._rope_ordered(state_dict, "q_proj", self.num_heads)
        k, k_bias = self._rope_ordered(state_dict, "k_proj", self.num_kv_heads)
        wqkv = torch.cat([q, k, state_dict["v_proj.weight"]]).transpose(
            0, 1
        )  # [H, (heads + 2 kv heads) * dim]
        wqkv_bias = torch.cat([q_bias, k_bias, state_dict["v_proj.bias"]])
        self.wqkv = weight_tensor(wqkv, mesh_device)
        self.wqkv_bias = weight_tensor(wqkv_bias.unsqueeze(0), mesh_device)
        self.o_proj = weight_tensor(state_dict["o_proj.weight"].transpose(0, 1), mesh_device)
        self.o_proj_bias = weight_tensor(state_dict["o_proj.bias"].unsqueeze(0), mesh_device)
        sinks = state_dict["sinks"]
        self.sinks = weight_tensor(sinks.reshape(1, -1, 1, 1), mesh_device)
        self.decode_sinks = weight_tensor(torch.nn.functional.pad(sinks.reshape(-1, 1), (0, 31)), mesh_device)
        cache_shape = (self.users, self.num_kv_heads, args.max_seq_len, self.head_dim)
        self.k_cache = weight_tensor(torch.zeros(cache_shape), mesh_device)
        self.v_cache = weight_tensor(torch.zeros(cache_shape), mesh_device)

    def _rope_ordered(self, state_dict, name: str, heads: int):
        """q/k projection rows permuted per head into rotary_embedding_llama's pair order."""
        weight = state_dict[f"{name}.weight"].reshape(heads, self.head_dim, -1)[:, self.rope_order]
        bias = state_dict[f"{name}.bias"].reshape(heads, self.head_dim)[:, self.rope_order]
        return weight.reshape(heads * self.head_dim, -1), bias.reshape(-1)

    def load_cache(self, keys: torch.Tensor, values: torch.Tensor) -> None:
        """Fill positions 0..P-1 from host keys/values [B, kv_heads, P, dim] (HF layout): users over mesh rows."""
        keys = keys[..., self.rope_order]
        shape = tuple(self.mesh_device.shape)
        mapper = ttnn.ShardTensor2dMesh(self.mesh_device, dims=(0, None), mesh_shape=shape)

        def padded(tensor):
            full = torch.zeros(tensor.shape[0], self.num_kv_heads, self.args.max_seq_len, self.head_dim)
            full[:, :, : tensor.shape[2]] = tensor
            return weight_tensor(full, self.mesh_device, mesh_mapper=mapper)

        self.k_cache, self.v_cache = padded(keys), padded(values)

    def __call__(self, hidden_states, mode: str, rope, start_pos: int):
        if mode == "decode":
            return self.decode_forward(hidden_states, rope, start_pos)
        return self.prefill_forward(hidden_states, rope)

    def decode_forward(self, hidden_states, rope, position: int):
        """This device's users [1, 1, B, H], each at ``position`` -> [1, 1, B, H]."""
        memory_config = activation_memory_config("decode")
        users = hidden_states.shape[-2]
        xqkv = ttnn.linear(hidden_states, self.wqkv, bias=self.wqkv_bias, memory_config=memory_config)
        q, k, v = ttnn.experimental.nlp_create_qkv_heads_decode(
            xqkv, num_heads=self.num_heads, num_kv_heads=self.num_kv_heads, memory_config=memory_config
        )
        ttnn.deallocate(xqkv)
        cos, sin = rope.decode(position, users)
        q = ttnn.experimental.rotary_embedding_llama(
            q, cos, sin, rope.transformation_mat, is_decode_mode=True
        )
        k = ttnn.experimental.rotary_embedding_llama(
            k, cos, sin, rope.transformation_mat, is_decode_mode=True
        )
        positions = self._positions(position, users)
        ttnn.experimental.paged_update_cache(self.k_cache, k, update_idxs_tensor=positions)
        ttnn.experimental.paged_update_cache(self.v_cache, v, update_idxs_tensor=positions)
        ttnn.deallocate(k)
        ttnn.deallocate(v)
        attention = ttnn.transformer.scaled_dot_product_attention_decode(
            q,
            self.k_cache,
            self.v_cache,
            cur_pos_tensor=positions,
            attention_sink=self.decode_sinks,
            scale=self.args.scaling,
            memory_config=memory_config,
        )
        ttnn.deallocate(q)
        heads = ttnn.experimental.nlp_concat_heads_decode(attention, num_heads=self.num_heads)
        ttnn.deallocate(attention)
        output = ttnn.linear(heads, self.o_proj, bias=self.o_proj_bias, memory_config=memory_config)
        ttnn.deallocate(heads)
        return output

    def prefill_forward(self, hidden_states, rope, user_id: int = 0):
        """One user's sequence [1, 1, S, H] from position 0 -> [1, 1, S, H]; its keys/values go to the cache."""
        memory_config = activation_memory_config("prefill")
        seq_len = hidden_states.shape[-2]
        xqkv = ttnn.linear(hidden_states, self.wqkv, bias=self.wqkv_bias, memory_config=memory_config)
        q, k, v = ttnn.experimental.nlp_create_qkv_heads(
            xqkv,
            num_heads=self.num_heads,
            num_kv_heads=self.num_kv_heads,
            transpose_k_heads=False,
            memory_config=memory_config,
        )
        ttnn.deallocate(xqkv)
        cos, sin = rope.prefill(seq_len)
        q = ttnn.experimental.rotary_embedding_llama(
            q, cos, sin, rope.transformation_mat, is_decode_mode=False
        )
        k = ttnn.experimental.rotary_embedding_llama(
            k, cos, sin, rope.transformation_mat, is_decode_mode=False
        )
        ttnn.fill_cache(self.k_cache, k, batch_idx=user_id)
        ttnn.fill_cache(self.v_cache, v, batch_idx=user_id)
        attention = ttnn.transformer.scaled_dot_product_attention(
            q, k, v, is_causal=True, attention_sink=self.sinks, scale=self.args.scaling
        )
        for tensor in (q, k, v):
            ttnn.deallocate(tensor)
        heads = ttnn.experimental.nlp_concat_heads(attention, memory_config=memory_config)
        ttnn.deallocate(attention)
        output = ttnn.linear(heads, self.o_proj, bias=self.o_proj_bias, memory_config=memory_config)
        ttnn.deallocate(heads)
        return output

    def _positions(self, position: int, users: int):
        """cur_pos / update_idxs: every user's current position, int32 [users]."""
        return ttnn.from_torch(
            torch.full((users,), position, dtype=torch.int32),
            dtype=ttnn.int32,
            device=self.mesh_device,
            mesh_mapper=ttnn.ReplicateTensorToMesh(self.mesh_device),
        )
