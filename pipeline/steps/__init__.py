"""One module per step of the graph, named after it. Each exposes ``run(job)``, which writes the step's
result.json last and atomically. What each step proves (shown by ``doit list``) is written here, so listing
the graph never imports the steps (pandas, jinja2)."""

DOCS = {
    "baseline": (
        "[guide 1] baseline: run the module test per mode; record every PCC line, junit and pass/fail"
    ),
    "patch_verify": (
        "[guide 6] patched-module verification: module test with the sequence replaced by <op>_ttnn; PCCs"
        " must equal the baseline"
    ),
    "unit_test": (
        "[guide 7-8] unit test: every case of test_<op>; PCC >= 0.99 unless justified; required cases "
        "must not skip"
    ),
    "unit_perf": (
        "[guide 9, 10.1] test_<op>_device_perf: checked signpost window, per-iteration totals, agreement "
        "with its printout"
    ),
    "module_perf": (
        "[guide 10.2] module-test device perf under tracy (one iteration), the ground truth for "
        "config_compare"
    ),
    "config_compare": (
        "[guide 10.3] config compare: unit-test ops vs the module's (op code, attributes, every "
        "input/output column)"
    ),
    "single_device": (
        "[guide 11] single-device test: every case; PCC equal to the multi-device test's; a skip only "
        "with a CCL op"
    ),
    "single_perf": (
        "[guide 12] test_<op>_single_device_device_perf: checked window, per-iteration totals (skipped "
        "with the single-device test)"
    ),
    "shape_check": (
        "[guide 11.6, 13] shape check: single-device CSV shapes equal the multi-device run's per-device "
        "shapes; PCC and perf side by side"
    ),
    "summary": (
        "[guide 14-15] summary: summary.json + summary.md with every verdict, figure and log link, and "
        "what was unexpected"
    ),
    "index": "[guide 14] index: artifacts/index.md status matrix (fused op x step, PCC, perf totals, links)",
}
STEPS = tuple(DOCS)  # the order of the graph
