"""single_device [guide step 11]: test_<op>_single_device over all cases, or the recorded skip (CCL ops)."""

from pipeline.steps import unit_test
from pipeline.steps._common import Job

DOC = "[guide 11] single-device test: run test_<op>_single_device (or record its CCL skip and the reason)"


def run(job: Job) -> dict:
    return unit_test.run(job, job.spec.names.single_device)
