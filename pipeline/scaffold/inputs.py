"""The module's own tensors, from its profiled run (the module_perf CSV): what the scaffolded test builds.

The region's first op is found among one device's ops: between `start`/`stop` signposts when the run
has them, else where the region's ttnn ops (in execution order) line up best with the CSV's OP CODEs
(most ops matched, then the tightest span; views are not lined up). The input tensors of every op that
lines up with a row are read per device: shape (logical), layout, dtype and memory, as the profiler
wrote them, with the row's settings (facts.py says which parameter each one is).
"""

import re
from dataclasses import dataclass

import pandas as pd

from pipeline import opsperf
from pipeline.scaffold.ops import VIEWS

# Source op names whose OP CODE does not contain the name itself.
_CODE_WORDS = {
    "linear": "matmul",
    "to_layout": "tilize",
    "squeeze": "reshape",
    "unsqueeze": "reshape",
    "rms_norm": "layernorm",  # ttnn::rms_norm runs LayerNormDeviceOperation (LayerNormType::RMSNORM)
    # a composite: reduce_scatter then all_gather, or all_gather of a [1, ...] view then a local sum
    "all_reduce": ("reducescatter", "allgather"),
}
_BINARY = {"add", "sub", "subtract", "mul", "multiply", "div", "divide", "maximum", "minimum", "pow"}
_SHAPE_CELL = re.compile(r"^\s*(\d+)(?:\[(\d+)\])?\s*$")
_DIMS = ("W", "Z", "Y", "X")
_SETTING_COLUMNS = ("ATTRIBUTES", "OUTPUT_0_MEMORY")
_WINDOW_ROWS_PER_OP = 4  # how far past the first op the region's rows may spread


class InputsError(Exception):
    """The CSV cannot say what the region's inputs are (one line, with what to do)."""


@dataclass(frozen=True)
class TensorFact:
    shape: tuple[int, ...]  # logical, per device
    layout: str  # TILE | ROW_MAJOR
    dtype: str  # BFLOAT16, BFLOAT8_B, ...
    memory: str  # DEV_<id>_<BUFFER>_<LAYOUT>, e.g. DEV_0_L1_INTERLEAVED
    memory_expression: str = ""  # the module's memory config as Python (a capture has it, sharded too)

    @property
    def buffer_type(self) -> str:
        """DRAM or L1 (HOST for host tensors)."""
        parts = self.memory.split("_")
        return parts[2] if len(parts) > 2 and parts[0] == "DEV" else self.memory

    @property
    def memory_layout(self) -> str:
        parts = self.memory.split("_")
        return "_".join(parts[3:]) if len(parts) > 3 and parts[0] == "DEV" else ""


@dataclass(frozen=True)
class RegionInputs:
    first_op: str  # OP CODE of the region's first op in the module run
    row: int  # its row in the CSV (0 = first data row)
    inputs: tuple[TensorFact, ...]  # its input tensors, in the profiler's order
    matmul_weights: tuple[tuple[str, TensorFact], ...]  # (OP CODE, input_tensor_b) per matmul, in order
    how: str  # how the row was found
    # per op of the region (region_ops order): its row's ATTRIBUTES and OUTPUT_0_MEMORY, None if unmatched
    op_cells: tuple[dict | None, ...] = ()
    op_inputs: tuple[tuple[TensorFact, ...] | None, ...] = ()  # per op: its row's input tensors


def region_inputs(csv_path, region_ops) -> RegionInputs:
    """`region_ops`: the region's ttnn ops in execution order (repeats included)."""
    df = opsperf.read_ops_csv(csv_path)
    for column in (opsperf.OP_CODE, opsperf.OP_TYPE, opsperf.DEVICE_ID):
        if column not in df.columns:
            raise InputsError(f"{csv_path}: no {column!r} column; give an ops_perf_results CSV")
    signposted = (df[opsperf.OP_TYPE] == opsperf.SIGNPOST).any()
    window = opsperf.signpost_window(df) if signposted else df
    rows = _first_device_rows(window)
    if rows.empty:
        raise InputsError(f"{csv_path}: no device ops{' between the signposts' if signposted else ''}")
    device_ops = [i for i, op in enumerate(region_ops) if _is_device_op(op)]
    codes = list(rows[opsperf.OP_CODE])
    if signposted:
        first, last, how = 0, len(rows) - 1, "first device op between the signposts"
        try:
            positions, _ = _align(codes, [region_ops[i] for i in device_ops], csv_path)
        except InputsError:  # the window is the region: no op of it needs finding
            positions = [None] * len(device_ops)
    else:
        positions, how = _align(codes, [region_ops[i] for i in device_ops], csv_path)
        matched = [p for p in positions if p is not None]
        first, last = matched[0], max(matched)
    cells, op_inputs = [None] * len(region_ops), [None] * len(region_ops)
    for index, position in zip(device_ops, positions, strict=True):
        if position is not None:
            cells[index] = {c: str(rows[c].iloc[position]) for c in _SETTING_COLUMNS if c in rows.columns}
            facts = (_fact(rows.iloc[position], i) for i in range(_input_count(rows)))
            op_inputs[index] = tuple(f for f in facts if f is not None)
    matmuls = [
        (rows[opsperf.OP_CODE].iloc[i], _fact(rows.iloc[i], 1))
        for i in range(first, last + 1)
        if "matmul" in rows[opsperf.OP_CODE].iloc[i].lower()
    ]
    first_row = rows.iloc[first]
    return RegionInputs(
        first_op=first_row[opsperf.OP_CODE],
        row=int(rows.index[first]),
        inputs=tuple(f for f in (_fact(first_row, i) for i in range(_input_count(rows))) if f is not None),
        matmul_weights=tuple((code, fact) for code, fact in matmuls if fact is not None),
        how=how,
        op_cells=tuple(cells),
        op_inputs=tuple(op_inputs),
    )


