"""pytest plugin (``-p pipeline.facts_plugin``): record, per test case, what the ttnn API was asked to do.

Loaded in every device-step child (backends.PYTEST_OPTIONS); inert when ``$PIPELINE_STEP_DIR`` is unset.
It wraps Python entry points only, so it works the same with tt-metal's ttnn and with ttnn_sim:

- the fused function ``$PIPELINE_FUSED_FUNCTION`` in every collected test module (the test's closures
  look the global up at call time): calls, and the meshes of its ttnn tensor inputs/outputs;
- ``ttnn.begin_trace_capture`` / ``end_trace_capture`` / ``execute_trace``: captures, replays and the
  fused calls each replay runs again;
- ``MeshDevice.disable_and_clear_program_cache`` / ``enable_program_cache`` and
  ``num_program_cache_entries``: the cache state each fused call dispatched under;
- ``ttnn.open_mesh_device`` / ``MeshDevice.create_submesh``: a submesh inherits its parent's cache state;
- tt-metal's comparison helpers (``models/common/utility_functions.py``: comp_pcc, comp_allclose, ...),
  wrapped at configure time and re-bound in every module that imported them before;
- ``ttnn.to_torch`` and the reference function ``<op>_reference``: which values came out of ttnn and
  which out of the reference, so a comparison of the ttnn output with itself is seen;
- the e2e timer (``profiler.start``/``end(PERF_CNT=...)``) and ``tracy.signpost("start"/"stop")``;
- checkpoint reads (``safetensors.safe_open`` / ``safetensors.torch.load_file`` / ``torch.load``).

Counting rules (one place): a fused call made while a trace is being captured runs nothing (it is
counted in ``calls`` and in the trace it is captured into); an "executed" call is a direct call outside a
capture or a replayed one. A window (e2e timer, device-perf signposts) counts executed calls. Its
warm-ups are the executed calls after the last comparison and before the window opens; for a window of
replays, only the replays before it (the eager call that compiles and allocates before a capture is no
warm-up of a traced loop), unless there were none.

One JSON per case in ``$PIPELINE_STEP_DIR/facts/`` (pipeline/facts.py names the file and reads it).
"""

import functools
import importlib.abc
import json
import os
import sys
from pathlib import Path

from pipeline import facts_values
from pipeline.facts_case import CaseFacts

STEP_DIR_ENV = "PIPELINE_STEP_DIR"
FUSED_ENV = "PIPELINE_FUSED_FUNCTION"
COMPARISON_HELPERS = {"comp_pcc": "pcc", "comp_allclose": "allclose", "comp_allclose_and_pcc": "pcc"}
UTILITY_MODULE = "models.common.utility_functions"


STATE: CaseFacts | None = None  # the running case (None between cases)
_cache_disabled: dict = {}  # id(mesh) -> True when its program cache is disabled
_parents: dict = {}  # id(submesh) -> id(parent)
_wrapped_modules: set = set()


def _active() -> bool:
    return bool(os.environ.get(STEP_DIR_ENV))


# --- pytest hooks --------------------------------------------------------------------------------
def pytest_configure(config):
    """Wrap each watched module when it is imported (now, if it already is): importing ttnn or torch here
    would make every child, even one that never uses them, slower and silent before its first test."""
    if not _active():
        return
    sys.meta_path.insert(0, _AfterImport())
    for name in list(_INSTALLERS):
        if name in sys.modules:
            _install(name)


def _install(name: str) -> None:
    for install in _INSTALLERS.pop(name, ()):
        try:
            install()
        except Exception as error:  # noqa: BLE001 - a missing entry point must not break the test run
            print(f"facts_plugin: {install.__name__[1:]} not wrapped ({error})", file=sys.stderr)


