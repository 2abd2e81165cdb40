"""pipeline.runner with small fake commands: tee, watchdog, reset + health, classification, retry, signals."""

import io
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from fakes import as_in_a_terminal, make_tt_smi

from pipeline import artifacts, runner
from pipeline.backends import Backend
from pipeline.lock import DeviceLock, read_lock_log

PY = sys.executable
HEALTHY = (PY, "-c", "print('devices: 8')")


def backend(reset=(), health=HEALTHY, by_machine=False):
    return Backend(
        name="fake",
        python=PY,
        extra_pythonpath=(),
        reset_commands=reset,
        health_command=health,
        device_set="test",
        reset_by_machine=by_machine,
    )


def run(tmp_path, code, *, silence=30.0, wall=60.0, be=None, env=None, reset=300.0):
    out = io.StringIO()
    request = runner.Request(
        task="step:op",
        argv=[PY, "-c", textwrap.dedent(code)],
        cwd=tmp_path,
        env={**os.environ, **(env or {})},
        log_path=tmp_path / "step" / "log.txt",
        environment_key={"backend": "fake", "pipeline": "test"},
    )
    timeouts = runner.Timeouts(wall=wall, silence=silence, reset=reset)
    outcome = runner.run(request, be or backend(), timeouts, lock_path=tmp_path / "device.lock", out=out)
    return outcome, out.getvalue(), request.log_path.read_text()


def test_passing_command_is_teed_with_header_and_prefix(tmp_path):
    outcome, terminal, log = run(tmp_path, "print('PCC x test passed. Output: 0.99')")
    assert outcome.verdict == artifacts.PASSED and outcome.returncode == 0 and len(outcome.attempts) == 1
    assert outcome.output == "PCC x test passed. Output: 0.99\n"  # raw, for the parsers
    lines = log.splitlines()
    assert "# command: " + PY + " -c " in lines[0]
    assert any(
        line.endswith('# environment key: {"backend": "fake", "pipeline": "test"}') for line in lines[:8]
    )
    assert any(line.endswith("] PCC x test passed. Output: 0.99") and line.startswith("[") for line in lines)
    assert "[step:op] PCC x test passed. Output: 0.99\n" in terminal
    events = read_lock_log(tmp_path / "device.lock.log")
    assert [e["event"] for e in events] == ["acquire", "release"]
    assert 0 < events[1]["child_s"] < events[1]["time"] - events[0]["time"]  # the child's share of the hold


def test_test_failure_is_not_retried(tmp_path):
    outcome, _, _ = run(tmp_path, "import sys; print('boom'); sys.exit(1)")
    assert outcome.verdict == artifacts.FAILED
    assert outcome.message == "exit 1 (tests failed)"
    assert len(outcome.attempts) == 1


def test_silent_hang_is_killed_reset_retried_then_infra_failure(tmp_path):
    started = time.monotonic()
    outcome, terminal, log = run(
        tmp_path, "import time; print('working', flush=True); time.sleep(600)", silence=1.0
    )
    assert outcome.verdict == artifacts.INFRA_FAILURE
    assert [a.verdict for a in outcome.attempts] == [artifacts.INFRA_FAILURE] * 2
    assert all(a.reason == "hang: no output for 1 s" for a in outcome.attempts)
    assert all(a.duration_s < 1.0 + 10 for a in outcome.attempts)  # killed within silence + 10 s
    assert time.monotonic() - started < 2 * (1.0 + 10) + 10
    assert "reset: fake backend has no device to reset (no-op)" in log
    assert "health: " in log and "health| devices: 8" in log
    assert "attempt 2 of 2" in terminal
    assert outcome.message.startswith("infrastructure failure after 2 attempt(s): hang")
    assert outcome.record()["retried"] is True
    assert [e["event"] for e in read_lock_log(tmp_path / "device.lock.log")] == ["acquire", "release"]


