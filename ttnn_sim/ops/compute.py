"""Compute ops: matmul/linear, element-wise binary and unary ops, softmax, topk, norms, reductions.

Results are computed in float32 from the stored (already dtype-rounded) operands and rounded to the
output dtype by ctx.output. Matmul operands pass through numerics.apply_math_fidelity first, so the math
fidelity of `compute_kernel_config` changes accuracy as on hardware. Default fidelity is LoFi, ttnn's
default for matmul when no compute_kernel_config is given.
"""

import torch

from ttnn_sim import cost, numerics
from ttnn_sim.dispatch import OpDef
from ttnn_sim.ops.common import eltwise_cost, fidelity_name, memory_cost
from ttnn_sim.tensor import Tensor
from ttnn_sim.types import DataType, Layout, MathFidelity, UnaryWithParam

TILE = 32

_ACTIVATIONS = {
    "relu": torch.relu,
    "silu": torch.nn.functional.silu,
    "gelu": torch.nn.functional.gelu,
    "sigmoid": torch.sigmoid,
}


def _f32(x):
    return x.to(torch.float32) if isinstance(x, torch.Tensor) else x


def _as_tensor(x):
    return _f32(x) if isinstance(x, torch.Tensor) else torch.tensor(float(x))


def _activation(name):
    if name is None:
        return lambda x: x
    if isinstance(name, UnaryWithParam):
        name = name.op_type.name
    return _ACTIVATIONS[str(name).lower()]


# --- matmul / linear ---------------------------------------------------------------------------
def _matmul_impl(ctx, a, b, *, bias=None, transpose_a=False, transpose_b=False, memory_config=None, dtype=None,
                 program_config=None, activation=None, compute_kernel_config=None, core_grid=None,
                 output_tile=None, **_ignored):
    fidelity = fidelity_name(compute_kernel_config, MathFidelity.LoFi)
    act = _activation(activation or getattr(program_config, "fused_activation", None))

    def one(x, w, bias_shard=None):
        x, w = _f32(x), _f32(w)
        if transpose_a:
            x = x.transpose(-1, -2)
        if transpose_b:
            w = w.transpose(-1, -2)
        x, w = numerics.apply_math_fidelity(x, w, fidelity)
        y = _matmul_distinct_rows(x, w)
        if bias_shard is not None:
            y = y + _f32(bias_shard)
        return act(y)

    shards = ctx.per_device(one, a, b, bias)
    return ctx.output(shards, dtype or a.dtype, Layout.TILE, memory_config)


_FEWEST_ROWS = 4
_PROBES: dict[int, torch.Tensor] = {}


