"""tt-metal's fused-op status table, every cell derived from the stored evidence.

Columns as the model teams' hand-kept table has them (one row per fused op). Legend: ✅ verified
and passing, ❌ verified and failing, ⛔️ verified not to exist, ❓ cannot be verified. A cell is ❓ only when
no step produced its evidence, and then its `reason` says which step or record is missing. Figures
are per iteration (device perf: kernel / op-to-op, in µs), PCC to 4 decimals.
"""

from dataclasses import dataclass

from pipeline.render.evidence import GOOD, Case, OpEvidence, Step
from pipeline.steps._cases import pcc_text

PASS, FAIL, ABSENT, UNKNOWN = "✅", "❌", "⛔️", "❓"
LEGEND = {
    PASS: "verified and passing",
    FAIL: "verified and failing",
    ABSENT: "verified not to exist",
    UNKNOWN: "cannot be verified (hover for the reason)",
}
# The words beside each symbol (and its cell's colour, by state): readable without a colour-emoji font.
LABELS = {PASS: "pass", FAIL: "fail", ABSENT: "none", UNKNOWN: "unknown"}
STATES = {PASS: "pass", FAIL: "fail", ABSENT: "absent", UNKNOWN: "unknown"}  # CSS classes, data-state
PREFILL_LENGTHS = {
    "Prefill 128": 128,
    "Prefill 1k": 1024,
    "Prefill 8k": 8192,
    "Prefill 32k": 32768,
    "Prefill 128k": 131072,
}
SEQUENCES = {"D": ("decode", None), "P-128": ("prefill", 128)}
COLUMNS = (
    "Unit test exists",
    "Decode",
    *PREFILL_LENGTHS,
    "ATOL D",
    "ATOL P-128",
    "E2E Perf D (us)",
    "E2E Perf P-128 (us)",
    "Device Perf D (us)",
    "Device Perf P-128 (us)",
    "PCC D",
    "PCC P-128",
    "Single device test",
    "Random weights",
    "Program_cache on/off",
    "Tracing on/off",
    "100 iterations",
    "Added to CI",
    "Path to test file",
    "Last updated",
)
OPTIONS = {
    "Program_cache on/off": ("program_cache", "no_program_cache"),
    "Tracing on/off": ("trace", "eager"),
}
WANTED_ITERATIONS = 100


@dataclass(frozen=True)
class Cell:
    text: str  # a legend symbol, a figure, or plain text
    reason: str = ""  # why: shown on hover; always set for ❓
    state: str = ""  # pass / fail / absent / unknown / value: the CSS class and what tests check

    @classmethod
    def symbol(cls, symbol: str, reason: str) -> "Cell":
        return cls(symbol, reason, STATES[symbol])

    @classmethod
    def value(cls, text: str, reason: str = "") -> "Cell":
        return cls(text, reason, "value")

    @property
    def label(self) -> str:
        """The word shown beside a legend symbol ("" for a figure)."""
        return LABELS.get(self.text, "")


def unknown(reason: str) -> Cell:
    return Cell.symbol(UNKNOWN, reason)


def row(op: OpEvidence) -> dict[str, Cell]:
    """One fused op's row: column name -> cell."""
    unit = op.step("unit_test")
    cases = _unit_cases(unit)
    cells = {"Unit test exists": _exists(unit, cases)}
    cells["Decode"] = _sequence(op, unit, cases, "decode", None)
    for column, length in PREFILL_LENGTHS.items():
        cells[column] = _sequence(op, unit, cases, "prefill", length)
    for label, (mode, length) in SEQUENCES.items():
        cells[f"ATOL {label}"] = _atol(unit, _matching(cases, mode, length), mode)
        cells[f"E2E Perf {label} (us)"] = _e2e(unit, _matching(cases, mode, length))
        cells[f"Device Perf {label} (us)"] = _device_perf(op, mode)
        cells[f"PCC {label}"] = _pcc(unit, _matching(cases, mode, length))
    cells["Single device test"] = _single_device(op.step("single_device"))
    cells["Random weights"] = _random_weights(unit, cases)
    for column, (on, off) in OPTIONS.items():
        cells[column] = _option(unit, cases, on, off)
    cells["100 iterations"] = _iterations(unit, cases)
    cells["Added to CI"] = unknown(
        "the pipeline does not read CI workflow files; it records whether it ran, not where"
    )
    cells["Path to test file"] = Cell.value(op.unit_test)
    cells["Last updated"] = _last_updated(op)
    return cells


