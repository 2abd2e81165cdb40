"""Setup shared by the module test and the fused-op unit tests (tt-metal's gpt_oss tests/test_factory.py):
the mesh the tests open, the reference layer and its weights, and moving activations to and from the mesh."""

import pytest
import torch

import ttnn
from models.demos.gpt_oss_mini.reference import model as reference
from models.demos.gpt_oss_mini.tt.model_config import DECODE_BATCH, ModelArgs, activation_memory_config

MESH_SHAPE = (2, 4)
SEED = 0


class TestFactory:
    __test__ = False  # not a test class, despite the name tt-metal gave it

    @staticmethod
    def setup_test(mesh_device, use_real_weights: bool = False, layer_idx: int = 0) -> dict:
        """Config, reference layer (float32) and its state dict; the same weights on every run."""
        if use_real_weights and reference.hf_model_dir() is None:
            pytest.skip(f"{reference.HF_MODEL_ENV} is not set: real weights need a checkpoint directory")
        torch.manual_seed(SEED)
        config = reference.load_config(use_real_weights)
        layer = reference.decoder_layer(config, layer_idx, use_real_weights)
        return {
            "config": config,
            "reference_layer": layer,
            "state_dict": layer.state_dict(),
            "args": ModelArgs.from_hf(config, mesh_device),
        }


def tokens_for(mode: str, seq_len: int) -> int:
    """Global token count of a test case: decode = the batch (seq 1), prefill = batch 1 x seq_len."""
    return DECODE_BATCH if mode == "decode" else seq_len


def tokens_per_device(mode: str, seq_len: int, mesh_device) -> int:
    """Decode users are sharded over mesh rows; prefill tokens are replicated."""
    rows = tuple(mesh_device.shape)[0]
    return DECODE_BATCH // rows if mode == "decode" else seq_len


def to_mesh(
    tokens: torch.Tensor,
    mesh_device,
    mode: str,
    dtype=ttnn.bfloat16,
    layout=ttnn.TILE_LAYOUT,
    memory_config=None,
):
    """Token-major activations [T, ...] -> [1, 1, T/rows, ...] per device: decode rows-sharded, prefill replicated."""
    x = tokens.reshape(1, 1, *tokens.shape)
    shape = tuple(mesh_device.shape)
    mapper = (
        ttnn.ShardTensor2dMesh(mesh_device, dims=(2, None), mesh_shape=shape)
        if mode == "decode" and shape[0] > 1
        else ttnn.ReplicateTensorToMesh(mesh_device)
    )
    return ttnn.from_torch(
        x,
        dtype=dtype,
        layout=layout,
        device=mesh_device,
        mesh_mapper=mapper,
        memory_config=memory_config or activation_memory_config(mode),
    )


def from_mesh(tensor, mesh_device, mode: str, token_dim: int = 2) -> torch.Tensor:
    """The inverse of ``to_mesh`` on one column: rows concatenated along ``token_dim`` (decode), else device 0."""
    shards = ttnn.get_device_tensors(tensor)
    rows, columns = tuple(mesh_device.shape)
    if mode != "decode" or rows == 1:
        return ttnn.to_torch(shards[0]).float()
    return torch.cat([ttnn.to_torch(shards[row * columns]).float() for row in range(rows)], dim=token_dim)
