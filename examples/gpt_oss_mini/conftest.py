"""Checkout-wide fixtures, as tt-metal's root conftest provides them.

``device_params`` and ``mesh_device`` are meant for ``indirect=True`` parametrization::

    @pytest.mark.parametrize("mesh_device", [(2, 4)], ids=["mesh_2x4"], indirect=True)
    @pytest.mark.parametrize("device_params", [{"fabric_config": ttnn.FabricConfig.FABRIC_1D_RING}], indirect=True)

``device_params`` may name a model under ``TRACE_MODEL_KEY_PARAM``; its trace_region_size then comes from
``models/model_trace_region_sizes.yaml`` for the mesh's SKU (an explicit ``trace_region_size`` wins).

Tests log with loguru, as tt-metal's do. Its records are handed to pytest's logging, so they are shown live
(``log_cli`` in pytest.ini, loguru's line shape) and kept per test case (junit with ``junit_logging=all``).
"""

import logging
import math
import random

import numpy as np
import pytest
import torch
from loguru import logger

from models.demos.utils.trace_region_sizes import device_params_with_trace_region_size

# Wormhole product names by mesh shape (what tt-metal calls the SKU of a logical mesh).
SKU_BY_MESH_SHAPE = {(1, 1): "N150", (1, 2): "N300", (2, 4): "T3K", (1, 8): "T3K", (4, 8): "TG", (8, 4): "TG"}


def _to_logging(message) -> None:
    """A loguru sink: the record, as a standard logging record of the same logger, place and level."""
    record = message.record
    std_logger = logging.getLogger(record["name"])
    level = record["level"].no
    if std_logger.isEnabledFor(level):
        std_logger.handle(
            std_logger.makeRecord(
                record["name"],
                level,
                record["file"].path,
                record["line"],
                record["message"],
                (),
                None,
                record["function"],
            )
        )


def pytest_configure(config):
    logger.remove()  # loguru's own stderr sink would print every line a second time
    logger.add(_to_logging, format="{message}", level=0)


@pytest.fixture
def device_params(request):
    return dict(getattr(request, "param", {}))


@pytest.fixture
def mesh_device(request, device_params):
    """An open mesh of the parametrized shape (tuple, or an int = 1 x N), closed with its submeshes after."""
    import ttnn

    shape = _mesh_shape(getattr(request, "param", None))
    if math.prod(shape) > ttnn.get_num_devices():
        pytest.skip("Requested more devices than available. Test not applicable for machine")
    params = device_params_with_trace_region_size(device_params, SKU_BY_MESH_SHAPE.get(shape, "unknown"))
    fabric_config = params.pop("fabric_config", None)
    if fabric_config is not None:
        ttnn.set_fabric_config(fabric_config)
    mesh = ttnn.open_mesh_device(mesh_shape=ttnn.MeshShape(*shape), **params)
    logger.debug(f"multidevice with {mesh.get_num_devices()} devices is created")
    yield mesh
    for submesh in _submeshes(mesh):
        ttnn.close_mesh_device(submesh)
    ttnn.close_mesh_device(mesh)
    if fabric_config is not None:
        ttnn.set_fabric_config(ttnn.FabricConfig.DISABLED)


@pytest.fixture
def reset_seeds():
    """Same random inputs and weights on every run: the pipeline compares PCCs across runs to the last digit."""
    torch.manual_seed(213919)
    np.random.seed(213919)
    random.seed(213919)


def _submeshes(mesh) -> list:
    """Submeshes to close before their parent (tt-metal's teardown); a backend without the query has none open."""
    query = getattr(mesh, "get_submeshes", None)
    return list(query()) if query is not None else []


def _mesh_shape(param) -> tuple[int, int]:
    if param is None:
        return (1, 1)
    if isinstance(param, int):
        return (1, param)
    return tuple(param)
