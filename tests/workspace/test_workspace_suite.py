"""The bundled workspace's own pytest, run as the pipeline runs it: a subprocess from the workspace root with
only the sim shim on PYTHONPATH (acceptance 1 and 3 of the workspace).

CI cost: the module test runs every mode; of the fused-op tests the decode and prefill_128 cases of the
program-cache variants run here (the no_program_cache and prefill_1024 cases take the same code paths; the
full workspace run is ``pytest`` in examples/gpt_oss_mini).
"""

import csv

import pytest
from workspace_helpers import requires_sim, run_workspace_pytest

pytestmark = requires_sim

FUSED = "models/demos/gpt_oss_mini/tests/fused_op_unit_tests"
MODULE_TEST = "models/demos/gpt_oss_mini/tests/unit/test_modules.py::test_decoder"
MODULE_PCC_LINES = (
    "Attention test passed. Output: ",
    "RMS Norm test passed. Output: ",
    "TopK Router indices test passed. Output: ",
    "TopK Router weights test passed. Output: ",
    "Experts test passed. Output: ",
    "MLP Pipeline test passed. Output: ",
    "Decoder Layer test passed. Output: ",
)


@pytest.mark.parametrize("case", ["decode_32", "prefill_128", "prefill_1024"])
def test_module_test_logs_one_pcc_line_per_module(case):
    run = run_workspace_pytest(MODULE_TEST, "-k", f"{case} and layer_0")
    assert run.returncode == 0, run.output[-3000:]
    for line in MODULE_PCC_LINES:
        found = run.lines(line)
        assert len(found) == 1, f"{line!r} appears {len(found)} times"
        assert " | INFO     | " in found[0], "PCC lines use loguru's line shape"
    assert run.lines("✓ Tests completed successfully: attention, rms_norm, router, experts, mlp, decoder")


def test_module_test_runs_only_the_selected_modules():
    run = run_workspace_pytest(MODULE_TEST, "-k", "decode_32", "--test-modules", "router")
    assert run.returncode == 0, run.output[-3000:]
    assert run.lines("TopK Router weights test passed") and not run.lines("Experts test passed")


def test_fused_op_unit_tests_pass():
    run = run_workspace_pytest(
        FUSED, "-k", "program_cache and not no_program_cache and not prefill-1024 and not device_perf", "-rs"
    )
    assert run.returncode == 0, run.output[-3000:]
    assert (
        run.lines("PCC router_weights: ")
        and run.lines("PCC experts_mlp_single_device: ")
        and run.lines("PCC experts: ")
    )
    ccl_skips = run.lines(
        "Single-device test is not applicable because gpt_oss_mini_experts includes CCL ops"
    )
    assert ccl_skips, "the experts single-device test names its CCL ops when it skips"


def _window_rows(csv_path):
    """tt_dnn_device rows strictly between the first start and the last stop signpost."""
    with open(csv_path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    markers = [i for i, row in enumerate(rows) if row["OP TYPE"] == "signpost"]
    starts = [i for i in markers if rows[i]["OP CODE"] == "start"]
    stops = [i for i in markers if rows[i]["OP CODE"] == "stop"]
    return [row for row in rows[starts[0] + 1 : stops[-1]] if row["OP TYPE"] == "tt_dnn_device"]


@pytest.mark.parametrize(
    "test_id, traced",
    [
        ("test_gpt_oss_mini_router_device_perf[decode-1]", True),
        ("test_gpt_oss_mini_experts_mlp_device_perf[prefill-128]", False),
    ],
)
def test_device_perf_profiles_the_signpost_window(test_id, traced, tmp_path):
    module = "test_gpt_oss_mini_router.py" if "router" in test_id else "test_gpt_oss_mini_experts_mlp.py"
    run = run_workspace_pytest(f"{FUSED}/{module}::{test_id}", TT_METAL_PROFILER_DIR=str(tmp_path))
    assert run.returncode == 0, run.output[-3000:]
    assert run.lines("Device perf totals (10 iterations): kernel=")
    assert run.lines("Device perf per-iteration averages: kernel=")
    (command,) = run.lines("Running device perf for ")
    assert command.endswith('and random_weights"'), "real-weights cases never enter the profiled window"
    reported = run.lines("Device perf ops CSV: ")
    assert len(reported) == 1
    csv_path = reported[0].split("Device perf ops CSV: ")[1].strip()
    assert csv_path.startswith(str(tmp_path / "gpt_oss_mini_fused_ops_device_perf" / "reports"))
    window = _window_rows(csv_path)
    assert window
    trace_ids = {row["METAL TRACE ID"] for row in window}
    if traced:  # decode is profiled as replays of one captured iteration: nothing else in the window
        assert "" not in trace_ids and all(row["METAL TRACE REPLAY SESSION ID"] for row in window)
    else:
        assert trace_ids == {""}
