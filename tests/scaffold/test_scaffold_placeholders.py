"""After a scaffold, on the fake checkout (tests/pipeline/fakes.py): `doit run` reports "expected values
are placeholders" with the measured values, `doit scaffold --accept-measured` writes them into the rows,
and the next run is green. A case that fails without measuring a PCC stays a real failure."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from fakes import doit, make_doit_env, make_fake_repo

from pipeline.scaffold import expected

UNIT_TEST = "examples/demo/models/demo/tests/fused/test_demo_router.py"
PLACEHOLDER_ROWS = (
    f"{expected.PLACEHOLDER_NOTE}: paste the measured values.\n"
    'DEMO_ROUTER_CASES = [("decode", 1, 1.0, 0.0), ("prefill", 128, 1.0, 0.0), ("prefill", 1024, 1.0, 0.0)]\n'
)


def _as_scaffolded(repo: Path) -> None:
    """The fake test with the scaffold's rows (it asserts expected_pcc after logging the PCC already)."""
    path = repo / UNIT_TEST
    text = path.read_text()
    for old, new in [
        (
            'CASES = [("decode", 1, 0.99, 0.0), ("prefill", 128, 0.99, 0.0), ("prefill", 1024, 0.99, 0.0)]\n',
            PLACEHOLDER_ROWS,
        ),
        (
            '"mode, seq_len, expected_pcc, expected_perf_us", CASES)',
            '"mode, seq_len, expected_pcc, expected_perf_us", DEMO_ROUTER_CASES)',
        ),
    ]:
        assert old in text, old
        text = text.replace(old, new)
    path.write_text(text)


def _scaffold(repo: Path, *args) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "doit", "scaffold", *args],
        cwd=repo,
        env=make_doit_env(repo.parent),
        capture_output=True,
        text=True,
        timeout=120,
    )


def _result(repo: Path, step: str) -> dict:
    return json.loads((repo / "artifacts" / "demo_router" / step / "result.json").read_text())


@pytest.fixture(scope="module")
def placeholder_run(tmp_path_factory):
    base = tmp_path_factory.mktemp("placeholders")
    repo = make_fake_repo(base / "repo")
    _as_scaffolded(repo)
    return repo, doit(repo, make_doit_env(base), "run")


def test_placeholders_are_reported_with_the_values_to_paste_then_accepted(placeholder_run, tmp_path):
    repo = Path(shutil.copytree(placeholder_run[0], tmp_path / "repo", symlinks=True))
    result = placeholder_run[1]
    assert result.returncode != 0
    unit = _result(repo, "unit_test")
    assert unit["verdict"] == "failed"
    assert unit["message"] == (
        "expected values are placeholders (decode/seq_len=1, prefill/seq_len=128, prefill/seq_len=1024): "
        "measured decode/seq_len=1 expected_pcc=0.999; prefill/seq_len=128 expected_pcc=0.999; "
        "prefill/seq_len=1024 expected_pcc=0.999; paste them into the rows, or run "
        "`doit scaffold fused_op=demo_router --accept-measured`"
    )
    assert _result(repo, "patch_verify/decode")["verdict"] == "passed"  # upstream of the placeholders: green

    accepted = _scaffold(repo, "fused_op=demo_router", "--accept-measured")
    assert accepted.returncode == 0, accepted.stderr
    assert "('decode', 1) expected_pcc=0.999 expected_perf_us=0.0" in accepted.stdout
    assert expected.placeholder_rows(repo / UNIT_TEST) == []
    assert expected.ACCEPTED_NOTE in (repo / UNIT_TEST).read_text()

    again = doit(repo, make_doit_env(tmp_path), "run")
    assert again.returncode == 0, again.stdout[-3000:]
    summary = json.loads((repo / "artifacts" / "demo_router" / "summary.json").read_text())
    assert {s["verdict"] for s in summary["steps"]} <= {"passed", "skipped"}, summary["steps"]
    assert _result(repo, "unit_test")["verdict"] == "passed"

    # The placeholder rows failed before any perf ran: the green run measured it, the next accept writes it
    perf = _scaffold(repo, "fused_op=demo_router", "--accept-measured")
    assert perf.returncode == 0 and "('prefill', 128) expected_pcc=0.999 expected_perf_us=12.5" in perf.stdout
    rows = expected.rows_of(repo / UNIT_TEST)
    assert all(perf_us > 0 for _, perf_us in rows.values()), rows
    assert "TODO: replace expected_perf_us with the theoretical target" in (repo / UNIT_TEST).read_text()

    nothing_left = _scaffold(repo, "fused_op=demo_router", "--accept-measured")
    assert nothing_left.returncode == 2 and "no row holds the placeholders" in nothing_left.stderr


