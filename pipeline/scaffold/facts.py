"""What each parameter of `<op>_ttnn` was in the module's profiled run: a tensor (one of an op row's inputs)
or a value (an op row's attribute, or a dimension of the shape a view op made).

A tensor parameter is the input, at its argument's position, of the first op of the region that takes it
and has a row (`ttnn.sparse_matmul(blocks, w1, sparsity=sparsity)`: w1 is INPUT_1, sparsity INPUT_2). A
view (`ttnn.reshape`) may have no row: its input is then the tensor the next op reads from the view's
result, flattened to the module's activation form [1, 1, rows, columns]. A value is what the row of the op
that takes it says (the capture), or, for a dimension of a view's target shape (`(1, n, block, hidden)`),
that dimension of the tensor the next op reads from the view's result. An input whose values an op
constrains (VALUE_CONTRACTS) is built to that contract instead of random-normal data.
"""

from dataclasses import replace
from math import prod

from pipeline.scaffold import ops
from pipeline.scaffold.captured import Captured
from pipeline.scaffold.extract import Extraction
from pipeline.scaffold.inputs import RegionInputs, TensorFact

# The kinds of input data an op constrains. ONES: a mask, every entry on (random values would hide which
# blocks run, and a skipped block holds no defined output). EXPERT_MAP: a one-hot [1, 1, E, D] map of expert e
# to device e // (E / D), the layout tt-metal's MoE ops and the module's expert_mapping_tensor use.
# EXPERT_IDS: each token's k chosen experts [..., T, k], distinct ids in [0, E), as top-k picks them.
ONES, EXPERT_MAP, EXPERT_IDS = "ones", "expert_map", "expert_ids"
# (op, argument: position among its tensor arguments, or keyword) -> the contract of that input's values.
VALUE_CONTRACTS = {
    ("sparse_matmul", "sparsity"): ONES,  # nonzero marks a 32-row block to compute
    ("all_to_all_dispatch", 1): EXPERT_IDS,
    ("all_to_all_dispatch", 2): EXPERT_MAP,
    ("moe_expert_token_remap", 0): ONES,  # a nonzero score makes a (token, chosen expert) pair active
    ("moe_expert_token_remap", 1): EXPERT_MAP,
    ("moe_expert_token_remap", 2): EXPERT_IDS,
    ("all_to_all_combine", 2): EXPERT_MAP,
}
# Ops whose output holds their first input's values (rearranged): a contract holds through them.
VALUE_CARRIERS = ops.VIEWS | {"to_layout", "repeat", "to_memory_config", "clone"}
TILE_ROWS = 32  # a ttnn tile's height: per-tile (per-block) dimensions scale with the sequence length


def named_facts(extraction: Extraction, region_inputs: RegionInputs) -> list[tuple[str, TensorFact]]:
    """(name, its tensor as profiled) for every parameter, or field of a container parameter passed whole
    (`weights.w1`), that an op row shows as an input."""
    wanted = parameters_and_fields(extraction)
    if isinstance(region_inputs, Captured):  # the module's own tensors, no row to line up
        return [(name, fact) for name, fact in region_inputs.tensors().items() if name in wanted]
    named: dict[str, TensorFact] = {}
    for index, arguments in enumerate(extraction.op_arguments):
        facts = _row_inputs(region_inputs, index)
        if facts is None and _is_view(extraction, index) and arguments:
            consumed = _consumer_input(extraction, region_inputs, index)
            facts = (_flattened(consumed),) if consumed is not None else None
        for name, fact in zip(arguments, facts or (), strict=False):
            if name in wanted:
                named.setdefault(name, fact)
    return list(named.items())


def parameters_and_fields(extraction: Extraction) -> set[str]:
    """The names a test builds an input for: the parameters and the fields of the containers passed whole."""
    return set(extraction.parameter_names) | set(container_fields(extraction))


def container_fields(extraction: Extraction) -> list[str]:
    """`weights.w1`, `args.hidden_size`, ...: the fields of each container the region passes whole."""
    return [f"{container}.{field}" for container, fields in extraction.passed for field in fields]


def value_contracts(extraction: Extraction, region_inputs: RegionInputs | None = None) -> dict[str, tuple]:
    """Parameter (or container field) -> (contract, *its arguments) of the first op that constrains its
    values, directly or through ops that carry values (`to_layout(reshape(indices, ...))`). EXPERT_IDS'
    argument is the number of experts: the rows of that op's expert map, when `region_inputs` show it."""
    wanted = parameters_and_fields(extraction)
    found: dict[str, tuple] = {}
    for index, keyword, name in extraction.settings:
        contract = VALUE_CONTRACTS.get((_op_name(extraction, index), keyword))
        source = _carried_from(extraction, index, name) if contract else None
        if source in wanted:
            found.setdefault(source, (contract,))
    for index, arguments in enumerate(extraction.op_arguments):
        for position, name in enumerate(arguments):
            contract = VALUE_CONTRACTS.get((_op_name(extraction, index), position))
            source = _carried_from(extraction, index, name) if contract else None
            if source not in wanted:
                continue
            experts = _expert_count(extraction, region_inputs, index) if contract == EXPERT_IDS else None
            found.setdefault(source, (contract,) if experts is None else (contract, experts))
    return found


