"""Every window of lines of the bundled model code either becomes a function that compiles, with a call
that parses, or is refused with one ExtractError line; never another exception."""

import ast
from pathlib import Path

import pytest

from pipeline.scaffold import region as regions
from pipeline.scaffold.extract import extract
from pipeline.scaffold.region import ExtractError

MODEL = (
    Path(__file__).resolve().parents[2]
    / "examples"
    / "gpt_oss_mini"
    / "models"
    / "demos"
    / "gpt_oss_mini"
    / "tt"
)


@pytest.mark.parametrize(
    "path", [p for p in sorted(MODEL.glob("*.py")) if "def " in p.read_text()], ids=lambda p: p.name
)
def test_every_line_window_extracts_or_is_refused(path):
    source = path.read_text()
    total = source.count("\n") + 1
    extracted = 0
    for first in range(1, total, 4):
        for last in range(first, min(total, first + 10), 3):
            try:
                extraction = extract(regions.by_lines(source, first, last, path.name), "fn", "pkg.mod")
            except ExtractError as error:
                assert "\n" not in str(error) and str(error).startswith(path.name)
                continue
            compile(extraction.source, path.name, "exec", dont_inherit=True)
            ast.parse(extraction.call)
            extracted += 1
    assert extracted > 0
