"""benchmarks/sim_coverage.py: the ttnn names a source tree uses and which the simulator has."""

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "benchmarks" / "sim_coverage.py"


def _run(path, *extra):
    return subprocess.run(
        [sys.executable, str(SCRIPT), str(path), *extra], capture_output=True, text=True, timeout=120
    )


def test_bundled_workspace_uses_only_names_the_simulator_has():
    result = _run(REPO / "examples" / "gpt_oss_mini")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "yes" in next(
        line for line in lines if line.endswith(" ttnn.transformer.scaled_dot_product_attention")
    )
    summary = lines[-1]
    used = int(summary.split(" of ")[1].split()[0])
    assert used > 30 and summary.startswith(f"{used} of {used} ")


def test_missing_names_are_listed(tmp_path):
    (tmp_path / "model.py").write_text(
        "import ttnn\n"
        "def f(x):\n"
        "    y = ttnn.experimental.all_gather_async(x, dim=3)\n"
        "    return ttnn.experimental.not_an_op(ttnn.not_a_name(y)), ttnn.TILE_LAYOUT\n"
    )
    result = _run(tmp_path, "--missing-only")
    assert result.returncode == 0, result.stderr
    listed = [line.split()[-1] for line in result.stdout.splitlines()[:-1]]
    assert listed == ["ttnn.experimental.not_an_op", "ttnn.not_a_name"]
    assert result.stdout.splitlines()[-1].startswith("2 of 4 ttnn names")


def test_a_path_that_is_not_a_directory_is_an_input_error(tmp_path):
    result = _run(tmp_path / "nowhere")
    assert result.returncode == 2 and "is not a directory" in result.stderr and not result.stdout
