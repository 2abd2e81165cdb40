"""The ttnn ops a region calls, in execution order, and which of them are collectives (CCLs).

Calls to functions of the same module and to methods of the region's class are followed, so a CCL
inside a helper the region calls still counts.
"""

import ast
import re

from pipeline.opsperf import COLLECTIVES

# all_gather, reduce_scatter, ...: the source spellings of the op codes the profiler reports
CCL_SOURCE_NAMES = tuple(re.sub(r"(?<!^)(?=[A-Z])", "_", code).lower() for code in COLLECTIVES)


def is_ccl(op: str) -> bool:
    """`ttnn.all_gather`, `ttnn.experimental.reduce_scatter_minimal_async`, `AllGatherAsync`, ..."""
    return any(code in op for code in COLLECTIVES) or any(name in op.lower() for name in CCL_SOURCE_NAMES)


def ttnn_aliases(tree: ast.Module) -> set[str]:
    """The names the module imports ttnn as (`import ttnn`, `import ttnn as tt`)."""
    aliases = set()
    for node in tree.body:
        if isinstance(node, ast.Import):
            aliases.update(a.asname or a.name for a in node.names if a.name == "ttnn")
    return aliases


def op_sequence(statements, tree: ast.Module, cls: ast.ClassDef | None, receiver: str | None) -> list[str]:
    """`ttnn.<op>` calls of `statements` (and of what they call in this module) in execution order, as
    written (each loop body once); types (`ttnn.Shape(...)`, `ttnn.Tile(...)`) are not ops."""
    return [name for name, _ in op_calls(statements, tree, cls, receiver)]


def op_calls(statements, tree: ast.Module, cls: ast.ClassDef | None, receiver: str | None) -> list:
    """`op_sequence` as (op, call node or None): the node when `statements` make the call themselves,
    None for the calls of the functions they call."""
    functions = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)}
    methods = {
        n.name: n for n in (cls.body if cls else []) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)
    }
    aliases, ops, active = ttnn_aliases(tree), [], set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):  # arguments run before the call
            visit(child)
        if not isinstance(node, ast.Call):
            return
        dotted = _dotted(node.func)
        if dotted and dotted[0] in aliases and len(dotted) > 1 and not dotted[-1][:1].isupper():
            ops.append((".".join(["ttnn", *dotted[1:]]), None if active else node))
        elif dotted and len(dotted) == 1 and dotted[0] in functions:
            follow(functions[dotted[0]])
        elif dotted and len(dotted) == 2 and dotted[0] == receiver and dotted[1] in methods:
            follow(methods[dotted[1]])

    def follow(function) -> None:
        if id(function) not in active:  # recursion runs the function's ops once
            active.add(id(function))
            for statement in function.body:
                visit(statement)
            active.discard(id(function))

    for statement in statements:
        visit(statement)
    return ops


def op_settings(calls, found, names: dict, parameter_of: dict) -> tuple:
    """(op index, keyword, parameter) for each keyword argument of the region's own ttnn calls that is
    a parameter as a whole: a name the region reads, a receiver attribute or an op config.

    `calls`: op_calls of the region; `found`: (node, key) of its receiver attributes and op configs;
    `names`: their key -> parameter name; `parameter_of`: the other parameters' key -> name."""
    by_node = {id(node): names[key] for node, key in found if key in names}
    settings = []
    for index, (_, call) in enumerate(calls):
        for keyword in call.keywords if call is not None else ():
            value = keyword.value
            parameter = by_node.get(id(value))
            if parameter is None and isinstance(value, ast.Name):
                parameter = parameter_of.get(value.id)
            if keyword.arg and parameter:
                settings.append((index, keyword.arg, parameter))
    return tuple(settings)


def _dotted(node: ast.expr) -> list[str] | None:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    parts.append(node.id)
    return parts[::-1]
