"""Spec fields the scaffold brings (issue 12): a sequence named by `lines` or `function`, an optional
`reference`, `call` written by `doit scaffold`. Good specs load to the anchors the patch uses; bad ones
follow the bad-input corpus (tests/pipeline/test_bad_input.py): `doit run` exits 2 with one line naming
the file and field, and writes nothing."""

import shutil

import pytest
from fakes import SPEC, doit, make_doit_env, make_fake_repo, make_workspace, tree_digest, write

from pipeline.spec import Overrides, SpecError, load_spec

ANCHORS = 'start = "a = add(x, 1)"\nend = "b = mul(a, 2)"\n'  # the fake spec's decode region: lines 8-9


def _spec(tmp_path, old: str, new: str, count: int = 1):
    workspace = make_workspace(tmp_path / "ws")
    text = SPEC.format(workspace=workspace)
    assert text.count(old) >= count, old
    path = write(tmp_path / "fused_ops" / "demo_router.toml", text.replace(old, new, count))
    return load_spec(path, Overrides(), tmp_path)


@pytest.mark.parametrize("way", ["lines = [8, 9]\n", "lines = [8, 8]\n"], ids=["lines", "one-line"])
def test_a_line_range_becomes_the_anchors_of_its_statements(tmp_path, way):
    sequence = _spec(tmp_path, ANCHORS, way, 2).sequences["decode"]
    if way.endswith("8]\n"):
        assert (sequence.start, sequence.end) == ("a = add(x, 1)", "a = add(x, 1)")
    else:
        assert (sequence.start, sequence.end) == ("a = add(x, 1)", "b = mul(a, 2)")


def test_a_function_becomes_the_anchors_of_its_body_including_the_closing_return(tmp_path):
    sequence = _spec(tmp_path, ANCHORS, 'function = "forward"\n', 2).sequences["prefill"]
    assert (sequence.start, sequence.end) == ('op("EmbeddingsDeviceOperation")', "return b")


def test_a_repeated_line_is_extended_until_it_is_unique(tmp_path):
    workspace = make_workspace(tmp_path / "ws")
    model = workspace / "models/demo/tt/model.py"
    model.write_text(model.read_text() + "\n\ndef again(x):\n    a = add(x, 1)\n    return a\n")
    text = SPEC.format(workspace=workspace).replace(ANCHORS, "lines = [8, 10]\n")
    sequence = load_spec(
        write(tmp_path / "d.toml", text.replace("demo_router", "d", 1)), Overrides(), tmp_path
    )
    assert sequence.sequences["decode"].start == "a = add(x, 1)\n    b = mul(a, 2)"
    assert sequence.sequences["decode"].end == 'op("LayerNormDeviceOperation")'
    with pytest.raises(
        SpecError, match=r"'sequence.decode.lines': lines 8-9 repeat elsewhere .*; name the seq"
    ):
        load_spec(
            write(tmp_path / "d.toml", text.replace("demo_router", "d", 1).replace("[8, 10]", "[8, 9]")),
            Overrides(),
            tmp_path,
        )


def test_reference_is_package_module_callable(tmp_path):
    spec = _spec(tmp_path, 'modes = ["decode"', 'reference = "models.demo.ref:forward"\nmodes = ["decode"')
    assert spec.raw["reference"] == "models.demo.ref:forward"
    with pytest.raises(SpecError, match="field 'reference': 'not a path' is not package.module:callable"):
        _spec(tmp_path / "bad", 'modes = ["decode"', 'reference = "not a path"\nmodes = ["decode"')


SPEC_FILE = "fused_ops/demo_router.toml"
# (case id, old text of the spec, new text, how many occurrences, words the one line must hold)
CASES = [
    (
        "call missing",
        'call = "b = demo_router_ttnn(x)"\n',
        "",
        1,
        ["demo_router.toml", "sequence.decode.call", "missing", "doit scaffold fused_op=demo_router"],
    ),
    (
        "two ways",
        'start = "a = add(x, 1)"',
        'lines = [8, 9]\nstart = "a = add(x, 1)"',
        1,
        ["field 'sequence.decode'", "['lines', 'start']", "give exactly one of"],
    ),
    (
        "start without end",
        'end = "b = mul(a, 2)"\n',
        "",
        1,
        ["field 'sequence.decode'", "give exactly one of"],
    ),
    ("lines not a pair", ANCHORS, "lines = [67]\n", 1, ["sequence.decode.lines", "[first, last]"]),
    ("lines on no statement", ANCHORS, "lines = [200, 210]\n", 1, ["sequence.decode.lines", "no statement"]),
    ("function unknown", ANCHORS, 'function = "gone"\n', 1, ["sequence.decode.function", "no function gone"]),
    ("unknown sequence field", ANCHORS, ANCHORS + "line = 3\n", 1, ["sequence.decode.line", "unknown field"]),
    (
        "reference malformed",
        'modes = ["decode"',
        'reference = "x"\nmodes = ["decode"',
        1,
        ["field 'reference'"],
    ),
    (
        "unit test missing",
        "test_demo_router.py",
        "test_gone.py",
        1,
        ["field 'unit_test'", "does not exist", "`doit scaffold fused_op=demo_router`"],
    ),
]


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    return make_fake_repo(tmp_path_factory.mktemp("pristine") / "repo")


@pytest.mark.parametrize("name, old, new, count, words", CASES, ids=[c[0] for c in CASES])
def test_bad_sequence_is_one_line_exit_2_and_writes_nothing(pristine, tmp_path, name, old, new, count, words):
    repo = shutil.copytree(pristine, tmp_path / "repo")
    text = (repo / SPEC_FILE).read_text()
    assert old in text
    (repo / SPEC_FILE).write_text(text.replace(old, new, count))
    before = tree_digest(tmp_path)
    result = doit(repo, make_doit_env(tmp_path), "run", timeout=60)
    said = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    assert result.returncode == 2, said
    assert len(said) == 1 and said[0].startswith("error: ") and "Traceback" not in result.stderr, said
    assert all(word in said[0] for word in words), (words, said[0])
    assert tree_digest(tmp_path) == before
