"""A step's message is for people: its PCCs are rounded to 4 decimals in result.json and on the terminal,
while the figures keep the exact value (issue 22: "messages print 16-digit PCCs")."""

import json
from types import SimpleNamespace

from pipeline import artifacts
from pipeline.steps._common import Clock, finish


def test_finish_rounds_the_pccs_of_its_message_and_keeps_exact_figures(tmp_path, capsys):
    job = SimpleNamespace(
        task="unit_test:x",
        step="unit_test",
        mode=None,
        ops=(),
        step_dir=tmp_path,
        inputs=(),
        config={},
        environment_key={},
        spec=SimpleNamespace(name="x"),
        ctx=SimpleNamespace(display=str),
    )
    exact = 0.99871234567891
    finish(job, Clock(), artifacts.PASSED, f"min PCC {exact}", figures={"min_pcc": exact})
    result = json.loads((tmp_path / artifacts.RESULT).read_text())
    assert result["message"] == "min PCC 0.9987"
    assert result["figures"]["min_pcc"] == exact
    assert "[unit_test:x] PASSED: min PCC 0.9987" in capsys.readouterr().out
