"""Backends: how to start a test process against a device. Only the environment and argv differ.

- ``sim``: the orchestrator's own python; ``PYTHONPATH`` gains ``ttnn_sim/shim`` (``ttnn``, ``tracy``);
  no reset (logged as a no-op); health = importing the shim's ttnn and counting devices.
- ``ttnn``: the tt-metal checkout's ``python_env`` (or ``PIPELINE_PYTHON``); reset =
  ``PIPELINE_RESET_COMMAND`` (``;``-separated commands) or ``TT_SMI_RESET_COMMAND``, else chosen by the
  devices ``tt-smi -ls`` shows (pipeline/devices.py: ``tt-smi -r``, a Galaxy ``tt-smi -glx_reset``);
  health = ``PIPELINE_HEALTH_COMMAND`` or ``tt-smi -ls``, passing only when every device listed before
  the reset is listed after it.

Both backends give every child ``PYTHONPATH = <repo root> [+ shim] + <workspace> + $PYTHONPATH`` (the repo
root for patch_verify's ``-p pipeline.patch_plugin``; tests import nothing of it). This module never imports
ttnn, ttnn_sim or torch: versions are read from files or from a child python.
"""

import ast
import hashlib
import os
import shlex
import socket
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

from pipeline import lock

REPO_ROOT = Path(__file__).resolve().parent.parent
SIM_PACKAGE = REPO_ROOT / "ttnn_sim"
SIM_SHIM = SIM_PACKAGE / "shim"
DEFAULT_OP_SUPPORT_COUNT = (
    10000  # what tt-metal's fused tests pass (tt-metal's fused_op_device_perf_utils.py)
)

# pytest's cache would write .pytest_cache into the user's checkout; case_clock restarts the runner's
# wall timeout at each test case.
FACTS_PLUGIN = "pipeline.facts_plugin"  # records what each test case did (pipeline/facts_plugin.py)
PYTEST_OPTIONS = ("-p", "no:cacheprovider", "-p", "pipeline.case_clock", "-p", FACTS_PLUGIN)
# Profiler switches the parent may have set; a plain test run must not inherit them.
_PROFILER_ENV = (
    "TT_METAL_DEVICE_PROFILER",
    "TT_METAL_PROFILER_DIR",
    "TT_METAL_PROFILER_PROGRAM_SUPPORT_COUNT",
)


class Backend(NamedTuple):
    name: str
    python: str
    extra_pythonpath: tuple[str, ...]
    reset_commands: tuple[tuple[str, ...], ...]  # empty: nothing to reset (the sim)
    health_command: tuple[str, ...] | None
    device_set: str
    fixed_env: tuple[tuple[str, str], ...] = ()  # (variable, value) this backend always sets
    private_lock: Path | None = None  # the sim: nothing is shared between checkouts, lock per artifacts dir
    reset_by_machine: bool = False  # choose tt-smi -r / -glx_reset from the devices health_command lists

    def env(self, workspace: Path, extra: dict | None = None, base: dict | None = None) -> dict[str, str]:
        """The child's environment: the parent's, minus profiler switches, plus PYTHONPATH and `extra`."""
        env = {k: v for k, v in (os.environ if base is None else base).items() if k not in _PROFILER_ENV}
        paths = [str(REPO_ROOT), *self.extra_pythonpath, str(workspace)]
        if env.get("PYTHONPATH"):
            paths.append(env["PYTHONPATH"])
        env["PYTHONPATH"] = os.pathsep.join(paths)
        env["PYTHONUNBUFFERED"] = "1"  # the watchdog judges silence by output; don't let buffers hide it
        env["PYTHONDONTWRITEBYTECODE"] = "1"  # leave no __pycache__ in the user's checkout
        env.update(self.fixed_env)
        env.update(extra or {})
        return env

    def pytest_argv(self, pytest_args: list[str]) -> list[str]:
        """`pytest_args` start with "pytest" (as the spec and tt-metal write them)."""
        return [self.python, "-m", "pytest", *PYTEST_OPTIONS, *_without_pytest(pytest_args)]

    def tracy_argv(
        self, output_dir: Path, port: int, op_support_count: int, pytest_args: list[str]
    ) -> list[str]:
        command = shlex.join(["pytest", *PYTEST_OPTIONS, *_without_pytest(pytest_args)])
        tracy = [self.python, "-m", "tracy", "-r", "-p", "-o", str(output_dir), "-t", str(port)]
        return [*tracy, "--check-exit-code", "--op-support-count", str(op_support_count), "-m", command]

    @property
    def lock_path(self) -> Path:
        """``PIPELINE_DEVICE_LOCK`` if set; else the sim's per-artifacts lock, or the machine-wide one."""
        if self.private_lock and not os.environ.get("PIPELINE_DEVICE_LOCK"):
            return self.private_lock
        return lock.default_lock_path(self.name, self.device_set)


