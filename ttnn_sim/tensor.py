"""Tensor: per-device torch shards with a TT dtype, layout and memory config.

Shards hold the logical per-device shape; float formats are stored as float32 already rounded to the dtype
(numerics.quantize), integer formats as int64. A multi-device tensor's `shape` is the per-device shape, as
in ttnn.
"""

from __future__ import annotations

import torch

from ttnn_sim import clock, cost, numerics
from ttnn_sim.threads import on_sim_threads
from ttnn_sim.types import (
    DRAM_MEMORY_CONFIG,
    DataType,
    Layout,
    MemoryConfig,
    Shape,
    StorageType,
)

_TORCH_TO_TT = {
    torch.bfloat16: DataType.BFLOAT16,
    torch.float32: DataType.FLOAT32,
    torch.float16: DataType.BFLOAT16,
    torch.float64: DataType.FLOAT32,
    torch.int32: DataType.INT32,
    torch.int64: DataType.INT32,
    torch.int16: DataType.UINT16,
    torch.uint8: DataType.UINT8,
    torch.bool: DataType.UINT8,
}
_TT_TO_TORCH = {
    DataType.BFLOAT16: torch.bfloat16,
    DataType.FLOAT32: torch.float32,
    DataType.BFLOAT8_B: torch.float32,
    DataType.BFLOAT4_B: torch.float32,
    DataType.UINT32: torch.int64,
    DataType.INT32: torch.int32,
    DataType.UINT16: torch.int32,
    DataType.UINT8: torch.uint8,
}


class Tile:
    def __init__(self, shape=(32, 32), transpose_tile: bool = False):
        self.tile_shape = list(shape)

    def __str__(self) -> str:
        return f"Tile with shape: [{self.tile_shape[0]}, {self.tile_shape[1]}]"

    __repr__ = __str__  # stable across instances: program-cache keys and ATTRIBUTES print it


def shared_storage(shards, dtype: DataType, layout: Layout) -> list[torch.Tensor]:
    """to_storage for each shard, converting a shard object that several devices share only once, so a
    replicated tensor stays one torch tensor that every device's shard refers to (the ops then compute it
    once)."""
    converted: dict[int, torch.Tensor] = {}
    stored = []
    for shard in shards:
        if id(shard) not in converted:
            converted[id(shard)] = to_storage(shard, dtype, layout)
        stored.append(converted[id(shard)])
    return stored


def restored(source: Tensor, dtype: DataType, layout: Layout) -> list[torch.Tensor]:
    """source's shards as a tensor of `dtype` stores them. Shards already stored in that dtype are kept as
    they are (rounding to a dtype twice changes nothing, and stored shards are never written in place), so
    shards that devices share stay shared."""
    if source.dtype is dtype:
        return list(source.shards)
    return shared_storage(source.shards, dtype, layout)


def to_storage(t: torch.Tensor, dtype: DataType, layout: Layout) -> torch.Tensor:
    """Round a torch tensor to what `dtype` can hold, in the sim's storage dtype."""
    if dtype.is_float:
        return numerics.quantize(t.detach().to(torch.float32), dtype, layout.name, canonical_nan=False)
    low_high = {DataType.UINT8: (0, 255), DataType.UINT16: (0, 65535), DataType.UINT32: (0, 2**32 - 1),
                DataType.INT32: (-(2**31), 2**31 - 1)}[dtype]
    return t.detach().to(torch.float64).trunc().clamp(*low_high).to(torch.int64)


class Buffer:
    """A device buffer: its allocations on each chip, shared by the tensors that view it."""

    def __init__(self):
        self.allocations: list = []  # (chip, buffer type, bytes per bank)
        self.owners = 0
        self.freed = False

    def free(self) -> None:
        for chip, buffer_type, per_bank in self.allocations:
            chip.allocator(buffer_type).free(per_bank)
        self.allocations = []
        self.freed = True


