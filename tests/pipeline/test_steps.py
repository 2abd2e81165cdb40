"""Step logic on synthetic inputs: config compare, the checked window, shape check, unit-test expected
values and their justification, skips as verdicts, summary/index rendering."""

import csv
from pathlib import Path

import pytest

from pipeline import opsperf
from pipeline.steps import (
    _cases,
    _expected,
    _window,
    config_compare,
    index,
    shape_check,
    single_device,
    summary,
    unit_test,
)

COLUMNS = [
    "OP CODE",
    "OP TYPE",
    "DEVICE ID",
    "ATTRIBUTES",
    "DEVICE KERNEL DURATION [ns]",
    "OP TO OP LATENCY [ns]",
    "INPUT_0_Y_PAD[LOGICAL]",
    "INPUT_0_MEMORY",
    "OUTPUT_0_DATATYPE",
]


def row(code, device=0, y="32[32]", memory="DRAM_INTERLEAVED", dtype="BFLOAT16", attrs="{}", kernel="100"):
    return [code, "tt_dnn_device", str(device), attrs, kernel, "5", y, f"DEV_{device}_{memory}", dtype]


def signpost(name):
    return [name, "signpost"] + [""] * (len(COLUMNS) - 2)


def write(path: Path, rows) -> Path:
    with open(path, "w", newline="") as f:
        writer = csv.writer(f, lineterminator="\r\n")
        writer.writerow(COLUMNS)
        writer.writerows(rows)
    return path


def unit_csv(tmp_path, ops, iterations=10, devices=2, name="unit.csv", warmups=10, **kw):
    rows = [row("Setup")]
    for _ in range(warmups):
        for code in ops:
            rows += [row(code, d, **kw) for d in range(devices)]
    rows.append(signpost("start"))
    for _ in range(iterations):
        for code in ops:
            rows += [row(code, d, **kw) for d in range(devices)]
    rows.append(signpost("stop"))
    return write(tmp_path / name, rows)


def module_csv(tmp_path, ops, devices=2, **kw):
    return write(tmp_path / "module.csv", [row(code, d, **kw) for code in ops for d in range(devices)])


def test_config_compare_match(tmp_path):
    report = config_compare.compare(
        unit_csv(tmp_path, ["A", "B"]), module_csv(tmp_path, ["X", "A", "B", "Y"]), 10
    )
    assert report["result"] == "match" and report["match_starts"] == [1]
    assert report["unit_ops"] == ["A", "B"]
    assert "OUTPUT_0_DATATYPE" in report["columns"] and "DEVICE KERNEL DURATION [ns]" not in report["columns"]


def test_config_compare_mismatch_names_op_field_and_values(tmp_path):
    unit = unit_csv(tmp_path, ["A", "B"], memory="L1_INTERLEAVED")
    report = config_compare.compare(unit, module_csv(tmp_path, ["X", "A", "B"]), 10)
    assert report["result"] == "mismatch"
    assert {(m["op"], m["field"], m["unit"], m["module"]) for m in report["mismatches"]} == {
        ("A", "INPUT_0_MEMORY", "DEV_*_L1_INTERLEAVED", "DEV_*_DRAM_INTERLEAVED"),
        ("B", "INPUT_0_MEMORY", "DEV_*_L1_INTERLEAVED", "DEV_*_DRAM_INTERLEAVED"),
    }
    text = config_compare.render_text({**report, "case": "x decode"})
    assert (
        "MISMATCH row 0 op A key INPUT_0_MEMORY: fused=DEV_*_L1_INTERLEAVED module=DEV_*_DRAM_INTERLEAVED"
        in text
    )
    assert text.rstrip().endswith("Result: MISMATCH")
    assert config_compare.summary_line(report).startswith(
        "MISMATCH: A INPUT_0_MEMORY: unit 'DEV_*_L1_INTERLEAVED'"
    )


def test_config_compare_no_match_and_ambiguous(tmp_path):
    assert (
        config_compare.compare(unit_csv(tmp_path, ["A", "B"]), module_csv(tmp_path, ["B", "A"]), 10)["result"]
        == "no match"
    )
    ambiguous = config_compare.compare(
        unit_csv(tmp_path, ["A", "B"]), module_csv(tmp_path, ["A", "B", "C", "A", "B"]), 10
    )
    assert ambiguous["result"] == "ambiguous" and ambiguous["match_starts"] == [0, 3]
    assert "Result: MULTIPLE MATCHES (ambiguous)" in config_compare.render_text({**ambiguous, "case": "c"})


