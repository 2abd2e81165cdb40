"""The warm child, runner side: sim device steps get their guard and child from a pre-started process.

Starting Python with torch, transformers' GptOss code and pytest costs seconds per device step; the warm
process (pipeline/warm_server.py) pays that once and forks a guard + child per command, so the child
starts from already-imported libraries but otherwise as a fresh interpreter: its own argv, environment,
working directory, ``sys.path``, stdio to the runner's pipe, its own session, under the same guard.

Lifetime: one warm process per orchestrating process (one ``doit run``), started by the first command
that wants it, stopped at exit (or when the socket to it closes: the orchestrator died). It is restarted
when what it imported may have changed (``server_key``: the stamps of pipeline/, ttnn_sim/ and the
installed packages, and the environment libraries read at import) and when it died.

``PIPELINE_WARM_CHILD``: ``auto`` (default: the sim backend only; a real card's driver must never be
forked into children), ``on`` (every backend: the tests run the fault matrix this way), ``off``.
"""

import atexit
import hashlib
import json
import os
import re
import select
import site
import socket
import subprocess
import sys
import threading
from pathlib import Path

from pipeline.backends import REPO_ROOT

MODE_ENV = "PIPELINE_WARM_CHILD"
MODES = ("auto", "on", "off")
# The environment the warm process's libraries read at import (interpreter, threading, torch, Hugging
# Face, loguru, locale, home and temp): part of its identity, a change starts a new warm process. Every
# other variable (a step's PIPELINE_*, TT_METAL_*, TTNN_SIM_*, PATH, ...) is only read later, by the
# child, which gets the step's whole environment.
IMPORT_ENV = re.compile(
    r"(PYTHON(?!PATH$)|LD_|OMP_|MKL_|OPENBLAS_|KMP_|GOTO|TORCH|PYTORCH_|HF_|HUGGINGFACE_|TRANSFORMERS_"
    r"|TOKENIZERS_|SAFETENSORS_|LOGURU_|NUMPY_|PANDAS_|CUDA|XDG_|LC_).*|LANG|LANGUAGE|HOME|TMPDIR|TZ"
)
DEPENDENCY_DIRS = (REPO_ROOT / "pipeline", REPO_ROOT / "ttnn_sim")
READY_TIMEOUT_S = 180  # importing torch + transformers on a loaded 2-core machine
_REPLY_TIMEOUT_S = 30
_SERVER_CODE = "import sys; from pipeline.warm_server import main; sys.exit(main(sys.argv[1:]))"


class WarmError(Exception):
    """The warm process is unavailable; the caller starts the command the plain way."""


def wanted(backend_name: str) -> bool:
    mode = os.environ.get(MODE_ENV, "auto")
    if mode not in MODES:
        raise WarmError(f"{MODE_ENV}={mode!r}: expected one of {', '.join(MODES)}")
    return mode == "on" or (mode == "auto" and backend_name == "sim")


class WarmGuard:
    """The forked guard, as much of subprocess.Popen as the runner uses (it is not our child: a pidfd)."""

    def __init__(self, pid: int, pidfd: int, stdin, stdout):
        self.pid, self._pidfd, self.stdin, self.stdout = pid, pidfd, stdin, stdout
        self.returncode = None

    def poll(self):
        return self._wait(0)

    def wait(self, timeout=None):
        if self._wait(timeout) is None:
            raise subprocess.TimeoutExpired(["guard"], timeout)
        return self.returncode

    def kill(self) -> None:
        if self.returncode is None:
            try:
                os.kill(self.pid, 9)  # the pidfd keeps the pid from being reused until we close it
            except ProcessLookupError:
                pass

    def _wait(self, timeout):
        if self.returncode is None and select.select([self._pidfd], [], [], timeout)[0]:
            self.returncode = 0  # its own status is on the status pipe; only "gone" matters here
            os.close(self._pidfd)
        return self.returncode


def start_guard(
    argv: list[str], cwd: Path, env: dict, status_fd: int, lock_fd: int | None, output_fd: int | None = None
) -> WarmGuard:
    """The guard of `argv`, forked by the warm process; raises OSError for a missing cwd, WarmError.
    Its output goes to a new pipe (the guard's `stdout`), or to `output_fd` when given."""
    if not Path(cwd).is_dir():
        raise FileNotFoundError(2, "No such file or directory", str(cwd))
    control_read, control_write = os.pipe()
    output_read, output_write = os.pipe() if output_fd is None else (None, output_fd)
    fds = [control_read, output_write, status_fd, *([lock_fd] if lock_fd is not None else [])]
    message = {"argv": list(argv), "cwd": str(cwd), "env": env}
    try:
        pid, pidfd = _SERVER.request(message, fds, env)
    except WarmError:
        for fd in (control_write, output_read):
            if fd is not None:
                os.close(fd)
        raise
    finally:
        os.close(control_read)
        if output_fd is None:
            os.close(output_write)
    stdout = os.fdopen(output_read, "rb") if output_read is not None else None
    return WarmGuard(pid, pidfd, os.fdopen(control_write, "wb"), stdout)


class QuietChild:
    """A warm command nobody watches the output of (pipeline/selections.py); Popen's wait and kill."""

    def __init__(self, argv: list[str], cwd: Path, env: dict):
        self._status, status_write = os.pipe()
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            self._guard = start_guard(argv, cwd, env, status_write, None, output_fd=devnull)
        except BaseException:
            os.close(self._status)
            raise
        finally:
            os.close(status_write)
            os.close(devnull)

    def wait(self, timeout=None) -> int | None:
        """The command's exit code (None: the guard lost it); raises subprocess.TimeoutExpired."""
        self._guard.wait(timeout)
        with os.fdopen(self._status, "rb") as stream:
            records = [json.loads(line) for line in stream.read().splitlines() if line.strip()]
        return {k: v for record in records for k, v in record.items()}.get("returncode")

    def kill(self) -> None:
        """EOF on the guard's stdin: it kills the command's tree and exits."""
        self._guard.stdin.close()


