"""tt-metal's ``models/demos/utils/trace_region_sizes.py``: trace_region_size per (model, SKU) from one YAML.

A test names its model in ``device_params`` under ``TRACE_MODEL_KEY_PARAM``; the ``mesh_device`` fixture
replaces it by the size ``sizes -> <model> -> skus -> <sku> -> trace_region_size`` of
``models/model_trace_region_sizes.yaml`` for the mesh's SKU, unless the test set ``trace_region_size`` itself.
"""

from pathlib import Path

import yaml

TRACE_MODEL_KEY_PARAM = "_trace_model_key"
TRACE_REGION_SIZE_DYNAMIC = 0  # "allocate the trace region dynamically"
TRACE_REGION_SIZES_YAML_PATH = Path(__file__).resolve().parents[2] / "model_trace_region_sizes.yaml"


class TraceRegionSizeNotConfiguredError(ValueError):
    """The YAML has no positive trace_region_size for the (model, SKU) a test asked for."""


def load_trace_region_sizes(path=TRACE_REGION_SIZES_YAML_PATH) -> dict:
    data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    if not isinstance(data, dict):
        raise ValueError(f"Invalid trace region sizes file format: {path}")
    return data


def resolve_trace_region_size(model_name, sku, path=TRACE_REGION_SIZES_YAML_PATH) -> int:
    """The configured size in bytes, or TraceRegionSizeNotConfiguredError naming the entry to add."""
    models = load_trace_region_sizes(path).get("sizes") or {}
    entry = ((models.get(model_name) or {}).get("skus") or {}).get(sku) or {}
    value = entry.get("trace_region_size")
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    raise TraceRegionSizeNotConfiguredError(
        f"trace_region_size is not configured for model={model_name!r} and SKU={sku!r}. "
        f"Add a (model, SKU) entry with trace_region_size to {path}."
    )


def device_params_with_trace_region_size(device_params: dict, sku, path=TRACE_REGION_SIZES_YAML_PATH) -> dict:
    """``device_params`` without TRACE_MODEL_KEY_PARAM, with the model's trace_region_size unless one is given."""
    params = dict(device_params)
    model_name = params.pop(TRACE_MODEL_KEY_PARAM, None)
    if model_name is not None and params.get("trace_region_size") is None:
        params["trace_region_size"] = resolve_trace_region_size(model_name, sku, path)
    return params
