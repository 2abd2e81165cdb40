"""Acceptance 5 of the workspace: the real-weights path, with a tiny checkpoint this test writes itself.

The checkpoint is a ``GptOssForCausalLM`` with the workspace's toy config saved by ``save_pretrained``
(config.json + model.safetensors); ``HF_MODEL`` points the workspace at it. Nothing is downloaded.
"""

import sys

import pytest
import torch
from workspace_helpers import WORKSPACE, requires_sim, run_workspace_pytest


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    from transformers import GptOssConfig, GptOssForCausalLM

    sys.path.insert(0, str(WORKSPACE))
    try:
        from models.demos.gpt_oss_mini.reference.model import TINY_CONFIG
    finally:
        sys.path.remove(str(WORKSPACE))
    torch.manual_seed(1234)
    model = GptOssForCausalLM(GptOssConfig(**TINY_CONFIG))
    with torch.no_grad():  # weights on the scale of a trained model's, not the 0.02 init
        for name, parameter in model.named_parameters():
            if any(part in name for part in ("router", "experts", "sinks")):
                parameter.normal_(0, 0.5)
    folder = tmp_path_factory.mktemp("gpt_oss_mini_checkpoint")
    model.save_pretrained(folder)
    return folder, model.state_dict()


def test_reference_loads_the_checkpoint_layer(checkpoint, monkeypatch):
    folder, state = checkpoint
    monkeypatch.setenv("HF_MODEL", str(folder))
    monkeypatch.syspath_prepend(str(WORKSPACE))
    from models.demos.gpt_oss_mini.reference import model as reference

    config = reference.load_config(use_real_weights=True)
    layer = reference.decoder_layer(config, 0, use_real_weights=True)
    assert config.num_local_experts == 8 and config._attn_implementation == "eager"
    for name, value in layer.state_dict().items():
        assert torch.equal(value, state[f"model.layers.0.{name}"].float()), name


@requires_sim
def test_workspace_runs_on_real_weights(checkpoint):
    folder, _ = checkpoint
    decoder_test = "models/demos/gpt_oss_mini/tests/unit/test_modules.py::test_decoder"
    module = run_workspace_pytest(decoder_test, "-k", "decode_32", HF_MODEL=str(folder))
    assert module.returncode == 0, module.output[-3000:]
    assert len(module.lines("Decoder Layer test passed. Output:")) == 1

    fused_tests = "models/demos/gpt_oss_mini/tests/fused_op_unit_tests"
    selection = (
        "real_weights and program_cache and not no_program_cache and eager and not device_perf and not 1024"
    )
    fused = run_workspace_pytest(fused_tests, "-k", selection, "-rA", HF_MODEL=str(folder))
    assert fused.returncode == 0, fused.output[-3000:]
    lines = fused.output.splitlines()
    summary = [line for line in lines if line.startswith(("PASSED ", "SKIPPED ")) and "::" in line]
    passed = [line for line in summary if line.startswith("PASSED ")]
    # router, experts_mlp, rms_norm, attention_qkv and expert_weighting: decode + prefill_128, multi- and
    # single-device; experts: decode, multi-device only
    assert len(passed) == 21 and all("real_weights" in line for line in passed), summary
    assert all("CCL ops" in line for line in summary if line.startswith("SKIPPED "))
