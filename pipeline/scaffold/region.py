"""Which statements of a module a sequence names: text anchors, a line range or a function.

The region is always a run of whole sibling statements of one block. A region that starts or ends
inside a compound statement (an ``if``, a loop, a ``with``) without covering it is refused, because
cutting it out would change what the remaining code does.
"""

import ast
from dataclasses import dataclass, field

from pipeline import anchors

_BLOCK_FIELDS = ("body", "orelse", "finalbody")
_LOOPS = (ast.For, ast.AsyncFor, ast.While)
_FUNCTIONS = (ast.FunctionDef, ast.AsyncFunctionDef)


class ExtractError(Exception):
    """The region cannot become a function (one line: the file, the place and what to change)."""


@dataclass
class Region:
    file: str  # as given, for messages
    source: str
    tree: ast.Module
    statements: list[ast.stmt]
    function: ast.FunctionDef | ast.AsyncFunctionDef | None = None  # the enclosing function
    cls: ast.ClassDef | None = None  # the class the enclosing function is a method of
    # What runs after the region, in order: the rest of each enclosing block, and the bodies of the
    # enclosing loops again (their next iteration reads what this one wrote).
    after: list[list[ast.stmt]] = field(default_factory=list)
    final_return: ast.Return | None = None  # function mode: the body's closing `return <value>`

    @property
    def receiver(self) -> str | None:
        """`self` (or whatever the method calls it) when the region is in a method, else None."""
        if self.function is None or self.cls is None:
            return None
        decorators = {getattr(d, "id", None) for d in self.function.decorator_list}
        positional = self.function.args.posonlyargs + self.function.args.args
        if "staticmethod" in decorators or not positional:
            return None
        return positional[0].arg

    @property
    def first(self) -> ast.stmt:
        return (self.statements or [self.final_return])[0]

    @property
    def lines(self) -> tuple[int, int]:
        last = self.final_return or self.statements[-1]
        return self.first.lineno, last.end_lineno


def anchor_lines(source: str, start: str, end: str, file: str) -> tuple[int, int]:
    """1-based lines of the first character of `start` and the last of `end`, by the patch's own rule
    (pipeline/anchors.py: `start` once, `end` its first occurrence after `start`), so a region the
    scaffold accepts is one `doit run` accepts."""
    try:
        span = anchors.locate(source, start, end, file)
    except anchors.AnchorError as error:
        raise ExtractError(f"{file}: {error.key} anchor {error}") from None
    return span.start_line, span.end_line + end.rstrip("\n").count("\n")


def by_anchors(source: str, start: str, end: str, file: str) -> Region:
    first, last = anchor_lines(source, start, end, file)
    return by_lines(source, first, last, file)


def by_lines(source: str, first: int, last: int, file: str) -> Region:
    """The statements that touch lines `first`..`last` (1-based, inclusive)."""
    if not 1 <= first <= last:
        raise ExtractError(f"{file}: line range {first}-{last} is empty; give first <= last, from 1")
    tree = _parse(source, file)
    region = Region(file, source, tree, [])
    _descend(region, tree.body, first, last, [])
    return region


def by_function(source: str, name: str, file: str) -> Region:
    """The body of function `name` (or `Class.method`), docstring excluded, closing `return` allowed."""
    tree = _parse(source, file)
    owner, function = _find_function(tree, name, file)
    body = list(function.body)
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]  # the docstring
    final_return = None
    if body and isinstance(body[-1], ast.Return) and body[-1].value is not None:
        final_return = body.pop()
    if not body and final_return is None:
        raise ExtractError(f"{file}: function {name} has no statements to extract")
    return Region(file, source, tree, body, function, owner, [], final_return)


def named_by(source: str, file: str, lines=None, function: str = "") -> Region:
    """The region a spec names by `lines = [first, last]` or by `function` (exactly one of them)."""
    if function:
        return by_function(source, function, file)
    if not (isinstance(lines, list | tuple) and len(lines) == 2 and all(type(n) is int for n in lines)):
        raise ExtractError(f"{file}: lines = {lines!r}; give lines = [first, last] (1-based line numbers)")
    return by_lines(source, lines[0], lines[1], file)


def anchors_for(region: Region) -> tuple[str, str]:
    """Text anchors naming exactly the region's first and last statements (the patch works on anchors):
    the first statement's line, with the lines after it until the text occurs once (short of the last
    statement's line), and the last statement's first line. A region no text names uniquely is refused
    (give start/end instead)."""
    lines = region.source.splitlines(keepends=True)
    first = region.first
    last = region.final_return or region.statements[-1]
    start = lines[first.lineno - 1][first.col_offset :].rstrip("\n")
    following = first.lineno
    while region.source.count(start) != 1 and following < last.lineno - 1:  # `end` is searched after it
        start += "\n" + lines[following].rstrip("\n")
        following += 1
    end = start if last.lineno == first.lineno else lines[last.lineno - 1][last.col_offset :].rstrip("\n")
    found = (
        anchors.locate(region.source, start, end, region.file) if region.source.count(start) == 1 else None
    )
    if found is None or (found.start_line, found.end_line) != (first.lineno, last.lineno):
        raise ExtractError(
            f"{region.file}: lines {first.lineno}-{last.lineno} repeat elsewhere in the file; "
            "name the sequence by start/end anchors instead"
        )
    return start, end


