"""How fast the simulator runs a gpt-oss-mini decode step: device ops per second of wall time.

Not a pass/fail test (these machines are shared and noisy): it prints figures for the README.
Run:  .venv/bin/python benchmarks/sim_throughput.py [--steps N] [--mesh ROWS COLS]   (default: the workspace's mesh)
It starts itself again with the sim shim and the bundled workspace on sys.path, like the sim backend does.
"""

import argparse
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
WORKSPACE = REPO / "examples" / "gpt_oss_mini"


def _config_for(mesh, chips: int):
    import math

    import torch
    from models.demos.gpt_oss_mini.reference import model as reference
    from models.demos.gpt_oss_mini.tt.model_config import ModelArgs

    torch.manual_seed(0)
    config = reference.load_config(False)
    config.num_local_experts = math.lcm(config.num_local_experts, chips)
    layer = reference.decoder_layer(config, 0, False)
    return config, ModelArgs.from_hf(config, mesh), layer.state_dict()


def _measure(steps: int, mesh_shape) -> None:
    import torch
    import ttnn
    from models.demos.gpt_oss_mini.tests.test_factory import MESH_SHAPE, TestFactory, to_mesh
    from models.demos.gpt_oss_mini.tt.layer import DecoderLayer
    from models.demos.gpt_oss_mini.tt.rope import RotarySetup

    from ttnn_sim.device import system

    mesh_shape = tuple(mesh_shape or MESH_SHAPE)
    mesh = ttnn.open_mesh_device(ttnn.MeshShape(*mesh_shape), trace_region_size=64 << 20)
    if mesh_shape == tuple(MESH_SHAPE):
        setup = TestFactory.setup_test(mesh)
        config, args, state = setup["config"], setup["args"], setup["state_dict"]
    else:  # another mesh: the toy config with at least one expert per chip
        config, args, state = _config_for(mesh, mesh_shape[0] * mesh_shape[1])
    layer = DecoderLayer(mesh, config, state, args, batch_size=32)
    rope = RotarySetup(mesh, config, args)
    x = to_mesh(torch.randn(32, config.hidden_size), mesh, "decode")

    ttnn.deallocate(layer(x, "decode", rope, 8))  # compile: program-cache misses
    first_call = system().global_call_count
    start = time.perf_counter()
    for step in range(steps):
        ttnn.deallocate(layer(x, "decode", rope, 9 + step))
    ttnn.synchronize_device(mesh)
    elapsed = time.perf_counter() - start
    launched = (system().global_call_count - first_call) // 1024  # the sim numbers host ops in steps of 1024
    ops_per_step = launched / steps
    device_ops = launched * mesh.get_num_devices()
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"decode step (gpt_oss_mini decoder layer, batch 32, mesh {mesh_shape[0]}x{mesh_shape[1]}):")
    print(f"  ops launched per step      {ops_per_step:.0f} ({ops_per_step * mesh.get_num_devices():.0f} device ops)")
    print(f"  wall time per step         {elapsed / steps * 1e3:.1f} ms")
    print(f"  host ops per second        {launched / elapsed:.0f}")
    print(f"  device ops per second      {device_ops / elapsed:.0f}")
    print(f"  peak RSS                   {rss_mb:.0f} MB")
    ttnn.close_mesh_device(mesh)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--mesh", type=int, nargs=2, metavar=("ROWS", "COLS"))
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.child:
        _measure(options.steps, options.mesh)
        return
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "ttnn_sim" / "shim"), str(WORKSPACE), str(REPO)])}
    argv = [sys.executable, __file__, "--child", "--steps", str(options.steps)]
    if options.mesh:
        rows, cols = options.mesh
        argv += ["--mesh", str(rows), str(cols)]
        env["TTNN_SIM_NUM_DEVICES"] = str(max(rows * cols, int(env.get("TTNN_SIM_NUM_DEVICES", "8"))))
    sys.exit(subprocess.run(argv, cwd=WORKSPACE, env=env).returncode)


if __name__ == "__main__":
    main()
