"""Two Unix users share one device lock: the second user's pipeline waits, naming the first, then runs.

CI runs as root, so the test creates the second user (useradd) and runs that user's `doit run` with
setpriv. It fails, never skips, when that is impossible. The second user keeps CAP_DAC_READ_SEARCH
only so it can reach this checkout's interpreter (which may live under root's home); it cannot write
anything another user owns, which is what the lock files must allow.
"""

import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pytest
from fakes import executed, make_doit_env, make_fake_repo

from pipeline.lock import read_lock_log

PEER = "tt-pipeline-peer"
HOLD = textwrap.dedent(
    """
    import os, sys, time
    os.umask(0o022)  # a usual umask: files the first user creates would be 0644 without the lock's care
    from pipeline.lock import DeviceLock
    with DeviceLock(sys.argv[1], task="unit_test:first_user_op"):
        print("held", flush=True)
        time.sleep(float(sys.argv[2]))
    """
)


@pytest.fixture(scope="module")
def peer():
    if os.geteuid() != 0:
        pytest.fail("this test creates a second Unix user: run it as root (CI does)")
    created = subprocess.run(["id", PEER], capture_output=True).returncode != 0
    if created:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", PEER], check=True
        )
    yield PEER
    if created:
        subprocess.run(["userdel", PEER], check=False)


def as_user(user: str, argv: list[str]) -> list[str]:
    caps = ["--inh-caps=+dac_read_search", "--ambient-caps=+dac_read_search"]
    return ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups", *caps, *argv]


def test_second_user_waits_for_the_first_then_runs(peer):
    shared = Path(tempfile.mkdtemp(prefix="pipeline-users-", dir="/tmp"))
    try:
        shared.chmod(0o755)
        lock = shared / "locks" / "device.lock"  # created by the first user, world-writable + sticky
        env = {**make_doit_env(shared), "PIPELINE_DEVICE_LOCK": str(lock), "HOME": str(shared)}
        holder = subprocess.Popen(
            [sys.executable, "-c", HOLD, str(lock), "6"], env=env, stdout=subprocess.PIPE, text=True
        )
        assert holder.stdout.readline().strip() == "held"
        repo = make_fake_repo(shared / "repo")
        subprocess.run(["chown", "-R", f"{peer}:", str(repo)], check=True)
        started = time.monotonic()
        argv = as_user(peer, [sys.executable, "-m", "doit", "run"])
        second = subprocess.run(argv, cwd=repo, env=env, capture_output=True, text=True, timeout=300)
        holder.wait(timeout=30)
        assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-2000:]
        assert f"held by unit_test:first_user_op (user root, pid {holder.pid} on " in second.stdout
        assert "baseline:" in " ".join(executed(second)) and time.monotonic() - started >= 5
        events = [(e["user"], e["event"]) for e in read_lock_log(lock.with_name("device.lock.log"))]
        assert events[:2] == [("root", "acquire"), ("root", "release")]
        assert set(events[2:]) == {(peer, "acquire"), (peer, "release")}  # every later holder: the peer
        assert all(a[1] != b[1] for a, b in zip(events, events[1:], strict=False))  # never two at once
    finally:
        shutil.rmtree(shared, ignore_errors=True)
