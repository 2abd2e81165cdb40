"""The device lock: one device step at a time per device set, for every user of the machine.

An ``flock`` on a lock file: the kernel releases it when the last descriptor of it closes, even after
``kill -9``. The runner hands that descriptor to the guard that owns the child (pipeline/guard.py),
so the lock stays held until the child's whole process tree is gone, whoever dies first.

Beside the lock file: a holder record (JSON: user, pid, host, task, since) so a waiter can say whom it
waits for, and a log with one line per acquire/release so tests (and people) can check that holders
never overlapped.

Where: the machine-wide directory is ``/tmp/tt-fused-op-pipeline-locks`` (a fixed path, whatever
``TMPDIR`` says, so every user's jobs meet there; ``PIPELINE_LOCK_DIR`` overrides it), created
world-writable with the sticky bit. ``PIPELINE_DEVICE_LOCK`` names the lock file itself and
``PIPELINE_LOCK_LOG`` the log. Every file is opened with ``O_NOFOLLOW`` (a symlink planted by another
user is refused) and made mode 0666 by whoever creates it; the holder record is rewritten in place,
never renamed onto another user's file.
"""

import errno
import fcntl
import json
import os
import re
import socket
import stat
import sys
import time
from pathlib import Path

MACHINE_LOCK_DIR = Path("/tmp/tt-fused-op-pipeline-locks")
WAIT_REPORT_SECONDS = 30.0  # how often a waiter repeats who holds the lock
_POLL_SECONDS = 0.2
_SHARED_FILE_MODE = 0o666


class LockError(Exception):
    """The lock directory or a lock file cannot be used safely (a one-line reason)."""


def machine_lock_dir() -> Path:
    return Path(os.environ.get("PIPELINE_LOCK_DIR") or MACHINE_LOCK_DIR)


def default_lock_path(backend: str, device_set: str) -> Path:
    """The machine-wide lock of one device set (``PIPELINE_DEVICE_LOCK`` overrides)."""
    configured = os.environ.get("PIPELINE_DEVICE_LOCK")
    if configured:
        return Path(configured)
    key = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{backend}-{device_set}")
    return machine_lock_dir() / f"{key}.lock"


class DeviceLock:
    """Context manager: ``with DeviceLock(path, task="unit_test:router") as lock: ... lock.fd ...``."""

    def __init__(self, path: Path, task: str, log_path: Path | None = None, say=None):
        self.path = Path(path)
        self.task = task
        self.holder_path = self.path.with_name(self.path.name + ".holder.json")
        self.log_path = Path(
            log_path or os.environ.get("PIPELINE_LOCK_LOG") or self.path.with_name(self.path.name + ".log")
        )
        self.say = say or _say
        self.fd: int | None = None

    def __enter__(self):
        self.acquire()
        return self

    def __exit__(self, *exc):
        self.release()

    def acquire(self) -> None:
        shared_directory(self.path.parent)
        fd = open_shared(self.path, os.O_RDWR)
        try:
            if not _try_lock(fd):
                self._wait(fd)
        except BaseException:
            os.close(fd)
            raise
        self.fd = fd
        holder = {
            "user": _user(),
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "task": self.task,
            "since": _now(),
        }
        self._write_holder(holder)
        self._log("acquire")

    def release(self, **note) -> None:
        """`note`: extra fields for the log's release line (the runner's child time under this hold)."""
        if self.fd is None:
            return
        self._log("release", **note)
        self._write_holder(None)
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)
        self.fd = None

    def holder(self) -> dict | None:
        try:
            return json.loads(self.holder_path.read_text()) or None
        except (OSError, ValueError):
            return None

    def _wait(self, fd: int) -> None:
        last_told, told_at = None, 0.0
        while not _try_lock(fd):
            holder = self.holder()
            if holder != last_told or time.monotonic() - told_at > WAIT_REPORT_SECONDS:
                self.say(f"waiting for the device lock {self.path}: {describe(holder)}")
                last_told, told_at = holder, time.monotonic()
            time.sleep(_POLL_SECONDS)
        self.say(f"got the device lock {self.path}")

    def _write_holder(self, holder: dict | None) -> None:
        """In place (truncate + write), so any user can rewrite a record another user created."""
        fd = open_shared(self.holder_path, os.O_RDWR)
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, (json.dumps(holder) + "\n").encode() if holder else b"", 0)
        finally:
            os.close(fd)

    def _log(self, event: str, **note) -> None:
        record = {"event": event, "user": _user(), "pid": os.getpid(), "task": self.task, "time": time.time()}
        line = json.dumps({**record, **note})
        shared_directory(self.log_path.parent)
        fd = open_shared(self.log_path, os.O_WRONLY | os.O_APPEND)
        try:
            os.write(fd, (line + "\n").encode())  # one short O_APPEND write per event: lines never interleave
        finally:
            os.close(fd)


def shared_directory(path: Path) -> None:
    """Create `path` world-writable + sticky when missing (a lock directory every user can use);
    refuse one that is a symlink, which another user could point anywhere."""
    try:
        os.mkdir(path, 0o700)
        os.chmod(path, 0o1777)  # after mkdir: the umask would strip the mode given to mkdir
    except FileNotFoundError:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        return shared_directory(path)
    except FileExistsError:
        pass
    info = os.lstat(path)
    if not stat.S_ISDIR(info.st_mode):
        raise LockError(
            f"lock directory {path} is not a directory (a symlink?); remove it or set PIPELINE_LOCK_DIR"
        )


def open_shared(path: Path, flags: int) -> int:
    """Open (creating 0666 if missing) without following a symlink, under fs.protected_regular too.

    O_CREAT on another user's file in a sticky world-writable directory is refused by the kernel when
    fs.protected_regular is set, so an existing file is opened without it.
    """
    flags |= os.O_NOFOLLOW | os.O_CLOEXEC
    for _ in range(3):
        try:
            return os.open(path, flags)
        except FileNotFoundError:
            pass
        except OSError as error:
            raise _unsafe(path, error) from None
        try:
            fd = os.open(path, flags | os.O_CREAT | os.O_EXCL, _SHARED_FILE_MODE)
        except FileExistsError:
            continue  # another process created it between the two opens
        except OSError as error:
            raise _unsafe(path, error) from None
        os.fchmod(fd, _SHARED_FILE_MODE)  # the umask stripped group/other write
        return fd
    raise LockError(f"cannot open {path}: it keeps appearing and disappearing")


def describe(holder: dict | None) -> str:
    if not holder:
        return "held by another process (no holder record)"
    alive = (
        "" if _pid_alive(holder.get("pid"), holder.get("host")) else " (process gone; the lock frees itself)"
    )
    return (
        f"held by {holder.get('task')} (user {holder.get('user')}, pid {holder.get('pid')} on "
        f"{holder.get('host')}, since {holder.get('since')}){alive}"
    )


def read_lock_log(path: Path) -> list[dict]:
    try:
        return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
    except OSError:
        return []


def _try_lock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False


def _unsafe(path: Path, error: OSError) -> LockError:
    if error.errno == errno.ELOOP:
        return LockError(f"{path} is a symlink; refusing to follow it (remove it)")
    return LockError(f"cannot open {path}: {error.strerror}")


def _pid_alive(pid, host) -> bool:
    if host != socket.gethostname() or not isinstance(pid, int):
        return True  # cannot tell for another host
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _user() -> str:
    import getpass  # it imports termios: only a run that takes or waits for the lock needs a name

    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid())


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
