"""launch(): the one code path every device op goes through, and trace capture / replay.

Per op: fault check -> program-cache lookup -> impl (torch on shards) -> cost -> timelines -> profiler rows
(one per device) -> trace recording. Replaying a trace re-runs the recorded impls on the recorded input
tensors and writes the results into the recorded output tensors, so consumers of those tensors see the
new values exactly as with a real trace.
"""

from __future__ import annotations

import functools
import inspect
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

from ttnn_sim import clock, cost, faults, profiler
from ttnn_sim.cost import OpCost
from ttnn_sim.tensor import Tensor, restored, shared_storage, to_storage
from ttnn_sim.threads import on_sim_threads
from ttnn_sim.types import DataType, Layout, MemoryConfig, TensorMemoryLayout

TRACE_BYTES_PER_OP = 4096  # command-queue bytes one traced program occupies per device
# Compute once what every chip would compute alike (Context.per_device); off only to prove it changes nothing.
SHARE_REPLICATED = True


@dataclass(frozen=True)
class OpDef:
    impl: Callable  # impl(ctx, *args, **kwargs) -> Tensor | tuple[Tensor, ...]
    cost: Callable  # cost(ctx, inputs, outputs, kwargs) -> OpCost
    # OP CODE in the profiler CSV, as tt-metal names the device operation; an op that runs one of several
    # device operations (to_layout) gives a function of its named arguments and lists them all in op_codes.
    op_code: str | Callable
    attributes: Callable = lambda kwargs, outputs: {}  # -> dict for the ATTRIBUTES cell
    # The keyword ttnn takes a preallocated output under ("output_tensor" for element-wise ops,
    # "optional_output_tensor" for matmul); the result is written into it and it is returned.
    output_arg: str | None = None
    in_place: bool = False  # ttnn.add_ and friends: the result is written into the first argument
    # view(named arguments) -> True when ttnn performs this call as a view (no device op, no profiler row,
    # the result shares the input's buffer); ctx.as_view tells the impl.
    view: Callable | None = None
    op_codes: tuple = ()
    # The tt-metal file whose binding (or Python wrapper) gives the op's signature; the impl's parameters are
    # that signature, so ttnn's keywords, and only those, are accepted (docs/sim-semantics.md lists them).
    source: str = ""
    # The arguments whose value tt-metal records in the op's ATTRIBUTES (the profiler cell changes with each).
    recorded: tuple = ()

    def codes(self) -> tuple:
        """Every OP CODE this op can write."""
        return self.op_codes or (self.op_code,)

    def code_for(self, named: dict) -> str:
        return self.op_code(named) if callable(self.op_code) else self.op_code


class Context:
    """What an op implementation sees: the mesh, and helpers to compute per device and make outputs."""

    def __init__(self, mesh, replay: bool, as_view: bool = False):
        self.mesh = mesh
        self.replay = replay
        self.as_view = as_view

    @property
    def num_devices(self) -> int:
        return self.mesh.get_num_devices()

    def per_device(self, fn, *tensors, **kwargs) -> list:
        """fn(*shards_of_device_i) for each device; non-tensor arguments pass through.

        Devices whose shards are the same torch tensors (a replicated tensor is stored once) would compute the
        same thing, so fn runs once for them and they share the result; each chip still gets its own timeline
        and profiler rows."""
        results, done = [], {}
        for i in range(self.num_devices):
            args = [t.shards[i] if isinstance(t, Tensor) else t for t in tensors]
            key = tuple(id(a) for a, t in zip(args, tensors, strict=True) if isinstance(t, Tensor))
            if not SHARE_REPLICATED or key not in done:
                done[key] = fn(*args, **kwargs)
            results.append(done[key])
        return results

    def output(self, shards, dtype: DataType, layout: Layout = Layout.TILE,
               memory_config: MemoryConfig | None = None) -> Tensor:
        memory_config = memory_config or _DRAM
        stored = shared_storage(shards, dtype, layout)
        tensor = Tensor(stored, dtype, layout, self.mesh, memory_config)
        if not self.replay:
            self.mesh.allocate(tensor)
        return tensor


