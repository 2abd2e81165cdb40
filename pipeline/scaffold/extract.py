"""A module region -> the `<op>_ttnn` function, its call line and the ttnn ops it runs.

Parameters are the names the region reads before writing them (the enclosing function's own
parameters first, in signature order, then the rest by first read); the receiver's attributes
(`self.weight`, `self.config["MEMCFG"]`) become parameters with readable names (`weight`, `memcfg`),
as do the fields of a parameter the region only reads fields of (`weights.w1` -> `w1`).
Returns are the names the region writes that the code after it reads, in the order it reads them.
A pure, unconditional definition the region depends on (`memory_config = ttnn.L1_MEMORY_CONFIG`,
`tokens = x.shape[-2]`: no calls, no `if`) is pulled into the function, as a person would write it;
a definition with a condition stays a parameter, because the test chooses it per mode.
"""

import ast
from dataclasses import dataclass
from pathlib import Path

from pipeline.scaffold import bindings, ops, passed, render
from pipeline.scaffold import region as regions
from pipeline.scaffold.dataflow import (
    Flow,
    chain_nodes,
    container_chain,
    containers,
    readable_name,
    receiver_chain,
)
from pipeline.scaffold.region import ExtractError, Region

# The nodes of a definition that can be pulled in: reads, constants and arithmetic, no calls.
_READS = (ast.Name, ast.Attribute, ast.Subscript, ast.Constant, ast.Tuple, ast.Slice, ast.expr_context)
_PURE = (*_READS, ast.BinOp, ast.UnaryOp, ast.operator, ast.unaryop)
_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)
_LOOPS = (ast.For, ast.AsyncFor, ast.While)


@dataclass(frozen=True)
class Parameter:
    name: str  # in the extracted function
    argument: str  # what the module passes, e.g. `self.weight`


@dataclass(frozen=True)
class Extraction:
    function_name: str
    parameters: tuple[Parameter, ...]
    returns: tuple[str, ...]
    source: str  # the function definition
    call: str  # the statement that replaces the region in the module
    ops: tuple[str, ...]  # ttnn ops in first-call order
    op_sequence: tuple[str, ...]  # every ttnn call in execution order (loop bodies once)
    ccl_ops: tuple[str, ...]
    deallocated: tuple[str, ...]  # parameters the region deallocates (a test must make them afresh)
    imports: tuple[str, ...]  # what the function needs from the module's namespace
    file: str
    lines: tuple[int, int]
    where: str = ""  # the enclosing function, e.g. TopKRouter.__call__
    first_call_arguments: tuple[str, ...] = ()  # the first ttnn op's arguments, positional then keyword
    matmul_b_arguments: tuple[str, ...] = ()  # input_tensor_b of each matmul/linear the region calls
    # (index into op_sequence, keyword, parameter): a parameter passed as a setting of an op (`k=top_k`)
    settings: tuple[tuple[int, str, str], ...] = ()
    # per op of op_sequence: its tensor arguments in the profiler's input order (positional, then tensor
    # keywords), a parameter by its name, anything else as written; () for the ops of called functions
    op_arguments: tuple[tuple[str, ...], ...] = ()
    op_targets: tuple[str, ...] = ()  # per op: the name its result is assigned to, "" when none
    # (parameter, its fields): a container the region passes whole to a function of its module
    passed: tuple[tuple[str, tuple[str, ...]], ...] = ()

    @property
    def parameter_names(self) -> list[str]:
        return [p.name for p in self.parameters]


def extract_file(
    path: Path,
    function_name: str,
    *,
    file: str = "",
    module: str = "",
    start: str = "",
    end: str = "",
    lines: tuple[int, int] | None = None,
    function: str = "",
) -> Extraction:
    """Exactly one way of naming the region: anchors (`start`, `end`), `lines` or `function`."""
    file = file or str(path)
    try:
        source = Path(path).read_text()
    except OSError as error:
        raise ExtractError(f"{file}: cannot read ({error.strerror}); give the module path") from None
    if sum(bool(way) for way in (start or end, lines, function)) != 1:
        raise ExtractError(
            f"{file}: name the region one way: start and end anchors, a line range or a function"
        )
    if function:
        region = regions.by_function(source, function, file)
    elif lines:
        region = regions.by_lines(source, *lines, file)
    else:
        region = regions.by_anchors(source, start, end, file)
    return extract(region, function_name, module)


