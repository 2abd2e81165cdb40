"""Deliberately broken variants of the bundled router fused-op test (and its module and spec), each with
the task that must catch it, the verdict, and words its message must contain.

A mutant is one or more search/replace edits on one file (every occurrence, at least one): short anchors
survive reformatting of the rest of the file. Each runs as a full `doit run fused_op=router` on a copy of
the passed bundled run (doit's state and the artifacts come along, so only what the edit made stale
reruns); the FIRST step that does not pass (blocked ones aside) must be the last of `tasks`, with
`verdict` and `words` in its message. A task name may hold `*` (module-test tasks carry a digest of their
selection). The other names in `tasks` say which steps lead there (documentation only).
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
    tasks: tuple[str, ...]  # the last one must be the first step that catches it
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
            ("0.98, 37.5)", "0.97, 37.5)"),  # its prefill PCC drops to 0.979; the comment above covers 0.97
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
        UNIT,  # the e2e loop's warm-ups are seen first (the device-perf window's in unit_perf after it)
        "failed",
        ("the test sets PERF_WARMUP_ITERS = 0; the guide's is 10",),
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
            ("0.998, 37.5)", "0.5, 60.0)"),  # the careless fix lowers the PCC and raises the perf target
            ("0.98, 37.5)", "0.5, 60.0)"),
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

# Harness defects (issue 19): the test does not do what its case ids, rows and constants claim. The facts
# the child records (pipeline/facts_plugin.py) catch them in unit_test / single_device.
JUSTIFICATION = (
    "# expected_pcc = the lowest PCC measured on ttnn_sim (random and checkpoint weights), rounded down. The logits "
    "are\n# bf16: in prefill a few tokens have their 2nd and 3rd logits within one bf16 step, so top-k keeps the other "
    "expert\n# and the sorted-indices PCC drops to ~0.989 (one swapped expert among 128 tokens is enough; tt-metal's "
    "router test\n# expects 0.90 for the same reason). Decode's 32 tokens match exactly.\n"
)
TT_SIDES = (
    "        from_mesh(tt_indices, mesh_device, case.mode, token_dim=0),\n"
    "        from_mesh(tt_weights, mesh_device, case.mode, token_dim=0),\n"
)
HARNESS_MUTANTS = (
    Mutant(
        "reference_equals_the_ttnn_output",
        ROUTER_TEST,
        ((TT_SIDES + "        ref_indices,\n        ref_weights,\n", TT_SIDES + TT_SIDES),),
        UNIT,
        "failed",
        ("has the ttnn output on both sides", "test_gpt_oss_mini_router["),
    ),
    Mutant(
        "wrong_topk_in_the_reference_and_pcc_asserts_removed",
        ROUTER_TEST,
        (
            ("torch.topk(logits, top_k, dim=-1)", "torch.topk(logits, top_k, dim=-1, largest=False)"),
            ("    assert indices_ok, f", "    indices_ok or f"),
            ("    assert weights_ok, f", "    weights_ok or f"),
        ),
        UNIT,
        "failed",
        ("comp_pcc returned a failing PCC", "never asserted it"),
    ),
    Mutant(
        "pcc_logged_as_name_then_pcc",
        TEST_UTILS,
        (('logger.info(f"PCC {name}: {pcc}")', 'logger.info(f"{name} PCC: {pcc}")'),),
        UNIT,
        "failed",
        ("logged no `PCC <name>: <value>` line",),
    ),
    Mutant(
        "low_pcc_with_a_justification",
        ROUTER_TEST,
        (
            ("torch.topk(logits, top_k, dim=-1)", "torch.topk(logits, top_k, dim=-1, largest=False)"),
            ("0.998, 37.5)", "-0.9, 37.5)"),
            ("0.98, 37.5)", "-0.9, 37.5)"),
            (
                "# expects 0.90 for the same reason).",
                "# expects 0.90 for the same reason). A PCC of 0.5 is fine.",
            ),
        ),
        UNIT,
        "failed",
        ("< 0.99", "justify the lower expected_pcc"),
    ),
    Mutant(
        "justification_deleted",  # the digest keeps verdict comments: unit_test reruns and sees 0.98 unjustified
        ROUTER_TEST,
        ((JUSTIFICATION, ""),),
        UNIT,
        "failed",
        ("< 0.99", "justify the lower expected_pcc"),
    ),
    Mutant(
        "trace_cases_never_capture_or_replay",
        TEST_UTILS,
        (
            (
                "    if not trace_mode:\n        _run_synchronized(mesh_device, op_fn, warmup_iters)\n        profiler",
                "    if True:\n        _run_synchronized(mesh_device, op_fn, warmup_iters)\n        profiler",
            ),
        ),
        UNIT,
        "failed",
        ("claims trace but never replayed a trace", "-trace-"),
    ),
    Mutant(
        "no_program_cache_never_disables",
        TEST_UTILS,
        (("            mesh_device.disable_and_clear_program_cache()", "            pass"),),
        UNIT,
        "failed",
        ("claims no_program_cache", "ran with the program cache enabled"),
    ),
    Mutant(
        "no_program_cache_rows_removed",
        TEST_UTILS,
        (("    program_cache=(True, False),", "    program_cache=(True,),"),),
        UNIT,
        "failed",
        ("no case for decode eager no_program_cache random_weights",),
    ),
    Mutant(
        "single_device_test_on_the_whole_mesh",
        ROUTER_TEST,
        (
            (
                "single_device_mesh = mesh_device.create_submesh(ttnn.MeshShape((1, 1)))",
                "single_device_mesh = mesh_device.create_submesh(ttnn.MeshShape((2, 4)))",
            ),
        ),
        ("single_device:router",),
        "failed",
        ("claims single_device but the fused function ran on [8] device(s)",),
    ),
    Mutant(
        "real_weights_cases_use_random_weights",
        ROUTER_TEST,
        (
            (
                "TestFactory.setup_test(mesh_device, case.use_real_weights)",
                "TestFactory.setup_test(mesh_device, False)",
            ),
        ),
        UNIT,
        "failed",
        ("claims real_weights but read no checkpoint file",),
        env={"HF_MODEL": "<checkpoint>"},
    ),
    Mutant(
        "nine_e2e_warmups",
        ROUTER_TEST,
        (("PERF_WARMUP_ITERS = 10", "PERF_WARMUP_ITERS = 9"),),
        UNIT,
        "failed",
        ("the test sets PERF_WARMUP_ITERS = 9", "the guide's is 10"),
    ),
    Mutant(
        "twenty_e2e_iterations",
        ROUTER_TEST,
        (("PERF_MEASURE_ITERS = 100", "PERF_MEASURE_ITERS = 20"),),
        UNIT,
        "failed",
        ("the test sets PERF_MEASURE_ITERS = 20", "the guide's is 100"),
    ),
    Mutant(
        "e2e_times_10_and_divides_by_100",
        TEST_UTILS,
        (
            (
                "        _run_synchronized(mesh_device, op_fn, measure_iters)\n        profiler.end",
                "        _run_synchronized(mesh_device, op_fn, measure_iters // 10)\n        profiler.end",
            ),
        ),
        UNIT,
        "failed",
        ("divides by 100 but the timed window ran 10 fused calls",),
    ),
    Mutant(
        "atol_comparison_removed",
        TEST_UTILS,
        (("    _, deltas = comp_allclose(", "    _, deltas = (lambda *_: (True, 'Max ATOL Delta: 0.0'))("),),
        UNIT,
        "failed",
        ("never compares ATOL (comp_allclose)",),
    ),
    Mutant(
        "perf_assertion_removed",
        TEST_UTILS,
        (
            (
                "            assert perf_us <= case.expected_perf_us",
                "            perf_ok = perf_us <= case.expected_perf_us",
            ),
        ),
        UNIT,
        "failed",
        ("asserts no perf figure against expected_perf",),
    ),
    Mutant(
        "declared_prefill_seqlen_without_rows",
        ROUTER_TEST,
        ((', ("prefill", 1024, 0.98, 37.5)]', "]"),),
        UNIT,
        "failed",
        ("no case for prefill seq_len=1024",),
    ),
)

MUTANTS = MUTANTS + HARNESS_MUTANTS
