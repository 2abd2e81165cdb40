"""The pipeline's own step matrix: fused op x step, one entry per mode, with the age of each result.

States: passed, failed (any verdict that is a finding: failed, infra_failure, profiler_failure),
blocked, skipped (with its reason), stale (the result was produced under another environment key than
the op's summary), not run (no result.json). Ages are measured when the page is written.
"""

from dataclasses import dataclass
from datetime import datetime

from pipeline.render.evidence import OpEvidence, Step
from pipeline.steps import STEPS as ALL_STEPS

STEPS = tuple(s for s in ALL_STEPS if s not in ("summary", "index"))
FAILING = ("failed", "infra_failure", "profiler_failure")


@dataclass(frozen=True)
class Entry:
    mode: str
    state: str  # passed / failed / blocked / skipped / stale / not run
    verdict: str
    title: str  # the step's message: shown on hover
    age: str
    href: str | None  # relative to artifacts/


def state_of(step: Step) -> str:
    if step.verdict == "missing":
        return "not run"
    if step.environment_differs:
        return "stale"
    if step.verdict in FAILING:
        return "failed"
    return step.verdict


def entries(op: OpEvidence, step: str, now: datetime) -> list[Entry]:
    found = []
    for entry in op.steps_of(step):
        link = entry.links.get("log") or entry.links.get("result")
        found.append(
            Entry(
                mode=entry.mode or "",
                state=state_of(entry),
                verdict=entry.verdict,
                title=f"{entry.task}: {entry.verdict}: {entry.message}",
                age=age(entry.finished, now),
                href=f"{op.op}/{link}" if link else None,
            )
        )
    return found


def rows(ops: list[OpEvidence], now: datetime) -> list[tuple[OpEvidence, dict[str, list[Entry]]]]:
    return [(op, {step: entries(op, step, now) for step in STEPS}) for op in ops]


def age(finished: str | None, now: datetime) -> str:
    """`3 min`, `2 h`, `5 d` since `finished` (an ISO time with offset), or '' when unknown."""
    if not finished:
        return ""
    try:
        then = datetime.strptime(finished, "%Y-%m-%dT%H:%M:%S%z")
    except ValueError:
        return ""
    seconds = max(0.0, (now - then).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{int(seconds // size)} {unit}"
    return f"{int(seconds)} s"
