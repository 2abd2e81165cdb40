"""A tiny fake workspace laid out like a tt-metal checkout, a spec for it, and a fake repo to run doit in.

The "device" is ``models/demo/tt/fake_device.py``: each op computes with plain ints and, when the
device profiler is on (under ``python -m tracy``), emits op records through ``ttnn_sim.profiler`` on a
two-device mesh, exactly what the sim core would emit. So every step of the pipeline runs for real in
well under a second per process, without the simulator's core.
"""

import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def as_in_a_terminal() -> None:
    """A `preexec_fn`: SIGINT as a terminal's foreground process has it (Python's KeyboardInterrupt), even
    when these tests were started in the background, where the shell hands its children SIGINT ignored."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


PYTEST_INI = """\
[pytest]
log_cli = true
log_cli_level = INFO
log_cli_format = %(asctime)s.%(msecs)03d | %(levelname)-8s | %(name)s:%(funcName)s:%(lineno)d - %(message)s
log_cli_date_format = %Y-%m-%d %H:%M:%S
"""

FAKE_DEVICE = '''\
"""Ops of a fake two-device mesh: ints for data, ttnn_sim.profiler records for the device profiler."""

DEVICES = 2  # the single-device test sets 1 (its ops run on the first device only)


def op(code, memory="DRAM_INTERLEAVED", shape=(1, 1, 32, 64)):
    try:
        from ttnn_sim import clock, profiler
    except ImportError:
        return
    for device in range(DEVICES):
        clock.advance_host(100)
        tensor = {"shape": list(shape), "padded_shape": list(shape), "layout": "TILE", "dtype": "BFLOAT16",
                  "memory": f"DEV_{device}_{memory}"}
        profiler.emit({
            "kind": "op", "op_code": code, "op_type": "tt_dnn_device", "global_call_count": 1024, "device_id": device,
            "arch": "wormhole_b0", "attributes": {"memory": memory}, "host_start_ts": clock.host_time_ns(),
            "host_end_ts": clock.host_time_ns() + 10, "kernel_duration_ns": 600 - 100 * device,
            "op_to_op_latency_ns": 50, "inputs": [tensor], "outputs": [tensor], "sort_ts": clock.host_time_ns(),
        })


def add(x, y, memory="DRAM_INTERLEAVED"):
    op("BinaryNgDeviceOperation", memory)
    return x + y


def mul(x, y, memory="DRAM_INTERLEAVED"):
    op("MatmulDeviceOperation", memory)
    return x * y
'''

MODEL = '''\
"""Toy module: the fused sequence is the two statements from `a = ` to `b = `."""

from models.demo.tt.fake_device import add, mul, op


def forward(x):
    op("EmbeddingsDeviceOperation")
    a = add(x, 1)
    b = mul(a, 2)
    op("LayerNormDeviceOperation")
    return b
'''

MODULE_TEST = """\
import logging
import os
import time

import pytest

from models.demo.tt.model import forward

logger = logging.getLogger(__name__)


@pytest.mark.parametrize("mode", ["decode_32", "prefill_128"])
def test_block(mode):
    if os.environ.get("FAKE_SLOW_MODULE"):
        time.sleep(float(os.environ["FAKE_SLOW_MODULE"]))
    out = forward(3)
    pcc = 0.9876 if out == 8 else 0.5012
    logger.info(f"Block test passed. Output: {pcc}")
    assert out == 8, f"Block test failed. Output: {pcc}"
"""

DEVICE_PERF_HELPER = '''"""The fake model's device-perf helper: the case selection (its only copy), tracy, the window's totals."""

import csv
import logging
import os
import shlex
import subprocess
import sys

logger = logging.getLogger(__name__)


def selection(mode, seq_len):
    run_kind = "trace" if mode == "decode" else "eager"
    return f"program_cache and not no_program_cache and {run_kind} and {mode} and {seq_len}"


def run_device_perf(test_file, function, mode, seq_len, env_var, iterations):
    command = f"pytest {test_file}::{function} -k {shlex.quote(selection(mode, seq_len))}"
    argv = [sys.executable, "-m", "tracy", "-r", "-p", "-o", os.environ["TT_METAL_PROFILER_DIR"], "-t",
            os.environ.get("TRACY_PORT", "8086"), "--check-exit-code", "--op-support-count",
            os.environ.get("TT_METAL_PROFILER_PROGRAM_SUPPORT_COUNT", "10000"), "-m", command]
    out = subprocess.run(argv, env={**os.environ, env_var: "1"}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         text=True)
    sys.stdout.write(out.stdout)
    assert out.returncode == 0, f"profiled run failed ({out.returncode})"
    path = [line.split("OPs csv generated at: ")[1].strip() for line in out.stdout.splitlines()
            if "OPs csv generated at: " in line][-1]
    kernel, op_to_op = window_totals(path)
    logger.info(f"Device perf totals ({iterations} iterations): kernel={kernel:.3f} us, op_to_op={op_to_op:.3f} us")
    logger.info(f"Device perf per-iteration averages: kernel={kernel / iterations:.3f} us, "
                f"op_to_op={op_to_op / iterations:.3f} us")


def window_totals(path):
    with open(path) as f:
        rows = list(csv.DictReader(f))
    marks = [i for i, r in enumerate(rows) if r["OP TYPE"] == "signpost"]
    per_device = {}
    for row in rows[marks[0] + 1 : marks[-1]]:
        if row["OP TYPE"] == "tt_dnn_device":
            per_device.setdefault(row["DEVICE ID"], []).append(row)
    kernel = op_to_op = 0.0
    for ops in zip(*per_device.values()):
        durations = [float(r["DEVICE KERNEL DURATION [ns]"] or 0) for r in ops]
        slowest = ops[durations.index(max(durations))]
        collective = "AllReduce" in slowest["OP CODE"]  # collectives: the device average
        kernel += (sum(durations) / len(durations) if collective else max(durations)) / 1000
        op_to_op += float(slowest["OP TO OP LATENCY [ns]"] or 0) / 1000
    return kernel, op_to_op
'''

UNIT_TEST = """import logging
import os

