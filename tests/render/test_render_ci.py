"""CI outputs of the index step: the GitHub job summary appended, the junit aggregate (acceptance 4)."""

import xml.etree.ElementTree as ET

from conftest import PREVIOUS_SUMMARY, SCRIPT


def test_step_summary_is_appended_with_the_table_and_the_failures(merged):
    text = merged.step_summary.read_text()
    assert text.startswith(PREVIOUS_SUMMARY)  # appended, not overwritten
    assert "| Fused op | Unit test exists | Decode |" in text
    assert "| demo_router |" in text and "| demo_other |" in text
    assert "`config_compare:demo_other:decode`: failed" in text
    assert SCRIPT not in text and "&lt;script&gt;" in text


def test_junit_aggregate_has_one_testcase_per_task(merged):
    root = ET.parse(merged.root / "junit.xml").getroot()
    suites = {s.get("name"): s for s in root.iter("testsuite")}
    assert set(suites) == {"demo_router", "demo_other"}
    other = {c.get("name"): c for c in suites["demo_other"].iter("testcase")}
    assert other["config_compare:demo_other:decode"].find("failure") is not None
    assert SCRIPT in other["single_device:demo_other"].find("failure").get("message")
    assert all(c.find("failure") is None for c in suites["demo_router"].iter("testcase"))
    assert suites["demo_other"].get("failures") != "0"
