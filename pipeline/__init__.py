"""The fused-op pipeline: specs, the task graph, the supervised device runner and the reports.

Importing this package must stay cheap and free of device imports: the orchestrator never imports
torch, ttnn or the simulator (test processes load ``pipeline.patch_plugin``, nothing else of it).
The records every doit command creates (spec, context, backend, job, ...) are ``NamedTuple``s: a frozen
dataclass costs 0.3 ms to 1 ms to create at import (its methods are generated with ``exec``), a
NamedTuple a tenth of that, and a no-op `doit run` imports a dozen of them.
"""

# Part of every step's environment key: bumping it reruns everything (outputs may have changed shape).
PIPELINE_VERSION = "0.1.0"
