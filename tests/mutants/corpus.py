"""Deliberately broken variants of the bundled router fused-op test (and its module and spec), each with
the task that must catch it, the verdict, and words its message must contain.

A mutant is one or more search/replace edits on one file (every occurrence, at least one): short anchors
survive reformatting of the rest of the file. A task name may hold `*` (module-test tasks carry a digest
of their selection). `tasks` run in order on a copy of the passed bundled run; only
they run, so each mutant costs the steps that must catch it, not the whole graph.
"""

from dataclasses import dataclass, field

TESTS = "examples/gpt_oss_mini/models/demos/gpt_oss_mini/tests/fused_op_unit_tests"
ROUTER_TEST = f"{TESTS}/test_gpt_oss_mini_router.py"
TEST_UTILS = f"{TESTS}/fused_op_test_utils.py"
PERF_UTILS = f"{TESTS}/fused_op_device_perf_utils.py"
ROUTER_SPEC = "fused_ops/router.toml"


@dataclass(frozen=True)
class Mutant:
    name: str
    file: str
    edits: tuple[tuple[str, str], ...]
    tasks: tuple[str, ...]  # run in this order; the last one must catch it
    verdict: str
    words: tuple[str, ...]
    env: dict = field(default_factory=dict)


UNIT = ("unit_test:router",)
PERF_DECODE = ("unit_perf:router:decode",)
COMPARE_DECODE = ("unit_perf:router:decode", "config_compare:router:decode")
SHAPES_DECODE = ("single_perf:router:decode", "shape_check:router:decode")