def get_backend(name: str, workspace: Path, artifacts_dir: Path | None = None) -> Backend:
    if name == "sim":
        return Backend(
            name="sim",
            python=sys.executable,
            extra_pythonpath=(str(SIM_SHIM),),
            reset_commands=(),
            health_command=_command_from_env("PIPELINE_HEALTH_COMMAND")
            or (sys.executable, "-c", "import ttnn; print('devices:', ttnn.get_num_devices())"),
            device_set="sim",
            private_lock=Path(artifacts_dir) / ".device.lock" if artifacts_dir else None,
        )
    if name == "ttnn":
        device_set = (
            os.environ.get("TT_VISIBLE_DEVICES") or os.environ.get("TT_METAL_VISIBLE_DEVICES") or "all"
        )
        return Backend(
            name="ttnn",
            python=_ttnn_python(workspace),
            extra_pythonpath=(),
            reset_commands=_reset_commands(),
            reset_by_machine=not _reset_commands(),
            health_command=_command_from_env("PIPELINE_HEALTH_COMMAND") or ("tt-smi", "-ls"),
            device_set=device_set,
            fixed_env=(("TT_METAL_HOME", os.environ.get("TT_METAL_HOME") or str(workspace)),),
        )
    raise ValueError(f"unknown backend {name!r}")


def version(backend: Backend, cache=None) -> dict:
    """The device-software part of the environment key. `cache` (a sources.SourceCache) keeps the sim's
    part while none of its files changed (by their stamps): reading them all is most of its cost."""
    if backend.name != "sim":
        return _ttnn_version(backend.python)
    stamps = _sim_stamps() if cache else None
    known = cache.recall("sim version", stamps) if cache else None
    if known is None:
        known = {"sim_version": _sim_version(), "sim_sources": _sim_sources_digest()}
        if cache:
            cache.remember("sim version", stamps, known)
    return known


def _sim_stamps() -> str:
    stamps = []
    for path in _sim_files():
        info = path.stat()
        stamps.append(f"{path}:{info.st_mtime_ns}:{info.st_size}:{info.st_ino}")
    return hashlib.sha256("\n".join(stamps).encode()).hexdigest()


def _sim_files() -> list[Path]:
    """The simulator's Python files, in a stable order: its sources are its behaviour."""
    return sorted(
        Path(folder, n) for folder, _, names in os.walk(SIM_PACKAGE) for n in names if n.endswith(".py")
    )


def free_port() -> int:
    """A port nobody listens on now, for tracy's -t (it is a port, not a timeout)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _without_pytest(pytest_args: list[str]) -> list[str]:
    args = list(pytest_args)
    if args and Path(args[0]).name == "pytest":
        args = args[1:]
    return args


def _command_from_env(variable: str) -> tuple[str, ...] | None:
    value = os.environ.get(variable, "").strip()
    return tuple(shlex.split(value)) if value else None


def _reset_commands() -> tuple[tuple[str, ...], ...]:
    """The configured reset (``;``-separated commands); none: chosen by the devices found."""
    value = os.environ.get("PIPELINE_RESET_COMMAND") or os.environ.get("TT_SMI_RESET_COMMAND") or ""
    return tuple(tuple(shlex.split(part)) for part in value.split(";") if part.strip())


def _ttnn_python(workspace: Path) -> str:
    configured = os.environ.get("PIPELINE_PYTHON")
    if configured:
        return configured
    home = Path(os.environ.get("TT_METAL_HOME") or workspace)
    candidate = home / "python_env" / "bin" / "python"
    return str(candidate) if candidate.exists() else sys.executable


def _sim_version() -> str:
    """SIM_VERSION from ttnn_sim/__init__.py, read with ast (the orchestrator never imports the sim)."""
    try:
        tree = ast.parse((SIM_PACKAGE / "__init__.py").read_text())
    except (OSError, SyntaxError):
        return "unknown"
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            getattr(t, "id", None) == "SIM_VERSION" for t in node.targets
        ):
            return str(ast.literal_eval(node.value))
    return "unknown"


def _sim_sources_digest() -> str:
    """The sim's behaviour is its source: any change to it may change every figure."""
    digest = hashlib.sha256()
    for path in _sim_files():
        digest.update(str(path.relative_to(SIM_PACKAGE)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


_TTNN_PROBE = """
import importlib.metadata, importlib.util, os
try:
    version = importlib.metadata.version("ttnn")
except importlib.metadata.PackageNotFoundError:
    version = "unknown"
spec = importlib.util.find_spec("ttnn")
build = "unknown"
if spec and spec.submodule_search_locations:
    folder = list(spec.submodule_search_locations)[0]
    libs = sorted(f for f in os.listdir(folder) if f.startswith("_ttnn") and f.endswith(".so"))
    if libs:
        st = os.stat(os.path.join(folder, libs[0]))
        build = f"{st.st_size}-{int(st.st_mtime)}"
print(version, build)
"""


def _ttnn_version(python: str) -> dict:
    """ttnn's version and a build identity of its library, found without importing ttnn (slow, device)."""
    try:
        out = subprocess.run(
            [python, "-c", _TTNN_PROBE], capture_output=True, text=True, timeout=60, check=True
        ).stdout
        version_text, build = out.split()
    except (OSError, subprocess.SubprocessError, ValueError):
        version_text, build = "unknown", "unknown"
    return {"ttnn_version": version_text, "ttnn_build": build}
