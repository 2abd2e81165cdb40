"""One module per step of the graph, named after it. Each exposes ``DOC`` (the guide step it proves,
shown by ``doit list``) and ``run(job)``, which writes the step's result.json last and atomically."""

STEPS = ("baseline", "patch_verify", "unit_test", "unit_perf", "module_perf", "config_compare", "single_device",
         "single_perf", "shape_check", "summary", "index")  # fmt: skip