MUTANTS = (
    Mutant(
        "bias_input_dropped",  # the reference dropped it too: the unit test passes, only config_compare sees it
        ROUTER_TEST,
        (
            ("weight, bias=bias, memory_config", "weight, memory_config"),
            ("functional.linear(hidden_states, weight, bias)", "functional.linear(hidden_states, weight)"),
            ("0.98, 0.0)", "0.97, 0.0)"),  # its prefill PCC drops to 0.979; the comment above covers 0.97
        ),
        ("unit_perf:router:prefill", "config_compare:router:prefill"),
        "failed",
        ("MISMATCH", "INPUT_2"),
    ),
    Mutant(
        "output_memory_config_differs",
        ROUTER_TEST,
        (("bias=bias, memory_config=memory_config", "bias=bias, memory_config=ttnn.DRAM_MEMORY_CONFIG"),),
        COMPARE_DECODE,
        "failed",
        ("MISMATCH", "MEMORY"),
    ),
    Mutant(
        "output_dtype_differs",
        ROUTER_TEST,
        (
            (
                "bias=bias, memory_config=memory_config",
                "bias=bias, memory_config=memory_config, dtype=ttnn.float32",
            ),
        ),
        COMPARE_DECODE,
        "failed",
        ("MISMATCH", "DATATYPE"),
    ),
    Mutant(
        "extra_typecast",
        ROUTER_TEST,
        (
            (
                "    weights, indices = ttnn.topk(logits,",
                "    logits = ttnn.typecast(logits, ttnn.bfloat16)\n    weights, indices = ttnn.topk(logits,",
            ),
        ),
        COMPARE_DECODE,
        "failed",
        ("does not occur in the module",),
    ),
    Mutant(
        "softmax_left_out",
        ROUTER_TEST,
        (
            (
                "weights = ttnn.softmax(weights, dim=-1,",
                "weights = ttnn.clone(weights) if True else ttnn.softmax(weights, dim=-1,",
            ),
        ),
        UNIT,
        "failed",
        ("cases failed", "Router weights test failed"),
    ),
    Mutant(
        "reference_activation_differs",
        ROUTER_TEST,
        (("indices, torch.softmax(top_values, dim=-1)", "indices, torch.sigmoid(top_values)"),),
        UNIT,
        "failed",
        ("cases failed", "PCC"),
    ),
    Mutant(
        "required_case_skips",
        ROUTER_TEST,
        (
            (
                "    indices_pcc, weights_pcc = _run_router_test(mesh_device, case)\n",
                '    if trace_mode and mode == "decode":\n        pytest.skip("trace is not ready yet")\n'
                "    indices_pcc, weights_pcc = _run_router_test(mesh_device, case)\n",
            ),
        ),
        UNIT,
        "failed",
        ("the guide requires skipped", "trace is not ready yet"),
    ),
    Mutant(
        "single_device_feeds_whole_input",
        ROUTER_TEST,
        (
            (
                "hidden_states = hidden_states[: tokens_per_device(case.mode, case.seq_len, mesh_device)]",
                "hidden_states = hidden_states",
            ),
        ),
        SHAPES_DECODE,
        "failed",
        ("single vs multi device", "multi"),
    ),
    Mutant(
        "single_device_claims_ccl",
        ROUTER_TEST,
        (
            (
                "    single_device_mesh = mesh_device.create_submesh(",
                '    pytest.skip("Single-device test is not applicable because gpt_oss_mini_router includes CCL ops '
                '(all_reduce).")\n    single_device_mesh = mesh_device.create_submesh(',
            ),
        ),
        ("single_device:router",),
        "failed",
        ("has no CCL op", "all_reduce"),
    ),
    Mutant(
        "five_measured_iterations",
        TEST_UTILS,
        (("    for _ in range(iters):\n", "    for _ in range(iters // 2):\n"),),
        PERF_DECODE,
        "profiler_failure",
        ("holds 5 iterations", "configures 10"),
    ),
    Mutant(
        "zero_warmups",
        ROUTER_TEST,
        (("PERF_WARMUP_ITERS = 10", "PERF_WARMUP_ITERS = 0"),),
        PERF_DECODE,
        "profiler_failure",
        ("before signpost('start')", "PERF_WARMUP_ITERS = 10"),
    ),
    Mutant(
        "warmups_inside_the_window",
        TEST_UTILS,
        (
            (
                "    _run_synchronized(mesh_device, op_fn, warmup_iters)\n    ttnn.synchronize_device(mesh_device)\n"
                '    if not trace_mode:\n        signpost("start")\n',
                '    signpost("start")\n    _run_synchronized(mesh_device, op_fn, warmup_iters)\n'
                "    ttnn.synchronize_device(mesh_device)\n    if not trace_mode:\n",
            ),
        ),
        ("unit_perf:router:prefill",),
        "profiler_failure",
        ("holds 20 iterations", "after the warm-up loop"),
    ),
    Mutant(
        "missing_stop_signpost",
        TEST_UTILS,
        (('signpost("stop")', 'logger.info("no stop")'),),
        PERF_DECODE,
        "failed",
        ("Missing signpost 'stop'",),
    ),
    Mutant(
        "device_perf_body_is_pass",
        ROUTER_TEST,
        (
            (
                "    OP.device_perf(mode, seq_len, tokens_for(mode, seq_len), DEVICE_PERF_TARGETS_US)",
                "    pass",
            ),
        ),
        PERF_DECODE,
        "profiler_failure",
        ("OPs csv generated at",),
    ),
    Mutant(
        "device_perf_divides_by_the_wrong_count",
        PERF_UTILS,
        (("kernel_us / iterations,", "kernel_us / (2 * iterations),"),),
        PERF_DECODE,
        "failed",
        ("printed kernel=", "more than 1 % apart"),
    ),
    Mutant(
        "selection_without_weights_filter_and_hf_model_set",
        PERF_UTILS,
        ((" and random_weights", ""),),
        PERF_DECODE,
        "profiler_failure",
        ("the signpost window holds", "iterations of the 3-op sequence", "configures 10"),
        env={"HF_MODEL": "<checkpoint>"},
    ),
    Mutant(
        "expected_pcc_lowered_for_a_wrong_ttnn_function",
        ROUTER_TEST,
        (
            (
                "weights = ttnn.softmax(weights, dim=-1,",
                "weights = ttnn.softmax(ttnn.mul(weights, weights), dim=-1,",
            ),
            ("0.998, 0.0)", "0.5, 0.0)"),
            ("0.98, 0.0)", "0.5, 0.0)"),
        ),
        UNIT,
        "failed",
        ("< 0.99", "justify the lower expected_pcc"),
    ),
    Mutant(
        "module_selection_matches_several_tests",
        ROUTER_SPEC,
        (('decode = "decode_32 and layer_0"', 'decode = "layer_0"'),),
        ("baseline:test_decoder_router-*:decode",),
        "failed",
        ("module_test.select.decode", "selects 3 tests"),
    ),
    # ---- engineer h5: the guide's device-perf constants, the single-device CSV, the oracle ------------
    Mutant(
        "device_perf_iters_nine",  # a positive integer, but not the guide's 10 measured iterations
        ROUTER_TEST,
        (("DEVICE_PERF_ITERS = 10", "DEVICE_PERF_ITERS = 9"),),
        PERF_DECODE,
        "failed",
        ("DEVICE_PERF_ITERS: the test sets 9", "the guide's number is 10"),
    ),
    Mutant(
        # 9 warm-ups + the accuracy call look like 10 in the CSV; the facts count 9
        "device_perf_nine_warmups",
        TEST_UTILS,
        (
            (
                "    _run_synchronized(mesh_device, op_fn, warmup_iters)\n"
                "    ttnn.synchronize_device(mesh_device)\n",
                "    _run_synchronized(mesh_device, op_fn, warmup_iters - 1)\n"
                "    ttnn.synchronize_device(mesh_device)\n",
            ),
        ),
        PERF_DECODE,
        "failed",
        ("PERF_WARMUP_ITERS:", "9 but the guide's number is 10"),
    ),
    Mutant(
        "single_device_perf_on_the_whole_mesh",  # profiles test_<op> (2x4 mesh) for the single-device figures
        TEST_UTILS,
        (('            f"test_{self.op}{infix}",\n', '            f"test_{self.op}",\n'),),
        ("single_perf:router:decode",),
        "failed",
        ("single-device device-perf CSV holds 8 devices (0, 1, 2, 3, 4, 5, 6, 7)",),
    ),
    Mutant(
        "unit_test_assertions_removed",  # PCC still logged, nothing asserted: only a wrong answer shows it
        ROUTER_TEST,
        (
            (
                '    assert indices_ok, f"Router indices test failed. PCC: {indices_pcc} < {expected_pcc}"\n',
                "",
            ),
            (
                '    assert weights_ok, f"Router weights test failed. PCC: {weights_pcc} < {expected_pcc}"\n',
                "",
            ),
        ),
        UNIT,
        "failed",
        ("the unit test passes when gpt_oss_mini_router_ttnn is wrong", "its assertion is blind"),
    ),
)
