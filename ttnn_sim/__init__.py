"""ttnn_sim: a simulated Tenstorrent mesh with a ttnn-compatible Python API on torch.

The importable `ttnn` and `tracy` packages live in `shim_dir()`; only the sim backend puts that directory on
PYTHONPATH, so installing this project never shadows a real ttnn.
"""

from pathlib import Path

from ttnn_sim.clock import host_time_ns

SIM_VERSION = "0.1.0"


def shim_dir() -> Path:
    return Path(__file__).resolve().parent / "shim"


__all__ = ["SIM_VERSION", "host_time_ns", "shim_dir"]
