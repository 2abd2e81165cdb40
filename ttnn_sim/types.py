"""ttnn's value types: enums, shapes, core grids, memory configs and op configs.

`str()` of every type matches ttnn 0.81.1 (as recorded from the ttnn 0.81.1 wheel), because model
code and the profiler's ATTRIBUTES / MEMORY cells print them.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass, field


class _TTEnum(enum.Enum):
    """An enum whose str() and repr() are `Class.NAME`, as pybind11 renders ttnn's enums."""

    def __str__(self) -> str:
        return f"{type(self).__name__}.{self.name}"

    __repr__ = __str__

    def __int__(self) -> int:
        return self.value


class DataType(_TTEnum):
    BFLOAT16 = 0
    FLOAT32 = 1
    UINT32 = 2
    BFLOAT8_B = 3
    BFLOAT4_B = 4
    UINT8 = 5
    UINT16 = 6
    INT32 = 7
    INVALID = 10

    @property
    def is_float(self) -> bool:
        return self in (DataType.BFLOAT16, DataType.FLOAT32, DataType.BFLOAT8_B, DataType.BFLOAT4_B)


class Layout(_TTEnum):
    ROW_MAJOR = 0
    TILE = 1
    INVALID = 2


class TensorMemoryLayout(_TTEnum):
    INTERLEAVED = 0
    HEIGHT_SHARDED = 2
    WIDTH_SHARDED = 3
    BLOCK_SHARDED = 4


class BufferType(_TTEnum):
    DRAM = 0
    L1 = 1
    SYSTEM_MEMORY = 2
    L1_SMALL = 3
    TRACE = 4


class StorageType(_TTEnum):
    HOST = 0
    DEVICE = 1


class ShardOrientation(_TTEnum):
    ROW_MAJOR = 0
    COL_MAJOR = 1


class ShardStrategy(_TTEnum):
    HEIGHT = 0
    WIDTH = 1
    BLOCK = 2


class MathFidelity(_TTEnum):
    LoFi = 0
    HiFi2 = 2
    HiFi3 = 3
    HiFi4 = 4


class Topology(_TTEnum):
    Ring = 0
    Linear = 1
    Mesh = 2


class FabricConfig(_TTEnum):
    DISABLED = 0
    FABRIC_1D = 1
    FABRIC_1D_RING = 2
    FABRIC_2D = 3


class Arch(_TTEnum):
    GRAYSKULL = 1
    WORMHOLE_B0 = 2
    BLACKHOLE = 3


class UnaryOpType(_TTEnum):
    RELU = 0
    SILU = 1
    GELU = 2
    SIGMOID = 3


TILE_SIZE = 32


class Shape:
    """A tensor shape: list-like, prints as `Shape([1, 1, 40, 50])`."""

    def __init__(self, dims):
        self._dims = tuple(int(d) for d in dims)

    def __len__(self) -> int:
        return len(self._dims)

    def __iter__(self):
        return iter(self._dims)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return Shape(self._dims[index])
        return self._dims[index]

    def __eq__(self, other) -> bool:
        if isinstance(other, Shape):
            return self._dims == other._dims
        if isinstance(other, (list, tuple)):
            return self._dims == tuple(other)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._dims)

    def __str__(self) -> str:
        return f"Shape([{', '.join(str(d) for d in self._dims)}])"

    __repr__ = __str__

    @property
    def rank(self) -> int:
        return len(self._dims)

    def to_rank(self, rank: int) -> Shape:
        return Shape((1,) * (rank - len(self._dims)) + self._dims)

    def volume(self) -> int:
        return math.prod(self._dims)


@dataclass(frozen=True)
class CoreCoord:
    x: int
    y: int

    def __str__(self) -> str:
        return f"(x={self.x},y={self.y})"


@dataclass(frozen=True)
class CoreRange:
    start: CoreCoord
    end: CoreCoord

    def num_cores(self) -> int:
        return (self.end.x - self.start.x + 1) * (self.end.y - self.start.y + 1)

    def grid_json(self) -> str:
        s, e = self.start, self.end
        return f'{{"start":{{"x":{s.x},"y":{s.y}}},"end":{{"x":{e.x},"y":{e.y}}}}}'


class CoreRangeSet:
    def __init__(self, ranges):
        if isinstance(ranges, CoreRange):
            ranges = [ranges]
        self.ranges = sorted(ranges, key=lambda r: (r.start.y, r.start.x))

    def num_cores(self) -> int:
        return sum(r.num_cores() for r in self.ranges)

    def __eq__(self, other) -> bool:
        return isinstance(other, CoreRangeSet) and self.ranges == other.ranges

    def __hash__(self) -> int:
        return hash(tuple(self.ranges))

    def __str__(self) -> str:
        return "[" + ", ".join(r.grid_json() for r in self.ranges) + "]"


@dataclass(frozen=True)
class CoreGrid:
    y: int
    x: int

    @property
    def num_cores(self) -> int:
        return self.x * self.y

    def __str__(self) -> str:
        return f"ttnn.CoreGrid(x={self.x}, y={self.y})"


