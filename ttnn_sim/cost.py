"""The cost model: a deterministic Wormhole-class chip and host.

Public figures for a Wormhole n150 (tenstorrent.com spec sheet, tt-metal tech reports):
- 1 GHz AI clock, so a device cycle is a nanosecond; 8x8 = 64 Tensix worker cores;
- matrix engine: 4096 FLOP/cycle/core at LoFi (64 cores -> 262 TFLOPS), divided by the number of fidelity
  phases (HiFi2 2, HiFi3 3, HiFi4 4);
- vector/SFPU element-wise work: 64 elements/cycle/core, transcendental ops 4x that cost;
- DRAM 288 GB/s (288 B/ns) over 12 banks; L1 64 B/cycle/core (4096 B/ns over the grid);
- Ethernet 100 Gb/s per link (12.5 B/ns), 2 links towards each neighbour; 5 us per CCL hop of setup;
- a device kernel costs at least 1.5 us (launch, CB setup, semaphores); op-to-op on device 0.3 us between the
  ops of one trace replay, otherwise whatever the host leaves between ops (a replay starts only once the
  host's execute_trace has issued it);
- host: 12 us per op dispatched eagerly on a program-cache hit, + 2 ms to compile on a miss; 4 us per
  `execute_trace` call; PCIe host<->device transfers at 10 GB/s + 5 us.
"""

from dataclasses import dataclass

CORES = 64
CLOCK_GHZ = 1.0
FLOPS_PER_CYCLE_PER_CORE_LOFI = 4096
FIDELITY_PHASES = {"LoFi": 1, "HiFi2": 2, "HiFi3": 3, "HiFi4": 4}
ELTWISE_PER_CYCLE_PER_CORE = 64
DRAM_BYTES_PER_NS = 288.0
L1_BYTES_PER_NS = 4096.0
ETH_BYTES_PER_NS = 25.0
CCL_HOP_NS = 5_000
MIN_KERNEL_NS = 1_500
TRACE_OP_TO_OP_NS = 300
HOST_DISPATCH_NS = 12_000
HOST_COMPILE_NS = 2_000_000
HOST_EXECUTE_TRACE_NS = 4_000
PCIE_BYTES_PER_NS = 10.0
PCIE_LATENCY_NS = 5_000


@dataclass(frozen=True)
class OpCost:
    kernel_ns: int
    core_count: int = CORES
    math_fidelity: str | None = None


def memory_ns(dram_bytes: float, l1_bytes: float) -> float:
    return dram_bytes / DRAM_BYTES_PER_NS + l1_bytes / L1_BYTES_PER_NS


def matmul_ns(flops: float, fidelity: str) -> float:
    return flops * FIDELITY_PHASES[fidelity] / (FLOPS_PER_CYCLE_PER_CORE_LOFI * CORES * CLOCK_GHZ)


def eltwise_ns(elements: float, weight: float = 1.0) -> float:
    return elements * weight / (ELTWISE_PER_CYCLE_PER_CORE * CORES * CLOCK_GHZ)


def ccl_ns(bytes_per_device: float, hops: int) -> float:
    return CCL_HOP_NS * max(hops, 1) + bytes_per_device * max(hops, 1) / ETH_BYTES_PER_NS


def kernel(ns: float, cores: int = CORES, fidelity: str | None = None) -> OpCost:
    return OpCost(int(max(MIN_KERNEL_NS, round(ns))), cores, fidelity)


def host_transfer_ns(nbytes: int) -> int:
    return int(PCIE_LATENCY_NS + nbytes / PCIE_BYTES_PER_NS)
