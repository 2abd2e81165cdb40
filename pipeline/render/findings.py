""" "Unexpected and workarounds", grouped: one line per finding, with the cases it covers.

The steps write one note per parametrized case (``test_x[decode-1-...] PCC ... went down``) or per
expected-value row (``decode/seq_len=1: expected_pcc ...``). Notes that read the same once the case
is taken out are one finding; the cases are listed beside it, in the order they appeared.
"""

import re
from dataclasses import dataclass, field

CASE = re.compile(r"\b[A-Za-z_]\w*\[[^\]\s]*\]|\b(?:decode|prefill)/seq_len=\w+")
KEY = "\0case\0"  # stands for the case while notes are grouped; never shown
EACH = "each listed case"  # what a grouped finding says instead of one case's id


@dataclass
class Finding:
    text: str  # the note itself (one case), or with the case replaced by EACH (several)
    cases: list = field(default_factory=list)


def group(notes: list[str]) -> list[Finding]:
    found: dict[str, tuple[str, Finding]] = {}
    for note in notes:
        cases = CASE.findall(note)
        key = CASE.sub(KEY, note) if cases else note
        first, finding = found.setdefault(key, (note, Finding(key)))
        finding.cases.extend(c for c in cases if c not in finding.cases)
    return [_shown(first, finding) for first, finding in found.values()]


def _shown(first_note: str, finding: Finding) -> Finding:
    if len(finding.cases) <= 1:  # one case: the note as the step wrote it
        return Finding(first_note, [])
    return Finding(finding.text.replace(KEY, EACH), finding.cases)
