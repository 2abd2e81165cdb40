"""Fused op unit test for gpt_oss_mini_attention_qkv: the ops of Attention.decode_forward (decode) / Attention.prefill_forward (prefill)
(models/demos/gpt_oss_mini/tt/attention.py, lines 66-70).

1. ttnn.linear
2. ttnn.experimental.nlp_create_qkv_heads_decode
3. ttnn.experimental.nlp_create_qkv_heads

Modes: decode 1, prefill 128, prefill 1024.
Scaffolded by `doit scaffold fused_op=attention_qkv`; the inputs and the module's parameters come from
the region's capture at the patch point (patch_verify). Left to you (TODO): the expected values
(placeholders until a run measures them; `doit scaffold fused_op=attention_qkv --accept-measured` writes
them).
"""

import inspect

import pytest
import torch
from loguru import logger

import ttnn
from models.demos.gpt_oss_mini.reference.fused_ops import attention_qkv
from models.demos.gpt_oss_mini.tests.fused_op_unit_tests.fused_op_test_utils import (
    FusedOpCase,
    FusedOpTest,
    compare_with_reference,
    deallocate_outputs,
    fused_op_matrix,
)
from models.demos.gpt_oss_mini.tests.test_factory import tokens_for

DEVICE_PERF_ENV_VAR = "GPT_OSS_MINI_ATTENTION_QKV_DEVICE_PERF"
PERF_WARMUP_ITERS = 10
PERF_MEASURE_ITERS = 100
DEVICE_PERF_ITERS = 10
# TODO: theoretical targets per iteration: (mode, seq_len) -> {"kernel": us, "op_to_op": us}
DEVICE_PERF_TARGETS_US = {}

# Bytes of trace region; None: the model's entry in models/model_trace_region_sizes.yaml. A trace that needs more
# fails with "Creating trace buffers of size <N>B ..." (guide step 7: set N here).
TRACE_REGION_SIZE = None
FUSED_OP_MATRIX = fused_op_matrix(trace_region_size=TRACE_REGION_SIZE)

OP = FusedOpTest(__file__, DEVICE_PERF_ENV_VAR, PERF_WARMUP_ITERS, PERF_MEASURE_ITERS, DEVICE_PERF_ITERS)

# The module's non-tensor parameters of the sequence, from the region's capture at the patch point (patch_verify).
# memory_config in Attention.decode_forward (decode) / Attention.prefill_forward (prefill): ttnn.linear(memory_config=), ttnn.experimental.nlp_create_qkv_heads_decode(memory_config=), ttnn.experimental.nlp_create_qkv_heads(memory_config=)
MEMORY_CONFIG = {
    "decode": ttnn.L1_MEMORY_CONFIG,
    "prefill": ttnn.DRAM_MEMORY_CONFIG,
}
NUM_HEADS = 4  # self.num_heads in Attention.decode_forward (decode) / Attention.prefill_forward (prefill): ttnn.experimental.nlp_create_qkv_heads_decode(num_heads=), ttnn.experimental.nlp_create_qkv_heads(num_heads=)
NUM_KV_HEADS = 2  # self.num_kv_heads in Attention.decode_forward (decode) / Attention.prefill_forward (prefill): ttnn.experimental.nlp_create_qkv_heads_decode(num_kv_heads=), ttnn.experimental.nlp_create_qkv_heads(num_kv_heads=)

