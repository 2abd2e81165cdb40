"""Naming a region: anchors (end searched after start, several lines), line ranges, functions; and the
ops a region runs, CCLs included."""

import textwrap

import pytest

from pipeline.scaffold import ops
from pipeline.scaffold import region as regions
from pipeline.scaffold.extract import extract, extract_file
from pipeline.scaffold.region import ExtractError

TWO_PATHS = textwrap.dedent(
    """\
    import ttnn as tt

    from .helpers import gather


    def decode(x, w):
        y = tt.matmul(x, w)
        y = gather(y)
        out = tt.relu(y)
        return out


    def prefill(x, w):
        y = tt.matmul(x, w)
        out = tt.relu(y)
        return out


    def all_gathered(x):
        return tt.experimental.all_gather_async(x, dim=3)


    def with_ccl(x):
        z = tt.add(
            x,
            x,
        )
        z = all_gathered(z)
        return z
    """
)


def test_the_end_anchor_is_the_first_match_after_the_start():
    decode = regions.by_anchors(TWO_PATHS, "y = gather(y)", "out = tt.relu(y)", "m.py")
    assert [s.lineno for s in decode.statements] == [8, 9]
    assert decode.function.name == "decode"
    both_lines = (
        "y = tt.matmul(x, w)\n    out = tt.relu(y)"  # once in the file: start and end may name the same text
    )
    prefill = regions.by_anchors(TWO_PATHS, both_lines, both_lines, "m.py")
    assert [s.lineno for s in prefill.statements] == [14, 15]
    assert prefill.function.name == "prefill"
    # Ending on the function's closing return is allowed: the call returns what the function returns.
    closing = extract(
        regions.by_anchors(TWO_PATHS, "    y = tt.matmul(x, w)\n    out", "return out", "m.py"), "f"
    )
    assert closing.call == "return f(x, w)" and closing.source.rstrip().endswith("return out")
    early = "def f(x):\n    if x:\n        return 1\n    y = x\n    return y\n"
    with pytest.raises(ExtractError, match="returns from f"):
        extract(regions.by_anchors(early, "if x:", "return y", "m.py"), "g")


def test_anchors_may_span_lines_and_a_statement_is_taken_whole():
    region = regions.by_anchors(TWO_PATHS, "z = tt.add(\n        x,", "x,\n    )", "m.py")
    assert [(s.lineno, s.end_lineno) for s in region.statements] == [(24, 27)]


@pytest.mark.parametrize(
    "start, end, message",
    [
        ("y = tt.matmul(x, w)", "out", "start anchor 'y = tt.matmul(x, w)' matches 2 times"),
        ("z = all_gathered(z)", "y = gather", "end anchor 'y = gather' occurs only before start"),
        ("y = gather(y)", "nowhere(", "end anchor 'nowhere(' occurs nowhere"),
        ("", "out", "start anchor is empty"),
    ],
)
def test_bad_anchors_are_one_line_errors(start, end, message):
    with pytest.raises(ExtractError) as error:
        regions.by_anchors(TWO_PATHS, start, end, "m.py")
    assert message in str(error.value) and str(error.value).startswith("m.py: ")


def test_line_ranges_and_functions_name_regions_too(tmp_path):
    path = tmp_path / "m.py"
    path.write_text(TWO_PATHS)
    by_lines = extract_file(path, "f", lines=(14, 15), module="pkg.tt.m")
    assert by_lines.parameter_names == ["x", "w"] and by_lines.returns == ("out",)
    whole = extract_file(path, "f", function="decode", module="pkg.tt.m")
    assert whole.call == "return f(x, w)"
    assert whole.source.rstrip().endswith("return out")
    assert whole.imports == ("import ttnn as tt", "from pkg.tt.helpers import gather")
    with pytest.raises(ExtractError, match="name the region one way"):
        extract_file(path, "f", lines=(14, 15), function="decode")
    with pytest.raises(ExtractError, match="no function missing"):
        extract_file(path, "f", function="missing")


def test_ops_follow_module_functions_and_the_import_alias():
    region = regions.by_function(TWO_PATHS, "with_ccl", "m.py")
    extraction = extract(region, "f")
    assert extraction.ops == ("ttnn.add", "ttnn.experimental.all_gather_async")
    assert extraction.ccl_ops == ("ttnn.experimental.all_gather_async",)


@pytest.mark.parametrize(
    "name, is_ccl",
    [
        ("ttnn.all_gather", True),
        ("ttnn.experimental.reduce_scatter_minimal_async", True),
        ("ttnn.all_to_all_dispatch", True),
        ("AllReduceAsync", True),
        ("ttnn.matmul", False),
        ("ttnn.gather", False),
        ("ttnn.reduce", False),
    ],
)
def test_ccl_names(name, is_ccl):
    assert ops.is_ccl(name) is is_ccl


def test_a_region_starting_inside_a_loop_and_ending_after_it_is_refused():
    source = "def f(xs):\n    t = 0\n    for x in xs:\n        t = t + x\n        t = t * 2\n    return t\n"
    with pytest.raises(ExtractError, match="part of the `for` on line 3"):
        regions.by_anchors(source, "t = t * 2", "return t", "m.py")
    inside = regions.by_anchors(source, "t = t + x", "t = t * 2", "m.py")
    assert extract(inside, "f").parameter_names == ["t", "x"]
    assert extract(inside, "f").returns == ("t",)  # the next iteration and the return read it


def test_a_value_only_the_next_iteration_reads_is_returned(run_both):
    source = "def f(xs):\n    prev, out = 0, []\n    for x in xs:\n        out.append(prev)\n"
    source += "        prev = x * 2\n    return out\n"
    extraction = extract(regions.by_anchors(source, "prev = x * 2", "prev = x * 2", "m.py"), "op")
    assert extraction.returns == ("prev",)
    assert run_both(source, extraction, "f", [1, 2, 3]) == [[0, 2, 4]] * 2
