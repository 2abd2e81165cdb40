"""Per-case facts the child's pytest plugin (pipeline/facts_plugin.py) recorded: what the ttnn API was
asked to do in each test case, read on the orchestrator side. Stdlib only (no torch, no ttnn).

One JSON per case in ``<step dir>/facts/<file_name(case)>.json``; the record's keys are documented in
pipeline/facts_plugin.py. Steps read facts only through ``read``.
"""

import hashlib
import json
import re
from pathlib import Path

from pipeline.deviations import GUIDE_CONSTANTS

DIRECTORY = "facts"
# The guide's e2e constants (pipeline/deviations.py holds the guide's table once).
GUIDE_E2E = {name: GUIDE_CONSTANTS[name] for name in ("PERF_WARMUP_ITERS", "PERF_MEASURE_ITERS")}
_UNSAFE = re.compile(r"[^A-Za-z0-9_.=-]+")
_MAX_STEM = 150


def file_name(case: str) -> str:
    """The case's file name: unsafe characters become '_'; a long or altered name keeps a short hash so
    two cases never share a file."""
    stem = _UNSAFE.sub("_", case)
    if stem != case or len(stem) > _MAX_STEM:
        stem = f"{stem[:_MAX_STEM]}.{hashlib.sha256(case.encode()).hexdigest()[:10]}"
    return f"{stem}.json"


def path_for(step_dir: Path, case: str) -> Path:
    return Path(step_dir) / DIRECTORY / file_name(case)


def read(step_dir: Path) -> dict[str, dict]:
    """case name -> its record; a file that is not a JSON object with a "case" is left out (so its case
    counts as one without facts)."""
    found = {}
    directory = Path(step_dir) / DIRECTORY
    for path in sorted(directory.glob("*.json")) if directory.is_dir() else []:
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(record, dict) and isinstance(record.get("case"), str):
            found[record["case"]] = record
    return found


def e2e_iterations(record: dict | None) -> int | None:
    """The measured iterations of the case's (last) e2e window, or None when it has none."""
    windows = (record or {}).get("e2e") or []
    return windows[-1]["calls"] if windows else None


def summary_text(record: dict | None) -> str:
    """One line of a case's facts for the op page (plain text; the page escapes it)."""
    if not record:
        return "no facts recorded"
    shapes = ", ".join("x".join(map(str, s)) for s in record.get("mesh_shapes", [])) or "no mesh"
    devices = "/".join(map(str, record.get("devices", []))) or "0"
    trace = record.get("trace", {})
    cache = record.get("program_cache", {})
    cache_text = (
        f"cache disabled at {cache.get('disabled_at_fused_calls', 0)} calls"
        if cache.get("enabled_at_fused_calls", 0) == 0 and cache.get("disabled")
        else f"cache enabled at {cache.get('enabled_at_fused_calls', 0)} calls"
    ) + f", {cache.get('entries_after')} entries"
    kinds = [c.get("kind") for c in record.get("comparisons", [])]
    checkpoints = record.get("checkpoint_files", [])
    windows = record.get("e2e", [])
    e2e = "; ".join(f"e2e {w['calls']} calls / {w['divisor']} ({w['warmups']} warm-ups)" for w in windows)
    return " · ".join(
        part
        for part in (
            f"{record.get('calls', 0)} calls on {devices} device(s) ({shapes})",
            f"trace {trace.get('captures', 0)} captures, {trace.get('replays', 0)} replays",
            cache_text,
            f"checkpoint: {len(checkpoints)} file(s)" if checkpoints else "checkpoint: none",
            f"{kinds.count('pcc')} PCC + {kinds.count('allclose')} ATOL comparisons",
            e2e or "no e2e window",
        )
    )
