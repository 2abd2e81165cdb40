"""shape_check [guide steps 11.6, 13]: the single-device run is the first device's share of the
multi-device run.

Compares, op by op over one iteration, every INPUT_/OUTPUT_ shape column of the single-device window with
the multi-device window's rows of its first device (step 13), and each op's average kernel duration
with the multi-device run's within 2 % (step 11.6); reports PCC and per-iteration totals side by side.
The single-device window must hold one device's rows (a "single-device" function on the whole mesh
writes devices 0-7). Skipped (with the reason) when the single-device test is skipped, e.g. for a fused
op with CCLs.
"""

import pandas as pd

from pipeline import artifacts, opsperf
from pipeline.steps import _window
from pipeline.steps._common import Job, blocked, finish, start

KERNEL_TOLERANCE = 0.02
SHAPE_SUFFIXES = (
    "_W_PAD[LOGICAL]",
    "_Z_PAD[LOGICAL]",
    "_Y_PAD[LOGICAL]",
    "_X_PAD[LOGICAL]",
    "_W",
    "_Z",
    "_Y",
    "_X",
)


def run(job: Job) -> dict:
    clock = start(job)
    single = job.upstream_result("single_perf")
    multi = job.upstream_result("unit_perf")
    if single and single["verdict"] == artifacts.SKIPPED:
        return finish(job, clock, artifacts.SKIPPED, single["message"])
    gate = blocked(job, clock, "unit_test", "unit_perf", "single_perf")
    if gate:
        return gate
    iterations = job.spec.names.device_perf_iters
    try:
        mismatches, compared = compare_shapes(
            job.upstream_file("unit_perf", "csv"), job.upstream_file("single_perf", "csv"), iterations
        )
    except opsperf.DevicePerfError as error:
        return finish(job, clock, artifacts.FAILED, str(error))
    side_by_side = {
        "multi_device": _figures(multi, job.upstream_result("unit_test"), job.mode),
        "single_device": _figures(single, job.upstream_result("single_device"), job.mode),
    }
    mismatches += kernel_differences(multi["figures"]["op_stats"], single["figures"]["op_stats"])
    figures = {"compared_ops": compared, "mismatches": mismatches, "side_by_side": side_by_side}
    report = artifacts.write_json(job.step_dir / "report.json", figures)
    if mismatches:
        shown = "; ".join(
            f"{m['op']} {m['field']}: multi {m['multi']} != single {m['single']}" for m in mismatches[:3]
        )
        return finish(
            job,
            clock,
            artifacts.FAILED,
            f"single vs multi device: {shown}",
            figures,
            {"report_json": report.name},
        )
    matched = f"all shapes of {len(compared)} ops match the first device's"
    return finish(job, clock, artifacts.PASSED, matched, figures, {"report_json": report.name})


def compare_shapes(multi_csv, single_csv, iterations: int) -> tuple[list[dict], list[str]]:
    multi_window = opsperf.signpost_window(opsperf.read_ops_csv(multi_csv))
    first_device = _first_device_rows(multi_window)
    multi_rows = first_device.iloc[: _window.period_of(first_device, iterations)]
    single_window = opsperf.signpost_window(opsperf.read_ops_csv(single_csv))
    check_one_device(single_window)
    single_device = _first_device_rows(single_window)
    single_rows = single_device.iloc[: _window.period_of(single_device, iterations)]
    columns = [
        c for c in multi_window.columns if c.startswith(("INPUT_", "OUTPUT_")) and c.endswith(SHAPE_SUFFIXES)
    ]
    multi_ops, single_ops = list(multi_rows["OP CODE"]), list(single_rows["OP CODE"])
    if multi_ops != single_ops:
        return [{"op": "-", "field": "OP CODE", "multi": multi_ops, "single": single_ops}], multi_ops
    mismatches = []
    for (_, multi), (_, single) in zip(multi_rows.iterrows(), single_rows.iterrows(), strict=True):
        for column in columns:
            single_value = str(single[column]).strip() if column in single.index else ""
            if str(multi[column]).strip() != single_value:
                mismatches.append(
                    {"op": multi["OP CODE"], "field": column, "multi": multi[column], "single": single_value}
                )
    return mismatches, multi_ops


def kernel_differences(multi: dict, single: dict) -> list[dict]:
    """guide step 11.6: each op's average kernel duration agrees within 2 %."""
    found = []
    for op, stats in multi.items():
        theirs = (single.get(op) or {}).get("avg_kernel_duration_ns")
        ours = stats["avg_kernel_duration_ns"]
        if theirs is not None and abs(theirs - ours) > KERNEL_TOLERANCE * max(ours, 1e-9):
            found.append(
                {
                    "op": op,
                    "field": "avg kernel duration [ns] (within 2 %)",
                    "multi": round(ours, 1),
                    "single": round(theirs, 1),
                }
            )
    return found


def check_one_device(window: pd.DataFrame) -> None:
    """guide steps 11.3, 12: the single-device run's ops ran on ONE device, not the whole mesh."""
    devices = _window.devices(window)
    if len(devices) > 1:
        raise opsperf.DevicePerfError(_window.one_device_text(devices))


def _first_device_rows(window: pd.DataFrame) -> pd.DataFrame:
    device_rows = window[window["OP TYPE"] == opsperf.DEVICE_OP]
    ids = pd.to_numeric(device_rows["DEVICE ID"], errors="coerce")
    if ids.isna().all():
        raise opsperf.DevicePerfError("No device ops between the signposts in device perf log.")
    return device_rows[ids == ids.min()]


def _figures(perf: dict, test: dict | None, mode: str) -> dict:
    by_mode = ((test or {}).get("figures") or {}).get("by_mode", {})
    pcc = [
        entry["min_pcc"]
        for key, entry in by_mode.items()
        if key.startswith(f"{mode}_") and entry["min_pcc"] is not None
    ]
    figures = perf["figures"]
    return {
        "min_pcc": min(pcc) if pcc else None,
        "total_kernel_duration_us": figures.get("total_kernel_duration_us"),
        "total_op_to_op_latency_us": figures.get("total_op_to_op_latency_us"),
    }