def _unit_cases(unit: Step | None) -> list[Case]:
    """The counted cases: trace + no_program_cache is not applicable and counts nowhere."""
    return unit.counted_cases if unit else []


def _not_run(step: Step | None, name: str) -> Cell | None:
    if step is None:
        return unknown(f"no {name} step in summary.json")
    if step.verdict in ("missing", "blocked") or (step.verdict not in GOOD and not step.cases):
        return unknown(f"{step.task} {step.verdict}: {step.message}")
    return None


def _exists(unit: Step | None, cases: list[Case]) -> Cell:
    if unit is None:
        return unknown("no unit_test step in summary.json")
    if cases:
        return Cell.symbol(PASS, f"{unit.task} ran {len(cases)} case(s)")
    if unit.verdict in ("missing", "blocked"):
        return unknown(f"{unit.task} {unit.verdict}: {unit.message}")
    return Cell.symbol(FAIL, f"{unit.task} {unit.verdict} with no case: {unit.message}")


def _matching(cases: list[Case], mode: str, length: int | None) -> list[Case]:
    return [c for c in cases if c.mode == mode and (length is None or c.seq_len == length)]


def _sequence(op: OpEvidence, unit: Step | None, cases: list[Case], mode: str, length: int | None) -> Cell:
    if mode not in op.modes:
        return Cell.symbol(ABSENT, f"the spec declares no {mode} mode")
    missing = _not_run(unit, "unit_test")
    if missing:
        return missing
    found = _matching(cases, mode, length)
    what = f"{mode}" + (f" seq_len {length}" if length else "")
    if not found:
        return Cell.symbol(ABSENT, f"{unit.task} has no {what} case")
    return _outcomes(found, what)


def _outcomes(cases: list[Case], what: str) -> Cell:
    failed = [c.id for c in cases if c.outcome in ("failed", "error")]
    if failed:
        return Cell.symbol(FAIL, f"{len(failed)} {what} case(s) failed: {', '.join(failed[:3])}")
    passed = [c for c in cases if c.outcome == "passed"]
    if not passed:
        return Cell.symbol(ABSENT, f"every {what} case skipped: {cases[0].message}")
    return Cell.symbol(PASS, f"{len(passed)}/{len(cases)} {what} case(s) passed")


def _atol(unit: Step | None, cases: list[Case], mode: str) -> Cell:
    missing = _not_run(unit, "unit_test")
    if missing:
        return missing
    values = [v for c in cases for v in c.atol.values()]
    if not values:
        return unknown(f"no ATOL line in the {mode} cases' logs of {unit.task}")
    return Cell.value(f"{max(values):.4g}", f"largest ATOL over {len(cases)} case(s)")


def _e2e(unit: Step | None, cases: list[Case]) -> Cell:
    missing = _not_run(unit, "unit_test")
    if missing:
        return missing
    eager = [c for c in cases if "eager" in c.params and "program_cache" in c.params and c.e2e_us]
    chosen = eager or [c for c in cases if c.e2e_us]
    if not chosen:
        return unknown(f"no e2e perf line in the cases' logs of {unit.task}")
    return Cell.value(f"{chosen[0].e2e_us[-1]:.3f}", f"{chosen[0].id}")


