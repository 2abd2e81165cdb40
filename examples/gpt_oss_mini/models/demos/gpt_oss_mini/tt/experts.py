"""Mixture of experts with one expert per device (tt-metal's throughput experts, scaled to a 2x4 mesh).

Decode (``decode_forward``), as tt-metal's throughput decode path:
  all_to_all_dispatch (tokens travel along mesh rows to the devices owning their experts) ->
  moe_expert_token_remap (which 32-token blocks each local expert must compute) ->
  expert_mlp_forward (sparse gate/up matmuls + clamped SwiGLU + sparse down matmul) ->
  all_to_all_combine (expert outputs back to the tokens' devices) -> routing weights, sum over k ->
  all_reduce along mesh columns (a token's experts may live in other columns).
Prefill (``prefill_forward``, batch 1): every device holds the whole sequence, so there is nothing to dispatch:
  each device runs its local expert on the blocks routed to it (the same expert_mlp_forward), weights the
  output by the dense routing weights and the mesh sums the partials (all_reduce on both axes).
"""

from dataclasses import dataclass

import torch

import ttnn

from .model_config import weight_tensor


@dataclass(frozen=True)
class ExpertWeights:
    """Per device: this device's experts. Matrices [1, E_local, in, out] bfloat8_b, biases [1, E_local, 1, out]."""

    w1: ttnn.Tensor  # gate
    w1_bias: ttnn.Tensor
    w3: ttnn.Tensor  # up
    w3_bias: ttnn.Tensor
    w2: ttnn.Tensor  # down
    w2_bias: ttnn.Tensor


def load_expert_weights(mesh_device, state_dict) -> ExpertWeights:
    """HF stores gate and up interleaved in gate_up_proj [E, H, 2I] (even columns gate, odd up)."""
    gate_up, gate_up_bias = state_dict["gate_up_proj"], state_dict["gate_up_proj_bias"]

    def experts_over_devices(tensor, dtype):  # expert e lands on device e (row-major device order)
        return weight_tensor(
            tensor.unsqueeze(0),
            mesh_device,
            dtype=dtype,
            mesh_mapper=ttnn.ShardTensorToMesh(mesh_device, dim=1),
        )

    return ExpertWeights(
        w1=experts_over_devices(gate_up[..., ::2], ttnn.bfloat8_b),
        w1_bias=experts_over_devices(gate_up_bias[..., ::2].unsqueeze(1), ttnn.bfloat16),
        w3=experts_over_devices(gate_up[..., 1::2], ttnn.bfloat8_b),
        w3_bias=experts_over_devices(gate_up_bias[..., 1::2].unsqueeze(1), ttnn.bfloat16),
        w2=experts_over_devices(state_dict["down_proj"], ttnn.bfloat8_b),
        w2_bias=experts_over_devices(state_dict["down_proj_bias"].unsqueeze(1), ttnn.bfloat16),
    )


def expert_mapping_tensor(mesh_device, args):
    """[1, 1, E, D] one-hot: mapping[e, d] = 1 when expert e lives on device d."""
    mapping = torch.eye(args.num_devices, dtype=torch.int32).repeat_interleave(args.experts_per_device, dim=0)
    shape = (1, 1, args.num_experts, args.num_devices)
    return weight_tensor(mapping.reshape(shape), mesh_device, dtype=ttnn.uint16, layout=ttnn.ROW_MAJOR_LAYOUT)


def remap_topk_mask_tensor(mesh_device, args):
    """[1, dispatch_rows, 1, E] ones: every (token, expert) pair the metadata names counts as active."""
    ones = torch.ones(1, args.dispatch_devices, 1, args.num_experts)
    return weight_tensor(ones, mesh_device, layout=ttnn.ROW_MAJOR_LAYOUT)


