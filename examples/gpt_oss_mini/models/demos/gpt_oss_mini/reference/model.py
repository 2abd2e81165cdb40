"""The PyTorch reference: HuggingFace transformers' GptOss modules at toy size.

Random weights follow tt-metal's gpt_oss tests: a fresh ``GptOssDecoderLayer`` whose router, experts and attention
sinks are re-drawn from N(0, 1) (the default init leaves the expert tensors uninitialised). Real weights come from
the directory in ``HF_MODEL`` (``config.json`` + ``*.safetensors``, as ``save_pretrained`` writes them); nothing is
ever downloaded. The tensors must be plain (the MXFP4 expert blocks of the published gpt-oss checkpoints would need
dequantizing first) and the config must put one expert per device of the 2x4 mesh.
"""

import os
from pathlib import Path

import torch
from safetensors import safe_open
from transformers import GptOssConfig
from transformers.cache_utils import DynamicCache
from transformers.models.gpt_oss.modeling_gpt_oss import GptOssDecoderLayer, GptOssRotaryEmbedding

MODEL_NAME = "gpt-oss-mini"
HF_MODEL_ENV = "HF_MODEL"

# Small enough that a whole layer runs in milliseconds on a CPU, shaped like gpt-oss: GQA with sinks, YaRN RoPE
# (the config's default), clamped-SwiGLU experts with biases. 8 experts = one per device of the 2x4 mesh.
# Layer 0 of gpt-oss is a sliding-window layer; the window (128) would only matter beyond 128 tokens, and the toy
# keeps full attention so prefill_1024 exercises plain causal SDPA.
TINY_CONFIG = {
    "hidden_size": 64,
    "intermediate_size": 64,
    "head_dim": 32,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "num_local_experts": 8,
    "num_experts_per_tok": 2,
    "num_hidden_layers": 1,
    "vocab_size": 128,
    "layer_types": ["full_attention"],
    "max_position_embeddings": 131072,
}
_RANDOM_PARAMETERS = ("router", "experts", "sinks")  # what tt-metal's tests re-draw from N(0, 1)


def hf_model_dir() -> Path | None:
    value = os.environ.get(HF_MODEL_ENV)
    return Path(value) if value else None


def tiny_config() -> GptOssConfig:
    return _eager(GptOssConfig(**TINY_CONFIG))


def load_config(use_real_weights: bool = False) -> GptOssConfig:
    """The checkpoint's config with real weights, else the built-in toy config."""
    if not use_real_weights:
        return tiny_config()
    return _eager(GptOssConfig.from_pretrained(_require_model_dir()))


def decoder_layer(config: GptOssConfig, layer_idx: int = 0, use_real_weights: bool = False) -> GptOssDecoderLayer:
    """The reference layer in float32 eval mode, with random or checkpoint weights."""
    layer = GptOssDecoderLayer(config, layer_idx=layer_idx)
    with torch.no_grad():
        if use_real_weights:
            layer.load_state_dict(layer_state_dict(_require_model_dir(), layer_idx), strict=True)
        else:
            for name, parameter in layer.named_parameters():
                if any(part in name for part in _RANDOM_PARAMETERS):
                    parameter.normal_(0, 1)
    return layer.float().eval()


def layer_state_dict(model_dir: Path, layer_idx: int) -> dict[str, torch.Tensor]:
    """``model.layers.<i>.*`` from every safetensors file of the checkpoint, prefix removed."""
    prefix = f"model.layers.{layer_idx}."
    state = {}
    for path in sorted(Path(model_dir).glob("*.safetensors")):
        with safe_open(path, framework="pt") as weights:
            state.update({key[len(prefix) :]: weights.get_tensor(key) for key in weights.keys() if key.startswith(prefix)})
    if not state:
        raise FileNotFoundError(f"No weights for layer {layer_idx} ({prefix}*) in {model_dir}/*.safetensors")
    return {key: value.float() for key, value in state.items()}


def rope_cos_sin(config: GptOssConfig, positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """cos/sin halves [len(positions), head_dim / 2] exactly as the reference attention uses them (YaRN scaled)."""
    rotary = GptOssRotaryEmbedding(config)
    probe = torch.zeros(1, dtype=torch.float32)
    cos, sin = rotary(probe, positions.reshape(1, -1))
    return cos[0], sin[0]


def causal_mask(query_len: int, start_pos: int) -> torch.Tensor:
    """Additive mask [1, 1, query_len, start_pos + query_len]: query i sees keys 0..start_pos + i."""
    keys = torch.arange(start_pos + query_len)
    queries = torch.arange(query_len)[:, None] + start_pos
    mask = torch.zeros(query_len, start_pos + query_len)
    mask[keys[None, :] > queries] = float("-inf")
    return mask[None, None]


def attention(layer: GptOssDecoderLayer, x: torch.Tensor, start_pos: int, cache: DynamicCache | None = None):
    """Reference self-attention of ``x`` [B, S, H] at positions start_pos.., appending to ``cache``."""
    config = layer.self_attn.config
    cos, sin = rope_cos_sin(config, torch.arange(start_pos, start_pos + x.shape[1]))
    with torch.no_grad():
        out, _ = layer.self_attn(
            hidden_states=x,
            position_embeddings=(cos[None], sin[None]),
            attention_mask=causal_mask(x.shape[1], start_pos),
            cache=cache,
        )
    return out


def filled_cache(layer: GptOssDecoderLayer, prefix: torch.Tensor) -> DynamicCache:
    """A KV cache holding ``prefix`` [B, P, H] run through the layer's attention (post-RoPE keys, values)."""
    cache = DynamicCache(config=layer.self_attn.config)
    attention(layer, prefix, 0, cache)
    return cache


def cached_kv(cache: DynamicCache, layer_idx: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """(keys, values) [B, kv_heads, P, head_dim] from a reference cache."""
    entry = cache.layers[layer_idx]
    return entry.keys, entry.values


def router(layer: GptOssDecoderLayer, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(indices, weights) [T, K] of the reference top-k router for tokens ``x`` [T, H]."""
    with torch.no_grad():
        _, scores, indices = layer.mlp.router(x)
    return indices, scores


def experts(layer: GptOssDecoderLayer, x: torch.Tensor, indices: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Reference MoE experts output [T, H] for tokens ``x`` [T, H] routed by (indices, weights) [T, K]."""
    with torch.no_grad():
        return layer.mlp.experts(x, indices, weights)


def mlp(layer: GptOssDecoderLayer, x: torch.Tensor) -> torch.Tensor:
    """Router + experts for ``x`` [B, S, H]."""
    with torch.no_grad():
        out, _ = layer.mlp(x)
    return out


def decoder(layer: GptOssDecoderLayer, x: torch.Tensor, start_pos: int, cache: DynamicCache | None = None):
    """The whole layer for ``x`` [B, S, H] at positions start_pos.."""
    config = layer.self_attn.config
    cos, sin = rope_cos_sin(config, torch.arange(start_pos, start_pos + x.shape[1]))
    with torch.no_grad():
        return layer(
            x, attention_mask=causal_mask(x.shape[1], start_pos), position_embeddings=(cos[None], sin[None]), cache=cache
        )


def _eager(config: GptOssConfig) -> GptOssConfig:
    """Plain PyTorch attention and experts loops: no kernels, deterministic on a CPU."""
    config._attn_implementation = "eager"
    config._experts_implementation = "eager"
    return config


def _require_model_dir() -> Path:
    model_dir = hf_model_dir()
    if model_dir is None:
        raise RuntimeError(f"Real weights need {HF_MODEL_ENV}=<dir with config.json and *.safetensors>")
    return model_dir