def extract(region: Region, function_name: str, module: str = "") -> Extraction:
    _refuse_control_flow(region)
    receiver = region.receiver
    tail = [region.final_return] if region.final_return is not None else []
    attributes = receiver_chain(receiver, _mutated_attributes(region.statements, receiver))
    function_locals = bindings.function_locals(region.function) if region.function else set()
    globals_ = bindings.bound_names(region.tree.body) - function_locals
    outside = Flow(chain=attributes).block(region.statements + tail).reads
    candidates = {
        k
        for k in outside
        if k.isidentifier() and k != receiver and _is_parameter(k, function_locals, globals_)
    }
    split = containers(region.statements + tail, candidates)
    attributes = container_chain(attributes, split)
    hoisted = _hoisted(region, attributes, function_locals, globals_, split)
    configs = _config_arguments(region, hoisted + region.statements + tail, attributes, globals_)
    chain = _either(configs, attributes)

    flow = Flow(chain=chain).block(hoisted)
    flow.written = {}
    flow.block(region.statements + tail)
    after = Flow(chain=chain)
    for segment in region.after:
        after.block(segment)
    _refuse_attribute_stores(region, flow, after, receiver)

    is_parameter = {key: _is_parameter(key, function_locals, globals_) for key in flow.reads}
    returns = [key for key in after.reads if key in flow.written and key.isidentifier()]
    order = [n for n in bindings.parameter_names(region.function) if n != receiver] if region.function else []
    keys = sorted(
        (k for k in flow.reads if is_parameter[k]), key=lambda k: order.index(k) if k in order else len(order)
    )
    # A returned name the region binds on some paths only keeps its earlier value on the others.
    keys += [k for k in returns if k not in flow.defined and k not in keys]

    code = hoisted + region.statements + tail
    found = chain_nodes(code, chain)
    nodes = {key: node for node, key in reversed(found)}  # the first occurrence of each
    preferred = {key: keyword for key, keyword in configs.values()}
    names = _chain_names(nodes, preferred, code, function_name)
    parameters = tuple(Parameter(names.get(k, k), _argument(region, nodes.get(k), k)) for k in keys)
    renames = [(node, names[key]) for node, key in found]
    source = _function_source(region, function_name, parameters, returns, hoisted, renames)
    used_globals = [k for k in flow.reads if k in globals_ and k not in bindings.BUILTINS]
    calls = ops.op_calls(code, region.tree, region.cls, receiver)
    sequence = [call.op for call in calls]
    region_ops = list(dict.fromkeys(sequence))
    parameter_of = {k: p.name for k, p in zip(keys, parameters, strict=True)}
    parameter_of.update(_aliases(hoisted, found, names, parameter_of))
    whole = passed.passed_fields(
        code, region.tree, region.cls, receiver, {k for k in keys if k.isidentifier()}
    )
    parameter_of.update(_aliases(region.statements, found, names, parameter_of, set(whole)))
    name = ops.namer(found, names, parameter_of)
    return Extraction(
        function_name=function_name,
        parameters=parameters,
        returns=tuple(returns) if region.final_return is None else (),
        source=source,
        call=render.call_text(
            function_name, [p.argument for p in parameters], returns, region.final_return is not None
        ),
        ops=tuple(region_ops),
        op_sequence=tuple(sequence),
        ccl_ops=tuple(op for op in region_ops if ops.is_ccl(op)),
        deallocated=_deallocated(region, parameters, keys, flow),
        imports=tuple(bindings.import_lines(region.tree, module, used_globals) if module else used_globals),
        file=region.file,
        lines=region.lines,
        where=_where(region),
        settings=ops.op_settings(calls, name),
        op_arguments=ops.op_arguments(calls, name),
        op_targets=ops.op_targets(calls, name),
        passed=tuple((parameter_of[k], whole[k]) for k in keys if k in whole),
        **_tensor_arguments(source, ops.ttnn_aliases(region.tree)),
    )


