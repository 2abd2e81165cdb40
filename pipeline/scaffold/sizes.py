"""Sizes the region computes from other sizes: equations that give a value no op row shows.

`tokens = hidden_states.shape[-2]` and `total_tokens = tokens * args.dispatch_devices`, with
`total_tokens` a dimension of a view's target shape (32 in the profiled run) and `hidden_states` a
profiled tensor (16 rows), give `args.dispatch_devices` = 32 / 16 = 2. Only products are solved: the
sizes a model derives from a batch, a mesh axis or a block count.
"""

import ast
from math import prod

from pipeline.scaffold.bindings import assigned_once

Equation = tuple[str, tuple[str, ...]]  # (name, the factors whose product it is)


def products(statements, name) -> tuple[Equation, ...]:
    """`name = a * b * ...` (a name, a field, `x.shape[i]` or an integer each), bound once in
    `statements`; `name` is ops.namer's, in the region's terms."""
    once = assigned_once(statements)
    found = []
    for statement in statements:
        if not (isinstance(statement, ast.Assign) and len(statement.targets) == 1):
            continue
        target = statement.targets[0]
        factors = _factors(statement.value, name)
        if isinstance(target, ast.Name) and target.id in once and factors:
            found.append((name(target, None), factors))
    return tuple(found)


def shape_read(term: str) -> tuple[str, int] | None:
    """`x.shape[-2]` -> (x, -2)."""
    tensor, marker, index = term.partition(".shape[")
    if not marker or not index.endswith("]"):
        return None
    try:
        return tensor, int(index[:-1])
    except ValueError:
        return None


def integer(text: str | None) -> int | None:
    """`"32"`, `"-1"` -> the integer; None for anything else (a float, an expression, None)."""
    return int(text) if text is not None and text.lstrip("-").isdigit() else None


def solve(equations: tuple[Equation, ...], known, wanted: str) -> int | None:
    """The value of `wanted` the equations give from `known(term) -> int | None`; None if they do not."""
    values: dict[str, int | None] = {}

    def value(term: str) -> int | None:
        if integer(term) is not None:
            return integer(term)
        if term not in values:
            values[term] = known(term)
        return values[term]

    for _ in range(len(equations) + 1):
        if value(wanted) is not None:
            return value(wanted)
        for target, factors in equations:
            unknown = [term for term in (target, *factors) if value(term) is None]
            if len(unknown) != 1 or (unknown[0] != target and factors.count(unknown[0]) != 1):
                continue
            rest = prod(value(f) for f in factors if f != unknown[0])
            if unknown[0] == target:
                values[target] = rest
            elif rest and value(target) % rest == 0:
                values[unknown[0]] = value(target) // rest
    return value(wanted)


def _factors(node: ast.expr, name) -> tuple[str, ...] | None:
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult):
        left, right = _factors(node.left, name), _factors(node.right, name)
        return left + right if left is not None and right is not None else None
    if isinstance(node, ast.Constant) and type(node.value) is int:
        return (str(node.value),)
    index = _constant_index(node.slice) if isinstance(node, ast.Subscript) else None
    if index is not None and isinstance(node.value, ast.Attribute) and node.value.attr == "shape":
        tensor = name(node.value.value, None, whole=True)
        return (f"{tensor}.shape[{index}]",) if tensor else None
    whole = name(node, None, whole=True)
    return (whole,) if whole else None


def _constant_index(node: ast.expr) -> int | None:
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        inner = _constant_index(node.operand)
        return -inner if inner is not None else None
    return node.value if isinstance(node, ast.Constant) and type(node.value) is int else None
