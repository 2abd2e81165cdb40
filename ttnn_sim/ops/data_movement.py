"""Data-movement ops: reshapes, permutes, slicing, concatenation, layout and memory-config changes.

Values never change here except through the output dtype's rounding (typecasting clone / to_layout with a
dtype); the cost is the bytes moved (ops/common.move_cost).
"""

import math

import torch

from ttnn_sim.dispatch import OpDef
from ttnn_sim.ops.common import move_cost
from ttnn_sim.types import DRAM_MEMORY_CONFIG, DataType, Layout

TILE = 32


def _same(ctx, x, shards, *, layout=None, dtype=None, memory_config=None):
    if ctx.as_view:
        return x.view(shards)
    return ctx.output(shards, dtype or x.dtype, layout or x.layout, memory_config or x.memory_config())


def _last_two(shape) -> tuple[int, int]:
    dims = [1, 1, *shape]
    return dims[-2], dims[-1]


def reshape_is_view(x, target, memory_config=None) -> bool:
    """tt-metal's rule (reshape_view/reshape.cpp): a reshape is a view, with no device op, when the last dim
    stays, the memory config keeps its sharding and buffer kind, and either the tensor is row-major, the
    second-last dim stays, or both second-last dims are whole tiles (no padding rows move)."""
    config = memory_config or x.memory_config()
    height, width = _last_two(x.shape)
    new_height, new_width = _last_two(target)
    same_place = (config.is_sharded() == x.memory_config().is_sharded()
                  and config.buffer_type == x.memory_config().buffer_type)
    rows_stay = (x.layout is Layout.ROW_MAJOR or height == new_height
                 or (height % TILE == 0 and new_height % TILE == 0))
    return (list(x.shape) == list(target)) or (width == new_width and same_place and rows_stay)


def _inferred(x, shape) -> list[int]:
    dims = _dims(shape)
    if -1 in dims:
        known = x.shape.volume() // -math.prod(dims)
        dims = [known if d == -1 else d for d in dims]
    return dims


def _squeezed(shape, dim) -> list[int]:
    dims = list(shape)
    if dim is None:
        return [d for d in dims if d != 1]
    dim = dim % len(dims)
    return dims[:dim] + dims[dim + 1:] if dims[dim] == 1 else dims


def _unsqueezed(shape, dim) -> list[int]:
    dims = list(shape)
    dim = dim % (len(dims) + 1)
    return dims[:dim] + [1] + dims[dim:]


def _view_when(target_of):
    """OpDef.view for a reshape-like op whose target shape is target_of(named arguments)."""
    return lambda named: reshape_is_view(_first_tensor(named), target_of(named), named.get("memory_config"))


def _first_tensor(named):
    """The op's input: its first parameter (input_tensor, or `tensor` for ttnn's core functions)."""
    return next(iter(named.values()))


def _tile_aligned(shape) -> bool:
    height, width = _last_two(shape)
    return height % TILE == 0 and width % TILE == 0


def _to_layout_code(named) -> str:
    """tt-metal's to_layout (core/to_layout/to_layout_op.cpp): untilize / tilize when no padding changes, the
    with-(un)padding variants otherwise."""
    aligned = _tile_aligned(named["tensor"].shape)
    if named["layout"] is Layout.ROW_MAJOR:
        return "UntilizeDeviceOperation" if aligned else "UntilizeWithUnpaddingDeviceOperation"
    return "TilizeDeviceOperation" if aligned else "TilizeWithValPaddingDeviceOperation"


def _dims(shape):
    return [int(d) for d in (shape if not isinstance(shape, int) else [shape])]


def _reshape_impl(ctx, input_tensor, shape, padded_shape=None, *, memory_config=None, pad_value=None,
                  recreate_mapping_tensor=False, sub_core_grids=None):
    target = _inferred(input_tensor, shape)
    return _same(ctx, input_tensor, ctx.per_device(lambda s: s.reshape(target), input_tensor),
                 memory_config=memory_config)


def _permute_impl(ctx, input_tensor, dims, *, memory_config=None, pad_value=0.0):
    return _same(ctx, input_tensor, ctx.per_device(lambda s: s.permute(*dims), input_tensor),
                 memory_config=memory_config)


