"""summary [guide steps 14-15]: one fused op's evidence in summary.json (the data model, ready for HTML
later) and summary.md: every step with its verdict, figures and links to its logs and files, then the
"unexpected and workarounds" list (retries, resets, decode-only, trace-region fixes, dropped rows,
merge warnings, flagged expected values)."""

import os
from pathlib import Path

from pipeline import artifacts, render
from pipeline.render import text
from pipeline.steps._common import Job

# Figures worth a column in the tables (the rest stay in summary.json), with the guide's names.
HEADLINE = {
    "total_kernel_duration_us": "total kernel duration per iteration (us)",
    "printed_total_kernel_duration_us": "as the device-perf test printed it (us)",
    "total_op_to_op_latency_us": "total op-to-op latency per iteration (us)",
    "printed_total_op_to_op_latency_us": "as printed (us)",
    "iterations": "iterations measured",
    "result": "result",
}


def run(job: Job) -> dict:
    """`job.upstream` maps each of the op's task names to its step dir (shared module tasks included)."""
    layout = job.ctx.layout
    op_dir = layout.op_dir(job.spec.name)
    steps = [_step_entry(task, Path(step_dir), op_dir) for task, step_dir in job.upstream.items()]
    data = build(job, steps)
    artifacts.write_json(layout.summary_json(job.spec.name), data)
    artifacts.write_text(layout.summary_md(job.spec.name), render_md(data))
    render.write_op_page(layout.summary_json(job.spec.name), job.spec.workspace)  # summary.html
    print(f"[{job.task}] {data['verdict'].upper()}: {layout.summary_md(job.spec.name)}", flush=True)
    return data


def build(job: Job, steps: list[dict]) -> dict:
    spec = job.spec
    unexpected = []
    if spec.decode_only:
        unexpected.append("decode only: the spec has no prefill sequence (guide step 2.2)")
    for step in steps:
        unexpected.extend(step.pop("notes"))
        if step["verdict"] not in artifacts.GOOD_VERDICTS:
            unexpected.append(f"{step['task']}: {step['verdict']}: {step['message']}")
    verdict = "passed" if all(s["verdict"] in artifacts.GOOD_VERDICTS for s in steps) else "failed"
    return {
        "op": spec.name,
        "description": spec.description,
        "spec": job.ctx.display(spec.source),
        "workspace": job.ctx.display(spec.workspace),
        "unit_test": spec.unit_test,
        "modes": list(spec.modes),
        "decode_only": spec.decode_only,
        "backend": job.environment_key.get("backend"),
        "environment": job.environment_key,
        "verdict": verdict,
        "steps": steps,
        "unexpected": list(dict.fromkeys(unexpected)),
    }


def _step_entry(task: str, step_dir: Path, op_dir: Path) -> dict:
    result = artifacts.read_result(step_dir)
    if result is None:
        return {
            "task": task,
            "step": task.split(":")[0],
            "mode": None,
            "verdict": "missing",
            "message": "no result.json",
            "figures": {},
            "links": {},
            "notes": [],
        }
    links = {name: _link(step_dir / rel, op_dir) for name, rel in result.get("files", {}).items()}
    links["result"] = _link(step_dir / artifacts.RESULT, op_dir)
    return {
        "task": task,
        "step": result["step"],
        "mode": result["mode"],
        "verdict": result["verdict"],
        "message": result["message"],
        "figures": result["figures"],
        "links": links,
        "notes": result.get("notes", []),
    }


def _link(path: Path, base: Path) -> str:
    return Path(os.path.relpath(path, base)).as_posix()


def render_md(data: dict) -> str:
    lines = [f"# {data['op']}: {data['description']}", ""]
    lines.append(
        f"Verdict: **{data['verdict']}** · backend `{data['backend']}` · spec `{data['spec']}` · "
        f"unit test `{data['unit_test']}`"
    )
    lines.append(f"Modes: {', '.join(data['modes'])}" + (" (decode only)" if data["decode_only"] else ""))
    lines += ["", "| step | mode | verdict | figures | message | logs |", "|---|---|---|---|---|---|"]
    for step in data["steps"]:
        figures = ", ".join(
            f"{label} {_fmt(step['figures'][k])}" for k, label in HEADLINE.items() if k in step["figures"]
        )
        links = " ".join(f"[{name}]({href})" for name, href in step["links"].items())
        message = text.readable(step["message"]).replace("|", "\\|")
        lines.append(
            f"| {step['step']} | {step['mode'] or ''} | {step['verdict']} | {figures} | {message} | {links} |"
        )
    lines += ["", "## Unexpected and workarounds", ""]
    lines += [f"- {text.readable(item)}" for item in data["unexpected"]] or ["- nothing"]
    lines += ["", "PCC is shown to 4 decimals; summary.json and each result.json keep the exact values."]
    return "\n".join(lines) + "\n"


def _fmt(value) -> str:
    return f"{value:.3f}" if isinstance(value, float) else str(value)
