"""The ttnn ops a region calls, in execution order, and which of them are collectives (CCLs).

Calls to functions of the same module and to methods of the region's class are followed, so a CCL
inside a helper the region calls still counts.
"""

import ast
import re
from typing import NamedTuple

from pipeline.opsperf import COLLECTIVES
from pipeline.scaffold.bindings import assigned_once, call_bindings, callee_resolver, parameter_names

SHAPE = "shape:"  # `shape:<dim>/<rank>`: a dimension of a view op's target shape
# all_gather, reduce_scatter, ...: the source spellings of the op codes the profiler reports
CCL_SOURCE_NAMES = tuple(re.sub(r"(?<!^)(?=[A-Z])", "_", code).lower() for code in COLLECTIVES)

SCALAR = "scalar"  # the setting of a positional scalar operand (`ttnn.mul(h, alpha)`)


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


class Frame(NamedTuple):
    """A function of the module the region calls, as it runs there: which of its names stand for the
    region's (a parameter bound to the region's `weights`, `block = args.block_size` to `args.block_size`)."""

    function: str
    bound: dict[str, str]  # its name -> the region's key (`weights`, `args.block_size`, `experts_input`)


class OpCall(NamedTuple):
    op: str  # `ttnn.<name>`
    node: ast.Call
    frame: Frame | None  # None: the region's own call; else the followed function it runs in
    target: ast.expr | None  # what names its result: `name = ttnn.op(...)`'s name, or the call itself
    # when it is another call's argument (`ttnn.to_layout(ttnn.reshape(x, ...), ...)`); None otherwise


def op_sequence(statements, tree: ast.Module, cls: ast.ClassDef | None, receiver: str | None) -> list[str]:
    """`ttnn.<op>` calls of `statements` (and of what they call in this module) in execution order, as
    written (each loop body once); types (`ttnn.Shape(...)`, `ttnn.Tile(...)`) are not ops."""
    return [call.op for call in op_calls(statements, tree, cls, receiver)]


def op_calls(statements, tree: ast.Module, cls: ast.ClassDef | None, receiver: str | None) -> list[OpCall]:
    """`op_sequence` as OpCalls: each call node, and the frame of the followed function it runs in."""
    resolve = callee_resolver(tree, cls, receiver)
    aliases, calls, active, targets = ttnn_aliases(tree), [], set(), {}

    def visit(node: ast.AST, frame: Frame | None) -> None:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            targets[id(node.value)] = node.targets[0]
        if isinstance(node, ast.Call):
            targets.update((id(a), a) for a in [*node.args, *(k.value for k in node.keywords)])
        for child in ast.iter_child_nodes(node):  # arguments run before the call
            visit(child, frame)
        if not isinstance(node, ast.Call):
            return
        dotted = _dotted(node.func)
        if dotted and dotted[0] in aliases and len(dotted) > 1 and not dotted[-1][:1].isupper():
            calls.append(OpCall(".".join(["ttnn", *dotted[1:]]), node, frame, targets.get(id(node))))
        elif resolve(node) is not None:
            follow(*resolve(node), node, frame)

    def follow(function, skip: int, call: ast.Call, frame: Frame | None) -> None:
        if id(function) not in active:  # recursion runs the function's ops once
            active.add(id(function))
            inner = _frame(function, call, frame, skip)
            for statement in function.body:
                visit(statement, inner)
            active.discard(id(function))

    for statement in statements:
        visit(statement, None)
    return calls


def region_key(node: ast.expr, frame: Frame | None) -> str | None:
    """What `node` is in the region's terms: a name (`x`) or a field of one (`args.block_size`); None
    for anything else, and for a followed function's own locals."""
    if isinstance(node, ast.Name):
        return node.id if frame is None else frame.bound.get(node.id)
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
        head = node.value.id if frame is None else frame.bound.get(node.value.id)
        return f"{head}.{node.attr}" if head else None
    return None


def local_key(node: ast.expr, frame: Frame | None) -> str:
    """`region_key`, else the expression as written, qualified by the followed function it is local to."""
    key = region_key(node, frame)
    if key is not None:
        return key
    return ast.unparse(node) if frame is None else f"{frame.function}:{ast.unparse(node)}"


