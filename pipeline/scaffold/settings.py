"""The module's non-tensor op settings, read back from its profiled run: what a scaffolded test sets them to.

A parameter the region passes as a ttnn op's keyword (`k=top_k`, `epsilon=eps`, `memory_config=...`,
`compute_kernel_config=...`) is what the profiler recorded for that op's row: its ATTRIBUTES cell, or for
`memory_config` the row's output memory (`OUTPUT_0_MEMORY`). The value becomes a ttnn expression the test
can hold as a constant (`2`, `1e-05`, `ttnn.L1_MEMORY_CONFIG`, `ttnn.WormholeComputeKernelConfig(...)`).

ATTRIBUTES is `str()` of a dict of strings with every `,` turned into `;` (tt-metal's CSV writer and
ttnn_sim alike): `{'k': '2'; 'sorted': 'true'; 'compute_kernel_config': 'WormholeComputeKernelConfig(
math_fidelity=MathFidelity::HiFi4;fp32_dest_acc_en=false)'}`. Enum values are spelled `Enum::Value`
(C++) or `Enum.Value` (Python); booleans `true`/`false` or `True`/`False`. A scalar operand is BinaryNg's
`scalar` attribute (`'scalar': '1.702'`, `std::nullopt` without one) or a unary's `op_chain` params
(`[UnaryWithParam(op_type=UnaryOpType::CLAMP; params=[-3.4e+38; 7.0])]`: clamp's are min, max).
"""

import ast
import re

ATTRIBUTES = "ATTRIBUTES"
OUTPUT_MEMORY = "OUTPUT_0_MEMORY"
# Op keywords whose attribute key differs from the keyword itself.
_ATTRIBUTE_KEYS = {"epsilon": ("eps", "epsilon"), "k": ("k",)}
_MEMORY = {"DRAM_INTERLEAVED": "ttnn.DRAM_MEMORY_CONFIG", "L1_INTERLEAVED": "ttnn.L1_MEMORY_CONFIG"}
_ENUM = re.compile(r"^([A-Z][A-Za-z0-9]*)(?:::|\.)([A-Za-z_][A-Za-z0-9_]*)$")
_STRUCT = re.compile(r"^([A-Z][A-Za-z0-9]*)\((.*)\)$", re.DOTALL)
# Unary parameters by keyword: `ttnn.clamp(x, min=..., max=...)` runs with params [min, max].
_PARAM_SLOTS = {"min": 0, "max": 1}
SCALAR = "scalar"  # BinaryNg's scalar operand, or a unary's first parameter
_PARAMS = re.compile(r"params?=\[?([^\])]*)")
_NUMBER = re.compile(r"^-?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")


def parse_attributes(cell) -> dict[str, str]:
    """One ATTRIBUTES cell -> {key: value string}; {} for an empty or unreadable cell."""
    text = str(cell or "").strip()
    if not text.startswith("{"):
        return {}
    try:
        parsed = ast.literal_eval(text.replace(";", ","))
    except (ValueError, SyntaxError):
        return {}
    return {str(k): str(v) for k, v in parsed.items()} if isinstance(parsed, dict) else {}


def setting_expression(keyword: str, cells: dict) -> str | None:
    """The ttnn expression of `keyword` as the profiled op ran it, from that op's row's cells
    (ATTRIBUTES, OUTPUT_0_MEMORY); None when the row does not say."""
    if keyword == "memory_config":
        memory = str(cells.get(OUTPUT_MEMORY, "")).strip()
        return _MEMORY.get(memory.split("_", 2)[-1]) if memory.startswith("DEV_") else None
    attributes = parse_attributes(cells.get(ATTRIBUTES))
    params = _unary_params(attributes.get("op_chain", ""))
    if keyword in _PARAM_SLOTS and len(params) > _PARAM_SLOTS[keyword]:
        return value_expression(params[_PARAM_SLOTS[keyword]])
    if keyword == SCALAR and attributes.get(SCALAR, "std::nullopt") == "std::nullopt":
        return value_expression(params[0]) if params else None
    for key in _ATTRIBUTE_KEYS.get(keyword, (keyword,)):
        if key in attributes:
            return value_expression(attributes[key])
    return None


def _unary_params(op_chain: str) -> list[str]:
    """The first op of a unary's `op_chain` cell: `[UnaryWithParam(op_type=...; params=[-7; 7])]` -> its
    params; [] for an op without any (tt-metal's `params=[...]` and the older single `param=`)."""
    found = _PARAMS.search(op_chain)
    return [p.strip() for p in re.split(r"[;,]", found.group(1)) if p.strip()] if found else []


def value_expression(value: str) -> str | None:
    """An attribute value -> Python source: numbers, booleans, enums and config structs; None otherwise."""
    value = value.strip()
    if value.lower() in ("true", "false"):
        return str(value.lower() == "true")
    if _NUMBER.match(value):
        return value
    enum = _ENUM.match(value)
    if enum:
        return f"ttnn.{enum.group(1)}.{enum.group(2)}"
    struct = _STRUCT.match(value)
    if struct:
        return _struct_expression(struct.group(1), struct.group(2))
    return None


def _struct_expression(name: str, body: str) -> str | None:
    fields = []
    for part in (p.strip() for p in re.split(r"[;,]", body) if p.strip()):
        field, equals, raw = part.partition("=")
        rendered = value_expression(raw) if equals else None
        if rendered is None or not field.strip().isidentifier():
            return None
        fields.append(f"{field.strip()}={rendered}")
    return f"ttnn.{name}({', '.join(fields)})"
