"""The ttnn ops a region calls, in execution order, and which of them are collectives (CCLs).

Calls to functions of the same module and to methods of the region's class are followed, so a CCL
inside a helper the region calls still counts.
"""

import ast
import re

from pipeline.opsperf import COLLECTIVES
from pipeline.scaffold.settings import SCALAR  # the setting of a positional scalar operand

SHAPE = "shape:"  # `shape:<dim>/<rank>`: a dimension of a view op's target shape
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


# Keyword arguments that never name an input tensor of the op's row: settings and output buffers.
NOT_INPUTS = frozenset({"epsilon", "memory_config", "compute_kernel_config", "program_config", "dtype",
                        "output_dtype", "dim", "k", "layout", "sorted", "largest", "numeric_stable",
                        "core_grid", "activation", "transpose_a", "transpose_b", "num_links", "topology",
                        "cluster_axis", "queue_id", "output_tensor", "optional_output_tensor",
                        "output_tile", "min", "max"})  # fmt: skip
# ttnn ops that only reinterpret a tensor's shape: the profiler may show no row for them.
VIEWS = frozenset({"reshape", "view", "squeeze", "unsqueeze"})


def is_ttnn_type(node: ast.expr, aliases: set[str]) -> bool:
    """`ttnn.Tile(...)`, `ttnn.Shape(...)`: a value built from a ttnn type, not an op or a config."""
    dotted = _dotted(node.func) if isinstance(node, ast.Call) else None
    return bool(dotted) and dotted[0] in aliases and len(dotted) > 1 and dotted[-1][:1].isupper()


def op_arguments(calls, found, names: dict, parameter_of: dict) -> tuple:
    """Per op call: its arguments that may be input tensors, in the profiler's order (positional, then
    keywords that are not settings), each as the extracted function names it."""
    by_node = {id(node): names[key] for node, key in found if key in names}

    def named(node: ast.expr) -> str:
        if id(node) in by_node:
            return by_node[id(node)]
        return parameter_of.get(node.id, node.id) if isinstance(node, ast.Name) else ast.unparse(node)

    every = []
    for _, call in calls:
        if call is None:
            every.append(())
            continue
        keywords = [k.value for k in call.keywords if k.arg and k.arg not in NOT_INPUTS]
        every.append(tuple(named(a) for a in [*call.args, *keywords] if not isinstance(a, ast.Constant)))
    return tuple(every)


def op_targets(statements, calls) -> tuple:
    """Per op call: the name a plain `name = ttnn.op(...)` assigns its result to, else ""."""
    targets = {}
    for node in (n for s in statements for n in ast.walk(s)):
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            targets[id(node.value)] = node.targets[0].id
    return tuple(targets.get(id(call), "") if call is not None else "" for _, call in calls)


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
        for position, value in enumerate(call.args if call is not None else ()):
            parameter = by_node.get(id(value)) or (
                parameter_of.get(value.id) if isinstance(value, ast.Name) else None
            )
            if position and parameter:  # `ttnn.mul(x, alpha)`: the row's scalar, if not a tensor input
                settings.append((index, SCALAR, parameter))
        if call is not None and _dotted(call.func)[-1] in VIEWS and len(call.args) > 1:
            if isinstance(call.args[1], ast.Tuple | ast.List):  # `reshape(x, (1, n, block, hidden))`
                for dim, value in enumerate(call.args[1].elts):
                    parameter = by_node.get(id(value)) or (
                        parameter_of.get(value.id) if isinstance(value, ast.Name) else None
                    )
                    if parameter:
                        settings.append((index, f"{SHAPE}{dim}/{len(call.args[1].elts)}", parameter))
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