def num_cores_to_corerangeset(num_cores: int, grid_size: CoreCoord, row_wise: bool = True) -> CoreRangeSet:
    """The first `num_cores` cores of a grid, row by row (ttnn's helper of the same name)."""
    full_rows, rest = divmod(num_cores, grid_size.x)
    ranges = []
    if full_rows:
        ranges.append(CoreRange(CoreCoord(0, 0), CoreCoord(grid_size.x - 1, full_rows - 1)))
    if rest:
        ranges.append(CoreRange(CoreCoord(0, full_rows), CoreCoord(rest - 1, full_rows)))
    return CoreRangeSet(ranges)


@dataclass(frozen=True)
class ShardSpec:
    grid: CoreRangeSet
    shape: tuple
    orientation: ShardOrientation = ShardOrientation.ROW_MAJOR

    def __init__(self, grid, shape, orientation=ShardOrientation.ROW_MAJOR):
        object.__setattr__(self, "grid", grid if isinstance(grid, CoreRangeSet) else CoreRangeSet(grid))
        object.__setattr__(self, "shape", tuple(int(s) for s in shape))
        object.__setattr__(self, "orientation", orientation)

    def num_cores(self) -> int:
        return self.grid.num_cores()

    def __str__(self) -> str:
        return (
            f"ShardSpec{{grid={self.grid}, shape=[{', '.join(str(s) for s in self.shape)}], "
            f"orientation={self.orientation.name.join(['ShardOrientation::', ''])}}}"
        )


@dataclass(frozen=True)
class MemoryConfig:
    memory_layout: TensorMemoryLayout = TensorMemoryLayout.INTERLEAVED
    buffer_type: BufferType = BufferType.DRAM
    shard_spec: ShardSpec | None = None

    def is_sharded(self) -> bool:
        return self.memory_layout is not TensorMemoryLayout.INTERLEAVED

    def __str__(self) -> str:
        shard = "std::nullopt" if self.shard_spec is None else str(self.shard_spec)
        return (
            f"MemoryConfig(memory_layout=TensorMemoryLayout::{self.memory_layout.name},"
            f"buffer_type=BufferType::{self.buffer_type.name},shard_spec={shard},nd_shard_spec=std::nullopt,"
            "created_with_nd_shard_spec=0,per_core_allocation=0,range_lockstep_allocation=0)"
        )

    __repr__ = __str__


DRAM_MEMORY_CONFIG = MemoryConfig(TensorMemoryLayout.INTERLEAVED, BufferType.DRAM)
L1_MEMORY_CONFIG = MemoryConfig(TensorMemoryLayout.INTERLEAVED, BufferType.L1)
L1_HEIGHT_SHARDED_MEMORY_CONFIG = MemoryConfig(TensorMemoryLayout.HEIGHT_SHARDED, BufferType.L1)
L1_WIDTH_SHARDED_MEMORY_CONFIG = MemoryConfig(TensorMemoryLayout.WIDTH_SHARDED, BufferType.L1)
L1_BLOCK_SHARDED_MEMORY_CONFIG = MemoryConfig(TensorMemoryLayout.BLOCK_SHARDED, BufferType.L1)


def _round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


