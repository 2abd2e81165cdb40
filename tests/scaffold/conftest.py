"""Extraction from small module sources written by the tests, and a stand-in ttnn to run them with."""

import ast
import textwrap
import types

import pytest

from pipeline.scaffold import region as regions
from pipeline.scaffold.extract import extract


@pytest.fixture
def extract_region():
    """(source, start, end) -> Extraction of `<op>_ttnn` from the dedented source."""

    def run(source: str, start: str, end: str, name: str = "op_ttnn", module: str = "pkg.tt.mod"):
        source = textwrap.dedent(source)
        return extract(regions.by_anchors(source, start, end, "mod.py"), name, module)

    return run


def fake_ttnn() -> types.SimpleNamespace:
    """Plain-Python ops on lists and numbers: enough to run the test modules' functions."""
    log = []

    def deallocate(x):
        log.append(("deallocate", x))

    return types.SimpleNamespace(
        relu=lambda x: max(x, 0),
        add=lambda a, b: a + b,
        mul=lambda a, b: a * b,
        topk=lambda xs, k: (sorted(xs, reverse=True)[:k], sorted(range(len(xs)), key=lambda i: -xs[i])[:k]),
        all_gather=lambda x: [x, x],
        deallocate=deallocate,
        L1_MEMORY_CONFIG="L1",
        log=log,
    )


@pytest.fixture
def run_both():
    return _run_both


def _run_both(source: str, extraction, function: str, *args):
    """Run `function` from the module as written and from the module with the region replaced by the
    extraction's call (the function defined beside it); return both results."""
    source = textwrap.dedent(source)
    lines = source.splitlines()
    first, last = extraction.lines
    indent = lines[first - 1][: len(lines[first - 1]) - len(lines[first - 1].lstrip())]
    patched = lines[: first - 1] + [indent + extraction.call] + lines[last:]
    patched_source = "\n".join(patched) + "\n\n" + extraction.source
    ast.parse(patched_source)
    results = []
    for text in (source, patched_source):
        text = text.replace("import ttnn\n", "\n")  # the stand-in is put in the namespace instead
        namespace = {"ttnn": fake_ttnn()}
        exec(compile(text, "mod.py", "exec"), namespace)  # the test's own source, nothing external
        results.append(namespace[function](*args))
    return results
