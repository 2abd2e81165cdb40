"""Data-flow extraction of a region into `<op>_ttnn` on tricky regions (issue 12, acceptance 2).

Each case checks the parameters and returns, and where the region can run, that the module with the
region replaced by the extraction's call computes what the original computes.
"""

import pytest

from pipeline.scaffold.region import ExtractError

REASSIGNED = """
import ttnn

def forward(a, b):
    scale = abs(b) + 1
    x = ttnn.add(a, b)
    x = ttnn.mul(x, scale)
    x = ttnn.relu(x)
    return x + a
"""


def test_reassigned_names_are_one_return_and_inputs_are_read_before_written(extract_region, run_both):
    e = extract_region(REASSIGNED, "x = ttnn.add(", "x = ttnn.relu(x)")
    assert e.parameter_names == ["a", "b", "scale"]
    assert e.returns == ("x",)
    assert e.call == "x = op_ttnn(a, b, scale)"
    assert run_both(REASSIGNED, e, "forward", 2, -7) == [2, 2]
    assert run_both(REASSIGNED, e, "forward", 4, 1) == [14, 14]


def test_a_reassigned_input_is_both_parameter_and_return(extract_region, run_both):
    source = """
    import ttnn

    def forward(a, b):
        a = ttnn.relu(a)
        c = ttnn.add(a, b)
        return a * c
    """
    e = extract_region(source, "a = ttnn.relu(a)", "c = ttnn.add")
    assert e.parameter_names == ["a", "b"]
    assert e.returns == ("a", "c")
    assert run_both(source, e, "forward", -2, 5) == [0, 0]
    assert run_both(source, e, "forward", 3, 5) == [24, 24]


def test_augmented_assignment_reads_then_writes(extract_region, run_both):
    source = """
    import ttnn

    def forward(acc, xs):
        total = acc
        total += ttnn.relu(xs[0])
        total *= 2
        return total
    """
    e = extract_region(source, "total += ", "total *= 2")
    assert e.parameter_names == ["xs", "total"]
    assert e.returns == ("total",)
    assert run_both(source, e, "forward", 1, [4]) == [10, 10]


def test_tuple_unpacking_returns_in_the_order_later_code_reads(extract_region, run_both):
    source = """
    import ttnn

    def route(logits, k):
        weights, indices = ttnn.topk(logits, k)
        scores = [w * 2 for w in weights]
        return indices, scores
    """
    e = extract_region(source, "weights, indices =", "scores =")
    assert e.parameter_names == ["logits", "k"]
    assert e.returns == ("indices", "scores")
    assert e.call == "indices, scores = op_ttnn(logits, k)"
    assert run_both(source, e, "route", [1, 5, 3], 2) == [([1, 2], [10, 6])] * 2


def test_names_used_only_inside_the_region_are_neither_parameters_nor_returns(extract_region, run_both):
    source = """
    import ttnn

    def forward(x, y):
        tmp = ttnn.add(x, y)
        doubled = [v * 2 for v in (tmp, tmp)]
        out = ttnn.mul(doubled[0], (lambda z: z + 1)(tmp))
        ttnn.deallocate(tmp)
        return out
    """
    e = extract_region(source, "tmp = ", "ttnn.deallocate(tmp)")
    assert e.parameter_names == ["x", "y"]
    assert e.returns == ("out",)
    assert e.deallocated == ()  # tmp is the region's own tensor
    assert run_both(source, e, "forward", 1, 2) == [24, 24]


ATTRIBUTES = """
import ttnn

class Block:
    def __init__(self):
        self.weight = 3
        self.config = {"DECODE_MEMCFG": 10, "eps": 1}
        self.biases = [5, 7]
        self.args = type("Args", (), {"dim": 100})()

    def __call__(self, x):
        y = ttnn.mul(x, self.weight)
        y = ttnn.add(y, self.config["DECODE_MEMCFG"] + self.biases[1])
        y = ttnn.add(y, self.args.dim + self.weight)
        return y
"""


def test_attribute_and_subscript_reads_become_readable_parameters(extract_region):
    e = extract_region(ATTRIBUTES, "y = ttnn.mul(", "y = ttnn.add(y, self.args")
    assert e.parameter_names == ["x", "weight", "decode_memcfg", "biases_1", "args"]
    assert [p.argument for p in e.parameters] == [
        "x",
        "self.weight",
        'self.config["DECODE_MEMCFG"]',
        "self.biases[1]",
        "self.args",
    ]
    assert e.returns == ("y",)
    assert "self" not in e.source
    assert "y = ttnn.add(y, args.dim + weight)" in e.source


