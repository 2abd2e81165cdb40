"""What CI systems read: a job summary (Markdown) and a junit-style aggregate.

- ``GITHUB_STEP_SUMMARY``: when set, the status table and the failures are appended to that file
  (GitHub shows it on the job's page). Markdown cells have ``|``, ``<``, ``>`` and ``&`` escaped so a
  message can neither break the table nor inject markup.
- ``artifacts/junit.xml``: one testsuite per fused op, one testcase per task of it (``classname`` the
  op, ``name`` the task): failed and profiler_failure are failures, infra_failure and a missing
  result errors, skipped and blocked skipped with their reason.
"""

import os
import xml.etree.ElementTree as ET
from pathlib import Path

from pipeline import artifacts
from pipeline.render import status
from pipeline.render.evidence import GOOD, OpEvidence
from pipeline.render.outputs import JUNIT

STEP_SUMMARY = "GITHUB_STEP_SUMMARY"
FAILURE_KINDS = {
    "failed": "failure",
    "profiler_failure": "failure",
    "infra_failure": "error",
    "missing": "error",
    "superseded": "error",  # a rerun started and did not finish
    "skipped": "skipped",
    "blocked": "skipped",
}


def md_cell(text) -> str:
    escaped = str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return escaped.replace("|", "\\|").replace("\n", " ")


def status_markdown(ops: list[OpEvidence]) -> str:
    header = ["Fused op", *status.COLUMNS]
    lines = ["### Fused-op status", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for op in ops:
        cells = status.row(op)
        lines.append(
            "| " + " | ".join([md_cell(op.op), *(md_cell(cells[c].text) for c in status.COLUMNS)]) + " |"
        )
    lines += ["", "Legend: " + "; ".join(f"{k} {v}" for k, v in status.LEGEND.items())]
    failing = [(op, s) for op in ops for s in op.steps if s.verdict not in GOOD]
    if failing:
        lines += ["", "#### Failures", ""]
        lines += [
            f"- **{md_cell(op.op)}** `{md_cell(s.task)}`: {md_cell(s.verdict)}: {md_cell(s.message)}"
            for op, s in failing
        ]
    return "\n".join(lines) + "\n"


def append_step_summary(ops: list[OpEvidence], environ=None) -> Path | None:
    """Append to $GITHUB_STEP_SUMMARY when it is set (GitHub creates the file; appending is its contract)."""
    target = (environ if environ is not None else os.environ).get(STEP_SUMMARY)
    if not target:
        return None
    with open(target, "a", encoding="utf-8") as f:
        f.write(status_markdown(ops))
    return Path(target)


def junit_xml(ops: list[OpEvidence]) -> bytes:
    suites = ET.Element("testsuites", name="fused-op pipeline")
    for op in ops:
        suite = ET.SubElement(suites, "testsuite", name=op.op, tests=str(len(op.steps)))
        counts = {"failure": 0, "error": 0, "skipped": 0}
        for step in op.steps:
            case = ET.SubElement(
                suite, "testcase", classname=op.op, name=step.task, time=f"{step.duration_s or 0:.3f}"
            )
            kind = FAILURE_KINDS.get(step.verdict)
            if kind:
                counts[kind] += 1
                ET.SubElement(case, kind, message=f"{step.verdict}: {step.message}", type=step.verdict)
        for kind, count in counts.items():
            suite.set(
                "failures" if kind == "failure" else "errors" if kind == "error" else "skipped", str(count)
            )
    return ET.tostring(suites, encoding="utf-8", xml_declaration=True)


def write_junit(root: Path, ops: list[OpEvidence]) -> Path:
    return artifacts.write_bytes(Path(root) / JUNIT, junit_xml(ops))
