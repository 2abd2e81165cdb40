"""tt-metal's ``models/common/utility_functions.py``: the accuracy comparisons and the e2e ``profiler`` that
fused-op tests import, with tt-metal's names, signatures, return values and log lines."""

import time

import numpy as np
import torch
from loguru import logger


def comp_pcc(golden, calculated, pcc=0.99):
    """``(passing, pcc)``: Pearson correlation of the flattened tensors, golden first.

    Both all-NaN pass with 1.0; one all-NaN or one all-zero fails with 0.0; NaN/inf count as 0; equal tensors and
    constant tensors (undefined correlation) pass with 1.0."""
    golden, calculated = _as_tensor(golden), _as_tensor(calculated)
    if golden.dtype != calculated.dtype:
        calculated = calculated.type(golden.dtype)
    if _is_fp8(golden):  # numpy has no fp8
        golden, calculated = golden.float(), calculated.float()

    golden_nan, calculated_nan = torch.all(torch.isnan(golden)), torch.all(torch.isnan(calculated))
    if golden_nan and calculated_nan:
        logger.warning("Both tensors are 'nan'")
        return True, 1.0
    if golden_nan or calculated_nan:
        logger.error("One tensor is all nan, the other is not.")
        return False, 0.0
    if torch.any(golden.bool()) != torch.any(calculated.bool()):
        logger.error("One tensor is all zero")
        return False, 0.0

    golden, calculated = _finite_or_zero(golden), _finite_or_zero(calculated)
    if torch.equal(golden, calculated):
        return True, 1.0
    if golden.dtype == torch.bfloat16:
        golden, calculated = golden.type(torch.float32), calculated.type(torch.float32)
    flat = [np.ma.masked_invalid(torch.squeeze(t).detach().numpy()).flatten() for t in (golden, calculated)]
    cal_pcc = np.min(np.ma.corrcoef(*flat))
    if isinstance(cal_pcc, np.ma.core.MaskedConstant):
        return True, 1.0
    return cal_pcc >= pcc, cal_pcc


def comp_allclose(golden, calculated, rtol=1e-05, atol=1e-08):
    """``(allclose, "Max ATOL Delta: a, Max RTOL Delta: r")``; the relative delta is taken against ``calculated``."""
    if golden.dtype != calculated.dtype:
        calculated = calculated.type(golden.dtype)
    delta = torch.abs(golden - calculated)
    atol_delta = torch.max(delta).item()
    rtol_delta = torch.max(delta / torch.abs(calculated)).item()
    passing = torch.allclose(golden, calculated, rtol, atol, True)
    return passing, f"Max ATOL Delta: {atol_delta}, Max RTOL Delta: {rtol_delta}"


def _as_tensor(value) -> torch.Tensor:
    return value if isinstance(value, torch.Tensor) else torch.Tensor(value)


def _is_fp8(tensor: torch.Tensor) -> bool:
    return tensor.is_floating_point() and tensor.element_size() == 1


def _finite_or_zero(tensor: torch.Tensor) -> torch.Tensor:
    tensor = tensor.clone()
    tensor[torch.logical_or(torch.isnan(tensor), torch.isinf(tensor))] = 0
    return tensor


def host_time_ns() -> int:
    """The simulator's deterministic host clock when ttnn is the simulator (e2e figures repeat exactly there),
    else the wall clock."""
    try:
        import ttnn
    except ImportError:
        return time.perf_counter_ns()
    clock = getattr(getattr(ttnn, "sim", None), "host_time_ns", None)
    return int(clock()) if clock is not None else time.perf_counter_ns()


class Profiler:
    """``start(key)`` / ``end(key, PERF_CNT=1)`` record elapsed seconds per count; ``get(key)`` is their mean."""

    def __init__(self, clock=host_time_ns):
        self._clock = clock
        self.clear()

    def clear(self):
        self.start_times = {}
        self.times = {}

    def start(self, key):
        self.start_times[key] = self._clock()

    def end(self, key, PERF_CNT=1):  # noqa: N803 - tt-metal's keyword
        elapsed_s = (self._clock() - self.start_times[key]) / 1e9
        self.times.setdefault(key, []).append(elapsed_s / PERF_CNT)

    def get(self, key):
        values = self.times.get(key)
        return sum(values) / len(values) if values else 0


profiler = Profiler()
