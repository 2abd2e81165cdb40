"""What every gpt_oss_mini fused-op test does around its own ops: the parametrization under its mode rows, the
``PCC <name>: <pcc>`` comparison, and the perf tail of ``_run_<op>_test`` — the signposted device-perf iterations
when the test's DEVICE_PERF_ENV_VAR is set, else e2e perf with its BenchmarkData record — plus the body of
``test_<op>[_single_device]_device_perf``."""

import os
from dataclasses import dataclass
from pathlib import Path

import pytest
from loguru import logger

import ttnn
from models.common.utility_functions import comp_allclose, comp_pcc, profiler
from models.demos.gpt_oss_mini.reference.model import MODEL_NAME
from models.demos.gpt_oss_mini.tests.fused_op_unit_tests.fused_op_device_perf_utils import (
    DEVICE_PERF_ITERS,
    add_result_to_benchmark,
    check_device_perf,
    run_single_op_device_perf,
)
from models.demos.gpt_oss_mini.tests.test_factory import MESH_SHAPE
from models.demos.utils.trace_region_sizes import TRACE_MODEL_KEY_PARAM
from models.perf.benchmarking_utils import BenchmarkData, BenchmarkProfiler

FUSED_OP_RUN_TYPE = "gpt_oss_mini_fused_ops"
E2E_PERF_MARGIN = 0.2
DEVICE_PARAMS = {"fabric_config": ttnn.FabricConfig.FABRIC_1D_RING, TRACE_MODEL_KEY_PARAM: MODEL_NAME}
MESH_ID = f"mesh_{MESH_SHAPE[0]}x{MESH_SHAPE[1]}"


def fused_op_matrix(
    mesh_shape=MESH_SHAPE,
    mesh_id=MESH_ID,
    device_params=DEVICE_PARAMS,
    real_weights=(False, True),
    program_cache=(True, False),
    trace=(False, True),
    trace_region_size=None,
):
    """The decorators under the ``mode, seq_len, ...`` rows of a fused-op test, nearest the function first, so ids
    read ``[device_params0-<mesh_id>-<eager|trace>-<program_cache|no_program_cache>-<random|real>_weights-<row>]``.
    ``trace_region_size`` (bytes) replaces the model's entry in models/model_trace_region_sizes.yaml, for a test
    whose trace needs more (the size its log prints on "Creating trace buffers of size ...")."""
    if trace_region_size is not None:
        device_params = {**device_params, "trace_region_size": trace_region_size}
    stack = [
        pytest.mark.parametrize(
            "use_real_weights",
            list(real_weights),
            ids=["real_weights" if w else "random_weights" for w in real_weights],
        ),
        pytest.mark.parametrize(
            "program_cache_enabled",
            list(program_cache),
            ids=["program_cache" if c else "no_program_cache" for c in program_cache],
        ),
        pytest.mark.parametrize("trace_mode", list(trace), ids=["trace" if t else "eager" for t in trace]),
        pytest.mark.parametrize("mesh_device", [mesh_shape], ids=[mesh_id], indirect=True),
        pytest.mark.parametrize("device_params", [device_params], indirect=True),
    ]

    def decorate(function):
        for decorator in reversed(stack):
            function = decorator(function)
        return function

    return decorate


FUSED_OP_MATRIX = fused_op_matrix()


def compare_with_reference(tt_output, ref_output, expected_pcc, name=""):
    """comp_pcc(reference, tt) and the ``PCC {name}: {pcc}`` line; comp_allclose's largest absolute difference
    as the ``ATOL {name}: {atol}`` line (guide 7.7: ATOL is compared and logged, PCC is asserted)."""
    passing, pcc = comp_pcc(ref_output.float(), tt_output.float(), expected_pcc)
    logger.info(f"PCC {name}: {pcc}")
    _, deltas = comp_allclose(ref_output.float(), tt_output.float())
    logger.info(f"ATOL {name}: {float(deltas.split(',')[0].split(':')[1])}")
    return passing, pcc


def deallocate_outputs(outputs) -> None:
    for tensor in outputs if isinstance(outputs, tuple | list) else (outputs,):
        ttnn.deallocate(tensor)


def _run_synchronized(mesh_device, op_fn, iterations: int) -> None:
    for _ in range(iterations):
        outputs = op_fn()
        ttnn.synchronize_device(mesh_device)
        deallocate_outputs(outputs)


