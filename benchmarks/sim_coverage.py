"""Which ttnn names a source tree uses, and which of them the simulated device has.

Reads every *.py file under the given directory (without importing it), collects the dotted names rooted at
`ttnn` (`ttnn.matmul`, `ttnn.experimental.all_gather_async`, `ttnn.TILE_LAYOUT`, ...; calls and plain uses
alike), then looks each one up in the simulator's `ttnn` package. Prints one line per name and a summary.
Run:  .venv/bin/python benchmarks/sim_coverage.py PATH [--missing-only]
It starts itself again with the sim shim on sys.path, as the sim backend does.
"""

import argparse
import ast
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _dotted(node) -> str | None:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name) and node.id == "ttnn":
        return ".".join(["ttnn", *reversed(parts)])
    return None


def names_used(root: Path) -> Counter:
    """{dotted ttnn name: number of uses} over the tree; only the longest chain of each expression counts."""
    uses = Counter()
    for path in sorted(root.rglob("*.py")):
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        except (SyntaxError, UnicodeDecodeError):
            continue
        inner = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and id(node) not in inner:
                name = _dotted(node)
                if name:
                    uses[name] += 1
                    value = node.value
                    while isinstance(value, ast.Attribute):
                        inner.add(id(value))
                        value = value.value
    return uses


def simulator_has(name: str) -> bool:
    import ttnn

    target = ttnn
    for part in name.split(".")[1:]:
        if not hasattr(target, part):
            return False
        target = getattr(target, part)
    return True


def report(root: Path, missing_only: bool) -> None:
    uses = names_used(root)
    present = {name: simulator_has(name) for name in uses}
    for name in sorted(uses):
        if not (missing_only and present[name]):
            print(f"{'yes' if present[name] else 'NO '}  {uses[name]:5d}  {name}")
    have = sum(present.values())
    share = 100 * have / len(uses) if uses else 100.0
    print(f"{have} of {len(uses)} ttnn names used under {root} exist in the simulator ({share:.0f} %)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", type=Path)
    parser.add_argument("--missing-only", action="store_true")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    options = parser.parse_args()
    if not options.path.is_dir():
        print(
            f"sim_coverage: {options.path} is not a directory; give the root of a source tree",
            file=sys.stderr,
        )
        sys.exit(2)
    if options.child:
        report(options.path.resolve(), options.missing_only)
        return
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "ttnn_sim" / "shim"), str(REPO)])}
    argv = [sys.executable, __file__, "--child", str(options.path.resolve())]
    argv += ["--missing-only"] if options.missing_only else []
    sys.exit(subprocess.run(argv, env=env).returncode)


if __name__ == "__main__":
    main()
