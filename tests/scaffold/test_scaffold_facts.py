"""Container parameters and what each parameter was in the profiled run: a field a region only reads of a
container (`weights.w1`) is a parameter of its own; tensors come from the rows of the ops that take them (a
view's from the op reading its result), values from the row's attributes or the shape a view made."""

from pipeline.scaffold import facts
from pipeline.scaffold.captured import Captured
from pipeline.scaffold.inputs import RegionInputs, TensorFact

MLP = """
import ttnn

def forward(x, mask, weights, args, memory_config):
    tokens = x.shape[-2]
    block = args.block_size
    blocks = ttnn.reshape(x, (1, tokens // block, block, args.hidden))
    h = ttnn.sparse_matmul(blocks, weights.w1, sparsity=mask, memory_config=memory_config)
    h = ttnn.add(h, weights.w1_bias)
    h = ttnn.clamp(h, min=None, max=args.limit)
    h = ttnn.mul(h, args.alpha)
    out = ttnn.reshape(h, (args.experts, 1, tokens, args.hidden))
    out = ttnn.to_layout(out, ttnn.ROW_MAJOR_LAYOUT)
    return out
"""


def test_fields_a_region_only_reads_of_a_container_are_parameters_the_call_passes_as_written(extract_region):
    e = extract_region(MLP, "blocks = ttnn.reshape(", "out = ttnn.to_layout(")
    assert e.parameter_names == [
        "x",
        "mask",
        "memory_config",
        "block_size",
        "hidden",
        "w1",
        "w1_bias",
        "limit",
        "alpha",
        "experts",
    ]
    assert "weights.w1, weights.w1_bias, args.limit" in e.call
    assert "    block = block_size\n" in e.source  # a definition from a field is pulled in


def test_a_container_also_used_whole_stays_one_parameter(extract_region):
    source = MLP.replace("    return out", "    ttnn.deallocate(weights)\n    return out")
    e = extract_region(source, "blocks = ttnn.reshape(", "ttnn.deallocate(weights)")
    assert "weights" in e.parameter_names and "w1" not in e.parameter_names
    assert "block_size" in e.parameter_names  # args is still only read through fields


def test_a_field_whose_name_is_taken_is_named_with_its_container(extract_region):
    source = "import ttnn\n\ndef f(w1, weights):\n    y = ttnn.add(w1, weights.w1)\n    return y\n"
    e = extract_region(source, "y = ttnn.add(", "y = ttnn.add(")
    assert e.parameter_names == ["w1", "weights_w1"] and e.call == "y = op_ttnn(w1, weights.w1)"


def test_a_tensor_property_keeps_the_tensor_whole(extract_region):
    source = "import ttnn\n\ndef f(x, y):\n    z = ttnn.add(y, x.shape[0])\n    return z\n"
    assert extract_region(source, "z = ttnn.add(", "z = ttnn.add(").parameter_names == ["x", "y"]


# A clamp(max=7.0) row's ATTRIBUTES as tt-metal's profiler and ttnn_sim write it (open min: float's lowest).
CLAMP = "{'op_chain': '[UnaryWithParam(op_type=UnaryOpType::CLAMP; params=[-3.4028234663852886e+38; 7.0])]'}"


def fact(shape, dtype="BFLOAT16", layout="TILE"):
    return TensorFact(shape, layout, dtype, "DEV_0_DRAM_INTERLEAVED")


def profiled(extraction):
    """The rows the module would show for MLP in prefill 128 (views have none; ttnn_sim's spelling)."""
    blocks, w1, mask = fact((1, 4, 32, 64)), fact((1, 1, 64, 64), "BFLOAT8_B"), fact((1, 1, 4, 1))
    h, bias = fact((4, 1, 32, 64)), fact((1, 1, 1, 64))
    rows = {
        "ttnn.sparse_matmul": ((blocks, w1, mask), {}),
        "ttnn.add": ((h, bias), {"ATTRIBUTES": "{'scalar': 'std::nullopt'}"}),
        "ttnn.clamp": ((h,), {"ATTRIBUTES": CLAMP}),
        "ttnn.mul": ((h,), {"ATTRIBUTES": "{'binary_op_type': 'BinaryOpType::MULTIPLY'; 'scalar': '1.702'}"}),
        "ttnn.to_layout": ((fact((2, 1, 128, 64)),), {}),
    }
    found = [rows.get(op) for op in extraction.op_sequence]
    cells, tensors = (tuple(f[i] if f else None for f in found) for i in (1, 0))
    return RegionInputs("SparseMatmulDeviceOperation", 0, (), (), "test", op_cells=cells, op_inputs=tensors)


