"""Compute ops: element-wise binary and unary ops, softmax, topk, norms, reductions (matmul/linear:
ttnn_sim/ops/matmul.py).

Results are computed in float32 from the stored (already dtype-rounded) operands and rounded to the
output dtype by ctx.output. Matmul operands pass through numerics.apply_math_fidelity first, so the math
fidelity of `compute_kernel_config` changes accuracy as on hardware. Default fidelity is LoFi, ttnn's
default for matmul when no compute_kernel_config is given.
"""

import inspect

import torch

from ttnn_sim.dispatch import OpDef
from ttnn_sim.ops.common import eltwise_cost
from ttnn_sim.ops.matmul import (
    _MATMUL_RECORDED,
    _MATMUL_SOURCE,
    _as_tensor,
    _f32,
    _linear_impl,
    _matmul_attrs,
    _matmul_cost,
    _matmul_impl,
)
from ttnn_sim.tensor import Tensor
from ttnn_sim.types import DataType


# --- element-wise --------------------------------------------------------------------------------
def _binary_result(ctx, torch_fn, a, b, dtype, memory_config):
    like = a if isinstance(a, Tensor) else b
    shards = ctx.per_device(lambda x, y: torch_fn(_as_tensor(x), _as_tensor(y)), a, b)
    out_dtype = dtype or like.dtype
    if not out_dtype.is_float:
        shards = [s.round() for s in shards]
    return ctx.output(shards, out_dtype, like.layout, memory_config or like.memory_config())


# The activation lists and sub_core_grids of a binary op are accepted and recorded but not applied.
def _binary(torch_fn):
    """add / subtract / multiply (binary_nanobind.cpp, bind_binary_operation)."""

    def impl(ctx, input_tensor_a, input_tensor_b, *, dtype=None, memory_config=None, output_tensor=None,
             activations=None, input_tensor_a_activations=None, input_tensor_b_activations=None,
             use_legacy=None, sub_core_grids=None):
        return _binary_result(ctx, torch_fn, input_tensor_a, input_tensor_b, dtype, memory_config)

    return impl


def _divide_impl(ctx, input_tensor_a, input_tensor_b, *, fast_and_approximate_mode=False, rounding_mode=None,
                 dtype=None, memory_config=None, output_tensor=None, activations=None,
                 input_tensor_a_activations=None, input_tensor_b_activations=None, use_legacy=None,
                 sub_core_grids=None):
    """divide (binary_nanobind.cpp, bind_div): rounding_mode "trunc" / "floor" rounds the quotient."""

    def divided(x, y):
        return torch.div(x, y, rounding_mode=rounding_mode)

    return _binary_result(ctx, divided, input_tensor_a, input_tensor_b, dtype, memory_config)


def _extremum(torch_fn):
    """maximum / minimum (binary_nanobind.cpp, bind_binary_unary_max_operation): no sub_core_grids."""

    def impl(ctx, input_tensor_a, input_tensor_b, *, dtype=None, memory_config=None, output_tensor=None,
             activations=None, input_tensor_a_activations=None, input_tensor_b_activations=None,
             use_legacy=None):
        return _binary_result(ctx, torch_fn, input_tensor_a, input_tensor_b, dtype, memory_config)

    return impl


def _in_place(torch_fn):
    """add_ / subtract_ / multiply_ / divide_ (binary_nanobind.cpp, bind_inplace_operation)."""

    def impl(ctx, input_tensor_a, input_tensor_b, *, sub_core_grids=None):
        return _binary_result(ctx, torch_fn, input_tensor_a, input_tensor_b, None, None)

    return impl


def _unary_result(ctx, x, values, memory_config):
    shards = ctx.per_device(lambda s: values(_f32(s)), x)
    return ctx.output(shards, x.dtype, x.layout, memory_config or x.memory_config())


def _unary(torch_fn):
    """A unary op without parameters (unary_nanobind.cpp, bind_unary_operation)."""

    def impl(ctx, input_tensor, *, memory_config=None, output_tensor=None, sub_core_grids=None):
        return _unary_result(ctx, input_tensor, torch_fn, memory_config)

    return impl


def _approximable(torch_fn):
    """exp / gelu (unary_nanobind.cpp, bind_unary_operation_with_fast_and_approximate_mode)."""

    def impl(ctx, input_tensor, *, fast_and_approximate_mode=False, memory_config=None, output_tensor=None,
             sub_core_grids=None):
        return _unary_result(
            ctx, input_tensor, lambda s: torch_fn(s, fast_and_approximate_mode), memory_config
        )

    return impl


