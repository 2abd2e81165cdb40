"""`python -m tracy` (the sim's tracy shim) run as a subprocess on small fake children."""

import csv
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from ttnn_sim import tracy_cli

REPO = Path(__file__).resolve().parents[2]
SHIM = REPO / "ttnn_sim" / "shim"

# A child that profiles like the sim core would: op records per device, signposts through `import tracy`.
CHILD = textwrap.dedent(
    """
    import logging
    import sys
    import tracy
    from ttnn_sim import clock, profiler

    logging.basicConfig(level=logging.INFO)

    ops_per_device = int(sys.argv[1]) if len(sys.argv) > 1 else 2
    tracy.signpost("start")
    for i in range(ops_per_device):
        for device_id in (0, 1):
            clock.advance_host(100)
            profiler.emit({
                "kind": "op", "op_code": f"Op{i}", "op_type": "tt_dnn_device",
                "global_call_count": 1024 * (i + 1),
                "device_id": device_id, "arch": "wormhole_b0", "attributes": {"k": "v"},
                "host_start_ts": clock.host_time_ns(), "host_end_ts": clock.host_time_ns() + 10,
                "kernel_duration_ns": 500, "op_to_op_latency_ns": 0,
                "inputs": [{"shape": [1, 1, 32, 32], "padded_shape": [1, 1, 32, 32], "layout": "TILE",
                            "dtype": "BFLOAT16", "memory": f"DEV_{device_id}_DRAM_INTERLEAVED"}],
                "outputs": [], "sort_ts": clock.host_time_ns(),
            })
    clock.advance_host(100)
    tracy.signpost("stop", "done")
    if len(sys.argv) > 2:
        sys.exit(int(sys.argv[2]))
    """
)


@pytest.fixture
def child(tmp_path) -> Path:
    path = tmp_path / "child.py"
    path.write_text(CHILD)
    return path