def test_tensors_come_from_the_rows_of_the_ops_that_take_them(extract_region):
    e = extract_region(MLP, "blocks = ttnn.reshape(", "out = ttnn.to_layout(")
    named = dict(facts.named_facts(e, profiled(e)))
    # the reshape has no row: x is the tensor sparse_matmul reads from its result, as [1, 1, rows, columns]
    assert named["x"].shape == (1, 1, 128, 64)
    assert named["w1"].dtype == "BFLOAT8_B" and named["mask"].shape == (1, 1, 4, 1)
    assert named["w1_bias"].shape == (1, 1, 1, 64)  # a binary op's second input
    assert set(named) == {"x", "w1", "mask", "w1_bias"}  # alpha: a scalar operand, not a row input
    assert facts.value_contracts(e) == {"mask": (facts.ONES,)} and facts.matmul_weights(e) == {"w1"}


def test_values_come_from_the_shapes_views_made_not_from_csv_attributes(extract_region):
    """Op settings (clamp's limit, mul's scalar) come from the capture; a CSV only shows view shapes."""
    e = extract_region(MLP, "blocks = ttnn.reshape(", "out = ttnn.to_layout(")
    rows = profiled(e)
    values = {name: facts.profiled_value(e, name, rows) for name in e.parameter_names}
    assert values["limit"] is None and values["alpha"] is None  # settings: the capture's
    assert values["block_size"] == "32" and values["hidden"] == "64"  # sparse_matmul's input of the reshape
    assert values["experts"] == "2"  # to_layout's input: the last reshape's result
    assert values["x"] is None and values["w1_bias"] is None  # tensors


def test_another_seq_len_scales_the_sequence_and_its_block_count_only():
    scaled = facts.with_seq_len(fact((1, 1, 4, 128)), 128, 1024)
    assert scaled.shape == (1, 1, 32, 1024)
    assert facts.with_seq_len(fact((1, 1, 64, 64)), 128, 1024).shape == (1, 1, 64, 64)


DISPATCH = """
import ttnn

def forward(hidden, indices, mapping, args):
    rows = ttnn.to_layout(hidden, ttnn.ROW_MAJOR_LAYOUT)
    picks = ttnn.to_layout(ttnn.reshape(indices, (1, 1, 16, 2)), ttnn.ROW_MAJOR_LAYOUT)
    out, meta = ttnn.all_to_all_dispatch(rows, picks, mapping, cluster_axis=args.axis)
    return out
"""


def test_a_captured_expert_map_gives_the_expert_count_through_the_views_of_the_other_inputs(
    extract_region, tmp_path
):
    """The capture has the parameters (hidden, indices), not the views the op reads (rows, picks)."""
    e = extract_region(DISPATCH, "rows = ttnn.to_layout(", "return out")
    tensor = {"kind": "tensor", "layout": "Layout.TILE", "dtype": "DataType.UINT16", "memory_config": {}}
    arguments = {
        "hidden": {**tensor, "shape": [[1, 1, 16, 64]]},
        "indices": {**tensor, "shape": [[16, 2]]},
        "mapping": {**tensor, "shape": [[1, 1, 8, 4]]},
    }
    captured = Captured("decode", 1, tmp_path, {"arguments": arguments, "function": "m.op_ttnn"})
    contracts = facts.value_contracts(e, captured)
    assert contracts["indices"] == (facts.EXPERT_IDS, 8) and contracts["mapping"] == (facts.EXPERT_MAP,)
