"""Mixture-of-experts ops: all_to_all_dispatch, all_to_all_combine, moe_expert_token_remap, sparse_matmul.

Facts these rest on (ttnn docs for each op; tt-metal's gpt_oss ``tt/experts_throughput/``):
- expert mapping tensor [1, 1, E, D], replicated: mapping[e, d] = 1 when expert e lives on device d, where d
  is the row-major index of the device in the whole mesh. A device's local experts are the experts mapped to
  it, in increasing expert id; an expert's local index is its rank among them.
- all_to_all_dispatch(x, indices, mapping, cluster_axis, output_concat_dim=1): per device x is [B, S, 1, H]
  (any [B, ..., H]; the middle dims are the S tokens of a batch row) and indices [B, S, 1, K] hold each
  token's K chosen expert ids. Tokens travel within the group of devices along ``cluster_axis`` (see ccl.py).
  Both outputs hold every token of the group, concatenated in group order along ``output_concat_dim`` of the
  view [1, B, S, *]: dim 1 gives [1, B*D[A], S, *], dim 2 gives [1, B, S*D[A], *]. The dispatched tokens [..,
  H] keep on each device only the rows of tokens that chose at least one expert of that device, other rows
  being empty (the sim writes zeros); the metadata [.., K] is the gathered indices, the same on every member.
- moe_expert_token_remap(topk [.., E], mapping, metadata [.., K], reduction_size): per device, for its local
  experts only: mapping output [.., E_local] = the topk score of (token, local expert) when the metadata names
  that expert for the token, else 0; reduced output [1, 1, ceil(N / reduction_size), E_local] (N = tokens) = 1
  when any token of that chunk of reduction_size consecutive tokens has a non-zero mapping value for the
  expert. The reduced tensor is the sparsity input of sparse_matmul.
- sparse_matmul(a, b [1, E, K, N], sparsity (bfloat16, ROW_MAJOR)): blocks whose sparsity value is 0 are
  skipped (the sim writes zeros there). is_input_b_sparse (a dense, a [A0, A1, M, K]): sparsity holds A0*A1*E
  values indexed [A0, A1, E] and the output is [A0, A1, 1, E, M, N], block (i, j, e) = a[i, j] @ b[0, e].
  is_input_a_sparse (a [A0, E, M, K]): sparsity holds A0*E values indexed [A0, E] and the output is [A0, E, M,
  N], block (i, e) = a[i, e] @ b[0, e]. ``nnz`` is a hint and is ignored.
- all_to_all_combine(expert_out, metadata, mapping, cluster_axis, output_shard_dim=1): the inverse of
  dispatch. expert_out on a device is [E_local, <the dispatched token dims>, H]. Each device gets back its own
  tokens: output [K, B, S, H] where row (k, token) is the output of the token's k-th chosen expert, read from
  the device owning that expert at that expert's local index. ``output_shard_dim`` names the dim of the
  metadata that dispatch concatenated over devices. An expert living outside the group (another mesh
  row/column) contributes zeros here; models sum those partials with an all_reduce over the other axis.
"""

import math

import torch

from ttnn_sim import cost, numerics
from ttnn_sim.dispatch import OpDef
from ttnn_sim.ops.ccl import ccl_attributes, cluster_groups, group_size
from ttnn_sim.ops.common import fidelity_name, memory_cost, not_simulated
from ttnn_sim.types import DataType, Layout, MathFidelity


# --- expert placement ------------------------------------------------------------------------------
def local_experts(mapping: torch.Tensor, device: int) -> list[int]:
    table = mapping.reshape(mapping.shape[-2], mapping.shape[-1])
    return [int(e) for e in torch.nonzero(table[:, device] != 0).reshape(-1)]


def expert_devices(mapping: torch.Tensor) -> torch.Tensor:
    """[E] the device owning each expert."""
    table = mapping.reshape(mapping.shape[-2], mapping.shape[-1])
    return (table != 0).to(torch.int64).argmax(dim=1)


def local_index(mapping: torch.Tensor) -> torch.Tensor:
    """[E] each expert's index among its device's experts."""
    owners = expert_devices(mapping)
    on_device = torch.nn.functional.one_hot(owners, mapping.shape[-1])  # [E, D]
    return (
        (on_device.cumsum(0) - 1).gather(1, owners[:, None]).reshape(-1)
    )  # experts so far on the same device


def _batch_view(x: torch.Tensor) -> torch.Tensor:
    """[B, ..., C] -> [1, B, S, C]: the view dispatch concatenates in."""
    return x.reshape(1, x.shape[0], -1, x.shape[-1])