def _clamp_impl(ctx, input_tensor, min=None, max=None, *, memory_config=None, output_tensor=None):  # noqa: A002
    """clamp (unary_composite: ttnn.clamp(input_tensor, min, max)); a bound left open does not clamp."""
    return _unary_result(ctx, input_tensor, lambda s: torch.clamp(s, min=min, max=max), memory_config)


def _gelu(x, fast_and_approximate_mode=False):
    return torch.nn.functional.gelu(x, approximate="tanh" if fast_and_approximate_mode else "none")


def _exp(x, fast_and_approximate_mode=False):
    return torch.exp(x)  # the approximation's error is not modelled


def _isfinite(x):
    return torch.isfinite(x).to(torch.float32)


def _where_impl(ctx, condition, true_value, false_value, *, memory_config=None, output_tensor=None,
                sub_core_grids=None):
    """where (eltwise/ternary/ternary_nanobind.cpp)."""
    like = next(t for t in (true_value, false_value, condition) if isinstance(t, Tensor))
    shards = ctx.per_device(lambda c, x, y: torch.where(_f32(c) != 0, _f32(x), _f32(y)),
                            condition, true_value, false_value)
    return ctx.output(shards, like.dtype, like.layout, memory_config or like.memory_config())


def _typecast_impl(ctx, input_tensor, dtype, *, memory_config=None, output_tensor=None, sub_core_grids=None):
    """typecast (eltwise/unary/unary_nanobind.cpp, bind_typecast)."""
    return ctx.output([_f32(s) for s in input_tensor.shards], dtype, input_tensor.layout,
                      memory_config or input_tensor.memory_config())


# --- softmax / topk / norms / reductions --------------------------------------------------------------
def _softmax(s, dim, numeric_stable):
    """Unstable softmax (the kernel without its max-reduce pass) overflows where exp(x) does."""
    if numeric_stable:
        return torch.softmax(s, dim=dim)
    e = torch.exp(s)
    return e / e.sum(dim=dim, keepdim=True)


def _softmax_impl(ctx, input_tensor, dim=-1, *, memory_config=None, compute_kernel_config=None,
                  numeric_stable=True):
    """softmax (normalization/softmax/softmax_nanobind.cpp)."""
    shards = ctx.per_device(lambda s: _softmax(_f32(s), dim, numeric_stable), input_tensor)
    return ctx.output(shards, input_tensor.dtype, input_tensor.layout,
                      memory_config or input_tensor.memory_config())


def _topk_impl(ctx, input_tensor, k, dim=-1, largest=True, sorted=True, *,  # noqa: A002  (ttnn's name)
               memory_config=None, sub_core_grids=None, indices_tensor=None):
    """topk (reduction/topk/topk_nanobind.cpp)."""
    pairs = ctx.per_device(lambda s: torch.topk(_f32(s), k, dim=dim, largest=largest, sorted=sorted),
                           input_tensor)
    config = memory_config or input_tensor.memory_config()
    values = ctx.output([p.values for p in pairs], input_tensor.dtype, input_tensor.layout, config)
    indices = ctx.output([p.indices for p in pairs], DataType.UINT16, input_tensor.layout, config)
    return values, indices


def _norm(kind):
    """rms_norm / layer_norm (normalization/layernorm/layernorm_nanobind.cpp)."""

    def impl(ctx, input_tensor, *, epsilon=1e-12, weight=None, bias=None, residual_input_tensor=None,
             memory_config=None, program_config=None, compute_kernel_config=None):
        x = input_tensor

        def one(s, w, b, r):
            s = _f32(s) if r is None else _f32(s) + _f32(r)
            if kind == "rms":
                y = s * torch.rsqrt(s.pow(2).mean(-1, keepdim=True) + epsilon)
            else:
                y = torch.nn.functional.layer_norm(s, s.shape[-1:], eps=epsilon)
            if w is not None:
                y = y * _f32(w).reshape(-1)[: y.shape[-1]]
            if b is not None:
                y = y + _f32(b).reshape(-1)[: y.shape[-1]]
            return y

        shards = ctx.per_device(one, x, weight, bias, residual_input_tensor)
        return ctx.output(shards, x.dtype, x.layout, memory_config or x.memory_config())

    return impl


def _reduce(torch_fn):
    """sum / mean / max (reduction/generic/generic_reductions_nanobind.cpp); scalar multiplies the result."""

    def impl(ctx, input_tensor, dim=None, keepdim=False, *, memory_config=None, compute_kernel_config=None,
             scalar=1.0, correction=True, sub_core_grids=None):
        x = input_tensor

        def one(s):
            s = _f32(s)
            if dim is None:
                whole = torch_fn(s.reshape(-1), 0, keepdim=False).reshape([1] * s.dim() if keepdim else [])
                return whole * scalar
            return torch_fn(s, dim, keepdim=keepdim) * scalar

        return ctx.output(ctx.per_device(one, x), x.dtype, x.layout, memory_config or x.memory_config())

    return impl


