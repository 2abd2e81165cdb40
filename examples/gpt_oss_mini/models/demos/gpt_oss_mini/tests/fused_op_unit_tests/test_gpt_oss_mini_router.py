"""Fused op unit test for gpt_oss_mini_router (the op sequence of TopKRouter.__call__ in tt/router.py):

1. ttnn.linear   - router logits = x @ W + b (L1 in decode, DRAM in prefill)
2. ttnn.topk     - the k best experts per token, sorted
3. ttnn.softmax  - routing weights over the k selected logits

Decode and prefill (the same sequence serves both). No CCL ops, so the single-device test runs.
"""

import pytest
import torch
from loguru import logger

import ttnn
from models.demos.gpt_oss_mini.tests.fused_op_unit_tests.fused_op_test_utils import (
    FUSED_OP_MATRIX,
    FusedOpCase,
    FusedOpTest,
    compare_with_reference,
    deallocate_outputs,
)
from models.demos.gpt_oss_mini.tests.test_factory import (
    MESH_SHAPE,
    TestFactory,
    from_mesh,
    to_mesh,
    tokens_for,
    tokens_per_device,
)
from models.demos.gpt_oss_mini.tt.model_config import activation_memory_config
from models.demos.gpt_oss_mini.tt.router import TopKRouter

DEVICE_PERF_ENV_VAR = "GPT_OSS_MINI_ROUTER_DEVICE_PERF"
PERF_WARMUP_ITERS = 10
PERF_MEASURE_ITERS = 100
DEVICE_PERF_ITERS = 10

OP = FusedOpTest(__file__, DEVICE_PERF_ENV_VAR, PERF_WARMUP_ITERS, PERF_MEASURE_ITERS, DEVICE_PERF_ITERS)

# Performance methodology (as in tt-metal's fused-op tests): kernel duration is the production-representative
# figure. Op-to-op latency is inflated by the ttnn.synchronize_device() after every measured iteration.


def gpt_oss_mini_router_reference(hidden_states, weight, bias, top_k):
    """GptOssTopKRouter.forward: (indices, weights) [T, k] for tokens [T, H]; weight [E, H], bias [E]."""
    logits = torch.nn.functional.linear(hidden_states, weight, bias)
    top_values, indices = torch.topk(logits, top_k, dim=-1)
    return indices, torch.softmax(top_values, dim=-1)


def gpt_oss_mini_router_ttnn(x, weight, bias, top_k, memory_config, softmax_compute_config):
    """The ops of TopKRouter.__call__ between its reshape and its return: x [T, H] -> (indices, weights) [T, k]."""
    logits = ttnn.linear(x, weight, bias=bias, memory_config=memory_config)
    weights, indices = ttnn.topk(logits, k=top_k, dim=-1, sorted=True)
    ttnn.deallocate(logits)
    weights = ttnn.softmax(weights, dim=-1, numeric_stable=True, compute_kernel_config=softmax_compute_config)
    return indices, weights


def _compare_routing(tt_indices, tt_weights, ref_indices, ref_weights, expected_pcc, suffix):
    """tt-metal's router comparison: indices sorted per token, weights reordered the same way."""
    tt_sorted, tt_order = torch.sort(tt_indices.long(), dim=-1)
    ref_sorted, ref_order = torch.sort(ref_indices.long(), dim=-1)
    indices_ok, indices_pcc = compare_with_reference(
        tt_sorted, ref_sorted, expected_pcc, f"router_indices{suffix}"
    )
    weights_ok, weights_pcc = compare_with_reference(
        torch.gather(tt_weights, -1, tt_order),
        torch.gather(ref_weights, -1, ref_order),
        expected_pcc,
        f"router_weights{suffix}",
    )
    assert indices_ok, f"Router indices test failed. PCC: {indices_pcc} < {expected_pcc}"
    assert weights_ok, f"Router weights test failed. PCC: {weights_pcc} < {expected_pcc}"
    return indices_pcc, weights_pcc


