"""Per-case facts (pipeline/facts.py, facts_plugin.py) and the claims the steps check against them
(pipeline/steps/_claims.py): each claim changed in turn makes the check fail, naming case, claim and fact."""

import copy
import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from pipeline import facts, sources
from pipeline.steps import _claims, _expected, unit_test

REPO = Path(__file__).resolve().parents[2]
WORKSPACE = REPO / "examples" / "gpt_oss_mini"
ROUTER_TEST = WORKSPACE / "models/demos/gpt_oss_mini/tests/fused_op_unit_tests/test_gpt_oss_mini_router.py"
MESH = "device_params0-mesh_2x4"


def case_id(execution="eager", cache="program_cache", weights="random_weights", row="decode-1-0.998-37.5"):
    return f"test_x[{MESH}-{execution}-{cache}-{weights}-{row}]"


def record(case: str, **changes) -> dict:
    """The facts of a case that did everything its id claims."""
    params = case.partition("[")[2]
    good = {
        "case": case,
        "fused_function": "x_ttnn",
        "calls": 112,
        "devices": [8],
        "mesh_shapes": [[2, 4]],
        "trace": {"captures": 2, "replays": 2, "replayed_calls": 110}
        if "-trace-" in params
        else {"captures": 0, "replays": 0, "replayed_calls": 0},
        "compared_from_replay": False,
        "program_cache": {
            "disabled": "no_program_cache" in params,
            "enabled_at_fused_calls": 0 if "no_program_cache" in params else 112,
            "disabled_at_fused_calls": 112 if "no_program_cache" in params else 0,
            "entries_before": 0,
            "entries_after": 0 if "no_program_cache" in params else 3,
        },
        "checkpoint_files": ["/ckpt/model.safetensors"] if "real_weights" in params else [],
        "comparisons": [
            {
                "kind": "pcc",
                "helper": "comp_pcc",
                "shapes": [[32, 4], [32, 4]],
                "value": 0.9991,
                "passed": True,
                "expected": 0.998,
                "sides": ["reference", "ttnn"],
                "same_object": False,
            },
            {
                "kind": "allclose",
                "helper": "comp_allclose",
                "shapes": [[32, 4], [32, 4]],
                "value": None,
                "passed": False,
                "expected": None,
                "sides": ["reference", "ttnn"],
                "same_object": False,
            },
        ],
        "e2e": [{"calls": 100, "divisor": 100, "warmups": 10}],
        "device_perf_window": None,
        "perturbed": False,
    }
    good.update(changes)
    return good


def case(case_name: str, facts_record: dict | None, pcc=None) -> dict:
    return {
        "id": case_name,
        "outcome": "passed",
        "message": "",
        "pcc": {"w": 0.9991} if pcc is None else pcc,
        "atol": {},
        "e2e_us": [37.5],
        "facts": facts_record,
    }


def problems_of(case_name, single_device=False, pcc=None, **changes) -> list[str]:
    return _claims.problems([case(case_name, record(case_name, **changes), pcc)], single_device)


def test_file_names_are_safe_and_distinct_and_read_back(tmp_path):
    names = ["test_x[a-b]", "test_x[a_b]", "test_x[" + "y" * 400 + "]"]
    files = {facts.file_name(n) for n in names}
    assert len(files) == 3 and all("[" not in f and "/" not in f and len(f) < 200 for f in files)
    for name in names:
        facts.path_for(tmp_path, name).parent.mkdir(exist_ok=True)
        facts.path_for(tmp_path, name).write_text(json.dumps({"case": name, "e2e": [{"calls": 100}]}))
    (tmp_path / "facts" / "broken.json").write_text("{")
    read = facts.read(tmp_path)
    assert sorted(read) == sorted(names) and facts.e2e_iterations(read[names[0]]) == 100
    assert facts.read(tmp_path / "nothing") == {}


def test_a_case_that_does_what_it_claims_has_no_problem():
    for name in (
        case_id(),
        case_id("trace"),
        case_id(cache="no_program_cache"),
        case_id(weights="real_weights"),
    ):
        assert problems_of(name) == [], name


