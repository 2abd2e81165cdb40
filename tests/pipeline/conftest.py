"""A tiny fake workspace laid out like a tt-metal checkout, and a spec for it.

The module test and the unit test are plain pytest files that print tt-metal's log lines (PCC, perf)
without any device, so the pipeline's steps can run for real in milliseconds.
"""

import textwrap
from pathlib import Path

import pytest

MODEL = '''\
"""Toy module: the fused sequence is the two statements from `a = ` to `b = `."""


def forward(x):
    a = x + 1
    b = a * 2
    return b
'''

MODULE_TEST = """\
import pytest

from models.demo.tt.model import forward


@pytest.mark.parametrize("mode", ["decode_32", "prefill_128"])
def test_block(mode):
    out = forward(3)
    assert out == 8
    print(f"Block test passed. Output: {0.99 if out == 8 else 0.5}")
"""

UNIT_TEST = """\
import os

import pytest

DEVICE_PERF_ENV_VAR = "DEMO_ROUTER_DEVICE_PERF"


def demo_router_reference(x):
    return (x + 1) * 2


def demo_router_ttnn(x):
    a = x + 1
    return a * 2


@pytest.mark.parametrize("mode, seq_len", [("decode", 1), ("prefill", 128)])
@pytest.mark.parametrize("program_cache", [True, False], ids=["program_cache", "no_program_cache"])
@pytest.mark.parametrize("trace", [False, True], ids=["eager", "trace"])
def test_demo_router(mode, seq_len, program_cache, trace):
    assert demo_router_ttnn(3) == demo_router_reference(3)
    print("PCC demo_router: 0.999")


def test_demo_router_single_device():
    assert demo_router_ttnn(1) == 4


def test_demo_router_device_perf():
    pass


def test_demo_router_single_device_device_perf():
    pass
"""

SPEC = """\
name = "demo_router"
description = "x + 1, * 2"
workspace = "{workspace}"
unit_test = "models/demo/tests/fused/test_demo_router.py"
modes = ["decode", "prefill"]
prefill_seqlens = [128, 1024]

[module_test]
argv = ["pytest", "models/demo/tests/test_modules.py::test_block"]
select = {{ decode = "decode_32", prefill = "prefill_128" }}

[sequence.decode]
file = "models/demo/tt/model.py"
start = "a = x + 1"
end = "b = a * 2"
call = "b = demo_router_ttnn(x)"

[sequence.prefill]
file = "models/demo/tt/model.py"
start = "a = x + 1"
end = "b = a * 2"
call = "b = demo_router_ttnn(x)"
"""


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


@pytest.fixture
def workspace(tmp_path) -> Path:
    ws = tmp_path / "ws"
    write(ws / "models/__init__.py", "")
    write(ws / "models/demo/__init__.py", "")
    write(ws / "models/demo/tt/__init__.py", "")
    write(ws / "models/demo/tt/model.py", MODEL)
    write(ws / "models/demo/tt/unused.py", "UNUSED = 1\n")
    write(ws / "models/demo/tests/test_modules.py", MODULE_TEST)
    write(ws / "models/demo/tests/fused/test_demo_router.py", UNIT_TEST)
    write(ws / "conftest.py", "")
    return ws


@pytest.fixture
def spec_dir(tmp_path, workspace) -> Path:
    specs = tmp_path / "fused_ops"
    write(specs / "demo_router.toml", SPEC.format(workspace=workspace))
    return specs