# Per-device input tensors, from the region's capture at the patch point (patch_verify):
# name -> (shape, dtype, layout, memory config). Replicated to every device, so config compare matches.
# prefill 1024: not run by the module test; the captured prefill inputs with the
# dimensions that move with the tokens (between the decode and prefill captures) scaled to that length.
INPUT_TENSORS = {
    # captured at the patch point: the module's gpt_oss_mini_attention_qkv_ttnn call (decode)
    ("decode", 1): {
        "hidden_states": ((1, 1, 16, 64), ttnn.bfloat16, ttnn.TILE_LAYOUT, ttnn.L1_MEMORY_CONFIG),
        "wqkv": ((64, 256), ttnn.bfloat16, ttnn.TILE_LAYOUT, ttnn.DRAM_MEMORY_CONFIG),
        "wqkv_bias": ((1, 256), ttnn.bfloat16, ttnn.TILE_LAYOUT, ttnn.DRAM_MEMORY_CONFIG),
    },
    # captured at the patch point: the module's gpt_oss_mini_attention_qkv_ttnn call (prefill)
    ("prefill", 128): {
        "hidden_states": ((1, 1, 128, 64), ttnn.bfloat16, ttnn.TILE_LAYOUT, ttnn.DRAM_MEMORY_CONFIG),
        "wqkv": ((64, 256), ttnn.bfloat16, ttnn.TILE_LAYOUT, ttnn.DRAM_MEMORY_CONFIG),
        "wqkv_bias": ((1, 256), ttnn.bfloat16, ttnn.TILE_LAYOUT, ttnn.DRAM_MEMORY_CONFIG),
    },
    # prefill 128's capture, the token dimensions 128 -> 1024
    ("prefill", 1024): {
        "hidden_states": ((1, 1, 1024, 64), ttnn.bfloat16, ttnn.TILE_LAYOUT, ttnn.DRAM_MEMORY_CONFIG),
        "wqkv": ((64, 256), ttnn.bfloat16, ttnn.TILE_LAYOUT, ttnn.DRAM_MEMORY_CONFIG),
        "wqkv_bias": ((1, 256), ttnn.bfloat16, ttnn.TILE_LAYOUT, ttnn.DRAM_MEMORY_CONFIG),
    },
}


def gpt_oss_mini_attention_qkv_reference(mode, hidden_states, wqkv, wqkv_bias, num_heads, num_kv_heads):
    """The spec's reference: models.demos.gpt_oss_mini.reference.fused_ops.attention_qkv, on torch tensors shaped as the
    module's, returning what gpt_oss_mini_attention_qkv_ttnn returns, in its order."""
    return attention_qkv(
        mode=mode,
        hidden_states=hidden_states,
        wqkv=wqkv,
        wqkv_bias=wqkv_bias,
        num_heads=num_heads,
        num_kv_heads=num_kv_heads,
    )


def gpt_oss_mini_attention_qkv_ttnn_decode(
    hidden_states, wqkv, wqkv_bias, memory_config, num_heads, num_kv_heads
):
    """Lines 66-70 of models/demos/gpt_oss_mini/tt/attention.py (Attention.decode_forward), as a function."""
    xqkv = ttnn.linear(hidden_states, wqkv, bias=wqkv_bias, memory_config=memory_config)
    q, k, v = ttnn.experimental.nlp_create_qkv_heads_decode(
        xqkv, num_heads=num_heads, num_kv_heads=num_kv_heads, memory_config=memory_config
    )
    ttnn.deallocate(xqkv)
    return q, k, v


def gpt_oss_mini_attention_qkv_ttnn_prefill(
    hidden_states, wqkv, wqkv_bias, memory_config, num_heads, num_kv_heads
):
    """Lines 103-111 of models/demos/gpt_oss_mini/tt/attention.py (Attention.prefill_forward), as a function."""
    xqkv = ttnn.linear(hidden_states, wqkv, bias=wqkv_bias, memory_config=memory_config)
    q, k, v = ttnn.experimental.nlp_create_qkv_heads(
        xqkv,
        num_heads=num_heads,
        num_kv_heads=num_kv_heads,
        transpose_k_heads=False,
        memory_config=memory_config,
    )
    ttnn.deallocate(xqkv)
    return q, k, v


def gpt_oss_mini_attention_qkv_ttnn(mode, **arguments):
    """The mode's own function (decode and prefill differ in the module), given the arguments it takes."""
    function = {
        "decode": gpt_oss_mini_attention_qkv_ttnn_decode,
        "prefill": gpt_oss_mini_attention_qkv_ttnn_prefill,
    }[mode]
    taken = inspect.signature(function).parameters
    return function(**{key: value for key, value in arguments.items() if key in taken})


def _inputs(mode, seq_len, mesh_device):
    """Random torch tensors and their ttnn copies, with the module's per-device shape, dtype, layout and
    memory config."""
    tensors = INPUT_TENSORS.get((mode, seq_len))
    if tensors is None:
        raise NotImplementedError(
            f"TODO: the module's input tensors for {mode} {seq_len} (profile the module test)"
        )
    torch.manual_seed(0)  # the same inputs every run: the expected values stay comparable
    torch_inputs, tt_inputs = {}, {}
    for name, (shape, dtype, layout, memory_config) in tensors.items():
        torch_inputs[name] = torch.randn(shape)
        tt_inputs[name] = ttnn.from_torch(
            torch_inputs[name],
            dtype=dtype,
            layout=layout,
            memory_config=memory_config,
            device=mesh_device,
            mesh_mapper=ttnn.ReplicateTensorToMesh(mesh_device),
        )
    return torch_inputs, tt_inputs


