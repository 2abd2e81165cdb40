"""`doit scaffold` is a doit command wherever the package is installed, and an installed copy has its
templates: the entry point and [tool.doit.plugins.command] name the command class, and the package
data globs cover every template file."""

import importlib
import subprocess
import sys
import tomllib
from pathlib import Path

from doit.cmd_base import Command

REPO = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())


def _load(target: str):
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)


def test_the_scaffold_command_is_registered_for_installs_and_checkouts():
    installed = PYPROJECT["project"]["entry-points"]["doit.COMMAND"]["scaffold"]
    checkout = PYPROJECT["tool"]["doit"]["plugins"]["command"]["scaffold"]
    assert installed == checkout
    command = _load(installed)
    assert issubclass(command, Command) and command.name == "scaffold"


def test_package_data_holds_every_template():
    patterns = PYPROJECT["tool"]["setuptools"]["package-data"]["pipeline"]
    package = REPO / "pipeline"
    shipped = {p for pattern in patterns for p in package.glob(pattern) if p.is_file()}
    templates = {
        p for p in (package / "templates").rglob("*") if p.is_file() and "__pycache__" not in p.parts
    }
    assert templates and templates <= shipped
    assert package / "templates" / "scaffold" / "fused_op_test.py.j2" in shipped


def test_doit_lists_scaffold_among_its_commands_from_the_repo_root():
    listing = subprocess.run(
        [sys.executable, "-m", "doit", "help"], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert listing.returncode == 0, listing.stderr
    assert any(line.split()[1:2] == ["scaffold"] for line in listing.stdout.splitlines()), listing.stdout