_DRAM = MemoryConfig(TensorMemoryLayout.INTERLEAVED)


def _tensors_in(args, kwargs) -> list[Tensor]:
    """Input tensors in profiler order: positional first, then optional (keyword) tensors."""
    found = []

    def visit(value):
        if isinstance(value, Tensor):
            found.append(value)
        elif isinstance(value, (list, tuple)):
            for v in value:
                visit(v)

    for a in args:
        visit(a)
    for v in kwargs.values():
        visit(v)
    return found


def _as_tuple(outputs) -> tuple:
    if outputs is None:
        return ()
    if isinstance(outputs, Tensor):
        return (outputs,)
    return tuple(o for o in outputs if isinstance(o, Tensor))


@functools.cache
def _signature(impl) -> inspect.Signature:
    return inspect.signature(impl)


def _named_arguments(name: str, opdef: OpDef, args, kwargs) -> dict:
    """Every argument by ttnn's parameter name (positional ones too, defaults filled in), so attributes and
    cost see e.g. `dim`. An argument ttnn's signature lacks raises TypeError naming it, as ttnn's bindings
    do."""
    try:
        bound = _signature(opdef.impl).bind(None, *args, **kwargs)
    except TypeError as error:
        raise TypeError(f"ttnn.{name}() {error}") from None
    bound.apply_defaults()  # what the op runs with, as its ATTRIBUTES show it
    return dict(list(bound.arguments.items())[1:])  # skip ctx


def _cache_key(name, inputs, kwargs) -> tuple:
    plain = tuple(sorted((k, repr(v)) for k, v in kwargs.items() if not isinstance(v, (Tensor, list, tuple))))
    return (name, tuple(t.spec_key() for t in inputs), plain)


def _output_target(opdef: OpDef, named: dict, kwargs: dict):
    """(preallocated output or None, kwargs without it): what ttnn writes the result into."""
    if opdef.in_place:
        return next(iter(named.values())), kwargs  # the first argument, passed by position or by name
    if opdef.output_arg and kwargs.get(opdef.output_arg) is not None:
        return kwargs[opdef.output_arg], {k: v for k, v in kwargs.items() if k != opdef.output_arg}
    return None, kwargs


def write_into(target: Tensor, result: Tensor, replay: bool = False) -> Tensor:
    """Store `result`'s values in `target` (its dtype, layout and buffer stay), as a preallocated output. A
    trace replay writes to the captured buffer even when the host has since released its handle, as on
    hardware."""
    if tuple(target.shape) != tuple(result.shape) or len(target.shards) != len(result.shards):
        raise RuntimeError(f"TT_FATAL: output tensor shape {target.shape} does not match the result shape "
                           f"{result.shape}")
    if not replay:
        target.check_alive()
    if result is not target:
        target.shards = restored(result, target.dtype, target.layout)
        result._free()
    return target


def _run_impl(ctx, opdef: OpDef, target, args, kwargs):
    outputs = opdef.impl(ctx, *args, **kwargs)
    return outputs if target is None else write_into(target, outputs, ctx.replay)