def _capture(mesh_device, op_fn, iterations: int):
    trace_id = ttnn.begin_trace_capture(mesh_device, cq_id=0)
    for _ in range(iterations):
        deallocate_outputs(op_fn())
    ttnn.end_trace_capture(mesh_device, trace_id, cq_id=0)
    ttnn.synchronize_device(mesh_device)
    return trace_id


def measure_perf_us(
    mesh_device, op_fn, warmup_iters: int, measure_iters: int, trace_mode: bool = False
) -> float:
    """e2e microseconds per iteration: eager syncs after every iteration; trace replays a warm-up trace, then one
    trace holding all measured iterations."""
    key = "fused_op_perf"
    ttnn.synchronize_device(mesh_device)
    if not trace_mode:
        _run_synchronized(mesh_device, op_fn, warmup_iters)
        profiler.clear()
        profiler.start(key)
        _run_synchronized(mesh_device, op_fn, measure_iters)
        profiler.end(key, PERF_CNT=measure_iters)
        return profiler.get(key) * 1e6
    deallocate_outputs(op_fn())  # allocates every buffer the captured ops reuse
    ttnn.synchronize_device(mesh_device)
    if warmup_iters > 0:
        warmup_trace = _capture(mesh_device, op_fn, warmup_iters)
        ttnn.execute_trace(mesh_device, warmup_trace, blocking=False)
        ttnn.release_trace(mesh_device, warmup_trace)
        ttnn.synchronize_device(mesh_device)
    trace_id = _capture(mesh_device, op_fn, measure_iters)
    profiler.clear()
    profiler.start(key)
    ttnn.execute_trace(mesh_device, trace_id, blocking=False)
    ttnn.synchronize_device(mesh_device)
    profiler.end(key, PERF_CNT=measure_iters)
    ttnn.release_trace(mesh_device, trace_id)
    return profiler.get(key) * 1e6


def run_device_perf_iterations(
    mesh_device, op_fn, warmup_iters: int, trace_mode: bool, iters: int = DEVICE_PERF_ITERS
):
    """Eager warm-ups, then ``iters`` iterations between the ``start`` and ``stop`` signposts; trace mode captures
    ONE iteration and replays it, so the window holds replays only."""
    from tracy import signpost

    logger.info("Skipping e2e perf measurement during device-perf profiling.")
    _run_synchronized(mesh_device, op_fn, warmup_iters)
    ttnn.synchronize_device(mesh_device)
    if not trace_mode:
        signpost("start")
        _run_synchronized(mesh_device, op_fn, iters)
        signpost("stop")
        return
    trace_id = _capture(mesh_device, op_fn, 1)
    signpost("start")
    for _ in range(iters):
        ttnn.execute_trace(mesh_device, trace_id, blocking=False)
        ttnn.synchronize_device(mesh_device)
    signpost("stop")
    ttnn.release_trace(mesh_device, trace_id)


@dataclass(frozen=True)
class FusedOpCase:
    """One parametrized case of ``test_<op>`` / ``test_<op>_single_device``."""

    mode: str
    seq_len: int
    expected_pcc: float
    expected_perf_us: float
    use_real_weights: bool
    program_cache_enabled: bool
    trace_mode: bool


