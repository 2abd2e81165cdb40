"""Charts for the op page, drawn with matplotlib (Agg) as static SVG text to embed in the HTML.

- per-op device time: kernel duration and op-to-op latency stacked, one bar per op code of one
  iteration, one panel per mode (unit_perf's per-op averages);
- unit test vs module: each op of the fused sequence, average kernel duration in the unit test's window
  and in the module test's run;
- trend: per-iteration kernel and op-to-op totals over the stored runs of each perf step (history), the
  module test's figures on axes of their own (SCALES).

Every function returns None when it has nothing to draw, so the page says so instead of showing an
empty frame. Text stays text in the SVG (searchable, small); ids are salted per chart so several
charts can share one page.
"""

import io
import re

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from pipeline.render.evidence import OpEvidence  # noqa: E402

KERNEL_COLOR, OP_TO_OP_COLOR, MODULE_COLOR = "#3b6ea8", "#e0a03a", "#7a9a4a"
_XML_PROLOGUE = re.compile(r"^.*?(?=<svg)", re.S)


def device_time(op: OpEvidence) -> str | None:
    panels = [(s.mode, s) for s in op.steps_of("unit_perf") if s.op_stats and s.fused_ops]
    if not panels:
        return None
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 3.2), squeeze=False)
    for axis, (mode, step) in zip(axes[0], panels, strict=True):
        codes = list(dict.fromkeys(step.fused_ops))
        kernel = [step.op_time(c)[0] for c in codes]
        gap = [step.op_time(c)[1] for c in codes]
        labels = [_short(c) for c in codes]
        axis.bar(labels, kernel, color=KERNEL_COLOR, label="kernel duration")
        axis.bar(labels, gap, bottom=kernel, color=OP_TO_OP_COLOR, label="op-to-op latency")
        axis.set_title(f"{mode}: average per op (µs)", fontsize=9)
        _style(axis, rotate=True)
    _legend(fig, axes[0][0], columns=2)
    return _svg(fig, "device-time")


def unit_vs_module(op: OpEvidence) -> str | None:
    pairs = [(u, op.step("module_perf", u.mode)) for u in op.steps_of("unit_perf") if u.op_stats]
    pairs = [(u, m) for u, m in pairs if m and m.op_stats]
    if not pairs:
        return None
    fig, axes = plt.subplots(1, len(pairs), figsize=(4.2 * len(pairs), 3.2), squeeze=False)
    for axis, (unit, module) in zip(axes[0], pairs, strict=True):
        codes = list(dict.fromkeys(unit.fused_ops or unit.op_stats))
        positions = range(len(codes))
        ours = [unit.op_time(c)[0] for c in codes]
        theirs = [module.op_time(c)[0] for c in codes]
        axis.bar([p - 0.2 for p in positions], ours, width=0.4, color=KERNEL_COLOR, label="unit test")
        axis.bar([p + 0.2 for p in positions], theirs, width=0.4, color=MODULE_COLOR, label="module test")
        axis.set_xticks(list(positions), [_short(c) for c in codes])
        axis.set_title(f"{unit.mode}: average kernel duration per op (µs)", fontsize=9)
        _style(axis, rotate=True)
    _legend(fig, axes[0][0], columns=2)
    return _svg(fig, "unit-vs-module")


# Perf steps whose figures share a scale: the module test's run (its op-to-op includes compile and
# host time, thousands of µs) never shares an axis with the unit test's window (a few µs).
SCALES = (("unit_perf", "single_perf"), ("module_perf",))


def trend(series: dict[str, list[dict]]) -> str | None:
    """`series`: task -> history lines (oldest first), each with `kernel_us` / `op_to_op_us`. One row of
    two panels (kernel, op-to-op) per scale group (SCALES)."""
    drawn = {task: lines for task, lines in series.items() if any(line.get("kernel_us") for line in lines)}
    if not drawn:
        return None
    groups = [
        {task: lines for task, lines in drawn.items() if task.split(":")[0] in steps} for steps in SCALES
    ]
    groups = [group for group in groups if group]
    fig, axes = plt.subplots(len(groups), 2, figsize=(8.4, 3.2 * len(groups)), squeeze=False)
    runs = max(len(lines) for lines in drawn.values())
    for (kernel_axis, gap_axis), group in zip(axes, groups, strict=True):
        for task, lines in sorted(group.items()):
            points = range(1, len(lines) + 1)
            kernel_axis.plot(points, [line.get("kernel_us") for line in lines], marker="o", label=task)
            gap_axis.plot(points, [line.get("op_to_op_us") for line in lines], marker="o", label=task)
        what = "module test" if all(t.startswith("module_perf") for t in group) else "unit tests"
        kernel_axis.set_title(f"{what}: total kernel duration per iteration (µs)", fontsize=9)
        gap_axis.set_title(f"{what}: total op-to-op latency per iteration (µs)", fontsize=9)
        for axis in (kernel_axis, gap_axis):
            axis.set_xlabel("stored run (oldest first)", fontsize=8)
            axis.set_xticks(range(1, runs + 1))
            axis.set_xlim(0.5, runs + 0.5)
            _style(axis)
    handles, labels = [], []
    for kernel_axis, _ in axes:
        found = kernel_axis.get_legend_handles_labels()
        handles, labels = handles + found[0], labels + found[1]
    fig.legend(handles, labels, loc="lower center", ncol=3, fontsize=7, frameon=False)
    return _svg(fig, "trend")


def _short(op_code: str) -> str:
    return op_code.removesuffix("DeviceOperation").removesuffix("Operation") or op_code


def _legend(fig, axis, columns: int) -> None:
    """Below the panels, so it never hides a bar or a point."""
    handles, labels = axis.get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=columns, fontsize=7, frameon=False)
    fig.subplots_adjust(bottom=0.3)


def _style(axis, rotate: bool = False) -> None:
    axis.tick_params(labelsize=7)
    axis.spines[["top", "right"]].set_visible(False)
    if rotate:
        axis.tick_params(axis="x", labelrotation=30)


def _svg(fig, name: str) -> str:
    buffer = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": name}):
        fig.tight_layout(rect=(0, 0.12, 1, 1))
        fig.savefig(buffer, format="svg", metadata={"Date": None})
    plt.close(fig)
    return _XML_PROLOGUE.sub("", buffer.getvalue(), count=1)
