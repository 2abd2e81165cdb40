"""The device-perf window measured by the test's configured count and checked with op properties; the
guide's constants (10 warm-ups, 10 measured iterations) against the test's, its spec's deviations and the
run's facts; the single-device run on one device. Synthetic CSVs as in test_steps."""

import json
from pathlib import Path
from types import SimpleNamespace

import pytest
from test_steps import row, signpost, unit_csv, write

from pipeline import opsperf
from pipeline.deviations import Deviation
from pipeline.steps import _perf, _window, config_compare, shape_check

Q = {"attrs": "{'weights': 'q'}"}


def qk_csv(tmp_path, iterations=10, warmups=10, name="qk.csv", k_y="32[32]", devices=2):
    """A fused op of two matmuls in a row (q and k projections): one iteration is [Matmul, Matmul]."""

    def one():
        return [row("Matmul", d, **Q) for d in range(devices)] + [
            row("Matmul", d, y=k_y) for d in range(devices)
        ]

    rows = [r for _ in range(warmups) for r in one()] + [signpost("start")]
    rows += [r for _ in range(iterations) for r in one()] + [signpost("stop")]
    return write(tmp_path / name, rows)


def test_a_two_matmul_iteration_is_measured_as_one_iteration_of_both(tmp_path):
    figures = _window.window_figures(qk_csv(tmp_path), 10)
    assert figures["iterations"] == 10 and figures["one_iteration_ops"] == ["Matmul", "Matmul"]
    assert figures["total_kernel_duration_us"] == pytest.approx(0.2)  # 2 ops x 100 ns, not halved
    assert figures["devices"] == ["0", "1"]


def test_identical_matmuls_are_one_iteration_too(tmp_path):
    figures = _window.window_figures(unit_csv(tmp_path, ["Matmul", "Matmul", "Matmul"]), 10)
    assert figures["iterations"] == 10 and figures["one_iteration_ops"] == ["Matmul"] * 3
    assert figures["total_kernel_duration_us"] == pytest.approx(0.3)


def test_config_compare_covers_both_matmuls_of_the_iteration(tmp_path):
    module = write(
        tmp_path / "module.csv",
        [row("Embed", d) for d in range(2)]
        + [row("Matmul", d, **Q) for d in range(2)]
        + [row("Matmul", d, y="64[64]") for d in range(2)],
    )
    report = config_compare.compare(qk_csv(tmp_path), module, 10)
    assert report["unit_ops"] == ["Matmul", "Matmul"] and report["result"] == "mismatch"
    assert [(m["row"], m["field"]) for m in report["mismatches"]] == [(1, "INPUT_0_Y_PAD[LOGICAL]")]
    same = config_compare.compare(qk_csv(tmp_path, k_y="64[64]"), module, 10)
    assert same["result"] == "match" and same["unit_rows"] == 2


def test_an_iteration_that_differs_in_its_properties_is_not_a_repetition(tmp_path):
    rows = [r for _ in range(10) for r in (row("A", 0), row("B", 0))] + [signpost("start")]
    rows += [
        r for i in range(10) for r in (row("A", 0, dtype="FLOAT32" if i == 3 else "BFLOAT16"), row("B", 0))
    ]
    with pytest.raises(opsperf.DevicePerfError) as error:
        _window.window_figures(write(tmp_path / "u.csv", rows + [signpost("stop")]), 10)
    assert "op 0 of iteration 4 (A differs from the first iteration's in 1 property cell(s))" in str(
        error.value
    )


def test_a_single_device_csv_must_hold_one_device(tmp_path):
    multi = unit_csv(tmp_path, ["A", "B"], devices=8, name="multi.csv")
    with pytest.raises(opsperf.DevicePerfError, match=r"holds 8 devices \(0, 1, 2, 3, 4, 5, 6, 7\)"):
        shape_check.compare_shapes(multi, multi, 10)
    single = unit_csv(tmp_path, ["A", "B"], devices=1, name="single.csv")
    assert shape_check.compare_shapes(multi, single, 10) == ([], ["A", "B"])


# ---- the guide's constants: _perf.checked_window ------------------------------------------------------


def job(tmp_path, iters=10, deviations=None):
    spec = SimpleNamespace(
        names=SimpleNamespace(device_perf_iters=iters, ttnn="demo_ttnn"),
        deviations=deviations or {},
        source=Path("demo.toml"),
    )
    return SimpleNamespace(spec=spec, step_dir=tmp_path)


def facts(tmp_path, calls=10, warmups=10, devices=(8,)):
    (tmp_path / "facts").mkdir(exist_ok=True)
    record = {
        "case": "test_demo[decode-1]",
        "devices": list(devices),
        "mesh_shapes": [[2, 4]],
        "device_perf_window": {"calls": calls, "warmups": warmups},
    }
    (tmp_path / "facts" / "test_demo_decode-1.json").write_text(json.dumps(record))
    (tmp_path / "facts" / "test_demo_device_perf.json").write_text(json.dumps({"case": "p", "calls": 0}))


def test_device_perf_iters_must_be_the_guides_ten(tmp_path):
    csv = unit_csv(tmp_path, ["A"], iterations=9)
    with pytest.raises(_perf.Defect) as error:
        _perf.checked_window(job(tmp_path, iters=9), csv)
    assert "DEVICE_PERF_ITERS: the test sets 9 but the guide's number is 10" in str(error.value)
    accepted = job(tmp_path, 9, {"DEVICE_PERF_ITERS": Deviation(9, "slow op")})
    figures = _perf.checked_window(accepted, csv)
    assert figures["iterations"] == 9
    assert figures["accepted_deviations"] == [
        "DEVICE_PERF_ITERS = 9 instead of the guide's 10, accepted by demo.toml: slow op"
    ]


def test_facts_give_the_exact_warmups_and_window_calls(tmp_path):
    csv = unit_csv(tmp_path, ["A", "B"])
    facts(tmp_path)
    assert _perf.checked_window(job(tmp_path), csv)["facts_cases"] == ["test_demo[decode-1]"]
    facts(tmp_path, warmups=9)  # 9 warm-ups + the accuracy call: 10 iterations before `start` in the CSV
    with pytest.raises(_perf.Defect) as error:
        _perf.checked_window(job(tmp_path), csv)
    assert "PERF_WARMUP_ITERS: test_demo[decode-1] ran" in str(error.value)
    assert "9 but the guide's number is 10" in str(error.value)
    facts(tmp_path, warmups=0)
    deviation = {"PERF_WARMUP_ITERS": Deviation(0, "tt-metal's experts test does the same")}
    zero = unit_csv(tmp_path, ["A", "B"], warmups=1, name="zero.csv")
    assert _perf.checked_window(job(tmp_path, deviations=deviation), zero)["accepted_deviations"]
    facts(tmp_path, calls=20)
    with pytest.raises(_perf.Defect, match="20 calls of demo_ttnn ran between signpost"):
        _perf.checked_window(job(tmp_path), csv)


def test_single_device_perf_on_the_whole_mesh_fails(tmp_path):
    with pytest.raises(_perf.Defect, match=r"holds 2 devices \(0, 1\)"):
        _perf.checked_window(job(tmp_path), unit_csv(tmp_path, ["A"]), single_device=True)
    facts(tmp_path, devices=(8,))
    with pytest.raises(_perf.Defect, match=r"demo_ttnn ran on meshes of \[8\] devices"):
        _perf.checked_window(job(tmp_path), unit_csv(tmp_path, ["A"], devices=1), single_device=True)