def _max_values(s, dim, keepdim):
    return torch.amax(s, dim=dim, keepdim=keepdim)


_FLOAT_LIMIT = 3.4028234663852886e38  # a clamp bound left open is float's lowest / max, as in tt-metal


def _binary_attrs(name):
    """BinaryNg's `binary_op_type` and `scalar` (the second operand when it is a number, else
    std::nullopt)."""

    def attrs(kwargs, outputs):
        b = kwargs.get("input_tensor_b")
        scalar = "std::nullopt" if b is None or isinstance(b, Tensor) else repr(float(b))
        return {"binary_op_type": f"BinaryOpType::{name.upper()}", "scalar": scalar}

    return attrs


_BINARY_SOURCE = "ttnn/cpp/ttnn/operations/eltwise/binary/binary_nanobind.cpp"
_UNARY_SOURCE = "ttnn/cpp/ttnn/operations/eltwise/unary/unary_nanobind.cpp"
_BINARY_RECORDED = ("dtype", "memory_config", "activations", "input_tensor_a_activations",
                    "input_tensor_b_activations")
# tt-metal's binary ops: the BinaryNg device operation; `ttnn.sub` / `ttnn.mul` / `ttnn.div` are aliases of
# subtract / multiply / divide; the `_` variants (ttnn.add_) write into their first argument.
_BINARY = {
    "add": (_binary(torch.add), ("add",), _BINARY_RECORDED + ("sub_core_grids",)),
    "subtract": (_binary(torch.sub), ("sub",), _BINARY_RECORDED + ("sub_core_grids",)),
    "multiply": (_binary(torch.mul), ("mul",), _BINARY_RECORDED + ("sub_core_grids",)),
    "divide": (_divide_impl, ("div",), _BINARY_RECORDED + ("sub_core_grids",)),
    "maximum": (_extremum(torch.maximum), (), _BINARY_RECORDED),
    "minimum": (_extremum(torch.minimum), (), _BINARY_RECORDED),
}
_IN_PLACE = {"add": torch.add, "subtract": torch.sub, "multiply": torch.mul, "divide": torch.div}
# name: (impl, cost weight)
_UNARY = {
    "silu": (_unary(torch.nn.functional.silu), 2.0),
    "sigmoid": (_unary(torch.sigmoid), 2.0),
    "gelu": (_approximable(_gelu), 3.0),
    "relu": (_unary(torch.relu), 1.0),
    "exp": (_approximable(_exp), 2.0),
    "neg": (_unary(torch.neg), 1.0),
    "reciprocal": (_unary(torch.reciprocal), 2.0),
    "sqrt": (_unary(torch.sqrt), 2.0),
    "rsqrt": (_unary(torch.rsqrt), 2.0),
    "clamp": (_clamp_impl, 1.0),
    "isfinite": (_unary(_isfinite), 1.0),
}


def _binary_ops() -> dict:
    table = {}
    for name, (impl, aliases, recorded) in _BINARY.items():
        opdef = OpDef(impl, eltwise_cost(), "BinaryNgDeviceOperation", _binary_attrs(name),
                      output_arg="output_tensor", source=_BINARY_SOURCE, recorded=recorded)
        table.update(dict.fromkeys((name, *aliases), opdef))
    for name, torch_fn in _IN_PLACE.items():
        table[f"{name}_"] = OpDef(_in_place(torch_fn), eltwise_cost(), "BinaryNgDeviceOperation",
                                  _binary_attrs(name), in_place=True, source=_BINARY_SOURCE,
                                  recorded=("sub_core_grids",))
    return table


def _unary_params(name, kwargs) -> list[float]:
    """A unary's scalar parameters in tt-metal's order: clamp's min, max (float's lowest / max when open);
    exp's and gelu's approximation flag."""
    if name == "clamp":
        low, high = kwargs.get("min"), kwargs.get("max")
        return [-_FLOAT_LIMIT if low is None else float(low), _FLOAT_LIMIT if high is None else float(high)]
    if "fast_and_approximate_mode" in kwargs:
        return [float(bool(kwargs["fast_and_approximate_mode"]))]
    return []


def _unary_attrs(name):
    """tt-metal's spelling: `[UnaryWithParam(op_type=UnaryOpType::CLAMP, params=[-3.4e+38, 7.0])]`, the op's
    scalar parameters in order; no `params` for an op without any."""

    def attrs(kwargs, outputs):
        params = _unary_params(name, kwargs)
        listed = f", params=[{', '.join(repr(p) for p in params)}]" if params else ""
        return {"op_chain": f"[UnaryWithParam(op_type=UnaryOpType::{name.upper()}{listed})]"}

    return attrs


