"""Rerun precision: after each scripted edit, the tasks `doit run` executes vs the minimal set.

Not a pass/fail test: it prints a Markdown table for the README. It works on the small fake checkout
of tests/pipeline/fakes.py (each run takes seconds, the bundled workspace's take minutes; the rule that
decides what reruns is the same). The minimal set of each edit is what must rerun for the evidence to
stay true: nothing when the edit cannot change behaviour; the steps that read the file otherwise.

Run:  .venv/bin/python benchmarks/graph_rerun_precision.py
"""

import shutil
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "pipeline"))

from fakes import doit, executed, make_doit_env, make_fake_repo  # noqa: E402

UNIT_TEST = "examples/demo/models/demo/tests/fused/test_demo_router.py"
MODEL = "examples/demo/models/demo/tt/model.py"
UNIT_STEPS = {"unit_test:demo_router", "single_device:demo_router"} | {
    f"{step}:demo_router:{mode}"
    for step in ("unit_perf", "single_perf", "patch_verify")
    for mode in ("decode", "prefill")
}  # patch_verify imports the unit test's <op>_ttnn
MODULE_STEPS = {("baseline", m) for m in ("decode", "prefill")} | {
    ("module_perf", m) for m in ("decode", "prefill")
}
MODULE_HOSTS = {("patch_verify", m) for m in ("decode", "prefill")} | {
    ("config_compare", m) for m in ("decode", "prefill")
}
MODULE_HOSTS |= {("summary", "demo_router"), ("index", "index")}

# (edit, file, old, new, minimal set: task names, or (step, last part) pairs for module-test tasks)
EDITS = [
    ("comment in the unit test", UNIT_TEST, "import logging\n", "import logging  # why\n# more\n", set()),
    ("blank lines + reformat in the unit test", UNIT_TEST, "CASES = [(", "\n\nCASES = [\n    (", set()),
    ("comment in the module", MODEL, "    a = add(x, 1)\n", "    # fused part\n    a = add(x, 1)\n", set()),
    ("quote style in the module", MODEL, 'op("EmbeddingsDeviceOperation")', "op('EmbeddingsDeviceOperation')",
     set()),
    ("docstring in the unit test", UNIT_TEST, "def demo_router_reference(x):\n",
     'def demo_router_reference(x):\n    """Docs."""\n', UNIT_STEPS),
    ("code in the unit test", UNIT_TEST, "DEVICE_PERF_ITERS = 10\n", "DEVICE_PERF_ITERS = 10\nEXTRA = 1\n",
     UNIT_STEPS),
    ("code in the module", MODEL, 'op("LayerNormDeviceOperation")', 'op("LayerNormDeviceOperation")\n    op("RMSNorm")',
     MODULE_STEPS | MODULE_HOSTS),
    ("unrelated workspace file", "examples/demo/models/demo/tt/unused.py", "UNUSED = 1", "UNUSED = 2", set()),
]  # fmt: skip


def normalise(names: set[str], like: set) -> set:
    """Module-test task names carry a hash key: compare those by (step, mode)."""
    if all(isinstance(item, str) for item in like) and like:
        return names
    return {(name.split(":")[0], name.split(":")[-1]) for name in names}


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        first = make_fake_repo(base / "first")
        if doit(first, make_doit_env(base), "run").returncode != 0:
            raise SystemExit("the first run of the fake checkout failed")
        print("| edit | tasks run | minimal set | device steps run | exact |")
        print("|---|---|---|---|---|")
        for number, (what, path, old, new, minimal) in enumerate(EDITS):
            repo = Path(shutil.copytree(first, base / f"edit{number}", symlinks=True))
            text = (repo / path).read_text()
            assert old in text, old
            (repo / path).write_text(text.replace(old, new, 1))
            ran = executed(doit(repo, make_doit_env(repo.parent), "run"))
            got = normalise(ran, minimal)
            device = sum(1 for name in ran if name.split(":")[0] not in ("config_compare", "shape_check", "summary",
                                                                         "index"))  # fmt: skip
            print(
                f"| {what} | {len(ran)} | {len(minimal)} | {device} | {'yes' if got == minimal else 'NO'} |"
            )


if __name__ == "__main__":
    main()