class Tensor:
    def __init__(self, shards, dtype: DataType, layout: Layout, device=None, memory_config=None, buffer=None):
        self.shards = list(shards)
        self.dtype = dtype
        self.layout = layout
        self._device = device
        self._memory_config = memory_config if device is not None else None
        self.buffer = buffer or Buffer()
        self.buffer.owners += 1
        self._released = False

    # --- attributes ttnn exposes -------------------------------------------------------------
    @property
    def shape(self) -> Shape:
        return Shape(self.shards[0].shape)

    @property
    def padded_shape(self) -> Shape:
        if self.layout is Layout.TILE:
            return Shape(numerics.tile_padded_shape(tuple(self.shards[0].shape)))
        return self.shape

    @property
    def tile(self) -> Tile:
        return Tile()

    def get_dtype(self) -> DataType:
        return self.dtype

    def get_layout(self) -> Layout:
        return self.layout

    def memory_config(self) -> MemoryConfig | None:
        return self._memory_config

    def device(self):
        return self._device

    def storage_type(self) -> StorageType:
        return StorageType.DEVICE if self._device is not None else StorageType.HOST

    @property
    def deallocated(self) -> bool:
        return self._released or self.buffer.freed

    def is_allocated(self) -> bool:
        return not self.deallocated

    def deallocate(self, force: bool = False) -> None:
        """ttnn's rule: the buffer is freed when forced or when this tensor is its only owner (a view shares
        its buffer with the tensor it views); either way this tensor can no longer be used."""
        if self._device is None or self._released:
            return
        self._released = True
        if force or self.buffer.owners == 1:
            self.buffer.free()
        self._drop_ownership()

    def volume(self) -> int:
        return self.padded_shape.volume()

    def logical_volume(self) -> int:
        return self.shape.volume()

    def buffer_bytes(self) -> int:
        return numerics.buffer_bytes(tuple(self.padded_shape), self.dtype, self.layout.name)

    def spec_key(self) -> tuple:
        """What the program cache keys on for an input: shape, dtype, layout, memory config."""
        return (tuple(self.shape), self.dtype, self.layout, str(self._memory_config))

    def check_alive(self) -> None:
        if self.deallocated:
            raise RuntimeError("TT_FATAL @ tensor.cpp: tensor.is_allocated()\nBuffer is not allocated")

    def view(self, shards) -> Tensor:
        """A tensor over the same buffer with other per-device shapes (a reshape that moves no data)."""
        return Tensor(shards, self.dtype, self.layout, self._device, self._memory_config, buffer=self.buffer)

    def __del__(self):
        try:
            if not self._released:
                self._drop_ownership()
        except Exception:  # interpreter shutdown: allocators may already be gone
            pass

    def _drop_ownership(self) -> None:
        self.buffer.owners -= 1
        if self.buffer.owners <= 0 and not self.buffer.freed:
            self.buffer.free()

    def _free(self) -> None:
        """Free the buffer now (a result that was copied into a preallocated output)."""
        self._released = True
        self.buffer.free()

    # --- conveniences ttnn offers on tensors ---------------------------------------------------
    def cpu(self, blocking: bool = True):
        return from_device(self)

    def to(self, device, memory_config=None):
        return to_device(self, device, memory_config)

    def to_torch(self):
        return to_torch(self)

    def reshape(self, *shape):
        from ttnn_sim import api

        return api.reshape(self, shape[0] if len(shape) == 1 else shape)

    def __getitem__(self, key):
        from ttnn_sim import api

        return api.getitem(self, key)

    def _binary(self, name, other, reverse=False):
        from ttnn_sim import api

        a, b = (other, self) if reverse else (self, other)
        return getattr(api, name)(a, b)

    def __add__(self, other):
        return self._binary("add", other)

    def __radd__(self, other):
        return self._binary("add", other, reverse=True)

    def __sub__(self, other):
        return self._binary("sub", other)

    def __rsub__(self, other):
        return self._binary("sub", other, reverse=True)

    def __mul__(self, other):
        return self._binary("mul", other)

    def __rmul__(self, other):
        return self._binary("mul", other, reverse=True)

    def __truediv__(self, other):
        return self._binary("div", other)

    def __matmul__(self, other):
        return self._binary("matmul", other)

    def __neg__(self):
        from ttnn_sim import api

        return api.neg(self)

    def __repr__(self) -> str:
        where = "host" if self._device is None else f"{len(self.shards)} device(s)"
        return f"ttnn.Tensor(shape={self.shape}, dtype={self.dtype}, layout={self.layout}, {where})"


