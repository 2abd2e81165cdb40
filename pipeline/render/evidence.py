"""The one reader of summary.json for the pages: every figure the rendering layer shows comes from here.

The steps own the names of their figures; when a step renames one, only the tables at the top of this
module change. Per-iteration device-perf totals are read under the fused-op guide's names
(``total_kernel_duration_us``), falling back to the older per-iteration ``avg_kernel_us``; a window sum
is never shown as a per-iteration figure. Files the pages link or read (``result.json``, report files)
are the ones summary.json names in each step's ``links``, relative to the op's directory.
"""

import json
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.steps import _cases

# Per-iteration figure -> the keys a step may store it under, newest first.
FIGURE_KEYS = {
    "kernel_us": ("total_kernel_duration_us", "avg_kernel_us"),
    "op_to_op_us": ("total_op_to_op_latency_us", "avg_op_to_op_us"),
    "printed_kernel_us": ("printed_total_kernel_duration_us",),
    "printed_op_to_op_us": ("printed_total_op_to_op_latency_us",),
    "iterations": ("iterations",),
    "min_pcc": ("min_pcc",),
}
# The two sides of a compare step's difference rows, per step.
DIFFERENCE_SIDES = {"config_compare": ("unit", "module"), "shape_check": ("multi", "single")}
PERF_STEPS = ("unit_perf", "module_perf", "single_perf")
GOOD = ("passed", "skipped")
MODES = ("decode", "prefill")


@dataclass
class Case:
    """One parametrized test case of a unit test (or its single-device twin)."""

    id: str
    outcome: str
    message: str
    pcc: dict
    atol: dict
    e2e_us: list
    e2e_iters: list
    mode: str | None
    seq_len: int | None
    e2e_iterations: int | None = None  # fused-op calls in the e2e timer's window (recorded facts)

    @property
    def params(self) -> list[str]:
        return self.id.partition("[")[2].rstrip("]").split("-")

    @property
    def not_applicable(self) -> bool:
        """trace + no_program_cache (guide 7.6): shown, never counted (the steps' one rule)."""
        return _cases.not_applicable(self.id)

    @property
    def min_pcc(self) -> float | None:
        return min(self.pcc.values()) if self.pcc else None


@dataclass(frozen=True)
class Difference:
    """One field of one op that differs between the two sides a compare step looked at."""

    op: str
    field: str
    ours: str  # the unit test (config_compare) or the multi-device run (shape_check)
    theirs: str  # the module (config_compare) or the single-device run (shape_check)


@dataclass
class Step:
    """One task of a fused op as summary.json records it, plus its result.json's run record."""

    task: str
    step: str
    mode: str | None
    verdict: str
    message: str
    figures: dict
    links: dict
    run: dict = field(default_factory=dict)
    environment_differs: bool = False

    def figure(self, name: str):
        """A figure under its stable name (FIGURE_KEYS), or None when the step did not record it."""
        return figure(self.figures, name)

    @property
    def op_stats(self) -> dict:
        return self.figures.get("op_stats") or {}

    def op_time(self, op_code: str) -> tuple[float, float]:
        """(average kernel duration, average op-to-op latency) of one op code, in µs."""
        stats = self.op_stats.get(op_code) or {}
        return stats.get("avg_kernel_duration_ns", 0) / 1000, stats.get("avg_op_to_op_latency_ns", 0) / 1000

    @property
    def per_mode(self) -> list[tuple[str, float | None, float | None]]:
        """(`<mode> <seq_len>`, lowest PCC, e2e µs) per mode and sequence length the test step ran."""
        return [
            (key.replace("_", " ").strip(), entry.get("min_pcc"), entry.get("e2e_us"))
            for key, entry in sorted(self.by_mode.items())
        ]

    @property
    def pcc_lines(self) -> list[tuple[str, float]]:
        """A module test's printed PCC lines (baseline): (name, value)."""
        lines = self.figures.get("pcc") or []
        return [
            (p.get("name", ""), p["value"])
            for p in lines
            if isinstance(p, dict) and p.get("value") is not None
        ]

    @property
    def compare_result(self) -> str:
        return str(self.figures.get("result") or "")

    @property
    def compared_ops(self) -> list[str]:
        return list(self.figures.get("unit_ops") or self.figures.get("compared_ops") or [])

    @property
    def differences(self) -> list[Difference]:
        ours, theirs = DIFFERENCE_SIDES.get(self.step, ("unit", "module"))
        return [
            Difference(*(str(m.get(key, "")) for key in ("op", "field", ours, theirs)))
            for m in self.figures.get("mismatches") or []
        ]

    @property
    def sides(self) -> tuple[dict, dict]:
        """shape_check's figures of the (multi-device, single-device) runs, read with `figure()`."""
        sides = self.figures.get("side_by_side") or {}
        return sides.get("multi_device") or {}, sides.get("single_device") or {}

    @property
    def fused_ops(self) -> list[str]:
        return list(self.figures.get("one_iteration_ops") or [])

    @property
    def cases(self) -> list[Case]:
        """Every case the step ran, not-applicable ones included (shown, with their state)."""
        return [_case(c) for c in self.figures.get("cases") or [] if isinstance(c, dict) and "id" in c]

    @property
    def counted_cases(self) -> list[Case]:
        """The cases every count is over (the step's message counts the same ones)."""
        return [c for c in self.cases if not c.not_applicable]

    @property
    def min_case_pcc(self) -> float | None:
        values = [c.min_pcc for c in self.counted_cases if c.min_pcc is not None]
        return min(values) if values else None

    @property
    def by_mode(self) -> dict:
        return self.figures.get("by_mode") or {}

    @property
    def finished(self) -> str | None:
        return self.run.get("finished")

    @property
    def duration_s(self) -> float | None:
        return self.run.get("duration_s")

    @property
    def commands(self) -> list[str]:
        return list(self.run.get("commands") or [])