def server_key(env: dict) -> str:
    """What the warm process's imports depend on: sources, installed packages, import-time environment."""
    sha = hashlib.sha256(sys.executable.encode())
    for name, value in sorted(import_env(env).items()):
        sha.update(f"{name}={value}\0".encode())
    for path in _dependency_stamps():
        sha.update(f"{path}\0".encode())
    return sha.hexdigest()


def import_env(env: dict) -> dict:
    return {k: v for k, v in env.items() if IMPORT_ENV.fullmatch(k)}


def _dependency_stamps():
    for folder in DEPENDENCY_DIRS:
        for root, dirs, names in os.walk(folder):
            dirs.sort()
            for name in sorted(names):
                if name.endswith(".py"):
                    yield _stamp(Path(root, name))
    for packages in site.getsitepackages():
        try:
            names = sorted(os.listdir(packages))
        except OSError:
            continue
        for name in names:  # an install, upgrade or removal changes a dist-info folder or a .pth file
            yield _stamp(Path(packages, name))


def _stamp(path: Path) -> str:
    try:
        info = path.stat()
    except OSError:
        return f"{path}:gone"
    return f"{path}:{info.st_mtime_ns}:{info.st_size}"


class _Server:
    """The one warm process of this orchestrator, (re)started on demand."""

    def __init__(self):
        self._mutex = threading.Lock()
        self._process: subprocess.Popen | None = None
        self._channel: socket.socket | None = None
        self.key: str | None = None
        self._owner = os.getpid()
        self._started = False  # its ready message arrived
        self._waited_for = True  # started by a command that waits for it (not prestarted)

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def request(self, message: dict, fds: list[int], env: dict) -> tuple[int, int]:
        """Fork a guard for `message`; raises WarmError, also while a prestarted warm process still imports
        (the command then starts the plain way rather than wait)."""
        key = server_key(env)
        if os.getpid() != self._owner:  # a forked copy of this process (doit -n): its own warm process
            self.__init__()
        with self._mutex:
            for _ in range(2):  # a warm process that died is replaced once
                if key != self.key or self._process.poll() is not None:
                    self._restart(key, env)
                if not self._ready(READY_TIMEOUT_S if self._waited_for else 0):
                    raise WarmError("the warm process is still starting")
                try:
                    socket.send_fds(self._channel, [json.dumps(message).encode()], fds)
                    reply, pidfds = self._receive(_REPLY_TIMEOUT_S)
                    return json.loads(reply)["pid"], pidfds[0]
                except (OSError, WarmError, ValueError, KeyError, IndexError):
                    self.stop_locked()
            raise WarmError("the warm process does not answer")

    def prestart(self, env: dict) -> None:
        """Start the warm process for `env` now, without waiting: commands before it is ready start plain."""
        key = server_key(env)
        if os.getpid() != self._owner:
            self.__init__()
        with self._mutex:
            if key != self.key or self._process.poll() is not None:
                self._restart(key, env, wait=False)

    def _ready(self, timeout: float) -> bool:
        if not self._started:
            try:
                self._receive(timeout)
            except WarmError:
                if self._process.poll() is not None or timeout:
                    self.stop_locked()
                    raise
                return False
            self._started = True
        return True

    def _restart(self, key: str, env: dict, wait: bool = True) -> None:
        self.stop_locked()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        # Ours (a process of this doit run, like the guards and children it forks, which start with this
        # environment block as far as /proc tells), with the command's import-time variables.
        ours_env = {k: v for k, v in os.environ.items() if not IMPORT_ENV.fullmatch(k)}
        server_env = {**ours_env, **import_env(env), "PYTHONPATH": str(REPO_ROOT)}
        try:
            self._process = subprocess.Popen(
                [sys.executable, "-c", _SERVER_CODE, str(theirs.fileno()), str(os.getpid())],
                pass_fds=(theirs.fileno(),),
                cwd=REPO_ROOT,
                env=server_env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,  # out of reach of the terminal's Ctrl-C
            )
        finally:
            theirs.close()
        self._channel, self.key = ours, key
        self._started, self._waited_for = False, wait

    def _receive(self, timeout: float) -> tuple[bytes, list[int]]:
        if not select.select([self._channel], [], [], timeout)[0]:
            raise WarmError(f"the warm process did not answer within {timeout:g} s")
        message, fds, _, _ = socket.recv_fds(self._channel, 1 << 16, 1)
        if not message:
            raise WarmError("the warm process exited")
        return message, fds

    def stop(self) -> None:
        with self._mutex:
            self.stop_locked()

    def stop_locked(self) -> None:
        """EOF on its socket: it exits (commands it started carry on under their guards)."""
        if self._channel:
            self._channel.close()
        if self._process:
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._process, self._channel, self.key = None, None, None


_SERVER = _Server()
atexit.register(_SERVER.stop)


def prestart(env: dict) -> None:
    """Start the warm process for commands with `env` in the background (pipeline/selections.py)."""
    _SERVER.prestart(env)


def stop() -> None:
    """Stop the warm process now (tests; the next command starts a new one)."""
    _SERVER.stop()


def server_pid() -> int | None:
    return _SERVER.pid