def _run_router_test(mesh_device, case: FusedOpCase, single_device_mesh=None):
    """Reference vs ttnn on the 2x4 mesh, or on ``single_device_mesh`` (its first device) with the chunk of the same
    input that device processes; then device perf or e2e perf."""
    setup = TestFactory.setup_test(mesh_device, case.use_real_weights)
    config = setup["config"]
    router = setup["reference_layer"].mlp.router
    hidden_states = torch.randn(tokens_for(case.mode, case.seq_len), config.hidden_size)
    if single_device_mesh is not None:
        hidden_states = hidden_states[: tokens_per_device(case.mode, case.seq_len, mesh_device)]
        mesh_device = single_device_mesh

    # Op parameters exactly as the module uses them.
    top_k = config.num_experts_per_tok
    memory_config = activation_memory_config(case.mode)
    tt_router = TopKRouter(mesh_device, config, {"weight": router.weight.data, "bias": router.bias.data})

    ref_indices, ref_weights = gpt_oss_mini_router_reference(
        hidden_states, router.weight.data, router.bias.data, top_k
    )
    tt_x = ttnn.reshape(to_mesh(hidden_states, mesh_device, case.mode), (-1, config.hidden_size))

    def op_fn():
        return gpt_oss_mini_router_ttnn(
            tt_x, tt_router.weight, tt_router.bias, top_k, memory_config, tt_router.softmax_compute_config
        )

    tt_indices, tt_weights = op_fn()
    pccs = _compare_routing(
        from_mesh(tt_indices, mesh_device, case.mode, token_dim=0),
        from_mesh(tt_weights, mesh_device, case.mode, token_dim=0),
        ref_indices,
        ref_weights,
        case.expected_pcc,
        "" if mesh_device.get_num_devices() > 1 else "_single_device",
    )
    deallocate_outputs((tt_indices, tt_weights))

    # DEVICE_PERF_ENV_VAR set (the profiled child of the device-perf test): signposted iterations; else e2e perf.
    OP.measure(mesh_device, op_fn, case, len(hidden_states), single_device=single_device_mesh is not None)
    return pccs


# expected_pcc = the lowest PCC measured on ttnn_sim (random and checkpoint weights), rounded down. The logits are
# bf16: in prefill a few tokens have their 2nd and 3rd logits within one bf16 step, so top-k keeps the other expert
# and the sorted-indices PCC drops to ~0.989 (one swapped expert among 128 tokens is enough; tt-metal's router test
# expects 0.90 for the same reason). Decode's 32 tokens match exactly.
# expected_perf_us = the e2e us per iteration measured on ttnn_sim (asserted within 20%, guide 8.2).
# TODO: Replace expected_perf_us with the theoretical target.
ROUTER_CASES = [("decode", 1, 0.998, 37.5), ("prefill", 128, 0.98, 37.5), ("prefill", 1024, 0.98, 37.5)]
DEVICE_PERF_TARGETS_US = {}  # TODO: theoretical targets: (mode, seq_len) -> {"kernel": us, "op_to_op": us} per iteration


@pytest.mark.parametrize("mode, seq_len, expected_pcc, expected_perf_us", ROUTER_CASES)
@FUSED_OP_MATRIX
def test_gpt_oss_mini_router(
    mode,
    seq_len,
    expected_pcc,
    expected_perf_us,
    use_real_weights,
    program_cache_enabled,
    trace_mode,
    mesh_device,
):
    case = OP.case(
        mesh_device,
        mode,
        seq_len,
        expected_pcc,
        expected_perf_us,
        use_real_weights,
        program_cache_enabled,
        trace_mode,
    )
    indices_pcc, weights_pcc = _run_router_test(mesh_device, case)
    logger.info(f"Test passed with indices PCC: {indices_pcc}, weights PCC: {weights_pcc}")


@pytest.mark.parametrize("mode, seq_len, expected_pcc, expected_perf_us", ROUTER_CASES)
@FUSED_OP_MATRIX
def test_gpt_oss_mini_router_single_device(
    mode,
    seq_len,
    expected_pcc,
    expected_perf_us,
    use_real_weights,
    program_cache_enabled,
    trace_mode,
    mesh_device,
):
    single_device_mesh = mesh_device.create_submesh(ttnn.MeshShape((1, 1)))
    case = OP.case(
        single_device_mesh,
        mode,
        seq_len,
        expected_pcc,
        expected_perf_us,
        use_real_weights,
        program_cache_enabled,
        trace_mode,
    )
    indices_pcc, weights_pcc = _run_router_test(mesh_device, case, single_device_mesh)
    logger.info(f"Single device test passed with PCC: {weights_pcc} (indices PCC: {indices_pcc})")


@pytest.mark.parametrize("mode, seq_len", [("decode", 1), ("prefill", 128)])
def test_gpt_oss_mini_router_device_perf(mode, seq_len):
    OP.device_perf(mode, seq_len, tokens_for(mode, seq_len), DEVICE_PERF_TARGETS_US)


@pytest.mark.parametrize("mode, seq_len", [("decode", 1), ("prefill", 128)])
def test_gpt_oss_mini_router_single_device_device_perf(mode, seq_len):
    per_device = (
        tokens_for(mode, seq_len) // MESH_SHAPE[0] if mode == "decode" else seq_len
    )  # rows share the batch
    OP.device_perf(mode, seq_len, per_device, DEVICE_PERF_TARGETS_US, single_device=True)
