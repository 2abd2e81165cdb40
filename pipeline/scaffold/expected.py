"""The expected values of a scaffolded test: placeholders until a run measures them.

A scaffolded test's rows are `<NAME>_CASES = [(mode, seq_len, expected_pcc, expected_perf_us), ...]`
with `expected_pcc = PLACEHOLDER_PCC`, which no real comparison reaches unless bit-exact, so the test
fails visibly with the measured PCC in its message. `placeholder_rows` says which rows still hold it;
`accept_measured` writes measured values into the rows (the lowest PCC rounded down, the e2e time
rounded up), changing nothing else in the file.
"""

import ast
import json
import math
from pathlib import Path

from pipeline import artifacts

PLACEHOLDER_PCC = 1.0
PLACEHOLDER_PERF_US = 0.0  # tt-metal's "no target" (a TODO warning, no assertion)
PLACEHOLDER_NOTE = "# TODO: expected_pcc (1.0) and expected_perf_us (0.0 = no target) are placeholders"
ACCEPTED_NOTE = (
    "# expected_pcc: lowest measured PCC rounded down; expected_perf_us: measured e2e us rounded up\n"
    "# TODO: replace expected_perf_us with the theoretical target (guide step 8.2)"
)
_DECIMALS = 3
# The scaffolded test's trace region (bytes, None: the model's YAML entry), set from the size a run's log
# asks for when the trace does not fit (guide step 7).
TRACE_REGION_CONSTANT = "TRACE_REGION_SIZE"


class ExpectedError(Exception):
    """The test's rows cannot be read or written (one line, with what to do)."""


def placeholder_rows(test_path: Path) -> list[tuple[str, int]]:
    """(mode, seq_len) of the rows whose expected_pcc is still the placeholder."""
    _, rows = _cases(test_path)
    return [(mode, seq_len) for mode, seq_len, pcc, _ in rows if pcc == PLACEHOLDER_PCC]


def rows_of(test_path: Path) -> dict[tuple[str, int], tuple[float, float]]:
    """(mode, seq_len) -> (expected_pcc, expected_perf_us) of every row."""
    _, rows = _cases(test_path)
    return {(mode, seq_len): (pcc, perf_us) for mode, seq_len, pcc, perf_us in rows}


def accept_measured(test_path: Path, measured: dict) -> list[str]:
    """Write `measured[(mode, seq_len)] = (pcc, perf_us or None)` into the rows; one line per row written."""
    node, rows = _cases(test_path)
    lines = Path(test_path).read_text().splitlines(keepends=True)
    indent = " " * 4
    written, new_rows = [], []
    for mode, seq_len, pcc, perf_us in rows:
        if (mode, seq_len) in measured:
            measured_pcc, measured_us = measured[(mode, seq_len)]
            pcc = math.floor(measured_pcc * 10**_DECIMALS) / 10**_DECIMALS
            perf_us = perf_us if measured_us is None else math.ceil(measured_us * 10) / 10  # None: unmeasured
            written.append(
                f"{test_path}: ({mode!r}, {seq_len}) expected_pcc={pcc} expected_perf_us={perf_us}"
            )
        new_rows.append(f"{indent}({json.dumps(mode)}, {seq_len}, {pcc!r}, {float(perf_us)!r}),\n")
    unknown = set(measured) - {(mode, seq_len) for mode, seq_len, _, _ in rows}
    if unknown:
        raise ExpectedError(
            f"{test_path}: no rows for {sorted(unknown)}; measured cases must be rows of the test"
        )
    target = node.targets[0].id
    replacement = [f"{target} = [\n", *new_rows, "]\n"]
    start, end = node.lineno - 1, node.end_lineno
    if start and lines[start - 1].startswith(PLACEHOLDER_NOTE) and not placeholder_left(rows, measured):
        start -= 1
        replacement.insert(0, ACCEPTED_NOTE + "\n")
    artifacts.write_text(Path(test_path), "".join(lines[:start] + replacement + lines[end:]))
    return written


def has_trace_region_constant(test_path: Path) -> bool:
    return _trace_region_node(test_path) is not None


def accept_trace_region(test_path: Path, needed: int) -> str:
    """Set the test's TRACE_REGION_SIZE to the bytes its trace needs; one line saying so."""
    node = _trace_region_node(test_path)
    if node is None:
        raise ExpectedError(
            f"{test_path}: no {TRACE_REGION_CONSTANT} = ... ; set trace_region_size to {needed} in the "
            "test's device_params"
        )
    lines = Path(test_path).read_text().splitlines(keepends=True)
    line = f"{TRACE_REGION_CONSTANT} = {needed}  # bytes: what the trace needs, as its run's log printed it\n"
    artifacts.write_text(
        Path(test_path), "".join(lines[: node.lineno - 1] + [line] + lines[node.end_lineno :])
    )
    return f"{test_path}: {TRACE_REGION_CONSTANT} = {needed}"


def _trace_region_node(test_path: Path) -> ast.Assign | None:
    try:
        tree = ast.parse(Path(test_path).read_text(), filename=str(test_path))
    except (OSError, SyntaxError):
        return None
    for node in tree.body:
        target = node.targets[0] if isinstance(node, ast.Assign) and len(node.targets) == 1 else None
        if isinstance(target, ast.Name) and target.id == TRACE_REGION_CONSTANT:
            return node
    return None


def placeholder_left(rows, measured: dict) -> bool:
    return any(pcc == PLACEHOLDER_PCC and (mode, seq_len) not in measured for mode, seq_len, pcc, _ in rows)


def _cases(test_path: Path):
    try:
        tree = ast.parse(Path(test_path).read_text(), filename=str(test_path))
    except (OSError, SyntaxError) as error:
        raise ExpectedError(f"{test_path}: cannot read the test ({error})") from None
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            if node.targets[0].id.endswith("_CASES"):
                try:
                    rows = [tuple(row) for row in ast.literal_eval(node.value)]
                except ValueError:
                    break
                if all(len(row) == 4 for row in rows):
                    return node, rows
    raise ExpectedError(
        f"{test_path}: no <NAME>_CASES = [(mode, seq_len, expected_pcc, expected_perf_us), ...] of literals"
    )
