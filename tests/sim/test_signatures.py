"""The simulator accepts what ttnn accepts: each op's keywords are its ttnn signature (a misspelled one raises
TypeError naming it, as ttnn's bindings do), docs/sim-semantics.md lists them with their tt-metal source, and
every argument tt-metal records shows in the op's ATTRIBUTES cell (changing it changes the cell)."""

import inspect
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "ttnn_sim" / "shim"))

import ttnn  # noqa: E402

from ttnn_sim import profiler  # noqa: E402
from ttnn_sim.dispatch import launch  # noqa: E402
from ttnn_sim.ops import COMPOSITES, OPS  # noqa: E402

DOC = REPO / "docs" / "sim-semantics.md"
MISSPELLED = "memory_confg"
TABLE_START = "<!-- signature table: tests/sim/test_signatures.py renders it -->"
TABLE_END = "<!-- end of signature table -->"


def op_function(name: str):
    """ttnn.<name>, dotted names through their namespace (ttnn.experimental.all_gather_async)."""
    function = ttnn
    for part in name.split("."):
        function = getattr(function, part)
    return function


def _parameters(function) -> list[inspect.Parameter]:
    parameters = list(inspect.signature(function).parameters.values())
    return parameters[1:] if parameters and parameters[0].name == "ctx" else parameters


def _placeholders(function) -> tuple[list, dict]:
    """Stand-ins for the required arguments: binding checks names and counts, not types."""
    args, kwargs = [], {}
    for parameter in _parameters(function):
        if parameter.default is inspect.Parameter.empty:
            if parameter.kind is inspect.Parameter.KEYWORD_ONLY:
                kwargs[parameter.name] = object()
            else:
                args.append(object())
    return args, kwargs


def _impl(name: str):
    return OPS[name].impl if name in OPS else COMPOSITES[name]


@pytest.mark.parametrize("name", sorted({*OPS, *COMPOSITES}))
def test_a_misspelled_keyword_raises_type_error_naming_it(name):
    args, kwargs = _placeholders(_impl(name))
    with pytest.raises(TypeError, match=f"unexpected keyword argument '{MISSPELLED}'"):
        op_function(name)(*args, **kwargs, **{MISSPELLED: None})


def test_the_check_runs_before_the_op_does_any_work():
    """The refusal comes from the signature, not from a later failure: with a correct keyword the same
    stand-ins get past binding and fail inside the op instead."""
    args, kwargs = _placeholders(OPS["add"].impl)
    with pytest.raises(Exception) as raised:
        ttnn.add(*args, **kwargs, memory_config=None)
    assert MISSPELLED not in str(raised.value) and "unexpected keyword" not in str(raised.value)


def test_ops_take_no_catch_all_arguments_and_name_their_source():
    catch_all = (inspect.Parameter.VAR_KEYWORD, inspect.Parameter.VAR_POSITIONAL)
    loose = [name for name in {*OPS, *COMPOSITES}
             if any(p.kind in catch_all for p in _parameters(_impl(name)))]
    assert loose == []
    assert [name for name, op in OPS.items() if not op.source.startswith("ttnn/")] == []
    unknown = {name: [r for r in op.recorded if r not in {p.name for p in _parameters(op.impl)}]
               for name, op in OPS.items()}
    assert {name: missing for name, missing in unknown.items() if missing} == {}


# --- the table in docs/sim-semantics.md --------------------------------------------------------------
COMPOSITE_SOURCES = {"all_reduce": "ttnn/cpp/ttnn/operations/ccl/all_reduce/all_reduce_nanobind.cpp"}


def _spelled(parameter: inspect.Parameter) -> str:
    text = f"`{parameter.name}`"
    return f"{text}*" if parameter.default is inspect.Parameter.empty else text


def signature_rows() -> list[str]:
    """One markdown row per op: its positional parameters, its keyword-only ones, the recorded arguments
    and the tt-metal file of its signature (* marks a required argument)."""
    rows = []
    for name in sorted({*OPS, *COMPOSITES}):
        parameters = _parameters(_impl(name))
        positional = [_spelled(p) for p in parameters if p.kind is not inspect.Parameter.KEYWORD_ONLY]
        keywords = [_spelled(p) for p in parameters if p.kind is inspect.Parameter.KEYWORD_ONLY]
        recorded = [f"`{r}`" for r in OPS[name].recorded] if name in OPS else []
        source = OPS[name].source if name in OPS else COMPOSITE_SOURCES[name]
        rows.append(f"| `{name}` | {', '.join(positional)} | {', '.join(keywords) or '–'} | "
                    f"{', '.join(recorded) or '–'} | `{source}` |")
    return rows