import pytest

from models.common.utility_functions import comp_allclose, comp_pcc
from models.demo.tests.device_perf import run_device_perf
from models.demo.tt import fake_device
from models.demo.tt.fake_device import add, mul, op

logger = logging.getLogger(__name__)

DEVICE_PERF_ENV_VAR = "DEMO_ROUTER_DEVICE_PERF"
PERF_WARMUP_ITERS = 10
PERF_MEASURE_ITERS = 100
DEVICE_PERF_ITERS = 10
CASES = [("decode", 1, 0.99, 0.0), ("prefill", 128, 0.99, 0.0), ("prefill", 1024, 0.99, 0.0)]


def demo_router_reference(x):
    return (x + 1) * 2


def demo_router_ttnn(x, device_input=None):
    if os.environ.get("FAKE_CCL_OP"):
        op("AllReduceDeviceOperation")
    a = add(x, 1)
    return mul(a, 2)


def _run(trace, program_cache, expected_pcc, expected_perf_us, single_device=False):
    fake_device.DEVICES = 1 if single_device else 2
    if os.environ.get("FAKE_CRASH"):
        os.abort()
    if os.environ.get("FAKE_TT_FATAL"):
        raise RuntimeError("TT_FATAL @ tt_metal/impl/device.cpp:42: device 0 timed out waiting for the dispatch core")
    if os.environ.get("FAKE_HANG"):
        print("about to hang", flush=True)
        import time

        time.sleep(600)
    if os.environ.get("FAKE_SLOW"):
        import time

        time.sleep(float(os.environ["FAKE_SLOW"]))
    if os.environ.get(DEVICE_PERF_ENV_VAR):
        import tracy

        if os.environ.get("FAKE_TRACE_REGION"):
            raise RuntimeError("TT_FATAL: Creating trace buffers of size 2818048B on MeshDevice 0, "
                               "but only 1000000B is allocated for trace region.")

        for _ in range(PERF_WARMUP_ITERS):
            demo_router_ttnn(3)
        tracy.signpost("start")
        for _ in range(DEVICE_PERF_ITERS):
            demo_router_ttnn(3)
        tracy.signpost("stop")
    import torch  # here, not at the top: the patched module imports demo_router_ttnn from this file

    out = _on_device(trace, program_cache)
    passing, pcc = comp_pcc(torch.tensor([demo_router_reference(3)]), torch.tensor([out]), expected_pcc)
    comp_allclose(torch.tensor([demo_router_reference(3)]), torch.tensor([out]))
    logger.info(f"PCC demo_router: {pcc}")
    assert passing, f"Router test failed. PCC: {pcc} < {expected_pcc}"
    logger.info("Perf avg: 12.500 us over 100 iters (warmup 10)")
    if expected_perf_us:  # 0.0: no target (tt-metal's TODO)
        assert 12.5 <= expected_perf_us * 1.2, "Perf regression"


def _on_device(trace, program_cache):
    \"\"\"The fused function on a one-device sim mesh, as the case claims: cache disabled, traced (the facts).\"\"\"
    import torch
    import ttnn

    mesh = ttnn.open_mesh_device(ttnn.MeshShape(1, 1))
    try:
        if not program_cache:
            mesh.disable_and_clear_program_cache()
        tensor = ttnn.from_torch(torch.ones(32, 32), device=mesh, layout=ttnn.TILE_LAYOUT)
        out = demo_router_ttnn(3, tensor)
        if trace and program_cache:
            trace_id = ttnn.begin_trace_capture(mesh, cq_id=0)
            demo_router_ttnn(3, tensor)
            ttnn.end_trace_capture(mesh, trace_id, cq_id=0)
            ttnn.execute_trace(mesh, trace_id, blocking=False)
            ttnn.release_trace(mesh, trace_id)
        return out
    finally:
        ttnn.close_mesh_device(mesh)