def _transpose_impl(ctx, input_tensor, dim1, dim2, *, memory_config=None, pad_value=0.0):
    return _same(ctx, input_tensor, ctx.per_device(lambda s: s.transpose(dim1, dim2), input_tensor),
                 memory_config=memory_config)


def _squeeze_impl(ctx, input_tensor, dim=None):
    target = _squeezed(input_tensor.shape, dim)
    return _same(ctx, input_tensor, ctx.per_device(lambda s: s.reshape(target), input_tensor))


def _unsqueeze_impl(ctx, input_tensor, dim):
    target = _unsqueezed(input_tensor.shape, dim)
    return _same(ctx, input_tensor, ctx.per_device(lambda s: s.reshape(target), input_tensor))


def _to_4d(shape) -> list[int]:
    return [1] * (4 - len(shape)) + list(shape)


def _unsqueeze_to_4d_impl(ctx, tensor):
    return _same(ctx, tensor, ctx.per_device(lambda s: s.reshape(_to_4d(s.shape)), tensor))


def _concat_impl(
    ctx, tensors, dim=0, *, memory_config=None, output_tensor=None, groups=1, sub_core_grids=None
):
    first = tensors[0]
    shards = [torch.cat([t.shards[i] for t in tensors], dim=dim) for i in range(ctx.num_devices)]
    return _same(ctx, first, shards, memory_config=memory_config)


def _split_impl(ctx, input_tensor, split_size, dim=0, *, memory_config=None):
    pieces = ctx.per_device(lambda s: torch.split(s, split_size, dim=dim), input_tensor)
    return tuple(_same(ctx, input_tensor, [p[j] for p in pieces], memory_config=memory_config)
                 for j in range(len(pieces[0])))


def _slice_impl(ctx, input_tensor, starts, ends, steps=None, *, memory_config=None, output_tensor=None,
                pad_value=None, sub_core_grids=None):
    steps = steps or [1] * len(starts)
    index = tuple(slice(int(a), int(b), int(c)) for a, b, c in zip(starts, ends, steps, strict=True))
    return _same(
        ctx, input_tensor, ctx.per_device(lambda s: s[index], input_tensor), memory_config=memory_config
    )


def _repeat_impl(ctx, input_tensor, repeat_dims, *, memory_config=None):
    reps = _dims(repeat_dims)
    return _same(ctx, input_tensor, ctx.per_device(lambda s: s.repeat(*reps), input_tensor),
                 memory_config=memory_config)


def _pad_impl(
    ctx, input_tensor, padding, value, *, use_multicore=True, memory_config=None, sub_core_grids=None
):
    # ttnn: padding = [(before, after) per dim] from the first dim; torch wants last dim first, flattened.
    flat = [int(v) for pair in reversed(list(padding)) for v in pair]
    shards = ctx.per_device(lambda s: torch.nn.functional.pad(s, flat, value=value), input_tensor)
    return _same(ctx, input_tensor, shards, memory_config=memory_config)


def _to_layout_impl(ctx, tensor, layout, dtype=None, memory_config=None, sub_core_grids=None):
    if ctx.as_view:
        return tensor.view(list(tensor.shards))  # already in that layout: ttnn returns the tensor unchanged
    block_floats = (DataType.BFLOAT8_B, DataType.BFLOAT4_B)
    if dtype in block_floats or tensor.dtype in block_floats:
        if (
            layout is Layout.ROW_MAJOR
            and dtype in (None, tensor.dtype)
            and tensor.dtype is not DataType.BFLOAT16
        ):
            dtype = DataType.BFLOAT16  # block floats only exist in tiles: untilizing gives bfloat16
    return _same(ctx, tensor, list(tensor.shards), layout=layout, dtype=dtype, memory_config=memory_config)


def _to_memory_config_impl(ctx, tensor, memory_config, dtype=None, output_tensor=None):
    return _moved(ctx, tensor, memory_config, dtype)


def _interleaved_to_sharded_impl(ctx, input_tensor, sharded_memory_config, output_dtype=None, *,
                                 keep_l1_aligned=False):
    return _moved(ctx, input_tensor, sharded_memory_config, output_dtype)


def _sharded_to_interleaved_impl(ctx, input_tensor, memory_config=None, output_dtype=None, *,
                                 is_l1_aligned=False):
    return _moved(ctx, input_tensor, memory_config or DRAM_MEMORY_CONFIG, output_dtype)