def _carried_from(extraction: Extraction, index: int, name: str) -> str:
    """The name whose values reach op `index` as `name`, back through the value carriers before it."""
    for earlier in range(index - 1, -1, -1):
        if extraction.op_targets[earlier] == name:
            arguments = extraction.op_arguments[earlier]
            if _op_name(extraction, earlier) in VALUE_CARRIERS and arguments:
                return _carried_from(extraction, earlier, arguments[0])
            return name
    return name


def _expert_count(extraction: Extraction, region_inputs: RegionInputs | None, index: int) -> int | None:
    """The rows E of the expert map [1, 1, E, D] op `index` reads, as its row (or the capture) shows it:
    a captured argument is the parameter whose values reach the op (`expert_mapping`, not a view of it)."""
    facts = _row_inputs(region_inputs, index) if region_inputs is not None else None
    if isinstance(region_inputs, Captured):  # the map as the module passed it, back through value carriers
        captured = region_inputs.tensors()
        arguments = extraction.op_arguments[index]
        facts = [captured.get(_carried_from(extraction, index, name)) for name in arguments]
    for position, fact in enumerate(facts or ()):
        if fact is None:
            continue
        if VALUE_CONTRACTS.get((_op_name(extraction, index), position)) == EXPERT_MAP:
            return fact.shape[-2]
    return None


def _op_name(extraction: Extraction, index: int) -> str:
    return extraction.op_sequence[index].rsplit(".", 1)[-1]


def matmul_weights(extraction: Extraction) -> set[str]:
    """Parameters that are a matmul's `b`: their shape never follows the sequence length."""
    return {
        arguments[1]
        for op, arguments in zip(extraction.op_sequence, extraction.op_arguments, strict=False)
        if ("matmul" in op or op.endswith(".linear")) and len(arguments) > 1
    }


def with_seq_len(fact: TensorFact, profiled: int, seq_len: int) -> TensorFact:
    """The profiled tensor at another sequence length: the sequence dimension and a per-tile count of it
    (32-token blocks) scale; other dimensions keep their size."""

    def scaled(dim: int) -> int:
        if dim == profiled:
            return seq_len
        return seq_len // TILE_ROWS if profiled % TILE_ROWS == 0 and dim == profiled // TILE_ROWS else dim

    return replace(fact, shape=tuple(scaled(dim) for dim in fact.shape))


def profiled_value(extraction: Extraction, parameter: str, region_inputs: RegionInputs) -> str | None:
    """The value a non-tensor parameter (or container field) had in this run, as a Python expression: the
    capture's, else what a profiled row shows; None if neither says (a size the region computes from
    others is not solved: the capture has it)."""
    if isinstance(region_inputs, Captured):
        return region_inputs.value(parameter)
    return _shown_value(extraction, parameter, region_inputs)


def _shown_value(extraction: Extraction, parameter: str, region_inputs: RegionInputs) -> str | None:
    """The value of `parameter` an op row shows: a setting of the op that takes it, or a dimension of the
    tensor a view made with it."""
    for index, keyword, name in extraction.settings:
        if name != parameter:
            continue
        if keyword.startswith(ops.SHAPE):
            dim, rank = (int(part) for part in keyword.removeprefix(ops.SHAPE).split("/"))
            consumed = _consumer_input(extraction, region_inputs, index)
            value = str(consumed.shape[len(consumed.shape) - rank + dim]) if consumed is not None else None
        else:  # an op setting: the capture has it (a CSV's ATTRIBUTES are not parsed)
            value = None
        if value is not None:
            return value
    return None


def _row_inputs(region_inputs: RegionInputs, index: int):
    return region_inputs.op_inputs[index] if index < len(region_inputs.op_inputs) else None


def _is_view(extraction: Extraction, index: int) -> bool:
    return _op_name(extraction, index) in ops.VIEWS


def _consumer_input(extraction: Extraction, region_inputs: RegionInputs, index: int) -> TensorFact | None:
    """The tensor the first later op with a row reads from op `index`'s result (None: no such op)."""
    target = extraction.op_targets[index] if index < len(extraction.op_targets) else ""
    if not target:
        return None
    for later in range(index + 1, len(extraction.op_arguments)):
        arguments, facts = extraction.op_arguments[later], _row_inputs(region_inputs, later)
        if target in arguments:
            position = arguments.index(target)
            return facts[position] if facts is not None and position < len(facts) else None
    return None


def _flattened(fact: TensorFact) -> TensorFact:
    return replace(fact, shape=(1, 1, prod(fact.shape[:-1]), fact.shape[-1]))
