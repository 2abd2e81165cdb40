"""The pages people browse under artifacts/: the index (tt-metal's status table and the step matrix),
one page per fused op, charts, history, tt-perf-report tables and CI summaries. Reads summary.json
through ``evidence`` only. Entry points: ``write_op_page`` (summary step), ``write_index`` (index step).

They import the page machinery (jinja2, matplotlib) when called, not when doit loads the graph, so
``doit list`` stays quick.
"""


def write_op_page(summary_json, workspace=None):
    from pipeline.render import pages

    return pages.write_op_page(summary_json, workspace)


def write_index(root, environ=None):
    from pipeline.render import pages

    return pages.write_index(root, environ)