def documented_rows(text: str) -> list[str]:
    block = text.split(TABLE_START, 1)[1].split(TABLE_END, 1)[0]
    return [line for line in block.splitlines() if line.startswith("| `")]


def test_the_doc_lists_every_op_with_its_ttnn_signature():
    text = DOC.read_text(encoding="utf-8")
    assert documented_rows(text) == signature_rows()
    dropped = text.replace(signature_rows()[0] + "\n", "")
    assert documented_rows(dropped) != signature_rows()  # the check notices a missing row


# --- ATTRIBUTES follow every recorded argument -------------------------------------------------------
@pytest.fixture(scope="module")
def mesh():
    device = ttnn.open_mesh_device(ttnn.MeshShape(1, 2), trace_region_size=1 << 20)
    yield device
    ttnn.close_mesh_device(device)


def _put(mesh, shape, dtype=ttnn.bfloat16, layout=ttnn.TILE_LAYOUT, values=None):
    data = torch.randn(*shape) if values is None else values.reshape(shape)
    return ttnn.from_torch(data, dtype=dtype, layout=layout, device=mesh,
                           mesh_mapper=ttnn.ReplicateTensorToMesh(mesh))


def _sharded(strategy):
    return ttnn.create_sharded_memory_config(shape=(1, 1, 64, 64), core_grid=ttnn.CoreGrid(y=1, x=2),
                                             strategy=strategy)


def _alternatives() -> dict:
    """Values for a recorded argument, tried in order: the first that differs from the call's own value."""
    grid = ttnn.CoreRangeSet(ttnn.CoreRange(ttnn.CoreCoord(0, 0), ttnn.CoreCoord(1, 0)))
    configs = {
        "memory_config": [ttnn.L1_MEMORY_CONFIG, _sharded(ttnn.ShardStrategy.HEIGHT)],
        "intermediate_memory_config": [ttnn.L1_MEMORY_CONFIG],
        "sharded_memory_config": [_sharded(ttnn.ShardStrategy.HEIGHT), _sharded(ttnn.ShardStrategy.WIDTH)],
        "compute_kernel_config": [ttnn.WormholeComputeKernelConfig(math_fidelity=ttnn.MathFidelity.HiFi4)],
        "program_config": [ttnn.SDPAProgramConfig(compute_with_storage_grid_size=(8, 8))],
        "sub_core_grids": [grid], "subdevice_id": [ttnn.SubDeviceId(0)],
        "sub_device_id": [ttnn.SubDeviceId(0)],
        "core_grid": [ttnn.CoreGrid(y=1, x=2)], "output_tile": [ttnn.Tile((32, 32))], "global_cb": ["cb"],
    }
    flags = dict.fromkeys(
        ("keepdim", "use_optimal_ccl_for_llama", "fast_and_approximate_mode", "untilize_output",
         "local_reduce", "is_input_a_sparse", "recreate_mapping_tensor", "keep_l1_aligned", "is_l1_aligned",
         "is_decode_mode", "transpose_a", "transpose_b"), [True])
    flags.update(dict.fromkeys(("numeric_stable", "largest", "sorted", "is_causal", "is_input_b_sparse",
                                "use_multicore", "transpose_k_heads", "overlap_qk_coregrid"), [False]))
    numbers = {
        "num_links": [2], "cluster_axis": [1], "chunks_per_sync": [2], "num_workers_per_link": [2],
        "num_buffers_per_channel": [2], "scalar": [2.0], "epsilon": [1e-3], "scale": [0.5],
        "sliding_window_size": [16], "min": [-2.0], "max": [2.0], "fill_value": [2.0], "padding_idx": [0],
        "reduction_size": [16], "nnz": [1], "pad_value": [1.0], "value": [1.0], "groups": [2],
        "batch_offset": [1], "batch_idx": [1],
    }
    return {
        **configs, **flags, **numbers,
        "dtype": [ttnn.float32, ttnn.bfloat8_b], "output_dtype": [ttnn.float32],
        "topology": [ttnn.Topology.Ring, ttnn.Topology.Linear],
        "layout": [ttnn.ROW_MAJOR_LAYOUT, ttnn.TILE_LAYOUT],
        "activation": ["relu"], "activations": [["relu"]], "input_tensor_a_activations": [["relu"]],
        "input_tensor_b_activations": [["relu"]], "embeddings_type": ["PADDED"], "opt_reduction": ["add"],
    }


