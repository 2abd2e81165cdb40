"""module_perf [guide step 10.2]: the module test (one iteration) under tracy, for config_compare."""

from pipeline.steps import _perf, _window
from pipeline.steps._common import Job, blocked, start


def run(job: Job) -> dict:
    clock = start(job)
    gate = blocked(job, clock, "baseline")
    if gate:
        return gate
    select = job.spec.module_test.select[job.mode]
    profiled = _perf.profile(job, [*job.spec.module_test.argv, "-k", select])
    return _perf.report(job, clock, profiled, _window.module_figures, {"selection": select})
