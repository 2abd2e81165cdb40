"""`doit scaffold fused_op=NAME --accept-measured`: write the last unit_test run's measured values into
the scaffolded test's placeholder rows, and the trace region its log asked for into TRACE_REGION_SIZE.

The values are the unit_test step's own suggestions (its result.json): the lowest PCC of the row rounded
down (never below the last passing run's), and the eager, program-cache e2e time when the run measured
one. Only rows still holding the placeholder change (a row whose PCC was accepted before any perf was
measured gets its perf); a row the run did not measure stays as it is.
"""

from pathlib import Path

from pipeline import artifacts
from pipeline.scaffold import expected
from pipeline.scaffold.build import ScaffoldError, read_spec, spec_field, spec_path_of, workspace_of


def accept(repo_root: Path, name: str, artifacts_dir: str) -> list[str]:
    spec_path = spec_path_of(repo_root, name)
    spec = read_spec(spec_path)
    test = workspace_of(spec, spec_path, repo_root) / spec_field(spec, "unit_test", spec_path)
    step_dir = artifacts.Layout(repo_root / artifacts_dir).step_dir(name, "unit_test")
    result = artifacts.read_result(step_dir)
    if not result:
        raise ScaffoldError(f"{step_dir}: no unit_test result; run `doit run fused_op={name}` first")
    trace_region = result.get("figures", {}).get("required_trace_region_size")
    try:
        placeholders = expected.placeholder_rows(test)
        written = [expected.accept_trace_region(test, trace_region)] if trace_region else []
    except expected.ExpectedError as error:
        raise ScaffoldError(str(error)) from None
    rows = expected.rows_of(test)
    no_perf = [key for key, (_, perf_us) in rows.items() if perf_us == expected.PLACEHOLDER_PERF_US]
    measured = {}
    for suggestion in result.get("figures", {}).get("suggestions", []):
        key = (suggestion.get("mode"), suggestion.get("seq_len"))
        perf_us = suggestion.get("suggested_expected_perf_us")
        if key in placeholders:
            measured[key] = (suggestion["suggested_expected_pcc"], perf_us)
        elif key in no_perf and perf_us is not None:  # the PCC was accepted before the run measured perf
            measured[key] = (rows[key][0], perf_us)
    if not placeholders and not written and not measured:
        raise ScaffoldError(
            f"{test}: no row holds the placeholders and no trace region is short; nothing to accept"
        )
    if placeholders and not measured and not written:
        raise ScaffoldError(
            f"{step_dir}: the last unit_test run measured no placeholder row ({placeholders}); "
            f"run `doit run fused_op={name}` first"
        )
    if measured:
        written += expected.accept_measured(test, measured)
    left = [key for key in placeholders if key not in measured]
    return written + [f"{test}: {key} not measured by the last run; still a placeholder" for key in left]