@pytest.mark.parametrize(
    "name, changes, words",
    [
        (
            case_id("trace"),
            {"trace": {"captures": 0, "replays": 0, "replayed_calls": 0}},
            ["claims trace", "never replayed", "0 captures"],
        ),
        (
            case_id(cache="no_program_cache"),
            {
                "program_cache": {
                    "disabled": False,
                    "enabled_at_fused_calls": 112,
                    "disabled_at_fused_calls": 0,
                    "entries_before": 0,
                    "entries_after": 0,
                }
            },
            ["claims no_program_cache", "112 of 112 fused calls ran with the program cache enabled"],
        ),
        (
            case_id(cache="no_program_cache"),
            {
                "program_cache": {
                    "disabled": True,
                    "enabled_at_fused_calls": 0,
                    "disabled_at_fused_calls": 112,
                    "entries_before": 0,
                    "entries_after": 3,
                }
            },
            ["claims no_program_cache", "held 3 entries"],
        ),
        (case_id(), {"devices": [1], "mesh_shapes": [[1, 1]]}, ["claims mesh_2x4", "[1] device(s)"]),
        (case_id(weights="real_weights"), {"checkpoint_files": []}, ["claims real_weights", "no checkpoint"]),
        (case_id(), {"calls": 0}, ["claims to test x_ttnn but never called it", "0 calls"]),
        (
            case_id(),
            {"e2e": [{"calls": 10, "divisor": 100, "warmups": 10}]},
            ["divides by 100", "ran 10 fused calls"],
        ),
        (case_id(), {"comparisons": []}, ["no PCC comparison"]),
    ],
)
def test_each_claim_changed_fails_naming_case_claim_and_fact(name, changes, words):
    found = problems_of(name, **changes)
    assert found and all(found[0].startswith(name + ": ") for _ in [0]), found
    assert all(w in " ".join(found) for w in words), found


def test_a_single_device_case_on_the_whole_mesh_fails():
    name = case_id().replace("test_x[", "test_x_single_device[")
    assert problems_of(name, single_device=True, devices=[1], mesh_shapes=[[1, 1]]) == []
    found = problems_of(name, single_device=True)
    assert found == [f"{name}: claims single_device but the fused function ran on [8] device(s) (mesh 2x4)"]


def test_comparisons_must_be_asserted_logged_and_against_the_reference():
    good = record(case_id())
    unasserted = copy.deepcopy(good)
    unasserted["comparisons"][0].update(value=0.41, passed=False)
    found = _claims.problems([case(case_id(), unasserted, pcc={"w": 0.41})])
    assert "comp_pcc returned a failing PCC 0.4100 < 0.998 yet the case passed" in found[0]
    found = _claims.problems([case(case_id(), good, pcc={})])
    assert "logged no `PCC <name>: <value>` line" in found[0]
    found = _claims.problems([case(case_id(), good, pcc={"w": 0.5})])
    assert "logged PCC w 0.5000 that no comparison measured" in found[0]
    self_compare = copy.deepcopy(good)
    self_compare["comparisons"][0].update(value=1.0, sides=["ttnn", "ttnn"])
    found = _claims.problems([case(case_id(), self_compare, pcc={"w": 1.0})])
    assert "has the ttnn output on both sides" in found[0]


def test_a_case_without_facts_fails_and_skips_and_not_applicable_cases_are_not_judged():
    assert _claims.problems([case(case_id(), None)]) == [
        f"{case_id()}: no facts recorded (the facts plugin did not load, or the case crashed)"
    ]
    skipped = {**case(case_id(), None), "outcome": "skipped"}
    not_applicable = case(case_id("trace", "no_program_cache"), None)
    assert _claims.problems([skipped, not_applicable]) == []


def test_every_required_case_exists():
    rows = ["decode-1-0.998-37.5", "prefill-128-0.98-37.5", "prefill-1024-0.98-37.5"]
    combos = [("eager", "program_cache"), ("eager", "no_program_cache"), ("trace", "program_cache")]
    cases = [case(case_id(e, c, row=r), None) for r in rows for e, c in combos]
    assert _claims.missing_cases(cases, (128, 1024)) == []
    without = [c for c in cases if "no_program_cache" not in c["id"]]
    assert _claims.missing_cases(without, (128, 1024)) == [
        "decode eager no_program_cache random_weights",
        "prefill seq_len=128 eager no_program_cache random_weights",
        "prefill seq_len=1024 eager no_program_cache random_weights",
    ]
    no_1024 = [c for c in cases if "1024" not in c["id"]]
    assert len(_claims.missing_cases(no_1024, (128, 1024))) == 3
    assert _claims.missing_cases(cases, (128, 1024), modes=("decode",)) == []


