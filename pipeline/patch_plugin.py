"""pytest plugin for the child of patch_verify: ``pytest -p pipeline.patch_plugin`` with $PIPELINE_PATCH set.

pytest imports ``-p`` plugins before any conftest or test module, so the patched module is served from
its very first import.
"""

from pipeline import patching

patching.install_from_env()
