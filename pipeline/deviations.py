"""The guide's perf-loop constants and the spec's accepted deviations from them (guide "Notes on
performance measurements"): one table, read by spec validation, unit_test's e2e checks and the perf steps."""

from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from pipeline.spec import FusedOpSpec

# The guide's perf-loop constants ("Notes on performance measurements"): e2e 10 warm-ups + 100 measured
# iterations, device perf 10 warm-ups + 10 signposted iterations. A spec's [deviations] may accept others.
GUIDE_CONSTANTS = {"PERF_WARMUP_ITERS": 10, "PERF_MEASURE_ITERS": 100, "DEVICE_PERF_ITERS": 10}
DEVIATION_FIELDS = ("value", "reason")


class Deviation(NamedTuple):
    """A test constant that differs from the guide's, accepted for a written reason."""

    value: int
    reason: str


def constant_problem(spec: "FusedOpSpec", name: str, found: int, where: str) -> str | None:
    """None when `found` (the test's constant or a count the run shows) is the guide's number or the one the
    spec's [deviations] accepts; else one line naming the guide's number, the test's, and both fixes."""
    guide, deviation = GUIDE_CONSTANTS[name], spec.deviations.get(name)
    if found == (deviation.value if deviation else guide):
        return None
    accepted = f"; the spec's [deviations] accepts {deviation.value}" if deviation else ""
    return (
        f"{name}: {where} {found} but the guide's number is {guide} (guide \"Notes on performance "
        f'measurements"){accepted}: set {name} = {guide}, or accept {found} in {spec.source.name} with '
        f'[deviations] {name} = {{ value = {found}, reason = "..." }}'
    )


def deviation_note(spec: "FusedOpSpec", name: str) -> str | None:
    """The line "Unexpected and workarounds" shows for an accepted deviation (None without one)."""
    deviation = spec.deviations.get(name)
    if deviation is None:
        return None
    return (
        f"{name} = {deviation.value} instead of the guide's {GUIDE_CONSTANTS[name]}, accepted by "
        f"{spec.source.name}: {deviation.reason}"
    )
