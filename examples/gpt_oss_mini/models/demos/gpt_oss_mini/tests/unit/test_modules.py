"""Module tests of the gpt-oss-mini decoder layer against HuggingFace's GptOss modules (tt-metal's test_modules.py).

``--test-modules`` picks modules (comma list, default all): attention, rms_norm, router, experts, mlp, decoder.
Each logs ``<Name> test passed. Output: <pcc>`` or fails with ``<Name> test failed. Output: <pcc>``; thresholds
come from unit_test_thresholds.json. Each module draws its inputs from its own seed, so its PCC does not depend
on which other modules run.
"""

import pytest
import torch
from loguru import logger

import ttnn
from models.common.utility_functions import comp_pcc
from models.demos.gpt_oss_mini.reference import model as reference
from models.demos.gpt_oss_mini.tests.conftest import MODULES
from models.demos.gpt_oss_mini.tests.test_factory import MESH_SHAPE, TestFactory, from_mesh, to_mesh
from models.demos.gpt_oss_mini.tt.attention import Attention
from models.demos.gpt_oss_mini.tt.experts import Experts
from models.demos.gpt_oss_mini.tt.layer import DecoderLayer
from models.demos.gpt_oss_mini.tt.mlp import MLP
from models.demos.gpt_oss_mini.tt.model_config import substate
from models.demos.gpt_oss_mini.tt.rms_norm import RMSNorm
from models.demos.gpt_oss_mini.tt.rope import RotarySetup
from models.demos.gpt_oss_mini.tt.router import TopKRouter

DECODE_POSITION = 63  # decode attends to a 63-token cache filled by the reference, plus the new token


def compare_tensors(tt_output, ref_output, pcc_threshold):
    return comp_pcc(ref_output.float(), tt_output.float(), pcc_threshold)


def check(name: str, tt_output, ref_output, pcc_threshold):
    passing, output = compare_tensors(tt_output, ref_output, pcc_threshold)
    assert passing, f"{name} test failed. Output: {output}"
    logger.info(f"{name} test passed. Output: {output}")


class ModuleCase:
    """One parametrized test_decoder case: the mesh, the reference layer and weights, the shapes."""

    def __init__(self, mesh_device, setup, batch_size, seq_len):
        self.mesh_device = mesh_device
        self.config, self.layer = setup["config"], setup["reference_layer"]
        self.state_dict, self.args = setup["state_dict"], setup["args"]
        self.batch_size, self.seq_len = batch_size, seq_len
        self.mode = "decode" if seq_len == 1 else "prefill"
        self.tokens = batch_size * seq_len

    def random_tokens(self, module: str) -> torch.Tensor:
        torch.manual_seed(MODULES.index(module))
        return torch.randn(self.tokens, self.config.hidden_size)

    def to_mesh(self, tokens, **kwargs):
        return to_mesh(tokens, self.mesh_device, self.mode, **kwargs)

    def from_mesh(self, tensor) -> torch.Tensor:
        """[1, 1, T, H] per device -> [T, H]."""
        return from_mesh(tensor, self.mesh_device, self.mode).reshape(self.tokens, -1)

    def as_sequences(self, tokens) -> torch.Tensor:
        """[T, H] -> [B, S, H], the reference's layout."""
        return tokens.reshape(self.batch_size, self.seq_len, -1)

    def decode_prefix(self, module: str):
        """(reference cache, start position) for attention: in decode a random DECODE_POSITION-token prefix
        already in the cache; in prefill no cache and position 0."""
        if self.mode == "prefill":
            return None, 0
        torch.manual_seed(MODULES.index(module) + len(MODULES))
        prefix = torch.randn(self.batch_size, DECODE_POSITION, self.config.hidden_size)
        return reference.filled_cache(self.layer, prefix), DECODE_POSITION


def load_reference_cache(tt_attention, cache) -> None:
    """Copy the reference's cached keys/values (before the step under test appends to them) into the TT cache."""
    if cache is not None:
        tt_attention.load_cache(*(t.clone() for t in reference.cached_kv(cache)))


def run_rms_norm(case: ModuleCase, threshold):
    logger.info("Testing RMS Norm...")
    x = case.random_tokens("rms_norm")
    with torch.no_grad():
        ref = case.layer.input_layernorm(x)
    norm = RMSNorm(case.mesh_device, substate(case.state_dict, "input_layernorm"), case.config.rms_norm_eps)
    check("RMS Norm", case.from_mesh(norm(case.to_mesh(x), case.mode)), ref, threshold)


def run_attention(case: ModuleCase, threshold):
    logger.info("Testing Attention...")
    x = case.random_tokens("attention")
    cache, start = case.decode_prefix("attention")
    tt_attention = Attention(
        case.mesh_device, case.config, substate(case.state_dict, "self_attn"), case.args, case.batch_size
    )
    load_reference_cache(tt_attention, cache)
    ref = reference.attention(case.layer, case.as_sequences(x), start, cache)
    rope = RotarySetup(case.mesh_device, case.config, case.args)
    tt_out = tt_attention(case.to_mesh(x), case.mode, rope, start)
    check("Attention", case.from_mesh(tt_out), ref.reshape(case.tokens, -1), threshold)


