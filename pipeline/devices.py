"""The devices a machine shows (``tt-smi -ls``), the reset that fits them, and whether they all came back.

``tt-smi -ls`` prints a table of boards (``All available boards on host``, one row per device, first
column the PCI device id, ``N/A`` for the remote chip of an n300) and then ``Boards that can be reset``;
only the first table counts. tt-smi has exited 0 after a failed reset, so health is judged by the
devices that reappear, not by the exit code.

Reset by machine: a Galaxy (32 devices, a 4x8 mesh, or a board named galaxy) needs
``tt-smi -glx_reset``; anything smaller ``tt-smi -r``. The sim backend lists ``devices: N``.
"""

import re
from dataclasses import dataclass

GALAXY_DEVICES = 32
SINGLE_CARD_RESET = ("tt-smi", "-r")
GALAXY_RESET = ("tt-smi", "-glx_reset")
_CELL_SEPARATORS = re.compile(r"[│┃|]")
_SIM_COUNT = re.compile(r"^devices:\s*(\d+)\s*$", re.MULTILINE)


@dataclass(frozen=True)
class Listing:
    ids: tuple[str, ...]  # one per device row, in order ("N/A" rows numbered "N/A#k")
    galaxy: bool

    @property
    def count(self) -> int:
        return len(self.ids)

    def describe(self) -> str:
        kind = "Galaxy" if self.galaxy else "devices"
        return f"{self.count} {kind} ({', '.join(self.ids) or 'none'})"


def parse_listing(text: str) -> Listing:
    """The devices of a ``tt-smi -ls`` (or the sim's ``devices: N``) output."""
    sim = _SIM_COUNT.search(text)
    if sim:
        count = int(sim.group(1))
        return Listing(tuple(str(i) for i in range(count)), count >= GALAXY_DEVICES)
    ids, remote = [], 0
    for line in text.splitlines():
        if "can be reset" in line:
            break  # the second table repeats the boards
        cells = [c.strip() for c in _CELL_SEPARATORS.split(line)[1:-1]]
        if len(cells) < 2 or not (cells[0].isdigit() or cells[0] == "N/A"):
            continue
        if cells[0] == "N/A":
            remote += 1
            ids.append(f"N/A#{remote}")
        else:
            ids.append(cells[0])
    galaxy = len(ids) >= GALAXY_DEVICES or "galaxy" in text.lower()
    return Listing(tuple(ids), galaxy)


def reset_for(listing: Listing) -> tuple[tuple[str, ...], ...]:
    return (GALAXY_RESET if listing.galaxy else SINGLE_CARD_RESET,)


def came_back(before: Listing, after: Listing) -> str | None:
    """None when every device listed before the reset is listed after it; else what is missing."""
    missing = [i for i in before.ids if i not in after.ids]
    if after.count < before.count or missing:
        return (
            f"{after.count} of {before.count} devices came back after the reset "
            f"(missing: {', '.join(missing) or 'unknown'})"
        )
    return None
