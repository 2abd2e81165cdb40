"""The pages people browse under artifacts/: the index (tt-metal's status table and the step matrix),
one page per fused op, charts, history, tt-perf-report tables and CI summaries. Reads summary.json
through ``evidence`` only. Entry points: ``write_op_page`` (summary step), ``write_index`` (index step)."""

from pipeline.render.pages import write_index, write_op_page

__all__ = ["write_index", "write_op_page"]