@on_sim_threads
def launch(name: str, opdef: OpDef, args: tuple, kwargs: dict):
    named = _named_arguments(name, opdef, args, kwargs)  # refuses what ttnn refuses, before any work
    target, kwargs = _output_target(opdef, named, kwargs)
    named.pop(opdef.output_arg, None)
    inputs = _tensors_in(args, kwargs)
    if not inputs or inputs[0].device() is None:
        raise RuntimeError(f"TT_FATAL: ttnn.{name} expects device tensors")
    mesh = inputs[0].device()
    for t in inputs:
        t.check_alive()
    if opdef.view is not None and opdef.view(named):
        return _launch_view(mesh, name, opdef, args, kwargs)
    faults.on_device_op(name)
    hit = mesh.lookup_program(_cache_key(name, inputs, named))
    if mesh.capturing is not None and not mesh.program_cache_enabled:
        raise RuntimeError("TT_FATAL: Trace capture requires the program cache to be enabled")
    ctx = Context(mesh, replay=False)
    outputs = _run_impl(ctx, opdef, target, args, kwargs)
    op_cost = opdef.cost(ctx, inputs, _as_tuple(outputs), named)
    host_ns = cost.HOST_DISPATCH_NS + (0 if hit else cost.HOST_COMPILE_NS)
    host_start = clock.host_time_ns()
    clock.advance_host(host_ns)
    op = DeviceOp(name, opdef, inputs, _as_tuple(outputs), named, op_cost, hit, host_start,
                  clock.host_time_ns())
    if mesh.capturing is not None:
        mesh.capturing.calls.append(TracedCall(name, opdef, target, args, kwargs, op.outputs, op_cost))
        if profiler.enabled():
            profiler.emit(_host_record(mesh, op))
        return outputs
    _run_on_devices(mesh, op)
    return outputs


def _launch_view(mesh, name, opdef, args, kwargs):
    """A call ttnn performs as a view: host metadata only. Inside a trace it is recorded so a replay
    re-derives the view from the replayed input."""
    outputs = opdef.impl(Context(mesh, replay=False, as_view=True), *args, **kwargs)
    if mesh.capturing is not None:
        mesh.capturing.calls.append(TracedCall(name, opdef, None, args, kwargs, _as_tuple(outputs), None))
    return outputs


class TracedCall(NamedTuple):
    """One call recorded while a trace is captured; a replay re-runs it."""

    name: str
    opdef: OpDef
    target: Tensor | None  # the preallocated output the result is written into
    args: tuple
    kwargs: dict
    outputs: tuple  # the captured output tensors, which a replay overwrites
    op_cost: OpCost | None  # None: a view (no device op)


@dataclass(frozen=True)
class DeviceOp:
    """One op as the chips run it: what every chip's timeline and profiler row of that op share."""

    name: str
    opdef: OpDef
    inputs: list
    outputs: tuple
    named: dict  # every argument by parameter name
    op_cost: OpCost
    hit: bool  # program-cache hit
    host_start: int
    host_end: int
    # The device clock before which no kernel of the op may start: the host has not issued it yet. Eager ops
    # are issued when their dispatch ends; a trace replay's ops when the host's execute_trace issued them.
    ready_at: int | None = None
    op_to_op_floor: int = 0  # the device's own minimum gap between two kernels (trace replays)
    trace_id: int | None = None
    replay_session: int | None = None
    sort_ts: int | None = None


class ChipSpan(NamedTuple):
    """Where one op's kernel ran on one chip's device clock."""

    start: int
    end: int
    gap: int  # from the chip's previous kernel end (the profiler's OP TO OP LATENCY)


def _run_on_devices(mesh, op: DeviceOp) -> None:
    system_calls = _next_call_count()
    per_op = _op_fields(op) if profiler.enabled() else None
    ready_at = op.host_end if op.ready_at is None else op.ready_at
    for chip in mesh.chips:
        start = max(chip.idle_at, ready_at)
        if chip.last_kernel_end is not None:
            start = max(start, chip.last_kernel_end + op.op_to_op_floor)
        end = start + op.op_cost.kernel_ns
        gap = 0 if chip.last_kernel_end is None else start - chip.last_kernel_end
        chip.idle_at = end
        chip.last_kernel_end = end
        if per_op is not None:
            profiler.emit(_record(op, per_op, chip, system_calls, ChipSpan(start, end, gap)))


def _next_call_count() -> int:
    from ttnn_sim.device import system

    system().global_call_count += 1024  # tt-metal's sample CSVs step host op ids by 1024
    return system().global_call_count


def _tensor_record(t: Tensor, chip_id: int) -> dict:
    config = t.memory_config()
    memory = (
        "HOST" if config is None else f"DEV_{chip_id}_{config.buffer_type.name}_{config.memory_layout.name}"
    )
    return {"shape": list(t.shape), "padded_shape": list(t.padded_shape), "layout": t.layout.name,
            "dtype": t.dtype.name, "memory": memory}


