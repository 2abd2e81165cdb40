"""pipeline.region_probe on ttnn_sim's 2x4 mesh: the region's arguments and results as the module passed them,
what it frees, every call counted, only the first captured; pipeline.capture reads it back without torch."""

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "ttnn_sim" / "shim"))

import ttnn  # noqa: E402

from pipeline import capture, patching, region_probe  # noqa: E402

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def mesh():
    device = ttnn.open_mesh_device(ttnn.MeshShape(2, 4))
    yield device
    ttnn.close_mesh_device(device)


def demo_region_ttnn(x, weights, scale, memory_config, compute_config):
    """Scales x, adds a sharded bias, frees x (as `ttnn.deallocate(attention)` does in a module)."""
    y = ttnn.multiply(x, scale, memory_config=memory_config)
    z = ttnn.add(y, weights.bias, memory_config=memory_config)
    ttnn.deallocate(x)
    return y, z


@pytest.fixture
def probe_env(tmp_path, monkeypatch):
    description = tmp_path / "patch.json"
    monkeypatch.setenv(patching.ENV_VAR, str(description))
    monkeypatch.setenv(region_probe.CAPTURE_ENV, str(tmp_path / capture.DIRECTORY))
    return description


def _inputs(mesh):
    x = ttnn.from_torch(
        torch.randn(1, 1, 32, 64),
        dtype=ttnn.bfloat16,
        layout=ttnn.TILE_LAYOUT,
        device=mesh,
        memory_config=ttnn.L1_MEMORY_CONFIG,
    )
    bias = ttnn.from_torch(
        torch.randn(1, 1, 32, 64 * 4),
        dtype=ttnn.bfloat16,
        layout=ttnn.TILE_LAYOUT,
        device=mesh,
        mesh_mapper=ttnn.ShardTensor2dMesh(mesh, mesh_shape=(2, 4), dims=(None, 3)),
    )

    class Weights:  # a module's weight container: the region reads one field
        def __init__(self):
            self.bias = bias
            self.name = "demo"

    config = ttnn.WormholeComputeKernelConfig(math_fidelity=ttnn.MathFidelity.HiFi2, fp32_dest_acc_en=True)
    return x, Weights(), config


def test_the_first_call_is_captured_with_its_tensors_values_and_what_it_frees(mesh, probe_env, tmp_path):
    x, weights, config = _inputs(mesh)
    expected_x = ttnn.to_torch(ttnn.get_device_tensors(x)[0])
    function = region_probe.probed(demo_region_ttnn)
    function(x, weights, 0.5, ttnn.L1_MEMORY_CONFIG, compute_config=config)
    x2, _, _ = _inputs(mesh)
    function(x2, weights, 2.0, ttnn.DRAM_MEMORY_CONFIG, compute_config=config)

    assert capture.calls(probe_env) == 2
    record = capture.read(tmp_path)
    arguments = record["arguments"]
    assert list(arguments) == ["x", "weights", "scale", "memory_config", "compute_config"]
    described = arguments["x"]
    assert described["shape"] == [[1, 1, 32, 64]] * 8 and described["padded_shape"][0] == [1, 1, 32, 64]
    assert described["dtype"] == "DataType.BFLOAT16" and described["layout"] == "Layout.TILE"
    assert described["memory_config"]["buffer_type"] == "BufferType.L1"
    assert described["memory_config"]["rebuild"] == "ttnn.L1_MEMORY_CONFIG"
    assert described["mesh_shape"] == [2, 4] and described["distribution"] == {"replicated": True}
    assert described["values_per"] == "mesh"
    assert torch.equal(torch.load(tmp_path / "capture" / described["values"])[0], expected_x)
    bias = arguments["weights"]["fields"]["bias"]
    assert (
        arguments["weights"]["kind"] == "container"
        and arguments["weights"]["fields"]["name"]["repr"] == "'demo'"
    )
    assert bias["shape"][0] == [1, 1, 32, 64] and bias["distribution"] == {
        "replicated": False,
        "sharded_mesh_axes": [1],
    }
    assert len(torch.load(tmp_path / "capture" / bias["values"])) == 8
    assert arguments["scale"] == {"kind": "value", "type": "float", "repr": "0.5", "rebuild": "0.5"}
    rebuilt = eval(arguments["compute_config"]["rebuild"], {"ttnn": ttnn})  # noqa: S307 - our own record
    assert rebuilt == config
    assert record["freed"] == ["x"] and record["result_is_tuple"] and len(record["results"]) == 2
    assert record["results"][1]["distribution"]["replicated"] is False
    assert "weights.bias" in capture.tensors(record)
    assert capture.summary(record).endswith("; the region frees x")


def test_values_past_the_cap_keep_their_properties_and_say_so(mesh, probe_env, tmp_path, monkeypatch):
    monkeypatch.setattr(region_probe, "VALUES_CAP", 100)
    x, weights, config = _inputs(mesh)
    region_probe.probed(demo_region_ttnn)(x, weights, 0.5, ttnn.L1_MEMORY_CONFIG, config)
    described = capture.read(tmp_path)["arguments"]["x"]
    assert described["values"] is None and "exceed" in described["values_note"]
    assert described["shape"][0] == [1, 1, 32, 64]


def test_without_a_patch_run_the_function_is_not_wrapped(monkeypatch):
    monkeypatch.delenv(patching.ENV_VAR, raising=False)
    monkeypatch.delenv(region_probe.CAPTURE_ENV, raising=False)
    assert region_probe.probed(demo_region_ttnn) is demo_region_ttnn


def test_the_orchestrator_reads_captures_without_importing_torch_or_ttnn():
    code = (
        "import sys; from pipeline import capture, region_probe; from pipeline.steps import patch_verify; "
        "assert not {'torch', 'ttnn', 'ttnn_sim'} & set(sys.modules), sorted(sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def test_a_cyclic_object_is_described_one_level_deep(probe_env, tmp_path):
    class Node:
        def __init__(self):
            self.size = 3
            self.parent = self  # a device or module object may point back at itself

    def region(node):
        return node.size

    region_probe.probed(region)(Node())
    described = capture.read(tmp_path)["arguments"]["node"]
    assert described["kind"] == "container" and described["fields"]["size"]["rebuild"] == "3"
    assert described["fields"]["parent"]["kind"] == "value"  # not followed again


def test_a_dataclass_s_properties_are_fields_and_one_that_raises_is_left_out(probe_env, tmp_path):
    @dataclasses.dataclass
    class Args:  # ModelArgs: the experts region reads args.dispatch_devices, a property
        mesh_shape: tuple = (2, 4)
        dispatch_axis: int = 0

        @property
        def dispatch_devices(self) -> int:
            return self.mesh_shape[self.dispatch_axis]

        @property
        def broken(self) -> int:
            raise ValueError("not for this object")

    region_probe.probed(lambda args: args.dispatch_devices)(Args())
    fields = capture.read(tmp_path)["arguments"]["args"]["fields"]
    assert fields["dispatch_devices"]["rebuild"] == "2" and fields["dispatch_axis"]["rebuild"] == "0"
    assert "broken" not in fields
