"""What a region does through the module functions it calls, in the region's terms: a container passed
whole (`mlp(out, weights, args)`) has its fields' tensors and values read from the callee's rows, a name
bound once to a field (`k = args.k`) stands for it, a size the region computes (`total = tokens *
args.devices`) is not solved from a CSV (the capture has it), and an input's value contract holds back
through the ops that only carry its values (`to_layout(reshape(ids))` is dispatch's expert ids)."""

from types import SimpleNamespace

import pytest
from test_scaffold_facts import CLAMP, fact

from pipeline.scaffold import facts
from pipeline.scaffold.inputs import RegionInputs

MOE = """
import ttnn

def mlp(x, weights, args):
    block = args.block
    h = ttnn.matmul(x, weights.w1)
    h = ttnn.reshape(h, (1, args.experts, block, 128))
    h = ttnn.clamp(h, min=None, max=args.limit)
    return h

def forward(x, ids, mapping, weights, args):
    tokens = x.shape[-2]
    total = tokens * args.devices
    k = args.k
    ids_rm = ttnn.to_layout(ttnn.reshape(ids, (1, 1, tokens, k)), ttnn.ROW_MAJOR_LAYOUT)
    out, meta = ttnn.all_to_all_dispatch(x, ids_rm, mapping, cluster_axis=args.axis)
    out = ttnn.reshape(out, (1, 1, total, args.hidden))
    y = mlp(out, weights, args)
    return y
"""


def profiled(extraction, drop=()):
    """The rows a 16-token decode would show on one of 4 devices of a mesh column of 2 (views have none)."""
    rows = {
        "ttnn.to_layout": ((fact((1, 1, 16, 2), "UINT16"),), {}),
        "ttnn.all_to_all_dispatch": (
            (fact((1, 1, 16, 64)), fact((1, 1, 16, 2), "UINT16", "ROW_MAJOR"), fact((1, 1, 8, 4), "UINT16")),
            {"ATTRIBUTES": "{'cluster_axis': '0'; 'num_links': '1'}"},
        ),
        "ttnn.matmul": ((fact((1, 1, 32, 64)), fact((1, 1, 64, 128), "BFLOAT8_B")), {}),
        "ttnn.clamp": ((fact((1, 2, 16, 128)),), {"ATTRIBUTES": CLAMP}),
    }
    found = [None if op in drop else rows.get(op) for op in extraction.op_sequence]
    cells, tensors = (tuple(f[i] if f else None for f in found) for i in (1, 0))
    return RegionInputs(
        "AllToAllDispatchDeviceOperation", 0, (), (), "test", op_cells=cells, op_inputs=tensors
    )


@pytest.fixture
def moe(extract_region):
    return extract_region(MOE, "tokens = x.shape[-2]", "y = mlp(")


def test_the_callees_ops_read_the_regions_names(moe):
    fields = ("devices", "k", "axis", "hidden", "block", "experts", "limit")
    assert dict(moe.passed) == {"weights": ("w1",), "args": fields}
    matmul = moe.op_sequence.index("ttnn.matmul")
    assert moe.op_arguments[matmul] == ("out", "weights.w1")  # mlp's x is the region's out
    assert (matmul + 2, "max", "args.limit") in moe.settings  # mlp's clamp, through its args


def test_container_fields_take_the_tensors_and_values_the_callees_rows_show(moe):
    rows = profiled(moe)
    named = dict(facts.named_facts(moe, rows))
    assert named["weights.w1"] == fact((1, 1, 64, 128), "BFLOAT8_B")
    assert named["ids"].shape == (1, 1, 16, 2) and named["ids"].dtype == "UINT16"  # to_layout's input
    values = {field: facts.profiled_value(moe, field, rows) for field in facts.container_fields(moe)}
    assert values == {
        "args.devices": None,  # only a product of sizes: not guessed from a CSV (the capture has it)
        "args.k": "2",  # `k = args.k`, the last dimension of the reshape to_layout reads
        "args.axis": None,  # dispatch's cluster_axis: a setting, the capture has it
        "args.hidden": "64",
        "args.block": "16",  # the callee's `block = args.block`
        "args.experts": "2",
        "args.limit": None,  # clamp's max: a setting, the capture has it
        "weights.w1": None,  # a tensor: INPUT_TENSORS builds it
    }


def test_a_size_the_region_computes_is_not_guessed_from_a_csv(moe):
    assert facts.profiled_value(moe, "args.devices", profiled(moe)) is None
    assert facts.profiled_value(moe, "args.hidden", profiled(moe)) == "64"  # shown by the matmul's input


def test_contracts_hold_back_through_the_ops_that_carry_values(moe):
    assert facts.value_contracts(moe, profiled(moe)) == {
        "ids": (facts.EXPERT_IDS, 8),  # expert ids in [0, 8): the rows of the map dispatch reads
        "mapping": (facts.EXPERT_MAP,),
    }
    assert facts.value_contracts(moe, profiled(moe, drop=("ttnn.all_to_all_dispatch",)))["ids"] == (
        facts.EXPERT_IDS,
    )  # no row: the number of experts is not known


def test_a_value_computed_by_an_op_carries_no_contract(extract_region):
    source = MOE.replace("ttnn.to_layout(ttnn.reshape(ids,", "ttnn.to_layout(ttnn.add(ids,")
    e = extract_region(source, "tokens = x.shape[-2]", "y = mlp(")
    assert "ids" not in facts.value_contracts(e, SimpleNamespace(op_inputs=()))
