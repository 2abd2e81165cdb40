"""The public ttnn API of the sim: one function per op-table entry, plus the host-side functions.

`ttnn.matmul(...)` is `launch("matmul", OPS["matmul"], args, kwargs)`; dotted names such as
`transformer.scaled_dot_product_attention` become attributes of small namespaces (`ttnn.transformer`).
"""

import types as _pytypes

from ttnn_sim.dispatch import launch
from ttnn_sim.ops import COMPOSITES, OPS


def _op_function(name: str, opdef):
    def op(*args, **kwargs):
        return launch(name, opdef, args, kwargs)

    op.__name__ = name.rsplit(".", 1)[-1]
    op.__qualname__ = f"ttnn.{name}"
    return op


experimental = _pytypes.SimpleNamespace()
transformer = _pytypes.SimpleNamespace()
_NAMESPACES = {"experimental": experimental, "transformer": transformer}

for _name, _opdef in OPS.items():
    _fn = _op_function(_name, _opdef)
    if "." in _name:
        _space, _leaf = _name.split(".", 1)
        setattr(_NAMESPACES[_space], _leaf, _fn)
    else:
        globals()[_name] = _fn


for _name, _fn in COMPOSITES.items():
    globals()[_name] = _fn


def getitem(tensor, key):
    """tensor[a:b, ...] -> ttnn.slice over the logical shape."""
    key = key if isinstance(key, tuple) else (key,)
    starts, ends, steps = [], [], []
    for dim, size in enumerate(tensor.shape):
        k = key[dim] if dim < len(key) else slice(None)
        if isinstance(k, int):
            k = slice(k, k + 1)
        start, stop, step = k.indices(size)
        starts.append(start)
        ends.append(stop)
        steps.append(step)
    return globals()["slice"](tensor, starts, ends, steps)
