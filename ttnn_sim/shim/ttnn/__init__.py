"""`import ttnn` on the simulated device: re-exports ttnn_sim with ttnn's names."""

import types as _types

from ttnn_sim import SIM_VERSION as __version__  # noqa: F401
from ttnn_sim import host_time_ns as _host_time_ns
from ttnn_sim.api import *  # noqa: F401,F403  (every op in the op table)
from ttnn_sim.api import experimental, getitem, transformer  # noqa: F401
from ttnn_sim.device import (  # noqa: F401
    GetNumAvailableDevices,
    MeshDevice,
    close_device,
    close_mesh_device,
    get_device_tensors,
    get_num_devices,
    open_device,
    open_mesh_device,
    set_fabric_config,
    synchronize_device,
)
from ttnn_sim.dispatch import (  # noqa: F401
    begin_trace_capture,
    copy_host_to_device_tensor,
    deallocate,
    end_trace_capture,
    execute_trace,
    release_trace,
)
from ttnn_sim.host import (  # noqa: F401
    SubDevice,
    SubDeviceId,
    SubDeviceManagerId,
    as_tensor,
    divup,
    empty_like,
    get_arch_name,
    roundup,
)
from ttnn_sim.mesh import (  # noqa: F401
    ConcatMesh2dToTensor,
    ConcatMeshToTensor,
    MeshShape,
    ReplicateTensorToMesh,
    ShardTensor2dMesh,
    ShardTensorToMesh,
    concat_mesh_to_tensor_composer,
    replicate_tensor_to_mesh_mapper,
    shard_tensor_to_mesh_mapper,
)
from ttnn_sim.tensor import Tensor, Tile, from_device, from_torch, to_device, to_torch  # noqa: F401
from ttnn_sim.types import *  # noqa: F401,F403

bfloat16 = DataType.BFLOAT16  # noqa: F405
float32 = DataType.FLOAT32  # noqa: F405
bfloat8_b = DataType.BFLOAT8_B  # noqa: F405
bfloat4_b = DataType.BFLOAT4_B  # noqa: F405
uint8 = DataType.UINT8  # noqa: F405
uint16 = DataType.UINT16  # noqa: F405
uint32 = DataType.UINT32  # noqa: F405
int32 = DataType.INT32  # noqa: F405
ROW_MAJOR_LAYOUT = Layout.ROW_MAJOR  # noqa: F405
TILE_LAYOUT = Layout.TILE  # noqa: F405

# ttnn.core holds the integer helpers models call as ttnn.core.divup.
core = _types.SimpleNamespace(divup=divup, roundup=roundup)

# Simulator-only extras; real ttnn has no `ttnn.sim`, so code that uses it checks hasattr(ttnn, "sim").
sim = _types.SimpleNamespace(host_time_ns=_host_time_ns)