class _AfterImport(importlib.abc.MetaPathFinder):
    """Runs the installers of a watched module right after the module's code ran, before the importer
    binds any of its names (`from models.common.utility_functions import comp_pcc` gets the wrapper)."""

    def find_spec(self, fullname, path, target=None):
        if fullname not in _INSTALLERS:
            return None
        for finder in sys.meta_path:
            find = getattr(finder, "find_spec", None) if finder is not self else None
            spec = find(fullname, path, target) if find else None
            if spec is not None:
                break
        else:
            return None
        loader = spec.loader
        if loader is None or not hasattr(loader, "exec_module"):
            return spec
        run = loader.exec_module

        def exec_module(module):
            run(module)
            _install(fullname)

        loader.exec_module = exec_module
        return spec


def pytest_collection_modifyitems(session, config, items):
    if not _active():
        return
    _rebind_everywhere()
    fused = os.environ.get(FUSED_ENV, "")
    for item in items:
        module = getattr(item, "module", None)
        if module is None or id(module) in _wrapped_modules:
            continue
        _wrapped_modules.add(id(module))
        if fused and callable(getattr(module, fused, None)):
            setattr(module, fused, _fused_wrapper(getattr(module, fused)))
        reference = fused.removesuffix("_ttnn") + "_reference"
        if fused.endswith("_ttnn") and callable(getattr(module, reference, None)):
            setattr(module, reference, _reference_wrapper(getattr(module, reference)))


def pytest_runtest_setup(item):
    global STATE
    if _active():
        STATE = CaseFacts(item.name, os.environ.get(FUSED_ENV, ""))


def pytest_runtest_logfinish(nodeid, location):
    global STATE
    if not _active() or STATE is None:
        return
    from pipeline import facts

    target = facts.path_for(Path(os.environ[STEP_DIR_ENV]), STATE.case)
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_suffix(".tmp")
    temporary.write_text(json.dumps(STATE.record(), indent=1, default=str))
    os.replace(temporary, target)
    STATE = None


# --- the fused function and the reference -----------------------------------------------------------
def _fused_wrapper(function):
    @functools.wraps(function)
    def fused(*args, **kwargs):
        state = STATE
        if state is None:
            return function(*args, **kwargs)
        state.calls += 1
        mesh = _mesh_of(args, kwargs)
        before_cache = _cache_state(mesh)
        if state.entries_before is None and mesh is not None:
            state.entries_before = _entries(mesh)
        outputs = function(*args, **kwargs)
        mesh = mesh or _mesh_of(outputs if isinstance(outputs, tuple | list) else (outputs,), {})
        if mesh is not None:
            state.meshes[id(mesh)] = (mesh.get_num_devices(), tuple(mesh.shape))
            state.entries_after = _entries(mesh)
        key = "disabled_at_fused_calls" if before_cache is False else "enabled_at_fused_calls"
        state.cache[key] += 1
        if state.capturing:
            state.capturing[-1] += 1
        else:
            state.executed(direct=1)
        return outputs

    fused.__facts_wrapped__ = True
    return fused


def _reference_wrapper(function):
    @functools.wraps(function)
    def reference(*args, **kwargs):
        outputs = function(*args, **kwargs)
        if STATE is not None:
            values = outputs.values() if isinstance(outputs, dict) else outputs
            for tensor in values if isinstance(values, tuple | list | type({}.values())) else (outputs,):
                facts_values.keep_values(STATE.reference_values, tensor)
        return outputs

    return reference


def _mesh_of(args, kwargs):
    import ttnn

    for value in [*args, *kwargs.values()]:
        if isinstance(value, ttnn.Tensor):
            try:
                device = value.device()
            except Exception:  # noqa: BLE001 - a host tensor has no device
                continue
            if device is not None and hasattr(device, "get_num_devices"):
                return device
    return None


def _entries(mesh):
    try:
        return int(mesh.num_program_cache_entries())
    except Exception:  # noqa: BLE001 - an entry point this ttnn lacks: the fact stays unknown
        return None


def _cache_state(mesh) -> bool | None:
    """True (enabled), False (disabled): the last enable/disable on the mesh or, failing that, an ancestor."""
    key = id(mesh) if mesh is not None else None
    while key is not None:
        if key in _cache_disabled:
            return not _cache_disabled[key]
        key = _parents.get(key)
    return True


