"""Helpers shared by the op tables: argument normalisation and the standard cost shapes."""

from ttnn_sim import cost
from ttnn_sim.tensor import Tensor
from ttnn_sim.types import BufferType, MathFidelity


def bytes_in(tensors, buffer_type: BufferType) -> int:
    return sum(t.buffer_bytes() for t in tensors
               if isinstance(t, Tensor) and t.memory_config() is not None
               and t.memory_config().buffer_type is buffer_type)


def memory_cost(inputs, outputs, extra_ns: float = 0.0, fidelity=None):
    """A data-movement-bound op: reads its inputs, writes its outputs, from wherever they live."""
    tensors = list(inputs) + list(outputs)
    ns = cost.memory_ns(bytes_in(tensors, BufferType.DRAM), bytes_in(tensors, BufferType.L1)) + extra_ns
    return cost.kernel(ns, fidelity=fidelity)


def eltwise_cost(weight: float = 1.0):
    def op_cost(ctx, inputs, outputs, kwargs):
        elements = sum(t.padded_shape.volume() for t in outputs)
        return memory_cost(inputs, outputs, cost.eltwise_ns(elements, weight), fidelity="HiFi4")

    return op_cost


def move_cost(ctx, inputs, outputs, kwargs):
    return memory_cost(inputs, outputs)


def fidelity_name(compute_kernel_config, default: MathFidelity = MathFidelity.HiFi2) -> str:
    fidelity = getattr(compute_kernel_config, "math_fidelity", None) or default
    return fidelity.name


def not_simulated(value, op: str, keyword: str) -> None:
    """A keyword ttnn accepts whose effect the sim does not model and must not pretend to: refuse a value."""
    if value is not None:
        raise NotImplementedError(f"ttnn_sim: ttnn.{op}(..., {keyword}=...) is not simulated; "
                                  f"leave {keyword} unset on the simulator")