def _run_attention_qkv_test(mesh_device, case: FusedOpCase, single_device_mesh=None):
    """Reference vs ttnn on the mesh, or on ``single_device_mesh``; then device perf or e2e perf."""
    mesh_device = single_device_mesh or mesh_device
    torch_inputs, tt_inputs = _inputs(case.mode, case.seq_len, mesh_device)
    references = gpt_oss_mini_attention_qkv_reference(
        mode=case.mode,
        hidden_states=torch_inputs.get("hidden_states"),
        wqkv=torch_inputs.get("wqkv"),
        wqkv_bias=torch_inputs.get("wqkv_bias"),
        num_heads=NUM_HEADS,
        num_kv_heads=NUM_KV_HEADS,
    )

    def op_fn():
        return gpt_oss_mini_attention_qkv_ttnn(
            case.mode,
            hidden_states=tt_inputs.get("hidden_states"),
            wqkv=tt_inputs.get("wqkv"),
            wqkv_bias=tt_inputs.get("wqkv_bias"),
            memory_config=MEMORY_CONFIG[case.mode],
            num_heads=NUM_HEADS,
            num_kv_heads=NUM_KV_HEADS,
        )

    outputs = op_fn()
    pccs = []
    for name, tt_output, ref_output in zip(["q", "k", "v"], outputs, references, strict=True):
        tt_torch = ttnn.to_torch(ttnn.get_device_tensors(tt_output)[0])
        _, pcc = compare_with_reference(tt_torch, ref_output, case.expected_pcc, f"attention_qkv_{name}")
        pccs.append(pcc)
    deallocate_outputs(outputs)
    assert min(pccs) >= case.expected_pcc, (
        f"Attention qkv test failed. PCC: {min(pccs)} < {case.expected_pcc}"
    )

    # DEVICE_PERF_ENV_VAR set (the profiled child of the device-perf test): signposted iterations;
    # else e2e perf.
    OP.measure(
        mesh_device,
        op_fn,
        case,
        tokens_for(case.mode, case.seq_len),
        single_device=single_device_mesh is not None,
    )
    return min(pccs)


# expected_pcc: lowest measured PCC rounded down; expected_perf_us: measured e2e us rounded up
# TODO: replace expected_perf_us with the theoretical target (guide step 8.2)
ATTENTION_QKV_CASES = [
    ("decode", 1, 0.999, 0.0),
    ("prefill", 128, 0.999, 0.0),
    ("prefill", 1024, 0.999, 0.0),
]


@pytest.mark.parametrize("mode, seq_len, expected_pcc, expected_perf_us", ATTENTION_QKV_CASES)
@FUSED_OP_MATRIX
def test_gpt_oss_mini_attention_qkv(
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
    pcc = _run_attention_qkv_test(mesh_device, case)
    logger.info(f"Test passed with PCC: {pcc}")


@pytest.mark.parametrize("mode, seq_len, expected_pcc, expected_perf_us", ATTENTION_QKV_CASES)
@FUSED_OP_MATRIX
def test_gpt_oss_mini_attention_qkv_single_device(
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
    pcc = _run_attention_qkv_test(mesh_device, case, single_device_mesh)
    logger.info(f"Single device test passed with PCC: {pcc}")


@pytest.mark.parametrize("mode, seq_len", [("decode", 1), ("prefill", 128)])
def test_gpt_oss_mini_attention_qkv_device_perf(mode, seq_len):
    OP.device_perf(mode, seq_len, tokens_for(mode, seq_len), DEVICE_PERF_TARGETS_US)


@pytest.mark.parametrize("mode, seq_len", [("decode", 1), ("prefill", 128)])
def test_gpt_oss_mini_attention_qkv_single_device_device_perf(mode, seq_len):
    OP.device_perf(mode, seq_len, tokens_for(mode, seq_len), DEVICE_PERF_TARGETS_US, single_device=True)
