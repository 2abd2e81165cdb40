"""The expected values a fused-op test declares: the parametrize rows carrying expected_pcc /
expected_perf_us, read with ast, each with the comment that justifies it (if any).

A row's justification is a comment mentioning PCC on the row's own lines, or in the comment block
directly above the row or above the statement that holds the rows (the ``CASES = [...]`` assignment or
the decorated test function). It justifies the row's expected_pcc only when it also states a PCC at or
below the measured PCC: a comment written for 0.98 does not cover a later 0.5.
"""

import ast
import io
import re
import tokenize
from pathlib import Path

from pipeline.scaffold.expected import PLACEHOLDER_NOTE, PLACEHOLDER_PCC
from pipeline.sources import decides_verdict

_DECIMAL = re.compile(r"(?<![\d.])(?:0?\.\d+|1\.0+)(?!\d)")


def rows(test_file: Path, function: str) -> list[dict]:
    try:
        text = Path(test_file).read_text()
        tree = ast.parse(text)
    except (OSError, SyntaxError):
        return []
    comments = _comments(text)
    constants = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            constants[node.targets[0].id] = (node.value, node.lineno)
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == function:
            first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            for decorator in node.decorator_list:
                found = _parametrize_rows(decorator, constants, comments, first)
                if found:
                    return found
    return []


def match(case_id: str, table: list[dict]) -> dict | None:
    """pytest's auto id of a row is its values joined by '-' (str(float) for floats)."""
    params = "-" + case_id.partition("[")[2].rstrip("]") + "-"
    for row in table:
        values = [v for k, v in row.items() if k != "justification"]
        if "-" + "-".join(str(v) for v in values) + "-" in params:
            return row
    return None


def placeholder_rows(test_file: Path, table: list[dict]) -> list[str]:
    """`mode/seq_len=N` of the rows still holding the scaffold's placeholder expected_pcc, while the test
    keeps the scaffold's TODO line (a hand-written bit-exact row of 1.0 is no placeholder)."""
    try:
        scaffolded = PLACEHOLDER_NOTE in Path(test_file).read_text()
    except OSError:
        return []
    return [row_key(r) for r in table if scaffolded and r.get("expected_pcc") == PLACEHOLDER_PCC]


def row_key(row: dict) -> str:
    return f"{row.get('mode', '?')}/seq_len={row.get('seq_len', '?')}"


def justifies(row: dict | None, measured: float | None = None) -> bool:
    """The row's comment mentions PCC and states a value at or below the MEASURED PCC (and its
    expected_pcc): a comment written for 0.98 does not cover a measured 0.5, and no comment makes a PCC
    at or below 0 (no correlation) acceptable."""
    row = row or {}
    expected = row.get("expected_pcc")
    if not row.get("justification") or not isinstance(expected, int | float):
        return False
    ceiling = expected if measured is None else min(expected, measured)
    return any(0 < float(number) <= ceiling for number in _DECIMAL.findall(row["justification"]))


def _parametrize_rows(decorator, constants, comments, function_line) -> list[dict]:
    if not (
        isinstance(decorator, ast.Call)
        and getattr(decorator.func, "attr", "") == "parametrize"
        and len(decorator.args) >= 2
    ):
        return []
    try:
        names = ast.literal_eval(decorator.args[0])
    except ValueError:
        return []
    values, holder_line = decorator.args[1], function_line
    if isinstance(values, ast.Name) and values.id in constants:
        values, holder_line = constants[values.id]
    names = [n.strip() for n in names.split(",")] if isinstance(names, str) else list(names)
    if "expected_pcc" not in names or not isinstance(values, ast.List | ast.Tuple):
        return []
    table = []
    for element in values.elts:
        try:
            row = ast.literal_eval(element)
        except ValueError:
            continue
        if isinstance(row, list | tuple) and len(row) == len(names):
            entry = dict(zip(names, row, strict=True))
            entry["justification"] = _justification(comments, element.lineno, element.end_lineno, holder_line)
            table.append(entry)
    return table


def _justification(comments: dict, first: int, last: int, holder_line: int) -> str:
    found = [comments[line] for line in range(first, last + 1) if line in comments]
    for anchor in (first, holder_line):
        block, line = [], anchor - 1
        while line in comments and comments[line][1]:
            block.insert(0, comments[line])
            line -= 1
        found += block
    text = " ".join(dict.fromkeys(c[0] for c in found))
    return text if decides_verdict(text) else ""


def _comments(text: str) -> dict[int, tuple[str, bool]]:
    """line -> (comment text, whether the line is only a comment)."""
    found = {}
    try:
        for token in tokenize.generate_tokens(io.StringIO(text).readline):
            if token.type == tokenize.COMMENT:
                own_line = token.line.strip().startswith("#")
                found[token.start[0]] = (token.string.lstrip("#").strip(), own_line)
    except (tokenize.TokenError, SyntaxError):
        pass
    return found


def perf_assertion_files(test_file: Path, workspace: Path) -> list[Path]:
    """The files of the test's import closure inside the workspace holding an ``assert`` that reads
    ``expected_perf`` (guide 8.2: the e2e figure is asserted against the row's expected value)."""
    from pipeline import sources

    found = []
    for path in sources.follow_imports([Path(test_file)], [Path(workspace).resolve()]):
        try:
            tree = ast.parse(Path(path).read_text())
        except (OSError, SyntaxError, ValueError):
            continue
        if any(isinstance(n, ast.Assert) and "expected_perf" in ast.unparse(n.test) for n in ast.walk(tree)):
            found.append(Path(path))
    return found


def module_constants(test_file: Path, names) -> dict:
    """The test module's top-level integer assignments of `names` (e.g. PERF_WARMUP_ITERS), as written."""
    try:
        tree = ast.parse(Path(test_file).read_text())
    except (OSError, SyntaxError, ValueError):
        return {}
    found = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            if node.targets[0].id in names and isinstance(node.value, ast.Constant):
                found[node.targets[0].id] = node.value.value
    return found
