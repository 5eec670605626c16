"""summary: a row per module of any nesting, output shapes from one forward, modes restored."""

import numpy as np
import pytest

import numtorch as nt
from numtorch.containers import walk
from numtorch.summary import summary, summary_rows


def residual_net():
    nt.manual_seed(0)
    body = nt.Sequential(nt.Conv2d(4, 4, 3), nt.BatchNormalization(n_features=4), nt.ReLU(),
                         nt.Conv2d(4, 4, 3))
    block = nt.Sequential(nt.ConcatTable(body, nt.Identity()), nt.CAddTable(), nt.ReLU())
    return nt.Sequential(nt.Conv2d(1, 4, 3), block, nt.Concat(1, nt.Conv2d(4, 2, 1), nt.MaxPool2d(3, 1, 1)),
                         nt.GlobalAvgPool2d(), nt.ConcatTable(nt.Linear(6, 3), nt.Identity()))


def test_a_row_per_module_indented_by_depth_with_output_shapes_and_counts():
    rows = summary_rows(residual_net(), (1, 8, 8))
    assert len(rows) == len(list(walk(residual_net())))
    names = [name for name, _, _ in rows]
    assert names[:5] == ["Sequential", "  (0) Conv2d(1 -> 4, kernel_size=(3, 3), padding=(1, 1))",
                         "  (1) Sequential", "    (0) ConcatTable", "      (0) Sequential"]
    assert "  (2) Concat(dim=1)" in names and "    (1) CAddTable" in names
    by_name = {name.strip(): (output, count) for name, output, count in rows}
    assert by_name["(0) ConcatTable"] == ("[(N, 4, 8, 8), (N, 4, 8, 8)]", None)
    assert by_name["(2) Concat(dim=1)"] == ("(N, 6, 8, 8)", None)
    assert by_name["(3) GlobalAvgPool2d"] == ("(N, 6)", 0)
    assert by_name["(0) Linear(6 -> 3)"] == ("(N, 3)", 21)
    assert rows[0] == ("Sequential", "[(N, 3), (N, 6)]", None)


def test_text_ends_with_the_total_and_counts_every_parameter_once():
    net = residual_net()
    text = summary(net, (1, 8, 8))
    total = sum(p.size for _, m in walk(net) if not isinstance(m, nt.Container) for p in m.getParameters())
    assert text.splitlines()[-1] == f"total: {total:,} parameters" == "total: 367 parameters"
    assert text.splitlines()[0].split() == ["layer", "output", "parameters"]


def test_modes_are_restored_and_no_shape_needs_no_forward():
    net = residual_net()
    net[1][0][0][1].evaluate()
    before = [m.training for _, m in walk(net)]
    summary(net, (1, 8, 8))
    assert [m.training for _, m in walk(net)] == before
    fresh = residual_net()
    assert all(output == "" for _, output, _ in summary_rows(fresh)) and fresh.output is None


@pytest.mark.parametrize("shape,error,message", [
    ("1,8,8", TypeError, "summary: expected input_shape as a tuple of ints, got str"),
    ((1, 0, 8), ValueError, "summary: expected every input_shape size >= 1, got 0"),
    ((2, 8, 8), ValueError, r"Conv2d\(1 -> 4.*expected input \(N, 1, \*, \*\), got \(1, 2, 8, 8\)"),
])
def test_bad_input_shapes(shape, error, message):
    with pytest.raises(error, match=message):
        summary(residual_net(), shape)
    with pytest.raises(TypeError, match="summary: expected a numtorch Module, got list"):
        summary([nt.ReLU()])


def test_summary_forward_runs_in_the_parameters_dtype():
    net = nt.Sequential(nt.Linear(3, 2)).astype(np.float64)
    summary(net, (3,))
    assert net.output.dtype == np.float64
