"""Parsers for what the test processes print and write (tt-metal's fused-op tests, test_modules.py and
tracy's report writer).

All parsers take the raw output (no timestamps of our own) and strip loguru's line prefix
(``YYYY-MM-DD HH:mm:ss.SSS | INFO     | module:function:line - message``) before matching messages.
"""

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

_LOGURU_PREFIX = re.compile(r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{3} \| \S+\s*\| \S+ - ")
_NUMBER = r"[-+]?(?:\d+\.?\d*(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?)|nan"
# tt-metal's gpt_oss test_modules.py: the module test's pass lines (the failure is an assertion with the
# same shape).
PCC_PASSED = re.compile(rf"(?P<what>.+?) test passed\. Output: (?P<pcc>{_NUMBER})")
PCC_FAILED = re.compile(rf"(?P<what>.+?) test failed\. Output: (?P<pcc>{_NUMBER})")
# tt-metal's gpt_oss fused-op tests: the fused-op unit tests' comparison lines, `PCC {name}: {pcc}`.
# Searched, not anchored: junit's captured-log lines carry their own prefix
# (`INFO     mod:file.py:12 PCC x: ..`).
UNIT_PCC = re.compile(rf"(?:^|\s)PCC (?P<name>\S+): (?P<pcc>{_NUMBER})\s*$")
UNIT_ATOL = re.compile(rf"(?:^|\s)ATOL (?P<name>\S+): (?P<pcc>{_NUMBER})\s*$")
# tt-metal's gpt_oss fused-op tests: `Perf avg: {perf_us:.3f} us over {N} iters (warmup {W})`
# (the label may vary).
E2E_PERF = re.compile(r"(?P<us>[0-9.]+) us over (?P<iters>\d+) iters \(warmup (?P<warmup>\d+)\)")
# The device-perf function's own figures (what test_<op>_device_perf logs after measuring its window).
DEVICE_PERF_PER_ITERATION = re.compile(
    rf"Device perf per-iteration averages: kernel=(?P<kernel>{_NUMBER}) us, "
    rf"op_to_op=(?P<op_to_op>{_NUMBER}) us"
)
OPS_CSV = re.compile(r"OPs csv generated at: (?P<path>\S+)")
# tt-metal's trace-region error (mesh_device trace capture); the first size is what the trace needs.
TRACE_REGION = re.compile(
    r"Creating trace buffers of size (?P<needed>\d+)B on (?:MeshDevice|device) (?P<device>\d+), "
    r"but only (?P<allocated>\d+)B is allocated for trace region\."
)
# tt-metal's device-profiler overflow ("markers were dropped"), also what the sim prints.
DROPPED_ROWS = re.compile(r"Profiler DRAM buffers were full, markers were dropped!")


@dataclass(frozen=True)
class Pcc:
    name: str
    text: str  # as printed: the precision the comparison is exact to
    value: float
    passed: bool = True


def messages(output: str) -> list[str]:
    """Each output line with loguru's prefix removed."""
    return [_LOGURU_PREFIX.sub("", line.rstrip("\r")) for line in output.splitlines()]


def module_pccs(output: str) -> list[Pcc]:
    """Every `<Name> test passed/failed. Output: <pcc>` line, in order."""
    found = []
    for message in messages(output):
        for pattern, passed in ((PCC_PASSED, True), (PCC_FAILED, False)):
            match = pattern.search(message)
            if match:
                found.append(Pcc(match["what"].strip(), match["pcc"], float(match["pcc"]), passed))
                break
    return found


def unit_pccs(output: str) -> list[Pcc]:
    """Every `PCC <name>: <pcc>` line of a fused-op unit test, in order."""
    found = []
    for message in messages(output):
        match = UNIT_PCC.search(message)
        if match:
            found.append(Pcc(match["name"], match["pcc"], float(match["pcc"])))
    return found


def unit_atols(output: str) -> list[Pcc]:
    """Every `ATOL <name>: <value>` line (the largest absolute difference, guide step 7.7), in order."""
    found = []
    for message in messages(output):
        match = UNIT_ATOL.search(message)
        if match:
            found.append(Pcc(match["name"], match["pcc"], float(match["pcc"])))
    return found


def e2e_perf(output: str) -> list[dict]:
    found = []
    for message in messages(output):
        match = E2E_PERF.search(message)
        if match:
            found.append(
                {"us": float(match["us"]), "iters": int(match["iters"]), "warmup": int(match["warmup"])}
            )
    return found


def ops_csv_paths(output: str) -> list[str]:
    return [m["path"] for m in OPS_CSV.finditer(output)]


def device_perf_per_iteration(output: str) -> dict | None:
    """The last `Device perf per-iteration averages: kernel=X us, op_to_op=Y us` line, as floats."""
    found = [m for message in messages(output) for m in DEVICE_PERF_PER_ITERATION.finditer(message)]
    return {"kernel": float(found[-1]["kernel"]), "op_to_op": float(found[-1]["op_to_op"])} if found else None


def required_trace_region_size(output: str) -> int | None:
    """The size the trace needs (bytes), if the run failed on a too-small trace region."""
    sizes = [int(m["needed"]) for m in TRACE_REGION.finditer(output)]
    return max(sizes) if sizes else None


def dropped_profiler_rows(output: str) -> bool:
    return bool(DROPPED_ROWS.search(output))


def collected_ids(output: str) -> list[str]:
    """Node ids from `pytest --collect-only -q` (ids differ between tt-metal versions: discovered, never
    hard-coded)."""
    return [line.strip() for line in output.splitlines() if "::" in line and not line.startswith(("=", " "))]


@dataclass(frozen=True)
class Case:
    """One junit testcase."""

    name: str  # e.g. test_x[decode-1-...]
    classname: str
    outcome: str  # passed / failed / error / skipped
    message: str
    time_s: float
    output: str  # captured log + stdout + stderr (junit_logging=all)


def junit_cases(path: Path) -> list[Case]:
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError):
        return []
    cases = []
    for node in root.iter("testcase"):
        outcome, message = "passed", ""
        for tag in ("failure", "error", "skipped"):
            child = node.find(tag)
            if child is not None:
                outcome = {"failure": "failed", "error": "error", "skipped": "skipped"}[tag]
                message = (child.get("message") or child.text or "").strip()
                break
        output = "\n".join(
            (child.text or "") for child in node if child.tag in ("system-out", "system-err") and child.text
        )
        duration = float(node.get("time") or 0.0)
        cases.append(
            Case(node.get("name", ""), node.get("classname", ""), outcome, message, duration, output)
        )
    return cases
