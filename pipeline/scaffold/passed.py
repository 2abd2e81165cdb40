"""Containers a region passes whole to a function of its own module, and the fields each is read for.

`expert_mlp_forward(experts_input, sparsity, weights, args, memory_config)` hands `weights` and `args`
to a function that reads `weights.w1`, `args.hidden_size`, ...: the region cannot split them into one
parameter per field (the callee needs the whole object), but a test can build them from their fields
(`types.SimpleNamespace(w1=..., hidden_size=...)`, duck typing: the module only reads attributes). A
container's fields are the ones the region reads itself plus the ones each callee reads through the
parameter the container is bound to, followed into what that callee passes it to.
"""

import ast

from pipeline.scaffold import bindings
from pipeline.scaffold.dataflow import is_field_read, parent_map


class _NotAContainer(Exception):
    """A use other than a field read or being passed whole to a followed function."""


def passed_fields(statements, tree: ast.Module, cls: ast.ClassDef | None, receiver: str | None, candidates):
    """name -> its fields (in the order found), for each of `candidates` that `statements` pass whole to
    a function of the module (or a method of `cls` through `receiver`) and otherwise only read fields of."""
    resolve = bindings.callee_resolver(tree, cls, receiver)
    found = {}
    for name in candidates:
        fields: dict[str, None] = {}
        try:
            passed = _fields(statements, name, resolve, fields, frozenset())
        except _NotAContainer:
            continue
        if passed and fields:
            found[name] = tuple(fields)
    return found


def _fields(statements, name, resolve, fields: dict, active: frozenset) -> bool:
    """Add the fields `statements` read of `name` (following calls it is passed to) to `fields`; True when
    they pass it whole to some function. Raises _NotAContainer on any other bare use."""
    parents = parent_map(statements)
    passed = False
    for node in (n for s in statements for n in ast.walk(s)):
        if not (isinstance(node, ast.Name) and node.id == name):
            continue
        parent = parents.get(id(node))
        if not isinstance(node.ctx, ast.Load):
            raise _NotAContainer
        if is_field_read(node, parents):
            fields.setdefault(parent.attr)
            continue
        call = parents.get(id(parent)) if isinstance(parent, ast.keyword) else parent
        callee, bound = _bound_parameter(node, call, resolve)
        if callee is None:
            raise _NotAContainer
        if id(callee) not in active:  # a recursive call reads what the first one read
            _fields(callee.body, bound, resolve, fields, active | {id(callee)})
        passed = True
    return passed


def _bound_parameter(node: ast.Name, call, resolve):
    """(the followed function `call` passes `node` to, the parameter it binds it to), or (None, None)."""
    found = resolve(call)
    if found is None:
        return None, None
    callee, skip = found
    bound = [name for name, argument in bindings.call_bindings(callee, call, skip) if argument is node]
    return (callee, bound[0]) if bound else (None, None)
