"""A region that frees an input: the module's call still frees it, the test's repeated calls do not, and no
copy op enters the measured call (config compare matches the module)."""

from pipeline.scaffold import freed

SOURCE = """\
def op_ttnn(attention, o_proj, memory_config):
    heads = ttnn.experimental.nlp_concat_heads_decode(attention, num_heads=4)
    ttnn.deallocate(attention)
    output = ttnn.linear(heads, o_proj, memory_config=memory_config)
    ttnn.deallocate(heads)
    return output
"""


def test_the_freed_input_is_deallocated_only_when_the_flag_says_so():
    kept = freed.keep_inputs(SOURCE, {"attention"})
    assert kept.startswith("def op_ttnn(attention, o_proj, memory_config, deallocate_inputs=True):\n")
    assert "    if deallocate_inputs:\n        ttnn.deallocate(attention)\n" in kept
    assert "\n    ttnn.deallocate(heads)\n" in kept  # the region's own intermediate is freed as before
    namespace = {}
    exec(compile(kept, "op", "exec"), namespace)  # still a valid function

    class Recorder:
        experimental = type("E", (), {"nlp_concat_heads_decode": staticmethod(lambda a, num_heads: ("h", a))})
        freed = []

        @staticmethod
        def linear(heads, weight, memory_config):
            return ("out", heads)

        @classmethod
        def deallocate(cls, tensor):
            cls.freed.append(tensor)

    namespace["ttnn"] = Recorder
    namespace["op_ttnn"]("attn", "w", None, deallocate_inputs=False)
    assert Recorder.freed == [("h", "attn")]
    namespace["op_ttnn"]("attn", "w", None)  # the module's call: frees its input as the module did
    assert Recorder.freed[1:] == ["attn", ("h", "attn")]


def test_a_region_that_frees_no_input_is_left_as_it_is():
    assert freed.keep_inputs(SOURCE, set()) == SOURCE
    assert freed.keep_inputs(SOURCE, {"o_proj"}) == SOURCE


def test_the_flag_goes_after_defaults_and_before_kwargs():
    source = "def f(x, y=(1, 2), **kwargs):\n    ttnn.deallocate(x)\n    return y\n"
    kept = freed.keep_inputs(source, {"x"})
    assert kept.startswith("def f(x, y=(1, 2), deallocate_inputs=True, **kwargs):\n"), kept
