"""Matmul and linear: ttnn.matmul / ttnn.linear on stored, dtype-rounded operands, with the math fidelity
of `compute_kernel_config` applied first (numerics.apply_math_fidelity; LoFi when none is given, ttnn's
default for matmul), the fused activation, and their cost and ATTRIBUTES."""


import torch

from ttnn_sim import cost, numerics
from ttnn_sim.ops.common import fidelity_name, memory_cost
from ttnn_sim.types import Layout, MathFidelity, UnaryWithParam

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
def _matmul_impl(
    ctx,
    input_tensor_a,
    input_tensor_b,
    *,
    transpose_a=False,
    transpose_b=False,
    memory_config=None,
    dtype=None,
    program_config=None,
    activation=None,
    compute_kernel_config=None,
    core_grid=None,
    output_tile=None,
    optional_output_tensor=None,
    global_cb=None,
    sub_device_id=None,
):
    return _matmul(ctx, input_tensor_a, input_tensor_b, None, transpose_a, transpose_b, memory_config, dtype,
                   activation or getattr(program_config, "fused_activation", None), compute_kernel_config)


def _linear_impl(
    ctx,
    input_tensor_a,
    input_tensor_b,
    *,
    bias=None,
    transpose_a=False,
    transpose_b=False,
    memory_config=None,
    dtype=None,
    program_config=None,
    activation=None,
    compute_kernel_config=None,
    core_grid=None,
    output_tile=None,
    optional_output_tensor=None,
    global_cb=None,
    sub_device_id=None,
):
    return _matmul(ctx, input_tensor_a, input_tensor_b, bias, transpose_a, transpose_b, memory_config, dtype,
                   activation or getattr(program_config, "fused_activation", None), compute_kernel_config)


def _matmul(
    ctx, a, b, bias, transpose_a, transpose_b, memory_config, dtype, activation, compute_kernel_config
):
    """matmul and linear: (a @ b + bias) through the fused activation; core_grid, program_config's grid,
    output_tile, global_cb and sub_device_id place the work and change no value."""
    fidelity = fidelity_name(compute_kernel_config, MathFidelity.LoFi)
    act = _activation(activation)

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
    fidelity = fidelity_name(kwargs.get("compute_kernel_config"), MathFidelity.LoFi)
    return {"math_fidelity": f"MathFidelity::{fidelity}"}


# tt-metal's Matmul attributes (matmul/device/matmul_op.hpp): what each call's ATTRIBUTES cell shows.
_MATMUL_RECORDED = ("transpose_a", "transpose_b", "memory_config", "dtype", "program_config", "activation",
                    "compute_kernel_config", "core_grid", "output_tile", "global_cb", "sub_device_id")
_MATMUL_SOURCE = "ttnn/cpp/ttnn/operations/matmul/matmul_nanobind.cpp"
