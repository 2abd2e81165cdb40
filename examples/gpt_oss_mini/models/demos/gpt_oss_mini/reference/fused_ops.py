"""PyTorch references of the fused ops, for scaffolded unit tests (a spec's ``reference = "...:callable"``).

The contract: a callable takes (some of) the ``<op>_ttnn`` function's parameters as keyword arguments, by the
same names. Tensor parameters arrive as torch tensors shaped like the module's per-device ttnn tensors (as the
profiler reports them: 4-d, weights in the module's own layout); the others are the values the module passes
(``top_k=2``, ``eps=1e-05``). It returns what ``<op>_ttnn`` returns, in the same order. Each one runs
transformers' GptOss module on the tensors, brought back to HuggingFace's layout.
"""

import torch
from transformers import GptOssConfig
from transformers.models.gpt_oss.modeling_gpt_oss import GptOssRMSNorm, GptOssTopKRouter


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