# --- all_to_all_dispatch ---------------------------------------------------------------------------
def _dispatch(ctx, input_tensor, expert_indices_tensor, expert_mapping_tensor, *, cluster_axis=None,
              num_links=None, topology=None, memory_config=None, subdevice_id=None, output_tensors=None,
              output_concat_dim=1):
    not_simulated(output_tensors, "all_to_all_dispatch", "output_tensors")
    tokens, metadata = [None] * ctx.num_devices, [None] * ctx.num_devices
    for group in cluster_groups(ctx.mesh, cluster_axis):
        gathered_x = torch.cat([_batch_view(input_tensor.shards[d]) for d in group], dim=output_concat_dim)
        gathered_i = torch.cat(
            [_batch_view(expert_indices_tensor.shards[d]) for d in group], dim=output_concat_dim
        )
        for device in group:
            owners = expert_devices(expert_mapping_tensor.shards[device])
            wanted = (owners[gathered_i.to(torch.int64)] == device).any(dim=-1, keepdim=True)
            tokens[device] = torch.where(wanted, gathered_x.to(torch.float32), torch.zeros(()))
            metadata[device] = gathered_i
    config = memory_config or input_tensor.memory_config()
    return (ctx.output(tokens, input_tensor.dtype, Layout.ROW_MAJOR, config),
            ctx.output(metadata, expert_indices_tensor.dtype, Layout.ROW_MAJOR, config))


# --- all_to_all_combine ----------------------------------------------------------------------------
def _token_owners(metadata_shape, members: int, shard_dim: int) -> torch.Tensor:
    """[N] group position each flattened metadata row came from, N in metadata's flattened token order."""
    local_shape = list(metadata_shape[:-1]) + [1]
    local_shape[shard_dim] //= members
    return torch.cat([torch.full(local_shape, p) for p in range(members)], dim=shard_dim).reshape(-1)


def _combine(ctx, input_tensor, expert_metadata_tensor, expert_mapping_tensor, *, local_reduce=False,
             num_links=None, topology=None, memory_config=None, cluster_axis=None, subdevice_id=None,
             output_tensor=None, output_shard_dim=1):
    hidden = input_tensor.shape[-1]
    meta_shape = list(expert_metadata_tensor.shape)
    out_shards = [None] * ctx.num_devices
    for group in cluster_groups(ctx.mesh, cluster_axis):
        owners = _token_owners(meta_shape, len(group), output_shard_dim)
        for position, device in enumerate(group):
            metadata = expert_metadata_tensor.shards[device].reshape(-1, meta_shape[-1]).to(torch.int64)
            rows = torch.nonzero(owners == position).reshape(-1)
            chosen = _gather_expert_rows(
                input_tensor, expert_mapping_tensor.shards[device], group, metadata[rows], rows, hidden
            )  # [K, T, H]
            local_shape = meta_shape[1:-1]
            local_shape[output_shard_dim - 1] //= len(group)
            out_shards[device] = chosen.reshape(meta_shape[-1], *local_shape, hidden)
    return ctx.output(out_shards, input_tensor.dtype, Layout.ROW_MAJOR,
                      memory_config or input_tensor.memory_config())


def _gather_expert_rows(expert_out, mapping, group, chosen_experts, rows, hidden) -> torch.Tensor:
    """[K, T, H]: for each of T tokens (flat rows ``rows``) the output of its k-th expert, 0 outside the
    group."""
    owners, local = expert_devices(mapping), local_index(mapping)
    position_of = {device: p for p, device in enumerate(group)}
    member = torch.tensor([position_of.get(int(d), -1) for d in owners])[chosen_experts.T]  # [K, T]
    slot = local[chosen_experts.T]  # [K, T] the expert's index on its device
    picked = torch.zeros(*member.shape, hidden)
    for position, device in enumerate(group):  # read only the rows each member contributes
        k, t = torch.nonzero(member == position, as_tuple=True)
        if len(k):
            source = expert_out.shards[device].reshape(expert_out.shards[device].shape[0], -1, hidden)
            picked[k, t] = source[slot[k, t], rows[t]].to(torch.float32)
    return picked


# --- moe_expert_token_remap --------------------------------------------------------------------------
def _token_remap(
    ctx,
    topk_tensor,
    expert_mapping_tensor,
    expert_metadata_tensor,
    *,
    output_mapping_tensor=None,
    output_reduced_tensor=None,
    reduction_size=32,
):
    not_simulated(output_mapping_tensor, "moe_expert_token_remap", "output_mapping_tensor")
    not_simulated(output_reduced_tensor, "moe_expert_token_remap", "output_reduced_tensor")
    mappings, reduced = [], []
    for device in range(ctx.num_devices):
        scores = topk_tensor.shards[device].to(torch.float32)
        experts = local_experts(expert_mapping_tensor.shards[device], device)
        flat_scores = scores.reshape(-1, scores.shape[-1])
        metadata = expert_metadata_tensor.shards[device].reshape(flat_scores.shape[0], -1).to(torch.int64)
        chosen = torch.stack([(metadata == e).any(dim=-1) for e in experts], dim=-1)
        local = torch.where(chosen, flat_scores[:, experts], torch.zeros(()))
        mappings.append(local.reshape(*scores.shape[:-1], len(experts)))
        reduced.append(_chunk_any(local != 0, reduction_size))
    config = topk_tensor.memory_config()
    return (ctx.output(mappings, topk_tensor.dtype, Layout.ROW_MAJOR, config),
            ctx.output(reduced, DataType.BFLOAT16, Layout.ROW_MAJOR, config))