def _moved(ctx, tensor, memory_config, dtype):
    if ctx.as_view:
        return tensor.view(list(tensor.shards))  # already there: ttnn returns the tensor itself
    return _same(ctx, tensor, list(tensor.shards), dtype=dtype, memory_config=memory_config)


def _to_memory_config_code(named) -> str:
    """tt-metal's to_memory_config (core/to_memory_config/to_memory_config_op.hpp): reshard between sharded
    configs, interleaved<->sharded conversions, a copy between interleaved buffers."""
    source, target = named["tensor"].memory_config(), named["memory_config"]
    if target.is_sharded():
        return "ReshardDeviceOperation" if source.is_sharded() else "InterleavedToShardedDeviceOperation"
    return "ShardedToInterleavedDeviceOperation" if source.is_sharded() else "CopyDeviceOperation"


def _clone_impl(ctx, input, *, dtype=None, memory_config=None, compute_kernel_config=None):  # noqa: A002
    return _same(ctx, input, [s.clone() for s in input.shards], dtype=dtype, memory_config=memory_config)


def _embedding_impl(
    ctx,
    input_tensor,
    weight,
    *,
    padding_idx=None,
    layout=Layout.ROW_MAJOR,
    embeddings_type=None,
    dtype=None,
    output_tensor=None,
    memory_config=None,
):
    shards = ctx.per_device(lambda i, w: w.reshape(-1, w.shape[-1])[i.to(torch.int64)], input_tensor, weight)
    return ctx.output(shards, dtype or weight.dtype, layout or Layout.ROW_MAJOR, memory_config)


def _scatter_impl(ctx, input, dim, index, src, *, memory_config=None, opt_reduction=None,  # noqa: A002
                  sub_core_grids=None):
    shards = ctx.per_device(
        lambda s, i, v: s.scatter(dim, i.to(torch.int64), v.to(s.dtype)), input, index, src
    )
    return _same(ctx, input, shards, memory_config=memory_config)


def _layout_attrs(kwargs, outputs):
    return {"output_layout": f"Layout::{outputs[0].layout.name}"}


