"""PyTorch references of the fused ops, for scaffolded unit tests (a spec's ``reference = "...:callable"``).

The contract: a callable takes (some of) the ``<op>_ttnn`` function's parameters as keyword arguments, by the
same names. Tensor parameters arrive as torch tensors shaped like the module's per-device ttnn tensors (as the
profiler reports them: 4-d, weights in the module's own layout); the others are the values the module passes
(``top_k=2``, ``eps=1e-05``); a container the module passes whole (``weights``, ``args``) arrives as a
namespace of its fields, torch tensors and values alike. It returns what ``<op>_ttnn`` returns, in the same
order. Each one runs transformers' GptOss module on the tensors, brought back to HuggingFace's layout.
"""

from types import SimpleNamespace

import torch
from transformers import GptOssConfig
from transformers.models.gpt_oss.modeling_gpt_oss import GptOssExperts, GptOssRMSNorm, GptOssTopKRouter


def router(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, top_k: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """GptOssTopKRouter: tokens [..., T, H], weight [..., H, E] (the module keeps W transposed), bias [..., E]
    -> (indices, weights) [..., T, top_k], best expert first."""
    hidden_size, num_experts = weight.shape[-2:]
    config = GptOssConfig(hidden_size=hidden_size, num_local_experts=num_experts, num_experts_per_tok=top_k)
    module = GptOssTopKRouter(config)
    with torch.no_grad():
        module.weight.copy_(weight.reshape(hidden_size, num_experts).T)
        module.bias.copy_(bias.reshape(num_experts))
        _, scores, indices = module(x.reshape(-1, hidden_size).float())
    batch = x.shape[:-1]
    return indices.reshape(*batch, top_k), scores.reshape(*batch, top_k)


def rms_norm(x: torch.Tensor, eps: float, weight: torch.Tensor) -> torch.Tensor:
    """GptOssRMSNorm over the last dimension: x [..., H]; weight [1, 1, H / 32, 32] (the module's row-major sticks)."""
    module = GptOssRMSNorm(x.shape[-1], eps=eps)
    with torch.no_grad():
        module.weight.copy_(weight.reshape(-1))
        return module(x.float())


def experts_mlp(
    experts_input: torch.Tensor,
    sparsity: torch.Tensor,
    sparsity_block_size: int,
    w1: torch.Tensor,
    w1_bias: torch.Tensor,
    w3: torch.Tensor,
    w3_bias: torch.Tensor,
    swiglu_limit: float,
    swiglu_alpha: float,
    w2: torch.Tensor,
    w2_bias: torch.Tensor,
) -> torch.Tensor:
    """GptOssExperts' MLP of each of a device's experts on every token: tokens [..., T, H]; gate w1 and up w3
    [1, E, H, I], down w2 [1, E, I, H], biases [1, E, 1, out]; sparsity [..., T / block, E] marks the
    32-token blocks an expert computes (0: not computed, the output is 0 there) -> [E, 1, T, H]."""
    experts, hidden, _ = w1.shape[-3:]
    module = _gpt_oss_experts(w1, w1_bias, w3, w3_bias, w2, w2_bias, swiglu_limit, swiglu_alpha)
    tokens = experts_input.reshape(-1, hidden).float()
    active = (sparsity.reshape(-1, experts) != 0).repeat_interleave(sparsity_block_size, dim=0)  # [T, E]
    outputs = []
    with torch.no_grad():
        for expert in range(experts):  # every token routed to this expert alone, with weight 1
            routed = torch.full((tokens.shape[0], 1), expert)
            output = module(tokens, router_indices=routed, routing_weights=torch.ones(tokens.shape[0], 1))
            outputs.append(output * active[: tokens.shape[0], expert, None])
    return torch.stack(outputs).reshape(experts, 1, tokens.shape[0], hidden)


def experts(
    hidden_states: torch.Tensor,
    topk_indices: torch.Tensor,
    topk_weights: torch.Tensor,
    weights: SimpleNamespace,
    args: SimpleNamespace,
    expert_mapping: torch.Tensor,
) -> torch.Tensor:
    """GptOssExperts with routing: sum over k of topk_weights[t, k] * expert topk_indices[t, k] on token t.
    Tokens [..., T, H], routing [..., T, k]; ``weights`` holds one device's experts (w1/w3 [1, E_local, H, I],
    w2 [1, E_local, I, H], biases [1, E_local, 1, out]); expert_mapping [..., E, D] is one-hot (expert e lives
    on device d), and expert e is the device's n-th local expert when n lower experts share its device.
    -> [..., T, H]."""
    mapping = expert_mapping.reshape(expert_mapping.shape[-2:]) != 0  # [E, D]
    device = mapping.int().argmax(dim=-1)
    slot = torch.stack([(device[:expert] == device[expert]).sum() for expert in range(len(device))])
    local = [
        tensor[:, slot] for tensor in (weights.w1, weights.w1_bias, weights.w3, weights.w3_bias, weights.w2)
    ]
    module = _gpt_oss_experts(*local, weights.w2_bias[:, slot], args.swiglu_limit, args.swiglu_alpha)
    hidden = hidden_states.shape[-1]
    k = topk_indices.shape[-1]
    tokens = hidden_states.reshape(-1, hidden).float()
    with torch.no_grad():
        output = module(
            tokens,
            router_indices=topk_indices.reshape(-1, k).long(),
            routing_weights=topk_weights.reshape(-1, k).float(),
        )
    return output.reshape(hidden_states.shape)


def _gpt_oss_experts(w1, w1_bias, w3, w3_bias, w2, w2_bias, swiglu_limit, swiglu_alpha) -> GptOssExperts:
    """GptOssExperts holding the experts of gate w1 and up w3 [1, E, H, I], down w2 [1, E, I, H] and biases
    [1, E, 1, out]."""
    experts, hidden, intermediate = w1.shape[-3:]
    config = GptOssConfig(
        hidden_size=hidden,
        intermediate_size=intermediate,
        num_local_experts=experts,
        swiglu_limit=swiglu_limit,
    )
    config.swiglu_alpha = swiglu_alpha
    module = GptOssExperts(config)
    # HF interleaves gate (even columns) and up (odd columns) in gate_up_proj [E, H, 2I]
    gate_up = torch.stack(
        [w1.reshape(experts, hidden, intermediate), w3.reshape(experts, hidden, intermediate)], -1
    )
    gate_up_bias = torch.stack(
        [w1_bias.reshape(experts, intermediate), w3_bias.reshape(experts, intermediate)], -1
    )
    with torch.no_grad():
        module.gate_up_proj.copy_(gate_up.reshape(experts, hidden, 2 * intermediate))
        module.gate_up_proj_bias.copy_(gate_up_bias.reshape(experts, 2 * intermediate))
        module.down_proj.copy_(w2.reshape(experts, intermediate, hidden))
        module.down_proj_bias.copy_(w2_bias.reshape(experts, hidden))
    return module


def attention_qkv(hidden_states, wqkv, wqkv_bias, num_heads, num_kv_heads, mode):
    """The fused QKV projection, then the heads: decode [1, B, heads, d] per user, prefill [1, heads, S, d]."""
    xqkv = hidden_states.float() @ wqkv.float() + wqkv_bias.float()
    head_dim = xqkv.shape[-1] // (num_heads + 2 * num_kv_heads)
    splits = [num_heads * head_dim, num_kv_heads * head_dim, num_kv_heads * head_dim]
    heads = []
    for part in torch.split(xqkv, splits, dim=-1):
        tokens = part.shape[-2]
        per_token = part.reshape(1, tokens, -1, head_dim)  # [1, T, heads, d]
        heads.append(per_token if mode == "decode" else per_token.transpose(1, 2))
    return tuple(heads)


def expert_weighting(mode, post_combine=None, routing=None, expert_output=None, local_routing=None):
    """Each chosen expert's output times its routing weight, summed over the experts (dim 0, kept):
    decode combines [k, 1, T, H] per token, prefill the local experts [E_local, 1, S, H]."""
    outputs, weights = (post_combine, routing) if mode == "decode" else (expert_output, local_routing)
    return (outputs.float() * weights.float()).sum(dim=0, keepdim=True)
