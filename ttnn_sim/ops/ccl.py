"""Collective ops over the mesh: all_gather, reduce_scatter, all_reduce.

Semantics (ttnn docs for ttnn.all_gather / ttnn.reduce_scatter / ttnn.all_reduce):
- Devices are numbered row-major in the mesh (rows, cols). With ``cluster_axis=0`` a collective runs among the
  devices of one mesh column (same column index, varying row); with ``cluster_axis=1`` among the devices of
  one mesh row; with ``cluster_axis=None`` among all devices of the mesh (in row-major order).
- all_gather(x, dim): every member receives the members' shards concatenated along ``dim`` in group order.
- reduce_scatter(x, dim): the members' shards are summed, split into group-size equal chunks along ``dim``;
  the member at group position g keeps chunk g.
- all_reduce(x): every member receives the sum of the members' shards. tt-metal runs it as a composite
  (ccl/all_reduce/all_reduce.cpp -> experimental/ccl/all_reduce_async/all_reduce_async.cpp):
  reduce_scatter_minimal_async then all_gather_async along the scatter dim, the last dim (counted in tiles for
  TILE tensors) divisible by the group size, searching from the last dim; with no such dim, an
  all_gather_async of a [1, ...] view along dim 0 followed by a local sum over it. The simulator issues the
  same ops, so the profiler shows those rows.
- experimental.all_gather_async / experimental.reduce_scatter_minimal_async: the same results as all_gather /
  reduce_scatter (the "async" refers to fabric and semaphore handling); all_gather_async writes into
  persistent_output_buffer when one is given.
Sums are taken in float32 and rounded once to the output dtype. Topology, num_links, semaphores and
sub-devices change nothing observable in the sim: they are accepted and recorded, not modelled.
"""

import torch

from ttnn_sim import cost, dispatch
from ttnn_sim.dispatch import OpDef
from ttnn_sim.types import Topology


def mesh_rows_cols(mesh) -> tuple[int, int]:
    shape = tuple(mesh.shape)
    return (1, shape[0]) if len(shape) == 1 else (shape[0], shape[1])


def cluster_groups(mesh, cluster_axis) -> list[list[int]]:
    """Device indices of each collective group, each in group order (the order results are concatenated
    in)."""
    rows, cols = mesh_rows_cols(mesh)
    if cluster_axis is None:
        return [list(range(rows * cols))]
    if cluster_axis == 0:
        return [[r * cols + c for r in range(rows)] for c in range(cols)]
    if cluster_axis == 1:
        return [[r * cols + c for c in range(cols)] for r in range(rows)]
    raise RuntimeError(f"TT_FATAL: cluster_axis must be 0, 1 or None, got {cluster_axis}")


def group_size(mesh, cluster_axis) -> int:
    return len(cluster_groups(mesh, cluster_axis)[0])


def _per_group(ctx, tensor, cluster_axis, combine, same_for_all=False) -> list[torch.Tensor]:
    """combine(list of the group's float32 shards, position in group) -> the shard of that member.

    same_for_all: the result does not depend on the position (gather, all-reduce), so it is computed once per
    group, and once for groups whose members hold the same (replicated) shards."""
    results = [None] * ctx.num_devices
    done = {}
    for group in cluster_groups(ctx.mesh, cluster_axis):
        key = tuple(id(tensor.shards[d]) for d in group)
        members = None
        for position, device in enumerate(group):
            shared = (key, None if same_for_all else position)
            if shared not in done or not dispatch.SHARE_REPLICATED:
                members = members or [tensor.shards[d].to(torch.float32) for d in group]
                done[shared] = combine(members, position)
            results[device] = done[shared]
    return results


def _output(ctx, tensor, shards, memory_config):
    return ctx.output(shards, tensor.dtype, tensor.layout, memory_config or tensor.memory_config())


def _gathered(ctx, input_tensor, dim, cluster_axis, memory_config):
    shards = _per_group(ctx, input_tensor, cluster_axis, lambda members, _: torch.cat(members, dim=dim), True)
    return _output(ctx, input_tensor, shards, memory_config)


