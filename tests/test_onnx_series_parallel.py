"""A graph of modules into containers: chains, residual blocks, Inception joins, several outputs, and
graphs that are not series-parallel."""

import numpy as np
import pytest

import numtorch as nt
from numtorch.io import architecture
from numtorch.onnx.series_parallel import NotSeriesParallel, nest


def outline(module):
    """The tree of class names: ``["Sequential", [...children]]`` for a container, the name for a layer."""
    if isinstance(module, nt.Container):
        return [type(module).__name__, [outline(child) for child in module.modules]]
    return type(module).__name__


def test_chain():
    producers = {"a": (nt.Linear(3, 4), ["x"]), "b": (nt.ReLU(), ["a"]), "y": (nt.Linear(4, 2), ["b"])}
    assert outline(nest("x", "y", producers)) == ["Sequential", ["Linear", "ReLU", "Linear"]]


def test_residual_block_and_its_skip():
    producers = {"c": (nt.Conv2d(2, 2, 3), ["x"]), "r": (nt.ReLU(), ["c"]), "d": (nt.Conv2d(2, 2, 3), ["r"]),
                 "s": (nt.CAddTable(), ["d", "x"]), "y": (nt.ReLU(), ["s"])}
    model = nest("x", "y", producers)
    assert outline(model) == ["Sequential", [["ConcatTable", [["Sequential", ["Conv2d", "ReLU", "Conv2d"]],
                                                              "Identity"]], "CAddTable", "ReLU"]]
    expected = nt.Sequential(nt.ConcatTable(nt.Sequential(nt.Conv2d(2, 2, 3), nt.ReLU(), nt.Conv2d(2, 2, 3)),
                                            nt.Identity()), nt.CAddTable(), nt.ReLU())
    assert architecture(model) == architecture(expected)


def test_branch_order_follows_the_join_inputs():
    producers = {"a": (nt.Tanh(), ["x"]), "y": (nt.CAddTable(), ["x", "a"])}
    assert outline(nest("x", "y", producers)) == ["Sequential", [["ConcatTable", ["Identity", "Tanh"]],
                                                                 "CAddTable"]]


def test_nested_residuals_and_a_join_inside_a_branch():
    """Block 2's body holds a residual of its own; the fork of the outer join is block 1's output."""
    producers = {
        "b1": (nt.Linear(4, 4), ["x"]), "s1": (nt.CAddTable(), ["b1", "x"]),
        "inner": (nt.Tanh(), ["s1"]), "s_in": (nt.CAddTable(), ["inner", "s1"]),
        "b2": (nt.Linear(4, 4), ["s_in"]),
        "y": (nt.CAddTable(), ["b2", "s1"]),
    }
    model = nest("x", "y", producers)
    assert outline(model) == ["Sequential", [
        ["ConcatTable", ["Linear", "Identity"]], "CAddTable",
        ["ConcatTable", [["Sequential", [["ConcatTable", ["Tanh", "Identity"]], "CAddTable", "Linear"]],
                         "Identity"]], "CAddTable"]]
    x = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
    b1, b2 = producers["b1"][0], producers["b2"][0]
    s1 = b1.forward(x) + x
    inner = np.tanh(s1) + s1
    np.testing.assert_allclose(model.forward(x), b2.forward(inner) + s1, rtol=1e-6)


def test_join_becomes_concat():
    producers = {"a": (nt.Conv2d(2, 1, 1), ["x"]), "b": (nt.MaxPool2d(3, 1, 1), ["x"]),
                 "y": (nt.JoinTable(1), ["a", "b", "x"])}
    model = nest("x", "y", producers)
    assert outline(model) == ["Sequential", [["Concat", ["Conv2d", "MaxPool2d", "Identity"]]]]
    assert model[0].dim == 1


def test_the_same_value_twice_and_a_value_with_its_successor():
    producers = {"y": (nt.CMulTable(), ["x", "x"])}
    assert outline(nest("x", "y", producers)) == ["Sequential", [["ConcatTable", ["Identity", "Identity"]],
                                                                 "CMulTable"]]
    producers = {"a": (nt.ReLU(), ["x"]), "b": (nt.Tanh(), ["a"]), "y": (nt.CAddTable(), ["a", "b"])}
    assert outline(nest("x", "y", producers)) == [
        "Sequential", ["ReLU", ["ConcatTable", ["Identity", "Tanh"]], "CAddTable"]]


def test_several_outputs_are_a_table():
    producers = {"a": (nt.ReLU(), ["x"]), "y1": (nt.Tanh(), ["a"]), "y2": (nt.Sigmoid(), ["a"])}
    model = nest("x", ["y1", "y2", "a"], producers)
    assert outline(model) == ["Sequential", ["ReLU", ["ConcatTable", ["Tanh", "Sigmoid", "Identity"]]]]
    assert outline(nest("x", "x", {})) == ["Sequential", ["Identity"]]


def test_long_chain_needs_no_deep_recursion():
    producers = {f"v{i + 1}": (nt.ReLU(), [f"v{i}"]) for i in range(3000)}
    assert len(nest("v0", "v3000", producers)) == 3000


def test_a_graph_that_is_not_series_parallel_is_refused_by_name():
    """a feeds the join of (a, b) and, again, the join after it: no container tree holds a once."""
    producers = {"a": (nt.ReLU(), ["x"]), "b": (nt.Tanh(), ["x"]), "c": (nt.CAddTable(), ["a", "b"]),
                 "y": (nt.CAddTable(), ["c", "a"])}
    with pytest.raises(NotSeriesParallel, match="the value a is read by two branches"):
        nest("x", "y", producers, describe=lambda value: f"the value {value}")
