"""Data-movement ops: reshapes, permutes, slicing, concatenation, layout and memory-config changes.

Values never change here except through the output dtype's rounding (typecasting clone / to_layout with a
dtype); the cost is the bytes moved (ops/common.move_cost).
"""

import math

import torch

from ttnn_sim.dispatch import OpDef
from ttnn_sim.ops.common import move_cost
from ttnn_sim.types import DataType, Layout

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
    return lambda named: reshape_is_view(named["x"], target_of(named), named.get("memory_config"))


def _tile_aligned(shape) -> bool:
    height, width = _last_two(shape)
    return height % TILE == 0 and width % TILE == 0


def _to_layout_code(named) -> str:
    """tt-metal's to_layout (core/to_layout/to_layout_op.cpp): untilize / tilize when no padding changes, the
    with-(un)padding variants otherwise."""
    aligned = _tile_aligned(named["x"].shape)
    if named["layout"] is Layout.ROW_MAJOR:
        return "UntilizeDeviceOperation" if aligned else "UntilizeWithUnpaddingDeviceOperation"
    return "TilizeDeviceOperation" if aligned else "TilizeWithValPaddingDeviceOperation"


def _dims(shape):
    return [int(d) for d in (shape if not isinstance(shape, int) else [shape])]


def _reshape_impl(ctx, x, shape, *args, memory_config=None, **_ignored):
    target = _inferred(x, shape)
    return _same(ctx, x, ctx.per_device(lambda s: s.reshape(target), x), memory_config=memory_config)


def _permute_impl(ctx, x, dims, *, memory_config=None, **_ignored):
    return _same(ctx, x, ctx.per_device(lambda s: s.permute(*dims), x), memory_config=memory_config)


def _transpose_impl(ctx, x, dim0, dim1, *, memory_config=None, **_ignored):
    return _same(ctx, x, ctx.per_device(lambda s: s.transpose(dim0, dim1), x), memory_config=memory_config)


def _squeeze_impl(ctx, x, dim=None, *, memory_config=None, **_ignored):
    target = _squeezed(x.shape, dim)
    return _same(ctx, x, ctx.per_device(lambda s: s.reshape(target), x), memory_config=memory_config)


def _unsqueeze_impl(ctx, x, dim, *, memory_config=None, **_ignored):
    target = _unsqueezed(x.shape, dim)
    return _same(ctx, x, ctx.per_device(lambda s: s.reshape(target), x), memory_config=memory_config)


def _to_4d(shape) -> list[int]:
    return [1] * (4 - len(shape)) + list(shape)


def _unsqueeze_to_4d_impl(ctx, x, **_ignored):
    return _same(ctx, x, ctx.per_device(lambda s: s.reshape(_to_4d(s.shape)), x))


def _concat_impl(ctx, tensors, dim=0, *, memory_config=None, **_ignored):
    first = tensors[0]
    shards = [torch.cat([t.shards[i] for t in tensors], dim=dim) for i in range(ctx.num_devices)]
    return _same(ctx, first, shards, memory_config=memory_config)


def _split_impl(ctx, x, split_size, dim=0, *, memory_config=None, **_ignored):
    pieces = ctx.per_device(lambda s: torch.split(s, split_size, dim=dim), x)
    return tuple(_same(ctx, x, [p[j] for p in pieces], memory_config=memory_config) for j in range(len(pieces[0])))


def _slice_impl(ctx, x, starts, ends, steps=None, *, memory_config=None, **_ignored):
    steps = steps or [1] * len(starts)
    index = tuple(slice(int(a), int(b), int(c)) for a, b, c in zip(starts, ends, steps, strict=True))
    return _same(ctx, x, ctx.per_device(lambda s: s[index], x), memory_config=memory_config)


def _repeat_impl(ctx, x, repeats, *, memory_config=None, **_ignored):
    reps = _dims(repeats)
    return _same(ctx, x, ctx.per_device(lambda s: s.repeat(*reps), x), memory_config=memory_config)


def _pad_impl(ctx, x, padding, value=0.0, *, memory_config=None, **_ignored):
    # ttnn: padding = [(before, after) per dim] from the first dim; torch wants last dim first, flattened.
    flat = [int(v) for pair in reversed(list(padding)) for v in pair]
    return _same(ctx, x, ctx.per_device(lambda s: torch.nn.functional.pad(s, flat, value=value), x),
                 memory_config=memory_config)


def _to_layout_impl(ctx, x, layout, *, dtype=None, memory_config=None, **_ignored):
    if ctx.as_view:
        return x.view(list(x.shards))  # already in that layout: ttnn returns the tensor unchanged
    if dtype in (DataType.BFLOAT8_B, DataType.BFLOAT4_B) or x.dtype in (DataType.BFLOAT8_B, DataType.BFLOAT4_B):
        if layout is Layout.ROW_MAJOR and dtype in (None, x.dtype) and x.dtype is not DataType.BFLOAT16:
            dtype = DataType.BFLOAT16  # block floats only exist in tiles: untilizing gives bfloat16
    return _same(ctx, x, list(x.shards), layout=layout, dtype=dtype, memory_config=memory_config)