def _matmul_distinct_rows(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """x @ w, multiplying each distinct row of x once when at most half the rows are distinct, and copying the
    product to the rows equal to it. Tokens an all_to_all_dispatch did not send to a device are zero rows, and
    stay equal rows through bias adds and activations. Equal rows have equal products, so the result is the
    dense one bit for bit, provided torch's kernel is the same: products of 1-3 rows take other kernels, whose
    sums differ in the last bit from the same rows' in a larger product, so fewer than _FEWEST_ROWS go
    dense."""
    if x.dim() < 2 or x.shape[-2] < 2 * TILE or w.dim() > 2 and w.shape[:-2] != x.shape[:-2]:
        return torch.matmul(x, w)
    rows = x.reshape(-1, x.shape[-2], x.shape[-1]).contiguous()
    first = _first_equal_row(rows)
    kept = torch.unique(first)  # sorted; rows some batch entry needs
    if not _FEWEST_ROWS <= len(kept) <= rows.shape[1] // 2 or not _rows_equal(rows, first):
        return torch.matmul(x, w)
    weights = w.reshape(-1, *w.shape[-2:]) if w.dim() > 2 else w
    products = torch.matmul(rows.index_select(1, kept), weights)
    slot = torch.searchsorted(kept, first)  # [B, M] where each row's product is
    return _pick_rows(products, slot).reshape(*x.shape[:-1], w.shape[-1])


def _pick_rows(t: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """[B, M, C]: t[b, index[b, m]] (one index_select over the flattened rows: gather is far slower here)."""
    batch, count, width = t.shape
    flat = (index + torch.arange(batch).unsqueeze(-1) * count).reshape(-1)
    return t.reshape(batch * count, width).index_select(0, flat).reshape(batch, index.shape[-1], width)


def _first_equal_row(rows: torch.Tensor) -> torch.Tensor:
    """[B, M]: for each row of each batch entry, the first row whose projection on a fixed probe vector is
    equal (a candidate: _rows_equal checks it)."""
    width = rows.shape[-1]
    if width not in _PROBES:
        _PROBES[width] = torch.randn(width, generator=torch.Generator().manual_seed(width))
    projection = torch.matmul(rows, _PROBES[width])  # [B, M]
    same = projection.unsqueeze(-1) == projection.unsqueeze(-2)  # [B, M, M]; a NaN row matches nothing
    same.diagonal(dim1=-2, dim2=-1).fill_(True)
    return same.to(torch.uint8).argmax(dim=-1)  # argmax gives the first of equal maxima


def _rows_equal(rows: torch.Tensor, first: torch.Tensor) -> bool:
    """Whether every row has the same bits as the row `first` names for it."""
    return torch.equal(_pick_rows(rows, first).view(torch.int32), rows.view(torch.int32))


def _linear_impl(ctx, a, b, *, bias=None, **kwargs):
    return _matmul_impl(ctx, a, b, bias=bias, **kwargs)


def _matmul_cost(ctx, inputs, outputs, kwargs):
    a, b = inputs[0], inputs[1]
    m_k = a.padded_shape
    n = b.padded_shape[-2] if kwargs.get("transpose_b") else b.padded_shape[-1]
    batch = m_k.volume() // m_k[-1]
    flops = 2 * batch * m_k[-1] * n
    fidelity = fidelity_name(kwargs.get("compute_kernel_config"), MathFidelity.LoFi)
    grid = kwargs.get("core_grid")
    cores = grid.num_cores if grid is not None else cost.CORES
    compute = cost.matmul_ns(flops, fidelity) * cost.CORES / cores
    moved = memory_cost(inputs, outputs).kernel_ns
    return cost.kernel(max(compute, moved), cores, fidelity)


def _matmul_attrs(kwargs, outputs):
    return {
        "program_config": kwargs.get("program_config") or "std::nullopt",
        "transpose_a": str(bool(kwargs.get("transpose_a"))).lower(),
        "transpose_b": str(bool(kwargs.get("transpose_b"))).lower(),
        "math_fidelity": f"MathFidelity::{fidelity_name(kwargs.get('compute_kernel_config'), MathFidelity.LoFi)}",
        "fused_activation": kwargs.get("activation") or "std::nullopt",
    }


# --- element-wise --------------------------------------------------------------------------------
def _binary(torch_fn, name):
    def impl(ctx, a, b, *, memory_config=None, dtype=None, activations=None, use_legacy=None, queue_id=None,
             **_ignored):
        like = a if isinstance(a, Tensor) else b
        shards = ctx.per_device(lambda x, y: torch_fn(_as_tensor(x), _as_tensor(y)), a, b)
        out_dtype = dtype or like.dtype
        if not out_dtype.is_float:
            shards = [s.round() for s in shards]
        return ctx.output(shards, out_dtype, like.layout, memory_config or like.memory_config())

    impl.__name__ = name
    return impl


def _unary(torch_fn, name):
    def impl(ctx, x, *args, memory_config=None, dtype=None, queue_id=None, **kwargs):
        shards = ctx.per_device(lambda s: torch_fn(_f32(s), *args, **kwargs), x)
        return ctx.output(shards, dtype or x.dtype, x.layout, memory_config or x.memory_config())

    impl.__name__ = name
    return impl


def _clamp(x, min=None, max=None):  # noqa: A002  (ttnn's keyword names)
    return torch.clamp(x, min=min, max=max)


def _gelu(x, fast_and_approximate_mode=False):
    return torch.nn.functional.gelu(x, approximate="tanh" if fast_and_approximate_mode else "none")


def _isfinite(x):
    return torch.isfinite(x).to(torch.float32)


def _where_impl(ctx, cond, a, b, *, memory_config=None, **_ignored):
    like = next(t for t in (a, b, cond) if isinstance(t, Tensor))
    shards = ctx.per_device(lambda c, x, y: torch.where(_f32(c) != 0, _f32(x), _f32(y)), cond, a, b)
    return ctx.output(shards, like.dtype, like.layout, memory_config or like.memory_config())


def _typecast_impl(ctx, x, dtype, *, memory_config=None, **_ignored):
    return ctx.output([_f32(s) for s in x.shards], dtype, x.layout, memory_config or x.memory_config())


# --- softmax / topk / norms / reductions --------------------------------------------------------------
def _softmax(s, dim, numeric_stable):
    """Unstable softmax (the kernel without its max-reduce pass) overflows where exp(x) does."""
    if numeric_stable:
        return torch.softmax(s, dim=dim)
    e = torch.exp(s)
    return e / e.sum(dim=dim, keepdim=True)


def _softmax_impl(ctx, x, dim=-1, *, memory_config=None, compute_kernel_config=None, numeric_stable=True,
                  **_ignored):
    shards = ctx.per_device(lambda s: _softmax(_f32(s), dim, numeric_stable), x)
    return ctx.output(shards, x.dtype, x.layout, memory_config or x.memory_config())


def _topk_impl(ctx, x, k, dim=-1, largest=True, sorted=True, *, memory_config=None, **_ignored):  # noqa: A002
    pairs = ctx.per_device(lambda s: torch.topk(_f32(s), k, dim=dim, largest=largest, sorted=sorted), x)
    config = memory_config or x.memory_config()
    values = ctx.output([p.values for p in pairs], x.dtype, x.layout, config)
    indices = ctx.output([p.indices for p in pairs], DataType.UINT16, x.layout, config)
    return values, indices


def _norm(kind):
    def impl(ctx, x, *, epsilon=1e-12, weight=None, bias=None, residual_input_tensor=None, memory_config=None,
             program_config=None, compute_kernel_config=None, **_ignored):
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
    def impl(ctx, x, dim=None, keepdim=False, *, memory_config=None, **_ignored):
        def one(s):
            s = _f32(s)
            if dim is None:
                return torch_fn(s.reshape(-1), 0, keepdim=False).reshape([1] * s.dim() if keepdim else [])
            return torch_fn(s, dim, keepdim=keepdim)

        return ctx.output(ctx.per_device(one, x), x.dtype, x.layout, memory_config or x.memory_config())

    return impl


def _max_values(s, dim, keepdim):
    return torch.amax(s, dim=dim, keepdim=keepdim)


_FLOAT_LIMIT = 3.4028234663852886e38  # a clamp bound left open is float's lowest / max, as in tt-metal


def _binary_attrs(name):
    """BinaryNg's `binary_op_type` and `scalar` (the second operand when it is a number, else std::nullopt)."""

    def attrs(kwargs, outputs):
        b = kwargs.get("b")
        scalar = "std::nullopt" if b is None or isinstance(b, Tensor) else repr(float(b))
        return {"binary_op_type": f"BinaryOpType::{name.upper()}", "scalar": scalar}

    return attrs


# tt-metal's binary ops: the BinaryNg device operation; `ttnn.sub` / `ttnn.mul` / `ttnn.div` are aliases of
# subtract / multiply / divide; the `_` variants (ttnn.add_) write into their first argument.
_BINARY = {
    "add": (torch.add, ("add",)),
    "subtract": (torch.sub, ("sub",)),
    "multiply": (torch.mul, ("mul",)),
    "divide": (torch.div, ("div",)),
    "maximum": (torch.maximum, ()),
    "minimum": (torch.minimum, ()),
}
_UNARY = {
    "silu": (torch.nn.functional.silu, 2.0),
    "sigmoid": (torch.sigmoid, 2.0),
    "gelu": (_gelu, 3.0),
    "relu": (torch.relu, 1.0),
    "exp": (torch.exp, 2.0),
    "neg": (torch.neg, 1.0),
    "reciprocal": (torch.reciprocal, 2.0),
    "sqrt": (torch.sqrt, 2.0),
    "rsqrt": (torch.rsqrt, 2.0),
    "clamp": (_clamp, 1.0),
    "isfinite": (_isfinite, 1.0),
}


def _binary_ops() -> dict:
    table = {}
    for name, (fn, aliases) in _BINARY.items():
        impl = _binary(fn, name)
        for spelling in (name, *aliases):
            table[spelling] = OpDef(impl, eltwise_cost(), "BinaryNgDeviceOperation", _binary_attrs(name),
                                    output_arg="output_tensor")
        if name not in ("maximum", "minimum"):
            table[f"{name}_"] = OpDef(impl, eltwise_cost(), "BinaryNgDeviceOperation", _binary_attrs(name),
                                      in_place=True)
    return table


def _unary_attrs(name):
    """tt-metal's spelling: `[UnaryWithParam(op_type=UnaryOpType::CLAMP, params=[-3.4e+38, 7.0])]`, the op's
    scalar parameters in order (clamp: min, max); no `params` for an op without any."""

    def attrs(kwargs, outputs):
        params = [float(p) for p in kwargs.get("args", ())]
        if name == "clamp":
            low, high = kwargs.get("min"), kwargs.get("max")
            params = [-_FLOAT_LIMIT if low is None else float(low), _FLOAT_LIMIT if high is None else float(high)]
        listed = f", params=[{', '.join(repr(p) for p in params)}]" if params else ""
        return {"op_chain": f"[UnaryWithParam(op_type=UnaryOpType::{name.upper()}{listed})]"}

    return attrs


def _softmax_attrs(kwargs, outputs):
    return {"dim": kwargs.get("dim", -1), "numeric_stable": str(kwargs.get("numeric_stable", True)).lower(),
            "compute_kernel_config": kwargs.get("compute_kernel_config") or "std::nullopt"}


def _table():
    table = _binary_ops()
    for name, (fn, weight) in _UNARY.items():
        table[name] = OpDef(_unary(fn, name), eltwise_cost(weight), "UnaryDeviceOperation", _unary_attrs(name),
                            output_arg="output_tensor")
    table.update({
        "matmul": OpDef(_matmul_impl, _matmul_cost, "MatmulDeviceOperation", _matmul_attrs,
                        output_arg="optional_output_tensor"),
        "linear": OpDef(_linear_impl, _matmul_cost, "MatmulDeviceOperation", _matmul_attrs,
                        output_arg="optional_output_tensor"),
        "where": OpDef(_where_impl, eltwise_cost(), "TernaryDeviceOperation", output_arg="output_tensor"),
        "typecast": OpDef(_typecast_impl, eltwise_cost(), "TypecastDeviceOperation",
                          lambda kwargs, outputs: {"output_dtype": f"DataType::{outputs[0].dtype.name}"},
                          output_arg="output_tensor"),
        "softmax": OpDef(_softmax_impl, eltwise_cost(4.0), "SoftmaxDeviceOperation", _softmax_attrs),
        "topk": OpDef(_topk_impl, eltwise_cost(8.0), "TopKDeviceOperation",
                      lambda kwargs, outputs: {"k": outputs[0].shape[-1], "largest": "true", "sorted": "true"}),
        "rms_norm": OpDef(_norm("rms"), eltwise_cost(3.0), "LayerNormDeviceOperation",
                          lambda kwargs, outputs: {"norm_type": "LayerNormType::RMSNORM", "eps": kwargs.get("epsilon", 1e-12)}),
        "layer_norm": OpDef(_norm("layer"), eltwise_cost(4.0), "LayerNormDeviceOperation",
                            lambda kwargs, outputs: {"norm_type": "LayerNormType::LAYERNORM", "eps": kwargs.get("epsilon", 1e-12)}),
        "sum": OpDef(_reduce(torch.sum), eltwise_cost(), "ReduceDeviceOperation",
                     lambda kwargs, outputs: {"reduce_math": "ReduceOpMath::SUM"}),
        "mean": OpDef(_reduce(torch.mean), eltwise_cost(), "ReduceDeviceOperation",
                      lambda kwargs, outputs: {"reduce_math": "ReduceOpMath::SUM", "scaler": "mean"}),
        "max": OpDef(_reduce(_max_values), eltwise_cost(), "ReduceDeviceOperation",
                     lambda kwargs, outputs: {"reduce_math": "ReduceOpMath::MAX"}),
    })
    return table


TABLE = _table()
