"""pipeline.testkit: the helpers every fused-op unit test imports."""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from workspace_helpers import REPO, sim_env

from pipeline import testkit


# ---------------------------------------------------------------------------------------------- comp_pcc
def test_comp_pcc_identical_tensors_pass_with_exactly_one():
    x = torch.randn(4, 8)
    assert testkit.comp_pcc(x, x.clone()) == (True, 1.0)


def test_comp_pcc_matches_numpy_corrcoef_and_returns_numpy_float():
    torch.manual_seed(0)
    golden = torch.randn(64)
    calculated = golden + 0.3 * torch.randn(64)
    passing, pcc = testkit.comp_pcc(golden, calculated, 0.5)
    expected = np.corrcoef(golden.numpy(), calculated.numpy())[0, 1]
    assert passing and isinstance(pcc, np.floating)
    assert pcc == pytest.approx(expected, rel=1e-6)
    assert f"{pcc}".startswith("0.9")  # prints as a plain number in log lines


def test_comp_pcc_threshold_is_inclusive_and_fails_below():
    golden = torch.tensor([1.0, 2.0, 3.0, 4.0])
    calculated = torch.tensor([1.0, 2.5, 2.5, 4.0])
    _, pcc = testkit.comp_pcc(golden, calculated)
    assert testkit.comp_pcc(golden, calculated, pcc)[0]
    assert not testkit.comp_pcc(golden, calculated, pcc + 1e-9)[0]


def test_comp_pcc_nan_and_zero_special_cases():
    nan = torch.full((3,), float("nan"))
    assert testkit.comp_pcc(nan, nan.clone()) == (True, 1.0)
    assert testkit.comp_pcc(nan, torch.ones(3)) == (False, 0.0)
    assert testkit.comp_pcc(torch.zeros(3), torch.ones(3)) == (False, 0.0)


def test_comp_pcc_masks_non_finite_values_to_zero():
    golden = torch.tensor([1.0, 2.0, float("inf"), 4.0])
    calculated = torch.tensor([1.0, 2.0, 0.0, 4.0])
    assert testkit.comp_pcc(golden, calculated) == (True, 1.0)


def test_comp_pcc_casts_calculated_to_golden_dtype_and_upcasts_bf16():
    golden = torch.randn(32).to(torch.bfloat16)
    calculated = golden.float() * 2 + 1  # linear in golden; only the cast back to bf16 rounds it
    passing, pcc = testkit.comp_pcc(golden, calculated)
    assert passing and 0.9999 < pcc < 1.0


def test_comp_pcc_constant_tensors_are_a_pass():
    # corrcoef of a constant is undefined (masked) -> tt-metal reports a pass
    assert testkit.comp_pcc(torch.ones(5), torch.full((5,), 2.0)) == (True, 1.0)


def test_comp_allclose_reports_deltas():
    passing, message = testkit.comp_allclose(torch.tensor([1.0, 2.0]), torch.tensor([1.0, 2.5]), atol=0.1)
    assert not passing
    assert message == "Max ATOL Delta: 0.5, Max RTOL Delta: 0.20000000298023224"  # float32 0.5 / 2.5


def test_compare_with_reference_logs_the_pcc_line(caplog):
    caplog.set_level("INFO")
    x = torch.randn(16)
    passing, pcc = testkit.compare_with_reference(x, x, 0.99, "router_weights")
    assert passing and pcc == 1.0
    assert "PCC router_weights: 1.0" in caplog.text


# ---------------------------------------------------------------------------------------------- timing
def test_profiler_averages_per_count_and_clears():
    ticks = iter([0, 4_000_000_000, 10_000_000_000, 12_000_000_000])
    clock = testkit.Profiler(clock=lambda: next(ticks))
    clock.start("op")
    clock.end("op", PERF_CNT=4)  # 4 s over 4 iterations
    clock.start("op")
    clock.end("op")  # 2 s
    assert clock.get("op") == pytest.approx(1.5)
    clock.clear()
    assert clock.get("op") == 0


