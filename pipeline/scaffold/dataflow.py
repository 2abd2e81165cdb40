"""Data flow through a run of statements: what they read before writing it, and what they write.

``Flow`` walks statements in execution order keeping the set of names *definitely* bound so far
(branches intersect, loop bodies may not run), so a name read on a path where the statements have
not bound it counts as read from outside. Comprehension and lambda variables are their own scope.
A ``chain`` callback may name attribute/subscript expressions (``self.weight``) so they flow like
variables; ``receiver_chain`` is the one for a method's ``self``.
"""

import ast
from collections.abc import Callable

Chain = Callable[[ast.expr], str | None]
_COMPREHENSIONS = (ast.ListComp, ast.SetComp, ast.GeneratorExp, ast.DictComp)


def _no_chain(node: ast.expr) -> None:
    return None


class Flow:
    def __init__(self, defined=(), chain: Chain = _no_chain):
        self.defined: set[str] = set(defined)  # definitely bound at this point
        self.reads: dict[str, ast.AST] = {}  # read while maybe unbound -> first such read
        self.written: dict[str, ast.AST] = {}  # maybe bound by the statements -> first write
        self.attribute_stores: list[ast.expr] = []  # `obj.attr = ...` targets that are not chains
        self.chain = chain

    # ---- statements ---------------------------------------------------------------------------------

    def block(self, statements) -> "Flow":
        for statement in statements:
            self.statement(statement)
        return self

    def statement(self, node: ast.stmt) -> None:
        handler = getattr(self, f"_{type(node).__name__}", None)
        if handler is not None:
            handler(node)
            return
        for child in ast.iter_child_nodes(node):  # Expr, Return, Raise, Assert, ...: reads only
            if isinstance(child, ast.expr):
                self.expr(child)

    def _Assign(self, node: ast.Assign) -> None:
        self.expr(node.value)
        for target in node.targets:
            self.store(target)

    def _AnnAssign(self, node: ast.AnnAssign) -> None:
        if node.value is not None:
            self.expr(node.value)
            self.store(node.target)

    def _AugAssign(self, node: ast.AugAssign) -> None:
        target = node.target
        key = target.id if isinstance(target, ast.Name) else self.chain(target)
        if key is not None:
            self._read(key, target)
        self.expr(node.value)
        self.store(target)

    def _Delete(self, node: ast.Delete) -> None:
        for target in node.targets:
            if isinstance(target, ast.Name):
                self.defined.discard(target.id)
            else:
                self.expr(target)

    def _If(self, node: ast.If) -> None:
        self.expr(node.test)
        self._branches([lambda: self.block(node.body), lambda: self.block(node.orelse)])

    def _While(self, node: ast.While) -> None:
        self.expr(node.test)
        self._branches([lambda: self.block(node.body), lambda: self.block(node.orelse), lambda: None])

    def _For(self, node: ast.For) -> None:
        self.expr(node.iter)

        def body():
            self.store(node.target)
            self.block(node.body)

        self._branches([body, lambda: self.block(node.orelse), lambda: None])

    _AsyncFor = _For

    def _With(self, node: ast.With) -> None:
        for item in node.items:
            self.expr(item.context_expr)
            if item.optional_vars is not None:
                self.store(item.optional_vars)
        self.block(node.body)

    _AsyncWith = _With

    def _Try(self, node: ast.Try) -> None:
        def handler(h: ast.ExceptHandler):
            def run():
                self.expr(h.type)
                if h.name:
                    self._write(h.name, h)
                self.block(h.body)

            return run

        paths = [lambda: self.block(node.body + node.orelse)] + [handler(h) for h in node.handlers]
        self._branches(paths)
        self.block(node.finalbody)

    _TryStar = _Try

    def _Match(self, node: ast.Match) -> None:
        self.expr(node.subject)

        def case(c: ast.match_case):
            def run():
                for sub in ast.walk(c.pattern):
                    for name in (getattr(sub, "name", None), getattr(sub, "rest", None)):
                        if isinstance(name, str):
                            self._write(name, sub)
                    if isinstance(sub, ast.MatchValue):
                        self.expr(sub.value)
                self.expr(c.guard)
                self.block(c.body)

            return run

        self._branches([case(c) for c in node.cases] + [lambda: None])

    def _FunctionDef(self, node) -> None:
        for expression in [*node.decorator_list, *node.args.defaults, *node.args.kw_defaults]:
            self.expr(expression)
        self._nested_reads(node.body, _argument_names(node.args))
        self._write(node.name, node)

    _AsyncFunctionDef = _FunctionDef

    def _ClassDef(self, node: ast.ClassDef) -> None:
        for expression in [*node.decorator_list, *node.bases, *(k.value for k in node.keywords)]:
            self.expr(expression)
        self._nested_reads(node.body, set())
        self._write(node.name, node)

    def _Import(self, node) -> None:
        for alias in node.names:
            self._write(alias.asname or alias.name.split(".")[0], node)

    _ImportFrom = _Import

    def _branches(self, paths) -> None:
        before, ends = set(self.defined), []
        for path in paths:
            self.defined = set(before)
            path()
            ends.append(self.defined)
        self.defined = set.intersection(*ends)

    def _nested_reads(self, body, bound: set[str]) -> None:
        """A nested function or class reads, from here, the names its body uses but never binds."""
        inner = Flow(bound, self.chain).block(body)
        for key, node in inner.reads.items():
            if key not in inner.written:
                self._read(key, node)

    # ---- targets and expressions --------------------------------------------------------------------

    def store(self, target: ast.expr) -> None:
        if isinstance(target, ast.Name):
            self._write(target.id, target)
        elif isinstance(target, ast.Tuple | ast.List):
            for element in target.elts:
                self.store(element)
        elif isinstance(target, ast.Starred):
            self.store(target.value)
        elif (key := self.chain(target)) is not None:
            self._write(key, target)
        else:  # obj.attr = v / obj[i] = v: reads obj (and i), mutates it
            if isinstance(target, ast.Attribute):
                self.attribute_stores.append(target)
            for child in ast.iter_child_nodes(target):
                if isinstance(child, ast.expr):
                    self.expr(child)

    def expr(self, node: ast.expr | None, shadow: frozenset = frozenset()) -> None:
        if node is None:
            return
        if (key := self.chain(node)) is not None:
            if key.partition(".")[0] not in shadow:
                self._read(key, node)
            return
        if isinstance(node, ast.Name):
            if isinstance(node.ctx, ast.Load) and node.id not in shadow:
                self._read(node.id, node)
        elif isinstance(node, ast.NamedExpr):
            self.expr(node.value, shadow)
            self._write(node.target.id, node.target)
        elif isinstance(node, ast.Lambda):
            for default in [*node.args.defaults, *node.args.kw_defaults]:
                self.expr(default, shadow)
            self.expr(node.body, shadow | _argument_names(node.args))
        elif isinstance(node, _COMPREHENSIONS):
            self._comprehension(node, shadow)
        else:
            for child in _expression_children(node):
                self.expr(child, shadow)

    def _comprehension(self, node, shadow: frozenset) -> None:
        inner = shadow
        for index, generator in enumerate(node.generators):
            self.expr(generator.iter, shadow if index == 0 else inner)  # the first iterable: outer scope
            inner = inner | _stored_names(generator.target)
            for condition in generator.ifs:
                self.expr(condition, inner)
        for element in (node.key, node.value) if isinstance(node, ast.DictComp) else (node.elt,):
            self.expr(element, inner)

    def _read(self, key: str, node: ast.AST) -> None:
        if key not in self.defined and key not in self.reads:
            self.reads[key] = node

    def _write(self, key: str, node: ast.AST) -> None:
        self.defined.add(key)
        self.written.setdefault(key, node)