@pytest.mark.parametrize("mode, seq_len, expected_pcc, expected_perf_us", CASES)
@pytest.mark.parametrize("program_cache", [True, False], ids=["program_cache", "no_program_cache"])
@pytest.mark.parametrize("trace", [False, True], ids=["eager", "trace"])
def test_demo_router(mode, seq_len, expected_pcc, expected_perf_us, program_cache, trace):
    _run(trace, program_cache, expected_pcc, expected_perf_us)


@pytest.mark.parametrize("mode, seq_len, expected_pcc, expected_perf_us", CASES)
@pytest.mark.parametrize("program_cache", [True, False], ids=["program_cache", "no_program_cache"])
@pytest.mark.parametrize("trace", [False, True], ids=["eager", "trace"])
def test_demo_router_single_device(mode, seq_len, expected_pcc, expected_perf_us, program_cache, trace):
    if os.environ.get("FAKE_CCL"):
        pytest.skip("Single-device test is not applicable because demo_router includes CCL ops (all_reduce).")
    _run(trace, program_cache, expected_pcc, expected_perf_us, single_device=True)


@pytest.mark.parametrize("mode, seq_len", [("decode", 1), ("prefill", 128)])
def test_demo_router_device_perf(mode, seq_len):
    run_device_perf(__file__, "test_demo_router", mode, seq_len, DEVICE_PERF_ENV_VAR, DEVICE_PERF_ITERS)


@pytest.mark.parametrize("mode, seq_len", [("decode", 1), ("prefill", 128)])
def test_demo_router_single_device_device_perf(mode, seq_len):
    run_device_perf(__file__, "test_demo_router_single_device", mode, seq_len, DEVICE_PERF_ENV_VAR, DEVICE_PERF_ITERS)
"""

# tt-metal's comparison helpers, as the facts plugin wraps them (fixed PCC: the fake's numbers are exact).
UTILITY_FUNCTIONS = """
def comp_pcc(golden, calculated, pcc=0.99):
    value = 0.999 if bool((golden == calculated).all()) else 0.0
    return value >= pcc, value


def comp_allclose(golden, calculated, rtol=1e-05, atol=1e-08):
    return True, "Max ATOL Delta: 0.0, Max RTOL Delta: 0.0"
"""

SPEC = """\
name = "demo_router"
description = "x + 1, * 2"
workspace = "{workspace}"
unit_test = "models/demo/tests/fused/test_demo_router.py"
modes = ["decode", "prefill"]
prefill_seqlens = [128, 1024]

[module_test]
argv = ["pytest", "models/demo/tests/test_modules.py::test_block"]
select = {{ decode = "decode_32", prefill = "prefill_128" }}

[sequence.decode]
file = "models/demo/tt/model.py"
start = "a = add(x, 1)"
end = "b = mul(a, 2)"
call = "b = demo_router_ttnn(x)"

[sequence.prefill]
file = "models/demo/tt/model.py"
start = "a = add(x, 1)"
end = "b = mul(a, 2)"
call = "b = demo_router_ttnn(x)"
"""


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def make_workspace(ws: Path) -> Path:
    for package in ("models", "models/demo", "models/demo/tt"):
        write(ws / package / "__init__.py", "")
    write(ws / "models/demo/tt/fake_device.py", FAKE_DEVICE)
    write(ws / "models/demo/tt/model.py", MODEL)
    write(ws / "models/demo/tt/unused.py", "UNUSED = 1\n")
    write(ws / "models/demo/tests/test_modules.py", MODULE_TEST)
    write(ws / "models/demo/tests/fused/test_demo_router.py", UNIT_TEST)
    write(ws / "models/demo/tests/__init__.py", "")
    write(ws / "models/demo/tests/device_perf.py", DEVICE_PERF_HELPER)
    write(ws / "models/common/__init__.py", "")
    write(ws / "models/common/utility_functions.py", UTILITY_FUNCTIONS)
    write(ws / "conftest.py", "")
    write(ws / "pytest.ini", PYTEST_INI)
    return ws


def make_fake_repo(repo: Path) -> Path:
    """A checkout-shaped directory: dodo.py, fused_ops/ and the workspace (relative), artifacts/ empty."""
    make_workspace(repo / "examples" / "demo")
    write(repo / "fused_ops" / "demo_router.toml", SPEC.format(workspace="examples/demo"))
    shutil.copy(REPO / "dodo.py", repo / "dodo.py")
    return repo


def make_doit_env(tmp_path: Path) -> dict:
    """Environment for doit subprocesses: this checkout's pipeline, a private device lock, quick timeouts."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIPELINE_", "TTNN_SIM_", "FAKE_"))}
    env.update(
        PYTHONPATH=str(REPO),
        PIPELINE_DEVICE_LOCK=str(tmp_path / "device.lock"),
        PIPELINE_HEALTH_COMMAND=f"{sys.executable} -c pass",
        PIPELINE_SILENCE_TIMEOUT="60",
        PIPELINE_WALL_TIMEOUT="300",
    )
    return env


