"""pytest plugin for the oracle's rerun: ``pytest -p pipeline.oracle_plugin`` with $PIPELINE_PERTURB set to
the fused function's name (``<op>_ttnn``). Inert without it.

After collection it wraps that attribute of every collected test module (the test's closures look the
global up at call time, as the facts plugin relies on too) so that each call returns a deterministic,
clearly wrong answer: every output tensor is rolled by half its size along its last and second-last
dims (a permutation: tokens get each other's rows, a sorted comparison still sees it), and a float
tensor is then mapped to ``1 - 2 x`` (a negative scale: PCC -1 against the right answer, far off any
ATOL; a plain number result gets the same map). Everything goes through ttnn's Python API, so it runs
on a card as on the sim, and the result keeps the output's shape, dtype, layout, memory config and
mesh distribution (every op works per device shard and is given the output's own memory config). An
integer output with nothing to permute (one element) is shifted by 1 instead.

Only each case's FIRST call is made wrong: in a fused-op test that is the accuracy call (the guide's
test computes, compares, then measures). The warm-ups and timed iterations stay the fused function's own,
so a perf assertion cannot fail on the perturbation's extra ops and pass for a catch.

It writes ``$PIPELINE_STEP_DIR/oracle.json`` (the perturbed calls), so the orchestrator knows the case
really got wrong answers; a perturbation that raises is re-raised as OracleError (its message starts
with ``ORACLE_ERROR``), so the orchestrator never mistakes it for the test catching a wrong answer.
"""

import functools
import json
import os
from pathlib import Path

ENV = "PIPELINE_PERTURB"
RECORD = "oracle.json"
ERROR_TAG = "ORACLE_ERROR"
SCALE, OFFSET = -2.0, 1.0  # float outputs become OFFSET + SCALE * x

_state = {"perturbed_calls": 0, "wrapped_modules": [], "calls_in_case": 0}


class OracleError(RuntimeError):
    """The perturbation itself failed: the case says nothing about the test's assertions."""


def pytest_collection_finish(session):
    name = os.environ.get(ENV)
    if not name:
        return
    modules = {id(item.module): item.module for item in session.items if getattr(item, "module", None)}
    for module in modules.values():
        original = getattr(module, name, None)
        if callable(original) and not getattr(original, "__pipeline_perturbed__", False):
            setattr(module, name, _perturbing(original))
            _state["wrapped_modules"].append(module.__name__)
    _write()


def pytest_runtest_setup(item):
    _state["calls_in_case"] = 0


def pytest_sessionfinish(session):
    if os.environ.get(ENV):
        _write()


def _perturbing(original):
    @functools.wraps(original)
    def wrapper(*args, **kwargs):
        outputs = original(*args, **kwargs)
        _state["calls_in_case"] += 1
        if _state["calls_in_case"] > 1:  # warm-ups and timed calls: the function's own answer
            return outputs
        tensors = []
        try:
            perturbed = _map(outputs, tensors)
        except Exception as error:  # the oracle's own failure, never the test's verdict
            message = f"{ERROR_TAG}: could not perturb the outputs of {original.__name__}: {error!r}"
            raise OracleError(message) from error
        if tensors:  # a call counts when at least one output tensor was made wrong
            _state["perturbed_calls"] += 1
            _write()
        return perturbed

    wrapper.__pipeline_perturbed__ = True
    return wrapper


def _map(outputs, tensors: list):
    """Tuples and lists of outputs keep their structure; anything not a ttnn tensor is left alone."""
    if isinstance(outputs, tuple | list):
        return type(outputs)(_map(o, tensors) for o in outputs)
    if isinstance(outputs, int | float) and not isinstance(outputs, bool):
        tensors.append(OFFSET + SCALE * outputs)  # a host-side scalar result: wrong the same way
        return type(outputs)(tensors[-1])
    if not _is_tensor(outputs):
        return outputs
    tensors.append(perturb(outputs))
    return tensors[-1]


def _is_tensor(value) -> bool:
    try:
        import ttnn
    except ImportError:  # a workspace whose fused function returns no ttnn tensors
        return False
    return isinstance(value, ttnn.Tensor)


def perturb(tensor):
    """Roll the last two dims by half, then 1 - 2x for floats; same shape/dtype/layout/memory config."""
    import ttnn

    memory_config = tensor.memory_config()
    result = tensor
    for dim in (-1, -2):
        result = _roll_half(result, dim, memory_config)
    if not _is_float(tensor.dtype) and result is tensor:  # one integer: nothing to permute, so shift it
        result = ttnn.add(tensor, 1, memory_config=memory_config)
    elif _is_float(tensor.dtype):
        scaled = ttnn.multiply(result, SCALE, memory_config=memory_config)
        _release(result, tensor)
        result = ttnn.add(scaled, OFFSET, memory_config=memory_config)
        ttnn.deallocate(scaled)
    if result is not tensor:
        ttnn.deallocate(tensor)
    return result


def _roll_half(tensor, dim: int, memory_config):
    """concat([x[h:], x[:h]]) along `dim` with h = half its size (nothing to roll for a size of 1)."""
    import ttnn

    shape = list(tensor.shape)
    if len(shape) < -dim or shape[dim] < 2:
        return tensor
    half = shape[dim] // 2
    axis = len(shape) + dim
    head_end, tail_start = list(shape), [0] * len(shape)
    head_end[axis] = half
    tail_start[axis] = half
    tail = ttnn.slice(tensor, tail_start, shape)
    head = ttnn.slice(tensor, [0] * len(shape), head_end)
    rolled = ttnn.concat([tail, head], dim=axis, memory_config=memory_config)
    ttnn.deallocate(tail)
    ttnn.deallocate(head)
    return rolled


def _release(intermediate, output) -> None:
    """Free a tensor the perturbation made (never the fused function's own output: freed at the end)."""
    import ttnn

    if intermediate is not output:
        ttnn.deallocate(intermediate)


def _is_float(dtype) -> bool:
    """bfloat16 / float32 / bfloat8_b / bfloat4_b; not the integer dtypes of indices (uint16, int32, ...)."""
    return "INT" not in str(dtype).upper()


def _write() -> None:
    step_dir = os.environ.get("PIPELINE_STEP_DIR")
    if not step_dir:
        return
    path = Path(step_dir) / RECORD
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps({"function": os.environ.get(ENV), **_state}))
    os.replace(temporary, path)