def _frame(function, call: ast.Call, caller: Frame | None, skip: int) -> Frame:
    """The callee's parameters bound to the caller's region keys, plus its single `name = <bound field>`."""
    bound = {}
    for name, argument in call_bindings(function, call, skip):
        key = region_key(argument, caller)
        if key is not None:
            bound[name] = key
    frame = Frame(function.name, bound)
    once = assigned_once(function.body) - set(parameter_names(function))
    for statement in function.body:
        if isinstance(statement, ast.Assign) and len(statement.targets) == 1:
            target = statement.targets[0]
            key = region_key(statement.value, frame) if isinstance(target, ast.Name) else None
            if key is not None and target.id in once:
                bound[target.id] = key
    return frame


# Keyword arguments that never name an input tensor of the op's row: settings and output buffers.
NOT_INPUTS = frozenset(
    "epsilon memory_config compute_kernel_config program_config dtype output_dtype dim k layout sorted "
    "largest numeric_stable core_grid activation transpose_a transpose_b num_links topology cluster_axis "
    "queue_id output_tensor optional_output_tensor output_tile min max".split()
)
# ttnn ops that only reinterpret a tensor's shape: the profiler may show no row for them.
VIEWS = frozenset({"reshape", "view", "squeeze", "unsqueeze"})


def is_ttnn_type(node: ast.expr, aliases: set[str]) -> bool:
    """`ttnn.Tile(...)`, `ttnn.Shape(...)`: a value built from a ttnn type, not an op or a config."""
    dotted = _dotted(node.func) if isinstance(node, ast.Call) else None
    return bool(dotted) and dotted[0] in aliases and len(dotted) > 1 and dotted[-1][:1].isupper()


def namer(found, names: dict, parameter_of: dict):
    """(node, frame) -> the name the extracted function gives it: a parameter's name, a field of a
    container parameter (`args.block_size`), a local's name, else the expression (qualified by the
    followed function it is local to); with `whole`, None instead of an expression.

    `found`: (node, key) of the region's receiver attributes and op configs; `names`: their key ->
    parameter name; `parameter_of`: the other parameters' (and their aliases') key -> name."""
    by_node = {id(node): names[key] for node, key in found if key in names}

    def name(node: ast.expr, frame: Frame | None, whole: bool = False) -> str | None:
        if frame is None and id(node) in by_node:
            return by_node[id(node)]
        if whole and region_key(node, frame) is None:
            return None
        key = local_key(node, frame)
        if key in names or key in parameter_of:
            return names.get(key) or parameter_of[key]
        head, dot, field = key.partition(".")
        return parameter_of[head] + dot + field if dot and head in parameter_of else key

    return name


def op_arguments(calls: list[OpCall], name) -> tuple:
    """Per op call: its arguments that may be input tensors, in the profiler's order (positional, then
    keywords that are not settings), each as `name` (namer) calls it."""
    every = []
    for call in calls:
        keywords = [k.value for k in call.node.keywords if k.arg and k.arg not in NOT_INPUTS]
        arguments = [a for a in [*call.node.args, *keywords] if not isinstance(a, ast.Constant)]
        every.append(tuple(name(a, call.frame) for a in arguments))
    return tuple(every)


def op_targets(calls: list[OpCall], name) -> tuple:
    """Per op call: what names its result where later ops read it (op_arguments' terms), else ""."""
    return tuple(name(call.target, call.frame) if call.target is not None else "" for call in calls)


def op_settings(calls: list[OpCall], name) -> tuple:
    """(op index, keyword, name) for each argument of the region's ttnn calls (and of the functions it
    follows) that is a name in the region's terms, as a whole: a parameter, a field of a container
    parameter (`args.block_size`), a receiver attribute, an op config or a local. Keyword arguments,
    positional scalars (`ttnn.mul(x, alpha)`: the row's scalar, if not a tensor input) and the
    dimensions of a view's target shape (`reshape(x, (1, n, block, hidden))`)."""
    settings = []
    for index, call in enumerate(calls):
        pairs = [(k.arg, k.value) for k in call.node.keywords if k.arg]
        pairs += [(SCALAR, value) for value in call.node.args[1:]]
        shape = call.node.args[1] if len(call.node.args) > 1 else None
        if call.op.rsplit(".", 1)[-1] in VIEWS and isinstance(shape, ast.Tuple | ast.List):
            pairs += [(f"{SHAPE}{dim}/{len(shape.elts)}", v) for dim, v in enumerate(shape.elts)]
        for keyword, value in pairs:
            named = name(value, call.frame, whole=True)
            if named is not None:
                settings.append((index, keyword, named))
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