def _to_memory_config_impl(ctx, x, memory_config, dtype=None, **_ignored):
    if ctx.as_view:
        return x.view(list(x.shards))  # already there: ttnn returns the tensor itself
    return _same(ctx, x, list(x.shards), dtype=dtype, memory_config=memory_config)


def _to_memory_config_code(named) -> str:
    """tt-metal's to_memory_config (core/to_memory_config/to_memory_config_op.hpp): reshard between sharded
    configs, interleaved<->sharded conversions, a copy between interleaved buffers."""
    source, target = named["x"].memory_config(), named["memory_config"]
    if target.is_sharded():
        return "ReshardDeviceOperation" if source.is_sharded() else "InterleavedToShardedDeviceOperation"
    return "ShardedToInterleavedDeviceOperation" if source.is_sharded() else "CopyDeviceOperation"


def _clone_impl(ctx, x, *, dtype=None, memory_config=None, **_ignored):
    return _same(ctx, x, [s.clone() for s in x.shards], dtype=dtype, memory_config=memory_config)


def _embedding_impl(ctx, ids, weight, *, layout=None, dtype=None, memory_config=None, **_ignored):
    shards = ctx.per_device(lambda i, w: w.reshape(-1, w.shape[-1])[i.to(torch.int64)], ids, weight)
    return ctx.output(shards, dtype or weight.dtype, layout or Layout.ROW_MAJOR, memory_config)


def _scatter_impl(ctx, x, dim, index, src, *, memory_config=None, **_ignored):
    shards = ctx.per_device(lambda s, i, v: s.scatter(dim, i.to(torch.int64), v.to(s.dtype)), x, index, src)
    return _same(ctx, x, shards, memory_config=memory_config)


def _attrs(*names):
    return lambda kwargs, outputs: {n: kwargs[n] for n in names if n in kwargs}


def _layout_attrs(kwargs, outputs):
    return {"output_layout": f"Layout::{outputs[0].layout.name}"}


TABLE = {
    "reshape": OpDef(_reshape_impl, move_cost, "ReshapeViewDeviceOperation", _attrs(),
                     view=_view_when(lambda n: _inferred(n["x"], n["shape"]))),
    "permute": OpDef(_permute_impl, move_cost, "PermuteDeviceOperation", _attrs("dims")),
    "transpose": OpDef(_transpose_impl, move_cost, "TransposeDeviceOperation", _attrs()),
    "squeeze": OpDef(_squeeze_impl, move_cost, "ReshapeViewDeviceOperation", _attrs(),
                     view=_view_when(lambda n: _squeezed(n["x"].shape, n.get("dim")))),
    "unsqueeze": OpDef(_unsqueeze_impl, move_cost, "ReshapeViewDeviceOperation", _attrs(),
                       view=_view_when(lambda n: _unsqueezed(n["x"].shape, n["dim"]))),
    "unsqueeze_to_4D": OpDef(_unsqueeze_to_4d_impl, move_cost, "ReshapeViewDeviceOperation", _attrs(),
                             view=_view_when(lambda n: _to_4d(n["x"].shape))),
    "concat": OpDef(_concat_impl, move_cost, "ConcatDeviceOperation", _attrs("dim")),
    "split": OpDef(_split_impl, move_cost, "SliceDeviceOperation", _attrs("dim")),
    "slice": OpDef(_slice_impl, move_cost, "SliceDeviceOperation", _attrs()),
    "repeat": OpDef(_repeat_impl, move_cost, "RepeatDeviceOperation", _attrs()),
    "pad": OpDef(_pad_impl, move_cost, "PadDeviceOperation", _attrs("value")),
    "to_layout": OpDef(_to_layout_impl, move_cost, _to_layout_code, _layout_attrs,
                       view=lambda named: named["x"].layout is named["layout"],
                       op_codes=("TilizeDeviceOperation", "TilizeWithValPaddingDeviceOperation",
                                 "UntilizeDeviceOperation", "UntilizeWithUnpaddingDeviceOperation")),
    "to_memory_config": OpDef(_to_memory_config_impl, move_cost, _to_memory_config_code, _attrs(),
                              view=lambda named: named["x"].memory_config() == named["memory_config"],
                              op_codes=("CopyDeviceOperation", "InterleavedToShardedDeviceOperation",
                                        "ShardedToInterleavedDeviceOperation", "ReshardDeviceOperation")),
    "interleaved_to_sharded": OpDef(_to_memory_config_impl, move_cost, "InterleavedToShardedDeviceOperation",
                                    _attrs()),
    "sharded_to_interleaved": OpDef(_to_memory_config_impl, move_cost, "ShardedToInterleavedDeviceOperation",
                                    _attrs()),
    "clone": OpDef(_clone_impl, move_cost, "CloneOperation", _attrs()),
    "embedding": OpDef(_embedding_impl, move_cost, "EmbeddingsDeviceOperation", _attrs()),
    "scatter": OpDef(_scatter_impl, move_cost, "ScatterDeviceOperation", _attrs("dim")),
}