def test_device_id_in_memory_is_not_compared_but_the_rest_is(tmp_path):
    # The slowest device differs between the runs: device 1 in the unit test, device 0 in the module.
    rows = [signpost("start")] + [
        r for _ in range(10) for r in (row("A", 0, kernel="1"), row("A", 1, kernel="9"))
    ]
    unit = write(tmp_path / "u.csv", rows + [signpost("stop")])
    assert config_compare.compare(unit, module_csv(tmp_path, ["A"]), 10)["result"] == "match"


def test_window_figures_are_per_iteration_and_the_sums_say_so(tmp_path):
    figures = _window.window_figures(unit_csv(tmp_path, ["Matmul", "AllReduceAsync"]), 10)
    assert figures["one_iteration_ops"] == ["Matmul", "AllReduceAsync"] and figures["iterations"] == 10
    assert figures["total_kernel_duration_us"] == pytest.approx(0.2)
    assert figures["window_sum_kernel_duration_us"] == pytest.approx(10 * 0.2)
    assert figures["ccl_ops"] == ["AllReduceAsync"]


@pytest.mark.parametrize(
    "kwargs, words",
    [
        ({"iterations": 5}, ["holds 5 iterations", "configures 10 (DEVICE_PERF_ITERS)"]),
        # 20 iterations of [A, B] look like 10 of [A, B, A, B]: the warm-ups say which (facts say exactly)
        ({"iterations": 20}, ["5 iterations ran before", "holds 20 iterations, not DEVICE_PERF_ITERS = 10"]),
        ({"iterations": 21}, ["holds 21 iterations of the 2-op", "put signpost('start') after the warm-up"]),
        ({"warmups": 0}, ["0 iterations ran before signpost('start')", "PERF_WARMUP_ITERS = 10"]),
        ({"warmups": 9}, ["9 iterations ran before"]),
    ],
)
def test_a_wrong_window_is_a_profiler_failure_with_both_numbers(tmp_path, kwargs, words):
    with pytest.raises(opsperf.DevicePerfError) as error:
        _window.window_figures(unit_csv(tmp_path, ["A", "B"], **kwargs), 10)
    assert all(w in str(error.value) for w in words), str(error.value)


def test_a_window_that_is_not_an_exact_repetition_is_a_profiler_failure(tmp_path):
    rows = [row(c, d) for _ in range(10) for c in ("A", "B") for d in (0, 1)] + [signpost("start")]
    rows += [row(c, d) for _ in range(10) for c in ("A", "B") for d in (0, 1)] + [row("A", 0), row("A", 1)]
    with pytest.raises(opsperf.DevicePerfError, match="not an exact repetition"):
        _window.window_figures(write(tmp_path / "u.csv", rows + [signpost("stop")]), 10)


def test_shape_check_compares_first_device_shapes(tmp_path):
    multi = unit_csv(tmp_path, ["A", "B"], devices=2, name="multi.csv", y="64[64]")
    same = unit_csv(tmp_path, ["A", "B"], devices=1, name="same.csv", y="64[64]")
    other = unit_csv(tmp_path, ["A", "B"], devices=1, name="other.csv", y="32[32]")
    assert shape_check.compare_shapes(multi, same, 10) == ([], ["A", "B"])
    assert (
        shape_check.kernel_differences(
            {"A": {"avg_kernel_duration_ns": 100.0}}, {"A": {"avg_kernel_duration_ns": 101.9}}
        )
        == []
    )
    (difference,) = shape_check.kernel_differences(
        {"A": {"avg_kernel_duration_ns": 100.0}}, {"A": {"avg_kernel_duration_ns": 103.0}}
    )
    assert difference["op"] == "A" and (difference["multi"], difference["single"]) == (100.0, 103.0)
    mismatches, _ = shape_check.compare_shapes(multi, other, 10)
    assert {(m["op"], m["field"], m["multi"], m["single"]) for m in mismatches} == {
        ("A", "INPUT_0_Y_PAD[LOGICAL]", "64[64]", "32[32]"),
        ("B", "INPUT_0_Y_PAD[LOGICAL]", "64[64]", "32[32]"),
    }


