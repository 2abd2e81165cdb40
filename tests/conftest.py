"""Session-wide: one `doit run fused_op=router` on a copy of the bundled repo, shared by the e2e tests, the
browser tests and the mutation corpus (each works on its own copy of the result); headless chromium;
the test suite's tiers.

Tiers (README "Tests"): `pytest` runs everything (CI); `pytest -m "not slow"` is the developers' fast
tier, marked here from tests/tiers.py, the one list of what is slow. The fast tier still covers every
module of pipeline/ and ttnn_sim/ (tests/test_tiers.py).
"""

import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "pipeline"))  # fakes.py, test_e2e's helpers

import tiers  # noqa: E402
from browser import launch, visitor  # noqa: E402


def pytest_collection_modifyitems(config, items):
    for item in items:
        if tiers.is_slow(Path(item.fspath), item.originalname, item.get_closest_marker("e2e") is not None):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def bundled_router_run(tmp_path_factory):
    from test_e2e import copy_parts, run

    repo = copy_parts(tmp_path_factory.mktemp("bundled") / "repo")
    started = time.monotonic()
    result = run(repo, "run", "fused_op=router")
    print(f"first router run: {time.monotonic() - started:.0f} s")
    return repo, result


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = launch(playwright)
        yield chromium
        chromium.close()


@pytest.fixture
def visit(browser):
    """visit(path) -> Visit (tests/browser.py): a page loaded from file://, with what it logged and asked."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    yield visitor(context)
    context.close()
