"""The pages of a full run of the BUNDLED workspace (the session's router run) in headless chromium:
they load from file:// with no console error and no outside request, the status table agrees with
summary.json, every chart is drawn and every perf CSV has its tt-perf-report table (issue 11, acc. 1).
The injected config mismatch on the bundled workspace is test_e2e's config-compare test."""

import json

import pytest
from browser import assert_clean

pytestmark = pytest.mark.e2e


@pytest.fixture
def root(bundled_router_run):
    repo, result = bundled_router_run
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    return repo / "artifacts"


def cell(page, column: str) -> str:
    return page.locator(f'#status-table tr[data-op="router"] td[data-column="{column}"]').inner_text()


def test_index_and_op_page_load_offline(root, visit):
    for page in (root / "index.html", root / "router" / "summary.html"):
        assert_clean(visit(page))


def test_status_cells_are_the_evidence_of_summary_json(root, visit):
    page = visit(root / "index.html").page
    summary = json.loads((root / "router" / "summary.json").read_text())
    steps = {s["task"]: s for s in summary["steps"]}
    cases = steps["unit_test:router"]["figures"]["cases"]
    for mode, column, case in (("decode", "D", "-decode-"), ("prefill", "P-128", "-prefill-128-")):
        pcc = min(v for c in cases if case in c["id"] for v in c["pcc"].values())
        assert cell(page, f"PCC {column}") == f"{pcc:.4f}"
        kernel = steps[f"unit_perf:router:{mode}"]["figures"]["total_kernel_duration_us"]
        assert cell(page, f"Device Perf {column} (us)").startswith(f"k={kernel:.3f}/op2op=")
    assert cell(page, "Decode") == "✅ pass" and cell(page, "Prefill 128") == "✅ pass"
    assert cell(page, "Single device test") == "✅ pass"
    assert cell(page, "Path to test file") == summary["unit_test"]


def test_charts_and_tt_perf_report_tables(root, visit):
    page = visit(root / "router" / "summary.html").page
    for chart in ("chart-device-time", "chart-unit-vs-module", "chart-trend"):
        svg = page.locator(f"#{chart} svg")
        assert svg.count() == 1, chart
        assert svg.locator("path, rect, use").count() > 5, chart
    summary = json.loads((root / "router" / "summary.json").read_text())
    perf = [s for s in summary["steps"] if s["links"].get("csv")]
    assert perf
    for entry in perf:  # real profiler CSVs: tt-perf-report must have read every one
        link = page.locator(f'#steps-table tr[data-task="{entry["task"]}"] a.perf-report')
        assert link.count() == 1, entry["task"]
        assert (root / "router" / link.get_attribute("href")).read_text().startswith("ID,")
