"""tt-metal's ``models/perf/benchmarking_utils.py``: step timestamps and the partial-run JSON of a benchmark.

``save_partial_run_json`` writes ``generated/benchmark_data/partial_run_<run start>.json`` (relative to the
working directory, as tt-metal does) with the fields of tt-metal's pydantic ``PartialBenchmarkRun`` in their
serialized order, compact, unset fields ``null``; a second run starting in the same second gets ``..._2.json``.
"""

import contextlib
import datetime
import json
import os
import socket
import subprocess
from pathlib import Path

from loguru import logger

BENCHMARK_DATA_DIR = Path("generated") / "benchmark_data"
# PartialBenchmarkRun's fields after the two run timestamps, in serialization order.
RUN_FIELDS = (
    "run_type",
    "git_repo_name",
    "git_commit_hash",
    "git_commit_ts",
    "git_branch_name",
    "github_pipeline_id",
    "github_pipeline_link",
    "github_job_id",
    "user_name",
    "docker_image",
    "device_hostname",
    "device_ip",
    "device_info",
    "ml_model_name",
    "ml_model_type",
    "num_layers",
    "batch_size",
    "config_params",
    "precision",
    "dataset_name",
    "profiler_name",
    "input_sequence_length",
    "output_sequence_length",
    "image_dimension",
    "perf_analysis",
    "training",
)


def _now() -> datetime.datetime:
    return datetime.datetime.now(tz=datetime.UTC)


def _json_ts(moment: datetime.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")  # pydantic v2's form of a UTC datetime


class BenchmarkProfiler:
    """UTC start/end timestamps per ``(iteration, step_name)``."""

    def __init__(self):
        self.start_times = {}
        self.end_times = {}

    def start(self, step_name: str, iteration: int = 0):
        self.start_times[(iteration, step_name)] = _now()

    def end(self, step_name: str, iteration: int = 0):
        self.end_times[(iteration, step_name)] = _now()

    def get_duration(self, step_name: str, iteration: int = 0) -> float:
        key = (iteration, step_name)
        return (self.end_times[key] - self.start_times[key]).total_seconds()

    def get_str_start(self, step_name: str, iteration: int = 0) -> str:
        return self.start_times[(iteration, step_name)].strftime("%Y-%m-%dT%H:%M:%S%z")

    def get_str_end(self, step_name: str, iteration: int = 0) -> str:
        return self.end_times[(iteration, step_name)].strftime("%Y-%m-%dT%H:%M:%S%z")

    def contains_step(self, step_name: str, iteration: int = 0) -> bool:
        key = (iteration, step_name)
        return key in self.start_times and key in self.end_times

    @contextlib.contextmanager
    def __call__(self, step_name: str, iteration: int = 0):
        self.start(step_name, iteration)
        try:
            yield
        finally:
            self.end(step_name, iteration)


class BenchmarkData:
    """Measurements of completed profiler steps, saved as one partial run."""

    def __init__(self):
        self.measurements = []

    def add_measurement(
        self,
        profiler,
        iteration,
        step_name,
        name,
        value,
        step_warm_up_num_iterations=None,
        target=None,
        device_power=None,
        device_temperature=None,
    ):
        assert step_name and name and value is not None, "step_name, name and value are required"
        assert profiler.contains_step(step_name, iteration), (
            f"Completed step '{step_name}' for iteration {iteration} not found in profiler"
        )
        self.measurements.append(
            {
                "step_start_ts": _json_ts(profiler.start_times[(iteration, step_name)]),
                "step_end_ts": _json_ts(profiler.end_times[(iteration, step_name)]),
                "iteration": iteration,
                "step_name": step_name,
                "step_warm_up_num_iterations": step_warm_up_num_iterations,
                "name": name,
                "value": float(value),
                "target": None if target is None else float(target),
                "device_power": device_power,
                "device_temperature": device_temperature,
            }
        )

    def save_partial_run_json(
        self,
        profiler,
        run_type,
        ml_model_name,
        ml_model_type=None,
        num_layers=None,
        batch_size=None,
        config_params=None,
        precision=None,
        dataset_name=None,
        profiler_name=None,
        input_sequence_length=None,
        output_sequence_length=None,
        image_dimension=None,
        perf_analysis=None,
        training=None,
    ):
        """Write the run (its ``run`` step must be complete) and log ``Run and measurement data saved to <path>``."""
        assert profiler.contains_step("run"), "Completed step 'run' for iteration 0 not found in profiler"
        given = {
            "run_type": run_type,
            "ml_model_name": ml_model_name,
            "ml_model_type": ml_model_type,
            "num_layers": num_layers,
            "batch_size": batch_size,
            "config_params": config_params,
            "precision": precision,
            "dataset_name": dataset_name,
            "profiler_name": profiler_name,
            "input_sequence_length": input_sequence_length,
            "output_sequence_length": output_sequence_length,
            "image_dimension": image_dimension,
            "perf_analysis": perf_analysis,
            "training": training,
        }
        values = {**_environment_fields(), **given}
        run = {
            "run_start_ts": _json_ts(profiler.start_times[(0, "run")]),
            "run_end_ts": _json_ts(profiler.end_times[(0, "run")]),
            **{name: values.get(name) for name in RUN_FIELDS},
            "measurements": self.measurements,
        }
        BENCHMARK_DATA_DIR.mkdir(parents=True, exist_ok=True)
        path = _unused_path(BENCHMARK_DATA_DIR, f"partial_run_{run['run_start_ts']}")
        path.write_text(json.dumps(run, separators=(",", ":")))
        logger.info(f"Run and measurement data saved to {path}")
        return path


def _unused_path(folder: Path, stem: str) -> Path:
    path, counter = folder / f"{stem}.json", 2
    while path.exists():
        path, counter = folder / f"{stem}_{counter}.json", counter + 1
    return path


def _environment_fields() -> dict:
    """What the run record says about where it ran: the git checkout, the user and the host."""
    top = _git("rev-parse", "--show-toplevel")
    return {
        "git_repo_name": Path(top).name if top else None,
        "git_commit_hash": _git("rev-parse", "HEAD"),
        "git_branch_name": _git("rev-parse", "--abbrev-ref", "HEAD"),
        "user_name": os.getenv("USER"),
        "device_hostname": socket.gethostname(),
    }


def _git(*args: str) -> str | None:
    try:
        done = subprocess.run(["git", *args], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None