def _unary_recorded(impl) -> tuple:
    """A unary's recorded arguments: its memory config, sub-core grids and scalar parameters."""
    names = [
        p for p in inspect.signature(impl).parameters if p not in ("ctx", "input_tensor", "output_tensor")
    ]
    return tuple(names)


_NORM_RECORDED = ("epsilon", "memory_config", "program_config", "compute_kernel_config")
_REDUCE_RECORDED = ("dim", "keepdim", "memory_config", "compute_kernel_config", "scalar", "sub_core_grids")
_NORM_SOURCE = "ttnn/cpp/ttnn/operations/normalization/layernorm/layernorm_nanobind.cpp"
_REDUCE_SOURCE = "ttnn/cpp/ttnn/operations/reduction/generic/generic_reductions_nanobind.cpp"


def _compute_ops() -> dict:
    return {
        "matmul": OpDef(
            _matmul_impl,
            _matmul_cost,
            "MatmulDeviceOperation",
            _matmul_attrs,
            output_arg="optional_output_tensor",
            source=_MATMUL_SOURCE,
            recorded=_MATMUL_RECORDED,
        ),
        "linear": OpDef(
            _linear_impl,
            _matmul_cost,
            "MatmulDeviceOperation",
            _matmul_attrs,
            output_arg="optional_output_tensor",
            source=_MATMUL_SOURCE,
            recorded=_MATMUL_RECORDED,
        ),
        "where": OpDef(
            _where_impl,
            eltwise_cost(),
            "TernaryDeviceOperation",
            output_arg="output_tensor",
            source="ttnn/cpp/ttnn/operations/eltwise/ternary/ternary_nanobind.cpp",
            recorded=("memory_config", "sub_core_grids"),
        ),
        "typecast": OpDef(
            _typecast_impl,
            eltwise_cost(),
            "TypecastDeviceOperation",
            output_arg="output_tensor",
            source=_UNARY_SOURCE,
            recorded=("dtype", "memory_config", "sub_core_grids"),
        ),
        "softmax": OpDef(
            _softmax_impl,
            eltwise_cost(4.0),
            "SoftmaxDeviceOperation",
            source="ttnn/cpp/ttnn/operations/normalization/softmax/softmax_nanobind.cpp",
            recorded=("dim", "memory_config", "compute_kernel_config", "numeric_stable"),
        ),
        "topk": OpDef(
            _topk_impl,
            eltwise_cost(8.0),
            "TopKDeviceOperation",
            source="ttnn/cpp/ttnn/operations/reduction/topk/topk_nanobind.cpp",
            recorded=("k", "dim", "largest", "sorted", "memory_config", "sub_core_grids"),
        ),
        "rms_norm": OpDef(
            _norm("rms"),
            eltwise_cost(3.0),
            "LayerNormDeviceOperation",
            lambda kwargs, outputs: {"norm_type": "LayerNormType::RMSNORM"},
            source=_NORM_SOURCE,
            recorded=_NORM_RECORDED,
        ),
        "layer_norm": OpDef(
            _norm("layer"),
            eltwise_cost(4.0),
            "LayerNormDeviceOperation",
            lambda kwargs, outputs: {"norm_type": "LayerNormType::LAYERNORM"},
            source=_NORM_SOURCE,
            recorded=_NORM_RECORDED,
        ),
        "sum": OpDef(
            _reduce(torch.sum),
            eltwise_cost(),
            "ReduceDeviceOperation",
            lambda kwargs, outputs: {"reduce_math": "ReduceOpMath::SUM"},
            source=_REDUCE_SOURCE,
            recorded=_REDUCE_RECORDED,
        ),
        "mean": OpDef(
            _reduce(torch.mean),
            eltwise_cost(),
            "ReduceDeviceOperation",
            lambda kwargs, outputs: {"reduce_math": "ReduceOpMath::SUM", "scaler": "mean"},
            source=_REDUCE_SOURCE,
            recorded=_REDUCE_RECORDED,
        ),
        "max": OpDef(
            _reduce(_max_values),
            eltwise_cost(),
            "ReduceDeviceOperation",
            lambda kwargs, outputs: {"reduce_math": "ReduceOpMath::MAX"},
            source=_REDUCE_SOURCE,
            recorded=_REDUCE_RECORDED,
        ),
    }


def _table():
    table = _binary_ops()
    for name, (impl, weight) in _UNARY.items():
        table[name] = OpDef(impl, eltwise_cost(weight), "UnaryDeviceOperation", _unary_attrs(name),
                            output_arg="output_tensor", source=_UNARY_SOURCE, recorded=_unary_recorded(impl))
    table.update(_compute_ops())
    return table


TABLE = _table()