def test_attribute_extraction_runs_like_the_method(extract_region, run_both):
    source = ATTRIBUTES + "\n\ndef call_block(x):\n    return Block()(x)\n"
    e = extract_region(source, "y = ttnn.mul(", "y = ttnn.add(y, self.args")
    assert run_both(source, e, "call_block", 2) == [126, 126]


def test_subscripts_of_an_attribute_the_region_stores_into_stay_subscripts(extract_region):
    source = """
    import ttnn

    class Cache:
        def update(self, x):
            self.slots[0] = ttnn.relu(x)
            y = ttnn.add(self.slots[0], self.slots[1])
            return y
    """
    e = extract_region(source, "self.slots[0] =", "y = ttnn.add")
    assert e.parameter_names == ["x", "slots"]
    assert "slots[0] = ttnn.relu(x)" in e.source


def test_a_region_spanning_an_if_keeps_both_branches(extract_region, run_both):
    source = """
    import ttnn

    def forward(x, big, small):
        y = x
        if x > 10:
            y = ttnn.mul(x, big)
        elif x < 0:
            z = ttnn.relu(x)
            y = ttnn.add(z, small)
        w = ttnn.add(y, 1)
        return w
    """
    e = extract_region(source, "if x > 10:", "w = ttnn.add")
    # y is bound on two of three paths: the third keeps the value from before the region
    assert e.parameter_names == ["x", "big", "small", "y"]
    assert e.returns == ("w",)
    for x in (20, -5, 3):
        original, patched = run_both(source, e, "forward", x, 2, 7)
        assert original == patched


def test_a_name_bound_on_some_paths_only_is_passed_in_and_returned(extract_region, run_both):
    source = """
    import ttnn

    def forward(x):
        y = 1
        if x > 0:
            y = ttnn.relu(x)
        return y
    """
    e = extract_region(source, "if x > 0:", "y = ttnn.relu(x)")
    assert e.parameter_names == ["x", "y"]
    assert e.returns == ("y",)
    assert run_both(source, e, "forward", -3) == [1, 1]
    assert run_both(source, e, "forward", 4) == [4, 4]


def test_a_region_that_deallocates_an_input_reports_it(extract_region, run_both):
    source = """
    import ttnn

    def forward(x, h):
        y = ttnn.add(x, h)
        ttnn.deallocate(x)
        h = ttnn.relu(h)
        ttnn.deallocate(h)
        return y
    """
    e = extract_region(source, "y = ttnn.add", "ttnn.deallocate(h)")
    assert e.parameter_names == ["x", "h"]
    assert e.returns == ("y",)
    assert e.deallocated == ("x",)  # h is rebound before its deallocate: not the caller's tensor
    assert run_both(source, e, "forward", 2, 3) == [5, 5]


def test_a_loop_inside_the_region_may_break(extract_region, run_both):
    source = """
    import ttnn

    def forward(xs):
        total = 0
        for x in xs:
            if x < 0:
                break
            total = ttnn.add(total, x)
        return total
    """
    e = extract_region(source, "total = 0", "total = ttnn.add")
    assert e.parameter_names == ["xs"]
    assert e.returns == ("total",)
    assert run_both(source, e, "forward", [1, 2, -1, 5]) == [3, 3]


def test_pure_definitions_are_pulled_in_and_conditional_ones_stay_parameters(extract_region):
    source = """
    import ttnn

    def forward(x, args):
        memory_config = ttnn.L1_MEMORY_CONFIG
        tokens = x.shape[-2] * args.users
        chosen = ttnn.L1_MEMORY_CONFIG if tokens <= 32 else None
        y = ttnn.add(x, tokens, memory_config=memory_config, other=chosen)
        return y
    """
    e = extract_region(source, "y = ttnn.add", "y = ttnn.add")
    assert e.parameter_names == ["x", "args", "chosen"]
    assert "    memory_config = ttnn.L1_MEMORY_CONFIG\n    tokens = x.shape[-2] * args.users\n" in e.source