def _examples(mesh) -> dict:
    """op -> (its arguments by name, alternatives for that op's recorded arguments that are not generic)."""
    a4 = _put(mesh, (1, 1, 64, 64))
    square = {"input_tensor_a": a4, "input_tensor_b": a4}
    examples = {name: (dict(square), {}) for name, op in OPS.items()
                if op.op_code == "BinaryNgDeviceOperation"}
    examples.update({name: ({"input_tensor": a4}, {}) for name, op in OPS.items()
                     if op.op_code == "UnaryDeviceOperation"})
    examples["clamp"] = ({"input_tensor": a4, "min": -1.0, "max": 1.0}, {})
    for name in ("sum", "mean", "max"):
        examples[name] = ({"input_tensor": a4, "dim": -1}, {"dim": -2})
    examples.update(_compute_examples(mesh, a4))
    examples.update(_movement_examples(mesh, a4))
    examples.update(_ccl_examples(mesh, a4))
    examples.update(_attention_examples(mesh))
    return examples


def _compute_examples(mesh, a4) -> dict:
    router = {"input_tensor": _put(mesh, (32, 256)), "weight_tensor": _put(mesh, (256, 128)),
              "bias_tensor": _put(mesh, (32, 128))}
    return {
        "matmul": ({"input_tensor_a": a4, "input_tensor_b": a4}, {}),
        "linear": ({"input_tensor_a": a4, "input_tensor_b": a4}, {}),
        "where": ({"condition": a4, "true_value": a4, "false_value": a4}, {}),
        "typecast": ({"input_tensor": a4, "dtype": ttnn.float32}, {}),
        "softmax": ({"input_tensor": a4}, {"dim": -2}),
        "topk": ({"input_tensor": a4, "k": 4}, {"k": 8, "dim": -2}),
        "rms_norm": ({"input_tensor": a4}, {}),
        "layer_norm": ({"input_tensor": a4}, {}),
        "full_like": ({"tensor": a4, "fill_value": 1.0}, {}),
        "zeros_like": ({"tensor": a4}, {}),
        "ones_like": ({"tensor": a4}, {}),
        "experimental.topk_router_gpt": (router, {"k": 8}),
        "rms_norm_pre_all_gather": ({"input_tensor": _put(mesh, (1, 1, 32, 64))}, {}),
        "rms_norm_post_all_gather": ({"input_tensor": _put(mesh, (1, 1, 32, 64)),
                                      "stats": _put(mesh, (1, 1, 32, 64))}, {}),
    }


def _movement_examples(mesh, a4) -> dict:
    ids = _put(mesh, (1, 1, 1, 8), ttnn.uint32, ttnn.ROW_MAJOR_LAYOUT, torch.arange(8.0))
    index = _put(mesh, (1, 1, 64, 64), ttnn.uint32, ttnn.TILE_LAYOUT, torch.zeros(64 * 64))
    return {
        "reshape": ({"input_tensor": a4, "shape": (1, 1, 32, 128)},
                    {"shape": (1, 1, 16, 256), "padded_shape": (1, 1, 32, 128)}),
        "permute": ({"input_tensor": a4, "dims": (0, 1, 3, 2)}, {"dims": (1, 0, 3, 2)}),
        "transpose": ({"input_tensor": a4, "dim1": 2, "dim2": 3}, {"dim1": 1, "dim2": 1}),
        "squeeze": ({"input_tensor": _put(mesh, (1, 1, 64, 1))}, {"dim": 3}),
        "unsqueeze": ({"input_tensor": _put(mesh, (1, 64, 64)), "dim": -1}, {"dim": 2}),
        "concat": ({"tensors": [a4, a4], "dim": 3}, {"dim": 2}),
        "split": ({"input_tensor": a4, "split_size": 32, "dim": 3}, {"split_size": 16, "dim": 2}),
        "slice": ({"input_tensor": a4, "starts": [0, 0, 0, 0], "ends": [1, 1, 32, 32]},
                  {"starts": [0, 0, 32, 0], "ends": [1, 1, 64, 64], "steps": [1, 1, 1, 2]}),
        "repeat": ({"input_tensor": a4, "repeat_dims": (1, 1, 1, 2)}, {"repeat_dims": (1, 1, 2, 1)}),
        "pad": ({"input_tensor": a4, "padding": [(0, 0), (0, 0), (0, 0), (0, 32)], "value": 0.0},
                {"padding": [(0, 0), (0, 0), (0, 32), (0, 0)]}),
        "to_layout": ({"tensor": a4, "layout": ttnn.ROW_MAJOR_LAYOUT}, {}),
        "to_memory_config": ({"tensor": a4, "memory_config": ttnn.L1_MEMORY_CONFIG}, {}),
        "interleaved_to_sharded": ({"input_tensor": a4,
                                    "sharded_memory_config": _sharded(ttnn.ShardStrategy.HEIGHT)}, {}),
        "sharded_to_interleaved": ({"input_tensor": a4}, {}),
        "clone": ({"input": a4}, {}),
        "embedding": ({"input_tensor": ids, "weight": _put(mesh, (1, 1, 16, 64))}, {}),
        "scatter": ({"input": a4, "dim": 3, "index": index, "src": a4}, {"dim": 2}),
    }


