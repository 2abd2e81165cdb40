"""pipeline.lock: holder record, waiting message, lock log, release on process death."""

import json
import os
import subprocess
import sys
import textwrap
import time

from pipeline.lock import DeviceLock, default_lock_path, read_lock_log

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
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(lock_path), str(seconds)], stdout=subprocess.PIPE,
                              text=True, env=env)  # fmt: skip
    assert holder.stdout.readline().strip() == "held"
    return holder


def test_holder_record_and_log(tmp_path):
    path = tmp_path / "device.lock"
    with DeviceLock(path, task="unit_test:x") as lock:
        holder = json.loads(lock.holder_path.read_text())
        assert holder["pid"] == os.getpid() and holder["task"] == "unit_test:x" and holder["since"]
    assert not lock.holder_path.exists()
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
    assert messages[0].startswith(f"waiting for the device lock {path}: held by holder (pid {holder.pid}")
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
    assert default_lock_path("sim", "sim") != default_lock_path("ttnn", "all")
    assert default_lock_path("ttnn", "0,1") != default_lock_path("ttnn", "2,3")
    monkeypatch.setenv("PIPELINE_DEVICE_LOCK", str(tmp_path / "custom.lock"))
    assert default_lock_path("sim", "sim") == tmp_path / "custom.lock"
