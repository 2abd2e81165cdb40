"""Dimensions, mesh layout, dtypes and memory configs of the toy gpt-oss layer, derived from the HF config.

Mesh layout (as tt-metal's throughput experts on a Galaxy, scaled to a 2x4 T3K):
- decode: the batch is sharded over mesh rows and replicated over columns (32 users -> 16 per device);
- prefill: batch 1, the sequence replicated on every device;
- experts: one expert per device (8 on 2x4); tokens travel along rows (all_to_all dispatch/combine on axis 0)
  and the per-column partial outputs are summed along columns (all_reduce on axis 1).
"""

import math
from dataclasses import dataclass

import ttnn

DECODE_BATCH = 32
PREFILL_SEQ_LENS = (128, 1024)
MAX_SEQ_LEN = 1024
SPARSITY_BLOCK_SIZE = 32  # tokens per sparse_matmul block: one tile row
DISPATCH_AXIS = 0  # all_to_all_dispatch / all_to_all_combine move tokens along mesh rows
REDUCE_AXIS = 1  # expert partials of a token live in different columns


@dataclass(frozen=True)
class ModelArgs:
    hidden_size: int
    intermediate_size: int
    head_dim: int
    num_heads: int
    num_kv_heads: int
    num_experts: int
    experts_per_token: int
    swiglu_alpha: float
    swiglu_limit: float
    rms_norm_eps: float
    mesh_shape: tuple[int, int]
    max_seq_len: int = MAX_SEQ_LEN
    sparsity_block_size: int = SPARSITY_BLOCK_SIZE
    dispatch_axis: int = DISPATCH_AXIS
    reduce_axis: int = REDUCE_AXIS

    @classmethod
    def from_hf(cls, hf_config, mesh_device) -> "ModelArgs":
        args = cls(
            hidden_size=hf_config.hidden_size,
            intermediate_size=hf_config.intermediate_size,
            head_dim=hf_config.head_dim,
            num_heads=hf_config.num_attention_heads,
            num_kv_heads=hf_config.num_key_value_heads,
            num_experts=hf_config.num_local_experts,
            experts_per_token=hf_config.num_experts_per_tok,
            swiglu_alpha=hf_config.swiglu_alpha,
            swiglu_limit=hf_config.swiglu_limit,
            rms_norm_eps=hf_config.rms_norm_eps,
            mesh_shape=tuple(mesh_device.shape),
        )
        if args.num_experts % args.num_devices:
            raise ValueError(f"{args.num_experts} experts do not divide over {args.num_devices} devices")
        return args

    @property
    def num_devices(self) -> int:
        return math.prod(self.mesh_shape)

    @property
    def experts_per_device(self) -> int:
        return self.num_experts // self.num_devices

    @property
    def dispatch_devices(self) -> int:
        return self.mesh_shape[self.dispatch_axis]

    @property
    def scaling(self) -> float:
        return self.head_dim**-0.5

    def users_per_device(self, batch_size: int) -> int:
        return batch_size // self.mesh_shape[0]


def activation_memory_config(mode: str):
    """Decode activations are a few tiles: they stay in L1. Prefill activations go to DRAM."""
    return ttnn.L1_MEMORY_CONFIG if mode == "decode" else ttnn.DRAM_MEMORY_CONFIG


def replicated(mesh_device):
    return ttnn.ReplicateTensorToMesh(mesh_device)


def weight_tensor(torch_tensor, mesh_device, dtype=ttnn.bfloat16, layout=ttnn.TILE_LAYOUT, mesh_mapper=None):
    """A weight on every device (or sharded by ``mesh_mapper``), in DRAM like every weight of the model."""
    return ttnn.from_torch(
        torch_tensor,
        dtype=dtype,
        layout=layout,
        device=mesh_device,
        memory_config=ttnn.DRAM_MEMORY_CONFIG,
        mesh_mapper=mesh_mapper or replicated(mesh_device),
    )


def substate(state_dict: dict, prefix: str) -> dict:
    """The entries under ``prefix.`` with the prefix removed (``mlp.router.weight`` -> ``weight``)."""
    start = prefix + "."
    return {key[len(start) :]: value for key, value in state_dict.items() if key.startswith(start)}
