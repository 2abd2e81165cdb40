"""pytest plugin (``-p pipeline.case_clock``): touch ``$PIPELINE_CASE_CLOCK`` as each test case starts.

The runner's wall timeout is per test case: a full matrix on a large mesh (12-24 cases, each opening
the device) may take far longer than one case, and only a case that runs too long is a hang. The
runner reads the file's mtime; nothing is printed, so the output the parsers read is unchanged.
Stdlib only: it is loaded into the test process, whichever python runs it.
"""

import os


def pytest_runtest_logstart(nodeid, location):
    path = os.environ.get("PIPELINE_CASE_CLOCK")
    if path:
        try:
            os.utime(path)
        except OSError:
            pass  # the runner went away; its guard is stopping us
