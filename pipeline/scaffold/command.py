"""`doit scaffold fused_op=NAME`: a doit command plugin (it never loads dodo.py, so a spec whose unit test
does not exist yet is fine). Registered in pyproject.toml under [tool.doit.plugins.command].

doit variables: fused_op=NAME (required), reference=package.module:callable, decode_csv=PATH,
prefill_csv=PATH (module_perf CSVs; by default the module test's profiled run in artifacts/),
artifacts=DIR. Option --force writes <unit test>.new beside an existing unit test; --accept-measured
writes the last unit_test run's measured values into the test's placeholder rows instead.
"""

import sys
from pathlib import Path

from doit import get_var
from doit.cmd_base import Command

from pipeline.scaffold.accept import accept
from pipeline.scaffold.build import Options, ScaffoldError, scaffold
from pipeline.spec import MODES

INPUT_ERROR = 2


class Scaffold(Command):
    name = "scaffold"
    doc_purpose = "write a fused op's unit test from its spec's name, op sequence and module test"
    doc_usage = (
        "fused_op=NAME [reference=package.module:callable] [decode_csv=PATH] [prefill_csv=PATH] [--force] "
        "[--accept-measured]"
    )
    doc_description = __doc__
    cmd_options = (
        {
            "name": "force",
            "long": "force",
            "type": bool,
            "default": False,
            "help": "when the unit test exists, write <file>.new beside it instead of stopping",
        },
        {
            "name": "accept_measured",
            "long": "accept-measured",
            "type": bool,
            "default": False,
            "help": "write the last unit_test run's measured values into the test's placeholder rows",
        },
    )

    def execute(self, params, args):
        if args:
            print(f"scaffold: unexpected arguments {args}; use fused_op=NAME [--force]", file=sys.stderr)
            return INPUT_ERROR
        options = Options(
            reference=get_var("reference", ""),
            csvs=tuple((mode, get_var(f"{mode}_csv")) for mode in MODES if get_var(f"{mode}_csv")),
            force=bool(params["force"]),
            artifacts_dir=get_var("artifacts", "artifacts"),
            doit_variables=tuple(f"{k}={get_var(k)}" for k in ("backend", "workspace") if get_var(k)),
        )
        try:
            if params["accept_measured"]:
                lines = accept(Path.cwd(), get_var("fused_op", ""), options.artifacts_dir)
            else:
                lines = scaffold(Path.cwd(), get_var("fused_op", ""), options)
        except ScaffoldError as error:
            print(f"scaffold: {error}", file=sys.stderr)
            return INPUT_ERROR
        for line in lines:
            print(f"scaffold: {line}")
        return 0