@pytest.mark.parametrize(
    "body, start, end, message",
    [
        ("y = ttnn.relu(x)\nif y:\n    return y\nz = y", "y = ", "return y", "returns from forward"),
        ("y = ttnn.relu(x)\nyield y", "y = ", "yield y", "yields inside forward"),
        (
            "for i in x:\n    y = ttnn.relu(i)\n    if y:\n        break",
            "y = ",
            "break",
            "`break` leaves a loop",
        ),
        ("for i in x:\n    y = ttnn.relu(i)\n    continue", "y = ", "continue", "`continue` leaves a loop"),
        (
            "x.cache = ttnn.relu(x)\ny = x.cache",
            "x.cache = ttnn",
            "x.cache = ttnn",
            "assigns x.cache, which later",
        ),
        ("if x:\n    y = ttnn.relu(x)\nz = y", "y = ttnn", "z = y", "part of the `if` on line 4"),
    ],
)
def test_regions_that_cannot_become_a_function_are_refused(extract_region, body, start, end, message):
    source = "import ttnn\n\ndef forward(x):\n" + "".join(f"    {line}\n" for line in body.splitlines())
    with pytest.raises(ExtractError, match=message) as error:
        extract_region(source, start, end)
    assert "\n" not in str(error.value) and str(error.value).startswith("mod.py")


def test_an_attribute_of_self_that_another_method_reads_is_refused(extract_region):
    source = """
    import ttnn

    class Block:
        def forward(self, x):
            self.last = ttnn.relu(x)
            return x

        def report(self):
            return self.last
    """
    with pytest.raises(ExtractError, match="assigns self.last, which later code reads"):
        extract_region(source, "self.last =", "self.last =")
    unread = source.replace("return self.last", "return None")
    assert extract_region(unread, "self.last =", "self.last =").returns == ()


def test_a_config_computed_from_the_callers_values_becomes_a_parameter(extract_region):
    source = """
    import ttnn

    from .config import memory_for


    class Norm:
        def __call__(self, x, mode):
            return ttnn.rms_norm(x, epsilon=self.eps, weight=self.weight, memory_config=memory_for(mode),
                                 compute_kernel_config=ttnn.Config(fidelity=2))
    """
    e = extract_region(source, "return ttnn.rms_norm(", "return ttnn.rms_norm(")
    assert e.parameter_names == ["x", "eps", "weight", "memory_config"]
    assert e.call == "return op_ttnn(x, self.eps, self.weight, memory_for(mode))"
    assert "memory_config=memory_config" in e.source and "ttnn.Config(fidelity=2)" in e.source
    assert e.imports == ("import ttnn",)  # memory_for stays at the call site
    # The profiler lists the op's tensors only: x, then weight (epsilon and the configs are settings).
    assert e.first_call_arguments == ("x", "weight")


PASSED_WHOLE = """
import ttnn

def mlp(x, weights, cfg):
    y = ttnn.linear(x, weights.w1, bias=weights.b1)
    return inner(y, settings=cfg)

def inner(y, settings):
    return ttnn.mul(y, settings.scale)

def forward(x, weights, args, other):
    h = ttnn.relu(x, memory_config=args.memory)
    out = mlp(h, weights, args)
    out = ttnn.add(out, other.bias)
    ttnn.deallocate(h)
    return out
"""


def test_a_container_passed_whole_to_a_module_function_lists_the_fields_read_through_it(extract_region):
    e = extract_region(PASSED_WHOLE, "h = ttnn.relu(", "ttnn.deallocate(h)")
    assert e.parameter_names == ["x", "weights", "args", "bias"]  # `other` is only read for a field
    assert e.passed == (("weights", ("w1", "b1")), ("args", ("memory", "scale")))


@pytest.mark.parametrize(
    "old, new",
    [
        ("ttnn.linear(x, weights.w1,", "ttnn.linear(x, weights,"),  # bare to a ttnn op in the callee
        ("return ttnn.mul(y, settings.scale)", "settings.scale = 2"),  # the callee stores a field
        ("out = mlp(h, weights, args)", "out = mlp(h, weights, args)\n    print(args)"),  # not followed
        ("out = mlp(h, weights, args)", "out = mlp(h, weights, *args)"),  # no parameter to bind
    ],
)
def test_a_container_used_any_other_way_is_not_split_into_fields(extract_region, old, new):
    assert old in PASSED_WHOLE
    e = extract_region(PASSED_WHOLE.replace(old, new), "h = ttnn.relu(", "ttnn.deallocate(h)")
    assert len(e.passed) == 1


def test_a_container_passed_through_a_recursive_helper_or_a_static_method_keeps_its_fields(extract_region):
    source = """
    import ttnn

    class Block:
        @staticmethod
        def scale(x, cfg):
            return ttnn.mul(x, cfg.alpha)

        def deep(self, x, cfg, depth):
            x = ttnn.add(x, cfg.beta)
            return self.deep(x, cfg, depth - 1) if depth else x

        def __call__(self, x, args):
            y = self.scale(x, args)
            y = self.deep(y, args, 2)
            return y
    """
    e = extract_region(source, "y = self.scale(", "y = self.deep(")
    assert e.passed == (("args", ("alpha", "beta")),)
