"""The rendering layer on hand-written summary.json files: figures read under old and new names, a
missing figure is ❓ with the reason, unreadable summaries are reported, findings grouped (fast)."""

import json

import pytest

from pipeline.render import evidence, findings, pages, status


def write_summary(root, op, steps, **extra):
    data = {
        "op": op,
        "description": "d",
        "unit_test": f"tests/test_{op}.py",
        "workspace": "ws",
        "modes": ["decode"],
        "decode_only": True,
        "verdict": "passed",
        "environment": {"backend": "sim"},
        "steps": steps,
        "unexpected": [],
        **extra,
    }
    path = root / op / "summary.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
    return path


def perf_step(figures, verdict="passed", message=""):
    return {
        "task": "unit_perf:x:decode",
        "step": "unit_perf",
        "mode": "decode",
        "verdict": verdict,
        "message": message,
        "figures": figures,
        "links": {},
    }


@pytest.mark.parametrize(
    "figures",
    [
        {"total_kernel_duration_us": 1.5, "total_op_to_op_latency_us": 0.25, "iterations": 10},
        {"avg_kernel_us": 1.5, "avg_op_to_op_us": 0.25, "total_kernel_us": 15.0, "iterations": 10},
    ],
    ids=["guide_names", "older_names"],
)
def test_device_perf_cell_is_per_iteration_under_either_name(tmp_path, figures):
    op = evidence.load(write_summary(tmp_path, "x", [perf_step(figures)]))
    cell = status.row(op)["Device Perf D (us)"]
    assert (cell.text, cell.state) == ("k=1.500/op2op=0.250", "value")


def test_missing_figure_is_unknown_with_the_reason(tmp_path):
    op = evidence.load(write_summary(tmp_path, "x", [perf_step({}, "profiler_failure", "no report")]))
    cell = status.row(op)["Device Perf D (us)"]
    assert cell.text == "❓" and "unit_perf:x:decode profiler_failure: no report" in cell.reason
    assert status.row(op)["Prefill 128"].text == "⛔️"  # decode-only spec: verified not to exist


def test_index_reports_an_unreadable_summary_and_renders_the_rest(tmp_path):
    write_summary(
        tmp_path, "good", [perf_step({"total_kernel_duration_us": 1.0, "total_op_to_op_latency_us": 1.0})]
    )
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "summary.json").write_text("{not json")
    written = pages.write_index(tmp_path, environ={})
    html = (tmp_path / "index.html").read_text()
    assert [p.name for p in written] == [
        "index.html",
        "junit.xml",
        "results.csv",
    ]  # no GITHUB_STEP_SUMMARY: nothing appended
    assert 'data-op="good"' in html and "broken/summary.json: not a fused op&#39;s summary.json" in html


def test_findings_repeated_per_case_are_one_line_listing_the_cases():
    notes = [
        "unit_test:x: test_x[decode-1] PCC a went down",
        "unit_test:x: test_x[prefill-128] PCC a went down",
        "retried once",
    ]
    grouped = findings.group(notes)
    assert [(g.text, g.cases) for g in grouped] == [
        (f"unit_test:x: {findings.EACH} PCC a went down", ["test_x[decode-1]", "test_x[prefill-128]"]),
        ("retried once", []),
    ]


def with_result(tmp_path, op, step, environment, started="2026-11-30T10:00:00+0000"):
    """A step entry whose result.json (linked from summary.json) ran under `environment`."""
    result = tmp_path / op / step["task"].replace(":", "_") / "result.json"
    result.parent.mkdir(parents=True, exist_ok=True)
    run = {"environment": environment, "started": started, "finished": started, "duration_s": 1.0}
    result.write_text(json.dumps({"run": run}))
    return {**step, "links": {"result": result.relative_to(tmp_path / op).as_posix()}}


def test_matrix_states_stale_and_not_run(tmp_path):
    from datetime import datetime

    from pipeline.render import matrix

    steps = [
        with_result(tmp_path, "x", perf_step({"total_kernel_duration_us": 1.0}), {"backend": "ttnn"}),
        {**perf_step({}, "missing", "no result.json"), "task": "unit_perf:x:prefill", "mode": "prefill"},
    ]
    op = evidence.load(write_summary(tmp_path, "x", steps))  # the summary's environment: backend sim
    now = datetime.strptime("2026-11-30T12:30:00+0000", "%Y-%m-%dT%H:%M:%S%z")
    entries = matrix.entries(op, "unit_perf", now)
    assert [(e.mode, e.state, e.age) for e in entries] == [
        ("decode", "stale", "2 h"),
        ("prefill", "not run", ""),
    ]


def test_history_records_each_run_once_and_keeps_the_last_lines(tmp_path, monkeypatch):
    from pipeline.render import history

    monkeypatch.setattr(history, "KEEP", 3)
    figures = {"total_kernel_duration_us": 1.0, "total_op_to_op_latency_us": 0.5, "iterations": 10}
    for minute in range(5):
        started = f"2026-11-30T10:0{minute}:00+0000"
        step = with_result(tmp_path, "x", perf_step(figures), {"backend": "sim"}, started)
        op = evidence.load(write_summary(tmp_path, "x", [step]))
        history.record(op, None)
        history.record(op, None)  # the summary reran without the step: nothing new
    lines = history.read(history.path_for(tmp_path / "x", "unit_perf:x:decode"))
    assert [line["started"][11:16] for line in lines] == ["10:02", "10:03", "10:04"]
    assert lines[-1]["kernel_us"] == 1.0 and lines[-1]["environment"] == {"backend": "sim"}