def test_crash_is_infrastructure_and_reset_commands_run(tmp_path):
    marker = tmp_path / "reset.txt"
    reset = ((PY, "-c", f"open({str(marker)!r}, 'a').write('reset\\n')"),)
    outcome, _, log = run(tmp_path, "import os; os.abort()", be=backend(reset=reset))
    assert outcome.verdict == artifacts.INFRA_FAILURE
    assert outcome.attempts[0].reason == "crash: killed by signal SIGABRT"
    assert marker.read_text() == "reset\nreset\n"  # after each crash, still under the lock
    assert outcome.record()["resets"] == 2


def test_faulthandler_crash_text_with_exit_code_is_infrastructure(tmp_path):
    outcome, _, _ = run(tmp_path, "import sys; print('Fatal Python error: Aborted'); sys.exit(4)")
    assert outcome.verdict == artifacts.INFRA_FAILURE
    assert outcome.attempts[0].reason == "crash: Fatal Python error: Aborted (exit 4)"


def test_failed_health_check_stops_the_retry(tmp_path):
    sick = (PY, "-c", "import sys; print('no devices'); sys.exit(3)")
    outcome, _, log = run(tmp_path, "import os; os.abort()", be=backend(health=sick))
    assert outcome.verdict == artifacts.INFRA_FAILURE and len(outcome.attempts) == 1
    assert "health| no devices" in log


def test_retry_after_hang_can_pass(tmp_path):
    marker = tmp_path / "first.done"
    code = f"""
        import os, time
        if not os.path.exists({str(marker)!r}):
            open({str(marker)!r}, 'w').close()
            time.sleep(600)
        print('ok')
    """
    outcome, _, _ = run(tmp_path, code, silence=1.0)
    assert outcome.verdict == artifacts.PASSED
    assert [a.verdict for a in outcome.attempts] == [artifacts.INFRA_FAILURE, artifacts.PASSED]


def test_wall_timeout_kills_a_chatty_process(tmp_path):
    outcome, _, _ = run(
        tmp_path, "import time\nwhile True:\n    print('.', flush=True); time.sleep(0.1)", wall=1.0
    )
    assert outcome.verdict == artifacts.INFRA_FAILURE
    assert outcome.attempts[0].reason == "wall timeout: process still running after 1 s"


def test_partial_lines_count_as_output(tmp_path):
    code = "import sys, time\nfor _ in range(15):\n    sys.stdout.write('.'); sys.stdout.flush(); time.sleep(0.1)"
    outcome, _, _ = run(tmp_path, code, silence=1.0)
    assert outcome.verdict == artifacts.PASSED and outcome.output == "." * 15 + "\n"


def test_descendants_in_their_own_session_are_killed(tmp_path):
    pid_file = tmp_path / "grandchild.pid"
    code = f"""
        import subprocess, sys, time
        kid = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"], start_new_session=True)
        open({str(pid_file)!r}, "w").write(str(kid.pid))
        print("started", flush=True)
        time.sleep(600)
    """
    run(tmp_path, code, silence=1.0)
    grandchild = int(pid_file.read_text())
    assert not _alive(grandchild)


SUPERVISOR = textwrap.dedent(
    """
    import os, sys
    from pathlib import Path
    from pipeline import runner
    from pipeline.backends import Backend
    runner.install_termination_handler()
    tmp = Path(sys.argv[1])
    be = Backend("fake", sys.executable, (), (), None, "test")
    child = ("import os, subprocess, sys, time; "
             "kid = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)'], start_new_session=True); "
             "print(os.getpid(), kid.pid, flush=True); time.sleep(600)")
    request = runner.Request("step:op", [sys.executable, "-c", child], tmp, dict(os.environ), tmp / "log.txt")
    try:
        runner.run(request, be, runner.Timeouts(60, 60), lock_path=tmp / "device.lock")
    except runner.Terminated:
        print("terminated cleanly", flush=True)
        sys.exit(143)
    """
)