def receiver_chain(receiver: str | None, unfoldable: set[str]) -> Chain:
    """`self.a` and `self.a[<constant>]...` as one name each; subscripts of `unfoldable` attributes stay
    subscripts (the region stores into them, so their elements are not fixed inputs)."""

    def chain(node: ast.expr) -> str | None:
        if receiver is None:
            return None
        inner, subscripted = node, False
        while isinstance(inner, ast.Subscript) and _constant_key(inner.slice) is not None:
            inner, subscripted = inner.value, True
        if not (isinstance(inner, ast.Attribute) and isinstance(inner.value, ast.Name)):
            return None
        if inner.value.id != receiver or (subscripted and inner.attr in unfoldable):
            return None
        return ast.unparse(node)

    return chain


# Attributes a tensor answers with, not fields of a container: `x.shape` keeps `x` a parameter.
_TENSOR_PROPERTIES = frozenset({"shape", "padded_shape", "logical_shape", "dtype", "layout", "device"})


def containers(statements, candidates: set[str]) -> set[str]:
    """The `candidates` that `statements` use only as `name.field` reads (`weights.w1`, `args.hidden_size`),
    never bare, stored, called or asked a tensor property: each field can be a parameter of its own."""
    parents = parent_map(statements)
    used, bare = set(), set()
    for node in (n for s in statements for n in ast.walk(s)):
        if not (isinstance(node, ast.Name) and node.id in candidates):
            continue
        (used if is_field_read(node, parents) else bare).add(node.id)
    return used - bare


