"""Text a person reads on a page: step messages and notes come from the steps with whatever precision
they were written in; a page shows every PCC-like number (a value in [-1, 1] with five or more
decimals, as `str(float)` writes a PCC) to 4 decimals, like every figure cell. summary.json and each
result.json keep the exact values."""

import re

from pipeline.steps._cases import pcc_text

LONG_FRACTION = re.compile(r"(?<![\w.])-?[01]\.\d{5,}(?![\d.])")


def readable(text: str) -> str:
    return LONG_FRACTION.sub(_round, str(text))


def _round(match: re.Match) -> str:
    value = float(match.group(0))
    return pcc_text(value) if -1.0 <= value <= 1.0 else match.group(0)