def _chunk_any(active: torch.Tensor, chunk: int) -> torch.Tensor:
    """[N, E] bools -> [1, 1, ceil(N / chunk), E]: 1.0 where any row of the chunk is active."""
    tokens, experts = active.shape
    padded = torch.zeros(math.ceil(tokens / chunk) * chunk, experts, dtype=torch.bool)
    padded[:tokens] = active
    return padded.reshape(-1, chunk, experts).any(dim=1).to(torch.float32).reshape(1, 1, -1, experts)


# --- sparse_matmul -------------------------------------------------------------------------------------
def _sparse_matmul(ctx, input_tensor_a, input_tensor_b, *, sparsity, program_config=None, nnz=None,
                   is_input_a_sparse=False, is_input_b_sparse=True, memory_config=None, dtype=None,
                   compute_kernel_config=None, core_grid=None, output_tile=None, optional_output_tensor=None,
                   global_cb=None, sub_device_id=None):
    fidelity = fidelity_name(compute_kernel_config, MathFidelity.LoFi)

    def one(a, b, mask):
        a, b = numerics.apply_math_fidelity(a.to(torch.float32), b.to(torch.float32), fidelity)
        experts = b.shape[1]
        if is_input_a_sparse:
            active = mask.reshape(a.shape[0], experts) != 0
            return (a @ b[0]) * active[:, :, None, None]
        active = mask.reshape(a.shape[0], a.shape[1], experts) != 0
        blocks = a.unsqueeze(2).unsqueeze(2) @ b[0][None, None, None]  # [A0, A1, 1, E, M, N]
        return blocks * active[:, :, None, :, None, None]

    shards = ctx.per_device(one, input_tensor_a, input_tensor_b, sparsity)
    return ctx.output(shards, dtype or input_tensor_a.dtype, Layout.TILE,
                      memory_config or input_tensor_a.memory_config())


# --- cost and attributes -----------------------------------------------------------------------------
def _sparse_matmul_cost(ctx, inputs, outputs, kwargs):
    a, b, sparsity = inputs[0], inputs[1], kwargs["sparsity"]
    active_blocks = max(int((s != 0).sum()) for s in sparsity.shards)
    m, k, n = a.padded_shape[-2], a.padded_shape[-1], b.padded_shape[-1]
    fidelity = fidelity_name(kwargs.get("compute_kernel_config"), MathFidelity.LoFi)
    ns = cost.matmul_ns(2 * m * k * n * active_blocks, fidelity)
    weight_bytes = (
        b.buffer_bytes() / b.shape[1] * active_blocks
    )  # each active block streams its expert's weights
    return memory_cost([a, sparsity], outputs, ns + cost.memory_ns(weight_bytes, 0), fidelity=fidelity)


def _all_to_all_cost(ctx, inputs, outputs, kwargs):
    n = group_size(ctx.mesh, kwargs.get("cluster_axis"))
    return cost.kernel(cost.ccl_ns(inputs[0].buffer_bytes(), n - 1))


def _move_cost(ctx, inputs, outputs, kwargs):
    return memory_cost(inputs, outputs)


def _sparse_attributes(kwargs, outputs):
    fidelity = fidelity_name(kwargs.get("compute_kernel_config"), MathFidelity.LoFi)
    return {"math_fidelity": f"MathFidelity::{fidelity}"}


_CCL_RECORDED = ("cluster_axis", "num_links", "topology", "memory_config", "subdevice_id")
TABLE = {
    "all_to_all_dispatch": OpDef(
        _dispatch,
        _all_to_all_cost,
        "AllToAllDispatchDeviceOperation",
        ccl_attributes,
        source="ttnn/cpp/ttnn/operations/ccl/all_to_all_dispatch/all_to_all_dispatch_nanobind.cpp",
        recorded=(*_CCL_RECORDED, "output_concat_dim"),
    ),
    "all_to_all_combine": OpDef(
        _combine,
        _all_to_all_cost,
        "AllToAllCombineDeviceOperation",
        ccl_attributes,
        output_arg="output_tensor",
        source="ttnn/cpp/ttnn/operations/ccl/all_to_all_combine/all_to_all_combine_nanobind.cpp",
        recorded=(*_CCL_RECORDED, "local_reduce", "output_shard_dim"),
    ),
    "moe_expert_token_remap": OpDef(
        _token_remap,
        _move_cost,
        "MoeExpertTokenRemapDeviceOperation",
        source="ttnn/cpp/ttnn/operations/data_movement/moe_expert_token_remap/moe_expert_token_remap_nanobind.cpp",
        recorded=("reduction_size",),
    ),
    "sparse_matmul": OpDef(
        _sparse_matmul,
        _sparse_matmul_cost,
        "SparseMatmulDeviceOperation",
        _sparse_attributes,
        output_arg="optional_output_tensor",
        source="ttnn/cpp/ttnn/operations/matmul/matmul_nanobind.cpp",
        recorded=(
            "program_config",
            "nnz",
            "is_input_a_sparse",
            "is_input_b_sparse",
            "memory_config",
            "dtype",
            "compute_kernel_config",
            "core_grid",
            "output_tile",
            "global_cb",
            "sub_device_id",
        ),
    ),
}
