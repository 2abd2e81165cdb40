"""Pages a person can read anywhere and trust (issue 22 acceptance 4-6, issue 19's "one story"):
status labels without a colour-emoji font, a step matrix that fits 1280 px, flaky cases from a fake
history, results.csv in the DeepSeek schema, one case count, the single-device PCC, 4-decimal PCCs,
no template placeholder on any page, an unreadable summary failing `doit run index`."""

import html
import json
import re
import shutil
import sys
from pathlib import Path

import pandas
import pytest
from conftest import HTML_DESCRIPTION, SCRIPT
from fakes import doit, make_doit_env
from screenshots import no_emoji_fonts

from pipeline.render import charts, evidence, flaky, history, pages, results_csv, status, text
from pipeline.steps import _cases


def copy_root(merged, tmp_path) -> Path:
    return Path(shutil.copytree(merged.root, tmp_path / "artifacts"))


# ---- without a colour-emoji font ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def plain_browser(browser, tmp_path_factory):
    """Chromium with a fontconfig that rejects colour-emoji fonts: what a machine without one shows
    (launched through the session's Playwright: one per process)."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from browser import CHROMIUM, CHROMIUM_ARGS

    env = no_emoji_fonts(tmp_path_factory.mktemp("fonts"))
    chromium = browser.browser_type.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, env=env)
    yield chromium
    chromium.close()


def colourful_pixels(png: bytes) -> int:
    import io

    import numpy
    from PIL import Image

    pixels = numpy.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=int)
    return int(((pixels.max(axis=2) - pixels.min(axis=2)) > 80).sum())


def test_the_plain_browser_really_has_no_colour_emoji(plain_browser, browser, tmp_path):
    page_file = tmp_path / "emoji.html"
    page_file.write_text('<meta charset="utf-8"><p style="font-size:64px">✅❌❓</p>')
    shots = []
    for chromium in (browser, plain_browser):
        page = chromium.new_page()
        page.goto(page_file.as_uri())
        shots.append(colourful_pixels(page.screenshot()))
        page.close()
    assert shots[0] > 500, "the default browser draws colour emoji (the font is installed)"
    assert shots[1] < 50, "the plain browser still draws colour emoji"


def test_status_cells_read_as_text_without_an_emoji_font(merged, plain_browser, tmp_path):
    page = plain_browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto((merged.root / "index.html").as_uri())
    cells = page.locator("#status-table td[data-state]")
    label_of = {status.STATES[symbol]: status.LABELS[symbol] for symbol in status.STATES}
    checked = 0
    for cell in cells.all():
        state = cell.get_attribute("data-state")
        if state in label_of:
            assert cell.locator(".label").inner_text() == label_of[state], state
            colour = cell.evaluate("c => getComputedStyle(c).backgroundColor")
            assert colour not in ("rgba(0, 0, 0, 0)", "transparent"), state
            checked += 1
    symbols = cells.evaluate_all(
        "cs => cs.filter(c => ['pass','fail','absent','unknown'].includes(c.dataset.state)).length"
    )
    assert checked == symbols > 0  # every symbol cell has its word and a colour
    page.screenshot(path=str(tmp_path / "index-no-emoji.png"), full_page=True)
    op = plain_browser.new_page(viewport={"width": 1280, "height": 900})
    op.goto((merged.root / "demo_router" / "summary.html").as_uri())
    op.screenshot(path=str(tmp_path / "op-page-no-emoji.png"), full_page=True)
    assert (tmp_path / "op-page-no-emoji.png").stat().st_size > 10_000


def test_step_matrix_fits_1280_px_without_scrolling(merged, visit, browser):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto((merged.root / "index.html").as_uri())
    matrix = page.locator("#step-matrix")
    box = matrix.bounding_box()
    assert box["x"] >= 0 and box["x"] + box["width"] <= 1280, box
    assert matrix.evaluate("t => t.scrollWidth <= t.parentElement.clientWidth")
    context.close()


# ---- flaky cases --------------------------------------------------------------------------------------


def fake_history(root: Path, op: str, case: str) -> list[dict]:
    """Three stored runs of the same code: the case passes, fails, passes."""
    data = evidence.load(root / op / "summary.json")
    unit = data.step("unit_test")
    lines = [
        {
            "started": f"2026-12-0{day}T10:00:00+0000",
            "code": "c0de",
            "verdict": "passed",
            "cases": {c.id: ("failed" if c.id == case and day == 2 else "passed") for c in unit.cases},
        }
        for day in (1, 2, 3)
    ]
    path = history.path_for(root / op, unit.task)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return lines


def test_a_flipping_case_is_flaky_on_the_op_page_and_the_index(merged, visit, tmp_path):
    root = copy_root(merged, tmp_path)
    case = json.loads((root / "demo_router/summary.json").read_text())
    case = next(s for s in case["steps"] if s["step"] == "unit_test")["figures"]["cases"][0]["id"]
    fake_history(root, "demo_router", case)
    pages.write_op_page(root / "demo_router" / "summary.json")
    pages.write_index(root, environ={})
    op_page = visit(root / "demo_router" / "summary.html").page
    row = op_page.locator(f'table.flaky-cases tr[data-case="{case}"]')
    assert row.count() == 1
    runs = row.locator("td").last.inner_text()
    assert "2026-12-01T10:00:00+0000 passed" in runs and "2026-12-02T10:00:00+0000 failed" in runs
    assert op_page.locator("#op-verdict + a.flaky").inner_text() == "flaky: 1 case"
    index = visit(root / "index.html").page
    badge = index.locator('#status-table tr[data-op="demo_router"] a.flaky')
    assert badge.inner_text() == "flaky: 1 case" and case in badge.get_attribute("title")
    assert index.locator('#status-table tr[data-op="demo_other"] a.flaky').count() == 0


def test_same_outcomes_or_different_code_are_not_flaky(tmp_path):
    lines = [
        {"started": "a", "code": "one", "cases": {"t[x]": "passed"}},
        {"started": "b", "code": "two", "cases": {"t[x]": "failed"}},  # other code: a regression, not flaky
        {"started": "c", "code": "two", "cases": {"t[x]": "failed"}},
        {"started": "d", "code": "two", "cases": {"t[x]": "skipped"}},
    ]
    assert flaky._flips("unit_test:x", lines) == []
    lines.append({"started": "e", "code": "one", "cases": {"t[x]": "error"}})
    assert [f.runs for f in flaky._flips("unit_test:x", lines)] == [(("a", "passed"), ("e", "error"))]


# ---- results.csv, counts, figures ----------------------------------------------------------------------


def test_results_csv_has_the_deepseek_columns_and_one_row_per_case(merged):
    frame = pandas.read_csv(merged.root / "results.csv")
    assert (
        tuple(frame.columns)
        == results_csv.COLUMNS
        == (
            "test_name",
            "status",
            "pcc",
            "e2e perf",
            "device perf",
            "failure_reason",
            "comment",
            "link",
            "timestamp",
        )
    )
    expected = []
    for op in ("demo_other", "demo_router"):
        data = json.loads((merged.root / op / "summary.json").read_text())
        unit = next(s for s in data["steps"] if s["step"] == "unit_test")
        expected += [f"{data['unit_test']}::{c['id']}" for c in unit["figures"]["cases"]]
    assert sorted(frame["test_name"]) == sorted(expected)  # both merged machines, one row per case
    for link in frame["link"]:
        assert (merged.root / link).is_file(), link  # relative to artifacts/
    not_applicable = frame[frame["test_name"].map(lambda n: _cases.not_applicable(n.split("::")[1]))]
    assert len(not_applicable) and set(not_applicable["status"]) == {"not applicable"}


def test_one_case_count_everywhere_and_not_applicable_cases_count_nowhere(merged, visit):
    data = json.loads((merged.root / "demo_router/summary.json").read_text())
    unit = next(s for s in data["steps"] if s["step"] == "unit_test")
    counted = [c for c in unit["figures"]["cases"] if not _cases.not_applicable(c["id"])]
    shown = f"{sum(c['outcome'] == 'passed' for c in counted)}/{len(counted)}"
    assert unit["message"].startswith(f"{shown} cases passed")
    page = visit(merged.root / "demo_router" / "summary.html").page
    figures = page.locator('#steps-table tr[data-task="unit_test:demo_router"] td').nth(2).inner_text()
    assert f"cases passed: {shown}" in figures
    op = evidence.load(merged.root / "demo_router/summary.json")
    trace = [c for c in counted if "trace" in _cases.params(c["id"])]
    assert len(trace) < sum("trace" in _cases.params(c["id"]) for c in unit["figures"]["cases"])
    assert f"{len(trace)}/{len(trace)} trace case(s) passed" in status.row(op)["Tracing on/off"].reason


def test_single_device_pcc_is_shown_beside_the_multi_device_one(merged, visit):
    page = visit(merged.root / "demo_router" / "summary.html").page
    rows = page.locator("table.side-by-side tr").all_inner_texts()
    pcc = next(r for r in rows if r.startswith("lowest PCC"))
    values = pcc.split("\t")[1:]
    assert len(values) == 2 and all(re.fullmatch(r"-?\d\.\d{4}", v.strip()) for v in values), pcc


def test_hundred_iterations_column_reads_the_recorded_e2e_count(tmp_path):
    def summary_with(iterations):
        case = {"id": "t[eager-program_cache-decode-1]", "outcome": "passed", "pcc": {"x": 0.99}}
        cases = [{**case, "e2e_iterations": n} if n is not None else case for n in iterations]
        step = {
            "task": "unit_test:x",
            "step": "unit_test",
            "mode": None,
            "verdict": "passed",
            "message": "",
            "figures": {"cases": cases},
            "links": {},
        }
        path = tmp_path / "x" / "summary.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"op": "x", "steps": [step], "modes": ["decode"]}))
        return status.row(evidence.load(path))["100 iterations"]

    assert summary_with([100, 100]).state == "pass"
    assert summary_with([100, 10]).state == "fail"
    missing = summary_with([None])
    assert missing.state == "unknown" and "e2e_iterations" in missing.reason  # never faked


def test_messages_show_pccs_to_4_decimals():
    assert text.readable("PCC Block: baseline 0.987612345678, patched -0.18123; 4021.12345 us") == (
        "PCC Block: baseline 0.9876, patched -0.1812; 4021.12345 us"
    )


def test_module_figures_get_axes_of_their_own():
    series = {
        "unit_perf:x:decode": [{"kernel_us": 0.9, "op_to_op_us": 0.5}],
        "module_perf:m:decode": [{"kernel_us": 300.0, "op_to_op_us": 4021.0}],
    }
    assert charts.trend(series).count('id="axes_') == 4  # 2 panels per scale
    assert charts.trend({"unit_perf:x:decode": series["unit_perf:x:decode"]}).count('id="axes_') == 2


# ---- nothing half-made reaches a page ------------------------------------------------------------------

PLACEHOLDER = re.compile(r"<[a-z_]+>")  # `<case>`, `<op>`: a template word that was never filled in


def page_texts(root: Path) -> dict[Path, str]:
    found = {}
    for path in [
        *root.glob("*.html"),
        *root.glob("*/summary.html"),
        *root.glob("*.md"),
        *root.glob("*/*.md"),
    ]:
        raw = path.read_text()
        found[path] = (
            html.unescape(re.sub(r"<[^>]+>", " ", raw))
            if path.suffix == ".html"
            else raw.replace(
                "<br>",
                " ",  # the Markdown tables' line break
            )
        )
    return found


def test_no_placeholder_or_dash_reaches_a_page(merged, tmp_path):
    root = copy_root(merged, tmp_path)
    for summary in root.glob("*/summary.json"):
        pages.write_op_page(summary)
    pages.write_index(root, environ={})
    texts = page_texts(root)
    assert len(texts) >= 6
    for path, shown in texts.items():
        shown = shown.replace(HTML_DESCRIPTION, "").replace(SCRIPT, "")  # injected on purpose, shown as text
        shown = shown.replace(html.escape(HTML_DESCRIPTION), "").replace(html.escape(SCRIPT), "")
        assert not PLACEHOLDER.findall(shown), (path, PLACEHOLDER.findall(shown))
        long_pccs = re.findall(r"(?<![\w.])-?[01]\.\d{5,}(?![\d.])", shown)
        assert not long_pccs, (path, long_pccs)
    op_page = (root / "demo_router" / "summary.html").read_text()
    side = re.search(r'<table class="side-by-side">.*?</table>', op_page, re.S).group(0)
    assert "–" not in side and "not recorded" not in side


def test_an_unreadable_summary_fails_doit_run_index_naming_it(merged, tmp_path):
    root = copy_root(merged, tmp_path)
    summary = root / "demo_router" / "summary.json"
    summary.write_text(summary.read_text()[:200])  # truncated, as a copy that died half-way leaves it
    result = doit(merged.repo, make_doit_env(tmp_path), "run", "index", f"artifacts={root}")
    assert result.returncode != 0
    said = result.stdout + result.stderr
    assert f"cannot read {summary}" in said, said[-2000:]
    assert "Traceback" not in result.stderr