def test_real_weights_cases_are_required_only_with_a_checkpoint(monkeypatch):
    cases = [
        case(case_id(e, c), None)
        for e, c in [("eager", "program_cache"), ("eager", "no_program_cache"), ("trace", "program_cache")]
    ]
    monkeypatch.delenv("HF_MODEL", raising=False)
    assert _claims.missing_cases(cases, (), modes=("decode",)) == []
    monkeypatch.setenv("HF_MODEL", "/ckpt")
    assert "decode eager program_cache real_weights" in _claims.missing_cases(cases, (), modes=("decode",))


def test_the_guides_e2e_constants_or_a_deviation_with_its_reason():
    cases = [case(case_id(), record(case_id(), e2e=[{"calls": 100, "divisor": 100, "warmups": 9}]))]
    found, notes = _claims.e2e_constants(cases, {})
    assert (
        found
        == [
            f"{case_id()}: the e2e window ran 9 warm-up iterations; the guide's PERF_WARMUP_ITERS is 10 "
            "(or accept it with a reason under [deviations] in the spec)"
        ]
        and notes == []
    )
    deviation = SimpleNamespace(value=9, reason="slow loop")
    found, notes = _claims.e2e_constants(cases, {"PERF_WARMUP_ITERS": deviation})
    assert found == [] and notes == ["PERF_WARMUP_ITERS = 9 instead of the guide's 10: slow loop"]
    short = [case(case_id(), record(case_id(), e2e=[{"calls": 10, "divisor": 10, "warmups": 10}]))]
    assert (
        "ran 10 measured iterations; the guide's PERF_MEASURE_ITERS is 100"
        in _claims.e2e_constants(short, {})[0][0]
    )


def test_atol_and_pcc_must_be_compared_somewhere():
    good = record(case_id())
    no_atol = record(case_id(), comparisons=[c for c in good["comparisons"] if c["kind"] == "pcc"])
    assert _claims.comparison_kinds([case(case_id(), good)]) == []
    assert _claims.comparison_kinds([case(case_id(), no_atol)]) == ["allclose"]


def test_a_justification_is_checked_against_the_measured_pcc():
    row = {"expected_pcc": 0.98, "justification": "PCC drops to ~0.989 in prefill (one swapped expert)"}
    assert not _expected.justifies(row, 0.989)  # states nothing at or below 0.98
    row = {**row, "justification": "PCC ~0.985: one swapped expert; tt-metal expects 0.90"}
    assert _expected.justifies(row, 0.985)
    assert not _expected.justifies({**row, "expected_pcc": -0.5}, -0.18)  # no correlation is never justified
    assert not _expected.justifies(row, 0.5)  # a comment for 0.90 does not cover a measured 0.5


def test_deleting_a_justification_changes_the_digest_a_formatting_comment_does_not():
    text = ROUTER_TEST.read_text()
    justification = "# expected_pcc = the lowest PCC measured on ttnn_sim"
    assert justification in text
    without = text.replace(justification, "#")
    other = text.replace("# Op parameters exactly as the module uses them.", "# reworded")
    assert sources.behaviour_digest(without.encode()) != sources.behaviour_digest(text.encode())
    assert sources.behaviour_digest(other.encode()) == sources.behaviour_digest(text.encode())


def test_perf_assertions_are_found_in_the_tests_import_closure(tmp_path):
    assert [p.name for p in _expected.perf_assertion_files(ROUTER_TEST, WORKSPACE)] == [
        "fused_op_test_utils.py"
    ]
    (tmp_path / "helper.py").write_text("def check(perf, expected_perf_us):\n    return perf\n")
    (tmp_path / "test_y.py").write_text("from helper import check\n")
    assert _expected.perf_assertion_files(tmp_path / "test_y.py", tmp_path) == []


