"""index: artifacts/index.md, the status matrix (fused op x step) over every <op>/summary.json present.

Built from summary.json files alone, so an artifacts tree merged from several machines indexes as is.
The task fails (after writing the page) when one of the fused ops of this run has a step that did not
pass: that is what makes ``doit run`` exit non-zero while every report still gets written.
"""

from pathlib import Path

from doit.exceptions import TaskFailed

from pipeline import artifacts, render
from pipeline.render import evidence, status
from pipeline.steps import STEPS
from pipeline.steps._cases import pcc_text
from pipeline.steps._common import Job

MATRIX_STEPS = [s for s in STEPS if s not in ("summary", "index")]


def run(job: Job, ops: tuple[str, ...] | None) -> TaskFailed | None:
    """Write the index of every summary in the tree; fail when a summary cannot be read, or when one of
    `ops` (None: any) did not pass."""
    layout = job.ctx.layout
    summaries, unreadable = collect(layout.root)
    artifacts.write_text(layout.index_md, render_md(summaries, _last_updated(layout.root)))
    render.write_index(layout.root)  # index.html, junit.xml, results.csv, $GITHUB_STEP_SUMMARY
    print(f"[{job.task}] wrote {layout.index_md} ({len(summaries)} fused ops)", flush=True)
    if unreadable:  # a truncated summary must not read as "0 fused ops", all well
        return TaskFailed(
            "cannot read " + "; ".join(unreadable) + "; rerun that op's summary "
            "(`doit forget summary:<op> && doit run summary:<op>`) or copy its artifacts again"
        )
    failed = [s["op"] for s in summaries if (ops is None or s["op"] in ops) and s["verdict"] != "passed"]
    if failed:
        details = [
            f"  {s['op']}/{step['task']}: {step['verdict']}: {step['message']}"
            for s in summaries
            if s["op"] in failed
            for step in s["steps"]
            if step["verdict"] not in artifacts.GOOD_VERDICTS
        ]
        return TaskFailed("fused ops with failing steps: " + ", ".join(failed) + "\n" + "\n".join(details))
    return None


def collect(root: Path) -> tuple[list[dict], list[str]]:
    """Every readable <op>/summary.json, and `<path> (<why>)` for each one that is not."""
    summaries, unreadable = [], []
    for path in sorted(Path(root).glob("*/summary.json")):
        try:
            summary = artifacts.read_json(path)
            if not isinstance(summary, dict) or not {"op", "verdict", "steps"} <= set(summary):
                raise ValueError("not a fused op's summary: op, verdict or steps missing")
            summaries.append(summary)
        except (OSError, ValueError) as error:
            unreadable.append(f"{path} ({error})")
    return summaries, unreadable


def _last_updated(root: Path) -> dict[str, str]:
    """op -> when its latest step finished (the status table's "Last updated"), from the evidence."""
    found, _ = evidence.collect(root)
    return {op.op: status.last_updated(op) for op in found}


def render_md(summaries: list[dict], last_updated: dict | None = None) -> str:
    last_updated = last_updated or {}
    lines = ["# Fused-op verification status", ""]
    lines += [
        "| fused op | verdict | " + " | ".join(MATRIX_STEPS) + " | last updated |",
        "|---" * (len(MATRIX_STEPS) + 3) + "|",
    ]
    for summary in summaries:
        cells = [_cell(summary, step) for step in MATRIX_STEPS]
        op_link = f"[{summary['op']}]({summary['op']}/summary.md)"
        updated = last_updated.get(summary["op"]) or "unknown"
        lines.append(f"| {op_link} | {summary['verdict']} | " + " | ".join(cells) + f" | {updated} |")
    lines += [
        "",
        "Cells: one entry per mode (d = decode, p = prefill). Perf figures are the guide's total kernel "
        "duration PER ITERATION in µs (the pipeline's, then in brackets what the op's device-perf test "
        "printed); "
        "test figures are the minimum PCC (4 decimals).",
    ]
    return "\n".join(lines) + "\n"


def _cell(summary: dict, step: str) -> str:
    entries = []
    for entry in summary["steps"]:
        if entry["step"] != step:
            continue
        mode = (entry["mode"] or "")[:1]
        figure = _figure(entry)
        text = f"{mode + ' ' if mode else ''}{entry['verdict']}{' ' + figure if figure else ''}"
        link = entry["links"].get("log") or entry["links"].get("result")
        entries.append(f"[{text}]({summary['op']}/{link})" if link else text)
    return "<br>".join(entries) or "-"


def _figure(entry: dict) -> str:
    figures = entry["figures"]
    if "total_kernel_duration_us" in figures:
        printed = figures.get("printed_total_kernel_duration_us")
        return f"{figures['total_kernel_duration_us']:.3f} µs/iter" + (
            f" (test: {printed:.3f})" if printed is not None else ""
        )
    pccs = [
        p.get("value") for p in figures.get("pcc", []) if isinstance(p, dict) and p.get("value") is not None
    ]
    if pccs:
        return f"PCC {pcc_text(min(pccs))}"
    by_mode = figures.get("by_mode") or {}
    values = [v["min_pcc"] for v in by_mode.values() if v.get("min_pcc") is not None]
    return f"PCC {pcc_text(min(values))}" if values else ""
