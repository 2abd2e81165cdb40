"""The names of what the renderer writes under artifacts/: the pages use them, and the graph's clean
actions remove them (imported without the page machinery, so `doit list` stays light)."""

OP_PAGE = "summary.html"  # artifacts/<op>/summary.html
HISTORY_DIR = "history"  # artifacts/<op>/history/<task>.jsonl
REPORT_DIR = "perf_report"  # artifacts/<op>/perf_report/<task>.csv
INDEX_PAGE = "index.html"  # artifacts/index.html
JUNIT = "junit.xml"  # artifacts/junit.xml
RESULTS_CSV = "results.csv"  # artifacts/results.csv: one row per unit-test case (DeepSeek's schema)

OP_OUTPUTS = (OP_PAGE, HISTORY_DIR, REPORT_DIR)
INDEX_OUTPUTS = (INDEX_PAGE, JUNIT, RESULTS_CSV)