# --- ttnn ----------------------------------------------------------------------------------------
def _wrap_ttnn():
    import ttnn

    for name, wrapper in (
        ("begin_trace_capture", _begin_capture),
        ("end_trace_capture", _end_capture),
        ("execute_trace", _execute),
        ("to_torch", _to_torch),
    ):
        setattr(ttnn, name, wrapper(getattr(ttnn, name)))


def _begin_capture(function):
    @functools.wraps(function)
    def begin_trace_capture(*args, **kwargs):
        trace_id = function(*args, **kwargs)
        if STATE is not None:
            STATE.capturing.append(0)
        return trace_id

    return begin_trace_capture


def _end_capture(function):
    @functools.wraps(function)
    def end_trace_capture(mesh, trace_id, *args, **kwargs):
        result = function(mesh, trace_id, *args, **kwargs)
        if STATE is not None and STATE.capturing:
            STATE.captures += 1
            STATE.trace_calls[_trace_key(mesh, trace_id)] = STATE.capturing.pop()
        return result

    return end_trace_capture


def _execute(function):
    @functools.wraps(function)
    def execute_trace(mesh, trace_id, *args, **kwargs):
        result = function(mesh, trace_id, *args, **kwargs)
        if STATE is not None:
            calls = STATE.trace_calls.get(_trace_key(mesh, trace_id), 0)
            STATE.replays += 1
            STATE.replayed_calls += calls
            STATE.replayed_before_convert = True
            STATE.executed(replayed=calls)
        return result

    return execute_trace


def _trace_key(mesh, trace_id):
    return id(mesh), str(trace_id)


def _to_torch(function):
    @functools.wraps(function)
    def to_torch(*args, **kwargs):
        tensor = function(*args, **kwargs)
        if STATE is not None and STATE.calls:
            facts_values.keep_values(STATE.ttnn_values, tensor)
            STATE.compared_from_replay |= STATE.replayed_before_convert
        return tensor

    return to_torch


def _wrap_mesh_device():
    import ttnn

    mesh_class = ttnn.MeshDevice
    original_disable = mesh_class.disable_and_clear_program_cache
    original_enable = mesh_class.enable_program_cache
    original_submesh = mesh_class.create_submesh

    def disable_and_clear_program_cache(self, *args, **kwargs):
        _cache_disabled[id(self)] = True
        if STATE is not None:
            STATE.disabled_seen = True
        return original_disable(self, *args, **kwargs)

    def enable_program_cache(self, *args, **kwargs):
        _cache_disabled[id(self)] = False
        return original_enable(self, *args, **kwargs)

    def create_submesh(self, *args, **kwargs):
        submesh = original_submesh(self, *args, **kwargs)
        _parents[id(submesh)] = id(self)
        return submesh

    mesh_class.disable_and_clear_program_cache = disable_and_clear_program_cache
    mesh_class.enable_program_cache = enable_program_cache
    mesh_class.create_submesh = create_submesh
    original_open = ttnn.open_mesh_device

    @functools.wraps(original_open)
    def open_mesh_device(*args, **kwargs):
        mesh = original_open(*args, **kwargs)
        _cache_disabled.pop(id(mesh), None)  # a new device starts with the cache enabled
        _parents.pop(id(mesh), None)
        return mesh

    ttnn.open_mesh_device = open_mesh_device


# --- comparisons and the e2e timer -----------------------------------------------------------------
_originals: dict = {}  # id(original) -> wrapper, for re-binding names imported before configure


def _wrap_utilities():
    import importlib

    module = importlib.import_module(UTILITY_MODULE)
    for name, kind in COMPARISON_HELPERS.items():
        original = getattr(module, name, None)
        if callable(original) and not hasattr(original, "__facts_wrapped__"):
            wrapper = _comparison_wrapper(original, name, kind)
            _originals[id(original)] = wrapper
            setattr(module, name, wrapper)
    profiler = getattr(module, "profiler", None)
    if profiler is not None:
        profiler.start = _timer_start(profiler.start)
        profiler.end = _timer_end(profiler.end)