def test_unit_test_facts_verdict_names_what_is_missing():
    spec = SimpleNamespace(
        prefill_seqlens=(128, 1024),
        modes=("decode", "prefill"),
        workspace=WORKSPACE,
        unit_test=ROUTER_TEST.relative_to(WORKSPACE),
    )
    job = SimpleNamespace(spec=spec, task="unit_test:x")
    cases = [case(case_id(), record(case_id()))]
    verdict, message, _ = unit_test.facts_verdict(job, cases, "ok")
    assert verdict == "failed" and "no case for decode eager no_program_cache random_weights" in message


def test_the_plugin_records_what_the_bundled_router_test_did(tmp_path):
    """The child side on ttnn_sim: one eager + cache-disabled case and one traced case."""
    env = {
        **os.environ,
        "PIPELINE_STEP_DIR": str(tmp_path),
        "PIPELINE_FUSED_FUNCTION": "gpt_oss_mini_router_ttnn",
        "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "ttnn_sim" / "shim"), str(WORKSPACE)]),
    }
    selection = "decode and random and (eager-no_program_cache or trace-program_cache)"
    argv = [
        sys.executable,
        "-m",
        "pytest",
        "-p",
        "no:cacheprovider",
        "-p",
        "pipeline.facts_plugin",
        "-q",
        f"{ROUTER_TEST}::test_gpt_oss_mini_router",
        "-k",
        selection,
    ]
    done = subprocess.run(argv, cwd=WORKSPACE, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:]
    records = facts.read(tmp_path)
    assert len(records) == 2
    eager = next(r for n, r in records.items() if "no_program_cache" in n)
    traced = next(r for n, r in records.items() if "-trace-" in n)
    assert eager["devices"] == [8] and eager["mesh_shapes"] == [[2, 4]]
    assert eager["program_cache"]["disabled"] and eager["program_cache"]["enabled_at_fused_calls"] == 0
    assert eager["program_cache"]["entries_after"] == 0 and eager["trace"]["replays"] == 0
    assert eager["e2e"] == [{"calls": 100, "divisor": 100, "warmups": 10}]
    assert traced["trace"]["replays"] == 2 and traced["trace"]["replayed_calls"] == 110
    assert traced["e2e"] == [{"calls": 100, "divisor": 100, "warmups": 10}]
    assert traced["program_cache"]["entries_after"] > 0
    kinds = [(c["kind"], c["sides"]) for c in eager["comparisons"]]
    assert ("pcc", ["reference", "ttnn"]) in kinds and any(k == "allclose" for k, _ in kinds)
    assert all(c["passed"] for c in eager["comparisons"] if c["kind"] == "pcc")
    assert eager["checkpoint_files"] == [] and eager["calls"] == 111


def test_the_op_page_line_of_a_cases_facts():
    text = facts.summary_text(record(case_id("eager", "no_program_cache")))
    assert text == (
        "112 calls on 8 device(s) (2x4) · trace 0 captures, 0 replays · cache disabled at 112 calls, 0 entries · "
        "checkpoint: none · 1 PCC + 1 ATOL comparisons · e2e 100 calls / 100 (10 warm-ups)"
    )
    assert facts.summary_text(None) == "no facts recorded"


def test_the_tests_own_constants_are_the_guides_and_one_problem_names_many_cases():
    found, _ = _claims.e2e_constants([], {}, {"PERF_WARMUP_ITERS": 9, "PERF_MEASURE_ITERS": 100})
    assert found == [
        "the test sets PERF_WARMUP_ITERS = 9; the guide's is 10 (or accept it with a reason under [deviations] "
        "in the spec)"
    ]
    assert _expected.module_constants(ROUTER_TEST, facts.GUIDE_E2E) == {
        "PERF_WARMUP_ITERS": 10,
        "PERF_MEASURE_ITERS": 100,
    }
    windows = [{"calls": 10, "divisor": 10, "warmups": 10}]
    cases = [case(case_id(e), record(case_id(e), e2e=windows)) for e in ("eager", "trace")]
    found, _ = _claims.e2e_constants(cases, {})
    assert found == [
        f"{case_id('eager')}: the e2e window ran 10 measured iterations (and 1 more case(s)); the guide's "
        "PERF_MEASURE_ITERS is 100 (or accept it with a reason under [deviations] in the spec)"
    ]