@dataclass
class OpEvidence:
    """One fused op: its summary.json, read once."""

    op: str
    description: str
    unit_test: str
    workspace: str
    modes: list
    decode_only: bool
    verdict: str
    environment: dict
    steps: list
    unexpected: list
    directory: Path
    spec: str = ""

    def step(self, step: str, mode: str | None = None) -> Step | None:
        for entry in self.steps:
            if entry.step == step and (mode is None or entry.mode == mode):
                return entry
        return None

    def steps_of(self, step: str) -> list[Step]:
        return [entry for entry in self.steps if entry.step == step]

    def link(self, relative: str) -> Path:
        return self.directory / relative


def figure(figures: dict, name: str):
    """`name` (a FIGURE_KEYS key) from a dict of figures, under whichever key the step used."""
    for key in FIGURE_KEYS[name]:
        if figures.get(key) is not None:
            return figures[key]
    return None


class EvidenceError(ValueError):
    """A summary.json that cannot be read as a fused op's evidence."""


def load(summary_json: Path) -> OpEvidence:
    path = Path(summary_json)
    try:
        data = json.loads(path.read_text())
        steps = [_step(entry, path.parent, data.get("environment")) for entry in data["steps"]]
        return OpEvidence(
            op=data["op"],
            description=data.get("description", ""),
            unit_test=data.get("unit_test", ""),
            workspace=data.get("workspace", ""),
            modes=list(data.get("modes") or []),
            decode_only=bool(data.get("decode_only")),
            verdict=data.get("verdict", "failed"),
            environment=data.get("environment") or {},
            steps=steps,
            unexpected=list(data.get("unexpected") or []),
            directory=path.parent,
            spec=data.get("spec", ""),
        )
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise EvidenceError(
            f"{path}: not a fused op's summary.json ({error}); rerun `doit run summary`"
        ) from None


def collect(root: Path) -> tuple[list[OpEvidence], list[str]]:
    """Every artifacts/*/summary.json under `root` (sorted by op), and one line per unreadable one."""
    found, problems = [], []
    for path in sorted(Path(root).glob("*/summary.json")):
        try:
            found.append(load(path))
        except EvidenceError as error:
            problems.append(str(error))
    return found, problems


def _step(entry: dict, op_dir: Path, environment: dict | None) -> Step:
    step = Step(
        task=entry["task"],
        step=entry["step"],
        mode=entry.get("mode"),
        verdict=entry["verdict"],
        message=entry.get("message", ""),
        figures=entry.get("figures") or {},
        links=dict(entry.get("links") or {}),
    )
    result = _read_json(op_dir, step.links.get("result"))
    if result:
        step.run = result.get("run") or {}
        ran_in = step.run.get("environment")
        step.environment_differs = bool(ran_in and environment and ran_in != environment)
    return step


def _read_json(op_dir: Path, relative: str | None) -> dict | None:
    if not relative:
        return None
    try:
        return json.loads((op_dir / relative).read_text())
    except (OSError, ValueError):
        return None


def _case(raw: dict) -> Case:
    expected = raw.get("expected") or {}
    mode, seq_len = expected.get("mode"), expected.get("seq_len")
    if mode is None:
        mode, seq_len = _mode_from_id(raw["id"])
    return Case(
        id=raw["id"],
        outcome=raw.get("outcome", ""),
        message=raw.get("message", ""),
        pcc=dict(raw.get("pcc") or {}),
        atol=dict(raw.get("atol") or {}),
        e2e_us=list(raw.get("e2e_us") or []),
        e2e_iters=list(raw.get("e2e_iters") or []),
        mode=mode,
        seq_len=int(seq_len) if str(seq_len).isdigit() else None,
        e2e_iterations=raw.get("e2e_iterations") if isinstance(raw.get("e2e_iterations"), int) else None,
    )


def _mode_from_id(case_id: str) -> tuple[str | None, int | None]:
    """A case without an expected row: its mode from the id's parameters (`decode-1-..`, `prefill-128-..`)."""
    parts = case_id.partition("[")[2].rstrip("]").split("-")
    for i, part in enumerate(parts):
        if part in MODES:
            following = parts[i + 1] if i + 1 < len(parts) else ""
            return part, int(following) if following.isdigit() else None
    return None, None
