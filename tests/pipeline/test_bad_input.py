"""The bad-input corpus: every mistake a user can make in a spec, a doit variable or the workspace.

Each case runs `doit run` on a fresh fake checkout and must give: exit 2, exactly one line naming the
file (or doit variable) and field with what to do, no traceback, and the checkout unchanged (by hash).
Device-perf CSVs a step cannot measure are checked at the end (one-line errors naming the problem).
"""

import io

import pytest
from fakes import doit, make_doit_env, make_fake_repo, tree_digest

from pipeline import opsperf

SPEC = "fused_ops/demo_router.toml"
UNIT_TEST = "examples/demo/models/demo/tests/fused/test_demo_router.py"


def replace(path: str, old: str, new: str):
    def mutate(repo):
        text = (repo / path).read_text()
        assert old in text, old
        (repo / path).write_text(text.replace(old, new, 1))

    return mutate


def spec(old: str, new: str):
    return replace(SPEC, old, new)


# (case id, mutation of the checkout, doit variables, words the one line must hold)
CASES = [
    (
        "malformed TOML",
        spec('modes = ["decode", "prefill"]', "modes = [decode"),
        [],
        ["demo_router.toml", "TOML"],
    ),
    ("missing name", spec('name = "demo_router"\n', ""), [], ["field 'name'", "missing"]),
    ("missing workspace", spec('workspace = "examples/demo"\n', ""), [], ["field 'workspace'"]),
    ("missing unit_test", spec('unit_test = "models', 'unit_tests = "models'), [], ["unit_test"]),
    ("missing modes", spec('modes = ["decode", "prefill"]\n', ""), [], ["field 'modes'"]),
    ("missing module_test", spec("[module_test]", "[module_tests]"), [], ["module_test"]),
    ("missing sequence", spec("[sequence.decode]", "[sequences.decode]"), [], ["sequence"]),
    ("missing description", spec('description = "x + 1, * 2"\n', ""), [], ["field 'description'"]),
    ("modes mistyped", spec('modes = ["decode", "prefill"]', 'modes = "decode"'), [], ["field 'modes'"]),
    (
        "prefill_seqlens mistyped",
        spec("prefill_seqlens = [128, 1024]", 'prefill_seqlens = "128"'),
        [],
        ["prefill_seqlens"],
    ),
    ("unknown mode", spec('modes = ["decode", "prefill"]', 'modes = ["decode", "prefil"]'), [], ["prefil"]),
    ("unknown field", spec('description = "x + 1, * 2"', 'description = "d"\ncolour = 1'), [], ["colour"]),
    ("name differs from file", spec('name = "demo_router"', 'name = "other"'), [], ["field 'name'"]),
    ("name with shell metacharacters", spec('name = "demo_router"', 'name = "demo;rm -rf"'), [], ["name"]),
    ("unknown fused op lists the known", None, ["fused_op=nope"], ["fused_op", "demo_router"]),
    ("fused_op path traversal", None, ["fused_op=../x"], ["fused_op", "../x"]),
    ("fused_op shell metacharacters", None, ["fused_op=demo$(touch x)"], ["fused_op"]),
    ("unknown backend", None, ["backend=cuda"], ["backend", "sim", "ttnn"]),
    (
        "workspace missing",
        spec('workspace = "examples/demo"', 'workspace = "examples/nowhere"'),
        [],
        ["workspace", "nowhere"],
    ),
    ("workspace variable missing", None, ["workspace=/nonexistent/ws"], ["workspace", "/nonexistent/ws"]),
    (
        "start anchor missing",
        spec('start = "a = add(x, 1)"', 'start = "a = sub(x, 1)"'),
        [],
        ["sequence.decode.start", "matches 0 times"],
    ),
    (
        "start anchor matching twice",
        spec('start = "a = add(x, 1)"', 'start = "op("'),
        [],
        ["sequence.decode.start", "matches"],
    ),
    (
        "end anchor missing",
        spec('end = "b = mul(a, 2)"', 'end = "c = mul(a, 2)"'),
        [],
        ["sequence.decode.end", "occurs nowhere"],
    ),
    (
        "end anchor only before start",
        spec('end = "b = mul(a, 2)"', 'end = "from models"'),
        [],
        ["sequence.decode.end", "only before start"],
    ),
    (
        "sequence file missing",
        spec('file = "models/demo/tt/model.py"', 'file = "models/demo/tt/gone.py"'),
        [],
        ["sequence.decode.file", "does not exist"],
    ),
    (
        "call does not parse",
        spec('call = "b = demo_router_ttnn(x)"', 'call = "b = demo_router_ttnn(x"'),
        [],
        ["sequence.decode.call"],
    ),
    (
        "call misses the ttnn function",
        spec('call = "b = demo_router_ttnn(x)"', 'call = "b = f(x)"'),
        [],
        ["sequence.decode.call", "demo_router_ttnn"],
    ),
    ("module test argv not pytest", spec('argv = ["pytest"', 'argv = ["python"'), [], ["module_test.argv"]),
    (
        "module test selection empty",
        spec('decode = "decode_32"', 'decode = ""'),
        [],
        ["module_test.select.decode"],
    ),
    (
        "module test selection matching no test",
        spec('decode = "decode_32"', 'decode = "decode_99"'),
        [],
        ["module_test.select.decode", "'decode_99' selects no test", "available ids", "decode_32"],
    ),
    (
        "module test selection matching two tests",
        spec('decode = "decode_32"', 'decode = "decode_32 or prefill"'),
        [],
        ["module_test.select.decode", "selects 2 tests", "exactly one test per mode"],
    ),
    (
        "module test selection not a -k expression",
        spec('decode = "decode_32"', 'decode = "decode_32 and"'),
        [],
        ["module_test.select.decode", "'decode_32 and'", "-k"],
    ),
    (
        "unit test file missing",
        spec("test_demo_router.py", "test_gone.py"),
        [],
        ["unit_test", "does not exist"],
    ),
    (
        "unit test without the single-device test",
        replace(UNIT_TEST, "def test_demo_router_single_device(", "def renamed("),
        [],
        ["test_demo_router_single_device"],
    ),
    (
        "unit test without the ttnn function",
        replace(UNIT_TEST, "def demo_router_ttnn(", "def renamed_ttnn("),
        [],
        ["demo_router_ttnn"],
    ),
    (
        "env_vars not names",
        spec('description = "x + 1, * 2"', 'description = "d"\nenv_vars = ["1BAD"]'),
        [],
        ["env_vars", "1BAD"],
    ),
    (
        "extra_deps missing",
        spec('description = "x + 1, * 2"', 'description = "d"\nextra_deps = ["gone.json"]'),
        [],
        ["extra_deps", "gone.json"],
    ),
    (
        "pcc_tolerance mistyped",
        spec('description = "x + 1, * 2"', 'description = "d"\npcc_tolerance = "high"'),
        [],
        ["pcc_tolerance"],
    ),
    (
        "timeouts not positive",
        spec('description = "x + 1, * 2"', 'description = "d"\ntimeouts = { wall = 0 }'),
        [],
        ["timeouts.wall"],
    ),
]


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    return make_fake_repo(tmp_path_factory.mktemp("pristine") / "repo")


