"""The fused-op pipeline: specs, the task graph, the supervised device runner and the reports.

Importing this package must stay cheap and free of device imports: the workspace's tests import
``pipeline.testkit`` in child processes, and the orchestrator never imports ttnn.
"""

# Part of every step's environment key: bumping it reruns everything (outputs may have changed shape).
PIPELINE_VERSION = "0.1.0"
