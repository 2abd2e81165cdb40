"""Flaky cases, from the test steps' history (history.CASE_STEPS).

The rule: a case is flaky when two stored runs of the same code (the same `code` digest: every input
file the step hashed and the environment key) disagree about it, one passed and one failed or errored.
Any such flip counts: the same code must give the same verdict. Only the last history.KEEP runs of a
step are stored; skipped runs say nothing either way. The op page and the index name each flaky case
with the runs that disagree.
"""

from dataclasses import dataclass

from pipeline.render import history
from pipeline.render.evidence import OpEvidence

PASSING, FAILING = ("passed",), ("failed", "error")
RULE = (
    "flaky: two stored runs of the same code (same input files and environment key) disagree about the "
    "case, one passed and one failed"
)


@dataclass(frozen=True)
class Flaky:
    task: str
    case: str
    code: str  # the code digest the runs share
    runs: tuple  # (started, outcome) of every stored run of that code with a verdict on the case

    @property
    def summary(self) -> str:
        shown = ", ".join(f"{started} {outcome}" for started, outcome in self.runs)
        return f"{self.case} (code {self.code}): {shown}"


def flaky_cases(op: OpEvidence) -> list[Flaky]:
    found = []
    for task, lines in history.case_series(op).items():
        found += _flips(task, lines)
    return found


def _flips(task: str, lines: list[dict]) -> list[Flaky]:
    runs: dict[tuple[str, str], list] = {}  # (code, case) -> [(started, outcome)]
    for line in lines:
        for case, outcome in (line.get("cases") or {}).items():
            if outcome in PASSING + FAILING and line.get("code"):
                runs.setdefault((line["code"], case), []).append((line.get("started", "?"), outcome))
    flaky = []
    for (code, case), seen in runs.items():
        outcomes = {o for _, o in seen}
        if outcomes & set(PASSING) and outcomes & set(FAILING):
            flaky.append(Flaky(task, case, code, tuple(seen)))
    return sorted(flaky, key=lambda f: (f.task, f.case))


def title(cases: list[Flaky]) -> str:
    """The hover text of an op's flaky badge: the rule, then each case with its runs."""
    return f"{RULE}: " + "; ".join(case.summary for case in cases)