class FusedOpTest:
    """The plumbing of one test file ``test_<op>.py``, named after its stem and configured by its constants."""

    def __init__(self, test_file, device_perf_env_var, warmup_iters, measure_iters, device_perf_iters):
        """``warmup_iters`` precede both the e2e loop of ``measure_iters`` and the device-perf window of
        ``device_perf_iters`` (the guide: 10 warm-ups)."""
        self.test_file = Path(test_file).resolve()
        self.op = self.test_file.stem.removeprefix("test_")
        self.env_var = device_perf_env_var
        self.warmup_iters, self.measure_iters = warmup_iters, measure_iters
        self.device_perf_iters = device_perf_iters

    def case(
        self,
        mesh_device,
        mode,
        seq_len,
        expected_pcc,
        expected_perf_us,
        use_real_weights,
        program_cache_enabled,
        trace_mode,
    ) -> FusedOpCase:
        """The case; first, as tt-metal's tests do, a no_program_cache case disables and clears the cache of the
        mesh the ops will run on (it is on by default)."""
        if not program_cache_enabled:
            mesh_device.disable_and_clear_program_cache()
        return FusedOpCase(
            mode, seq_len, expected_pcc, expected_perf_us, use_real_weights, program_cache_enabled, trace_mode
        )

    def measure(
        self, mesh_device, op_fn, case: FusedOpCase, batch_size: int, single_device: bool = False
    ) -> None:
        """The perf tail of ``_run_<op>_test``: signposted iterations inside the device-perf run, else e2e perf."""
        if os.getenv(self.env_var) is not None:
            run_device_perf_iterations(
                mesh_device, op_fn, self.warmup_iters, case.trace_mode, self.device_perf_iters
            )
            return
        if not (
            case.trace_mode and not case.program_cache_enabled
        ):  # trace without the program cache times nothing
            self.e2e_perf(mesh_device, op_fn, case, batch_size, single_device)

    def e2e_perf(self, mesh_device, op_fn, case: FusedOpCase, batch_size: int, single_device: bool) -> None:
        """Measure, log ``Perf avg: ...``, record the step in BenchmarkData, check the target (eager, cached only)."""
        infix = "_single_device" if single_device else ""
        step_name = (
            f"{self.op}_{case.mode}_seq{case.seq_len}{infix}_{'trace' if case.trace_mode else 'no_trace'}"
            f"_{'pcache' if case.program_cache_enabled else 'no_pcache'}"
        )
        perf_profiler = BenchmarkProfiler()
        perf_profiler.start("run")
        perf_profiler.start(step_name)
        perf_us = measure_perf_us(mesh_device, op_fn, self.warmup_iters, self.measure_iters, case.trace_mode)
        label = "Single device perf avg" if single_device else "Perf avg"
        logger.info(f"{label}: {perf_us:.3f} us over {self.measure_iters} iters (warmup {self.warmup_iters})")
        perf_profiler.end(step_name)
        perf_profiler.end("run")
        target_applies = case.expected_perf_us > 0 and not case.trace_mode and case.program_cache_enabled
        benchmark_data = BenchmarkData()
        benchmark_data.add_measurement(
            perf_profiler,
            0,
            step_name,
            f"{step_name}-avg_us",
            perf_us,
            step_warm_up_num_iterations=self.warmup_iters,
            target=case.expected_perf_us if target_applies else None,
        )
        benchmark_data.save_partial_run_json(
            perf_profiler,
            run_type=FUSED_OP_RUN_TYPE + infix,
            ml_model_name=MODEL_NAME,
            batch_size=batch_size,
            input_sequence_length=case.seq_len,
        )
        if target_applies:
            assert perf_us <= case.expected_perf_us * (1 + E2E_PERF_MARGIN), (
                f"Perf regression: {perf_us:.3f}us exceeds expected {case.expected_perf_us:.3f}us"
            )
        elif not case.trace_mode and case.program_cache_enabled:
            logger.warning("TODO: Set expected_perf_us using a measured baseline.")

    def device_perf(self, mode, seq_len, batch_size, targets, single_device=False):
        """``test_<op>[_single_device]_device_perf``: profile the matching case of the accuracy test, check the
        figures against ``targets`` and record them in BenchmarkData."""
        infix = "_single_device" if single_device else ""
        run_type = f"{FUSED_OP_RUN_TYPE}{infix}_device_perf"
        step_name = f"{self.op}{infix}_device_perf_{mode}_seq{seq_len}"
        perf_profiler = BenchmarkProfiler()
        perf_profiler.start("run")
        perf_profiler.start(step_name)
        result = run_single_op_device_perf(
            f"{self.op}{infix}",
            os.path.relpath(self.test_file),
            f"test_{self.op}{infix}",
            self.env_var,
            mode,
            seq_len,
            batch_size,
            subdir=run_type,
            iterations=self.device_perf_iters,
        )
        perf_profiler.end(step_name)
        perf_profiler.end("run")
        check_device_perf(result, mode, targets)
        benchmark_data = BenchmarkData()
        add_result_to_benchmark(benchmark_data, perf_profiler, result)
        benchmark_data.save_partial_run_json(
            perf_profiler,
            run_type=run_type,
            ml_model_name=MODEL_NAME,
            batch_size=batch_size,
            input_sequence_length=seq_len,
        )
        return result
