"""The warm process: imports what every sim child imports once, then forks a guard + child per command.

Started by pipeline/warm.py with FD (its end of a SOCK_SEQPACKET pair) and the orchestrator's pid; it dies
with the orchestrator (PDEATHSIG), guards and children it forked carry on under their guards.
Why a fork server of our own on ``os.fork`` rather than a library: the guard (pipeline/guard.py) must be
the child's real parent (subreaper, PDEATHSIG, holder of the lock descriptor) exactly as on the plain
path, and the runner's pipes and lock descriptor must reach it; forkserver-style libraries
(multiprocessing's forkserver) run Python callables, not ``python -m pytest`` command lines with their own
environment, working directory and stdio. So per request the server forks a guard process, which forks
the child, which turns itself into what a fresh ``python -m MODULE ARGS`` / ``python -c CODE`` would be
(``become``) and runs it; any other command is started the plain way (still under the guard).

Protocol, one message each way per command: the runner sends JSON ``{"argv", "cwd", "env"}`` with the
descriptors [guard stdin, guard stdout+stderr, status, lock?]; the server answers ``{"pid": guard}`` with
a pidfd of the guard (the runner waits on it; the guard is not the runner's child). EOF on the socket:
the runner is gone, the server exits (guards and children already running carry on, guarded as always).

Nothing imported here reads a step's environment at import: ``PRELOAD`` is libraries only; ``ttnn`` and
``tracy`` (the shim) are imported by the child itself from its own PYTHONPATH. The server never runs
device code, so every child starts from the same freshly imported state.
"""

import atexit
import builtins
import gc
import importlib
import importlib.metadata
import io
import json
import logging
import os
import runpy
import select
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback
import types

from pipeline import guard

# Libraries every sim child imports; each was checked to read no step variable at import. A missing
# one is skipped (the child imports it itself, as a cold start would).
PRELOAD = (
    "numpy",
    "torch",
    "pandas",
    "pytest",
    "_pytest.python",
    "_pytest.junitxml",
    "loguru",
    "jinja2",
    "transformers.models.gpt_oss.modeling_gpt_oss",
    "safetensors.torch",
    "ttnn_sim.api",
    "ttnn_sim.tracy_cli",
)
_MAX_MESSAGE = 1 << 20
_MAX_FDS = 4
_REAP_SECONDS = 1.0
_POLL_SECONDS = 0.02


def main(argv: list[str]) -> int:
    """argv: the socket's descriptor, the orchestrator's pid."""
    channel = socket.socket(fileno=int(argv[0]))
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the runner's Ctrl-C is the runner's to handle
    guard._libc.prctl(guard.PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)  # even while still importing
    if os.getppid() != int(argv[1]):
        return 0  # the orchestrator died before the line above
    missing = preload()
    base_path = _base_path()
    channel.send(json.dumps({"ready": os.getpid(), "missing": missing}).encode())
    while True:
        ready, _, _ = select.select([channel], [], [], _REAP_SECONDS)
        _reap()
        if not ready:
            continue
        message, fds, _, _ = socket.recv_fds(channel, _MAX_MESSAGE, _MAX_FDS)
        if not message:
            return 0
        pid = os.fork()
        if pid == 0:
            channel.close()
            _guard_process(json.loads(message), fds, base_path)  # never returns
        for fd in fds:
            os.close(fd)  # the lock descriptor above all: only the guard may hold it
        pidfd = os.pidfd_open(pid)
        socket.send_fds(channel, [json.dumps({"pid": pid}).encode()], [pidfd])
        os.close(pidfd)


def preload() -> list[str]:
    """Import PRELOAD and the installed pytest plugins; freeze it all out of the garbage collector's way."""
    missing = []
    for name in (*PRELOAD, *_pytest_plugins()):
        try:
            importlib.import_module(name)
        except ImportError:
            missing.append(name)
    _PRELOADED.update(sys.modules)
    # pytest collects garbage at exit, twice; over torch + transformers that took 1.3 s per child. Frozen
    # objects are never collected: they are the libraries' module state, alive as long as the child.
    gc.collect()
    gc.freeze()
    return missing


def _pytest_plugins() -> list[str]:
    """Plugins pytest loads in every child by entry point (anyio's: 1.2 s of assert rewriting per child).
    Imported here, pytest does not rewrite their own asserts: their messages are not the tests'."""
    return [entry.module for entry in importlib.metadata.entry_points(group="pytest11")]


_PRELOADED: set[str] = set()  # every module the warm process imported, the libraries' own imports too


