"""Orchestrator side of the region capture (pipeline.region_probe writes it in the child): read, never torch.

patch_verify's run of the patched module test captures, per mode, `<step dir>/capture/capture.json` (the
first call of `<op>_ttnn`: arguments, results, what the region freed) beside the values as `.pt`, and counts
every call in `<patch.json>.calls`.
"""

import json
from pathlib import Path

from pipeline.region_probe import CALLS_SUFFIX, RECORD

DIRECTORY = "capture"  # under the step directory


def calls(description: Path) -> int:
    """How many times the patched module called `<op>_ttnn` (0 when the file is absent: never called)."""
    path = Path(str(description) + CALLS_SUFFIX)
    return len(path.read_text().splitlines()) if path.exists() else 0


def read(step_dir: Path) -> dict | None:
    """The capture record of a step directory, or None when that run captured nothing."""
    path = Path(step_dir) / DIRECTORY / RECORD
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def tensors(record: dict) -> dict[str, dict]:
    """Every captured input tensor by its dotted name (`weights.w1` for a container's field)."""
    found = {}

    def walk(name: str, described: dict) -> None:
        if described["kind"] == "tensor":
            found[name] = described
        for key, child in described.get("fields", {}).items():
            walk(f"{name}.{key}", child)
        for index, child in enumerate(described.get("items", [])):
            walk(f"{name}.{index}", child)

    for name, described in record["arguments"].items():
        walk(name, described)
    return found


def summary(record: dict) -> str:
    """One line: each input tensor's first-device shape, dtype and memory, and what the region freed."""
    parts = [
        f"{name} {described['shape'][0]} {described['dtype']} {described['memory_config']['buffer_type']}"
        if described.get("memory_config")
        else f"{name} {described['shape'][0]} {described['dtype']}"
        for name, described in tensors(record).items()
    ]
    freed = f"; the region frees {', '.join(record['freed'])}" if record.get("freed") else ""
    return ", ".join(parts) + freed
