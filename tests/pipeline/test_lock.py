"""pipeline.lock: holder record, waiting message, lock log, release on process death."""

import getpass
import json
import os
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from pipeline.lock import DeviceLock, LockError, default_lock_path, read_lock_log

HOLD = textwrap.dedent(
    """
    import sys, time
    from pipeline.lock import DeviceLock
    lock = DeviceLock(sys.argv[1], task="holder")
    lock.acquire()
    print("held", flush=True)
    time.sleep(float(sys.argv[2]))
    lock.release()
    """
)


def start_holder(lock_path, seconds):
    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(lock_path), str(seconds)], stdout=subprocess.PIPE, text=True, env=env
    )
    assert holder.stdout.readline().strip() == "held"
    return holder


def test_holder_record_and_log(tmp_path):
    path = tmp_path / "device.lock"
    with DeviceLock(path, task="unit_test:x") as lock:
        holder = json.loads(lock.holder_path.read_text())
        assert holder["pid"] == os.getpid() and holder["task"] == "unit_test:x" and holder["since"]
    assert lock.holder() is None and lock.holder_path.read_text() == ""  # emptied in place, not removed
    events = read_lock_log(tmp_path / "device.lock.log")
    assert [(e["event"], e["task"]) for e in events] == [
        ("acquire", "unit_test:x"),
        ("release", "unit_test:x"),
    ]


def test_waiter_says_who_holds_the_lock_then_gets_it(tmp_path):
    path = tmp_path / "device.lock"
    holder = start_holder(path, 1.5)
    messages = []
    with DeviceLock(path, task="waiter", say=messages.append):
        pass
    holder.wait()
    assert messages[0].startswith(
        f"waiting for the device lock {path}: held by holder (user {getpass.getuser()}, pid {holder.pid}"
    )
    assert messages[-1] == f"got the device lock {path}"
    events = [(e["event"], e["task"]) for e in read_lock_log(tmp_path / "device.lock.log")]
    assert events == [
        ("acquire", "holder"),
        ("release", "holder"),
        ("acquire", "waiter"),
        ("release", "waiter"),
    ]


def test_lock_is_freed_when_the_holder_is_killed(tmp_path):
    path = tmp_path / "device.lock"
    holder = start_holder(path, 60)
    holder.kill()
    holder.wait()
    messages = []
    started = time.monotonic()
    with DeviceLock(path, task="next", say=messages.append):
        pass
    assert time.monotonic() - started < 30  # not the holder's 60 s
    assert not any("waiting" in m for m in messages)


def test_default_path_is_keyed_and_configurable(monkeypatch, tmp_path):
    monkeypatch.delenv("PIPELINE_DEVICE_LOCK", raising=False)
    monkeypatch.delenv("PIPELINE_LOCK_DIR", raising=False)
    monkeypatch.setenv("TMPDIR", str(tmp_path))  # the machine-wide place does not follow TMPDIR
    assert default_lock_path("ttnn", "0,1").parent == Path("/tmp/tt-fused-op-pipeline-locks")
    monkeypatch.setenv("PIPELINE_LOCK_DIR", str(tmp_path / "locks"))
    assert default_lock_path("ttnn", "0,1") == tmp_path / "locks" / "ttnn-0_1.lock"
    assert default_lock_path("sim", "sim") != default_lock_path("ttnn", "all")
    assert default_lock_path("ttnn", "0,1") != default_lock_path("ttnn", "2,3")
    monkeypatch.setenv("PIPELINE_DEVICE_LOCK", str(tmp_path / "custom.lock"))
    assert default_lock_path("sim", "sim") == tmp_path / "custom.lock"


def test_lock_directory_and_files_are_usable_by_every_user(tmp_path):
    path = tmp_path / "locks" / "device.lock"
    old_umask = os.umask(0o022)
    try:
        with DeviceLock(path, task="t") as lock:
            holder_inode = os.stat(lock.holder_path).st_ino
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(os.stat(path.parent).st_mode) == 0o1777
    for made in (path, lock.holder_path, lock.log_path):
        assert stat.S_IMODE(os.stat(made).st_mode) == 0o666, made
    with DeviceLock(path, task="t2"):
        assert os.stat(lock.holder_path).st_ino == holder_inode  # rewritten in place


@pytest.mark.parametrize("planted", ["device.lock", "device.lock.holder.json", "device.lock.log"])
def test_symlink_planted_by_another_user_is_refused(tmp_path, planted):
    target = tmp_path / "victim.txt"
    target.write_text("precious\n")
    (tmp_path / planted).symlink_to(target)
    with pytest.raises(LockError, match="symlink"):
        with DeviceLock(tmp_path / "device.lock", task="t"):
            pass
    assert target.read_text() == "precious\n"


def test_symlinked_lock_directory_is_refused(tmp_path):
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "locks").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(LockError, match="not a directory"):
        DeviceLock(tmp_path / "locks" / "device.lock", task="t").acquire()


def test_sim_lock_is_per_artifacts_dir_and_real_backend_machine_wide(monkeypatch, tmp_path):
    from pipeline.backends import get_backend

    monkeypatch.delenv("PIPELINE_DEVICE_LOCK", raising=False)
    monkeypatch.delenv("PIPELINE_LOCK_DIR", raising=False)
    assert get_backend("sim", tmp_path, tmp_path / "a").lock_path == tmp_path / "a" / ".device.lock"
    assert get_backend("sim", tmp_path, tmp_path / "b").lock_path == tmp_path / "b" / ".device.lock"
    monkeypatch.setenv("TT_VISIBLE_DEVICES", "0,1")
    assert get_backend("ttnn", tmp_path, tmp_path / "a").lock_path == Path(
        "/tmp/tt-fused-op-pipeline-locks/ttnn-0_1.lock"
    )
    monkeypatch.setenv("PIPELINE_DEVICE_LOCK", str(tmp_path / "set.lock"))
    assert get_backend("sim", tmp_path, tmp_path / "a").lock_path == tmp_path / "set.lock"
