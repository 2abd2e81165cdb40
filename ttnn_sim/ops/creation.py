"""Creation ops on a device tensor: zeros_like, ones_like, full_like.

tt-metal runs these on device as one fill operation (ttnn/cpp/ttnn/operations/full_like, device operation
FullLikeOperation, attributes fill_value / dtype / layout / memory_config): the output has the input's shape
and, unless given, its dtype, layout and memory config.
"""

import torch

from ttnn_sim.dispatch import OpDef
from ttnn_sim.ops.common import memory_cost


def _fill(ctx, tensor, value, dtype, layout, memory_config):
    shards = [torch.full(tuple(s.shape), float(value)) for s in tensor.shards]
    return ctx.output(
        shards, dtype or tensor.dtype, layout or tensor.layout, memory_config or tensor.memory_config()
    )


def _full_like(ctx, tensor, fill_value, *, dtype=None, layout=None, device=None, memory_config=None,
               optional_tensor=None):
    return _fill(ctx, tensor, fill_value, dtype, layout, memory_config)


def _zeros_like(
    ctx, tensor, *, dtype=None, layout=None, device=None, memory_config=None, optional_tensor=None
):
    return _fill(ctx, tensor, 0.0, dtype, layout, memory_config)


def _ones_like(
    ctx, tensor, *, dtype=None, layout=None, device=None, memory_config=None, optional_tensor=None
):
    return _fill(ctx, tensor, 1.0, dtype, layout, memory_config)


def _fill_cost(ctx, inputs, outputs, kwargs):
    return memory_cost([], outputs)  # writes its output, reads nothing


def _attributes(value_of):
    def attributes(kwargs, outputs):
        return {
            "fill_value": value_of(kwargs),
            "dtype": f"DataType::{outputs[0].dtype.name}",
            "layout": f"Layout::{outputs[0].layout.name}",
        }

    return attributes


_SOURCE = "ttnn/cpp/ttnn/operations/creation/creation_nanobind.cpp"
_RECORDED = ("dtype", "layout", "memory_config")
TABLE = {
    "full_like": OpDef(_full_like, _fill_cost, "FullLikeOperation", _attributes(lambda k: k["fill_value"]),
                       output_arg="optional_tensor", source=_SOURCE, recorded=("fill_value", *_RECORDED)),
    "zeros_like": OpDef(_zeros_like, _fill_cost, "FullLikeOperation", _attributes(lambda k: 0.0),
                        output_arg="optional_tensor", source=_SOURCE, recorded=_RECORDED),
    "ones_like": OpDef(_ones_like, _fill_cost, "FullLikeOperation", _attributes(lambda k: 1.0),
                       output_arg="optional_tensor", source=_SOURCE, recorded=_RECORDED),
}