def _aliases(statements, found, names: dict, parameter_of: dict, containers=frozenset()) -> dict[str, str]:
    """`block = args.block_size` (or `= other_parameter`), bound once: `block` stands for that parameter,
    or for that field of a container the region passes whole (`args.block_size`)."""
    by_node = {id(node): names[key] for node, key in found if key in names}
    once = bindings.assigned_once(statements)
    aliases = {}
    for statement in statements:
        if not (isinstance(statement, ast.Assign) and len(statement.targets) == 1):
            continue
        target, value = statement.targets[0], statement.value
        parameter = by_node.get(id(value)) or (
            parameter_of.get(value.id) if isinstance(value, ast.Name) else None
        )
        if parameter is None and ops.region_key(value, None) and isinstance(value, ast.Attribute):
            head = value.value.id
            parameter = f"{parameter_of[head]}.{value.attr}" if head in containers else None
        if parameter and isinstance(target, ast.Name) and target.id in once:
            aliases[target.id] = parameter
    return aliases


def _refuse_control_flow(region: Region) -> None:
    """Statements that leave the region some other way than falling off its end."""

    def visit(node: ast.AST, in_loop: bool) -> None:
        line = f"{region.file}:{getattr(node, 'lineno', '?')}"
        if isinstance(node, ast.Return):
            raise ExtractError(f"{line}: the region returns from {_where(region)}; end it before the return")
        if isinstance(node, ast.Yield | ast.YieldFrom | ast.Await):
            word = "awaits" if isinstance(node, ast.Await) else "yields"
            raise ExtractError(f"{line}: the region {word} inside {_where(region)}; end it before that")
        if isinstance(node, ast.Break | ast.Continue) and not in_loop:
            word = type(node).__name__.lower()
            raise ExtractError(
                f"{line}: the region's `{word}` leaves a loop around the region; include the whole loop"
            )
        if isinstance(node, _SCOPES):
            return
        for child in ast.iter_child_nodes(node):
            inside = in_loop or (isinstance(node, _LOOPS) and child in getattr(node, "body", ()))
            visit(child, inside)

    for statement in region.statements:
        visit(statement, False)


def _refuse_attribute_stores(region: Region, flow: Flow, after: Flow, receiver: str | None) -> None:
    nodes = (n for segment in region.after for s in segment for n in ast.walk(s))
    later = {ast.unparse(n) for n in nodes if isinstance(n, ast.Attribute) and isinstance(n.ctx, ast.Load)}
    for target in flow.attribute_stores:
        if ast.unparse(target) in later:
            raise ExtractError(
                f"{region.file}:{target.lineno}: the region assigns {ast.unparse(target)}, "
                "which later code reads; "
                "end the region before that assignment"
            )
    for key, node in flow.written.items():
        if not key.isidentifier() and (key in after.reads or _read_elsewhere(region, receiver, node)):
            raise ExtractError(
                f"{region.file}:{node.lineno}: the region assigns {key}, which later code reads; "
                "end the region before that assignment"
            )


def _read_elsewhere(region: Region, receiver: str | None, target: ast.expr) -> bool:
    """Does any other code of the class read this attribute of the receiver?"""
    if region.cls is None or not isinstance(target, ast.Attribute):
        return False
    first, last = region.lines
    for node in ast.walk(region.cls):
        if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Load) and node.attr == target.attr:
            if (
                isinstance(node.value, ast.Name)
                and node.value.id == receiver
                and not first <= node.lineno <= last
            ):
                return True
    return False


def _mutated_attributes(statements, receiver: str | None) -> set[str]:
    """Receiver attributes the region stores into (`self.a[...] = `, `self.a.b = `)."""
    mutated = set()
    for node in (n for s in statements for n in ast.walk(s)):
        if isinstance(node, ast.Attribute | ast.Subscript) and isinstance(node.ctx, ast.Store | ast.Del):
            root = node.value
            while isinstance(root, ast.Attribute | ast.Subscript):
                if (
                    isinstance(root, ast.Attribute)
                    and isinstance(root.value, ast.Name)
                    and root.value.id == receiver
                ):
                    mutated.add(root.attr)
                root = root.value
    return mutated