def _device_perf(op: OpEvidence, mode: str) -> Cell:
    if mode not in op.modes:
        return Cell.symbol(ABSENT, f"the spec declares no {mode} mode")
    perf = op.step("unit_perf", mode)
    if perf is None:
        return unknown(f"no unit_perf {mode} step in summary.json")
    kernel, op_to_op = perf.figure("kernel_us"), perf.figure("op_to_op_us")
    if kernel is None or op_to_op is None:
        return unknown(f"{perf.task} {perf.verdict}: {perf.message}")
    return Cell.value(
        f"k={kernel:.3f}/op2op={op_to_op:.3f}",
        f"{perf.task}: per iteration over {perf.figure('iterations')} iterations",
    )


def _pcc(unit: Step | None, cases: list[Case]) -> Cell:
    missing = _not_run(unit, "unit_test")
    if missing:
        return missing
    values = [v for c in cases for v in c.pcc.values()]
    if not values:
        return unknown(f"no PCC line in the cases' logs of {unit.task}")
    return Cell.value(pcc_text(min(values)), f"lowest of {len(values)} PCC line(s); exact: {min(values)!r}")


def _single_device(step: Step | None) -> Cell:
    if step is None:
        return unknown("no single_device step in summary.json")
    if step.verdict == "passed":
        return Cell.symbol(PASS, step.message)
    if step.verdict == "skipped":
        return Cell.symbol(ABSENT, f"not applicable: {step.message}")
    if step.verdict == "failed" and step.cases:
        return Cell.symbol(FAIL, step.message)
    return unknown(f"{step.task} {step.verdict}: {step.message}")


def _random_weights(unit: Step | None, cases: list[Case]) -> Cell:
    missing = _not_run(unit, "unit_test")
    if missing:
        return missing
    named = [c for c in cases if {"random_weights", "real_weights"} & set(c.params)]
    if not named:
        return unknown("no case id names its weights (random_weights / real_weights)")
    random = [c for c in named if "real_weights" not in c.params]
    if not random:
        return Cell.symbol(ABSENT, "every case uses real weights")
    return _outcomes(random, "random-weights")


def _option(unit: Step | None, cases: list[Case], on: str, off: str) -> Cell:
    missing = _not_run(unit, "unit_test")
    if missing:
        return missing
    with_on = [c for c in cases if on in c.params]
    with_off = [c for c in cases if off in c.params]
    if not with_on and not with_off:
        return unknown(f"no case id names {on} / {off}")
    if not with_on or not with_off:
        return Cell.symbol(ABSENT, f"only {on if with_on else off} cases")
    both = [_outcomes(with_on, on), _outcomes(with_off, off)]
    worst = next((c for c in both if c.state != "pass"), both[0])
    return Cell.symbol(worst.text, f"{both[0].reason}; {both[1].reason}")


def _iterations(unit: Step | None, cases: list[Case]) -> Cell:
    missing = _not_run(unit, "unit_test")
    if missing:
        return missing
    recorded = [c for c in cases if c.e2e_iterations is not None]
    if not recorded:
        return unknown(f"{unit.task} recorded no e2e iteration count (figures.cases[].e2e_iterations)")
    fewest = min(recorded, key=lambda c: c.e2e_iterations)
    unrecorded = f"; {len(cases) - len(recorded)} case(s) recorded none" if len(recorded) < len(cases) else ""
    if fewest.e2e_iterations >= WANTED_ITERATIONS:
        return Cell.symbol(PASS, f"every recorded case times {fewest.e2e_iterations}+ iterations{unrecorded}")
    return Cell.symbol(
        FAIL,
        f"{fewest.id} times {fewest.e2e_iterations} iterations, fewer than {WANTED_ITERATIONS}{unrecorded}",
    )


def _last_updated(op: OpEvidence) -> Cell:
    times = sorted(s.finished for s in op.steps if s.finished)
    if not times:
        return unknown("no step's result.json records when it finished")
    return Cell.value(last_updated(op), f"latest of {len(times)} step results")


def last_updated(op: OpEvidence) -> str:
    """When the op's latest step finished (`YYYY-MM-DD HH:MM`), "" when none says."""
    times = sorted(s.finished for s in op.steps if s.finished)
    return times[-1][:16].replace("T", " ") if times else ""