def _base_path() -> list[str]:
    """sys.path without its first entry and PYTHONPATH's: what every fresh interpreter here has."""
    own = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    return list(sys.path[1 + len(own) :])


def _reap() -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


# ---- the guard process (a fork of the server) -----------------------------------------------------------


def _guard_process(request: dict, fds: list[int], base_path: list[str]) -> None:
    code = 1
    try:
        status_fd, lock_fd = _take_descriptors(fds)
        os.setsid()
        os.chdir(request["cwd"])
        start = _warm_start(request["env"], base_path, status_fd, lock_fd)
        code = guard.guard(status_fd, request["argv"], start)
    finally:
        os._exit(code)


def _take_descriptors(fds: list[int]) -> tuple[int, int | None]:
    """stdin: the runner's control pipe; stdout and stderr: its output pipe; nothing else of the server's."""
    control, output, status, *lock = fds
    os.dup2(control, 0)
    os.dup2(output, 1)
    os.dup2(output, 2)
    keep = {0, 1, 2, status, *lock}
    _close_all_but(keep)
    return status, (lock[0] if lock else None)


def _close_all_but(keep: set[int]) -> None:
    for name in os.listdir("/proc/self/fd"):
        fd = int(name)
        if fd not in keep:
            try:
                os.close(fd)
            except OSError:
                pass  # the listing's own descriptor, already closed


def _warm_start(env: dict, base_path: list[str], status_fd: int, lock_fd: int | None):
    """guard.guard's `start`: fork the child, which becomes the command (never returns in the child)."""

    def start(command: list[str], guard_pid: int) -> int:
        if not _runs_warm(command, env):
            return guard.start_process(command, guard_pid, env)
        pid = os.fork()
        if pid:
            return pid
        code = 1
        try:
            os.setsid()
            guard._die_with(guard_pid)
            _close_all_but({0, 1, 2})  # as close_fds does: the status pipe and the lock stay the guard's
            devnull = os.open(os.devnull, os.O_RDONLY)
            os.dup2(devnull, 0)
            os.close(devnull)
            code = run_command(command, env, base_path)
        except BaseException:  # noqa: B036 - a child must never return into the server's code
            traceback.print_exc()
        finally:
            os._exit(code)

    return start


# ---- the child: a fresh interpreter as far as the command can tell ----------------------------------------

# What `python -m X` and `python -c CODE` put in sys.path[0].
_RUNNABLE = ("-m", "-c")


def run_command(command: list[str], env: dict, base_path: list[str]) -> int:
    """Run `command` (`<this python> -m MODULE ...` or `-c CODE ...`) as a fresh interpreter would."""
    become(env, command[1], base_path)
    _warm_tracy_commands(base_path)
    try:
        if command[1] == "-m":
            sys.argv = [command[2], *command[3:]]
            runpy._run_module_as_main(command[2], alter_argv=True)  # what `python -m` itself calls
        else:
            sys.argv = ["-c", *command[3:]]
            main = sys.modules["__main__"].__dict__
            exec(compile(command[2], "<string>", "exec"), main)  # noqa: S102 - what `python -c` does
        code = 0
    except SystemExit as stop:
        code = _exit_code(stop.code)
    except BaseException:  # noqa: B036 - the interpreter prints any uncaught exception and exits 1
        traceback.print_exc()
        code = 1
    return _shutdown(code)


def _warm_tracy_commands(base_path: list[str]) -> None:
    """`python -m tracy ... -m "pytest ..."` starts pytest itself: fork it from here too (already warm)."""
    cli = sys.modules.get("ttnn_sim.tracy_cli")
    if cli is not None:
        cli.subprocess = types.SimpleNamespace(
            Popen=lambda command, **options: _ForkedPopen(command, base_path, **options),
            TimeoutExpired=subprocess.TimeoutExpired,
        )


class _ForkedPopen:
    """subprocess.Popen(command, env=..., start_new_session=...) as tracy's CLI calls it, by a fork that
    becomes the command; commands that cannot run warm are started by subprocess.Popen."""

    def __init__(self, command: list[str], base_path: list[str], env=None, start_new_session=False, **rest):
        env = dict(os.environ if env is None else env)
        if rest or not _runs_warm(command, env):
            self._plain = subprocess.Popen(command, env=env, start_new_session=start_new_session, **rest)
            self.pid = self._plain.pid
            return
        self._plain, self.returncode = None, None
        self.pid = os.fork()
        if self.pid == 0:
            code = 1
            try:
                if start_new_session:
                    os.setsid()
                _close_all_but({0, 1, 2})  # as close_fds does
                code = run_command(command, env, base_path)
            except BaseException:  # noqa: B036 - a child must never return into its parent's code
                traceback.print_exc()
            finally:
                os._exit(code)

    def poll(self):
        if self._plain:
            return self._plain.poll()
        if self.returncode is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self, timeout=None):
        if self._plain:
            return self._plain.wait(timeout)
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(["warm child"], timeout)
            time.sleep(_POLL_SECONDS)
        return self.returncode


