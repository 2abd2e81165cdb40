"""The fused-op pipeline: specs, the task graph, the supervised device runner and the reports.

Importing this package must stay cheap and free of device imports: the orchestrator never imports
torch, ttnn or the simulator (test processes load ``pipeline.patch_plugin``, nothing else of it).
Dataclasses that every doit command imports are declared ``repr=False``: the generated ``__repr__`` is
most of what creating a dataclass costs (about 0.35 of 0.6 ms), and a no-op `doit run` imports a dozen.
"""

# Part of every step's environment key: bumping it reruns everything (outputs may have changed shape).
PIPELINE_VERSION = "0.1.0"