def attribute_text(value) -> str:
    """An argument as the ATTRIBUTES cell prints it: std::nullopt for none, true / false for booleans."""
    if value is None:
        return "std::nullopt"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(attribute_text(v) for v in value) + "]"
    return str(value)


def _attributes_text(opdef: OpDef, kwargs, outputs) -> dict:
    """The recorded arguments by name, then what the op derives (op type, fidelity, ...), then the output's
    dtype and memory config when the op does not name them itself."""
    attrs = {name: attribute_text(kwargs.get(name)) for name in opdef.recorded}
    attrs.update({k: str(v) for k, v in opdef.attributes(kwargs, outputs).items()})
    if outputs:
        attrs.setdefault("output_dtype", f"DataType::{outputs[0].dtype.name}")
        attrs.setdefault("output_mem_config", str(outputs[0].memory_config()).replace(",", ";"))
    return attrs


def _host_record(mesh, op: DeviceOp) -> dict:
    """A captured op's host record: tt-metal keeps it in the CSV with empty device columns (the device runs
    the op only on replay), at capture time, with no trace id."""
    chip = mesh.chips[0]
    return {
        "kind": "op", "op_code": op.opdef.code_for(op.named), "op_type": "tt_dnn_device",
        "global_call_count": _next_call_count(),
        "attributes": _attributes_text(op.opdef, op.named, op.outputs), "host_start_ts": op.host_start,
        "host_end_ts": op.host_end, "inputs": [_tensor_record(t, chip.id) for t in op.inputs],
        "outputs": [_tensor_record(t, chip.id) for t in op.outputs], "program_cache_hit": op.hit,
        "sort_ts": op.host_start,
    }


def _op_fields(op: DeviceOp) -> dict:
    """The record fields every chip's row of one op shares (computed once per op, not once per chip)."""
    attrs = _attributes_text(op.opdef, op.named, op.outputs)
    op_code = op.opdef.code_for(op.named)
    program = repr((op_code, sorted(attrs.items()), [t.spec_key() for t in op.inputs]))
    kernels = f"ttnn_sim/kernels/{op.name}"
    return {
        "op_code": op_code, "attributes": attrs, "program_hash": zlib.crc32(program.encode()),
        "compute_kernel_source": [f"{kernels}/compute.cpp"] if op.op_cost.math_fidelity else [],
        "dm_kernel_source": [f"{kernels}/reader.cpp", f"{kernels}/writer.cpp"],
    }


def _record(op: DeviceOp, per_op: dict, chip, call_count: int, span: ChipSpan) -> dict:
    return {
        "kind": "op", "op_code": per_op["op_code"], "op_type": "tt_dnn_device",
        "global_call_count": call_count, "device_id": chip.id, "arch": "wormhole_b0",
        "attributes": per_op["attributes"], "math_fidelity": op.op_cost.math_fidelity,
        "core_count": op.op_cost.core_count, "available_worker_core_count": cost.CORES, "sub_device_id": 0,
        "host_start_ts": op.host_start, "host_end_ts": op.host_end,
        "fw_start_cycle": span.start - 200, "fw_end_cycle": span.end + 100, "kernel_start_cycle": span.start,
        "kernel_end_cycle": span.end, "kernel_duration_ns": op.op_cost.kernel_ns,
        "op_to_op_latency_ns": span.gap,
        "inputs": [_tensor_record(t, chip.id) for t in op.inputs],
        "outputs": [_tensor_record(t, chip.id) for t in op.outputs],
        "trace_id": op.trace_id, "replay_session_id": op.replay_session, "program_cache_hit": op.hit,
        "program_hash": per_op["program_hash"], "compute_kernel_source": per_op["compute_kernel_source"],
        "dm_kernel_source": per_op["dm_kernel_source"],
        "sort_ts": op.host_start if op.sort_ts is None else op.sort_ts,
    }