def _ccl_examples(mesh, a4) -> dict:
    tokens, experts = 8, 2
    mapping = _put(mesh, (1, 1, experts, experts), ttnn.uint16, ttnn.ROW_MAJOR_LAYOUT, torch.eye(experts))
    rows = _put(mesh, (1, 1, tokens, 64), layout=ttnn.ROW_MAJOR_LAYOUT)
    chosen = _put(mesh, (1, 1, tokens, 1), ttnn.uint16, ttnn.ROW_MAJOR_LAYOUT, torch.zeros(tokens))
    metadata = _put(mesh, (1, 2, 4, 1), ttnn.uint16, ttnn.ROW_MAJOR_LAYOUT, torch.zeros(tokens))
    scores = _put(mesh, (1, 1, tokens, experts), layout=ttnn.ROW_MAJOR_LAYOUT)
    sparsity = _put(mesh, (1, 1, 1, 2), layout=ttnn.ROW_MAJOR_LAYOUT, values=torch.ones(2))
    return {
        "all_gather": ({"input_tensor": a4, "dim": 3}, {"dim": 2}),
        "reduce_scatter": ({"input_tensor": a4, "dim": 3}, {"dim": 2}),
        "experimental.all_gather_async": ({"input_tensor": a4, "dim": 3}, {}),
        "experimental.reduce_scatter_minimal_async": ({"input_tensor": a4, "dim": 3}, {}),
        "all_to_all_dispatch": ({"input_tensor": rows, "expert_indices_tensor": chosen,
                                 "expert_mapping_tensor": mapping}, {"output_concat_dim": 2}),
        "all_to_all_combine": ({"input_tensor": _put(mesh, (1, 1, tokens, 64), layout=ttnn.ROW_MAJOR_LAYOUT),
                                "expert_metadata_tensor": metadata, "expert_mapping_tensor": mapping},
                               {"output_shard_dim": 2}),
        "moe_expert_token_remap": ({"topk_tensor": scores, "expert_mapping_tensor": mapping,
                                    "expert_metadata_tensor": chosen}, {}),
        "sparse_matmul": ({"input_tensor_a": _put(mesh, (1, 1, 32, 64)),
                           "input_tensor_b": _put(mesh, (1, experts, 64, 32)), "sparsity": sparsity}, {}),
    }


def _attention_examples(mesh) -> dict:
    fused = (4 + 2 * 2) * 64
    positions = _put(mesh, (2,), ttnn.int32, ttnn.ROW_MAJOR_LAYOUT, torch.tensor([10.0, 20.0]))
    table = _put(mesh, (2, 2), ttnn.int32, ttnn.ROW_MAJOR_LAYOUT, torch.arange(4.0))
    decode_q, blocks = _put(mesh, (1, 2, 4, 64)), _put(mesh, (4, 2, 32, 64))
    prefill = {"input_tensor_q": _put(mesh, (1, 4, 64, 64)), "input_tensor_k": _put(mesh, (1, 2, 64, 64)),
               "input_tensor_v": _put(mesh, (1, 2, 64, 64))}
    heads = {"num_heads": 4, "num_kv_heads": 2}
    other_heads = {"num_heads": 12, "num_kv_heads": 6}  # each alone still splits the fused width
    return {
        "experimental.nlp_create_qkv_heads": ({"input_tensor": _put(mesh, (1, 1, 64, fused)), **heads},
                                              other_heads),
        "experimental.nlp_create_qkv_heads_decode": ({"input_tensor": _put(mesh, (1, 1, 32, fused)), **heads},
                                                     other_heads),
        "experimental.nlp_concat_heads": ({"input_tensor": _put(mesh, (1, 4, 64, 64))}, {}),
        "experimental.nlp_concat_heads_decode": ({"input_tensor": _put(mesh, (1, 32, 8, 64)), "num_heads": 4},
                                                 {"num_heads": 8}),
        "experimental.rotary_embedding_llama": (
            {"input_tensor": _put(mesh, (1, 4, 64, 64)), "cos_cache": _put(mesh, (1, 1, 64, 64)),
             "sin_cache": _put(mesh, (1, 1, 64, 64)), "trans_mat": _put(mesh, (1, 1, 32, 32))}, {}),
        "fill_cache": ({"cache_tensor": _put(mesh, (2, 2, 64, 64)),
                        "input_tensor": _put(mesh, (1, 2, 32, 64)), "batch_idx": 0}, {}),
        "experimental.paged_update_cache": ({"cache_tensor": _put(mesh, (8, 2, 64, 64)),
                                             "input_tensor": _put(mesh, (1, 4, 2, 64)),
                                             "update_idxs": [0, 1, 2, 3]}, {"update_idxs": [1, 2, 3, 4]}),
        "transformer.scaled_dot_product_attention": (prefill, {}),
        "transformer.scaled_dot_product_attention_decode": (
            {"input_tensor_q": decode_q, "input_tensor_k": _put(mesh, (2, 2, 64, 64)),
             "input_tensor_v": _put(mesh, (2, 2, 64, 64)), "cur_pos": [10, 20]}, {"cur_pos": [5, 6]}),
        "transformer.paged_scaled_dot_product_attention_decode": (
            {"input_tensor_q": decode_q, "input_tensor_k": blocks, "input_tensor_v": blocks,
             "page_table_tensor": table, "cur_pos_tensor": positions}, {}),
    }