def start_supervisor(tmp_path, child=None):
    """A process running runner.run on a tracy-like child: it starts a grandchild in a new session."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    argv = [PY, "-c", SUPERVISOR, str(tmp_path)]
    supervisor = subprocess.Popen(
        argv, stdout=subprocess.PIPE, text=True, env=env, preexec_fn=as_in_a_terminal
    )
    line = supervisor.stdout.readline()  # "[step:op] $ ..." then the child's and grandchild's pids
    while "$ " in line or "pipeline:" in line:
        line = supervisor.stdout.readline()
    return supervisor, [int(pid) for pid in line.split()[-2:]]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])
def test_signal_kills_the_child_group_and_releases_the_lock(tmp_path, sig):
    supervisor, pids = start_supervisor(tmp_path)
    supervisor.send_signal(sig)
    rest = supervisor.communicate(timeout=30)[0]
    assert not any(_alive(pid) for pid in pids)
    events = [e["event"] for e in read_lock_log(tmp_path / "device.lock.log")]
    assert events == ["acquire", "release"]
    if sig != signal.SIGINT:
        assert supervisor.returncode == 143 and "terminated cleanly" in rest


def test_kill_9_of_the_orchestrator_kills_the_tree_and_frees_the_lock(tmp_path):
    """The child (tracy-like) and its grandchild in a session of its own die within 5 s; lock free."""
    supervisor, pids = start_supervisor(tmp_path)
    supervisor.kill()
    killed = time.monotonic()
    supervisor.wait()
    with DeviceLock(tmp_path / "device.lock", task="next", say=lambda message: None):
        assert not any(_alive(pid) for pid in pids)  # the lock is free only once the tree is gone
    assert time.monotonic() - killed < 5


def test_leftover_daemon_of_a_finished_child_is_killed(tmp_path):
    pid_file = tmp_path / "daemon.pid"
    code = f"""
        import subprocess, sys
        kid = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"], start_new_session=True,
                               stdout=subprocess.DEVNULL)
        open({str(pid_file)!r}, "w").write(str(kid.pid))
    """
    outcome, _, _ = run(tmp_path, code)
    assert outcome.verdict == artifacts.PASSED
    assert not _alive(int(pid_file.read_text()))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie (reaped later by init) is dead for our purposes
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_missing_interpreter_is_a_failure_with_the_reason(tmp_path):
    argv = [str(tmp_path / "no-python"), "-c", "pass"]
    request = runner.Request("step:op", argv, tmp_path, dict(os.environ), tmp_path / "log.txt")
    outcome = runner.run(
        request, backend(), runner.Timeouts(5, 5), lock_path=tmp_path / "device.lock", out=io.StringIO()
    )
    assert outcome.verdict == artifacts.FAILED and outcome.message.startswith(
        f"cannot start {tmp_path / 'no-python'}"
    )


def test_classify_pytest_and_tracy_exit_codes():
    assert runner.classify(5, "") == (artifacts.FAILED, "exit 5 (no tests collected)")
    assert runner.classify(4, "", argv=[PY, "-m", "pytest"]) == (artifacts.FAILED, "exit 4 (usage error)")
    tracy = [PY, "-m", "tracy", "-r", "--check-exit-code", "-m", "pytest x.py"]
    assert runner.classify(4, "", argv=tracy) == (artifacts.FAILED, "exit 4 (test failed under tracy)")
    assert runner.classify(3, "", argv=tracy) == (artifacts.FAILED, "exit 3 (tracy interrupted)")
    assert runner.classify(-9, "")[0] == artifacts.INFRA_FAILURE
    assert runner.classify(0, "Fatal Python error: x") == (artifacts.PASSED, "exit 0")
    json.dumps(runner.classify(1, ""))


def test_multibyte_character_split_across_reads_is_written_intact(tmp_path):
    code = """
        import os, time
        data = "PCC é 0.99 ✓\\n".encode()
        cut = data.index(b"\\xc3") + 1  # inside the two bytes of é
        os.write(1, data[:cut]); time.sleep(0.3); os.write(1, data[cut:])
    """
    outcome, terminal, log = run(tmp_path, code)
    assert outcome.output == "PCC é 0.99 ✓\n"
    assert "] PCC é 0.99 ✓\n" in log and "[step:op] PCC é 0.99 ✓\n" in terminal
    assert "\ufffd" not in log


def test_wall_timeout_is_per_test_case(tmp_path):
    """Three 0.6 s cases under a 1 s wall timeout pass; one 2.5 s case is stopped as that case's timeout."""
    tests = tmp_path / "test_cases.py"
    tests.write_text(
        "import os, time, pytest\n"
        "@pytest.mark.parametrize('n', [1, 2, 3])\n"
        "def test_case(n):\n"
        "    time.sleep(2.5 if os.environ.get('SLOW_CASE') == str(n) else 0.6)\n"
    )
    argv = [*Backend("f", PY, (), (), None, "t").pytest_argv(["pytest", str(tests), "-q"])]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    for slow, verdict in (("", artifacts.PASSED), ("2", artifacts.INFRA_FAILURE)):
        request = runner.Request("step:op", argv, tmp_path, {**env, "SLOW_CASE": slow}, tmp_path / "log.txt")
        timeouts = runner.Timeouts(wall=1.0, silence=60)
        outcome = runner.run(
            request, backend(), timeouts, lock_path=tmp_path / "device.lock", out=io.StringIO()
        )
        assert outcome.verdict == verdict, outcome.message
    assert outcome.attempts[0].reason == "wall timeout: test case still running after 1 s"