def test_expected_values_from_parametrize_rows(workspace, spec_dir):
    rows = _expected.rows(workspace / "models/demo/tests/fused/test_demo_router.py", "test_demo_router")
    assert rows[0] == {
        "mode": "decode",
        "seq_len": 1,
        "expected_pcc": 0.99,
        "expected_perf_us": 0.0,
        "justification": "",
    }
    case = "test_demo_router[eager-program_cache-prefill-128-0.99-0.0]"
    assert _expected.match(case, rows)["mode"] == "prefill"
    cases = [
        {
            "id": case,
            "pcc": {"x": 0.9512},
            "atol": {},
            "e2e_us": [12.5],
            "expected": rows[1],
            "outcome": "passed",
        }
    ]
    suggestions, notes = unit_test.review("unit_test:demo_router", cases, {})
    assert (
        suggestions[0]["suggested_expected_pcc"] == 0.951
        and suggestions[0]["suggested_expected_perf_us"] == 12.5
    )
    assert any("suggest expected_pcc=0.951" in n for n in notes)
    assert any("expected_perf_us is 0.0" in n for n in notes)
    verdict, message, _ = unit_test.pcc_floor("unit_test:demo_router", cases, "")
    assert verdict == "failed" and "PCC x 0.9512 < 0.99" in message and case in message
    # The suggestion never goes below the last passing measurement, and the drop is named with both values.
    suggestions, notes = unit_test.review("t", cases, {case: {"pcc": {"x": 0.9987}, "atol": {}}})
    assert suggestions[0]["suggested_expected_pcc"] == 0.998
    assert any("PCC x went down: 0.9512 now, 0.9987 in the last passing run" in n for n in notes)


def test_a_lower_expected_pcc_passes_only_when_a_comment_justifies_it(tmp_path):
    test = tmp_path / "test_x.py"
    test.write_text(
        "import pytest\n\n"
        "# Prefill: ties in bf16 logits swap experts, so the PCC of the indices drops to ~0.98.\n"
        'CASES = [("decode", 1, 0.998), ("prefill", 128, 0.98)]\n\n\n'
        '@pytest.mark.parametrize("mode, seq_len, expected_pcc", CASES)\n'
        "def test_x(mode, seq_len, expected_pcc):\n    pass\n\n\n"
        '@pytest.mark.parametrize("mode, seq_len, expected_pcc", [("prefill", 128, 0.5)])\n'
        "def test_y(mode, seq_len, expected_pcc):\n    pass\n"
    )
    justified = _expected.rows(test, "test_x")
    assert "swap experts" in justified[1]["justification"]
    cases = [
        {"id": f"test_x[{t}-prefill-128-0.98]", "pcc": {"w": 0.985}, "expected": justified[1]}
        for t in ("eager", "trace")
    ]
    verdict, _, notes = unit_test.pcc_floor("u", cases, "ok")
    assert verdict == "passed" and len(notes) == 1 and "prefill/seq_len=128: PCC down to 0.9850" in notes[0]
    bare = _expected.rows(test, "test_y")
    assert bare[0]["justification"] == ""
    cases = [{"id": "test_y[prefill-128-0.5]", "pcc": {"w": 0.6}, "expected": bare[0]}]
    assert unit_test.pcc_floor("u", cases, "ok")[0] == "failed"


class _Outcome:
    verdict, message = "passed", "exit 0"


def test_required_cases_that_skip_fail_and_trace_without_program_cache_is_not_applicable():
    def case(params, outcome="passed", message=""):
        return {"id": f"test_x[{params}]", "outcome": outcome, "message": message, "pcc": {"a": 0.999}}

    cases = [
        case("eager-program_cache-decode-1"),
        case("trace-no_program_cache-decode-1"),
        case("eager-program_cache-prefill-1024", "skipped", "slow"),
    ]
    verdict, message = _cases.verdict(_Outcome(), cases, (128, 1024))
    assert verdict == "passed" and "1/2 cases passed" in message and "not applicable (guide 7.6" in message
    cases.append(case("trace-program_cache-prefill-128", "skipped", "no trace today"))
    verdict, message = _cases.verdict(_Outcome(), cases, (128, 1024))
    assert verdict == "failed" and "test_x[trace-program_cache-prefill-128]: no trace today" in message


