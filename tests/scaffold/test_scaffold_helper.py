"""The per-model helper a scaffolded test imports (issue 12: "created in the user's model directory if it
is missing"): the bundled workspace's helpers are the scaffold's own rendering for gpt_oss_mini, a test
directory without them gets them once (never overwritten), and a model whose own modules do not say its
mesh gets a helper that fails at import naming the TODO, not one that runs on a guessed mesh."""

import os
import subprocess
import sys
from pathlib import Path

from test_scaffold_command import REPO, _three_inputs_spec, repo, scaffold  # noqa: F401  (repo is a fixture)

from pipeline.scaffold import helper, testgen

WORKSPACE = REPO / "examples" / "gpt_oss_mini"


def _collect(root: Path, unit_test: str) -> subprocess.CompletedProcess:
    """pytest --collect-only of a workspace test on the simulated device (imports the helper chain)."""
    workspace = root / "examples" / "gpt_oss_mini"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "ttnn_sim" / "shim"), str(workspace)]),
    }
    argv = [sys.executable, "-m", "pytest", unit_test, "--collect-only", "-q", "-p", "no:cacheprovider"]
    return subprocess.run(argv, cwd=workspace, env=env, capture_output=True, text=True, timeout=300)


def _scaffold_router_into(root: Path, unit_test: str) -> int:
    (root / "fused_ops" / "router.toml").write_text(_three_inputs_spec("router", unit_test))
    return scaffold("fused_op=router", f"decode_csv={root / 'router_decode.csv'}")


def test_the_bundled_helpers_are_the_scaffolds_rendering_for_their_model():
    unit_test = "models/demos/gpt_oss_mini/tests/fused_op_unit_tests/test_any.py"
    values = helper.values(WORKSPACE, unit_test, testgen.model_dir(unit_test))
    assert values["model_name_module"] == "models.demos.gpt_oss_mini.reference.model"
    assert values["mesh_shape_module"] == "models.demos.gpt_oss_mini.tests.test_factory"
    for name, template in helper.TEMPLATES.items():
        path = str(Path(unit_test).parent / name)
        assert testgen.render_template(template, values, WORKSPACE, path) == (WORKSPACE / path).read_text()


def test_a_test_directory_without_the_helper_gets_it_once(repo, capsys):  # noqa: F811
    unit_test = "models/demos/gpt_oss_mini/tests/scaffolded/test_scaffolded_router.py"
    assert _scaffold_router_into(repo, unit_test) == 0
    folder = repo / "examples" / "gpt_oss_mini" / Path(unit_test).parent
    written = {name: (folder / name).read_text() for name in helper.TEMPLATES}
    assert (
        "from models.demos.gpt_oss_mini.tests.scaffolded.fused_op_device_perf_utils import ("
        in written[helper.TEST_UTILS]
    )
    out = capsys.readouterr().out
    assert (
        f"{helper.TEST_UTILS}, the per-model helper the test imports\n" in out and "set its TODOs" not in out
    )
    test = (folder / Path(unit_test).name).read_text()
    assert "from models.demos.gpt_oss_mini.tests.scaffolded.fused_op_test_utils import (" in test
    collected = _collect(repo, unit_test)
    assert collected.returncode == 0 and "test_scaffolded_router_device_perf" in collected.stdout, (
        collected.stdout
    )

    (folder / helper.TEST_UTILS).write_text(written[helper.TEST_UTILS] + "# edited by hand\n")
    assert scaffold("fused_op=router", "--force") == 0  # the test exists: .new beside it; the helper stays
    assert (folder / helper.TEST_UTILS).read_text().endswith("# edited by hand\n")


def test_a_model_that_does_not_say_its_mesh_gets_a_helper_failing_on_the_todo(repo, capsys):  # noqa: F811
    unit_test = "models/demos/new_model/tests/fused_op_unit_tests/test_scaffolded_router.py"
    assert _scaffold_router_into(repo, unit_test) == 0
    assert "(set its TODOs: MESH_SHAPE, DECODE_BATCH)" in capsys.readouterr().out
    text = (repo / "examples" / "gpt_oss_mini" / Path(unit_test).parent / helper.TEST_UTILS).read_text()
    assert 'MODEL_NAME = "new-model"' in text and "def tokens_for(" in text
    test = (repo / "examples" / "gpt_oss_mini" / unit_test).read_text()
    helper_import = test.split(
        "from models.demos.new_model.tests.fused_op_unit_tests.fused_op_test_utils import"
    )
    assert len(helper_import) == 2 and "    tokens_for,\n)" in helper_import[1]  # the helper's own tokens_for
    collected = _collect(repo, unit_test)
    assert collected.returncode != 0
    assert "NotImplementedError: TODO: set MESH_SHAPE and DECODE_BATCH at the top of" in collected.stdout
