"""pipeline.logparse on tt-metal-shaped output."""

from pipeline import logparse

LOGURU = "2025-06-01 12:34:56.789 | INFO     | test_modules:run:42 - "


def test_module_pcc_lines_with_and_without_loguru_prefix():
    output = (
        f"{LOGURU}TopK Router indices test passed. Output: 0.9987654321\n"
        "Decoder Layer test passed. Output: 1.0\n"
        f"{LOGURU}Experts test failed. Output: 0.5\n"
        "unrelated line\n"
    )
    pccs = logparse.module_pccs(output)
    assert [(p.name, p.text, p.passed) for p in pccs] == [
        ("TopK Router indices", "0.9987654321", True),
        ("Decoder Layer", "1.0", True),
        ("Experts", "0.5", False),
    ]


def test_unit_pcc_and_e2e_perf_lines():
    output = f"{LOGURU}PCC router_indices: 0.998\n{LOGURU}Perf avg: 12.345 us over 100 iters (warmup 10)\n"
    assert [(p.name, p.value) for p in logparse.unit_pccs(output)] == [("router_indices", 0.998)]
    junit_captured = "INFO     test_a:test_a.py:5 PCC router_weights: 0.991\nassert x, 'Router test failed. PCC: 0.5 < 0.9'"
    assert [(p.name, p.text) for p in logparse.unit_pccs(junit_captured)] == [("router_weights", "0.991")]
    assert logparse.e2e_perf(output) == [{"us": 12.345, "iters": 100, "warmup": 10}]


def test_trace_region_and_profiler_lines():
    text = (
        "RuntimeError: TT_FATAL: Creating trace buffers of size 123456B on MeshDevice 0, "
        "but only 1000B is allocated for trace region.\n"
        "OPs csv generated at: /tmp/x/reports/2025_01_01_00_00_00/ops_perf_results_2025_01_01_00_00_00.csv\n"
        "Profiler DRAM buffers were full, markers were dropped! device 0, op support count 5.\n"
    )
    assert logparse.required_trace_region_size(text) == 123456
    assert logparse.ops_csv_paths(text) == [
        "/tmp/x/reports/2025_01_01_00_00_00/ops_perf_results_2025_01_01_00_00_00.csv"
    ]
    assert logparse.dropped_profiler_rows(text)
    assert logparse.required_trace_region_size("on device 3, but only") is None


def test_junit_cases(tmp_path):
    path = tmp_path / "junit.xml"
    path.write_text(
        '<?xml version="1.0"?><testsuites><testsuite>'
        '<testcase classname="m" name="test_a[x]" time="1.5"><system-out>PCC a: 0.99</system-out></testcase>'
        '<testcase classname="m" name="test_b" time="0.1"><failure message="assert 1 == 2">tb</failure></testcase>'
        '<testcase classname="m" name="test_c" time="0"><skipped message="has CCL ops (all_reduce)"/></testcase>'
        "</testsuite></testsuites>"
    )
    cases = logparse.junit_cases(path)
    assert [(c.name, c.outcome, c.message) for c in cases] == [
        ("test_a[x]", "passed", ""),
        ("test_b", "failed", "assert 1 == 2"),
        ("test_c", "skipped", "has CCL ops (all_reduce)"),
    ]
    assert cases[0].output == "PCC a: 0.99" and cases[0].time_s == 1.5
    assert logparse.junit_cases(tmp_path / "missing.xml") == []


def test_collected_ids():
    output = "models/t.py::test_x[decode_32-layer_0]\nmodels/t.py::test_x[prefill_128]\n\n2 tests collected in 0.1s\n"
    assert logparse.collected_ids(output) == [
        "models/t.py::test_x[decode_32-layer_0]",
        "models/t.py::test_x[prefill_128]",
    ]
