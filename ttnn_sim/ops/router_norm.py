"""The fused MoE router and the distributed RMS norm of the gpt-oss decode path.

- experimental.topk_router_gpt(input [32, H] bf16 TILE, weight_tensor [H, 128], bias_tensor [32, 128], k,
  num_experts) -> (indices, weights), both [32, round_up(k, 8)] ROW_MAJOR in DRAM, indices UINT16, weights
  BFLOAT16: logits = input @ weight + bias, the k largest per row (descending), softmax over those k. Columns
  past k are padding (the sim writes zeros). tt-metal refuses k outside [1, 32], num_experts != 128, a batch
  other than 32 and inputs that are not bf16 TILE
  (experimental/topk_router_gpt/device/topk_router_gpt_device_operation.cpp).
- rms_norm_pre_all_gather(x, residual_input_tensor=None) -> stats [..., rows, 32]: per row, the device's
  partial sum of squares over its slice of the hidden dim (column 0; the rest is zero), after adding the
  residual. all_gather along the last dim collects one 32-wide tile per device.
- rms_norm_post_all_gather(x, stats, epsilon, weight) ->
  x / sqrt(sum of the partial sums / full width + eps) * weight, where full width = x's width * the number
  of gathered tiles. The program config (LayerNormShardedMultiCoreProgramConfig) picks cores only and does
  not change values.
"""

import torch

from ttnn_sim import cost, numerics
from ttnn_sim.dispatch import OpDef
from ttnn_sim.ops.common import eltwise_cost, memory_cost
from ttnn_sim.types import DataType, Layout, MathFidelity

TILE = 32
ROUTER_EXPERTS = 128
ROUTER_BATCH = 32


def _check_router(x, weight, bias, k, num_experts) -> None:
    problems = []
    if not 1 <= k <= 32:
        problems.append(f"topk_router_gpt requires k in range [1, 32], got {k}")
    if num_experts != ROUTER_EXPERTS:
        problems.append(f"topk_router_gpt only supports num_experts=128, got {num_experts}")
    if len(x.shape) != 2 or x.shape[0] != ROUTER_BATCH:
        problems.append(f"topk_router_gpt only supports a [32, hidden] input, got {list(x.shape)}")
    for role, t in (("Input", x), ("Weight", weight), ("Bias", bias)):
        if t.layout is not Layout.TILE or t.dtype is not DataType.BFLOAT16:
            problems.append(f"{role} tensor must be BFLOAT16 in TILE layout")
    if problems:
        raise RuntimeError("TT_FATAL: " + problems[0])


def _topk_router_gpt(ctx, input_tensor, *, weight_tensor, bias_tensor, k=4, num_experts=ROUTER_EXPERTS,
                     untilize_output=False):
    _check_router(input_tensor, weight_tensor, bias_tensor, k, num_experts)
    padded = -(-k // 8) * 8

    def one(x, w, b):
        x, w = numerics.apply_math_fidelity(x.to(torch.float32), w.to(torch.float32), MathFidelity.HiFi4.name)
        logits = x @ w + b.to(torch.float32)
        values, indices = torch.topk(logits, k, dim=-1)
        weights = torch.softmax(values, dim=-1)
        pad = torch.zeros(logits.shape[0], padded - k)
        return torch.cat([indices.to(torch.float32), pad], -1), torch.cat([weights, pad], -1)

    pairs = ctx.per_device(one, input_tensor, weight_tensor, bias_tensor)
    return (
        ctx.output([p[0] for p in pairs], DataType.UINT16, Layout.ROW_MAJOR),
        ctx.output([p[1] for p in pairs], DataType.BFLOAT16, Layout.ROW_MAJOR),
    )


def _router_cost(ctx, inputs, outputs, kwargs):
    x, w = inputs[0], inputs[1]
    flops = 2 * x.padded_shape.volume() * w.padded_shape[-1]
    return memory_cost(
        inputs,
        outputs,
        cost.matmul_ns(flops, "HiFi4") + cost.eltwise_ns(w.padded_shape[-1] * 32, 8),
        fidelity="HiFi4",
    )


def _pre_all_gather(ctx, input_tensor, *, dtype=DataType.BFLOAT16, residual_input_tensor=None,
                    compute_kernel_config=None, program_config=None, memory_config=None):
    def one(x, residual):
        x = x.to(torch.float32) if residual is None else x.to(torch.float32) + residual.to(torch.float32)
        stats = torch.zeros(*x.shape[:-1], TILE)
        stats[..., 0] = x.pow(2).sum(-1)
        return stats

    shards = ctx.per_device(one, input_tensor, residual_input_tensor)
    return ctx.output(shards, dtype or DataType.BFLOAT16, Layout.TILE, memory_config)


def _post_all_gather(ctx, input_tensor, stats, *, epsilon=1e-12, weight=None, bias=None, memory_config=None,
                     program_config=None, compute_kernel_config=None, dtype=None):
    def one(x, gathered, w, b):
        x = x.to(torch.float32)
        partial = gathered.to(torch.float32).reshape(*gathered.shape[:-1], -1, TILE)[..., 0]
        width = x.shape[-1] * partial.shape[-1]
        y = x * torch.rsqrt(partial.sum(-1, keepdim=True) / width + epsilon)
        y = y if w is None else y * w.to(torch.float32).reshape(-1)[: y.shape[-1]]
        return y if b is None else y + b.to(torch.float32).reshape(-1)[: y.shape[-1]]

    shards = ctx.per_device(one, input_tensor, stats, weight, bias)
    return ctx.output(
        shards,
        dtype or input_tensor.dtype,
        input_tensor.layout,
        memory_config or input_tensor.memory_config(),
    )


def _norm_attrs(kind):
    return lambda kwargs, outputs: {"norm_type": "LayerNormType::RMSNORM", "distributed_norm_stage": kind}


_DISTRIBUTED = (
    "ttnn/cpp/ttnn/operations/normalization/layernorm_distributed/layernorm_distributed_nanobind.cpp"
)
TABLE = {
    "experimental.topk_router_gpt": OpDef(
        _topk_router_gpt,
        _router_cost,
        "TopkRouterGptDeviceOperation",
        source="ttnn/cpp/ttnn/operations/experimental/topk_router_gpt/topk_router_gpt_nanobind.cpp",
        recorded=("k", "num_experts", "untilize_output"),
    ),
    "rms_norm_pre_all_gather": OpDef(
        _pre_all_gather,
        eltwise_cost(2.0),
        "LayerNormPreAllGatherDeviceOperation",
        _norm_attrs("PRE_ALL_GATHER"),
        source=_DISTRIBUTED,
        recorded=("dtype", "compute_kernel_config", "program_config", "memory_config"),
    ),
    "rms_norm_post_all_gather": OpDef(
        _post_all_gather,
        eltwise_cost(3.0),
        "LayerNormPostAllGatherDeviceOperation",
        _norm_attrs("POST_ALL_GATHER"),
        source=_DISTRIBUTED,
        recorded=("epsilon", "memory_config", "program_config", "compute_kernel_config", "dtype"),
    ),
}
