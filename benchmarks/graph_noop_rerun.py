"""What a no-op rerun costs: `doit run` on an up-to-date checkout vs a bare dodo.py with as many file tasks.

Not a pass/fail test: it prints figures for the README (median of 5 runs each, run in turn, and the
ratio of the medians). DIR is a checkout where `doit run` has completed (benchmarks/graph_first_run.py
leaves one).

Run:  .venv/bin/python benchmarks/graph_noop_rerun.py DIR
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RUNS = 5

BARE_DODO = '''\
"""{count} trivial file tasks: a dependency each, a target each (what doit alone costs)."""
from pathlib import Path

def _write(target):
    Path(target).write_text("done\\n")

def task_step():
    for i in range({count}):
        yield {{"name": str(i), "file_dep": [f"in/{{i}}.txt"], "targets": [f"out/{{i}}.txt"],
               "actions": [(_write, [f"out/{{i}}.txt"])]}}
'''


def plain_env() -> dict:
    """The environment of a user's shell: Python caches bytecode (some sandboxes and CI images set
    PYTHONDONTWRITEBYTECODE, which recompiles the pipeline's modules on every run but not doit's)."""
    return {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def env_for(repo: Path) -> dict:
    env = {k: v for k, v in plain_env().items() if not k.startswith(("PIPELINE_", "TTNN_SIM_"))}
    return {**env, "PIPELINE_DEVICE_LOCK": str(repo / "bench-device.lock")}


def doit(folder: Path, env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "doit", *args], cwd=folder, env=env, capture_output=True,
                          text=True)  # fmt: skip


def task_count(repo: Path) -> int:
    listing = doit(repo, env_for(repo), "list", "--all", "--quiet").stdout
    return len([line for line in listing.splitlines() if line.strip()])


def bare_checkout(folder: Path, count: int) -> Path:
    (folder / "in").mkdir(parents=True)
    (folder / "out").mkdir()
    for i in range(count):
        (folder / "in" / f"{i}.txt").write_text(f"{i}\n")
    (folder / "dodo.py").write_text(BARE_DODO.format(count=count))
    return folder


def timed(folder: Path, env: dict) -> float:
    started = time.perf_counter()
    result = doit(folder, env, "run")
    elapsed = time.perf_counter() - started
    ran = [line for line in result.stdout.splitlines() if line.startswith(".  ")]
    if result.returncode != 0 or ran:
        raise SystemExit(f"not a no-op rerun in {folder}: exit {result.returncode}, ran {ran[:3]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dir", type=Path, help="a checkout after a completed `doit run`")
    repo = parser.parse_args().dir.resolve()
    count = task_count(repo)
    with tempfile.TemporaryDirectory() as tmp:
        bare = bare_checkout(Path(tmp), count)
        doit(bare, plain_env(), "run")  # the first run builds every target
        timed(repo, env_for(repo))  # warm-up: bytecode caches written, files in the page cache
        pipeline_times, bare_times = [], []
        for _ in range(RUNS):  # in turn, so a drift of the machine's speed hits both alike
            pipeline_times.append(timed(repo, env_for(repo)))
            bare_times.append(timed(bare, plain_env()))
    pipeline_median, bare_median = statistics.median(pipeline_times), statistics.median(bare_times)
    print(f"tasks in the graph:                {count}")
    print(f"no-op rerun, pipeline (median of {RUNS}): {pipeline_median:.3f} s")
    print(f"no-op rerun, bare dodo.py, {count} file tasks: {bare_median:.3f} s")
    print(f"ratio:                             {pipeline_median / bare_median:.2f}x")


if __name__ == "__main__":
    main()
