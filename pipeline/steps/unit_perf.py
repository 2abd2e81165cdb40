"""unit_perf [guide steps 9, 10.1]: the user's test_<op>_device_perf for one mode, and its window checked.

Runs ``pytest <unit test>::test_<op>_device_perf -k <mode>`` as the user would. That function profiles
its own test case under tracy (the case selection lives in the workspace, not here) into this step's
``profiler/`` dir and prints its per-iteration totals; this step reads the same CSV, checks its window
and computes the guide's figures, and fails when the function's printed totals differ by more than 1 %.
The guide's numbers (10 measured iterations, 10 warm-ups) are checked against DEVICE_PERF_ITERS, the
window and the profiled case's facts (_perf.checked_window); the spec's [deviations] may accept others.
"""

from pipeline.steps import _perf
from pipeline.steps._common import Job, blocked, start


def run(job: Job) -> dict:
    clock = start(job)
    gate = blocked(job, clock, "unit_test")
    if gate:
        return gate
    function = job.spec.names.device_perf
    profiled = _perf.run_device_perf_function(job, function)
    analyse = lambda csv: _perf.checked_window(job, csv)  # noqa: E731
    return _perf.report(job, clock, profiled, analyse, {"function": function})
