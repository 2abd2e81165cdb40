"""Scaffold a fused-op unit test from the guide's three inputs (name, op sequence, module test).

``region`` finds the statements a sequence names (anchors, a line range or a function), ``dataflow``
says which names those statements read before writing and which they leave behind, and ``extract``
turns them into the ``<op>_ttnn`` function, its call line and the ttnn ops it runs.
"""