def test_a_case_failing_before_any_pcc_keeps_its_real_failure(placeholder_run, tmp_path):
    repo = Path(shutil.copytree(placeholder_run[0], tmp_path / "repo", symlinks=True))
    path = repo / UNIT_TEST
    path.write_text(
        path.read_text().replace("out = demo_router_ttnn(3, tensor)\n", "out = demo_router_ttnn(None, tensor)\n")
    )
    doit(repo, make_doit_env(tmp_path), "run", "unit_test")
    unit = _result(repo, "unit_test")
    assert unit["verdict"] == "failed"
    assert (
        unit["message"].endswith("(expected values are placeholders too)") and "TypeError" in unit["message"]
    )


def test_accept_without_a_unit_test_run_says_to_run_first(tmp_path):
    repo = make_fake_repo(tmp_path / "repo")
    _as_scaffolded(repo)
    done = _scaffold(repo, "fused_op=demo_router", "--accept-measured")
    assert done.returncode == 2 and done.stderr.count("\n") == 1
    assert "no unit_test result; run `doit run fused_op=demo_router` first" in done.stderr
    assert expected.placeholder_rows(repo / UNIT_TEST) == [("decode", 1), ("prefill", 128), ("prefill", 1024)]


TRACE_FAILURE = (
    '        raise RuntimeError("TT_FATAL @ mesh_trace.cpp: false\\nCreating trace buffers of size '
    '2818048B on MeshDevice 0, but only 1000000B is allocated for trace region.")\n'
)


def test_a_trace_region_too_small_is_reported_with_its_size_then_accepted(placeholder_run, tmp_path):
    repo = Path(shutil.copytree(placeholder_run[0], tmp_path / "repo", symlinks=True))
    assert _scaffold(repo, "fused_op=demo_router", "--accept-measured").returncode == 0
    path = repo / UNIT_TEST
    text = path.read_text()
    old = "def test_demo_router(mode, seq_len, expected_pcc, expected_perf_us, program_cache, trace):\n"
    check = f"    if trace and ({expected.TRACE_REGION_CONSTANT} or 0) < 2818048:\n{TRACE_FAILURE}"
    first_row = text.index("@pytest.mark.parametrize(")
    text = f"{text[:first_row]}{expected.TRACE_REGION_CONSTANT} = None\n\n\n{text[first_row:]}"
    assert old in text
    path.write_text(text.replace(old, old + check))

    short = doit(repo, make_doit_env(tmp_path), "run", "unit_test")
    unit = _result(repo, "unit_test")
    assert short.returncode != 0 and unit["verdict"] == "failed"
    assert unit["message"] == (
        "the trace region is too small: set trace_region_size to at least 2818048 in the test's "
        "device_params (guide step 7.5); `doit scaffold fused_op=demo_router --accept-measured` writes it"
    )
    assert unit["figures"]["required_trace_region_size"] == 2818048

    accepted = _scaffold(repo, "fused_op=demo_router", "--accept-measured")
    assert accepted.returncode == 0 and f"{expected.TRACE_REGION_CONSTANT} = 2818048" in accepted.stdout
    assert f"\n{expected.TRACE_REGION_CONSTANT} = 2818048  # bytes" in path.read_text()
    assert expected.placeholder_rows(path) == []  # the rows accepted before are left alone
    fitted = doit(repo, make_doit_env(tmp_path), "run", "unit_test")
    assert fitted.returncode == 0 and _result(repo, "unit_test")["verdict"] == "passed", fitted.stdout[-2000:]
