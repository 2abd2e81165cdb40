"""Child side: what the replaced region received and returned, in the real module, on the real mesh.

The patched module (pipeline.patching) calls ``probed(<op>_ttnn)(...)`` where the region was. The wrapper
always counts the calls (one line per call in ``<patch.json>.calls``: the proof that the module test ran
the replaced code), and with $PIPELINE_CAPTURE set it records the first call into that directory:

- ``capture.json``: every argument (by `<op>_ttnn`'s parameter names) and every result; a ttnn tensor as
  its logical and padded shape per device, dtype, layout, memory config (buffer type, sharding, shard
  spec), mesh shape and distribution (replicated, or which mesh axes hold different shards); a Python
  value as its repr and an expression that rebuilds it (`rebuild`, or null when none is known); a
  container (a namespace, dataclass or object) as its fields, each described the same way; which input
  tensors the region freed (ttnn.deallocate inside the call).
- ``<name>.pt``: a tensor's values per device (one shard when replicated), up to VALUES_CAP bytes in all;
  a tensor past the cap has ``"values": null`` and a ``values_note`` saying so.
- ``objects.pkl``: the non-tensor values pickled (when they pickle), for the reference check.

It imports ttnn and torch only when a capture is asked for, so the orchestrator may read its constants.
"""

import enum
import functools
import inspect
import json
import os
import pickle
import re

from pipeline.patching import ENV_VAR as PATCH_ENV

CALLS_SUFFIX = ".calls"  # beside the patch description: one line per call of the probed function
CAPTURE_ENV = "PIPELINE_CAPTURE"  # directory to write the first call's capture into
RECORD = "capture.json"
OBJECTS = "objects.pkl"
VALUES_CAP = 64 * 1024 * 1024  # bytes of .pt values per capture; larger tensors keep only their properties
_SAFE = re.compile(r"[^A-Za-z0-9_.]+")


def probed(function):
    """`function` wrapped to count (and maybe capture) its calls; itself when no patch run asked for it."""
    if not os.environ.get(PATCH_ENV) and not os.environ.get(CAPTURE_ENV):
        return function

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        capture_dir = os.environ.get(CAPTURE_ENV)
        first = capture_dir and not os.path.exists(os.path.join(capture_dir, RECORD))
        recorder = _Recorder(capture_dir, function, args, kwargs) if first else None
        result = function(*args, **kwargs)
        _count(function)
        if recorder:
            recorder.finish(result)
        return result

    return wrapper


def _count(function) -> None:
    description = os.environ.get(PATCH_ENV)
    if description:
        with open(description + CALLS_SUFFIX, "a") as calls:
            calls.write(f"{function.__module__}.{function.__qualname__}\n")