# Recorded arguments a test cannot vary, with the reason.
FIXED = {("experimental.topk_router_gpt", "num_experts"): "tt-metal accepts 128 experts only"}


def _attributes(name: str, kwargs: dict) -> str:
    """The ATTRIBUTES cell of one call's device row (the call goes where ttnn.<name> goes: launch)."""
    profiler._reset_for_tests()
    launch(name, OPS[name], (), kwargs)
    rows = [r for r in profiler._pending if r.get("device_id") is not None]
    assert rows, f"ttnn.{name} wrote no device row (a view?)"
    return str(rows[-1]["attributes"])


def _varied(name: str, argument: str, kwargs: dict, own: dict, generic: dict):
    """A value for `argument` other than the call's own (its default when the call leaves it out)."""
    current = kwargs.get(argument, inspect.signature(OPS[name].impl).parameters[argument].default)
    candidates = [own[argument]] if argument in own else generic.get(argument, [])
    different = [value for value in candidates if repr(value) != repr(current)]
    assert different, f"no alternative value for {name}({argument}=...): add one to the test"
    return different[0]


@pytest.fixture
def profiling(monkeypatch, tmp_path):
    monkeypatch.setenv("TT_METAL_DEVICE_PROFILER", "1")
    monkeypatch.setenv("TT_METAL_PROFILER_DIR", str(tmp_path))
    yield
    profiler._reset_for_tests()


def unchanged_arguments(names, examples, generic) -> list[str]:
    """Each recorded argument of each op whose changed value leaves the op's ATTRIBUTES cell as it was."""
    unchanged = []
    for name in names:
        kwargs, own = examples[name]
        base = _attributes(name, kwargs)
        for argument in OPS[name].recorded:
            if (name, argument) in FIXED:
                continue
            value = _varied(name, argument, kwargs, own, generic)
            if _attributes(name, {**kwargs, argument: value}) == base:
                unchanged.append(f"{name}({argument}={value!r})")
    return unchanged


def test_every_recorded_argument_changes_the_attributes_cell(mesh, profiling):
    examples = _examples(mesh)
    profiled = sorted(name for name, op in OPS.items() if op.recorded)
    assert sorted(set(profiled) - set(examples)) == []  # a new op needs its example call here
    assert unchanged_arguments(profiled, examples, _alternatives()) == []


def test_an_attribute_that_ignores_its_argument_is_caught(mesh, profiling, monkeypatch):
    """The check has teeth: softmax printing a constant dim is reported."""
    constant = replace(OPS["softmax"], attributes=lambda named, outputs: {"dim": "-1"})
    monkeypatch.setitem(OPS, "softmax", constant)
    found = unchanged_arguments(["softmax"], _examples(mesh), _alternatives())
    assert found == ["softmax(dim=-2)"]


def test_a_keyword_whose_effect_is_not_simulated_is_refused_by_name(mesh):
    """Accepted by ttnn, not modelled by the simulator, and not silently ignored: the call says so."""
    kwargs, _ = _attention_examples(mesh)["transformer.scaled_dot_product_attention_decode"]
    with pytest.raises(NotImplementedError, match=r"attn_mask=\.\.\.\) is not simulated"):
        ttnn.transformer.scaled_dot_product_attention_decode(**kwargs, attn_mask=_put(mesh, (2, 4, 1, 64)))
