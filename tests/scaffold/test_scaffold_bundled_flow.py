"""Issue 12's flow on the BUNDLED workspace, from the session's router run (tests/conftest.py): the
hand-written router test moved aside and the spec reduced to the three inputs, `doit run` stops with
how to scaffold and writes nothing; `doit scaffold` writes the test and the spec's `call` lines; and
the graph's patch_verify passes in both modes with the scaffolded `<op>_ttnn` in the module (every PCC
equal to the unpatched module's). Shares the session run: only patch_verify runs here."""

import json
import shutil
import tomllib
from pathlib import Path

import pytest
from test_e2e import ROUTER_TEST, out, run

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
SPEC = "fused_ops/router.toml"


def _reduce_to_three_inputs(repo: Path) -> None:
    """The spec without its `call` lines (what the scaffold writes); the hand-written test moved aside."""
    spec = repo / SPEC
    spec.write_text(
        "".join(line for line in spec.read_text().splitlines(True) if not line.startswith("call ="))
    )
    (repo / ROUTER_TEST).rename(repo.parent / "hand_written_router_test.py")


def _digest(repo: Path) -> dict:
    return {str(p.relative_to(repo)): p.read_bytes() for p in sorted(repo.rglob("*"))
            if p.is_file() and "__pycache__" not in p.parts}  # fmt: skip


def test_router_from_its_three_inputs_through_patch_verify(bundled_router_run, tmp_path):
    repo = Path(shutil.copytree(bundled_router_run[0], tmp_path / "repo", symlinks=True))
    shutil.copy(REPO / "pyproject.toml", repo / "pyproject.toml")  # the workspace's ruff.toml extends it
    _reduce_to_three_inputs(repo)

    before = _digest(repo)
    stopped = run(repo, "run", "fused_op=router")
    said = [line for line in (stopped.stdout + stopped.stderr).splitlines() if line.strip()]
    assert stopped.returncode == 2 and len(said) == 1, out(stopped)
    assert "field 'unit_test'" in said[0] and "write it with `doit scaffold fused_op=router`" in said[0]
    assert _digest(repo) == before

    scaffolded = run(repo, "scaffold", "fused_op=router")
    assert scaffolded.returncode == 0, out(scaffolded)
    assert "decode inputs from" in scaffolded.stdout and "prefill inputs from" in scaffolded.stdout
    assert (repo / ROUTER_TEST).is_file()
    calls = {
        mode: table["call"] for mode, table in tomllib.loads((repo / SPEC).read_text())["sequence"].items()
    }
    assert calls["decode"] == calls["prefill"]
    assert calls["decode"].startswith("indices, weights = gpt_oss_mini_router_ttnn(x, self.weight, self.bias")

    patched = run(repo, "run", "patch_verify", "fused_op=router")
    for mode in ("decode", "prefill"):
        result = json.loads((repo / "artifacts/router/patch_verify" / mode / "result.json").read_text())
        assert result["verdict"] == "passed", (result["message"], out(patched))
        pccs = result["figures"]["pcc"]
        assert pccs and all(row["equal"] for row in pccs), pccs
