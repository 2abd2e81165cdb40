"""How long one decode case of an experts-style MoE fused op takes on a 4x8 simulated mesh (32 chips).

The case follows the throughput-experts decode of tt-metal's gpt_oss (experts sharded over all 32 chips, tokens
dispatched along mesh rows, batched expert matmuls over every dispatched token, combine, routing-weighted sum,
all_reduce along mesh columns): one compile run, then --iterations eager runs, as a fused-op test case does.
Not a pass/fail test: it prints figures for the README; time the whole process from outside for end-to-end
numbers. Run:  .venv/bin/python benchmarks/sim_moe_decode.py [--hidden H] [--iterations N]
"""

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
ROWS, COLS = 4, 8


def _setup(ttnn, torch, mesh, hidden, intermediate, experts, batch, top_k):
    devices = ROWS * COLS
    local = experts // devices
    mapping = torch.zeros(1, 1, experts, devices)
    mapping[0, 0, torch.arange(experts), torch.arange(experts) // local] = 1
    on_mesh = {"device": mesh, "mesh_mapper": ttnn.ReplicateTensorToMesh(mesh)}
    expert_dim = ttnn.ShardTensorToMesh(mesh, dim=1)
    weights = {}
    for name, shape in (
        ("w1", (hidden, intermediate)),
        ("w3", (hidden, intermediate)),
        ("w2", (intermediate, hidden)),
    ):
        full = torch.randn(1, experts, *shape) / shape[0] ** 0.5
        weights[name] = ttnn.from_torch(
            full, dtype=ttnn.bfloat8_b, layout=ttnn.TILE_LAYOUT, device=mesh, mesh_mapper=expert_dim
        )
        bias = torch.randn(1, experts, 1, shape[1]) * 0.01
        weights[f"{name}_bias"] = ttnn.from_torch(
            bias, dtype=ttnn.bfloat16, layout=ttnn.TILE_LAYOUT, device=mesh, mesh_mapper=expert_dim
        )
    rows = ttnn.ShardTensor2dMesh(mesh, dims=(2, None), mesh_shape=(ROWS, COLS))
    tokens = torch.randn(1, 1, batch, hidden)
    choice = torch.stack([torch.randperm(experts)[:top_k] for _ in range(batch)]).reshape(1, 1, batch, top_k)
    scores = torch.softmax(torch.randn(1, 1, batch, top_k), dim=-1)
    inputs = {
        "x": ttnn.from_torch(
            tokens, dtype=ttnn.bfloat16, layout=ttnn.TILE_LAYOUT, device=mesh, mesh_mapper=rows
        ),
        "indices": ttnn.from_torch(choice, dtype=ttnn.uint16, device=mesh, mesh_mapper=rows),
        "scores": ttnn.from_torch(
            scores, dtype=ttnn.bfloat16, layout=ttnn.TILE_LAYOUT, device=mesh, mesh_mapper=rows
        ),
        "mapping": ttnn.from_torch(mapping, dtype=ttnn.uint16, **on_mesh),
    }
    return weights, inputs, local


def _decode(ttnn, weights, inputs, local, hidden):
    x, tokens = inputs["x"], inputs["x"].shape[2]
    total = tokens * ROWS
    hidden_rm = ttnn.to_layout(x, ttnn.ROW_MAJOR_LAYOUT)
    dispatched, metadata = ttnn.all_to_all_dispatch(
        hidden_rm, inputs["indices"], inputs["mapping"], cluster_axis=0, output_concat_dim=2
    )
    ttnn.deallocate(hidden_rm)
    gathered = ttnn.repeat(ttnn.to_layout(dispatched, ttnn.TILE_LAYOUT), ttnn.Shape((1, local, 1, 1)))
    ttnn.deallocate(dispatched)
    gate = ttnn.matmul(gathered, weights["w1"])
    ttnn.add(gate, weights["w1_bias"], output_tensor=gate)
    up = ttnn.matmul(gathered, weights["w3"])
    ttnn.add(up, weights["w3_bias"], output_tensor=up)
    ttnn.deallocate(gathered)
    gate_clamped, up_clamped = ttnn.clamp(gate, max=7.0), ttnn.clamp(up, min=-7.0, max=7.0)
    glu = ttnn.mul(gate_clamped, ttnn.sigmoid(ttnn.mul(gate_clamped, 1.702)))
    ttnn.add(up_clamped, 1.0, output_tensor=up_clamped)
    activated = ttnn.mul(up_clamped, glu)
    out = ttnn.matmul(activated, weights["w2"])
    ttnn.add(out, weights["w2_bias"], output_tensor=out)
    out = ttnn.to_layout(ttnn.reshape(out, (local, 1, total, hidden)), ttnn.ROW_MAJOR_LAYOUT)
    combined = ttnn.all_to_all_combine(out, metadata, inputs["mapping"], cluster_axis=0, output_shard_dim=2)
    routing = ttnn.to_layout(
        ttnn.permute(ttnn.to_layout(inputs["scores"], ttnn.ROW_MAJOR_LAYOUT), (3, 1, 2, 0)), ttnn.TILE_LAYOUT
    )
    weighted = ttnn.mul(ttnn.to_layout(combined, ttnn.TILE_LAYOUT), routing)
    summed = ttnn.sum(weighted, dim=0, keepdim=True)
    return ttnn.all_reduce(summed, cluster_axis=1, num_links=1, topology=ttnn.Topology.Ring)


def _measure(options) -> None:
    import torch
    import ttnn

    torch.manual_seed(0)
    start = time.perf_counter()
    mesh = ttnn.open_mesh_device(ttnn.MeshShape(ROWS, COLS))
    weights, inputs, local = _setup(ttnn, torch, mesh, options.hidden, options.hidden, 128, options.batch, 4)
    setup = time.perf_counter()
    ttnn.deallocate(_decode(ttnn, weights, inputs, local, options.hidden))  # compile run
    ttnn.synchronize_device(mesh)
    compiled = time.perf_counter()
    for _ in range(options.iterations):
        ttnn.deallocate(_decode(ttnn, weights, inputs, local, options.hidden))
    ttnn.synchronize_device(mesh)
    done = time.perf_counter()
    ttnn.close_mesh_device(mesh)
    print(
        f"experts-style MoE decode, mesh {ROWS}x{COLS}, 128 experts, top-4, batch {options.batch}, "
        f"hidden = intermediate = {options.hidden}:"
    )
    print(f"  setup (weights to the mesh)   {setup - start:.2f} s")
    print(f"  compile run                   {compiled - setup:.2f} s")
    print(
        f"  {options.iterations} eager iterations          {done - compiled:.2f} s "
        f"({(done - compiled) / max(options.iterations, 1) * 1e3:.0f} ms each)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hidden", type=int, default=512)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--iterations", type=int, default=10)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.child:
        _measure(options)
        return
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO / "ttnn_sim" / "shim"), str(REPO)]),
        "TTNN_SIM_NUM_DEVICES": str(ROWS * COLS),
    }
    argv = [
        sys.executable,
        __file__,
        "--child",
        "--hidden",
        str(options.hidden),
        "--batch",
        str(options.batch),
        "--iterations",
        str(options.iterations),
    ]
    sys.exit(subprocess.run(argv, env=env).returncode)


if __name__ == "__main__":
    main()
