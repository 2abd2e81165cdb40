"""ttnn's host-side API beyond the op table: arch queries, tensor creation and caching, the sub-device API.

Facts (tt-metal sources, listed in docs/sim-semantics.md):
- `ttnn.get_arch_name()` is the lower-case arch string models test with `"wormhole_b0" in ...`.
- `ttnn.core.divup(a, b)` is `(a + b - 1) // b`; `roundup(a, b)` is `divup(a, b) * b`.
- `ttnn.as_tensor(..., cache_file_name=name)` reads and writes
  `f"{name}_dtype_{DTYPE}_layout_{LAYOUT}.tensorbin"`: when that file exists it is loaded (the torch tensor is
  ignored) and put on `device`; otherwise the tensor is converted on host, dumped there (a replicated tensor
  is stored once, unsharded) and then moved to `device`. `device` without `memory_config` is an error.
- `ttnn.empty_like` allocates a tensor like its input and runs no device op.
- The sub-device API: `ttnn.SubDevice([CoreRangeSet, ...])`, `ttnn.SubDeviceId(i)`, and on a mesh
  `create_sub_device_manager(sub_devices, local_l1_size)`, `load_sub_device_manager(id)`,
  `set_sub_device_stall_group(ids)`, `reset_sub_device_stall_group()`, `clear_loaded_sub_device_manager()`,
  `remove_sub_device_manager(id)`. The simulator runs every op on the whole grid, so these only keep state.
"""

from __future__ import annotations

import os
import pathlib
from dataclasses import dataclass, field

import torch

from ttnn_sim.tensor import Tensor, from_torch, to_device
from ttnn_sim.types import BufferType, DataType, Layout, MemoryConfig, TensorMemoryLayout

ARCH_NAME = "wormhole_b0"


def get_arch_name() -> str:
    return ARCH_NAME


def divup(a: int, b: int) -> int:
    return (a + b - 1) // b


def roundup(a: int, b: int) -> int:
    return divup(a, b) * b


# --- as_tensor and its cache file ------------------------------------------------------------------
def cache_path(cache_file_name, dtype: DataType | None, layout: Layout | None) -> pathlib.Path:
    dtype_name = dtype.name if dtype is not None else "None"
    layout_name = layout.name if layout is not None else "None"
    return pathlib.Path(f"{cache_file_name}_dtype_{dtype_name}_layout_{layout_name}.tensorbin")


def _dump(path: pathlib.Path, tensor: Tensor, memory_config: MemoryConfig | None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    config = memory_config or MemoryConfig()
    payload = {
        "shards": tensor.shards,
        "dtype": tensor.dtype.name,
        "layout": tensor.layout.name,
        "memory_layout": config.memory_layout.name,
        "buffer_type": config.buffer_type.name,
    }
    partial = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    torch.save(payload, partial)
    os.replace(partial, path)  # readers never see a half-written cache file


def _load(path: pathlib.Path, device) -> Tensor:
    payload = torch.load(path, weights_only=True)
    host = Tensor(payload["shards"], DataType[payload["dtype"]], Layout[payload["layout"]])
    if device is None:
        return host
    config = MemoryConfig(TensorMemoryLayout[payload["memory_layout"]], BufferType[payload["buffer_type"]])
    return to_device(host, device, config)


def as_tensor(
    tensor,
    dtype=None,
    *,
    layout=Layout.ROW_MAJOR,
    device=None,
    memory_config=None,
    cache_file_name=None,
    preprocess=None,
    mesh_mapper=None,
    cache_dump_mode=None,
) -> Tensor:
    if device is not None and memory_config is None:
        raise RuntimeError("memory_config must be specified when device is specified")

    def convert(target_device, mapper):
        source = preprocess(tensor) if preprocess else tensor
        return from_torch(
            source,
            dtype,
            layout=layout,
            device=target_device,
            memory_config=memory_config,
            mesh_mapper=mapper,
        )

    if cache_file_name is None:
        return convert(device, mesh_mapper)
    path = cache_path(cache_file_name, dtype, layout)
    if path.is_file():
        return _load(path, device)
    replicated = mesh_mapper is None or getattr(mesh_mapper, "replicates", False)
    host = convert(None, None if replicated else mesh_mapper)
    _dump(path, host, memory_config)
    return host if device is None else to_device(host, device, memory_config)


def empty_like(tensor: Tensor, dtype=None, layout=None, device=None, memory_config=None) -> Tensor:
    dtype, layout = dtype or tensor.dtype, layout or tensor.layout
    shards = [torch.zeros(tuple(s.shape)) for s in tensor.shards]
    host = from_torch(shards[0], dtype, layout=layout) if len(shards) == 1 else None
    if host is None:
        host = Tensor([from_torch(s, dtype, layout=layout).shards[0] for s in shards], dtype, layout)
    target = device or tensor.device()
    if target is None:
        return host
    return to_device(host, target, memory_config or tensor.memory_config())


# --- sub-devices ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SubDeviceId:
    id: int = 0

    def __int__(self) -> int:
        return self.id


@dataclass(frozen=True)
class SubDeviceManagerId:
    id: int


@dataclass
class SubDevice:
    cores: list = field(default_factory=list)

    def __init__(self, cores):
        self.cores = list(cores)


class SubDeviceState:
    """What a mesh remembers of the sub-device API: managers, the loaded one, and the stall group."""

    def __init__(self):
        self.managers: dict[int, tuple[list, int]] = {}
        self.loaded: int | None = None
        self.stall_group: list[SubDeviceId] = []

    def create(self, sub_devices, local_l1_size: int = 0) -> SubDeviceManagerId:
        manager = SubDeviceManagerId(len(self.managers) + 1)
        self.managers[manager.id] = (list(sub_devices), local_l1_size)
        return manager

    def load(self, manager: SubDeviceManagerId) -> None:
        if manager.id not in self.managers:
            raise RuntimeError(f"TT_FATAL: sub-device manager {manager.id} does not exist")
        self.loaded = manager.id
        self.stall_group = []

    def clear(self) -> None:
        self.loaded = None
        self.stall_group = []

    def remove(self, manager: SubDeviceManagerId) -> None:
        if self.loaded == manager.id:
            raise RuntimeError(f"TT_FATAL: sub-device manager {manager.id} is loaded and cannot be removed")
        self.managers.pop(manager.id, None)

    def sub_device_ids(self) -> list[SubDeviceId]:
        count = len(self.managers[self.loaded][0]) if self.loaded is not None else 1
        return [SubDeviceId(i) for i in range(count)]
