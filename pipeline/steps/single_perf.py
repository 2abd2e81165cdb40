"""single_perf [guide step 12]: test_<op>_single_device under tracy, selected like unit_perf."""

from pipeline.steps import unit_perf
from pipeline.steps._common import Job

DOC = (
    "[guide 12] single-device device perf under tracy (recorded as skipped when the single-device test skips)"
)


def run(job: Job) -> dict:
    return unit_perf.run(job, job.spec.names.single_device)
