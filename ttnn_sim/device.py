"""Simulated chips and mesh devices: allocators, program cache, trace region, timelines.

The system has TTNN_SIM_NUM_DEVICES chips (default 8). A MeshDevice is a view on some of them; a submesh
shares its parent's chips. Each chip keeps its own device clock (1 GHz, so cycles == ns).
"""

from __future__ import annotations

import os

from ttnn_sim import clock, profiler
from ttnn_sim.host import SubDeviceState
from ttnn_sim.mesh import MeshShape
from ttnn_sim.types import Arch, BufferType, CoreCoord

L1_BANKS = 64
L1_BANK_BYTES = 1_331_200  # 1464 KiB of L1 per core less firmware, kernel-config and CB reservations
DRAM_BANKS = 12
DRAM_BANK_BYTES = 1 << 30
DEFAULT_TRACE_REGION = 0


class Allocator:
    """Bank-balanced accounting: interleaved buffers spread evenly, so one per-bank figure suffices."""

    def __init__(self, name: str, banks: int, bank_bytes: int):
        self.name, self.banks, self.bank_bytes = name, banks, bank_bytes
        self.used = 0

    def allocate(self, total_bytes: int) -> int:
        per_bank = -(-total_bytes // self.banks)
        if self.used + per_bank > self.bank_bytes:
            free = self.bank_bytes - self.used
            raise RuntimeError(
                "TT_FATAL @ bank_manager.cpp:439: false\n"
                f"Out of Memory: Not enough space to allocate {total_bytes} B {self.name} buffer across "
                f"{self.banks} banks, where each bank needs to store {per_bank} B, but bank size is "
                f"{self.bank_bytes} B (allocated: {self.used} B, free: {free} B, "
                f"largest free block: {free} B)"
            )
        self.used += per_bank
        return per_bank

    def free(self, per_bank: int) -> None:
        self.used = max(0, self.used - per_bank)


class Chip:
    def __init__(self, chip_id: int):
        self.id = chip_id
        self.l1 = Allocator("L1", L1_BANKS, L1_BANK_BYTES)
        self.dram = Allocator("DRAM", DRAM_BANKS, DRAM_BANK_BYTES)
        self.idle_at = 0  # device clock when the last queued kernel ends
        self.last_kernel_end = None
        self.in_use = False

    def allocator(self, buffer_type: BufferType) -> Allocator:
        return self.l1 if buffer_type in (BufferType.L1, BufferType.L1_SMALL) else self.dram


class System:
    def __init__(self):
        self.chips = [Chip(i) for i in range(int(os.environ.get("TTNN_SIM_NUM_DEVICES", "8")))]
        self.next_mesh_id = 0
        self.global_call_count = 0


_system: System | None = None


def system() -> System:
    global _system
    if _system is None:
        _system = System()
    return _system


class Trace:
    def __init__(self, trace_id: int):
        self.id = trace_id
        self.calls: list = []  # dispatch.TracedCall per call captured
        self.replays = 0


class MeshDevice:
    def __init__(self, shape: MeshShape, chips: list[Chip], trace_region_size: int, parent=None, **params):
        self.shape = shape
        self.chips = chips
        self.trace_region_size = trace_region_size
        self.parent = parent
        self.params = params
        self.mesh_id = system().next_mesh_id
        system().next_mesh_id += 1
        self.program_cache: dict = {}
        self.program_cache_enabled = True
        self.traces: dict[int, Trace] = {}
        self.capturing: Trace | None = None
        self.next_trace_id = 0
        self.closed = False
        self.sub_devices = SubDeviceState()

    # --- queries -----------------------------------------------------------------------------
    def get_num_devices(self) -> int:
        return len(self.chips)

    def get_device_ids(self) -> list[int]:
        return [c.id for c in self.chips]

    def id(self) -> int:
        return self.mesh_id

    def arch(self) -> Arch:
        return Arch.WORMHOLE_B0

    def compute_with_storage_grid_size(self) -> CoreCoord:
        return CoreCoord(8, 8)

    def dram_grid_size(self) -> CoreCoord:
        return CoreCoord(DRAM_BANKS, 1)

    def get_devices(self):
        return [self.create_submesh(MeshShape(1, 1), offset=i) for i in range(len(self.chips))]

    # --- program cache -------------------------------------------------------------------------
    def enable_program_cache(self) -> None:
        self.program_cache_enabled = True

    def disable_and_clear_program_cache(self) -> None:
        self.program_cache_enabled = False
        self.program_cache.clear()

    def clear_program_cache(self) -> None:
        self.program_cache.clear()

    def num_program_cache_entries(self) -> int:
        return len(self.program_cache)

    def lookup_program(self, key) -> bool:
        """True on a cache hit; a miss inserts the key when the cache is enabled."""
        if key in self.program_cache:
            return True
        if self.program_cache_enabled:
            self.program_cache[key] = True
        return False

    # --- sub-devices (state only: every op runs on the whole grid) ---------------------------------
    def create_sub_device_manager(self, sub_devices, local_l1_size: int = 0):
        return self.sub_devices.create(sub_devices, local_l1_size)

    def load_sub_device_manager(self, manager) -> None:
        self.sub_devices.load(manager)

    def clear_loaded_sub_device_manager(self) -> None:
        self.sub_devices.clear()

    def remove_sub_device_manager(self, manager) -> None:
        self.sub_devices.remove(manager)

    def set_sub_device_stall_group(self, sub_device_ids) -> None:
        self.sub_devices.stall_group = list(sub_device_ids)

    def reset_sub_device_stall_group(self) -> None:
        self.sub_devices.stall_group = []

    def get_sub_device_ids(self) -> list:
        return self.sub_devices.sub_device_ids()

    # --- memory --------------------------------------------------------------------------------
    def allocate(self, tensor) -> None:
        config = tensor.memory_config()
        total = tensor.buffer_bytes()
        done = []
        try:
            for chip in self.chips:
                done.append((chip, config.buffer_type, chip.allocator(config.buffer_type).allocate(total)))
        except RuntimeError:
            for chip, buffer_type, per_bank in done:
                chip.allocator(buffer_type).free(per_bank)
            raise
        tensor.buffer.allocations = done

    # --- submeshes and time --------------------------------------------------------------------
    def create_submesh(self, shape: MeshShape, offset=None) -> MeshDevice:
        shape = shape if isinstance(shape, MeshShape) else MeshShape(shape)
        start = offset if isinstance(offset, int) else 0
        rows, cols = (tuple(shape) + (1,))[:2] if len(shape) == 2 else (1, shape[0])
        parent_cols = self.shape[1] if len(self.shape) == 2 else self.shape[0]
        if rows * cols > len(self.chips):
            raise RuntimeError(f"TT_FATAL: submesh {shape} does not fit in mesh {self.shape}")
        chips = [self.chips[start + r * parent_cols + c] for r in range(rows) for c in range(cols)]
        return MeshDevice(shape, chips, self.trace_region_size, parent=self, **self.params)

    def create_submeshes(self, shape: MeshShape):
        n = len(self.chips) // MeshShape(shape).mesh_size()
        return [self.create_submesh(shape, offset=i * MeshShape(shape).mesh_size()) for i in range(n)]

    def synchronize(self) -> None:
        clock.wait_host_until(max(c.idle_at for c in self.chips))

    def __repr__(self) -> str:
        return f"MeshDevice(id={self.mesh_id}, shape={self.shape}, devices={self.get_device_ids()})"


def get_num_devices() -> int:
    return len(system().chips)


GetNumAvailableDevices = get_num_devices


def open_mesh_device(
    mesh_shape: MeshShape | None = None,
    *,
    l1_small_size: int = 0,
    trace_region_size: int = DEFAULT_TRACE_REGION,
    num_command_queues: int = 1,
    dispatch_core_config=None,
    offset=None,
    physical_device_ids=None,
    worker_l1_size=None,
    **params,
) -> MeshDevice:
    chips = system().chips
    mesh_shape = mesh_shape or MeshShape(1, len(chips))
    mesh_shape = mesh_shape if isinstance(mesh_shape, MeshShape) else MeshShape(mesh_shape)
    wanted = mesh_shape.mesh_size()
    free = [c for c in chips if not c.in_use]
    if wanted > len(chips) or wanted > len(free):
        raise RuntimeError(
            f"TT_FATAL: Requested mesh shape {mesh_shape} needs {wanted} devices, but the system has "
            f"{len(free)} available of {len(chips)}"
        )
    selected = free[:wanted]
    for chip in selected:
        chip.in_use = True
    return MeshDevice(mesh_shape, selected, trace_region_size, l1_small_size=l1_small_size,
                      num_command_queues=num_command_queues)


def close_mesh_device(mesh_device: MeshDevice) -> None:
    mesh_device.synchronize()
    if mesh_device.parent is None:
        for chip in mesh_device.chips:
            chip.in_use = False
    mesh_device.closed = True
    profiler.flush()


def open_device(device_id: int = 0, **params) -> MeshDevice:
    chip = system().chips[device_id]
    if chip.in_use:
        raise RuntimeError(f"TT_FATAL: device {device_id} is already open")
    chip.in_use = True
    return MeshDevice(
        MeshShape(1, 1), [chip], params.pop("trace_region_size", DEFAULT_TRACE_REGION), **params
    )


close_device = close_mesh_device


def synchronize_device(device, cq_id=None, sub_device_ids=None) -> None:
    device.synchronize()


def set_fabric_config(*args, **kwargs) -> None:
    """Accepted: the simulated chips are fully connected for CCLs."""


def get_device_tensors(tensor) -> list:
    from ttnn_sim.tensor import Tensor

    device = tensor.device()
    result = []
    for i, shard in enumerate(tensor.shards):
        single = device.create_submesh(MeshShape(1, 1), offset=i) if device is not None else None
        t = Tensor([shard], tensor.dtype, tensor.layout, single, tensor.memory_config())
        result.append(t)
    return result