def doit(repo: Path, env: dict, *args, timeout=600) -> subprocess.CompletedProcess:
    argv = [sys.executable, "-m", "doit", *args]
    return subprocess.run(argv, cwd=repo, env=env, capture_output=True, text=True, timeout=timeout)


def executed(result: subprocess.CompletedProcess) -> set[str]:
    """Task names doit executed (verbosity 2 prints `.  name` for each)."""
    return {line[3:].strip() for line in result.stdout.splitlines() if line.startswith(".  ")}


TT_SMI = '''\
"""tt-smi stand-in. -ls: a table of $TT_SMI_DEVICES boards (a Galaxy at 32); -r / -glx_reset: reset.

$TT_SMI_FAULT: hang (sleep), fail (exit 1), fewer (a reset brings back one device fewer, exit 0 as
tt-smi has done). Every call is appended to $TT_SMI_CALLS; the device count lives in $TT_SMI_STATE.
"""
import os
import sys
import time

args = sys.argv[1:]
with open(os.environ["TT_SMI_CALLS"], "a") as calls:
    calls.write(" ".join(["tt-smi", *args]) + "\\n")
state = os.environ["TT_SMI_STATE"]
count = int(open(state).read()) if os.path.exists(state) else int(os.environ.get("TT_SMI_DEVICES", "8"))
fault = os.environ.get("TT_SMI_FAULT", "")
if args == ["-ls"]:
    board = "tt-galaxy-wh" if count >= 32 else "n300 L"
    print("All available boards on host:")
    print("| PCI Dev ID | Board Type | Device Series | Board Number |")
    for device in range(count):
        print(f"| {device} | wormhole | {board} | 01000{device:04d} |")
    print("Boards that can be reset:")
    for device in range(count):
        print(f"| {device} | wormhole | {board} | 01000{device:04d} |")
elif args and args[0] in ("-r", "-glx_reset"):
    print("Starting reset ...", flush=True)
    if fault == "hang":
        time.sleep(600)
    if fault == "fail":
        print("reset failed: device 0 did not respond")
        sys.exit(1)
    if fault == "fewer":
        open(state, "w").write(str(count - 1))
    print("Reset done.")
else:
    print(f"tt-smi stand-in: unsupported arguments {args}")
    sys.exit(2)
'''


def make_tt_smi(folder: Path, devices: int = 8, fault: str = "") -> dict:
    """A tt-smi stand-in in `folder`/bin; the environment variables that put it on PATH and drive it."""
    script = write(folder / "bin" / "tt-smi", f"#!{sys.executable}\n" + TT_SMI)
    script.chmod(0o755)
    return {
        "PATH": f"{folder / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}",
        "TT_SMI_DEVICES": str(devices),
        "TT_SMI_FAULT": fault,
        "TT_SMI_CALLS": str(folder / "calls.txt"),
        "TT_SMI_STATE": str(folder / "state"),
    }


def tree_digest(folder: Path) -> dict:
    """Every file (by content) and directory under `folder`: to show a run left a checkout as it was."""
    import hashlib

    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
        for p in sorted(folder.rglob("*"))
    }


def tagged_processes(tag: str) -> list[int]:
    """Pids whose environment holds PIPELINE_RUN_TAG=`tag` (every process a test's doit run started)."""
    needle = f"PIPELINE_RUN_TAG={tag}".encode()
    found = []
    for entry in Path("/proc").glob("[0-9]*"):
        try:
            if needle in (entry / "environ").read_bytes().split(b"\0"):
                state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
                if state != "Z":
                    found.append(int(entry.name))
        except OSError:
            continue
    return found


def make_tt_metal_home(home: Path, workspace: Path) -> Path:
    """A stand-in tt-metal checkout: a copy of `workspace` whose python_env/bin/python sees the simulator."""
    shutil.copytree(workspace, home, symlinks=True)
    python = write(
        home / "python_env" / "bin" / "python",
        f'#!/bin/sh\nPYTHONPATH="{REPO / "ttnn_sim" / "shim"}${{PYTHONPATH:+:$PYTHONPATH}}" '
        f'exec "{sys.executable}" "$@"\n',
    )
    python.chmod(0o755)
    return home
