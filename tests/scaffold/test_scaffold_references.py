"""The workspace's reference callables for scaffolded tests (reference/fused_ops.py): experts' routing
against the per-expert MLP that experts_mlp computes, so a wrong expert, slot or weight shows."""

import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

WORKSPACE = Path(__file__).resolve().parents[2] / "examples" / "gpt_oss_mini"
HIDDEN, INTERMEDIATE, TOKENS, K = 64, 32, 32, 2


@pytest.fixture(scope="module")
def fused_ops():
    sys.path.insert(0, str(WORKSPACE))
    try:
        from models.demos.gpt_oss_mini.reference import fused_ops

        yield fused_ops
    finally:
        sys.path.remove(str(WORKSPACE))


def _weights(local_experts: int) -> SimpleNamespace:
    def tensor(*shape):
        return torch.randn(1, local_experts, *shape) / shape[0] ** 0.5

    return SimpleNamespace(
        w1=tensor(HIDDEN, INTERMEDIATE),
        w1_bias=tensor(1, INTERMEDIATE),
        w3=tensor(HIDDEN, INTERMEDIATE),
        w3_bias=tensor(1, INTERMEDIATE),
        w2=tensor(INTERMEDIATE, HIDDEN),
        w2_bias=tensor(1, HIDDEN),
    )


def _mapping(devices: int, per_device: int) -> torch.Tensor:
    """Expert e on device e // per_device, as the module's expert_mapping_tensor lays them out."""
    one_hot = torch.eye(devices, dtype=torch.int32).repeat_interleave(per_device, dim=0)
    return one_hot.reshape(1, 1, devices * per_device, devices)


def _case(fused_ops, local_experts: int, devices: int):
    torch.manual_seed(0)
    weights, args = _weights(local_experts), SimpleNamespace(swiglu_limit=7.0, swiglu_alpha=1.702)
    hidden_states = torch.randn(1, 1, TOKENS, HIDDEN)
    num_experts = local_experts * devices
    indices = torch.stack([torch.randperm(num_experts)[:K] for _ in range(TOKENS)])
    routing = torch.softmax(torch.randn(TOKENS, K), dim=-1)
    per_expert = fused_ops.experts_mlp(
        hidden_states,
        torch.ones(1, 1, 1, local_experts),
        TOKENS,
        weights.w1,
        weights.w1_bias,
        weights.w3,
        weights.w3_bias,
        args.swiglu_limit,
        args.swiglu_alpha,
        weights.w2,
        weights.w2_bias,
    )[:, 0]
    slots = indices % local_experts  # expert e is slot e % per_device of its device
    expected = (per_expert[slots, torch.arange(TOKENS)[:, None]] * routing[..., None]).sum(dim=1)
    return hidden_states, indices, routing, weights, args, expected


@pytest.mark.parametrize("local_experts, devices", [(1, 8), (2, 4)])
def test_experts_reference_mixes_each_tokens_chosen_experts(fused_ops, local_experts, devices):
    hidden_states, indices, routing, weights, args, expected = _case(fused_ops, local_experts, devices)
    mapping = _mapping(devices, local_experts)
    output = fused_ops.experts(hidden_states, indices, routing, weights, args, mapping)
    assert output.shape == hidden_states.shape
    torch.testing.assert_close(output.reshape(TOKENS, HIDDEN), expected, rtol=1e-4, atol=1e-4)

    # negatives: a token's first expert alone, the routing weights of another k, experts on other slots
    first_only = fused_ops.experts(
        hidden_states, indices, routing * torch.tensor([1.0, 0.0]), weights, args, mapping
    )
    assert not torch.allclose(first_only.reshape(TOKENS, HIDDEN), expected, atol=1e-3)
    if local_experts > 1:  # one expert per device: every slot holds the same (replicated) expert
        swapped = fused_ops.experts(hidden_states, indices, routing.flip(-1), weights, args, mapping)
        assert not torch.allclose(swapped.reshape(TOKENS, HIDDEN), expected, atol=1e-3)
        round_robin = torch.eye(devices).repeat(local_experts, 1).reshape(mapping.shape)  # e on device e % D
        moved = fused_ops.experts(hidden_states, indices, routing, weights, args, round_robin)
        assert not torch.allclose(moved.reshape(TOKENS, HIDDEN), expected, atol=1e-3)