def _tracy(*args, cwd) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SHIM), str(REPO)])}
    for variable in (
        "TT_METAL_PROFILER_DIR",
        "TT_METAL_DEVICE_PROFILER",
        "TT_METAL_PROFILER_PROGRAM_SUPPORT_COUNT",
    ):
        env.pop(variable, None)
    return subprocess.run(
        [sys.executable, "-m", "tracy", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


def _report_path(result) -> Path:
    match = re.search(r"OPs csv generated at: (\S+)", result.stderr)
    assert match, result.stderr
    return Path(match.group(1))


def _rows(path: Path) -> list[dict]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def test_report_lands_in_a_dated_folder_with_ops_and_signposts(tmp_path, child):
    out = tmp_path / "prof"
    options = ["-p", "-r", "-o", str(out), "-t", "5000", "-a", "device_kernel_duration"]
    result = _tracy(*options, "-m", f"python {child}", cwd=tmp_path)

    assert result.returncode == 0, result.stderr
    report = _report_path(result)
    date = report.parent.name
    assert re.fullmatch(r"\d{4}_\d{2}_\d{2}_\d{2}_\d{2}_\d{2}", date)
    assert report == out.resolve() / "reports" / date / f"ops_perf_results_{date}.csv"
    rows = _rows(report)
    assert [r["OP CODE"] for r in rows] == ["start", "Op0", "Op0", "Op1", "Op1", "stop"]
    assert [r["DEVICE ID"] for r in rows[1:5]] == ["0", "1", "0", "1"]
    assert rows[-1]["OP TYPE"] == "signpost" and rows[-1]["ATTRIBUTES"] == "done"
    assert "stop : done" in result.stderr  # tracy.signpost logs what it marks


def test_name_append_nests_the_report_under_the_name(tmp_path, child):
    result = _tracy("-r", "-o", "prof", "-n", "router", "-m", f"python {child}", cwd=tmp_path)

    report = _report_path(result)
    date = report.parent.name
    reports = (tmp_path / "prof").resolve() / "reports"
    assert report == reports / "router" / date / f"ops_perf_results_router_{date}.csv"


def test_default_output_dir_is_under_tt_metal_home(tmp_path, child, monkeypatch):
    monkeypatch.setenv("TT_METAL_HOME", str(tmp_path / "home"))
    result = _tracy("-r", "-m", f"python {child}", cwd=tmp_path)
    assert _report_path(result).is_relative_to((tmp_path / "home" / "generated" / "profiler").resolve())


def test_check_exit_code_fails_with_4_and_writes_no_report(tmp_path, child):
    out = tmp_path / "prof"
    result = _tracy("-r", "-o", str(out), "--check-exit-code", "-m", f"python {child} 2 1", cwd=tmp_path)

    assert result.returncode == 4
    assert "exited with a non-zero return code" in result.stderr
    assert not (out / "reports").exists()


def test_failing_command_without_check_exit_code_still_gets_a_report(tmp_path, child):
    result = _tracy("-r", "-o", "prof", "-m", f"python {child} 2 1", cwd=tmp_path)

    assert result.returncode == 0
    assert len(_rows(_report_path(result))) == 6


def test_op_support_count_drops_later_ops_per_device_with_a_warning(tmp_path, child):
    result = _tracy("-r", "-o", "prof", "--op-support-count", "3", "-m", f"python {child} 5", cwd=tmp_path)

    rows = _rows(_report_path(result))
    ops = [r for r in rows if r["OP TYPE"] == "tt_dnn_device"]
    assert [r["DEVICE ID"] for r in ops].count("0") == 3 and [r["DEVICE ID"] for r in ops].count("1") == 3
    assert [r["OP CODE"] for r in rows if r["OP TYPE"] == "signpost"] == ["start", "stop"]
    assert result.stderr.count("Profiler DRAM buffers were full, markers were dropped! device") == 2


def test_stale_logs_are_wiped_before_the_run(tmp_path):
    logs = tmp_path / "prof" / ".logs"
    logs.mkdir(parents=True)
    (logs / "ttnn_sim_ops.jsonl").write_text(
        '{"kind": "signpost", "header": "stale", "host_ts": 0, "sort_ts": 0}\n'
    )

    result = _tracy("-r", "-o", "prof", "-m", f"{sys.executable} -c pass", cwd=tmp_path)

    assert result.returncode == 0
    report = _report_path(result)
    assert report.read_bytes().count(b"\r\n") == 1  # a child that profiled nothing: header only
    assert _rows(report) == []


def test_interrupt_kills_the_child_process_group(tmp_path):
    pid_file = tmp_path / "child.pid"
    sleeper = tmp_path / "sleeper.py"
    sleeper.write_text(
        f"import os, time\nopen({str(pid_file)!r}, 'w').write(str(os.getpid()))\ntime.sleep(600)\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SHIM), str(REPO)])}
    argv = [sys.executable, "-m", "tracy", "-r", "-o", "prof", "-m", f"python {sleeper}"]
    tracy = subprocess.Popen(argv, cwd=tmp_path, env=env, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while not pid_file.exists() or not pid_file.read_text():
            assert time.monotonic() < deadline, "child never started"
            time.sleep(0.05)
        child_pid = int(pid_file.read_text())

        tracy.send_signal(signal.SIGTERM)

        assert tracy.wait(timeout=30) == 3
        with pytest.raises(ProcessLookupError):
            os.kill(child_pid, 0)
    finally:
        if tracy.poll() is None:
            tracy.kill()


@pytest.mark.parametrize(
    "words, module, expected",
    [
        (
            ["pytest tests/x.py -k 'a and b'"],
            True,
            [sys.executable, "-m", "pytest", "tests/x.py", "-k", "a and b"],
        ),
        (["pytest", "tests/x.py"], True, [sys.executable, "-m", "pytest", "tests/x.py"]),
        (["python3 -m pytest -q"], True, [sys.executable, "-m", "pytest", "-q"]),
        (["my_pkg.tool --flag"], True, [sys.executable, "-m", "my_pkg.tool", "--flag"]),
        (["script.py a"], False, [sys.executable, "script.py", "a"]),
        (["/bin/true"], False, ["/bin/true"]),
        ([], True, []),
    ],
)
def test_command_argv(words, module, expected):
    assert tracy_cli.command_argv(words, module) == expected


# ---- acceptance: a real (simulated) multi-device run through tracy, read by tt-perf-report -----------------

# tt-metal's ops_perf_results header, written out independently of ttnn_sim.profiler.
REFERENCE_BASE_HEADER = [
    "OP CODE",
    "OP TYPE",
    "GLOBAL CALL COUNT",
    "DEVICE ID",
    "DEVICE ARCH",
    "ATTRIBUTES",
    "MATH FIDELITY",
    "CORE COUNT",
    "AVAILABLE WORKER CORE COUNT",
    "SUB DEVICE ID",
    "PARALLELIZATION STRATEGY",
    "HOST START TS",
    "HOST END TS",
    "HOST DURATION [ns]",
    "DEVICE FW START CYCLE",
    "DEVICE FW END CYCLE",
    "OP TO OP LATENCY [ns]",
    "OP TO OP LATENCY BR/NRISC START [ns]",
    "DEVICE FW DURATION [ns]",
    "DEVICE KERNEL DURATION [ns]",
    "DEVICE KERNEL DURATION DM START [ns]",
    "DEVICE KERNEL DURATION PER CORE MIN [ns]",
    "DEVICE KERNEL DURATION PER CORE MAX [ns]",
    "DEVICE KERNEL DURATION PER CORE AVG [ns]",
    "DEVICE KERNEL FIRST TO LAST START [ns]",
    "DEVICE BRISC KERNEL DURATION [ns]",
    "DEVICE NCRISC KERNEL DURATION [ns]",
    "DEVICE TRISC0 KERNEL DURATION [ns]",
    "DEVICE TRISC1 KERNEL DURATION [ns]",
    "DEVICE TRISC2 KERNEL DURATION [ns]",
    "DEVICE ERISC KERNEL DURATION [ns]",
    "DEVICE COMPUTE CB WAIT FRONT [ns]",
    "DEVICE COMPUTE CB RESERVE BACK [ns]",
    "DISPATCH TOTAL CQ CMD OP TIME [ns]",
    "DISPATCH GO SEND WAIT TIME [ns]",
    "INPUTS",
    "OUTPUTS",
    "METAL TRACE ID",
    "METAL TRACE REPLAY SESSION ID",
    "COMPUTE KERNEL SOURCE",
    "COMPUTE KERNEL HASH",
    "DATA MOVEMENT KERNEL SOURCE",
    "DATA MOVEMENT KERNEL HASH",
    "PROGRAM HASH",
    "PROGRAM CACHE HIT",
    "PM IDEAL [ns]",
    "PM COMPUTE [ns]",
    "PM BANDWIDTH [ns]",
    "PM REQ I BW",
    "PM REQ O BW",
    "PM FPU UTIL (%)",
    "NOC UTIL (%)",
    "MULTICAST NOC UTIL (%)",
    "DRAM BW UTIL (%)",
    "DRAM BW UTIL PER CTRL (%)",
    "ETH BW UTIL (%)",
    "NPE CONG IMPACT (%)",
]
TENSOR_SUFFIXES = [
    "W_PAD[LOGICAL]",
    "Z_PAD[LOGICAL]",
    "Y_PAD[LOGICAL]",
    "X_PAD[LOGICAL]",
    "LAYOUT",
    "DATATYPE",
    "MEMORY",
]

MESH_TEST = textwrap.dedent(
    """
    import torch
    import ttnn
    from tracy import signpost


    def test_traced_loop_on_a_1x2_mesh():
        mesh = ttnn.open_mesh_device(ttnn.MeshShape(1, 2), trace_region_size=10_000_000)
        try:
            replicate = ttnn.ReplicateTensorToMesh(mesh)
            x = ttnn.from_torch(torch.randn(1, 1, 32, 64), dtype=ttnn.bfloat16, layout=ttnn.TILE_LAYOUT,
                                device=mesh, mesh_mapper=replicate)
            w = ttnn.from_torch(torch.randn(1, 1, 64, 32), dtype=ttnn.bfloat8_b, layout=ttnn.TILE_LAYOUT,
                                device=mesh, mesh_mapper=replicate)

            def step():
                y = ttnn.matmul(x, w)
                return ttnn.add(y, y)

            step()  # compile: fills the program cache that trace needs
            trace_id = ttnn.begin_trace_capture(mesh, cq_id=0)
            step()
            ttnn.end_trace_capture(mesh, trace_id, cq_id=0)
            ttnn.synchronize_device(mesh)
            signpost("start")
            for _ in range(3):
                ttnn.execute_trace(mesh, trace_id, cq_id=0, blocking=False)
                ttnn.synchronize_device(mesh)
            signpost("stop")
            ttnn.release_trace(mesh, trace_id)
        finally:
            ttnn.close_mesh_device(mesh)
    """
)


def _sim_core_available() -> bool:
    """Probed in a child so this test process never imports the `ttnn` shim."""
    probe = "import ttnn; ttnn.open_mesh_device"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SHIM), str(REPO)])}
    probed = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, timeout=120)
    return probed.returncode == 0


