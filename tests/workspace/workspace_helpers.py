"""Shared by the bundled workspace's tests: paths, the sim environment, and a runner for its pytest."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
WORKSPACE = REPO / "examples" / "gpt_oss_mini"
SHIM = REPO / "ttnn_sim" / "shim"


def sim_env(**extra: str) -> dict[str, str]:
    """The sim backend's environment: the shim (``import ttnn``, ``import tracy``) and nothing of the
    pipeline, whose package the workspace never imports."""
    env = {key: value for key, value in os.environ.items() if key != "HF_MODEL"}
    env["PYTHONPATH"] = str(SHIM)
    env.update(extra)
    return env


def sim_ready() -> bool:
    """True once the sim core has landed (``import ttnn`` works through the shim)."""
    probe = subprocess.run(
        [sys.executable, "-c", "import ttnn; ttnn.open_mesh_device"], env=sim_env(), capture_output=True
    )
    return probe.returncode == 0


requires_sim = pytest.mark.skipif(
    not sim_ready(), reason="ttnn_sim core not available yet (import ttnn fails)"
)


class WorkspaceRun:
    """One finished ``pytest`` run inside a workspace: exit code, merged output, wall seconds."""

    def __init__(self, returncode: int, output: str, seconds: float):
        self.returncode, self.output, self.seconds = returncode, output, seconds

    def lines(self, needle: str) -> list[str]:
        return [line for line in self.output.splitlines() if needle in line]


def run_workspace_pytest(
    *args: str, workspace: Path = WORKSPACE, timeout: float = 900, **env: str
) -> WorkspaceRun:
    """``python -m pytest ARGS`` with cwd = the workspace root and the sim on PYTHONPATH."""
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
        cwd=workspace,
        env=sim_env(**env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=timeout,
    )
    return WorkspaceRun(done.returncode, done.stdout, time.monotonic() - started)