def parent_map(statements) -> dict:
    """id(node) -> its parent, for every node under `statements`."""
    return {
        id(child): parent
        for s in statements
        for parent in ast.walk(s)
        for child in ast.iter_child_nodes(parent)
    }


def is_field_read(node: ast.Name, parents: dict) -> bool:
    """`node.field` read as a value: not stored, not called as a method, not a tensor property (`.shape`).
    `parents`: id(child) -> its parent node."""
    parent = parents.get(id(node))
    return (
        isinstance(node.ctx, ast.Load)
        and isinstance(parent, ast.Attribute)
        and isinstance(parent.ctx, ast.Load)
        and parent.attr not in _TENSOR_PROPERTIES
        and not (isinstance(parents.get(id(parent)), ast.Call) and parents[id(parent)].func is parent)
    )


def container_chain(chain: Chain, names: set[str]) -> Chain:
    """`chain`, and `name.field` of each container `name` as one name."""

    def named(node: ast.expr) -> str | None:
        key = chain(node)
        if key is None and isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            if node.value.id in names and isinstance(node.ctx, ast.Load):
                return ast.unparse(node)
        return key

    return named


def chain_nodes(statements, chain: Chain):
    """Every outermost expression in `statements` the chain names, as (node, key), in source order."""
    found = []

    def visit(node):
        if isinstance(node, ast.expr) and (key := chain(node)) is not None:
            found.append((node, key))
            return
        for child in ast.iter_child_nodes(node):
            visit(child)

    for statement in statements:
        visit(statement)
    return found


def readable_name(node: ast.expr) -> str:
    """`self.weight` -> weight, `self.config["DECODE_MEMCFG"]` -> decode_memcfg, `self.w[0]` -> w_0."""
    keys = []
    while isinstance(node, ast.Subscript):
        keys.append(_constant_key(node.slice))
        node = node.value
    keys.reverse()
    strings = [i for i, key in enumerate(keys) if isinstance(key, str)]
    parts = keys[strings[-1] :] if strings else [node.attr, *keys]
    name = "_".join(str(part) for part in parts).lower()
    name = "".join(c if c.isalnum() or c == "_" else "_" for c in name)
    return name if name[:1].isalpha() or name[:1] == "_" else f"_{name}"


def _constant_key(node: ast.expr):
    if (
        isinstance(node, ast.Constant)
        and isinstance(node.value, str | int)
        and not isinstance(node.value, bool)
    ):
        return node.value
    if (
        isinstance(node, ast.UnaryOp)
        and isinstance(node.op, ast.USub)
        and isinstance(node.operand, ast.Constant)
    ):
        value = node.operand.value
        return -value if isinstance(value, int) and not isinstance(value, bool) else None
    return None


def _expression_children(node: ast.AST):
    """Child expressions, looking through keywords, comprehensions' parts and other non-expr nodes."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.expr):
            yield child
        elif not isinstance(child, ast.expr_context):
            yield from _expression_children(child)


def _argument_names(arguments: ast.arguments) -> frozenset:
    every = [
        *arguments.posonlyargs,
        *arguments.args,
        *arguments.kwonlyargs,
        arguments.vararg,
        arguments.kwarg,
    ]
    return frozenset(a.arg for a in every if a is not None)


def _stored_names(target: ast.expr) -> frozenset:
    return frozenset(n.id for n in ast.walk(target) if isinstance(n, ast.Name))
