"""The runner's fault matrix (tests/pipeline/test_runner.py: hang, crash, kill -9, signals, leftovers,
resets, the lock) unchanged, on the warm-child path: every command forked from the warm process."""

import pytest
from test_runner import *  # noqa: F403 - the same tests, collected again here

from pipeline import warm


@pytest.fixture(autouse=True)
def warm_on(monkeypatch):
    monkeypatch.setenv(warm.MODE_ENV, "on")  # the supervisor processes some tests start inherit it