class _Recorder:
    """Describes the arguments before the call (it may free them) and the results after it."""

    def __init__(self, directory: str, function, args, kwargs):
        os.makedirs(directory, exist_ok=True)
        self.directory = directory
        self.budget = VALUES_CAP
        self.objects: dict = {}
        self.tensors: list = []  # (name, tensor) of every input tensor, to see which the region freed
        bound = _bind(function, args, kwargs)
        self.function = f"{function.__module__}.{function.__qualname__}"
        self.arguments = {name: self.describe(value, name) for name, value in bound.items()}

    def finish(self, result) -> None:
        results = result if isinstance(result, tuple) else (result,)
        record = {
            "function": self.function,
            "arguments": self.arguments,
            "results": [self.describe(value, f"result_{i}") for i, value in enumerate(results)],
            "result_is_tuple": isinstance(result, tuple),
            "freed": [name for name, tensor in self.tensors if not _allocated(tensor)],
            "values_cap_bytes": VALUES_CAP,
        }
        try:
            with open(os.path.join(self.directory, OBJECTS), "wb") as out:
                pickle.dump(self.objects, out)
        except Exception as error:  # noqa: BLE001 - a value that does not pickle loses only its pickle
            record["objects_note"] = f"the non-tensor values did not pickle: {error}"
        _write_json(os.path.join(self.directory, RECORD), record)

    def describe(self, value, name: str, depth: int = 0) -> dict:
        """A container's fields are described one level deep (a device or module object inside one is a
        value: its repr), so cyclic or huge objects cannot run away."""
        if _is_tensor(value):
            self.tensors.append((name, value))
            return self.tensor(value, name)
        if isinstance(value, (list, tuple)) and any(_is_tensor(v) for v in value):
            return {
                "kind": "sequence",
                "type": type(value).__name__,
                "items": [self.describe(v, f"{name}.{i}", depth + 1) for i, v in enumerate(value)],
            }
        built = rebuild(value)
        fields = _fields(value) if built is None and depth == 0 else None  # a ttnn config is a value
        if fields is not None:
            return {
                "kind": "container",
                "type": f"{type(value).__module__}.{type(value).__qualname__}",
                "fields": {
                    field: self.describe(v, f"{name}.{field}", depth + 1) for field, v in fields.items()
                },
            }
        self.objects[name] = value
        return {"kind": "value", "type": type(value).__name__, "repr": repr(value), "rebuild": built}

    def tensor(self, tensor, name: str) -> dict:
        import torch  # noqa: PLC0415 - child side only
        import ttnn  # noqa: PLC0415

        shards = _device_tensors(tensor)
        host = [ttnn.to_torch(shard) for shard in shards] if _allocated(tensor) else []
        replicated = bool(host) and all(torch.equal(host[0], other) for other in host[1:])
        described = {
            "kind": "tensor",
            "shape": [list(s.shape) for s in shards],
            "padded_shape": [list(s.padded_shape) for s in shards],
            "dtype": _enum_name(tensor.dtype),
            "layout": _enum_name(tensor.layout),
            "memory_config": memory_config(tensor.memory_config()),
            "mesh_shape": _mesh_shape(tensor),
            "devices": len(shards),
            "distribution": _distribution(host, _mesh_shape(tensor), torch),
        }
        kept = host[:1] if replicated else host
        size = sum(t.element_size() * t.numel() for t in kept)
        if not host:
            described.update(values=None, values_note="not allocated when the region was entered")
        elif size > self.budget:
            described.update(
                values=None,
                values_note=f"values not saved: {size} bytes exceed the {self.budget} bytes left of "
                f"the {VALUES_CAP}-byte cap (properties are complete)",
            )
        else:
            self.budget -= size
            file = _SAFE.sub("_", name) + ".pt"
            torch.save(kept, os.path.join(self.directory, file))
            described.update(values=file, values_per="mesh" if replicated else "device")
        return described


def memory_config(config) -> dict | None:
    if config is None:
        return None
    shard = getattr(config, "shard_spec", None)
    return {
        "buffer_type": _enum_name(getattr(config, "buffer_type", None)),
        "memory_layout": _enum_name(getattr(config, "memory_layout", None)),
        "shard_spec": None if shard is None else repr(shard),
        "repr": repr(config),
        "rebuild": rebuild(config),
    }


def rebuild(value) -> str | None:
    """A Python expression (names: ttnn) that rebuilds `value`, or None when none is known."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return repr(value)
    if isinstance(value, enum.Enum):
        return f"{_ttnn_path(type(value))}.{value.name}"
    if isinstance(value, (list, tuple)):
        items = [rebuild(v) for v in value]
        if any(item is None for item in items):
            return None
        inner = ", ".join(items) + ("," if isinstance(value, tuple) and len(items) == 1 else "")
        return f"({inner})" if isinstance(value, tuple) else f"[{inner}]"
    named = _named_constant(value)
    if named:
        return named
    fields = _fields(value)
    if fields is None or not type(value).__module__.startswith("ttnn"):
        return None
    parts = [f"{k}={rebuild(v)}" for k, v in fields.items()]
    if any(part.endswith("=None") and fields[part.split("=")[0]] is not None for part in parts):
        return None
    return f"{_ttnn_path(type(value))}({', '.join(parts)})"


def _named_constant(value) -> str | None:
    """ttnn.L1_MEMORY_CONFIG rather than its fields, when the value is one of ttnn's named constants."""
    try:
        import ttnn  # noqa: PLC0415
    except ImportError:
        return None
    for name in ("L1_MEMORY_CONFIG", "DRAM_MEMORY_CONFIG"):
        constant = getattr(ttnn, name, None)
        if constant is not None and type(constant) is type(value) and constant == value:
            return f"ttnn.{name}"
    return None


