"""Rotary embedding tables for ttnn.experimental.rotary_embedding_llama.

HF's gpt-oss rotates the two halves of a head (x[i], x[i + d/2]); rotary_embedding_llama rotates adjacent pairs
(x[2i], x[2i+1]) through its transformation matrix. Permuting the q/k projection outputs with
``interleave_permutation`` turns one into the other, and q.k is unchanged because q and k get the same
permutation. The cos/sin values are HF's own (YaRN scaled), repeated for both members of a pair.
"""

import torch
from transformers.models.gpt_oss.modeling_gpt_oss import GptOssRotaryEmbedding

import ttnn

from .model_config import replicated

TILE = 32


def interleave_permutation(head_dim: int) -> torch.Tensor:
    """new[2i] = old[i], new[2i + 1] = old[i + head_dim / 2]."""
    half = head_dim // 2
    return torch.stack([torch.arange(half), torch.arange(half) + half], dim=-1).reshape(-1)


def rotation_matrix() -> torch.Tensor:
    """[1, 1, 32, 32]: x @ m turns each pair (a, b) into (-b, a)."""
    matrix = torch.zeros(TILE, TILE)
    matrix[torch.arange(1, TILE, 2), torch.arange(0, TILE, 2)] = -1
    matrix[torch.arange(0, TILE, 2), torch.arange(1, TILE, 2)] = 1
    return matrix.reshape(1, 1, TILE, TILE)


class RotarySetup:
    def __init__(self, mesh_device, hf_config, args):
        self.mesh_device = mesh_device
        positions = torch.arange(args.max_seq_len).reshape(1, -1)
        cos, sin = GptOssRotaryEmbedding(hf_config)(torch.zeros(1), positions)
        self.cos_table = cos[0].repeat_interleave(2, dim=-1)  # [max_seq_len, head_dim]
        self.sin_table = sin[0].repeat_interleave(2, dim=-1)
        self.transformation_mat = self._device(rotation_matrix())

    def prefill(self, seq_len: int):
        """(cos, sin) [1, 1, S, head_dim] for positions 0..S-1."""
        return tuple(
            self._device(table[:seq_len].reshape(1, 1, seq_len, -1))
            for table in (self.cos_table, self.sin_table)
        )

    def decode(self, position: int, users: int):
        """(cos, sin) [1, users, 1, head_dim]: every user at ``position``."""
        return tuple(
            self._device(table[position].expand(1, users, 1, -1).contiguous())
            for table in (self.cos_table, self.sin_table)
        )

    def _device(self, tensor):
        return ttnn.from_torch(
            tensor,
            dtype=ttnn.bfloat16,
            layout=ttnn.TILE_LAYOUT,
            device=self.mesh_device,
            mesh_mapper=replicated(self.mesh_device),
        )