def create_sharded_memory_config(
    shape,
    core_grid,
    strategy: ShardStrategy,
    orientation: ShardOrientation | None = None,
    use_height_and_width_as_shard_shape: bool = False,
) -> MemoryConfig:
    """ttnn.create_sharded_memory_config: shard a (…, H, W) tensor over a core grid."""
    orientation = orientation or ShardOrientation.ROW_MAJOR
    if isinstance(core_grid, CoreGrid):
        grid = CoreRangeSet([CoreRange(CoreCoord(0, 0), CoreCoord(core_grid.x - 1, core_grid.y - 1))])
        grid_x, grid_y = core_grid.x, core_grid.y
    else:
        grid = core_grid if isinstance(core_grid, CoreRangeSet) else CoreRangeSet(core_grid)
        grid_x = grid_y = None
    shape = tuple(shape)
    height = math.prod(shape[:-1])
    width = shape[-1]
    n = grid.num_cores()
    if use_height_and_width_as_shard_shape:
        shard = (shape[-2], shape[-1])
    elif strategy is ShardStrategy.HEIGHT:
        shard = (_round_up(-(-height // n), TILE_SIZE), width)
    elif strategy is ShardStrategy.WIDTH:
        shard = (height, _round_up(-(-width // n), TILE_SIZE))
    else:
        rows, cols = (grid_y, grid_x) if grid_x else (1, n)
        shard = (_round_up(-(-height // rows), TILE_SIZE), _round_up(-(-width // cols), TILE_SIZE))
    layout = {
        ShardStrategy.HEIGHT: TensorMemoryLayout.HEIGHT_SHARDED,
        ShardStrategy.WIDTH: TensorMemoryLayout.WIDTH_SHARDED,
        ShardStrategy.BLOCK: TensorMemoryLayout.BLOCK_SHARDED,
    }[strategy]
    return MemoryConfig(layout, BufferType.L1, ShardSpec(grid, shard, orientation))


class _Config:
    """Base of op configs: keyword fields, printed like ttnn's reflection of a config struct."""

    _fields: tuple = ()
    _defaults: dict = {}

    def __init__(self, **kwargs):
        unknown = set(kwargs) - set(self._fields)
        if unknown:
            raise TypeError(f"{type(self).__name__}: unexpected keyword arguments {sorted(unknown)}")
        for name in self._fields:
            setattr(self, name, kwargs.get(name, self._defaults.get(name)))

    def __repr__(self) -> str:
        inner = ",".join(f"{name}={getattr(self, name)}" for name in self._fields)
        return f"{type(self).__name__}({inner})"

    __str__ = __repr__

    def __eq__(self, other) -> bool:
        return type(self) is type(other) and repr(self) == repr(other)

    def __hash__(self) -> int:
        return hash(repr(self))


def _config(name: str, fields: str, **defaults):
    return type(name, (_Config,), {"_fields": tuple(fields.split()), "_defaults": defaults})


MatmulMultiCoreReuseMultiCast1DProgramConfig = _config(
    "MatmulMultiCoreReuseMultiCast1DProgramConfig",
    "compute_with_storage_grid_size in0_block_w out_subblock_h out_subblock_w out_block_h out_block_w "
    "per_core_M per_core_N fuse_batch fused_activation mcast_in0 gather_in0 num_global_cb_receivers",
    fuse_batch=True, mcast_in0=True, gather_in0=False, num_global_cb_receivers=1,
)
MatmulMultiCoreReuseMultiCastProgramConfig = _config(
    "MatmulMultiCoreReuseMultiCastProgramConfig",
    "compute_with_storage_grid_size in0_block_w out_subblock_h out_subblock_w out_block_h out_block_w "
    "per_core_M per_core_N transpose_mcast fused_activation fuse_batch",
    transpose_mcast=False, fuse_batch=False,
)
MatmulMultiCoreReuseMultiCastDRAMShardedProgramConfig = _config(
    "MatmulMultiCoreReuseMultiCastDRAMShardedProgramConfig",
    "in0_block_w per_core_M per_core_N fused_activation",
)
SDPAProgramConfig = _config(
    "SDPAProgramConfig",
    "compute_with_storage_grid_size sub_core_grids q_chunk_size k_chunk_size exp_approx_mode "
    "max_cores_per_head_batch",
    q_chunk_size=32,
    k_chunk_size=32,
    exp_approx_mode=True,
)
LayerNormShardedMultiCoreProgramConfig = _config(
    "LayerNormShardedMultiCoreProgramConfig",
    "compute_with_storage_grid_size subblock_w block_h block_w inplace",
    inplace=False,
)
LayerNormDefaultProgramConfig = _config("LayerNormDefaultProgramConfig", "legacy_reduction legacy_rsqrt")
WormholeComputeKernelConfig = _config(
    "WormholeComputeKernelConfig",
    "math_fidelity math_approx_mode fp32_dest_acc_en packer_l1_acc dst_full_sync_en",
    math_fidelity=MathFidelity.HiFi4, math_approx_mode=True, fp32_dest_acc_en=False, packer_l1_acc=False,
    dst_full_sync_en=False,
)
ComputeKernelConfig = WormholeComputeKernelConfig
BlackholeComputeKernelConfig = WormholeComputeKernelConfig


def init_device_compute_kernel_config(
    arch=None,
    math_fidelity: MathFidelity = MathFidelity.LoFi,
    math_approx_mode: bool = True,
    fp32_dest_acc_en: bool = False,
    packer_l1_acc: bool = False,
    dst_full_sync_en: bool = False,
    throttle_level=None,
):
    """ttnn/cpp/ttnn/operations/core/compute_kernel/compute_kernel_config.hpp; the arch and the throttle
    level pick nothing in the sim (one Wormhole-class chip)."""
    return WormholeComputeKernelConfig(
        math_fidelity=math_fidelity,
        math_approx_mode=math_approx_mode,
        fp32_dest_acc_en=fp32_dest_acc_en,
        packer_l1_acc=packer_l1_acc,
        dst_full_sync_en=dst_full_sync_en,
    )


@dataclass(frozen=True)
class UnaryWithParam:
    op_type: UnaryOpType
    param: float | None = None


@dataclass
class GlobalSemaphore:
    """Accepted for CCL signatures; the simulator needs no cross-device synchronisation."""

    cores: object = None
    initial_value: int = 0
    values: list = field(default_factory=list)


def create_global_semaphore(mesh_device, cores, initial_value, buffer_type=None):
    return GlobalSemaphore(cores, initial_value)


def reset_global_semaphore_value(semaphore, value):
    semaphore.initial_value = value
