"""Step logic on synthetic inputs: config compare (ref §3), one-iteration detection, shape check,
unit-test expected values, summary/index rendering."""

import csv
from pathlib import Path

import pytest

from pipeline.steps import _perf, config_compare, index, shape_check, summary, unit_test

COLUMNS = ["OP CODE", "OP TYPE", "DEVICE ID", "ATTRIBUTES", "DEVICE KERNEL DURATION [ns]", "OP TO OP LATENCY [ns]",
           "INPUT_0_Y_PAD[LOGICAL]", "INPUT_0_MEMORY", "OUTPUT_0_DATATYPE"]  # fmt: skip


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


def unit_csv(tmp_path, ops, iterations=10, devices=2, name="unit.csv", **kw):
    rows = [row("Warmup")]
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


def test_one_iteration_by_iteration_count_then_by_period():
    import pandas as pd

    merged = pd.DataFrame({"OP CODE": ["A", "B", "A", "C"] * 10})
    first, method = _perf.one_iteration(merged, 10)
    assert list(first["OP CODE"]) == ["A", "B", "A", "C"] and "10 iterations" in method
    fallback, method = _perf.one_iteration(pd.DataFrame({"OP CODE": ["A", "B", "A", "B", "A"]}), 10)
    assert list(fallback["OP CODE"]) == ["A", "B"] and method.startswith("period 2")


def test_window_figures_totals_and_ccl(tmp_path):
    figures = _perf.window_figures(unit_csv(tmp_path, ["Matmul", "AllReduceAsync"]), 10)
    assert figures["one_iteration_ops"] == ["Matmul", "AllReduceAsync"]
    assert figures["total_kernel_us"] == pytest.approx(10 * 0.2)
    assert figures["avg_kernel_us"] == pytest.approx(0.2)
    assert figures["ccl_ops"] == ["AllReduceAsync"]


def test_shape_check_compares_first_device_shapes(tmp_path):
    multi = unit_csv(tmp_path, ["A", "B"], devices=2, name="multi.csv", y="64[64]")
    same = unit_csv(tmp_path, ["A", "B"], devices=1, name="same.csv", y="64[64]")
    other = unit_csv(tmp_path, ["A", "B"], devices=1, name="other.csv", y="32[32]")
    assert shape_check.compare_shapes(multi, same, 10) == ([], ["A", "B"])
    mismatches, _ = shape_check.compare_shapes(multi, other, 10)
    assert {(m["op"], m["field"], m["multi"], m["single"]) for m in mismatches} == {
        ("A", "INPUT_0_Y_PAD[LOGICAL]", "64[64]", "32[32]"), ("B", "INPUT_0_Y_PAD[LOGICAL]", "64[64]", "32[32]")}  # fmt: skip


def test_expected_values_from_parametrize_rows(workspace, spec_dir):
    from pipeline.spec import Overrides, load_spec

    spec = load_spec(spec_dir / "demo_router.toml", Overrides(), Path.cwd())
    rows = unit_test.expected_rows(spec, "test_demo_router")
    assert rows[0] == {"mode": "decode", "seq_len": 1, "expected_pcc": 0.99, "expected_perf_us": 0.0}
    case = "test_demo_router[eager-program_cache-prefill-128-0.99-0.0]"
    assert unit_test.match_row(case, rows)["mode"] == "prefill"
    cases = [{"id": case, "pcc": {"x": 0.9512}, "e2e_us": [12.5], "expected": rows[1], "outcome": "passed"}]
    suggestions, notes = unit_test.review("unit_test:demo_router", cases)
    assert (
        suggestions[0]["suggested_expected_pcc"] == 0.951
        and suggestions[0]["suggested_expected_perf_us"] == 12.5
    )
    assert any("PCC 0.9512 < 0.99" in n for n in notes)
    assert any("suggest expected_pcc=0.951" in n for n in notes)
    assert any("expected_perf_us is 0.0" in n for n in notes)


def test_summary_and_index_render(tmp_path):
    data = {
        "op": "router", "description": "d", "spec": "fused_ops/router.toml", "unit_test": "t.py", "modes": ["decode"],
        "decode_only": True, "backend": "sim", "verdict": "failed", "unexpected": ["decode only"],
        "steps": [{"task": "unit_perf:router:decode", "step": "unit_perf", "mode": "decode", "verdict": "passed",
                   "message": "a | b", "figures": {"total_kernel_us": 1.5}, "links": {"log": "unit_perf/decode/log.txt"}},
                  {"task": "config_compare:router:decode", "step": "config_compare", "mode": "decode", "verdict": "failed",
                   "message": "MISMATCH", "figures": {"result": "mismatch"}, "links": {}}],
    }  # fmt: skip
    md = summary.render_md(data)
    assert (
        "| unit_perf | decode | passed | total_kernel_us 1.500 | a \\| b | [log](unit_perf/decode/log.txt) |"
        in md
    )
    assert "- decode only" in md
    page = index.render_md([data])
    assert (
        "[router](router/summary.md) | failed" in page
        and "[d passed 1.5 µs](router/unit_perf/decode/log.txt)" in page
    )