def test_host_time_ns_falls_back_to_wall_clock_without_ttnn():
    code = "from pipeline import testkit; a = testkit.host_time_ns(); b = testkit.host_time_ns(); print(b >= a > 0)"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(REPO)})  # fmt: skip
    assert out.stdout.strip() == "True", out.stderr


# ---------------------------------------------------------------------------------------------- benchmark JSON
def test_benchmark_data_requires_completed_steps():
    profiler = testkit.BenchmarkProfiler()
    profiler.start("step")
    with pytest.raises(AssertionError, match="Completed step 'step' for iteration 0 not found in profiler"):
        testkit.BenchmarkData().add_measurement(profiler, 0, "step", "x", 1.0)


def test_benchmark_json_field_order_and_no_overwrite(tmp_path):
    profiler, data = testkit.BenchmarkProfiler(), testkit.BenchmarkData()
    with profiler("run"), profiler("gpt_oss_mini_router_decode_seq1_trace_pcache"):
        pass
    data.add_measurement(profiler, 0, "gpt_oss_mini_router_decode_seq1_trace_pcache", "x-avg_us", 12.5,
                         step_warm_up_num_iterations=10)  # fmt: skip
    first = data.save_partial_run_json(profiler, "gpt_oss_mini_fused_ops", "gpt-oss-mini", output_dir=tmp_path,
                                       batch_size=32, input_sequence_length=1)  # fmt: skip
    second = data.save_partial_run_json(
        profiler, "gpt_oss_mini_fused_ops", "gpt-oss-mini", output_dir=tmp_path
    )
    assert first != second and first.exists() and second.name.endswith("_2.json")
    run = json.loads(first.read_text())
    assert list(run)[:3] == ["run_start_ts", "run_end_ts", "run_type"]
    assert list(run)[-1] == "measurements" and run["batch_size"] == 32 and run["precision"] is None
    assert run["run_start_ts"].endswith("Z") and "T" in run["run_start_ts"]
    (measurement,) = run["measurements"]
    assert list(measurement) == [
        "step_start_ts", "step_end_ts", "iteration", "step_name", "step_warm_up_num_iterations", "name", "value",
        "target", "device_power", "device_temperature",
    ]  # fmt: skip
    assert measurement["value"] == 12.5 and measurement["target"] is None


# ---------------------------------------------------------------------------------------------- profiler runs
def test_tracy_argv_has_the_real_flags_and_an_explicit_port(tmp_path):
    argv = testkit.tracy_argv('pytest t.py -k "a and b"', tmp_path, port=5123)
    assert argv[1:] == [
        "-m", "tracy", "-p", "-r", "-o", str(tmp_path), "--check-exit-code", "-a", "device_kernel_duration",
        "--op-support-count", "10000", "-t", "5123", "-m", 'pytest t.py -k "a and b"',
    ]  # fmt: skip
    assert 0 < testkit.free_port() < 65536


def test_find_ops_csv_prefers_the_reported_line(tmp_path):
    reported = tmp_path / "reports" / "2025_01_01_00_00_00" / "ops_perf_results_2025_01_01_00_00_00.csv"
    later = tmp_path / "reports" / "2099_01_01_00_00_00" / "ops_perf_results_2099_01_01_00_00_00.csv"
    for path in (reported, later):
        path.parent.mkdir(parents=True)
        path.write_text("OP CODE\r\n")
    output = f"2025-01-01 00:00:00.000 | INFO     | tracy:write_report:1 - OPs csv generated at: {reported}\n"
    assert testkit.find_ops_csv(output, tmp_path) == reported  # never the "latest" folder


def test_find_ops_csv_falls_back_to_the_one_new_report_and_refuses_to_guess(tmp_path):
    old = tmp_path / "reports" / "a" / "ops_perf_results_a.csv"
    old.parent.mkdir(parents=True)
    old.write_text("")
    before = {old}
    new = tmp_path / "reports" / "b" / "ops_perf_results_b.csv"
    new.parent.mkdir(parents=True)
    new.write_text("")
    assert testkit.find_ops_csv("no report line", tmp_path, before) == new
    with pytest.raises(FileNotFoundError, match="did not report its ops CSV"):
        testkit.find_ops_csv("no report line", tmp_path, set())