def _rebind_everywhere() -> None:
    """Modules that imported a helper before it was wrapped (a conftest) get the wrapper too."""
    for module in list(sys.modules.values()):
        namespace = getattr(module, "__dict__", None)
        if not isinstance(namespace, dict):
            continue
        for name, value in list(namespace.items()):
            wrapper = _originals.get(id(value))
            if wrapper is not None and callable(value):
                namespace[name] = wrapper


def _comparison_wrapper(function, helper: str, kind: str):
    @functools.wraps(function)
    def compare(golden, calculated, *args, **kwargs):
        result = function(golden, calculated, *args, **kwargs)
        if STATE is not None:
            STATE.comparisons.append(_comparison(helper, kind, golden, calculated, args, kwargs, result))
            STATE.direct_since_compare = STATE.replayed_since_compare = 0
        return result

    compare.__facts_wrapped__ = True
    return compare


def _comparison(helper, kind, golden, calculated, args, kwargs, result) -> dict:
    passed, value = (
        (result[0], result[1]) if isinstance(result, tuple) and len(result) >= 2 else (result, None)
    )
    expected = kwargs.get("pcc", args[0] if args and kind == "pcc" else None)
    sides = [
        facts_values.provenance(t, STATE.reference_values, STATE.ttnn_values) for t in (golden, calculated)
    ]
    return {
        "kind": kind,
        "helper": helper,
        "shapes": [facts_values.shape_of(golden), facts_values.shape_of(calculated)],
        "value": facts_values.number(value),
        "passed": bool(passed),
        "expected": facts_values.number(expected),
        "sides": sides,
        "same_object": golden is calculated,
    }


def _timer_start(function):
    @functools.wraps(function)
    def start(key, *args, **kwargs):
        if STATE is not None:
            STATE.open_e2e[key] = STATE.open_window()
        return function(key, *args, **kwargs)

    return start


def _timer_end(function):
    @functools.wraps(function)
    def end(key, *args, **kwargs):
        if STATE is not None and key in STATE.open_e2e:
            window = STATE.close_window(STATE.open_e2e.pop(key))
            divisor = kwargs.get("PERF_CNT", args[0] if args else 1)
            STATE.e2e.append({"calls": window["calls"], "divisor": divisor, "warmups": window["warmups"]})
        return function(key, *args, **kwargs)

    return end


def _wrap_tracy():
    import tracy

    original = tracy.signpost

    @functools.wraps(original)
    def signpost(header, *args, **kwargs):
        if STATE is not None and header == "start":
            STATE.open_device_window = STATE.open_window()
        elif STATE is not None and header == "stop" and STATE.open_device_window is not None:
            STATE.device_window = STATE.close_window(STATE.open_device_window)
            STATE.open_device_window = None
        return original(header, *args, **kwargs)

    tracy.signpost = signpost


# --- checkpoints -------------------------------------------------------------------------------------
def _wrap_safetensors():
    import safetensors

    safetensors.safe_open = _reads_file(safetensors.safe_open)
    _originals[id(safetensors.safe_open.__wrapped__)] = safetensors.safe_open


def _wrap_safetensors_torch():
    import safetensors.torch

    safetensors.torch.load_file = _reads_file(safetensors.torch.load_file)
    _originals[id(safetensors.torch.load_file.__wrapped__)] = safetensors.torch.load_file


def _wrap_torch_load():
    import torch

    torch.load = _reads_file(torch.load)
    _originals[id(torch.load.__wrapped__)] = torch.load


# module -> what to wrap once it is imported (pytest_configure)
_INSTALLERS = {
    "ttnn": [_wrap_ttnn, _wrap_mesh_device],
    UTILITY_MODULE: [_wrap_utilities],
    "tracy": [_wrap_tracy],
    "safetensors": [_wrap_safetensors],
    "safetensors.torch": [_wrap_safetensors_torch],
    "torch": [_wrap_torch_load],
}


def _reads_file(function):
    @functools.wraps(function)
    def read(path, *args, **kwargs):
        if STATE is not None and isinstance(path, str | os.PathLike):
            STATE.checkpoints.append(str(Path(path).resolve()))
        return function(path, *args, **kwargs)

    return read