def _ttnn_path(cls) -> str:
    return f"ttnn.{cls.__qualname__}"


def _fields(value) -> dict | None:
    """The fields of a namespace, dataclass or plain object; None for values (numbers, enums, ...)."""
    if value is None or isinstance(value, (bool, int, float, str, bytes, enum.Enum, list, tuple, dict)):
        return None
    if callable(value) and not hasattr(value, "__dict__"):
        return None
    fields = getattr(value, "__dataclass_fields__", None)
    if fields is not None:
        return {**{name: getattr(value, name) for name in fields}, **_properties(value)}
    attributes = getattr(value, "__dict__", None)
    if isinstance(attributes, dict) and not inspect.isroutine(value) and not inspect.isclass(value):
        found = {k: v for k, v in attributes.items() if not k.startswith("_")}
        return {**found, **_properties(value)}
    return None


def _properties(value) -> dict:
    """The public properties of an object's class (`args.dispatch_devices`): a region reads them as fields;
    one that raises is left out."""
    found = {}
    for cls in reversed(type(value).__mro__):
        for name, attribute in vars(cls).items():
            if isinstance(attribute, property) and not name.startswith("_"):
                try:
                    found[name] = getattr(value, name)
                except Exception:  # noqa: BLE001 - a property this object cannot answer is not a field
                    found.pop(name, None)
    return found


def _bind(function, args, kwargs) -> dict:
    try:
        bound = inspect.signature(function).bind(*args, **kwargs)
    except (TypeError, ValueError):
        return {**{f"arg_{i}": v for i, v in enumerate(args)}, **kwargs}
    found = dict(bound.arguments)
    for name, parameter in bound.signature.parameters.items():
        if parameter.kind is parameter.VAR_KEYWORD and name in found:  # a dispatcher's **arguments
            found.update(found.pop(name))
    return found


def _is_tensor(value) -> bool:
    return type(value).__name__ == "Tensor" and hasattr(value, "padded_shape")


def _allocated(tensor) -> bool:
    return tensor.is_allocated() if hasattr(tensor, "is_allocated") else True


def _device_tensors(tensor) -> list:
    import ttnn  # noqa: PLC0415

    try:
        return list(ttnn.get_device_tensors(tensor))
    except Exception:  # noqa: BLE001 - a host or single-device tensor is its own shard
        return [tensor]


def _mesh_shape(tensor) -> list[int] | None:
    device = tensor.device() if callable(getattr(tensor, "device", None)) else None
    shape = getattr(device, "shape", None)
    return list(shape) if shape is not None else None


def _distribution(host: list, mesh_shape, torch) -> dict:
    """Replicated, or for each mesh axis whether the shards differ along it (sharded on that axis)."""
    if not host:
        return {"replicated": None}
    if all(torch.equal(host[0], other) for other in host[1:]):
        return {"replicated": True}
    if not mesh_shape or len(mesh_shape) != 2 or mesh_shape[0] * mesh_shape[1] != len(host):
        return {"replicated": False}
    rows, cols = mesh_shape
    grid = [[host[r * cols + c] for c in range(cols)] for r in range(rows)]
    varies_rows = any(not _same(grid[r][c], grid[0][c], torch) for r in range(rows) for c in range(cols))
    varies_cols = any(not _same(grid[r][c], grid[r][0], torch) for r in range(rows) for c in range(cols))
    axes = [axis for axis, varies in ((0, varies_rows), (1, varies_cols)) if varies]
    return {"replicated": False, "sharded_mesh_axes": axes}


def _same(a, b, torch) -> bool:
    return a.shape == b.shape and torch.equal(a, b)


def _enum_name(value) -> str | None:
    if value is None:
        return None
    name = getattr(value, "name", None)
    return f"{type(value).__name__}.{name}" if name else str(value)


def _write_json(path: str, record: dict) -> None:
    temporary = path + ".tmp"
    with open(temporary, "w") as out:
        json.dump(record, out, indent=2, default=repr)
    os.replace(temporary, path)