CHILD = textwrap.dedent(
    """
    import tracy
    from ttnn_sim import clock, profiler

    def op(code, device_id, kernel_ns, gap_ns):
        clock.advance_host(100)
        profiler.emit({
            "kind": "op", "op_code": code, "op_type": "tt_dnn_device", "global_call_count": 1024,
            "device_id": device_id, "arch": "wormhole_b0", "attributes": {}, "host_start_ts": clock.host_time_ns(),
            "host_end_ts": clock.host_time_ns() + 10, "kernel_duration_ns": kernel_ns, "op_to_op_latency_ns": gap_ns,
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
    """
)


def test_run_device_profiler_and_device_perf_from_csv_on_the_sim_tracy(tmp_path):
    pytest.importorskip("pipeline.opsperf", reason="pipeline.opsperf has not landed yet")
    child = tmp_path / "child.py"
    child.write_text(CHILD)
    env = sim_env()
    csv_path = testkit.run_device_profiler(f"python {child}", tmp_path / "profile", cwd=tmp_path, env=env)
    assert csv_path.is_file() and csv_path.is_relative_to(tmp_path / "profile" / "reports")

    result = testkit.device_perf_from_csv(csv_path, op_name="toy", step_name="toy_step", batch_size=32, seq_len=1,
                                          iters=2)  # fmt: skip
    # max over devices for compute ops (300), mean for the CCL (1500); the warm-up op is outside the window
    assert set(result.op_stats) == {"MatmulDeviceOperation", "AllReduceDeviceOperation"}
    assert result.op_stats["MatmulDeviceOperation"]["avg_kernel_duration_ns"] == 300
    assert result.op_stats["AllReduceDeviceOperation"]["avg_kernel_duration_ns"] == 1500
    assert result.total_kernel_us == pytest.approx((2 * 300 + 2 * 1500) / 1000)
    assert result.avg_kernel_us == pytest.approx(result.total_kernel_us / 2)
    testkit.check_device_perf(result, "decode", targets={})


def test_run_device_profiler_raises_when_the_command_fails(tmp_path):
    with pytest.raises(subprocess.CalledProcessError):
        testkit.run_device_profiler(
            'python -c "raise SystemExit(3)"', tmp_path / "p", cwd=tmp_path, env=sim_env()
        )
    assert not list((tmp_path / "p").rglob("*.csv"))


def test_check_device_perf_targets_and_messages():
    result = testkit.DevicePerfResult("op", "step", 20.0, 5.0, 2.0, 0.5, {"X": {}}, 32, 1)
    testkit.check_device_perf(result, "decode", {("decode", 1): {"kernel": 2.0, "op_to_op": 0.5}})
    with pytest.raises(AssertionError, match=r"Kernel perf regression: 2\.000us exceeds 1\.000us \(\+10%\)"):
        testkit.check_device_perf(result, "decode", {("decode", 1): {"kernel": 1.0, "op_to_op": 1.0}})
    with pytest.raises(AssertionError, match="Op-to-op perf regression"):
        testkit.check_device_perf(result, "decode", {("decode", 1): {"kernel": 9.0, "op_to_op": 0.1}})


def test_device_perf_command_selects_one_case():
    command = testkit.device_perf_command("models/x/test_a.py", "test_a", "decode", 1)
    assert command == (
        'pytest models/x/test_a.py::test_a -k "program_cache and not no_program_cache and trace and decode and 1'
        ' and random_weights"'
    )
    assert "eager and prefill and 128" in testkit.device_perf_command("t.py", "t", "prefill", 128)


def test_env_var_set_restores_the_environment(monkeypatch):
    monkeypatch.delenv("TESTKIT_DEMO_VAR", raising=False)
    with testkit.env_var_set("TESTKIT_DEMO_VAR"):
        assert os.environ["TESTKIT_DEMO_VAR"] == "1"
    assert "TESTKIT_DEMO_VAR" not in os.environ


