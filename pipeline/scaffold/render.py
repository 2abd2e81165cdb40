"""The extracted function's text: the module's own lines (comments and `# fmt: skip` kept), with the
receiver's attributes renamed to parameters, re-indented under a new `def`."""

import ast

INDENT = "    "


def statement_lines(source_lines: list[str], statements, renames: list[tuple[ast.expr, str]]) -> list[str]:
    """Lines first..last of `statements` with each (node, name) in `renames` replaced, dedented."""
    first, last = statements[0].lineno, statements[-1].end_lineno
    lines = source_lines[first - 1 : last]
    inside = [(node, name) for node, name in renames if first <= node.lineno and node.end_lineno <= last]
    for node, name in sorted(inside, key=lambda r: (r[0].lineno, r[0].col_offset), reverse=True):
        top, bottom = node.lineno - first, node.end_lineno - first
        start = _char_column(lines[top], node.col_offset)
        end = _char_column(lines[bottom], node.end_col_offset)
        lines[top : bottom + 1] = [lines[top][:start] + name + lines[bottom][end:]]
    indent = lines[0][: _char_column(lines[0], statements[0].col_offset)]
    return [_dedent(line, indent) for line in lines]


def function_text(name: str, parameters, docstring: str, body_lines: list[str], returns, tail: str) -> str:
    """`def name(parameters):` + docstring + body + `return ...` (`tail` replaces the generated return)."""
    lines = [f"def {name}({', '.join(parameters)}):", f'{INDENT}"""{docstring}"""']
    lines += [f"{INDENT}{line}" if line.strip() else "" for line in body_lines]
    if tail:
        lines += [f"{INDENT}{line}" for line in tail.splitlines()]
    elif returns:
        lines.append(f"{INDENT}return {', '.join(returns)}")
    return "\n".join(lines) + "\n"


def call_text(name: str, arguments, returns, function_mode: bool) -> str:
    call = f"{name}({', '.join(arguments)})"
    if function_mode:
        return f"return {call}"
    return f"{', '.join(returns)} = {call}" if returns else call


def _char_column(line: str, byte_column: int) -> int:
    """ast columns count UTF-8 bytes; string slicing counts characters."""
    return len(line.encode()[:byte_column].decode(errors="ignore"))


def _dedent(line: str, indent: str) -> str:
    if line.startswith(indent):
        return line[len(indent) :]
    return "" if not line.strip() else line