# --- trace ---------------------------------------------------------------------------------------
def begin_trace_capture(mesh, cq_id: int = 0) -> int:
    from ttnn_sim.device import Trace

    if not mesh.program_cache_enabled:
        raise RuntimeError("TT_FATAL: Trace capture requires the program cache to be enabled")
    trace = Trace(mesh.next_trace_id)
    mesh.next_trace_id += 1
    mesh.traces[trace.id] = trace
    mesh.capturing = trace
    return trace.id


def end_trace_capture(mesh, trace_id: int, cq_id: int = 0) -> None:
    trace = mesh.traces[trace_id]
    mesh.capturing = None
    needed = TRACE_BYTES_PER_OP * len(trace.calls)
    if needed > mesh.trace_region_size:
        del mesh.traces[trace_id]
        raise RuntimeError(
            f"TT_FATAL @ mesh_trace.cpp: false\nCreating trace buffers of size {needed}B on MeshDevice "
            f"{mesh.mesh_id}, but only {mesh.trace_region_size}B is allocated for trace region."
        )


@on_sim_threads
def execute_trace(mesh, trace_id: int, cq_id: int = 0, blocking: bool = True) -> None:
    """Replay a captured trace. The device starts the replay only once the host has issued it: no kernel of
    the replay starts before this call's host dispatch ends, so the host gap between two replays shows as
    the first op's op-to-op latency, and a replay's e2e time always covers its device time."""
    trace = mesh.traces[trace_id]
    trace.replays += 1
    host_start = clock.host_time_ns()
    issued = clock.advance_host(cost.HOST_EXECUTE_TRACE_NS)
    for call in trace.calls:
        _replay_call(mesh, call)
        if call.op_cost is None:
            continue  # a view: no device op
        inputs = _tensors_in(call.args, call.kwargs)
        named = _named_arguments(call.name, call.opdef, call.args, call.kwargs)
        now = clock.host_time_ns()
        _run_on_devices(mesh, DeviceOp(call.name, call.opdef, inputs, call.outputs, named, call.op_cost, True,
                                       host_start, now, ready_at=issued,
                                       op_to_op_floor=cost.TRACE_OP_TO_OP_NS, trace_id=trace_id,
                                       replay_session=trace.replays, sort_ts=now))
        clock.advance_host(1)  # keeps replay rows in execution order when sorted by time
    if blocking:
        mesh.synchronize()


def _replay_call(mesh, call: TracedCall) -> None:
    """Re-run one captured call's impl on its captured inputs, writing into its captured outputs."""
    is_view = call.op_cost is None
    if not is_view:
        faults.on_device_op(call.name)
    context = Context(mesh, replay=True, as_view=is_view)
    fresh = _as_tuple(_run_impl(context, call.opdef, call.target, call.args, call.kwargs))
    for recorded, new in zip(call.outputs, fresh, strict=True):
        if recorded is not new:
            recorded.shards = restored(new, recorded.dtype, recorded.layout)


def release_trace(mesh, trace_id: int) -> None:
    mesh.traces.pop(trace_id, None)


@on_sim_threads
def copy_host_to_device_tensor(host_tensor: Tensor, device_tensor: Tensor, cq_id: int = 0) -> None:
    """Overwrite a device tensor's contents in place (the way inputs are fed to a captured trace)."""
    if tuple(host_tensor.shape) != tuple(device_tensor.shape):
        raise RuntimeError("TT_FATAL: copy_host_to_device_tensor needs matching shapes")
    shards = host_tensor.shards
    if len(shards) == 1:
        shards = shards * len(device_tensor.shards)
    device_tensor.shards = [to_storage(s, device_tensor.dtype, device_tensor.layout) for s in shards]
    clock.advance_host(cost.host_transfer_ns(device_tensor.buffer_bytes() * len(shards)))


def deallocate(tensor: Tensor, force: bool = True) -> None:
    tensor.deallocate(force)
