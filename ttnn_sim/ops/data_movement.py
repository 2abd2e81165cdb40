"""Data-movement ops: reshapes, permutes, slicing, concatenation, layout and memory-config changes.

Values never change here except through the output dtype's rounding (typecasting clone / to_layout with a
dtype); the cost is the bytes moved (ops/common.move_cost).
"""

import torch

from ttnn_sim.dispatch import OpDef
from ttnn_sim.ops.common import move_cost
from ttnn_sim.types import DataType, Layout


def _same(ctx, x, shards, *, layout=None, dtype=None, memory_config=None):
    return ctx.output(shards, dtype or x.dtype, layout or x.layout, memory_config or x.memory_config())


def _dims(shape):
    return [int(d) for d in (shape if not isinstance(shape, int) else [shape])]


def _reshape_impl(ctx, x, shape, *args, memory_config=None, **_ignored):
    target = _dims(shape)
    return _same(ctx, x, ctx.per_device(lambda s: s.reshape(target), x), memory_config=memory_config)


def _permute_impl(ctx, x, dims, *, memory_config=None, **_ignored):
    return _same(ctx, x, ctx.per_device(lambda s: s.permute(*dims), x), memory_config=memory_config)


def _transpose_impl(ctx, x, dim0, dim1, *, memory_config=None, **_ignored):
    return _same(ctx, x, ctx.per_device(lambda s: s.transpose(dim0, dim1), x), memory_config=memory_config)


def _squeeze_impl(ctx, x, dim=None, *, memory_config=None, **_ignored):
    fn = (lambda s: s.squeeze()) if dim is None else (lambda s: s.squeeze(dim))
    return _same(ctx, x, ctx.per_device(fn, x), memory_config=memory_config)


def _unsqueeze_impl(ctx, x, dim, *, memory_config=None, **_ignored):
    return _same(ctx, x, ctx.per_device(lambda s: s.unsqueeze(dim), x), memory_config=memory_config)


def _unsqueeze_to_4d_impl(ctx, x, **_ignored):
    return _same(ctx, x, ctx.per_device(lambda s: s.reshape([1] * (4 - s.dim()) + list(s.shape)), x))


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
    if dtype in (DataType.BFLOAT8_B, DataType.BFLOAT4_B) or x.dtype in (DataType.BFLOAT8_B, DataType.BFLOAT4_B):
        if layout is Layout.ROW_MAJOR and dtype in (None, x.dtype) and x.dtype is not DataType.BFLOAT16:
            dtype = DataType.BFLOAT16  # block floats only exist in tiles: untilizing gives bfloat16
    return _same(ctx, x, list(x.shards), layout=layout, dtype=dtype, memory_config=memory_config)


def _to_memory_config_impl(ctx, x, memory_config, dtype=None, **_ignored):
    return _same(ctx, x, list(x.shards), dtype=dtype, memory_config=memory_config)


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
    "reshape": OpDef(_reshape_impl, move_cost, "ReshapeViewDeviceOperation", _attrs()),
    "permute": OpDef(_permute_impl, move_cost, "PermuteDeviceOperation", _attrs("dims")),
    "transpose": OpDef(_transpose_impl, move_cost, "TransposeDeviceOperation", _attrs()),
    "squeeze": OpDef(_squeeze_impl, move_cost, "ReshapeViewDeviceOperation", _attrs()),
    "unsqueeze": OpDef(_unsqueeze_impl, move_cost, "ReshapeViewDeviceOperation", _attrs()),
    "unsqueeze_to_4D": OpDef(_unsqueeze_to_4d_impl, move_cost, "ReshapeViewDeviceOperation", _attrs()),
    "concat": OpDef(_concat_impl, move_cost, "ConcatDeviceOperation", _attrs("dim")),
    "split": OpDef(_split_impl, move_cost, "SliceDeviceOperation", _attrs("dim")),
    "slice": OpDef(_slice_impl, move_cost, "SliceDeviceOperation", _attrs()),
    "repeat": OpDef(_repeat_impl, move_cost, "RepeatDeviceOperation", _attrs()),
    "pad": OpDef(_pad_impl, move_cost, "PadDeviceOperation", _attrs("value")),
    "to_layout": OpDef(_to_layout_impl, move_cost, "TilizeWithValPaddingDeviceOperation", _layout_attrs),
    "to_memory_config": OpDef(_to_memory_config_impl, move_cost, "CopyDeviceOperation", _attrs()),
    "interleaved_to_sharded": OpDef(_to_memory_config_impl, move_cost, "InterleavedToShardedDeviceOperation",
                                    _attrs()),
    "sharded_to_interleaved": OpDef(_to_memory_config_impl, move_cost, "ShardedToInterleavedDeviceOperation",
                                    _attrs()),
    "clone": OpDef(_clone_impl, move_cost, "CloneOperation", _attrs()),
    "embedding": OpDef(_embedding_impl, move_cost, "EmbeddingsDeviceOperation", _attrs()),
    "scatter": OpDef(_scatter_impl, move_cost, "ScatterDeviceOperation", _attrs("dim")),
}
