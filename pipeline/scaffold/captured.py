"""The region's inputs as the module passed them (patch_verify's capture, pipeline.capture): what the test builds.

A capture replaces the profiled CSV's inference wherever it answers: each tensor parameter (or container
field) is the first device's captured tensor (logical shape, dtype, layout, memory config as the module had
it, sharded ones included), each value parameter the captured value's rebuild expression. Another prefill
length scales only the dimensions the capture shows moving with the tokens: those that differ between the
decode and prefill captures (all, without a decode capture) and are a multiple of the profiled length, or,
when a tensor has none, a multiple of its 32-row tile count.
"""

from dataclasses import dataclass, field, replace
from pathlib import Path

from pipeline import artifacts, capture
from pipeline.scaffold.inputs import TensorFact

TILE_ROWS = 32


@dataclass(frozen=True, eq=False)
class Captured:
    """One mode's capture, in the shape the test generator reads (`RegionInputs`' role)."""

    mode: str
    seq_len: int
    directory: Path
    record: dict = field(repr=False)
    op_cells: tuple = ()  # no profiler rows: the generic CSV paths find nothing here
    op_inputs: tuple = ()

    @property
    def row(self) -> str:
        return "capture"

    @property
    def first_op(self) -> str:
        return self.record.get("function", "").rsplit(".", 1)[-1]

    @property
    def how(self) -> str:
        return capture.summary(self.record)

    def tensors(self) -> dict[str, TensorFact]:
        return {name: _fact(described) for name, described in capture.tensors(self.record).items()}

    def value(self, name: str) -> str | None:
        """The rebuild expression of a captured value (`top_k`, `args.hidden_size`), None when unknown."""
        if name.split(".")[0] not in self.record["arguments"]:
            return "None"  # the mode's call does not pass it (decode and prefill differ: modes.py)
        described = self._described(name)
        return described.get("rebuild") if described and described["kind"] == "value" else None

    def where(self, name: str) -> str:
        return f"captured: {name} of the module's {self.first_op} call ({self.mode})"

    def freed(self) -> list[str]:
        return list(self.record.get("freed", []))

    def at_seq_len(self, name: str, fact: TensorFact, seq_len: int, decode: "Captured | None") -> TensorFact:
        """`fact` (this prefill capture's) at another prefill length: the dimensions moving with the tokens."""
        other = decode.tensors().get(name) if decode is not None else None
        moving = [
            i
            for i, dim in enumerate(fact.shape)
            if other is None or i >= len(other.shape) or other.shape[i] != dim
        ]
        rows = [i for i in moving if fact.shape[i] % self.seq_len == 0]
        tiles = self.seq_len // TILE_ROWS
        scaled = rows or [
            i for i in moving if tiles and fact.shape[i] % tiles == 0 and fact.shape[i] >= tiles
        ]
        shape = tuple(
            dim * seq_len // self.seq_len if i in scaled else dim for i, dim in enumerate(fact.shape)
        )
        return replace(fact, shape=shape)

    def _described(self, name: str) -> dict | None:
        parts = name.split(".")
        described = self.record["arguments"].get(parts[0])
        for part in parts[1:]:
            described = (described or {}).get("fields", {}).get(part)
        return described


def find(artifacts_root: Path, name: str, modes, seqlens, parameters) -> dict:
    """(mode, seq_len) -> Captured, for every mode patch_verify captured in these artifacts with the
    `<op>_ttnn` the scaffold writes now: a capture of another function (a hand-written test's, an older
    region's) has other parameters and is not used."""
    layout = artifacts.Layout(artifacts_root)
    found = {}
    for mode in modes:
        step_dir = layout.step_dir(name, "patch_verify", mode)
        record = capture.read(step_dir)
        if record is None or not set(record["arguments"]) <= set(parameters):
            continue
        seq_len = 1 if mode == "decode" else min(seqlens, default=0)
        found[(mode, seq_len)] = Captured(mode, seq_len, step_dir / capture.DIRECTORY, record)
    return found


def _fact(described: dict) -> TensorFact:
    memory = described.get("memory_config") or {}
    buffer = _after_dot(memory.get("buffer_type")) or "HOST"
    layout = _after_dot(memory.get("memory_layout")) or "INTERLEAVED"
    return TensorFact(
        shape=tuple(described["shape"][0]),
        layout=_after_dot(described["layout"]),
        dtype=_after_dot(described["dtype"]),
        memory=f"DEV_0_{buffer}_{layout}",
        memory_expression=memory.get("rebuild") or "",
    )


def _after_dot(text: str | None) -> str:
    return (text or "").rsplit(".", 1)[-1]
