"""What every task of one doit invocation shares: where things are, the backend, the environment key."""

import functools
import os
import sys
from pathlib import Path
from typing import NamedTuple

from pipeline import PIPELINE_VERSION, backends
from pipeline.artifacts import Layout
from pipeline.backends import Backend
from pipeline.timeouts import Timeouts

# Environment variables whose values change what a run measures (besides the spec's own `env_vars`).
KEY_ENV_VARS = ("HF_MODEL", "MESH_DEVICE", "ARCH_NAME", "TT_METAL_ARCH_NAME")
KEY_ENV_PREFIXES = ("TTNN_SIM_",)  # the simulator's knobs (system size, faults, ...)


class Context(NamedTuple):
    repo_root: Path
    layout: Layout
    backend: Backend
    environment_key: dict
    timeouts: Timeouts = Timeouts()
    op_support_count: int = backends.DEFAULT_OP_SUPPORT_COUNT

    def display(self, path: Path) -> str:
        """Repo-relative when inside the repo (stable across clones), else absolute."""
        return _display(self.repo_root, str(path))

    def for_spec(self, spec_timeouts: dict) -> "Context":
        """This context with a spec's own timeouts (the environment's still win)."""
        if not spec_timeouts:
            return self
        return self._replace(timeouts=Timeouts.from_env(spec_timeouts))

    def key_for(self, env_vars: tuple[str, ...] = ()) -> dict:
        """The environment key plus the values of a spec's extra variables."""
        if not env_vars:
            return self.environment_key
        extra = {name: os.environ.get(name, "") for name in env_vars}
        return {**self.environment_key, "env": {**self.environment_key["env"], **extra}}


@functools.cache
def _display(repo_root: Path, path: str) -> str:
    """Context.display, once per path. A plain absolute path inside the repo (what the graph mostly
    names: resolved sources, artifacts) is cut textually; anything else is resolved first (a syscall
    per component)."""
    root = str(repo_root)
    if path.startswith(root + os.sep) and not {"..", "."} & set(path.split(os.sep)):
        return path[len(root) + 1 :]
    resolved = Path(path).resolve()
    try:
        return resolved.relative_to(repo_root).as_posix()
    except ValueError:
        return str(resolved)


def make_context(
    repo_root: Path, artifacts_dir: Path, backend_name: str, workspace: Path, cache=None
) -> Context:
    backend = backends.get_backend(backend_name, workspace, artifacts_dir)
    op_support_count = int(os.environ.get("PIPELINE_OP_SUPPORT_COUNT") or backends.DEFAULT_OP_SUPPORT_COUNT)
    return Context(
        repo_root=Path(repo_root).resolve(),
        layout=Layout(artifacts_dir),
        backend=backend,
        environment_key=environment_key(backend, cache),
        timeouts=Timeouts.from_env(),
        op_support_count=op_support_count,
    )


def environment_key(backend: Backend, cache=None) -> dict:
    """Everything outside the sources that can change a result. Paths are left out on purpose: a clone
    elsewhere (CI) must produce the same key."""
    variables = {name: os.environ[name] for name in KEY_ENV_VARS if name in os.environ}
    variables.update({k: v for k, v in os.environ.items() if k.startswith(KEY_ENV_PREFIXES)})
    return {
        "pipeline_version": PIPELINE_VERSION,
        "backend": backend.name,
        **backends.version(backend, cache),
        "device_set": backend.device_set,
        "mesh": os.environ.get("MESH_DEVICE", ""),
        "python": sys.version.split()[0],  # what platform.python_version() reports, without importing it
        "env": dict(sorted(variables.items())),
    }