def _hoisted(region: Region, chain, function_locals, globals_, split: set[str]) -> list[ast.stmt]:
    """Pure definitions before the region, at the top of the function, of names the region needs; they may
    read fields of the containers the region's parameters are `split` from (`block = args.block_size`)."""
    if region.function is None or region.function.body[0] is region.first:
        return []
    body = region.function.body
    counts = _binding_counts(region.function)
    parameters = set(bindings.parameter_names(region.function)) - {region.receiver}
    before = [s for s in body if isinstance(s, ast.Assign) and s.end_lineno < region.first.lineno]
    definitions = {
        s.targets[0].id: s for s in before if len(s.targets) == 1 and isinstance(s.targets[0], ast.Name)
    }
    chosen: dict[str, ast.stmt] = {}

    def hoistable(name: str, visiting: frozenset) -> bool:
        statement = definitions.get(name)
        if statement is None or counts.get(name) != 1 or name in visiting:
            return False
        if not all(isinstance(n, _PURE) for n in ast.walk(statement.value)):
            return False
        reads = Flow(chain=chain).block([ast.Expr(statement.value)]).reads
        for read in reads:
            if read.partition(".")[0] in split:
                continue
            if not read.isidentifier() or read == region.receiver:
                return False
            allowed = (
                read in globals_ or read in bindings.BUILTINS or (read in parameters and not counts.get(read))
            )
            if not allowed and not (read in function_locals and hoistable(read, visiting | {name})):
                return False
        chosen[name] = statement
        return True

    for name in Flow(chain=chain).block(region.statements).reads:
        hoistable(name, frozenset())
    return sorted(chosen.values(), key=lambda s: s.lineno)


def _config_arguments(region: Region, code, chain, globals_: set[str]) -> dict[int, tuple[str, str]]:
    """Keyword arguments of ttnn ops computed by a call from the caller's values
    (`memory_config=activation_memory_config(mode)`): id(node) -> (key, keyword). They become parameters
    named after the keyword, because the test chooses them per mode, like a conditional definition."""
    outer = Flow(chain=chain).block(code)
    aliases = ops.ttnn_aliases(region.tree)
    found = {}
    for call in (n for statement in code for n in ast.walk(statement) if isinstance(n, ast.Call)):
        root = call.func
        while isinstance(root, ast.Attribute):
            root = root.value
        if not (isinstance(root, ast.Name) and root.id in aliases):
            continue
        for keyword in call.keywords:
            if ops.is_ttnn_type(keyword.value, aliases):  # `ttnn.Tile([block, 32])`: a value, not a config
                continue
            if not (keyword.arg and isinstance(keyword.value, ast.Call)):
                continue
            reads = Flow(chain=chain).block([ast.Expr(keyword.value)]).reads
            outside = [
                r for r in reads if r in outer.reads and r not in globals_ and r not in bindings.BUILTINS
            ]
            if outside and not any(r in outer.written for r in reads):
                found[id(keyword.value)] = (ast.unparse(keyword.value), keyword.arg)
    return found


def _either(configs: dict, chain):
    def named(node: ast.expr) -> str | None:
        config = configs.get(id(node))
        return config[0] if config else chain(node)

    return named


def _binding_counts(function) -> dict[str, int]:
    counts: dict[str, int] = {}
    for statement in function.body:
        for node in _own_scope_nodes(statement):
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store | ast.Del):
                counts[node.id] = counts.get(node.id, 0) + 1
    return counts


def _own_scope_nodes(node: ast.AST):
    yield node
    if isinstance(node, _SCOPES):
        return
    for child in ast.iter_child_nodes(node):
        yield from _own_scope_nodes(child)


def _is_parameter(key: str, function_locals: set[str], globals_: set[str]) -> bool:
    if not key.isidentifier() or key in function_locals:
        return True
    return key not in globals_ and key not in bindings.BUILTINS  # a closure's variable