def _parse(source: str, file: str) -> ast.Module:
    try:
        return ast.parse(source, filename=file)
    except SyntaxError as error:
        raise ExtractError(f"{file}: line {error.lineno}: {error.msg}; fix the module first") from None


def _line_at(source: str, offset: int) -> int:
    return source.count("\n", 0, offset) + 1


def _find_function(tree: ast.Module, name: str, file: str):
    owner_name, _, function_name = name.rpartition(".")
    scope, owner = tree.body, None
    if owner_name:
        classes = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == owner_name]
        if not classes:
            raise ExtractError(
                f"{file}: no class {owner_name}; name the function as Class.method or function"
            )
        owner = classes[0]
        scope = owner.body
    for node in scope:
        if isinstance(node, _FUNCTIONS) and node.name == function_name:
            return owner, node
    raise ExtractError(f"{file}: no function {name}; name a top-level function or Class.method")


def _descend(region: Region, block: list[ast.stmt], first: int, last: int, levels: list) -> None:
    """Narrow to the innermost block holding the whole region; `levels` = (owner, block, hi) outer->inner."""
    hits = [i for i, s in enumerate(block) if s.end_lineno >= first and s.lineno <= last]
    if not hits:
        raise ExtractError(f"{region.file}: no statement on lines {first}-{last}; move the anchors onto code")
    lo, hi = hits[0], hits[-1]
    if lo == hi:
        statement = block[lo]
        inner = _inner_block(statement, first, last)
        if inner is not None:
            if isinstance(statement, _FUNCTIONS):
                region.function, region.cls = statement, _owner_class(levels)
                levels = []
            levels = [*levels, (statement, block, lo)]
            _descend(region, inner, first, last, levels)
            return
    _refuse_partial(region.file, block[lo], block[hi], first, last)
    region.statements = block[lo : hi + 1]
    region.after = _after(levels, block, hi)
    closing = region.statements[-1]
    if region.function is not None and block is region.function.body and closing is block[-1]:
        if isinstance(closing, ast.Return) and closing.value is not None:  # the function's own last word
            region.final_return = region.statements.pop()


def _inner_block(statement: ast.stmt, first: int, last: int) -> list[ast.stmt] | None:
    """The sub-block of a compound statement that holds lines first..last, header lines excluded."""
    floor = statement.lineno  # a region touching the header line takes the whole statement
    for block in _sub_blocks(statement):
        if floor < first and last <= block[-1].end_lineno:
            return block
        floor = block[-1].end_lineno
    return None


def _sub_blocks(statement: ast.stmt):
    for name in _BLOCK_FIELDS:
        block = getattr(statement, name, None)
        if isinstance(block, list) and block and isinstance(block[0], ast.stmt):
            yield block
    for handler in getattr(statement, "handlers", []):
        yield handler.body
    for case in getattr(statement, "cases", []):
        yield case.body


def _owner_class(levels: list) -> ast.ClassDef | None:
    return levels[-1][0] if levels and isinstance(levels[-1][0], ast.ClassDef) else None


def _refuse_partial(file: str, first_statement, last_statement, first: int, last: int) -> None:
    ends = (
        (first_statement, first > first_statement.lineno),
        (last_statement, last < last_statement.end_lineno),
    )
    for statement, inside in ends:
        if _is_compound(statement) and inside:
            raise ExtractError(
                f"{file}: the region covers only part of the {_kind(statement)} on line {statement.lineno}; "
                "cover it whole or keep the region inside one of its blocks"
            )


def _is_compound(statement: ast.stmt) -> bool:
    return any(True for _ in _sub_blocks(statement))


def _kind(statement: ast.stmt) -> str:
    return f"`{type(statement).__name__.lower()}`"


def _after(levels: list, block: list[ast.stmt], hi: int) -> list[list[ast.stmt]]:
    segments = [block[hi + 1 :]]
    inner_block = block
    for owner, outer_block, index in reversed(levels):
        if isinstance(owner, (*_FUNCTIONS, ast.ClassDef)):
            break
        if isinstance(owner, _LOOPS) and inner_block is owner.body:
            segments.append(owner.body)  # the next iteration
        segments.append(outer_block[index + 1 :])
        inner_block = outer_block
    return segments