def _scattered(ctx, input_tensor, dim, cluster_axis, memory_config):
    size = group_size(ctx.mesh, cluster_axis)
    if input_tensor.shape[dim] % size:
        raise RuntimeError(f"TT_FATAL: reduce_scatter dim {dim} of size {input_tensor.shape[dim]} "
                           f"is not divisible by the {size} devices of the cluster axis")

    def scatter(members, position):
        return torch.stack(members).sum(0).chunk(size, dim=dim)[position]

    return _output(ctx, input_tensor, _per_group(ctx, input_tensor, cluster_axis, scatter), memory_config)


# Sub-devices, links, topology, semaphores and the async CCLs' tuning knobs change nothing observable in the
# sim: they are accepted (and recorded where tt-metal records them) but not modelled.
def _all_gather(ctx, input_tensor, dim, *, cluster_axis=None, subdevice_id=None, memory_config=None,
                output_tensor=None, num_links=None, topology=None):
    return _gathered(ctx, input_tensor, dim, cluster_axis, memory_config)


def _reduce_scatter(ctx, input_tensor, dim, *, cluster_axis=None, subdevice_id=None, memory_config=None,
                    intermediate_memory_config=None, output_tensor=None, num_links=None, topology=None):
    return _scattered(ctx, input_tensor, dim, cluster_axis, memory_config)


def async_dim(named) -> int:
    """The gather / scatter dim of an async CCL. tt-metal binds two overloads, (input_tensor, dim, semaphore)
    and (input_tensor, persistent_output_buffer(s), dim, semaphore): an int in the buffer's place is the
    dim."""
    buffer = named.get("persistent_output_buffer", named.get("persistent_output_buffers"))
    dim = buffer if isinstance(buffer, int) and not isinstance(buffer, bool) else named.get("dim")
    if dim is None:
        raise TypeError("ttnn.experimental CCL: missing a required argument: 'dim'")
    return dim


def _all_gather_async(
    ctx,
    input_tensor,
    persistent_output_buffer=None,
    dim=None,
    multi_device_global_semaphore=None,
    *,
    num_links=None,
    memory_config=None,
    topology=Topology.Ring,
    subdevice_id=None,
    cluster_axis=None,
    use_optimal_ccl_for_llama=False,
    use_broadcast=False,
    barrier_semaphore=None,
    sub_core_grids=None,
    chunks_per_sync=None,
    num_workers_per_link=None,
    num_buffers_per_channel=None,
):
    named = {"persistent_output_buffer": persistent_output_buffer, "dim": dim}
    return _gathered(ctx, input_tensor, async_dim(named), cluster_axis, memory_config)


def _reduce_scatter_async(
    ctx,
    input_tensor,
    persistent_output_buffers=None,
    dim=None,
    multi_device_global_semaphore=None,
    *,
    barrier_semaphore=None,
    num_links=1,
    memory_config=None,
    intermediate_memory_config=None,
    topology=Topology.Ring,
    subdevice_id=None,
    cluster_axis=None,
    chunks_per_sync=None,
    num_workers_per_link=None,
    num_buffers_per_channel=None,
    compute_kernel_config=None,
):
    named = {"persistent_output_buffers": persistent_output_buffers, "dim": dim}
    return _scattered(ctx, input_tensor, async_dim(named), cluster_axis, memory_config)


