"""Fused op unit test for gpt_oss_mini_rms_norm (RMSNorm.__call__ in tt/rms_norm.py, the decoder layer's input and
post-attention norms): one ttnn.rms_norm with the learned scale, its output L1 in decode and DRAM in prefill.

Decode and prefill. No CCL ops, so the single-device test runs on the first device's chunk of the tokens.
"""

import pytest
import torch
from loguru import logger

import ttnn
from models.demos.gpt_oss_mini.tests.fused_op_unit_tests.fused_op_test_utils import (
    FUSED_OP_MATRIX,
    FusedOpTest,
    compare_with_reference,
)
from models.demos.gpt_oss_mini.tests.test_factory import (
    MESH_SHAPE,
    TestFactory,
    from_mesh,
    to_mesh,
    tokens_for,
)
from models.demos.gpt_oss_mini.tt.model_config import activation_memory_config, substate
from models.demos.gpt_oss_mini.tt.rms_norm import RMSNorm

DEVICE_PERF_ENV_VAR = "GPT_OSS_MINI_RMS_NORM_DEVICE_PERF"
PERF_WARMUP_ITERS = 10
PERF_MEASURE_ITERS = 100
DEVICE_PERF_ITERS = 10

OP = FusedOpTest(__file__, DEVICE_PERF_ENV_VAR, PERF_WARMUP_ITERS, PERF_MEASURE_ITERS, DEVICE_PERF_ITERS)


def gpt_oss_mini_rms_norm_reference(hidden_states, weight, eps):
    """GptOssRMSNorm.forward in float32: x / sqrt(mean(x^2) + eps) * weight, over the hidden dimension."""
    variance = hidden_states.float().pow(2).mean(-1, keepdim=True)
    return weight * (hidden_states.float() * torch.rsqrt(variance + eps))


def gpt_oss_mini_rms_norm_ttnn(x, weight, eps, memory_config):
    """The op of RMSNorm.__call__: tokens [1, 1, T, H] -> normalized and scaled [1, 1, T, H]."""
    return ttnn.rms_norm(x, epsilon=eps, weight=weight, memory_config=memory_config)


def _run_rms_norm_test(mesh_device, case, single_device_mesh=None):
    """The layer's input norm against the reference on the 2x4 mesh, or on its first device with that device's
    tokens; then device perf or e2e perf."""
    setup = TestFactory.setup_test(mesh_device, case.use_real_weights)
    config = setup["config"]
    weight = substate(setup["state_dict"], "input_layernorm")["weight"]
    hidden_states = torch.randn(tokens_for(case.mode, case.seq_len), config.hidden_size)
    if single_device_mesh is not None:
        rows = MESH_SHAPE[0] if case.mode == "decode" else 1  # decode users are sharded over the mesh rows
        hidden_states = hidden_states[: len(hidden_states) // rows]
        mesh_device = single_device_mesh
    norm = RMSNorm(
        mesh_device, {"weight": weight}, config.rms_norm_eps
    )  # the scale laid out as the module does
    tt_x = to_mesh(hidden_states, mesh_device, case.mode)
    memory_config = activation_memory_config(case.mode)

    def op_fn():
        return gpt_oss_mini_rms_norm_ttnn(tt_x, norm.weight, norm.eps, memory_config)

    tt_output = op_fn()
    name = "rms_norm" if single_device_mesh is None else "rms_norm_single_device"
    expected = gpt_oss_mini_rms_norm_reference(hidden_states, weight, config.rms_norm_eps)
    actual = from_mesh(tt_output, mesh_device, case.mode).reshape(len(hidden_states), -1)
    passing, pcc = compare_with_reference(actual, expected, case.expected_pcc, name)
    assert passing, f"RMS norm test failed. PCC: {pcc} < {case.expected_pcc}"
    ttnn.deallocate(tt_output)
    OP.measure(mesh_device, op_fn, case, len(hidden_states), single_device=single_device_mesh is not None)
    return pcc


# expected_pcc = the PCC measured on ttnn_sim (random weights), rounded down: bf16 in and out, fp32 accumulation.
# expected_perf_us = the e2e us per iteration measured on ttnn_sim (asserted within 20%, guide 8.2).
# TODO: Replace expected_perf_us with the theoretical target.
RMS_NORM_CASES = [("decode", 1, 0.999, 13.5), ("prefill", 128, 0.999, 13.5), ("prefill", 1024, 0.999, 13.5)]
DEVICE_PERF_TARGETS_US = {}  # TODO: theoretical targets: (mode, seq_len) -> {"kernel": us, "op_to_op": us} per iteration
DEVICE_PERF_CASES = [("decode", 1), ("prefill", 128)]


@pytest.mark.parametrize("mode, seq_len, expected_pcc, expected_perf_us", RMS_NORM_CASES)
@FUSED_OP_MATRIX
def test_gpt_oss_mini_rms_norm(
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
    logger.info(f"Test passed with PCC: {_run_rms_norm_test(mesh_device, case)}")


@pytest.mark.parametrize("mode, seq_len, expected_pcc, expected_perf_us", RMS_NORM_CASES)
@FUSED_OP_MATRIX
def test_gpt_oss_mini_rms_norm_single_device(
    mode,
    seq_len,
    expected_pcc,
    expected_perf_us,
    use_real_weights,
    program_cache_enabled,
    trace_mode,
    mesh_device,
):
    first_device = mesh_device.create_submesh(ttnn.MeshShape((1, 1)))
    case = OP.case(
        first_device,
        mode,
        seq_len,
        expected_pcc,
        expected_perf_us,
        use_real_weights,
        program_cache_enabled,
        trace_mode,
    )
    logger.info(f"Single device test passed with PCC: {_run_rms_norm_test(mesh_device, case, first_device)}")


@pytest.mark.parametrize("mode, seq_len", DEVICE_PERF_CASES)
def test_gpt_oss_mini_rms_norm_device_perf(mode, seq_len):
    OP.device_perf(mode, seq_len, tokens_for(mode, seq_len), DEVICE_PERF_TARGETS_US)


@pytest.mark.parametrize("mode, seq_len", DEVICE_PERF_CASES)
def test_gpt_oss_mini_rms_norm_single_device_device_perf(mode, seq_len):
    per_device = (
        tokens_for(mode, seq_len) // MESH_SHAPE[0] if mode == "decode" else seq_len
    )  # rows share the batch
    OP.device_perf(mode, seq_len, per_device, DEVICE_PERF_TARGETS_US, single_device=True)
