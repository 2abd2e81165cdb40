"""Writes the HTML pages from the templates in pipeline/templates/html/ (jinja2, autoescaped).

Pages are self-contained: styles inline, charts as inline SVG, links relative, no script, nothing
fetched; they open from file:// and read the same with JavaScript off.
"""

from datetime import UTC, datetime
from pathlib import Path

import jinja2
from markupsafe import Markup

from pipeline import artifacts
from pipeline.render import ci, flaky, history, matrix, oppage, results_csv, status, text
from pipeline.render.evidence import OpEvidence, collect, load
from pipeline.render.outputs import INDEX_PAGE, OP_PAGE

TEMPLATES = Path(__file__).resolve().parent.parent / "templates" / "html"


def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,  # every value is text unless wrapped in Markup (the charts' SVG only)
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["svg"] = lambda text: Markup(text) if text else ""
    env.filters["readable"] = text.readable  # PCCs in messages to 4 decimals
    env.filters["flaky_title"] = flaky.title
    return env


def write_op_page(summary_json: Path, workspace: Path | None = None) -> Path:
    """artifacts/<op>/summary.html (and the op's history line and tt-perf-report tables)."""
    op = load(summary_json)
    history.record(op, workspace)
    context = oppage.context(op, oppage.make_reports(op))
    html = environment().get_template("op.html").render(**context, generated=_now_text())
    return artifacts.write_text(op.directory / OP_PAGE, html)


def write_index(root: Path, environ=None) -> list[Path]:
    """artifacts/index.html, junit.xml and results.csv from artifacts/*/summary.json; appends the CI job
    summary."""
    ops, problems = collect(root)
    now = datetime.now(UTC)
    template = environment().get_template("index.html")
    html = template.render(
        status_columns=status.COLUMNS,
        legend=status.LEGEND,
        labels=status.LABELS,
        states=status.STATES,
        status_rows=[(op, status.row(op)) for op in ops],
        matrix_steps=matrix.STEPS,
        matrix_rows=matrix.rows(ops, now),
        problems=problems,
        op_pages={op.op: _op_page_href(op) for op in ops},
        flaky={op.op: flaky.flaky_cases(op) for op in ops},
        flaky_rule=flaky.RULE,
        generated=_now_text(now),
    )
    written = [
        artifacts.write_text(Path(root) / INDEX_PAGE, html),
        ci.write_junit(root, ops),
        results_csv.write(root, ops),
    ]
    summary = ci.append_step_summary(ops, environ)
    return written + ([summary] if summary else [])


def _op_page_href(op: OpEvidence) -> str:
    page = OP_PAGE if (op.directory / OP_PAGE).is_file() else "summary.md"
    return f"{op.op}/{page}"


def _now_text(now: datetime | None = None) -> str:
    return (now or datetime.now(UTC)).strftime("%Y-%m-%d %H:%M UTC")
