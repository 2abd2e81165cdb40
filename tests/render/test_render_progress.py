"""The progress reporter under doit: doit's own lines kept, one line per step without a terminal,
a live status line on a terminal, the final table (run / up to date / failed / blocked)."""

import os
import pty
import re
import select
import subprocess
import sys

import pytest
from fakes import make_doit_env, make_fake_repo

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
