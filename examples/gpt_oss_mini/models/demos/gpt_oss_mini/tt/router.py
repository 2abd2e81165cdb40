"""Top-k router: linear -> topk -> softmax over the selected logits (tt-metal's TopKRouter)."""

import ttnn

from .model_config import weight_tensor


class TopKRouter:
    def __init__(self, mesh_device, hf_config, state_dict):
        self.top_k = hf_config.num_experts_per_tok
        self.num_experts = hf_config.num_local_experts
        self.hidden_size = hf_config.hidden_size
        self.weight = weight_tensor(state_dict["weight"].transpose(0, 1), mesh_device)
        self.bias = weight_tensor(state_dict["bias"].unsqueeze(0), mesh_device)
        self.softmax_compute_config = ttnn.init_device_compute_kernel_config(
            mesh_device.arch(),
            math_fidelity=ttnn.MathFidelity.HiFi3,
            math_approx_mode=False,
            fp32_dest_acc_en=True,
            packer_l1_acc=False,
        )

    def __call__(self, hidden_states):
        """hidden_states [1, 1, T, H] -> (indices [T, k] uint16, weights [T, k] bfloat16), best expert first."""
        x = ttnn.reshape(hidden_states, (-1, self.hidden_size))
        # Decode logits are one tile: L1. Prefill logits scale with the sequence: DRAM.
        memory_config = ttnn.L1_MEMORY_CONFIG if x.shape[0] <= 32 else ttnn.DRAM_MEMORY_CONFIG
        logits = ttnn.linear(x, self.weight, bias=self.bias, memory_config=memory_config)
        weights, indices = ttnn.topk(logits, k=self.top_k, dim=-1, sorted=True)
        ttnn.deallocate(logits)
        weights = ttnn.softmax(
            weights, dim=-1, numeric_stable=True, compute_kernel_config=self.softmax_compute_config
        )
        return indices, weights
