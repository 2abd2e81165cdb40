"""The bundled workspace's tt-metal helper modules (utility_functions, benchmarking_utils, process_model_log,
trace_region_sizes) and its per-model device-perf helper, imported from the workspace as its tests import
them."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest
import torch
from workspace_helpers import WORKSPACE, sim_env

sys.path.insert(0, str(WORKSPACE))
from models.common.utility_functions import Profiler, comp_allclose, comp_pcc  # noqa: E402
from models.demos.gpt_oss_mini.tests.fused_op_unit_tests import fused_op_device_perf_utils as perf  # noqa: E402
from models.demos.utils import trace_region_sizes  # noqa: E402
from models.perf.benchmarking_utils import BenchmarkData, BenchmarkProfiler  # noqa: E402
from tools.tracy import process_model_log  # noqa: E402


# ---------------------------------------------------------------------------------------------- comp_pcc
def test_comp_pcc_matches_numpy_corrcoef_and_returns_numpy_float():
    torch.manual_seed(0)
    golden = torch.randn(64)
    calculated = golden + 0.3 * torch.randn(64)
    passing, pcc = comp_pcc(golden, calculated, 0.5)
    assert passing and isinstance(pcc, np.floating)
    assert pcc == pytest.approx(np.corrcoef(golden.numpy(), calculated.numpy())[0, 1], rel=1e-6)
    assert comp_pcc(golden, golden.clone()) == (True, 1.0)


def test_comp_pcc_threshold_is_inclusive_and_fails_below():
    golden, calculated = torch.tensor([1.0, 2.0, 3.0, 4.0]), torch.tensor([1.0, 2.5, 2.5, 4.0])
    _, pcc = comp_pcc(golden, calculated)
    assert comp_pcc(golden, calculated, pcc)[0]
    assert not comp_pcc(golden, calculated, pcc + 1e-9)[0]


def test_comp_pcc_special_cases():
    nan = torch.full((3,), float("nan"))
    assert comp_pcc(nan, nan.clone()) == (True, 1.0)
    assert comp_pcc(nan, torch.ones(3)) == (False, 0.0)
    assert comp_pcc(torch.zeros(3), torch.ones(3)) == (False, 0.0)
    assert comp_pcc(torch.tensor([1.0, 2.0, float("inf"), 4.0]), torch.tensor([1.0, 2.0, 0.0, 4.0])) == (
        True,
        1.0,
    )
    assert comp_pcc(torch.ones(5), torch.full((5,), 2.0)) == (True, 1.0)  # undefined correlation: a pass
    golden = torch.randn(32).to(torch.bfloat16)
    passing, pcc = comp_pcc(golden, golden.float() * 2 + 1)  # cast to bf16, then compared in fp32
    assert passing and 0.9999 < pcc < 1.0


def test_comp_allclose_reports_deltas():
    passing, message = comp_allclose(torch.tensor([1.0, 2.0]), torch.tensor([1.0, 2.5]), atol=0.1)
    assert not passing
    assert message == "Max ATOL Delta: 0.5, Max RTOL Delta: 0.20000000298023224"  # float32 0.5 / 2.5


def test_profiler_averages_per_count_and_clears():
    ticks = iter([0, 4_000_000_000, 10_000_000_000, 12_000_000_000])
    profiler = Profiler(clock=lambda: next(ticks))
    profiler.start("op")
    profiler.end("op", PERF_CNT=4)  # 4 s over 4 iterations
    profiler.start("op")
    profiler.end("op")  # 2 s
    assert profiler.get("op") == pytest.approx(1.5)
    profiler.clear()
    assert profiler.get("op") == 0


def test_profiler_uses_the_simulators_host_clock():
    code = (
        "import ttnn; from models.common.utility_functions import host_time_ns; a = host_time_ns(); "
        "b = host_time_ns(); print(a == b == ttnn.sim.host_time_ns())"
    )
    env = sim_env(PYTHONPATH=os.pathsep.join([sim_env()["PYTHONPATH"], str(WORKSPACE)]))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert out.stdout.strip() == "True", out.stderr  # no op ran in between: the simulated clock stood still


# ---------------------------------------------------------------------------------------------- BenchmarkData
def test_benchmark_data_requires_completed_steps():
    profiler = BenchmarkProfiler()
    profiler.start("step")
    with pytest.raises(AssertionError, match="Completed step 'step' for iteration 0 not found in profiler"):
        BenchmarkData().add_measurement(profiler, 0, "step", "x", 1.0)
    with pytest.raises(AssertionError, match="Completed step 'run'"):
        BenchmarkData().save_partial_run_json(profiler, "t", "m")


def test_partial_run_json_field_order_location_and_no_overwrite(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    profiler, data = BenchmarkProfiler(), BenchmarkData()
    step = "gpt_oss_mini_router_decode_seq1_trace_pcache"
    with profiler("run"), profiler(step):
        pass
    data.add_measurement(profiler, 0, step, "x-avg_us", 12.5, step_warm_up_num_iterations=10)
    first = data.save_partial_run_json(
        profiler, "gpt_oss_mini_fused_ops", "gpt-oss-mini", batch_size=32, input_sequence_length=1
    )
    second = data.save_partial_run_json(profiler, "gpt_oss_mini_fused_ops", "gpt-oss-mini")
    start = profiler.start_times[(0, "run")].strftime("%Y-%m-%dT%H:%M:%SZ")
    assert first == tmp_path.joinpath("generated", "benchmark_data", f"partial_run_{start}.json").relative_to(
        tmp_path
    )
    assert second.name == f"partial_run_{start}_2.json" and first.exists()
    run = json.loads(first.read_text())
    assert list(run)[:3] == ["run_start_ts", "run_end_ts", "run_type"] and list(run)[-1] == "measurements"
    assert run["batch_size"] == 32 and run["precision"] is None and run["run_start_ts"] == start
    (measurement,) = run["measurements"]
    assert list(measurement) == [
        "step_start_ts",
        "step_end_ts",
        "iteration",
        "step_name",
        "step_warm_up_num_iterations",
        "name",
        "value",
        "target",
        "device_power",
        "device_temperature",
    ]
    assert measurement["value"] == 12.5 and measurement["target"] is None
    assert " " not in first.read_text()  # compact, as pydantic's model_dump_json


# ---------------------------------------------------------------------------------------------- trace regions
def test_trace_region_size_from_yaml_explicit_wins_and_missing_names_the_entry(tmp_path):
    sizes = tmp_path / "sizes.yaml"
    sizes.write_text("sizes:\n  gpt-oss-mini:\n    skus:\n      T3K:\n        trace_region_size: 4096\n")
    key = trace_region_sizes.TRACE_MODEL_KEY_PARAM
    params = {"fabric_config": "ring", key: "gpt-oss-mini"}
    resolved = trace_region_sizes.device_params_with_trace_region_size(params, "T3K", sizes)
    assert resolved == {"fabric_config": "ring", "trace_region_size": 4096}
    explicit = trace_region_sizes.device_params_with_trace_region_size(
        {**params, "trace_region_size": 7}, "T3K", sizes
    )
    assert explicit["trace_region_size"] == 7
    with pytest.raises(trace_region_sizes.TraceRegionSizeNotConfiguredError) as error:
        trace_region_sizes.device_params_with_trace_region_size(params, "TG", sizes)
    assert str(error.value) == (
        f"trace_region_size is not configured for model='gpt-oss-mini' and SKU='TG'. "
        f"Add a (model, SKU) entry with trace_region_size to {sizes}."
    )
    assert trace_region_sizes.resolve_trace_region_size("gpt-oss-mini", "T3K") > 0  # the bundled YAML


# ------------------------------------------------------------------------------------------- profiler paths
def test_profiler_folder_follows_tt_metal_s_environment(tmp_path, monkeypatch):
    monkeypatch.delenv("TT_METAL_PROFILER_DIR", raising=False)
    monkeypatch.delenv("TT_METAL_HOME", raising=False)
    monkeypatch.chdir(tmp_path)
    assert process_model_log.get_profiler_folder("x") == tmp_path / "generated" / "profiler" / "x"
    monkeypatch.setenv("TT_METAL_HOME", str(tmp_path / "home"))
    assert process_model_log.get_profiler_folder("x") == tmp_path / "home" / "generated" / "profiler" / "x"
    monkeypatch.setenv("TT_METAL_PROFILER_DIR", str(tmp_path / "isolated"))
    assert process_model_log.get_profiler_folder("x") == tmp_path / "isolated" / "x"


def test_latest_ops_log_is_the_lexicographically_last_run(tmp_path, monkeypatch):
    monkeypatch.setenv("TT_METAL_PROFILER_DIR", str(tmp_path))
    for date in ("2025_01_01_00_00_00", "2025_02_01_00_00_00"):
        (tmp_path / "sub" / "reports" / date).mkdir(parents=True)
    expected = (
        tmp_path / "sub" / "reports" / "2025_02_01_00_00_00" / "ops_perf_results_2025_02_01_00_00_00.csv"
    )
    assert process_model_log.get_latest_ops_log_filename("sub") == expected


CHILD = textwrap.dedent(
    """
    import os
    import tracy
    from ttnn_sim import clock, profiler

    print("child sees port", os.environ["TRACY_PORT"],
          "support", os.environ["TT_METAL_PROFILER_PROGRAM_SUPPORT_COUNT"])

    def op(code, device_id, kernel_ns, gap_ns):
        clock.advance_host(100)
        profiler.emit({
            "kind": "op", "op_code": code, "op_type": "tt_dnn_device", "global_call_count": 1024,
            "device_id": device_id, "arch": "wormhole_b0", "attributes": {},
            "host_start_ts": clock.host_time_ns(), "host_end_ts": clock.host_time_ns() + 10,
            "kernel_duration_ns": kernel_ns, "op_to_op_latency_ns": gap_ns,
            "inputs": [], "outputs": [], "sort_ts": clock.host_time_ns(),
        })

    op("WarmupDeviceOperation", 0, 999, 0)
    tracy.signpost("start")
    for _ in range(2):
        for device_id, kernel_ns in ((0, 100), (1, 300)):
            op("MatmulDeviceOperation", device_id, kernel_ns, 10)
        for device_id, kernel_ns in ((0, 1000), (1, 2000)):
            op("AllReduceDeviceOperation", device_id, kernel_ns, 20)
    tracy.signpost("stop")
    raise SystemExit(int(os.environ.get("CHILD_EXIT", "0")))
    """
)
PROFILE = textwrap.dedent(
    """
    import sys
    from models.demos.gpt_oss_mini.tests.fused_op_unit_tests import fused_op_device_perf_utils as perf
    stats, kernel_ns, op_to_op_ns = perf.collect_device_perf(
        f"python {sys.argv[1]}", "toy", use_signposts=True
    )
    print("RESULT", kernel_ns, op_to_op_ns, stats["MatmulDeviceOperation"]["avg_kernel_duration_ns"],
          stats["AllReduceDeviceOperation"]["avg_kernel_duration_ns"], sorted(stats))
    """
)


def _profile(tmp_path, **env):
    (tmp_path / "child.py").write_text(CHILD)
    paths = os.pathsep.join([sim_env()["PYTHONPATH"], str(WORKSPACE)])
    return subprocess.run(
        [sys.executable, "-c", PROFILE, str(tmp_path / "child.py")],
        cwd=tmp_path,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=sim_env(PYTHONPATH=paths, TT_METAL_PROFILER_DIR=str(tmp_path / "prof"), **env),
    )


def test_device_perf_run_honours_the_callers_dir_port_and_count_and_merges_devices(tmp_path):
    run = _profile(tmp_path, TRACY_PORT="5123", TT_METAL_PROFILER_PROGRAM_SUPPORT_COUNT="777")
    out = run.stdout
    assert run.returncode == 0, out
    assert "child sees port 5123 support 777" in out  # the tracy child shares this process's stdout
    assert "-t 5123" in out and "--op-support-count 777" in out and "-a device_kernel_duration" in out
    reported = [
        line.split("OPs csv generated at: ")[1]
        for line in out.splitlines()
        if "OPs csv generated at: " in line
    ]
    assert len(reported) == 1 and reported[0].startswith(str(tmp_path / "prof" / "toy" / "reports"))
    # max over devices for compute ops (300), mean for the collective (1500); the warm-up op is outside the
    # window
    result = next(line for line in out.splitlines() if line.startswith("RESULT")).split()
    assert result[1:5] == ["3600.0", "60.0", "300.0", "1500.0"]
    assert "WarmupDeviceOperation" not in " ".join(result[5:])


def test_device_perf_run_fails_when_the_profiled_command_fails(tmp_path):
    run = _profile(tmp_path, CHILD_EXIT="3")
    assert run.returncode != 0 and "CalledProcessError" in run.stdout
    assert not list((tmp_path / "prof").rglob("*.csv"))


# --------------------------------------------------------------------------------------- device-perf helper
def _report(tmp_path, rows) -> str:
    columns = ["OP CODE", "OP TYPE", "DEVICE ID", perf.KERNEL, perf.OP_TO_OP]
    path = tmp_path / "ops.csv"
    pd.DataFrame(rows, columns=columns).to_csv(path, index=False)
    return path


def test_signpost_window_is_first_start_to_last_stop_and_missing_markers_fail(tmp_path):
    rows = [
        ["start", "signpost", None, None, None],
        ["A", "tt_dnn_device", 0, 5, 1],
        ["stop", "signpost", None, None, None],
        ["A", "tt_dnn_device", 0, 7, 1],
        ["stop", "signpost", None, None, None],
        ["A", "tt_dnn_device", 0, 100, 1],
    ]
    stats, kernel_ns, _ = perf.ops_perf_stats(_report(tmp_path, rows), use_signposts=True)
    assert stats["A"]["call_count"] == 2 and kernel_ns == 12
    for markers, message in (
        (["x"], "Missing signpost 'start'"),
        (["start"], "Missing signpost 'stop'"),
        (["stop", "start"], "Signpost 'stop' must come after 'start'."),
        ([], "No signposts"),
    ):
        frame = [[m, "signpost", None, None, None] for m in markers] + [["A", "tt_dnn_device", 0, 5, 1]]
        with pytest.raises(AssertionError, match=message):
            perf.ops_perf_stats(_report(tmp_path, frame), use_signposts=True)


@pytest.fixture
def logged():
    """The text of what the helpers log with loguru during the test."""
    from loguru import logger

    messages = []
    sink = logger.add(messages.append, format="{message}")
    yield messages
    logger.remove(sink)


def test_merge_lets_a_device_whose_next_op_differs_wait(logged):
    frame = pd.DataFrame(
        {
            "OP CODE": ["A", "B", "B", "A"],
            "OP TYPE": ["tt_dnn_device"] * 4,
            "DEVICE ID": [0, 0, 1, 1],
            perf.KERNEL: [1.0, 2.0, 3.0, 4.0],
            perf.OP_TO_OP: [0.0] * 4,
        }
    )
    merged = perf.merge_device_rows_for_perf(frame)
    # device 1 waits at B while device 0 runs A; B merges both (slowest: 3.0); device 1's A comes alone
    assert list(merged["OP CODE"]) == ["A", "B", "A"] and list(merged[perf.KERNEL]) == [1.0, 3.0, 4.0]
    text = "".join(logged)
    assert "Warning: A at index 0 not present in CSV for 1 devices [1]" in text
    assert "Warning: Device 0 is missing operation A at index 2" in text


def test_the_one_selection_rule():
    assert perf.device_perf_selection("decode", 1) == (
        "program_cache and not no_program_cache and trace and decode and 1 and random_weights"
    )
    assert perf.device_perf_selection("prefill", 128) == (
        "program_cache and not no_program_cache and eager and prefill and 128 and random_weights"
    )
    assert " eager and decode " in perf.device_perf_selection("decode", 1, use_trace=False)


def test_device_perf_targets_and_messages():
    result = perf.DevicePerfResult("op", "op_device_perf_decode_seq1", 20.0, 5.0, 2.0, 0.5, {"X": {}}, 32, 1)
    perf.check_device_perf(result, "decode", {})
    perf.check_device_perf(result, "decode", {("decode", 1): {"kernel": 2.0, "op_to_op": 0.5}})
    with pytest.raises(AssertionError, match=r"Kernel perf regression: 2\.000us exceeds 1\.000us \(\+10%\)"):
        perf.check_device_perf(result, "decode", {("decode", 1): {"kernel": 1.0, "op_to_op": 1.0}})
    with pytest.raises(AssertionError, match="Op-to-op perf regression"):
        perf.check_device_perf(result, "decode", {("decode", 1): {"kernel": 9.0, "op_to_op": 0.1}})


def test_device_perf_lines(logged):
    result = perf.DevicePerfResult("op", "step", 45.0, 9.0, 4.5, 0.9, {"X": {"call_count": 10}}, 32, 1)
    perf.log_device_perf(result)
    err = "".join(logged)
    assert "Device perf totals (10 iterations): kernel=45.000 us, op_to_op=9.000 us" in err
    assert "Device perf per-iteration averages: kernel=4.500 us, op_to_op=0.900 us" in err
    assert 'Device perf per-op averages (ns): {\n  "X": {' in err
