"""doit entry point: `doit run fused_op=NAME` builds that fused op's evidence; `doit run` builds all.

doit variables: fused_op=NAME[,NAME] (default: every fused_ops/*.toml), backend=sim|ttnn (default sim),
workspace=PATH (overrides the specs'), artifacts=DIR (default artifacts/); any other name, or a value
these cannot take, is one line and exit 2 (pipeline/doit_vars.py). The graph lives in
pipeline/tasks.py; each step in pipeline/steps/<step>.py.
"""

import sys
from pathlib import Path

from doit import get_var

from pipeline import doit_support, doit_vars, termination
from pipeline.progress import ProgressReporter
from pipeline.tasks import Pipeline

try:  # a misspelled variable (fused_ops=) or value (backend=simm) stops here: one line, exit 2
    doit_vars.check(sys.argv[1:])
except doit_vars.VariableError as error:
    print(f"error: {error}", file=sys.stderr, flush=True)
    raise SystemExit(2) from None

PIPELINE = Pipeline.from_doit_vars(
    get_var, Path(__file__).resolve().parent
)  # a bad spec exits 2 here, before anything is written
DOIT_CONFIG = {**PIPELINE.doit_config(), "reporter": ProgressReporter}  # live progress, final table

if doit_support.doit_command(sys.argv[1:]) in doit_support.WRITING_COMMANDS:
    termination.install_termination_handler()  # SIGTERM unwinds like Ctrl-C: child killed, locks released, db saved
    doit_support.hold_state_lock(PIPELINE.ctx.layout)


def task_baseline():
    yield from PIPELINE.tasks("baseline")


def task_patch_verify():
    yield from PIPELINE.tasks("patch_verify")


def task_unit_test():
    yield from PIPELINE.tasks("unit_test")


def task_unit_perf():
    yield from PIPELINE.tasks("unit_perf")


def task_module_perf():
    yield from PIPELINE.tasks("module_perf")


def task_config_compare():
    yield from PIPELINE.tasks("config_compare")


def task_single_device():
    yield from PIPELINE.tasks("single_device")


def task_single_perf():
    yield from PIPELINE.tasks("single_perf")


def task_shape_check():
    yield from PIPELINE.tasks("shape_check")


def task_summary():
    yield from PIPELINE.tasks("summary")


def task_index():
    yield from PIPELINE.tasks("index")
