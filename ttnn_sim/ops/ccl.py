"""Collective ops over the mesh: all_gather, reduce_scatter, all_reduce.

Semantics (ttnn docs for ttnn.all_gather / ttnn.reduce_scatter / ttnn.all_reduce):
- Devices are numbered row-major in the mesh (rows, cols). With ``cluster_axis=0`` a collective runs among the
  devices of one mesh column (same column index, varying row); with ``cluster_axis=1`` among the devices of one
  mesh row; with ``cluster_axis=None`` among all devices of the mesh (in row-major order).
- all_gather(x, dim): every member receives the members' shards concatenated along ``dim`` in group order.
- reduce_scatter(x, dim): the members' shards are summed, split into group-size equal chunks along ``dim``;
  the member at group position g keeps chunk g.
- all_reduce(x): every member receives the sum of the members' shards. tt-metal runs it as a composite
  (ccl/all_reduce/all_reduce.cpp -> experimental/ccl/all_reduce_async/all_reduce_async.cpp): reduce_scatter_minimal_async
  then all_gather_async along the scatter dim, the last dim (counted in tiles for TILE tensors) divisible by the
  group size, searching from the last dim; with no such dim, an all_gather_async of a [1, ...] view along dim 0
  followed by a local sum over it. The simulator issues the same ops, so the profiler shows those rows.
- experimental.all_gather_async / experimental.reduce_scatter_minimal_async: the same results as all_gather /
  reduce_scatter (the "async" refers to fabric and semaphore handling); all_gather_async writes into
  persistent_output_buffer when one is given.
Sums are taken in float32 and rounded once to the output dtype. Topology, num_links, semaphores, sub-devices and
persistent buffers change nothing observable in the sim and are accepted and ignored.
"""

import torch

from ttnn_sim import cost, dispatch
from ttnn_sim.dispatch import OpDef
from ttnn_sim.ops.common import memcfg
from ttnn_sim.types import Topology


def mesh_rows_cols(mesh) -> tuple[int, int]:
    shape = tuple(mesh.shape)
    return (1, shape[0]) if len(shape) == 1 else (shape[0], shape[1])


def cluster_groups(mesh, cluster_axis) -> list[list[int]]:
    """Device indices of each collective group, each in group order (the order results are concatenated in)."""
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


def _output(ctx, tensor, shards, kwargs):
    return ctx.output(shards, tensor.dtype, tensor.layout, memcfg(kwargs, tensor.memory_config()))


def _all_gather(ctx, input_tensor, dim, *, cluster_axis=None, **kwargs):
    shards = _per_group(ctx, input_tensor, cluster_axis, lambda members, _: torch.cat(members, dim=dim), True)
    return _output(ctx, input_tensor, shards, kwargs)


def _reduce_scatter(ctx, input_tensor, dim, *, cluster_axis=None, **kwargs):
    size = group_size(ctx.mesh, cluster_axis)
    if input_tensor.shape[dim] % size:
        raise RuntimeError(f"TT_FATAL: reduce_scatter dim {dim} of size {input_tensor.shape[dim]} "
                           f"is not divisible by the {size} devices of the cluster axis")

    def scatter(members, position):
        return torch.stack(members).sum(0).chunk(size, dim=dim)[position]

    return _output(ctx, input_tensor, _per_group(ctx, input_tensor, cluster_axis, scatter), kwargs)


def _dim_argument(args, dim):
    """The gather/scatter dim of an async CCL, given by keyword or as the first int among the positionals."""
    if dim is not None:
        return dim
    found = [a for a in args if isinstance(a, int) and not isinstance(a, bool)]
    if not found:
        raise RuntimeError("TT_FATAL: the CCL needs a dim")
    return found[0]


def _all_gather_async(ctx, input_tensor, *args, dim=None, cluster_axis=None, **kwargs):
    return _all_gather(ctx, input_tensor, _dim_argument(args, dim), cluster_axis=cluster_axis, **kwargs)


def _reduce_scatter_async(ctx, input_tensor, *args, dim=None, cluster_axis=None, persistent_output_buffers=None,
                          **kwargs):
    return _reduce_scatter(ctx, input_tensor, _dim_argument(args, dim), cluster_axis=cluster_axis, **kwargs)


def scatter_dim(tensor, members: int) -> int | None:
    """tt-metal's finding_scatter_dim: the last dim (in tiles for TILE tensors) divisible by the group size."""
    dims = list(tensor.padded_shape)
    if tensor.layout.name == "TILE":
        dims[-2:] = [d // 32 for d in dims[-2:]]
    for dim in range(len(dims) - 1, -1, -1):
        if dims[dim] % members == 0:
            return dim
    return None


def all_reduce(input_tensor, cluster_axis=None, subdevice_id=None, memory_config=None, num_links=None,
               topology=None, **_ignored):
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


def _attributes(kwargs, outputs, dim_arg=True):
    attrs = {
        "cluster_axis": kwargs.get("cluster_axis"),
        "num_links": kwargs.get("num_links", 1),
        "topology": kwargs.get("topology") or Topology.Linear,
    }
    if dim_arg:
        attrs["dim"] = kwargs.get("dim")
    return attrs


def _dim_attributes(kwargs, outputs):
    return _attributes(kwargs, outputs)


def _async_attributes(kwargs, outputs):
    attrs = _attributes(kwargs, outputs)
    attrs["dim"] = _dim_argument(kwargs.get("args", ()), kwargs.get("dim"))
    return attrs


TABLE = {
    "all_gather": OpDef(_all_gather, _ccl_cost(_gather_bytes, lambda n: n - 1),
                        "AllGatherDeviceOperation", _dim_attributes),
    "reduce_scatter": OpDef(_reduce_scatter, _ccl_cost(_reduce_bytes, lambda n: n - 1),
                            "ReduceScatterDeviceOperation", _dim_attributes),
    "experimental.all_gather_async": OpDef(_all_gather_async, _ccl_cost(_gather_bytes, lambda n: n - 1),
                                           "AllGatherAsyncDeviceOperation", _async_attributes,
                                           output_arg="persistent_output_buffer"),
    "experimental.reduce_scatter_minimal_async": OpDef(_reduce_scatter_async,
                                                       _ccl_cost(_reduce_bytes, lambda n: n - 1),
                                                       "ReduceScatterMinimalAsyncDeviceOperation",
                                                       _async_attributes),
}
COMPOSITES = {"all_reduce": all_reduce}