TT_SMI_LS = ("tt-smi", "-ls")


@pytest.mark.parametrize("devices, reset", [(8, "tt-smi -r"), (32, "tt-smi -glx_reset")])
def test_reset_is_chosen_by_the_devices_found(tmp_path, devices, reset):
    smi = make_tt_smi(tmp_path / "smi", devices)
    outcome, _, log = run(
        tmp_path, "import os; os.abort()", be=backend(health=TT_SMI_LS, by_machine=True), env=smi
    )
    calls = Path(smi["TT_SMI_CALLS"]).read_text().splitlines()
    assert calls == ["tt-smi -ls", reset, "tt-smi -ls"] * 2  # after each crash: list, reset, list again
    assert f"reset: found {devices} " in log and len(outcome.attempts) == 2


def test_fewer_devices_after_reset_is_an_infrastructure_failure_not_retried(tmp_path):
    smi = make_tt_smi(tmp_path / "smi", 8, fault="fewer")
    outcome, _, _ = run(
        tmp_path, "import os; os.abort()", be=backend(health=TT_SMI_LS, by_machine=True), env=smi
    )
    assert outcome.verdict == artifacts.INFRA_FAILURE and len(outcome.attempts) == 1
    assert outcome.message.endswith(
        "not retried: health: 7 of 8 devices came back after the reset (missing: 7)"
    )


@pytest.mark.parametrize(
    "fault, why",
    [
        ("fail", "reset: tt-smi -r exit 1"),
        ("hang", "reset: tt-smi -r failed: wall timeout: process still running after 1 s"),
    ],
)
def test_reset_that_fails_or_hangs_is_bounded_reported_and_frees_the_lock(tmp_path, fault, why):
    smi = make_tt_smi(tmp_path / "smi", 8, fault=fault)
    started = time.monotonic()
    outcome, _, _ = run(
        tmp_path, "import os; os.abort()", be=backend(health=TT_SMI_LS, by_machine=True), env=smi, reset=1.0
    )
    assert time.monotonic() - started < 15
    assert outcome.verdict == artifacts.INFRA_FAILURE and len(outcome.attempts) == 1
    assert outcome.message.endswith(f"not retried: {why}")
    assert [e["event"] for e in read_lock_log(tmp_path / "device.lock.log")] == ["acquire", "release"]


def test_unusable_lock_is_one_line_infrastructure_failure_and_nothing_runs(tmp_path):
    marker = tmp_path / "ran"
    (tmp_path / "device.lock").symlink_to(tmp_path / "elsewhere")
    outcome, terminal, _ = run(tmp_path, f"open({str(marker)!r}, 'w')")
    assert outcome.verdict == artifacts.INFRA_FAILURE and not marker.exists()
    assert (
        outcome.message
        == f"device lock: {tmp_path / 'device.lock'} is a symlink; refusing to follow it (remove it)"
    )
