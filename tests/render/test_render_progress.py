"""The progress reporter under doit: doit's own lines kept, one line per step without a terminal,
a live status line on a terminal, the final table (run / up to date / failed / blocked)."""

import io
import os
import pty
import re
import select
import subprocess
import sys
import threading

import pytest
from fakes import make_doit_env, make_fake_repo

from pipeline.lock import DeviceLock
from pipeline.progress import StatusLine

HOOK = 'DOIT_CONFIG["reporter"] = __import__("pipeline.progress").progress.ProgressReporter\n'
TASK = "unit_test:demo_router"


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    base = tmp_path_factory.mktemp("progress")
    repo = make_fake_repo(base / "repo")
    dodo = repo / "dodo.py"
    text = dodo.read_text()
    if "ProgressReporter" not in text:  # dodo.py without the hook: add it here
        assert "\n\nif doit_support" in text
        dodo.write_text(text.replace("\n\nif doit_support", "\n" + HOOK + "\nif doit_support", 1))
    return repo


def run_doit(repo, *args, tty=False):
    argv = [sys.executable, "-m", "doit", *args]
    env = {**make_doit_env(repo.parent), "COLUMNS": "120", "LINES": "30"}
    if not tty:
        done = subprocess.run(argv, cwd=repo, env=env, capture_output=True, text=True, timeout=300)
        return done.returncode, done.stdout
    master, slave = pty.openpty()
    child = subprocess.Popen(argv, cwd=repo, env=env, stdin=slave, stdout=slave, stderr=slave)
    os.close(slave)
    chunks = []
    while True:
        ready, _, _ = select.select([master], [], [], 300)
        try:
            chunk = os.read(master, 65536) if ready else b""
        except OSError:
            chunk = b""
        if not chunk:
            break
        chunks.append(chunk)
    os.close(master)
    return child.wait(timeout=60), b"".join(chunks).decode("utf-8", "replace")


def counts(out: str) -> tuple[int, ...]:
    """(run, up to date, failed, blocked) from the table's last line."""
    found = re.search(r"(\d+) run, (\d+) up to date, (\d+) failed, (\d+) blocked;", out)
    assert found, out[-2000:]
    return tuple(int(n) for n in found.groups())


def test_without_a_terminal_one_line_per_step_and_the_table(repo):
    code, out = run_doit(repo, "run", TASK)
    assert code == 0, out[-3000:]
    assert f".  {TASK}\n" in out  # doit's own line
    assert f"   {TASK}: passed in " in out
    assert "\x1b[" not in out  # no terminal control without a terminal
    executed = out.count("\n.  ") + out.startswith(".  ")  # the task and whatever it waits for
    assert counts(out) == (executed, 0, 0, 0)
    code, out = run_doit(repo, "run", TASK)
    assert f"-- {TASK}\n" in out
    assert counts(out) == (0, executed, 0, 0)


def test_on_a_terminal_a_live_status_line_names_the_running_step(repo):
    code, out = run_doit(repo, "forget", TASK)
    code, out = run_doit(repo, "run", TASK, tty=True)
    assert code == 0, out[-3000:]
    assert f".  {TASK}" in out
    assert f"\x1b[7m▶ {TASK}" in out  # the status line, reverse video on the bottom row
    assert "\x1b[1;29r" in out and "\x1b[r" in out  # scroll region set, then reset
    ran, up_to_date, failed, blocked = counts(out)
    assert (ran, failed, blocked) == (1, 0, 0)


def test_on_a_terminal_the_status_line_says_who_holds_the_device_lock(repo):
    run_doit(repo, "forget", TASK)
    holder = DeviceLock(repo.parent / "device.lock", task="someone_else:holding")  # make_doit_env's lock
    holder.acquire()
    release = threading.Timer(4.0, holder.release)
    release.start()
    try:
        code, out = run_doit(repo, "run", TASK, tty=True)
    finally:
        release.join()
    assert code == 0, out[-3000:]
    status_lines = re.findall(r"\x1b\[7m([^\x1b]*)\x1b\[0m", out)
    assert any(
        f"▶ {TASK}" in s and "waiting for the device lock, held by someone_else:holding" in s
        for s in status_lines
    ), status_lines[-5:]


def test_status_text_says_when_the_step_holds_the_device_lock(tmp_path):
    log = tmp_path / "log.txt"
    log.write_text("[   0.001s] # command: pytest x\n")
    line = StatusLine(io.StringIO())
    line.task, line.log = TASK, log
    assert "under the device lock" not in line.text()  # not yet: a host step never says it
    log.write_text(log.read_text() + "[   0.020s] pipeline: $ pytest x\n[   0.500s] PASSED\n")
    assert line.text().endswith("under the device lock · [   0.500s] PASSED")


def test_status_text_says_why_the_step_reruns(tmp_path):
    log = tmp_path / "log.txt"
    log.write_text("[   0.001s] # command: pytest x\n")
    line = StatusLine(io.StringIO())
    line.show(TASK, str(log), "changed dependency models/x.py (code)")
    line.stop()
    assert "(changed dependency models/x.py (code))" in line.text()