# ---------------------------------------------------------------------------------------------- trace region
def test_resolve_trace_region_size_from_yaml(tmp_path):
    sizes = tmp_path / "sizes.yaml"
    sizes.write_text("sizes:\n  gpt-oss-mini:\n    skus:\n      T3K:\n        trace_region_size: 4096\n")
    params = {"fabric_config": "ring", testkit.TRACE_MODEL_KEY_PARAM: "gpt-oss-mini"}
    assert testkit.resolve_trace_region_size(params, sizes, "T3K") == {
        "fabric_config": "ring",
        "trace_region_size": 4096,
    }
    explicit = {**params, "trace_region_size": 7}
    assert testkit.resolve_trace_region_size(explicit, sizes, "T3K")["trace_region_size"] == 7
    with pytest.raises(testkit.TraceRegionSizeNotConfiguredError) as error:
        testkit.resolve_trace_region_size(params, sizes, "TG")
    assert str(error.value) == (
        f"trace_region_size is not configured for model='gpt-oss-mini' and SKU='TG'. "
        f"Add a (model, SKU) entry with trace_region_size to {sizes}."
    )


def test_required_trace_region_size_parses_both_wordings():
    mesh = "TT_FATAL: Creating trace buffers of size 81920B on MeshDevice 0, but only 4096B is allocated for trace region."
    single = "Creating trace buffers of size 2048B on device 3, but only 0B is allocated for trace region."
    assert testkit.required_trace_region_size(mesh) == 81920
    assert testkit.required_trace_region_size(single) == 2048
    assert testkit.required_trace_region_size("all good") is None


def test_testkit_imports_without_ttnn_or_tracy():
    code = "import sys, pipeline.testkit; print('ttnn' in sys.modules or 'tracy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(REPO)})  # fmt: skip
    assert out.stdout.strip() == "False", out.stderr


# ---------------------------------------------------------------------------------------------- test anatomy
MATRIX_TEST = textwrap.dedent(
    """
    import pytest
    from pipeline import testkit

    @pytest.fixture
    def mesh_device(request):
        return request.param

    @pytest.fixture
    def device_params(request):
        return request.param

    MATRIX = testkit.fused_op_matrix((2, 4), "mesh_2x4", {"fabric_config": "ring"})

    @pytest.mark.parametrize("mode, seq_len, expected_pcc, expected_perf_us", [("decode", 1, 0.99, 0.0)])
    @MATRIX
    def test_op(mode, seq_len, expected_pcc, expected_perf_us, use_real_weights, program_cache_enabled, trace_mode,
                mesh_device, device_params):
        assert mesh_device == (2, 4) and device_params == {"fabric_config": "ring"}
    """
)


def test_fused_op_matrix_gives_tt_metal_node_ids(tmp_path):
    (tmp_path / "test_matrix.py").write_text(MATRIX_TEST)
    out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--collect-only", "test_matrix.py"],
                         cwd=tmp_path, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})  # fmt: skip
    ids = sorted(line.split("::")[1] for line in out.stdout.splitlines() if "::" in line)
    assert len(ids) == 8, out.stdout + out.stderr
    assert "test_op[device_params0-mesh_2x4-trace-program_cache-random_weights-decode-1-0.99-0.0]" in ids
    assert "test_op[device_params0-mesh_2x4-eager-no_program_cache-real_weights-decode-1-0.99-0.0]" in ids


def test_fused_op_test_derives_names_and_paths_from_the_file(tmp_path):
    package = tmp_path / "ws" / "models" / "demo" / "tests"
    package.mkdir(parents=True)
    for folder in (package, package.parent, package.parent.parent):
        (folder / "__init__.py").write_text("")
    test_file = package / "test_demo_router.py"
    op = testkit.FusedOpTest(str(test_file), "DEMO_ROUTER_DEVICE_PERF", "demo", "demo_fused_ops")
    assert op.op == "demo_router"
    assert op.workspace_root == tmp_path / "ws"
    assert op.test_path == "models/demo/tests/test_demo_router.py"
