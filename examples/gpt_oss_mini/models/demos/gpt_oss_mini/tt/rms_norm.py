"""RMS norm with a learned scale (GptOssRMSNorm)."""

import ttnn

from .model_config import activation_memory_config, weight_tensor


class RMSNorm:
    def __init__(self, mesh_device, state_dict, eps: float):
        self.eps = eps
        # tt-metal keeps the scale row-major as [1, 1, dim / 32, 32] sticks.
        self.weight = weight_tensor(state_dict["weight"].reshape(1, 1, -1, 32), mesh_device, layout=ttnn.ROW_MAJOR_LAYOUT)

    def __call__(self, x, mode: str):
        return ttnn.rms_norm(x, epsilon=self.eps, weight=self.weight, memory_config=activation_memory_config(mode))
