"""Computing replicated work once (dispatch.SHARE_REPLICATED) changes neither values nor profiler rows."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

WORKLOAD = textwrap.dedent(
    """
    import json, sys
    import torch
    import ttnn
    from ttnn_sim import dispatch, profiler

    dispatch.SHARE_REPLICATED = sys.argv[1] == "on"
    torch.manual_seed(0)
    mesh = ttnn.open_mesh_device(ttnn.MeshShape(2, 4), trace_region_size=1 << 20)
    replicate = ttnn.ReplicateTensorToMesh(mesh)
    rows = ttnn.ShardTensor2dMesh(mesh, dims=(2, None), mesh_shape=(2, 4))
    w = ttnn.from_torch(torch.randn(1, 1, 64, 128), dtype=ttnn.bfloat8_b, layout=ttnn.TILE_LAYOUT,
                        device=mesh, mesh_mapper=replicate)
    x = ttnn.from_torch(torch.randn(1, 1, 64, 64), dtype=ttnn.bfloat16, layout=ttnn.TILE_LAYOUT, device=mesh,
                        mesh_mapper=rows)
    r = ttnn.from_torch(torch.randn(1, 1, 32, 64), dtype=ttnn.bfloat16, layout=ttnn.TILE_LAYOUT, device=mesh,
                        mesh_mapper=replicate)

    def step():
        y = ttnn.softmax(ttnn.matmul(x, w), dim=-1)
        z = ttnn.matmul(r, w)  # replicated operands: computed once when sharing is on
        g = ttnn.all_gather(ttnn.rms_norm(z, epsilon=1e-5), 3, cluster_axis=1)
        s = ttnn.all_reduce(ttnn.add(y, z), cluster_axis=1)
        return ttnn.to_layout(ttnn.add(s, ttnn.reshape(ttnn.sum(g, dim=-1, keepdim=True), (1, 1, 32, 1))),
                              ttnn.ROW_MAJOR_LAYOUT)

    out = step()
    trace = ttnn.begin_trace_capture(mesh)
    traced = step()
    ttnn.end_trace_capture(mesh, trace)
    ttnn.execute_trace(mesh, trace)
    probe = ttnn.matmul(r, w)
    distinct = len({id(shard) for shard in probe.shards})
    shards = ttnn.get_device_tensors(out) + ttnn.get_device_tensors(traced)
    values = [ttnn.to_torch(t).flatten().tolist() for t in shards]
    ttnn.close_mesh_device(mesh)
    profiler.flush()
    records = profiler.load_records(profiler.ops_log_path().parent)
    print(json.dumps({"records": records, "values": values, "distinct": distinct}))
    """
)


def _run(mode, tmp_path):
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO / "ttnn_sim" / "shim"), str(REPO)]),
        "TT_METAL_DEVICE_PROFILER": "1",
        "TT_METAL_PROFILER_DIR": str(tmp_path / mode),
    }
    script = tmp_path / "workload.py"
    script.write_text(WORKLOAD)
    result = subprocess.run(
        [sys.executable, str(script), mode], env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_rows_and_values_are_identical_with_and_without_sharing(tmp_path):
    shared, separate = _run("on", tmp_path), _run("off", tmp_path)
    assert (shared["distinct"], separate["distinct"]) == (1, 8)  # computed once vs once per chip
    assert len(shared["records"]) > 100
    assert shared["records"] == separate["records"]
    assert shared["values"] == separate["values"]