def scatter_dim(tensor, members: int) -> int | None:
    """tt-metal's finding_scatter_dim: the last dim (in tiles for TILE tensors) divisible by the group
    size."""
    dims = list(tensor.padded_shape)
    if tensor.layout.name == "TILE":
        dims[-2:] = [d // 32 for d in dims[-2:]]
    for dim in range(len(dims) - 1, -1, -1):
        if dims[dim] % members == 0:
            return dim
    return None


def all_reduce(input_tensor, *, cluster_axis=None, subdevice_id=None, memory_config=None, num_links=None,
               topology=None):
    """The composite tt-metal runs for ttnn.all_reduce (module docstring); the result is the group sum."""
    from ttnn_sim import api

    ccl = {"cluster_axis": cluster_axis, "memory_config": memory_config, "num_links": num_links,
           "topology": topology}
    members = group_size(input_tensor.device(), cluster_axis)
    dim = scatter_dim(input_tensor, members)
    if dim is not None:
        scattered = api.experimental.reduce_scatter_minimal_async(input_tensor, dim=dim, **ccl)
        gathered = api.experimental.all_gather_async(scattered, dim=dim, **ccl)
        scattered.deallocate(True)
        return gathered
    stacked = api.reshape(input_tensor, [1, *input_tensor.shape])
    gathered = api.experimental.all_gather_async(stacked, dim=0, **ccl)
    summed = api.sum(gathered, 0, keepdim=True, memory_config=memory_config)
    gathered.deallocate(True)
    return api.reshape(summed, list(input_tensor.shape))


# --- cost and profiler attributes ----------------------------------------------------------------
def _ccl_cost(bytes_of, hops_of):
    """Ethernet time: bytes_of(inputs, outputs, n) bytes per device over hops_of(n) hops in a group of n."""

    def op_cost(ctx, inputs, outputs, kwargs):
        n = group_size(ctx.mesh, kwargs.get("cluster_axis"))
        if n == 1:
            return cost.kernel(0)
        return cost.kernel(cost.ccl_ns(bytes_of(inputs, outputs, n), hops_of(n)))

    return op_cost


def _gather_bytes(inputs, outputs, n):
    return inputs[0].buffer_bytes()


def _reduce_bytes(inputs, outputs, n):
    return inputs[0].buffer_bytes() / n  # ring reduce: each hop moves one chunk


def ccl_attributes(kwargs, outputs):
    """What tt-metal shows for links and topology the caller left unset."""
    return {"num_links": kwargs.get("num_links") or 1, "topology": kwargs.get("topology") or Topology.Linear}


def _async_attributes(kwargs, outputs):
    return {**ccl_attributes(kwargs, outputs), "dim": async_dim(kwargs)}


_CCL = "ttnn/cpp/ttnn/operations/ccl"
_ASYNC = "ttnn/cpp/ttnn/operations/experimental/ccl"
_RECORDED = ("dim", "cluster_axis", "num_links", "topology", "memory_config", "subdevice_id")
TABLE = {
    "all_gather": OpDef(
        _all_gather,
        _ccl_cost(_gather_bytes, lambda n: n - 1),
        "AllGatherDeviceOperation",
        ccl_attributes,
        output_arg="output_tensor",
        source=f"{_CCL}/all_gather/all_gather_nanobind.cpp",
        recorded=_RECORDED,
    ),
    "reduce_scatter": OpDef(
        _reduce_scatter,
        _ccl_cost(_reduce_bytes, lambda n: n - 1),
        "ReduceScatterDeviceOperation",
        ccl_attributes,
        output_arg="output_tensor",
        source=f"{_CCL}/reduce_scatter/reduce_scatter_nanobind.cpp",
        recorded=(*_RECORDED, "intermediate_memory_config"),
    ),
    "experimental.all_gather_async": OpDef(
        _all_gather_async,
        _ccl_cost(_gather_bytes, lambda n: n - 1),
        "AllGatherAsyncDeviceOperation",
        _async_attributes,
        output_arg="persistent_output_buffer",
        source=f"{_ASYNC}/all_gather_async/all_gather_async_nanobind.cpp",
        recorded=(
            *_RECORDED[1:],
            "use_optimal_ccl_for_llama",
            "chunks_per_sync",
            "num_workers_per_link",
            "num_buffers_per_channel",
        ),
    ),
    "experimental.reduce_scatter_minimal_async": OpDef(
        _reduce_scatter_async,
        _ccl_cost(_reduce_bytes, lambda n: n - 1),
        "ReduceScatterMinimalAsyncDeviceOperation",
        _async_attributes,
        source=f"{_ASYNC}/reduce_scatter_minimal_async/reduce_scatter_minimal_async_nanobind.cpp",
        recorded=(
            *_RECORDED[1:],
            "intermediate_memory_config",
            "chunks_per_sync",
            "num_workers_per_link",
            "num_buffers_per_channel",
            "compute_kernel_config",
        ),
    ),
}
COMPOSITES = {"all_reduce": all_reduce}
