"""One gpt-oss decoder layer: pre-norm attention and pre-norm MoE, each with a residual (GptOssDecoderLayer)."""

import ttnn

from .attention import Attention
from .mlp import MLP
from .model_config import activation_memory_config, substate
from .rms_norm import RMSNorm


class DecoderLayer:
    def __init__(self, mesh_device, hf_config, state_dict, args, batch_size: int):
        eps = hf_config.rms_norm_eps
        self.input_layernorm = RMSNorm(mesh_device, substate(state_dict, "input_layernorm"), eps)
        self.self_attn = Attention(mesh_device, hf_config, substate(state_dict, "self_attn"), args, batch_size)
        self.post_attention_layernorm = RMSNorm(mesh_device, substate(state_dict, "post_attention_layernorm"), eps)
        self.mlp = MLP(mesh_device, hf_config, substate(state_dict, "mlp"), args)

    def __call__(self, hidden_states, mode: str, rope, start_pos: int):
        """[1, 1, T, H] at positions start_pos.. -> [1, 1, T, H]."""
        memory_config = activation_memory_config(mode)
        attention_in = self.input_layernorm(hidden_states, mode)
        attention_out = self.self_attn(attention_in, mode, rope, start_pos)
        ttnn.deallocate(attention_in)
        hidden_states = ttnn.add(hidden_states, attention_out, memory_config=memory_config)
        ttnn.deallocate(attention_out)
        mlp_in = self.post_attention_layernorm(hidden_states, mode)
        mlp_out = self.mlp(mlp_in, mode)
        ttnn.deallocate(mlp_in)
        output = ttnn.add(hidden_states, mlp_out, memory_config=memory_config)
        ttnn.deallocate(mlp_out)
        return output
