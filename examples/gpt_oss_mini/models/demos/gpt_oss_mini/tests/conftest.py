"""The module tests' command-line option, as tt-metal's models/demos/gpt_oss/tests/conftest.py declares it."""

import pytest

MODULES = ("attention", "rms_norm", "router", "experts", "mlp", "decoder")


def pytest_addoption(parser):
    parser.addoption(
        "--test-modules",
        action="store",
        default="all",
        help=f"Modules to test, comma separated: all, {', '.join(MODULES)}",
    )


@pytest.fixture
def test_modules(request):
    return request.config.getoption("--test-modules")