def run_router(case: ModuleCase, threshold):
    logger.info("Testing TopK Router...")
    x = case.random_tokens("router")
    ref_indices, ref_weights = reference.router(case.layer, x)
    router = TopKRouter(case.mesh_device, case.config, substate(case.state_dict, "mlp.router"))
    tt_indices, tt_weights = router(case.to_mesh(x))
    indices = from_mesh(tt_indices, case.mesh_device, case.mode, token_dim=0).long()
    weights = from_mesh(tt_weights, case.mesh_device, case.mode, token_dim=0)
    sorted_tt, tt_order = torch.sort(indices, dim=-1)
    sorted_ref, ref_order = torch.sort(ref_indices, dim=-1)
    check("TopK Router indices", sorted_tt, sorted_ref, threshold)
    check(
        "TopK Router weights",
        torch.gather(weights, -1, tt_order),
        torch.gather(ref_weights, -1, ref_order),
        threshold,
    )


def run_experts(case: ModuleCase, threshold):
    path = "High Throughput Experts" if case.mode == "decode" else "Low Latency Experts"
    logger.info(f"Testing {path} (EP={case.args.num_devices}) for mesh shape {MESH_SHAPE}...")
    x = case.random_tokens("experts")
    indices, weights = reference.router(case.layer, x)
    ref = reference.experts(case.layer, x, indices, weights)
    experts = Experts(case.mesh_device, case.config, substate(case.state_dict, "mlp.experts"), case.args)
    k = case.config.num_experts_per_tok
    tt_indices = ttnn.reshape(case.to_mesh(indices, dtype=ttnn.uint16), (-1, k))
    tt_weights = ttnn.reshape(case.to_mesh(weights), (-1, k))
    tt_out = experts(case.to_mesh(x), tt_indices, tt_weights, case.mode)
    check("Experts", case.from_mesh(tt_out), ref, threshold)


def run_mlp(case: ModuleCase, threshold):
    logger.info("Testing Full MLP Pipeline...")
    x = case.random_tokens("mlp")
    ref = reference.mlp(case.layer, case.as_sequences(x))
    mlp = MLP(case.mesh_device, case.config, substate(case.state_dict, "mlp"), case.args)
    check(
        "MLP Pipeline",
        case.from_mesh(mlp(case.to_mesh(x), case.mode)),
        ref.reshape(case.tokens, -1),
        threshold,
    )


def run_decoder_layer(case: ModuleCase, threshold):
    logger.info("Testing Full Decoder Layer...")
    x = case.random_tokens("decoder")
    cache, start = case.decode_prefix("decoder")
    layer = DecoderLayer(case.mesh_device, case.config, case.state_dict, case.args, case.batch_size)
    load_reference_cache(layer.self_attn, cache)
    ref = reference.decoder(case.layer, case.as_sequences(x), start, cache)
    rope = RotarySetup(case.mesh_device, case.config, case.args)
    tt_out = layer(case.to_mesh(x), case.mode, rope, start)
    check("Decoder Layer", case.from_mesh(tt_out), ref.reshape(case.tokens, -1), threshold)


MODULE_TESTS = {
    "attention": run_attention,
    "rms_norm": run_rms_norm,
    "router": run_router,
    "experts": run_experts,
    "mlp": run_mlp,
    "decoder": run_decoder_layer,
}


def selected_modules(test_modules: str) -> list[str]:
    names = [name.strip() for name in test_modules.split(",") if name.strip()]
    if "all" in names:
        return list(MODULES)
    unknown = sorted(set(names) - set(MODULES))
    if unknown:
        pytest.fail(f"Unknown --test-modules {unknown}; choose from all, {', '.join(MODULES)}")
    return [name for name in MODULES if name in names]


@pytest.mark.parametrize(
    "mesh_device, device_params",
    [((2, 4), {"fabric_config": ttnn.FabricConfig.FABRIC_1D_RING, "trace_region_size": 8000000})],
    ids=["2x4"],
    indirect=True,
)
@pytest.mark.parametrize(
    "batch_size, seq_len", [(32, 1), (1, 128), (1, 1024)], ids=["decode_32", "prefill_128", "prefill_1024"]
)
@pytest.mark.parametrize("mesh_shape", [MESH_SHAPE], ids=["mesh_2x4"])
@pytest.mark.parametrize("layer_idx", [0], ids=["layer_0"])
def test_decoder(
    mesh_device,
    device_params,
    batch_size,
    seq_len,
    mesh_shape,
    layer_idx,
    test_modules,
    test_thresholds,
    reset_seeds,
):
    """Every selected module of layer ``layer_idx`` against the reference, in decode or prefill."""
    if tuple(mesh_device.shape) != tuple(mesh_shape):
        mesh_device = mesh_device.create_submesh(ttnn.MeshShape(*mesh_shape))
    use_real_weights = reference.hf_model_dir() is not None
    case = ModuleCase(
        mesh_device, TestFactory.setup_test(mesh_device, use_real_weights, layer_idx), batch_size, seq_len
    )
    modules = selected_modules(test_modules)
    logger.info(f"Running tests: {test_modules}")
    for name in modules:
        MODULE_TESTS[name](case, test_thresholds[case.mode][name])
    logger.info(f"✓ Tests completed successfully: {', '.join(modules)}")