_OPS = "ttnn/cpp/ttnn/operations"
_MOVEMENT = f"{_OPS}/data_movement"
_CORE = f"{_OPS}/core/core_nanobind.cpp"
TABLE = {
    "reshape": OpDef(
        _reshape_impl,
        move_cost,
        "ReshapeViewDeviceOperation",
        view=_view_when(lambda n: _inferred(n["input_tensor"], n["shape"])),
        source=f"{_MOVEMENT}/reshape_view/reshape_nanobind.cpp",
        recorded=(
            "shape",
            "padded_shape",
            "memory_config",
            "pad_value",
            "recreate_mapping_tensor",
            "sub_core_grids",
        ),
    ),
    "permute": OpDef(
        _permute_impl,
        move_cost,
        "PermuteDeviceOperation",
        source=f"{_MOVEMENT}/permute/permute_nanobind.cpp",
        recorded=("dims", "memory_config", "pad_value"),
    ),
    "transpose": OpDef(
        _transpose_impl,
        move_cost,
        "TransposeDeviceOperation",
        source=f"{_MOVEMENT}/transpose/transpose_nanobind.cpp",
        recorded=("dim1", "dim2", "memory_config", "pad_value"),
    ),
    "squeeze": OpDef(
        _squeeze_impl,
        move_cost,
        "ReshapeViewDeviceOperation",
        view=_view_when(lambda n: _squeezed(n["input_tensor"].shape, n["dim"])),
        source=f"{_MOVEMENT}/squeeze/squeeze_nanobind.cpp",
        recorded=("dim",),
    ),
    "unsqueeze": OpDef(
        _unsqueeze_impl,
        move_cost,
        "ReshapeViewDeviceOperation",
        view=_view_when(lambda n: _unsqueezed(n["input_tensor"].shape, n["dim"])),
        source=f"{_MOVEMENT}/unsqueeze/unsqueeze_nanobind.cpp",
        recorded=("dim",),
    ),
    "unsqueeze_to_4D": OpDef(
        _unsqueeze_to_4d_impl,
        move_cost,
        "ReshapeViewDeviceOperation",
        view=_view_when(lambda n: _to_4d(n["tensor"].shape)),
        source=_CORE,
    ),
    "concat": OpDef(
        _concat_impl,
        move_cost,
        "ConcatDeviceOperation",
        output_arg="output_tensor",
        source=f"{_MOVEMENT}/concat/concat_nanobind.cpp",
        recorded=("dim", "memory_config", "groups", "sub_core_grids"),
    ),
    "split": OpDef(
        _split_impl,
        move_cost,
        "SliceDeviceOperation",
        source=f"{_MOVEMENT}/split/split_nanobind.cpp",
        recorded=("split_size", "dim", "memory_config"),
    ),
    "slice": OpDef(
        _slice_impl,
        move_cost,
        "SliceDeviceOperation",
        output_arg="output_tensor",
        source=f"{_MOVEMENT}/slice/slice_nanobind.cpp",
        recorded=("starts", "ends", "steps", "memory_config", "pad_value", "sub_core_grids"),
    ),
    "repeat": OpDef(
        _repeat_impl,
        move_cost,
        "RepeatDeviceOperation",
        source=f"{_MOVEMENT}/repeat/repeat_nanobind.cpp",
        recorded=("repeat_dims", "memory_config"),
    ),
    "pad": OpDef(
        _pad_impl,
        move_cost,
        "PadDeviceOperation",
        source=f"{_MOVEMENT}/pad/pad_nanobind.cpp",
        recorded=("padding", "value", "use_multicore", "memory_config", "sub_core_grids"),
    ),
    "to_layout": OpDef(
        _to_layout_impl,
        move_cost,
        _to_layout_code,
        _layout_attrs,
        view=lambda named: named["tensor"].layout is named["layout"],
        op_codes=(
            "TilizeDeviceOperation",
            "TilizeWithValPaddingDeviceOperation",
            "UntilizeDeviceOperation",
            "UntilizeWithUnpaddingDeviceOperation",
        ),
        source=_CORE,
        recorded=("dtype", "memory_config", "sub_core_grids"),
    ),
    "to_memory_config": OpDef(
        _to_memory_config_impl,
        move_cost,
        _to_memory_config_code,
        view=lambda named: named["tensor"].memory_config() == named["memory_config"],
        op_codes=(
            "CopyDeviceOperation",
            "InterleavedToShardedDeviceOperation",
            "ShardedToInterleavedDeviceOperation",
            "ReshardDeviceOperation",
        ),
        output_arg="output_tensor",
        source=_CORE,
        recorded=("memory_config", "dtype"),
    ),
    "interleaved_to_sharded": OpDef(
        _interleaved_to_sharded_impl,
        move_cost,
        "InterleavedToShardedDeviceOperation",
        source=f"{_MOVEMENT}/sharded/interleaved_to_sharded/interleaved_to_sharded_nanobind.cpp",
        recorded=("sharded_memory_config", "output_dtype", "keep_l1_aligned"),
    ),
    "sharded_to_interleaved": OpDef(
        _sharded_to_interleaved_impl,
        move_cost,
        "ShardedToInterleavedDeviceOperation",
        source=f"{_MOVEMENT}/sharded/sharded_to_interleaved/sharded_to_interleaved_nanobind.cpp",
        recorded=("memory_config", "output_dtype", "is_l1_aligned"),
    ),
    "clone": OpDef(
        _clone_impl,
        move_cost,
        "CloneOperation",
        source=f"{_MOVEMENT}/clone/clone_nanobind.cpp",
        recorded=("dtype", "memory_config", "compute_kernel_config"),
    ),
    "embedding": OpDef(
        _embedding_impl,
        move_cost,
        "EmbeddingsDeviceOperation",
        output_arg="output_tensor",
        source=f"{_OPS}/embedding/embedding_nanobind.cpp",
        recorded=("padding_idx", "layout", "embeddings_type", "dtype", "memory_config"),
    ),
    "scatter": OpDef(
        _scatter_impl,
        move_cost,
        "ScatterDeviceOperation",
        source=f"{_MOVEMENT}/scatter/scatter_nanobind.cpp",
        recorded=("dim", "memory_config", "opt_reduction", "sub_core_grids"),
    ),
}