@pytest.mark.parametrize("name, mutate, variables, words", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(pristine, tmp_path, name, mutate, variables, words):
    import shutil

    repo = shutil.copytree(pristine, tmp_path / "repo")
    if mutate:
        mutate(repo)
    before = tree_digest(tmp_path)
    result = doit(repo, make_doit_env(tmp_path), "run", *variables, timeout=60)
    said = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    assert result.returncode == 2, said
    assert len(said) == 1 and said[0].startswith("error: "), said
    assert "Traceback" not in result.stderr
    assert all(word in said[0] for word in words), (words, said[0])
    assert tree_digest(tmp_path) == before  # nothing written: not even artifacts/ or doit's db


CSV_HEADER = "OP CODE,OP TYPE,DEVICE ID,DEVICE KERNEL DURATION [ns]\n"
BAD_CSVS = [
    ("no signposts", CSV_HEADER + "Matmul,tt_dnn_device,0,100\n", "No signposts found"),
    (
        "stop before start",
        CSV_HEADER + "stop,signpost,,\nMatmul,tt_dnn_device,0,100\nstart,signpost,,\n",
        "Signpost 'stop' must come after 'start'",
    ),
    (
        "missing start",
        CSV_HEADER + "Matmul,tt_dnn_device,0,100\nstop,signpost,,\n",
        "Missing signpost 'start'",
    ),
    ("missing columns", "OP CODE,DEVICE ID\nMatmul,0\n", "Missing device perf columns"),
]


@pytest.mark.parametrize("name, text, words", BAD_CSVS, ids=[c[0] for c in BAD_CSVS])
def test_unmeasurable_device_perf_csv_is_a_one_line_error(name, text, words):
    frame = opsperf.read_ops_csv(io.StringIO(text))
    with pytest.raises(opsperf.DevicePerfError) as error:
        opsperf.merge_device_rows(opsperf.signpost_window(frame))
    assert words in str(error.value) and "\n" not in str(error.value)
