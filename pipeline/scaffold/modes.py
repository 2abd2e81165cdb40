"""Decode and prefill regions that differ (different statements, ops or files): one function per mode.

The test gets `<op>_ttnn_decode` and `<op>_ttnn_prefill` (each mode's region, as extracted) and
`<op>_ttnn(mode, **arguments)`, which calls the mode's function with the arguments it takes. The module's
call of each mode is `<op>_ttnn("<mode>", name=argument, ...)`: patch_verify serves and captures it like
any other, and the capture records each mode's own arguments. The test passes every parameter of either
mode, the ones a mode does not have as None (its INPUT_TENSORS and per-mode constants say which).
"""

from dataclasses import replace

from pipeline.scaffold import render
from pipeline.scaffold.extract import Extraction, Parameter

MODE = "mode"
DISPATCH = '''

def {name}({mode}, **arguments):
    """The mode's own function (decode and prefill differ in the module), given the arguments it takes."""
    function = {table}[{mode}]
    taken = inspect.signature(function).parameters
    return function(**{{key: value for key, value in arguments.items() if key in taken}})
'''


def is_merged(extraction: Extraction) -> bool:
    return f"def {extraction.function_name}({MODE}, **arguments):" in extraction.source


def per_mode_name(function_name: str, mode: str) -> str:
    return f"{function_name}_{mode}"


def merge(function_name: str, extractions: dict[str, Extraction]) -> dict[str, Extraction]:
    """mode -> one Extraction of the functions per mode and the dispatcher, its `call` that mode's."""
    modes = list(extractions)
    first = extractions[modes[0]]
    parameters = [Parameter(MODE, repr(modes[0]))]
    for extraction in extractions.values():
        parameters += [p for p in extraction.parameters if p.name not in {q.name for q in parameters}]
    table = "{" + ", ".join(f"{m!r}: {per_mode_name(function_name, m)}" for m in modes) + "}"
    source = "\n\n".join(e.source.rstrip("\n") + "\n" for e in extractions.values())
    source += DISPATCH.format(name=function_name, mode=MODE, table=table)
    sequence, arguments, targets, settings = [], [], [], []
    for extraction in extractions.values():
        settings += [(index + len(sequence), keyword, name) for index, keyword, name in extraction.settings]
        sequence += extraction.op_sequence
        arguments += extraction.op_arguments
        targets += extraction.op_targets
    merged = replace(
        first,
        function_name=function_name,
        parameters=tuple(parameters),
        source=source,
        ops=_union(e.ops for e in extractions.values()),
        op_sequence=tuple(sequence),
        op_arguments=tuple(arguments),
        op_targets=tuple(targets),
        settings=tuple(settings),
        ccl_ops=_union(e.ccl_ops for e in extractions.values()),
        deallocated=_union(e.deallocated for e in extractions.values()),
        imports=_union([("import inspect",), *(e.imports for e in extractions.values())]),
        where=" / ".join(f"{e.where} ({m})" for m, e in extractions.items()),
        passed=_union(e.passed for e in extractions.values()),
        matmul_b_arguments=_union(e.matmul_b_arguments for e in extractions.values()),
    )
    return {mode: replace(merged, call=_call(function_name, mode, e)) for mode, e in extractions.items()}


def _call(function_name: str, mode: str, extraction: Extraction) -> str:
    keywords = [repr(mode), *(f"{p.name}={p.argument}" for p in extraction.parameters)]
    returns_value = extraction.call.startswith("return ")
    return render.call_text(function_name, keywords, extraction.returns, returns_value)


def _union(groups) -> tuple:
    return tuple(dict.fromkeys(item for group in groups for item in group))
