"""Child start-up of a sim device step: from the runner's start of the command to the test's first line.

Not a pass/fail test: it prints figures for the README. The child is what a device step starts
(`python -m pytest -p no:cacheprovider -p pipeline.case_clock ...` with the sim backend's environment)
on a test module that imports what the bundled workspace's tests import (torch, ttnn, loguru,
transformers' GptOss modelling); the test prints one line first thing. Plain process starts
(`PIPELINE_WARM_CHILD=off`) and warm children alternate, so a drifting machine load hits both alike.
The warm process is started once before the rounds (one per `doit run`); its start-up is printed apart.
Also timed: the module-test selection check's child (`pytest --collect-only` of the bundled router's
module test), plain and warm.

Run:  .venv/bin/python benchmarks/child_startup.py [--rounds N]
"""

import argparse
import io
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pipeline import backends, runner, warm  # noqa: E402

MARKER = "first test line"
# The bundled router's module test (fused_ops/router.toml), as the module-test selection check collects it.
COLLECTED = [
    "pytest",
    "models/demos/gpt_oss_mini/tests/unit/test_modules.py::test_decoder",
    "--test-modules",
    "router",
]
TEST_MODULE = f"""
import torch
import ttnn
from loguru import logger
from transformers.models.gpt_oss import modeling_gpt_oss


def test_starts():
    print({MARKER!r}, flush=True)
"""


class StampedOut(io.StringIO):
    """The runner's terminal stream; remembers when the marker line arrived."""

    def __init__(self):
        super().__init__()
        self.marker_at = None

    def write(self, text):
        if self.marker_at is None and MARKER in text:
            self.marker_at = time.monotonic()
        return super().write(text)


def start_up(workspace: Path, mode: str) -> float:
    os.environ[warm.MODE_ENV] = mode
    backend = backends.get_backend("sim", workspace, workspace)
    argv = backend.pytest_argv(["pytest", "-s", "-q", "test_startup.py"])
    request = runner.Request("bench", argv, workspace, backend.env(workspace), workspace / "log.txt")
    out = StampedOut()
    started = time.monotonic()
    outcome = runner.run(request, backend, runner.Timeouts(600, 600), workspace / "device.lock", out)
    if outcome.verdict != "passed" or out.marker_at is None:
        sys.exit(f"the {mode} child failed: {outcome.message}; see {request.log_path}")
    return out.marker_at - started


def collection(mode: str) -> float:
    """The selection check's child: `pytest --collect-only` of the bundled router's module test."""
    os.environ[warm.MODE_ENV] = mode
    workspace = REPO / "examples" / "gpt_oss_mini"
    backend = backends.get_backend("sim", workspace)
    argv = backend.pytest_argv([*COLLECTED, "--collect-only", "-q"])
    started = time.monotonic()
    if mode == "on":
        code = warm.QuietChild(argv, workspace, backend.env(workspace)).wait()
    else:
        code = subprocess.run(argv, cwd=workspace, env=backend.env(workspace), capture_output=True).returncode
    if code != 0:
        sys.exit(f"the {mode} collection failed: exit {code}")
    return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    rounds = parser.parse_args().rounds
    with tempfile.TemporaryDirectory(prefix="child-startup-") as folder:
        workspace = Path(folder)
        (workspace / "test_startup.py").write_text(TEST_MODULE)
        first_warm = start_up(workspace, "on")  # starts the warm process
        times = {"off": [], "on": []}
        collections = {"off": [], "on": []}
        for _ in range(rounds):
            for mode in times:
                times[mode].append(start_up(workspace, mode))
                collections[mode].append(collection(mode))
        warm.stop()
    print(f"{rounds} rounds, plain and warm alternating (seconds: median, min-max)")
    for title, figures in (("child start-up", times), ("module-test collection", collections)):
        print(title)
        for mode, label in (("off", "plain process start"), ("on", "warm child")):
            values = figures[mode]
            print(f"  {label:20} {statistics.median(values):6.2f}  ({min(values):.2f}-{max(values):.2f})")
        ratio = statistics.median(figures["off"]) / statistics.median(figures["on"])
        print(f"  ratio plain / warm   {ratio:6.1f}x")
    print(f"first warm command (includes starting the warm process): {first_warm:.2f}")


if __name__ == "__main__":
    main()