def test_traced_multi_device_run_gives_a_csv_tt_perf_report_accepts(tmp_path):
    if not _sim_core_available():
        pytest.skip("the sim core (ttnn.open_mesh_device in ttnn_sim/shim/ttnn) is not there yet")
    (tmp_path / "test_mesh.py").write_text(MESH_TEST)

    options = ["-p", "-r", "-o", "prof", "--check-exit-code", "-t", "5000"]
    result = _tracy(*options, "-m", "pytest test_mesh.py -q -p no:cacheprovider", cwd=tmp_path)

    assert result.returncode == 0, result.stdout + result.stderr
    report = _report_path(result)
    with report.open(newline="") as f:
        header = next(csv.reader(f))
    rows = _rows(report)
    n_inputs = max(int(m.group(1)) + 1 for c in header if (m := re.match(r"INPUT_(\d+)_", c)))
    n_outputs = max(int(m.group(1)) + 1 for c in header if (m := re.match(r"OUTPUT_(\d+)_", c)))
    groups = {
        "INPUTS": [f"INPUT_{i}_{s}" for i in range(n_inputs) for s in TENSOR_SUFFIXES],
        "OUTPUTS": [f"OUTPUT_{j}_{s}" for j in range(n_outputs) for s in TENSOR_SUFFIXES],
    }
    assert header == [c for name in REFERENCE_BASE_HEADER for c in groups.get(name, [name])]
    codes = [r["OP CODE"] for r in rows]
    window = rows[codes.index("start") + 1 : len(codes) - 1 - codes[::-1].index("stop")]
    assert window and all(r["OP TYPE"] == "tt_dnn_device" for r in window)
    assert {r["DEVICE ID"] for r in window} == {"0", "1"}
    assert {r["METAL TRACE REPLAY SESSION ID"] for r in window} == {"1", "2", "3"}
    assert all(r["METAL TRACE ID"] != "" for r in window)

    perf_report = REPO / ".venv" / "bin" / "tt-perf-report"
    if not perf_report.exists():
        perf_report = Path(sys.executable).parent / "tt-perf-report"
    for extra in ([], ["--start-signpost", "start", "--end-signpost", "stop", "--tracing-mode"]):
        table = subprocess.run(
            [str(perf_report), str(report), "--no-color", *extra], capture_output=True, text=True, timeout=300
        )
        assert table.returncode == 0, table.stdout + table.stderr
    assert "Matmul" in table.stdout and "No operations to display" not in table.stdout