def _runs_warm(command: list[str], env: dict) -> bool:
    """Only our own interpreter, and only when no preloaded module is shadowed by the child's path."""
    if len(command) < 3 or command[1] not in _RUNNABLE:
        return False
    if os.path.realpath(command[0]) != os.path.realpath(sys.executable):
        return False
    return not shadowed(_child_entries(env, command[1]))


def shadowed(entries: list[str]) -> list[str]:
    """Preloaded top-level modules that the child's own path entries would import from elsewhere."""
    loaded = {name for name in sys.modules if "." not in name}
    found = []
    for entry in entries:
        try:
            names = os.listdir(entry or ".")
        except OSError:
            continue
        for name in names:
            module = name[:-3] if name.endswith(".py") else name
            if module in loaded and not _loaded_from(sys.modules[module], entry):
                found.append(module)
    return found


def _loaded_from(module, entry: str) -> bool:
    where = getattr(module, "__file__", None) or ""
    return os.path.realpath(where).startswith(os.path.realpath(entry or ".") + os.sep)


def _child_entries(env: dict, how: str) -> list[str]:
    first = os.getcwd() if how == "-m" else ""
    return [first, *[p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]]


def become(env: dict, how: str, base_path: list[str]) -> None:
    """Environment, sys.path, stdio, signals and random state as a fresh interpreter would have them."""
    os.environ.clear()
    os.environ.update(env)  # putenv too: C libraries see the child's environment
    sys.path[:] = [*_child_entries(env, how), *base_path]
    main = types.ModuleType("__main__")  # not the server's: the command's globals start empty
    main.__builtins__ = builtins
    sys.modules["__main__"] = main
    sys.path_importer_cache.clear()
    importlib.invalidate_caches()
    sys.dont_write_bytecode = bool(env.get("PYTHONDONTWRITEBYTECODE"))
    _fresh_stdio(unbuffered=bool(env.get("PYTHONUNBUFFERED")))
    # The guard's dispositions, as an exec-ed child inherits them (ignored stays ignored across exec).
    for sig in (signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    for sig in (signal.SIGTERM, signal.SIGCHLD):
        signal.signal(sig, signal.SIG_DFL)
    signal.signal(signal.SIGPIPE, signal.SIG_IGN)  # what Python sets at start-up
    logging.root.handlers.clear()  # a fresh interpreter's logging is unconfigured (tracy's CLI configures it)
    logging.root.setLevel(logging.WARNING)
    _quiet_about_preloaded_plugins()
    if "numpy" in sys.modules:  # `random` reseeds itself after a fork; numpy's global state does not
        sys.modules["numpy"].random.seed()


def _quiet_about_preloaded_plugins() -> None:
    """pytest warns that a plugin package imported before it started cannot be assert-rewritten (e.g.
    anyio, imported by transformers): in a fresh interpreter pytest imports it first, so no warning."""
    rewrite = sys.modules.get("_pytest.assertion.rewrite")
    if rewrite is None:
        return
    warn = rewrite.AssertionRewritingHook._warn_already_imported

    def warn_unless_preloaded(hook, name: str) -> None:
        if name not in _PRELOADED:
            warn(hook, name)

    rewrite.AssertionRewritingHook._warn_already_imported = warn_unless_preloaded


def _fresh_stdio(unbuffered: bool) -> None:
    def text(fd: int, errors: str, line_buffering: bool = False, read: bool = False):
        raw = io.FileIO(fd, "rb" if read else "wb", closefd=False)
        binary = io.BufferedReader(raw) if read else io.BufferedWriter(raw)
        return io.TextIOWrapper(
            binary, encoding="utf-8", errors=errors, line_buffering=line_buffering, write_through=unbuffered
        )

    sys.stdin = sys.__stdin__ = text(0, "strict", read=True)
    sys.stdout = sys.__stdout__ = text(1, "strict")
    sys.stderr = sys.__stderr__ = text(2, "backslashreplace", line_buffering=True)


def _exit_code(code) -> int:
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    print(code, file=sys.stderr)
    return 1


def _shutdown(code: int) -> int:
    """What the interpreter does at exit: wait for threads, run atexit functions, flush stdio."""
    try:
        threading._shutdown()
        atexit._run_exitfuncs()
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