def _chain_names(nodes: dict, preferred: dict, statements, function_name: str) -> dict[str, str]:
    taken = {n.id for s in statements for n in ast.walk(s) if isinstance(n, ast.Name)} | {function_name}
    names = {}
    for key, node in nodes.items():
        name = preferred.get(key) or readable_name(node)
        candidate, suffix = name, 2
        if candidate in taken and isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            name = candidate = f"{node.value.id}_{name}"  # `weights.bias` beside a `bias`: weights_bias
        while candidate in taken:
            candidate, suffix = f"{name}_{suffix}", suffix + 1
        names[key] = candidate
        taken.add(candidate)
    return names


def _argument(region: Region, node: ast.expr | None, key: str) -> str:
    if node is None:
        return key
    return ast.get_source_segment(region.source, node) or key


def _function_source(region: Region, name: str, parameters, returns, hoisted, renames) -> str:
    source_lines = region.source.splitlines()
    body = [line for s in hoisted for line in render.statement_lines(source_lines, [s], renames)]
    if region.statements:
        body += render.statement_lines(source_lines, region.statements, renames)
    tail = ""
    if region.final_return is not None:
        tail = "\n".join(render.statement_lines(source_lines, [region.final_return], renames))
    first, last = region.lines
    docstring = f"Lines {first}-{last} of {region.file} ({_where(region)}), as a function."
    text = render.function_text(name, [p.name for p in parameters], docstring, body, returns, tail)
    try:
        compile(text, region.file, "exec", dont_inherit=True)
    except SyntaxError as error:
        raise ExtractError(
            f"{region.file}: the extracted function does not parse ({error.msg}); "
            "choose a region of whole statements"
        ) from None
    return text


def _where(region: Region) -> str:
    if region.function is None:
        return "the module"
    return f"{region.cls.name}.{region.function.name}" if region.cls else region.function.name


def _deallocated(region: Region, parameters, keys, flow: Flow) -> tuple[str, ...]:
    """Parameters passed to `ttnn.deallocate` before the region rebinds them."""
    aliases = ops.ttnn_aliases(region.tree)
    by_key = {key: parameter.name for key, parameter in zip(keys, parameters, strict=True)}
    found = []
    for node in (n for s in region.statements for n in ast.walk(s)):
        function = getattr(node, "func", None)
        is_ttnn = isinstance(function, ast.Attribute) and isinstance(function.value, ast.Name)
        if is_ttnn and function.attr == "deallocate" and function.value.id in aliases and node.args:
            key = ast.unparse(node.args[0])
            rebound = key in flow.written and flow.written[key].lineno < node.lineno
            if key in by_key and not rebound:
                found.append(by_key[key])
    return tuple(dict.fromkeys(found))


def _tensor_arguments(function_source: str, aliases: set[str]) -> dict:
    """Which arguments the CSV's tensor columns describe: the first op's inputs, the matmuls' `b`."""
    calls = []

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):  # arguments run before the call
            visit(child)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            root = node.func.value
            while isinstance(root, ast.Attribute):
                root = root.value
            name = node.func.attr
            if (
                isinstance(root, ast.Name)
                and root.id in aliases
                and name[:1].islower()
                and name != "deallocate"
            ):
                calls.append(node)

    visit(ast.parse(function_source).body[0])
    first = calls[0] if calls else None
    keywords = [k for k in first.keywords if k.arg not in ops.NOT_INPUTS] if first else []
    arguments = (
        [ast.unparse(a) for a in first.args] + [ast.unparse(k.value) for k in keywords] if first else []
    )
    weights = []
    for call in calls:
        if "matmul" in call.func.attr or call.func.attr == "linear":
            keyword_b = [k.value for k in call.keywords if k.arg == "input_tensor_b"]
            b = call.args[1] if len(call.args) > 1 else (keyword_b[0] if keyword_b else None)
            if b is not None:
                weights.append(ast.unparse(b))
    return {"first_call_arguments": tuple(arguments), "matmul_b_arguments": tuple(weights)}
