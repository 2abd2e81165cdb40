"""Child side of the reference check: the test's `<op>_reference` on the module's captured inputs.

    python -m pipeline.reference_child <unit-test module> <op> <out.json> <mode>=<capture dir> ...

For each mode, the region's captured arguments (pipeline.region_probe) become the reference's inputs: a
tensor as its first device's values (torch, floating point as float32), a container as a namespace of its
fields, any other value as captured; the reference is called by keyword with the parameters of `<op>_ttnn`
it names. Each of its outputs is compared (PCC) with the first device's captured result in the same
position. Writes {mode: {"pccs": [...]} or {"problem": "..."}} to <out.json>; the orchestrator judges.
"""

import importlib
import inspect
import json
import os
import pickle
import sys
import types

import torch

from pipeline.region_probe import OBJECTS, RECORD

CCL_SKIP = "includes CCL ops"  # the guide's single-device skip reason, which a test with CCL ops gives


def main(argv: list[str]) -> int:
    module_name, op, out, *modes = argv
    module = importlib.import_module(module_name)
    reference = getattr(module, f"{op}_reference", None)
    found = {}
    for entry in modes:
        mode, directory = entry.split("=", 1)
        try:
            if CCL_SKIP in inspect.getsource(module):
                raise Problem(
                    "the region has CCL ops (the test says so): one device's captured inputs do not "
                    "determine its results, so they are not compared"
                )
            per_mode = hasattr(module, f"{op}_ttnn_{mode}")  # one function per mode (scaffold/modes.py)
            pccs, indices = check(reference, f"{op}_reference", directory, absent_is_none=per_mode)
            found[mode] = {"pccs": pccs, "index_outputs": indices}
        except Problem as problem:
            found[mode] = {"problem": str(problem)}
    temporary = out + ".tmp"
    with open(temporary, "w") as file:
        json.dump(found, file, indent=2)
    os.replace(temporary, out)
    return 0


class Problem(Exception):
    """Why the reference could not be compared with the capture (one line)."""


def check(reference, name: str, directory: str, absent_is_none=False) -> tuple[list[float], list[int]]:
    """Each output's PCC against the capture, and which outputs are indices (integer tensors). With one
    function per mode, a parameter only the other mode's region takes is None here, as the test passes it."""
    if reference is None:
        raise Problem(f"the test defines no {name}")
    with open(os.path.join(directory, RECORD)) as file:
        record = json.load(file)
    objects = _objects(directory)
    inputs = {
        key: _value(key, described, directory, objects) for key, described in record["arguments"].items()
    }
    parameters = inspect.signature(reference).parameters
    if absent_is_none:
        inputs.update(
            {
                p: None
                for p in parameters
                if p not in inputs and parameters[p].kind is parameters[p].POSITIONAL_OR_KEYWORD
            }
        )
    takes_all = any(p.kind is p.VAR_KEYWORD for p in parameters.values())
    missing = [
        p.name
        for p in parameters.values()
        if p.name not in inputs and p.default is p.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    ]
    if missing:
        raise Problem(
            f"{name} takes {', '.join(missing)}, which the module's call of the region does not pass "
            f"(it passes {', '.join(inputs)}); name the reference's parameters as <op>_ttnn's"
        )
    chosen = inputs if takes_all else {k: v for k, v in inputs.items() if k in parameters}
    with torch.no_grad():
        outputs = reference(**chosen)
    outputs = outputs if isinstance(outputs, (tuple, list)) else (outputs,)
    results = record["results"]
    if len(outputs) != len(results):
        raise Problem(f"{name} returns {len(outputs)} outputs; the region returned {len(results)}")
    captured = [_first_device(r, directory) for r in results]
    pccs = [_pcc(c, out, i) for i, (c, out) in enumerate(zip(captured, outputs, strict=True))]
    return pccs, [i for i, c in enumerate(captured) if not c.is_floating_point()]


def _objects(directory: str) -> dict:
    path = os.path.join(directory, OBJECTS)
    if not os.path.exists(path):
        return {}
    try:
        with open(path, "rb") as file:
            return pickle.load(file)
    except Exception:  # noqa: BLE001 - fall back on the rebuild expressions
        return {}


def _value(name: str, described: dict, directory: str, objects: dict):
    kind = described["kind"]
    if kind == "tensor":
        return _first_device(described, directory, name)
    if kind == "container":
        fields = described["fields"]
        return types.SimpleNamespace(
            **{key: _value(f"{name}.{key}", child, directory, objects) for key, child in fields.items()}
        )
    if kind == "sequence":
        items = [
            _value(f"{name}.{i}", child, directory, objects) for i, child in enumerate(described["items"])
        ]
        return tuple(items) if described["type"] == "tuple" else items
    if name in objects:
        return objects[name]
    if described.get("rebuild") is not None:
        import ttnn  # noqa: PLC0415 - only a rebuild expression needs it

        return eval(described["rebuild"], {"ttnn": ttnn})  # noqa: S307 - written by region_probe
    return None


def _first_device(described: dict, directory: str, name: str = "result"):
    if described.get("kind") != "tensor":
        raise Problem(f"{name} is not a tensor ({described.get('repr', described.get('kind'))})")
    if not described.get("values"):
        raise Problem(f"{name}: {described.get('values_note', 'no values captured')}")
    tensor = torch.load(os.path.join(directory, described["values"]))[0]
    return tensor.float() if tensor.is_floating_point() else tensor


def _pcc(captured: torch.Tensor, reference, index: int) -> float:
    reference = torch.as_tensor(reference)
    if reference.numel() != captured.numel():  # another shape is another computation
        return 0.0
    expected, actual = captured.reshape(-1), reference.reshape(captured.shape).reshape(-1)
    if not captured.is_floating_point():  # indices (top-k): compared as sets per row, ties come in any order
        expected = torch.sort(captured.long(), dim=-1).values.reshape(-1)
        actual = torch.sort(reference.reshape(captured.shape).long(), dim=-1).values.reshape(-1)
    return pcc(expected.double(), actual.double())


def pcc(a: torch.Tensor, b: torch.Tensor) -> float:
    """Pearson correlation as tt-metal's comp_pcc reads it: equal tensors 1.0, a constant one 0.0."""
    if torch.equal(a, b):
        return 1.0
    if a.numel() < 2 or a.std() == 0 or b.std() == 0:
        return 0.0
    value = torch.corrcoef(torch.stack([a, b]))[0, 1].item()
    return 0.0 if value != value else value


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
