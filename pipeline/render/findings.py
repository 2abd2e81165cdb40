""" "Unexpected and workarounds", grouped: one line per finding, with the cases it covers.

The steps write one note per parametrized case (``test_x[decode-1-...] PCC ... went down``) or per
expected-value row (``decode/seq_len=1: expected_pcc ...``). Notes that read the same once the case
is taken out are one finding; the cases are listed beside it, in the order they appeared.
"""

import re
from dataclasses import dataclass, field

CASE = re.compile(r"\b[A-Za-z_]\w*\[[^\]\s]*\]|\b(?:decode|prefill)/seq_len=\w+")
PLACEHOLDER = "<case>"


@dataclass
class Finding:
    text: str  # the note with its case replaced by PLACEHOLDER (or the note itself)
    cases: list = field(default_factory=list)


def group(notes: list[str]) -> list[Finding]:
    found: dict[str, Finding] = {}
    for note in notes:
        cases = CASE.findall(note)
        key = CASE.sub(PLACEHOLDER, note) if cases else note
        finding = found.setdefault(key, Finding(key))
        finding.cases.extend(c for c in cases if c not in finding.cases)
    return list(found.values())