def expert_mlp_forward(experts_input, sparsity, weights: ExpertWeights, args, memory_config):
    """Tokens [1, 1, T, H] (TILE) -> this device's expert outputs [E_local, 1, T, H] (ROW_MAJOR, combine's layout).

    down((clamp(up) + 1) * clamp(gate) * sigmoid(alpha * clamp(gate))) on the 32-token blocks ``sparsity`` marks.
    """
    tokens = experts_input.shape[-2]
    block = args.sparsity_block_size
    blocks = ttnn.reshape(experts_input, (1, tokens // block, block, args.hidden_size))
    gate = ttnn.sparse_matmul(
        blocks,
        weights.w1,
        sparsity=sparsity,
        memory_config=memory_config,
        is_input_a_sparse=False,
        is_input_b_sparse=True,
        output_tile=ttnn.Tile([block, ttnn.TILE_SIZE]),
    )
    gate = ttnn.add(gate, weights.w1_bias, output_tensor=gate)
    up = ttnn.sparse_matmul(
        blocks,
        weights.w3,
        sparsity=sparsity,
        memory_config=memory_config,
        is_input_a_sparse=False,
        is_input_b_sparse=True,
        output_tile=ttnn.Tile([block, ttnn.TILE_SIZE]),
    )
    up = ttnn.add(up, weights.w3_bias, output_tensor=up)
    gate = ttnn.clamp(gate, min=None, max=args.swiglu_limit)
    up = ttnn.clamp(up, min=-args.swiglu_limit, max=args.swiglu_limit)
    gate_sigmoid = ttnn.sigmoid(ttnn.mul(gate, args.swiglu_alpha))
    glu = ttnn.mul(gate, gate_sigmoid, memory_config=memory_config)
    ttnn.deallocate(gate_sigmoid)
    up = ttnn.add(up, 1.0, output_tensor=up)
    activated = ttnn.mul(up, glu, memory_config=memory_config)
    ttnn.deallocate(glu)
    activated = ttnn.squeeze(ttnn.squeeze(activated, 0), 1)  # [blocks, E_local, block, I]
    down = ttnn.sparse_matmul(
        activated,
        weights.w2,
        sparsity=sparsity,
        memory_config=memory_config,
        is_input_a_sparse=True,
        is_input_b_sparse=False,
        output_tile=ttnn.Tile([block, ttnn.TILE_SIZE]),
    )
    ttnn.deallocate(activated)
    down = ttnn.add(down, weights.w2_bias, output_tensor=down)
    expert_output = ttnn.permute(down, (1, 0, 2, 3))  # [E_local, blocks, block, H]
    ttnn.deallocate(down)
    expert_output = ttnn.reshape(expert_output, (args.experts_per_device, 1, tokens, args.hidden_size))
    expert_output = ttnn.to_layout(expert_output, ttnn.ROW_MAJOR_LAYOUT)
    return expert_output


def decode_forward(hidden_states, topk_indices, topk_weights, weights, args, expert_mapping, remap_topk_mask):
    """This mesh row's users [1, 1, T, H] with routing (indices, weights) [T, k] -> MoE output [1, 1, T, H]."""
    memory_config = ttnn.L1_MEMORY_CONFIG
    hidden_rm = ttnn.to_layout(hidden_states, ttnn.ROW_MAJOR_LAYOUT)
    tokens = hidden_states.shape[-2]
    total_tokens = tokens * args.dispatch_devices  # every user of a mesh column
    k = args.experts_per_token
    indices_rm = ttnn.to_layout(ttnn.reshape(topk_indices, (1, 1, tokens, k)), ttnn.ROW_MAJOR_LAYOUT)
    dispatch_output, dispatch_metadata = ttnn.all_to_all_dispatch(
        hidden_rm,
        indices_rm,
        expert_mapping,
        cluster_axis=args.dispatch_axis,
        memory_config=memory_config,
        num_links=1,
        topology=ttnn.Topology.Linear,
        output_concat_dim=2,
    )
    ttnn.deallocate(hidden_rm)
    ttnn.deallocate(indices_rm)
    remap_mask = ttnn.reshape(
        ttnn.repeat(remap_topk_mask, ttnn.Shape((1, 1, tokens, 1))), (1, 1, total_tokens, args.num_experts)
    )
    _, sparsity = ttnn.moe_expert_token_remap(
        remap_mask, expert_mapping, dispatch_metadata, reduction_size=args.sparsity_block_size
    )
    ttnn.deallocate(remap_mask)
    experts_input = ttnn.to_layout(
        ttnn.reshape(dispatch_output, (1, 1, total_tokens, args.hidden_size)), ttnn.TILE_LAYOUT
    )
    ttnn.deallocate(dispatch_output)
    expert_output = expert_mlp_forward(experts_input, sparsity, weights, args, memory_config)
    ttnn.deallocate(experts_input)
    combine_output = ttnn.all_to_all_combine(
        expert_output,
        dispatch_metadata,
        expert_mapping,
        cluster_axis=args.dispatch_axis,
        memory_config=memory_config,
        num_links=1,
        topology=ttnn.Topology.Linear,
        output_shard_dim=2,
    )
    ttnn.deallocate(expert_output)
    ttnn.deallocate(dispatch_metadata)
    post_combine = ttnn.to_layout(
        combine_output, ttnn.TILE_LAYOUT
    )  # [k, 1, T, H]: output of each chosen expert
    ttnn.deallocate(combine_output)
    routing = ttnn.to_layout(ttnn.reshape(topk_weights, (-1, 1, 1, k)), ttnn.ROW_MAJOR_LAYOUT)
    routing = ttnn.permute(ttnn.repeat(routing, ttnn.Shape((1, 1, args.hidden_size, 1))), (3, 1, 0, 2))
    routing = ttnn.to_layout(routing, ttnn.TILE_LAYOUT)  # [k, 1, T, H]
    weighted = ttnn.mul(post_combine, routing, memory_config=memory_config)
    ttnn.deallocate(post_combine)
    ttnn.deallocate(routing)
    mixed = ttnn.sum(weighted, dim=0, keepdim=True)  # this column's experts' share of each token
    ttnn.deallocate(weighted)
    output = ttnn.all_reduce(
        mixed,
        cluster_axis=args.reduce_axis,
        num_links=1,
        topology=ttnn.Topology.Linear,
        memory_config=memory_config,
    )
    ttnn.deallocate(mixed)
    return output


def prefill_forward(hidden_states, topk_indices, topk_weights, weights, args, expert_mapping, routing_zeros):
    """The whole sequence [1, 1, S, H] on every device, routing [S, k] -> MoE output [1, 1, S, H]."""
    memory_config = ttnn.DRAM_MEMORY_CONFIG
    tokens = hidden_states.shape[-2]
    k = args.experts_per_token
    indices_rm = ttnn.to_layout(ttnn.reshape(topk_indices, (1, 1, tokens, k)), ttnn.ROW_MAJOR_LAYOUT)
    weights_rm = ttnn.to_layout(ttnn.reshape(topk_weights, (1, 1, tokens, k)), ttnn.ROW_MAJOR_LAYOUT)
    zeros = ttnn.slice(routing_zeros, (0, 0, 0, 0), (1, 1, tokens, args.num_experts))
    dense_routing = ttnn.scatter(zeros, 3, indices_rm, weights_rm)  # [1, 1, S, E], 0 for unchosen experts
    local_routing, sparsity = ttnn.moe_expert_token_remap(
        dense_routing, expert_mapping, indices_rm, reduction_size=args.sparsity_block_size
    )
    ttnn.deallocate(dense_routing)
    expert_output = expert_mlp_forward(hidden_states, sparsity, weights, args, memory_config)
    expert_output = ttnn.to_layout(expert_output, ttnn.TILE_LAYOUT)  # [E_local, 1, S, H]
    local_routing = ttnn.to_layout(
        ttnn.permute(local_routing, (3, 1, 2, 0)), ttnn.TILE_LAYOUT
    )  # [E_local, 1, S, 1]
    weighted = ttnn.mul(expert_output, local_routing, memory_config=memory_config)
    ttnn.deallocate(expert_output)
    partial = ttnn.sum(weighted, dim=0, keepdim=True)
    ttnn.deallocate(weighted)
    column_sum = ttnn.all_reduce(
        partial, cluster_axis=args.reduce_axis, num_links=1, topology=ttnn.Topology.Linear
    )
    ttnn.deallocate(partial)
    mesh_sum = ttnn.all_reduce(
        column_sum, cluster_axis=args.dispatch_axis, num_links=1, topology=ttnn.Topology.Linear
    )
    ttnn.deallocate(column_sum)
    return mesh_sum


class Experts:
    """The layer's experts: weights sharded one expert per device, plus the routing helper tensors."""

    def __init__(self, mesh_device, hf_config, state_dict, args):
        self.args = args
        self.weights = load_expert_weights(mesh_device, state_dict)
        self.expert_mapping = expert_mapping_tensor(mesh_device, args)
        self.remap_topk_mask = remap_topk_mask_tensor(mesh_device, args)
        # scatter's canvas for the prefill path's dense routing weights, sliced to the sequence length
        zeros = torch.zeros(1, 1, args.max_seq_len, args.num_experts)
        self.routing_zeros = weight_tensor(zeros, mesh_device, layout=ttnn.ROW_MAJOR_LAYOUT)

    def __call__(self, hidden_states, topk_indices, topk_weights, mode: str):
        if mode == "decode":
            return decode_forward(
                hidden_states,
                topk_indices,
                topk_weights,
                self.weights,
                self.args,
                self.expert_mapping,
                self.remap_topk_mask,
            )
        return prefill_forward(
            hidden_states,
            topk_indices,
            topk_weights,
            self.weights,
            self.args,
            self.expert_mapping,
            self.routing_zeros,
        )
