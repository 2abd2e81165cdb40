"""The first full run of every bundled fused op: wall time, peak memory, device steps and runner overhead.

Not a pass/fail test: it prints figures for the README. It copies this checkout (without .venv and
artifacts) to DIR, runs `doit run` there with a private device lock, and leaves DIR in place for
benchmarks/graph_noop_rerun.py.

Run:  .venv/bin/python benchmarks/graph_first_run.py DIR [--fused-op NAME]

Figures:
- wall time and the peak RSS of the largest process (doit or one of its children);
- device steps run vs the runs the guide asks a person to make by hand (every step once per fused op
  and mode: module-test runs are not shared between fused ops by hand);
- runner overhead: the share of the time the device lock was held that children spent running
  (sum of child wall times / lock-held time; 1.0 = the lock is never held idle).
"""

import argparse
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pipeline.lock import read_lock_log  # noqa: E402

DEVICE_STEPS = (
    "baseline",
    "patch_verify",
    "unit_test",
    "unit_perf",
    "module_perf",
    "single_device",
    "single_perf",
)
PER_MODE = ("baseline", "patch_verify", "unit_perf", "module_perf", "single_perf")


def copy_checkout(target: Path) -> Path:
    ignore = shutil.ignore_patterns(
        ".venv", "artifacts", "__pycache__", ".pytest_cache", ".ruff_cache", ".git"
    )
    shutil.copytree(REPO, target, ignore=ignore, symlinks=True)
    (target / "artifacts").mkdir()
    return target


def bench_env(repo: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PIPELINE_", "TTNN_SIM_"))}
    return {**env, "PIPELINE_DEVICE_LOCK": str(repo / "bench-device.lock")}


def device_tasks(repo: Path, selection: list[str]) -> list[str]:
    listing = subprocess.run([sys.executable, "-m", "doit", "list", "--all", "--quiet", *selection], cwd=repo,
                             env=bench_env(repo), capture_output=True, text=True, check=True).stdout  # fmt: skip
    names = [line.split()[0] for line in listing.splitlines() if line.strip()]
    return [name for name in names if ":" in name and name.split(":")[0] in DEVICE_STEPS]


def manual_runs(repo: Path, fused_op: str | None) -> int:
    """The guide by hand: every device step once per fused op (and mode), nothing shared."""
    import tomllib

    total = 0
    for spec in sorted((repo / "fused_ops").glob("*.toml")):
        if fused_op and spec.stem != fused_op:
            continue
        modes = len(tomllib.loads(spec.read_text())["modes"])
        total += sum(modes if step in PER_MODE else 1 for step in DEVICE_STEPS)
    return total


def lock_seconds(log: Path) -> tuple[float, float]:
    """(time the device lock was held, time children ran under it), from the lock log's release lines."""
    events = read_lock_log(log)
    held = sum(r["time"] - a["time"] for a, r in zip(events[::2], events[1::2], strict=False))
    return held, sum(r.get("child_s", 0.0) for r in events[1::2])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dir", type=Path, help="where to copy the checkout (must not exist)")
    parser.add_argument("--fused-op", help="only this fused op's graph (default: every bundled one)")
    options = parser.parse_args()
    repo = copy_checkout(options.dir.resolve())
    selection = [f"fused_op={options.fused_op}"] if options.fused_op else []
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "doit", "run", *selection], cwd=repo, env=bench_env(repo),
                          capture_output=True, text=True)  # fmt: skip
    wall = time.monotonic() - started
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    (repo / "first_run.log").write_text(done.stdout + done.stderr)
    tasks = device_tasks(repo, selection)
    held, children = lock_seconds(repo / "bench-device.lock.log")
    print(f"doit run exit code:              {done.returncode} (output in {repo / 'first_run.log'})")
    print(f"first full run, wall:            {wall:.1f} s")
    print(f"peak RSS of the largest process: {peak_mb:.0f} MB")
    print(
        f"device steps in the graph:       {len(tasks)} (by hand, per the guide: {manual_runs(repo, options.fused_op)})"
    )
    print(f"device lock held:                {held:.1f} s; children ran {children:.1f} s")
    print(f"runner overhead (children / lock held): {children / held:.3f}" if held else "no lock log")


if __name__ == "__main__":
    main()