def op_matches(op: str, op_code: str) -> bool:
    """Does the source op `ttnn.<name>` plausibly run as the device op `op_code`?"""
    name = op.rsplit(".", 1)[-1]
    code = op_code.lower()
    if name.replace("_", "") in code.replace("_", ""):
        return True
    if name in _BINARY:
        return "binary" in code
    words = _CODE_WORDS.get(name)
    if words is None:
        return "unary" in code
    return any(word in code for word in ((words,) if isinstance(words, str) else words))


def _is_device_op(op: str) -> bool:
    """Ops lined up with rows: not host calls, nor views (a reshape may run as a row or as none, and a row
    it does run could pair with another op's; its shape is read from the op that consumes it)."""
    name = op.rsplit(".", 1)[-1]
    return name not in {"deallocate", "synchronize_device", "from_torch", "to_torch"} and name not in VIEWS


def _first_device_rows(df: pd.DataFrame) -> pd.DataFrame:
    device_rows = df[(df[opsperf.OP_TYPE] == opsperf.DEVICE_OP) & (df[opsperf.DEVICE_ID].str.strip() != "")]
    if device_rows.empty:
        return device_rows
    ids = pd.to_numeric(device_rows[opsperf.DEVICE_ID], errors="coerce")
    return device_rows[ids == ids.min()]


def _align(codes: list[str], ops: list[str], csv_path) -> tuple[list[int | None], str]:
    """The row position of each op where `ops` line up with `codes` best: most ops matched in order, then
    the tightest span (None for an op with no row there, e.g. a reshape that is only a view); the first
    op always has one. Rows of other ops may sit between matched ones."""
    best = None
    for start in (i for i, code in enumerate(codes) if ops and op_matches(ops[0], code)):
        window = codes[start + 1 : start + 1 + _WINDOW_ROWS_PER_OP * len(ops)]
        positions = [start] + [None if p is None else start + 1 + p for p in _in_order(ops[1:], window)]
        matched = sum(p is not None for p in positions)
        score = (matched, -(max(p for p in positions if p is not None) - start))
        if best is None or score > best[0]:
            best = (score, positions)
    if best is None:
        listed = ", ".join(dict.fromkeys(codes))
        first = ops[0] if ops else "(none)"
        raise InputsError(
            f"{csv_path}: no device op matches the region's first op {first}; the module ran: {listed}"
        )
    (matched, _), positions = best
    return positions, f"{matched} of the region's {len(ops)} ops line up from here"


def _in_order(ops: list[str], codes: list[str]) -> list[int | None]:
    """Longest in-order matching of `ops` to `codes` (each row used once), earliest rows first."""
    rows, columns = len(ops), len(codes)
    most = [[0] * (columns + 1) for _ in range(rows + 1)]  # most[i][j]: ops[i:] matched within codes[j:]
    for i in range(rows - 1, -1, -1):
        for j in range(columns - 1, -1, -1):
            take = most[i + 1][j + 1] + 1 if op_matches(ops[i], codes[j]) else 0
            most[i][j] = max(take, most[i + 1][j], most[i][j + 1])

    def takes(i: int, j: int) -> bool:  # matching ops[i] to codes[j] is part of a longest matching
        return op_matches(ops[i], codes[j]) and most[i][j] == most[i + 1][j + 1] + 1

    positions, j = [], 0
    for i in range(rows):
        while j < columns and most[i][j] == most[i][j + 1] and not takes(i, j):
            j += 1
        found = j < columns and takes(i, j)
        positions.append(j if found else None)
        j += found
    return positions


def _input_count(rows: pd.DataFrame) -> int:
    count = 0
    while f"INPUT_{count}_LAYOUT" in rows.columns:
        count += 1
    return count


def _fact(row: pd.Series, index: int) -> TensorFact | None:
    prefix = f"INPUT_{index}_"
    if f"{prefix}LAYOUT" not in row.index or not str(row[f"{prefix}LAYOUT"]).strip():
        return None
    shape = tuple(
        _logical(row.get(f"{prefix}{dim}_PAD[LOGICAL]", row.get(f"{prefix}{dim}", ""))) for dim in _DIMS
    )
    return TensorFact(
        shape=shape,
        layout=str(row[f"{prefix}LAYOUT"]).strip(),
        dtype=str(row.get(f"{prefix}DATATYPE", "")).strip(),
        memory=str(row.get(f"{prefix}MEMORY", "")).strip(),
    )


def _logical(cell) -> int:
    """`96[65]` (padded[logical]) -> 65; `32` (older CSVs) -> 32."""
    match = _SHAPE_CELL.match(str(cell))
    if not match:
        raise InputsError(f"shape cell {cell!r} is not padded[logical]; give an ops_perf_results CSV")
    return int(match.group(2) or match.group(1))
