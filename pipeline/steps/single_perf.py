"""single_perf [guide step 12]: the user's test_<op>_single_device_device_perf, checked like unit_perf.

Its window must hold one device's rows (and its facts one-device meshes), else `failed` naming the devices.
Skipped when the single-device test itself was skipped (a fused op with CCL ops, accepted by single_device).
"""

from pipeline import artifacts
from pipeline.steps import _perf
from pipeline.steps._common import Job, blocked, finish, start


def run(job: Job) -> dict:
    clock = start(job)
    single = job.upstream_result("single_device")
    if single and single["verdict"] == artifacts.SKIPPED:
        return finish(job, clock, artifacts.SKIPPED, single["message"])
    gate = blocked(job, clock, "unit_test", "single_device")
    if gate:
        return gate
    function = job.spec.names.single_device_device_perf
    profiled = _perf.run_device_perf_function(job, function)
    analyse = lambda csv: _perf.checked_window(job, csv, single_device=True)  # noqa: E731
    return _perf.report(job, clock, profiled, analyse, {"function": function})
