"""The op table: every simulated device op, by its ttnn name.

Each module here exports TABLE: {ttnn name: OpDef(impl, cost, op_code, attributes)}; this merges them and
refuses a name defined twice, so one place says what an op does, what it costs and how it is profiled.
A module may also export COMPOSITES: {ttnn name: function} for ops tt-metal runs as several device ops.
"""

from ttnn_sim.ops import attention, ccl, compute, creation, data_movement, moe, router_norm

OPS = {}
COMPOSITES = {}  # ops tt-metal runs as a sequence of device ops: plain functions calling table ops
for _module in (compute, creation, data_movement, ccl, moe, attention, router_norm):
    for _name, _opdef in _module.TABLE.items():
        if _name in OPS:
            raise ImportError(f"ttnn_sim op {_name!r} is defined twice")
        OPS[_name] = _opdef
    COMPOSITES.update(getattr(_module, "COMPOSITES", {}))