@on_sim_threads
def from_torch(
    tensor,
    dtype: DataType | None = None,
    *,
    layout=Layout.ROW_MAJOR,
    device=None,
    memory_config: MemoryConfig | None = None,
    mesh_mapper=None,
    tile=None,
    cq_id=None,
    pad_value=None,
    spec=None,
) -> Tensor:
    tensor = torch.as_tensor(tensor)
    dtype = dtype or _TORCH_TO_TT.get(tensor.dtype, DataType.FLOAT32)
    layout = layout or Layout.ROW_MAJOR
    if dtype in (DataType.BFLOAT8_B, DataType.BFLOAT4_B) and layout is not Layout.TILE:
        raise RuntimeError(f"TT_FATAL: {dtype} is only supported in TILE layout")
    if mesh_mapper is not None:
        torch_shards = mesh_mapper.map(tensor)
    elif device is not None:
        torch_shards = [tensor] * device.get_num_devices()  # no mapper on a mesh: replicate
    else:
        torch_shards = [tensor]
    shards = shared_storage(torch_shards, dtype, layout)
    host = Tensor(shards, dtype, layout)
    if device is None:
        return host
    return to_device(host, device, memory_config)


def to_device(tensor: Tensor, device, memory_config: MemoryConfig | None = None, cq_id=None) -> Tensor:
    if tensor.storage_type() is StorageType.DEVICE:
        return tensor
    memory_config = memory_config or DRAM_MEMORY_CONFIG
    shards = tensor.shards
    if len(shards) == 1 and device.get_num_devices() > 1:
        shards = shards * device.get_num_devices()
    if len(shards) != device.get_num_devices():
        raise RuntimeError(
            f"TT_FATAL: host tensor has {len(shards)} shards but the mesh has "
            f"{device.get_num_devices()} devices"
        )
    on_device = Tensor(shards, tensor.dtype, tensor.layout, device, memory_config)
    device.allocate(on_device)
    clock.advance_host(cost.host_transfer_ns(on_device.buffer_bytes() * len(shards)))
    return on_device


def from_device(tensor: Tensor, blocking: bool = True, cq_id=None) -> Tensor:
    if tensor.storage_type() is StorageType.HOST:
        return tensor
    tensor.check_alive()
    tensor.device().synchronize()
    clock.advance_host(cost.host_transfer_ns(tensor.buffer_bytes() * len(tensor.shards)))
    shards = [s.clone() for s in tensor.shards]
    if (
        tensor.dtype is DataType.BFLOAT16
    ):  # stored NaNs keep rounding's bits; the host reads tt-metal's canonical one
        shards = [numerics.canonical_nans(s) for s in shards]
    return Tensor(shards, tensor.dtype, tensor.layout)


@on_sim_threads
def to_torch(tensor: Tensor, dtype=None, *, mesh_composer=None, device=None, cq_id=None) -> torch.Tensor:
    tensor = from_device(tensor)
    if mesh_composer is not None:
        result = mesh_composer.compose(tensor.shards)
    elif len(tensor.shards) == 1:
        result = tensor.shards[0]
    else:
        raise RuntimeError(
            "TT_FATAL: to_torch on a multi-device tensor needs a mesh_composer "
            "(e.g. ttnn.ConcatMeshToTensor) or ttnn.get_device_tensors(tensor)[i]"
        )
    return result.to(dtype or _TT_TO_TORCH[tensor.dtype])
