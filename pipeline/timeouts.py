"""How long a supervised command may run: wall (per test case), silence, and each reset / health command.

Defaults are the guide's 15 minutes per test case and 5 minutes without output; a spec's ``[timeouts]``
table overrides them, and ``PIPELINE_{WALL,SILENCE,RESET}_TIMEOUT`` in the environment override both.
"""

import os
from typing import NamedTuple

DEFAULT_WALL_TIMEOUT = 15 * 60.0
DEFAULT_SILENCE_TIMEOUT = 5 * 60.0
HOUSEKEEPING_TIMEOUT = 300.0  # each reset and health command


class Timeouts(NamedTuple):
    """Defaults < the spec's ``[timeouts]`` < ``PIPELINE_{WALL,SILENCE,RESET}_TIMEOUT`` in the environment."""

    wall: float = DEFAULT_WALL_TIMEOUT  # per pytest test case (per process when it runs no pytest)
    silence: float = DEFAULT_SILENCE_TIMEOUT
    reset: float = HOUSEKEEPING_TIMEOUT  # each reset / health command

    @classmethod
    def from_env(cls, spec: dict | None = None) -> "Timeouts":
        spec = spec or {}

        def pick(name: str, default: float) -> float:
            return float(os.environ.get(f"PIPELINE_{name.upper()}_TIMEOUT") or spec.get(name) or default)

        return cls(
            wall=pick("wall", DEFAULT_WALL_TIMEOUT),
            silence=pick("silence", DEFAULT_SILENCE_TIMEOUT),
            reset=pick("reset", HOUSEKEEPING_TIMEOUT),
        )
