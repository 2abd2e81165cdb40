"""Where the names a region uses come from: the enclosing function, the module, or builtins.

The extracted function lives in another file (the unit test), so every module-level name it uses
needs an import there; ``import_lines`` writes them with absolute module paths.
"""

import ast
import builtins
from collections import Counter

BUILTINS = frozenset(dir(builtins))


def bound_names(statements) -> set[str]:
    """Names `statements` bind in their own scope: assignments, loop and with targets, imports, the
    names of nested functions and classes (not their insides), exception names. Comprehension
    variables are the comprehension's own."""
    names: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
            return
        if isinstance(node, ast.Lambda):
            return
        if isinstance(node, ast.comprehension):
            for part in [node.iter, *node.ifs]:
                visit(part)
            return
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store | ast.Del):
            names.add(node.id)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            names.update(a.asname or a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            names.add(node.name)
        for child in ast.iter_child_nodes(node):
            visit(child)

    for statement in statements:
        visit(statement)
    return names


def parameter_names(function) -> list[str]:
    arguments = function.args
    every = [
        *arguments.posonlyargs,
        *arguments.args,
        arguments.vararg,
        *arguments.kwonlyargs,
        arguments.kwarg,
    ]
    return [a.arg for a in every if a is not None]


def function_locals(function) -> set[str]:
    """Parameters and names bound in the function's own scope."""
    return set(parameter_names(function)) | bound_names(function.body)


def import_lines(tree: ast.Module, module: str, names) -> list[str]:
    """One import statement per name, as the unit test needs it (absolute), in `names` order.

    `module` is the dotted path of the module the region comes from (relative imports resolve
    against it; its own functions and classes are imported from it)."""
    sources = _module_sources(tree, module)
    lines = [sources.get(name, f"from {module} import {name}") for name in names]
    return list(dict.fromkeys(lines))


def _module_sources(tree: ast.Module, module: str) -> dict[str, str]:
    package = module.rpartition(".")[0]
    sources = {}
    for node in tree.body:
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    sources[alias.asname] = f"import {alias.name} as {alias.asname}"
                else:
                    top = alias.name.split(".")[0]
                    sources[top] = f"import {top}" if alias.name == top else f"import {alias.name}"
        elif isinstance(node, ast.ImportFrom):
            origin = _absolute(node.module or "", node.level, package)
            for alias in node.names:
                as_part = f" as {alias.asname}" if alias.asname else ""
                sources[alias.asname or alias.name] = f"from {origin} import {alias.name}{as_part}"
    return sources


def _absolute(module: str, level: int, package: str) -> str:
    if level == 0:
        return module
    parts = package.split(".")
    base = parts[: len(parts) - (level - 1)] if level > 1 else parts
    return ".".join([*base, module] if module else base)


def assigned_once(statements) -> set[str]:
    """Names stored exactly once in `statements` (nested scopes included): a single binding stands for
    its value everywhere."""
    stores = Counter(
        n.id
        for s in statements
        for n in ast.walk(s)
        if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store)
    )
    return {name for name, count in stores.items() if count == 1}


def call_bindings(function, call: ast.Call, skip: int = 0) -> list[tuple[str, ast.expr]]:
    """(parameter, argument) for what `call` binds of `function`'s parameters: its positional arguments in
    order (up to a `*args`), then the keywords the function takes. `skip`: leading parameters the call
    does not pass (a method's receiver)."""
    positional = [a.arg for a in [*function.args.posonlyargs, *function.args.args]][skip:]
    pairs = []
    for name, argument in zip(positional, call.args, strict=False):
        if isinstance(argument, ast.Starred):
            break
        pairs.append((name, argument))
    taken = parameter_names(function)
    return pairs + [(k.arg, k.value) for k in call.keywords if k.arg in taken]


def receiver_count(method) -> int:
    """1 for a method called through its instance (`self.f(x)` binds x to its second parameter), 0 for a
    static method."""
    static = any(isinstance(d, ast.Name) and d.id == "staticmethod" for d in method.decorator_list)
    return 0 if static else 1


def callee_resolver(tree: ast.Module, cls: ast.ClassDef | None, receiver: str | None):
    """call -> (the function of the module, or method of `cls` called through `receiver`, that it runs;
    the leading parameters it does not pass), or None for any other call."""
    kinds = ast.FunctionDef | ast.AsyncFunctionDef
    functions = {n.name: n for n in tree.body if isinstance(n, kinds)}
    methods = {n.name: n for n in (cls.body if cls else []) if isinstance(n, kinds)}

    def resolve(call) -> tuple | None:
        function = call.func if isinstance(call, ast.Call) else None
        if isinstance(function, ast.Name) and function.id in functions:
            return functions[function.id], 0
        if (
            isinstance(function, ast.Attribute)
            and isinstance(function.value, ast.Name)
            and function.value.id == receiver
            and function.attr in methods
        ):
            method = methods[function.attr]
            return method, receiver_count(method)
        return None

    return resolve