def test_single_device_pcc_must_equal_the_multi_device_pcc():
    unit = {"figures": {"cases": [{"id": "test_x[eager-decode-1]", "pcc": {"w": 0.99981}}]}}
    same = [
        {
            "id": "test_x_single_device[eager-decode-1]",
            "outcome": "passed",
            "pcc": {"w_single_device": 0.99979},
        }
    ]
    other = [
        {
            "id": "test_x_single_device[eager-decode-1]",
            "outcome": "passed",
            "pcc": {"w_single_device": 0.9981},
        }
    ]
    assert single_device.pcc_differences(unit, same) == []
    assert single_device.pcc_differences(unit, other) == [
        "test_x_single_device[eager-decode-1] w_single_device: single 0.9981, multi 0.9998"
    ]


def test_summary_and_index_render(tmp_path):
    data = {
        "op": "router",
        "description": "d",
        "spec": "fused_ops/router.toml",
        "unit_test": "t.py",
        "modes": ["decode"],
        "decode_only": True,
        "backend": "sim",
        "verdict": "failed",
        "unexpected": ["decode only"],
        "steps": [
            {
                "task": "unit_perf:router:decode",
                "step": "unit_perf",
                "mode": "decode",
                "verdict": "passed",
                "message": "a | b",
                "figures": {"total_kernel_duration_us": 1.5, "printed_total_kernel_duration_us": 1.5012},
                "links": {"log": "unit_perf/decode/log.txt"},
            },
            {
                "task": "config_compare:router:decode",
                "step": "config_compare",
                "mode": "decode",
                "verdict": "failed",
                "message": "MISMATCH",
                "figures": {"result": "mismatch"},
                "links": {},
            },
        ],
    }
    md = summary.render_md(data)
    assert (
        "| unit_perf | decode | passed | total kernel duration per iteration (us) 1.500, as the device-perf test "
        "printed it (us) 1.501 | a \\| b | [log](unit_perf/decode/log.txt) |" in md
    )
    assert "- decode only" in md
    page = index.render_md([data])
    assert (
        "[router](router/summary.md) | failed" in page
        and "[d passed 1.500 µs/iter (test: 1.501)](router/unit_perf/decode/log.txt)" in page
    )


def test_config_compare_reads_columns_either_side_has(tmp_path):
    """The module's bias input (INPUT_2_*) must be compared even when the unit test's CSV has no such
    column."""
    unit = unit_csv(tmp_path, ["Linear"])
    module = tmp_path / "module_bias.csv"
    with open(module, "w", newline="") as f:
        writer = csv.writer(f, lineterminator="\r\n")
        writer.writerow([*COLUMNS, "INPUT_2_MEMORY"])
        writer.writerows([*row("Linear", d), f"DEV_{d}_DRAM_INTERLEAVED"] for d in range(2))
    report = config_compare.compare(unit, module, 10)
    assert report["result"] == "mismatch" and "INPUT_2_MEMORY" in report["columns"]
    assert [(m["field"], m["unit"]) for m in report["mismatches"]] == [("INPUT_2_MEMORY", "")]
    assert "Compared columns (either CSV): OP CODE, ATTRIBUTES" in config_compare.render_text(
        {**report, "case": "x"}
    )


def test_patch_verify_pairs_a_renamed_pcc_line_into_one_difference():
    from pipeline.logparse import Pcc
    from pipeline.steps import patch_verify

    baseline = [{"name": "Attention output", "text": "0.99975", "value": 0.99975}]
    rows = patch_verify.compare(baseline, [Pcc("Attention out", "0.8083", 0.8083)], None)
    assert len(rows) == 1 and not rows[0]["equal"]
    assert patch_verify._describe(rows[0]) == (
        "Attention output: baseline 0.99975, patched 0.8083 (printed as 'Attention out')"
    )


def test_a_justification_covers_only_values_it_states():
    row = {"expected_pcc": 0.98, "justification": "PCC drops to ~0.989; tt-metal expects 0.90."}
    assert _expected.justifies(row)
    assert not _expected.justifies({**row, "expected_pcc": 0.5})
    assert not _expected.justifies({**row, "justification": "PCC is low here."})
