"""numtorch.inspector.statistics: every recorded number equals the one computed by hand from the module's
arrays, for a dense net, a CNN and a branching net with tables."""

import numpy as np
import pytest

import numtorch as nt
from numtorch.inspector import Inspector
from numtorch.inspector.statistics import PERCENTILES, norm

RNG = np.random.default_rng(0)


def one_step(model, x, target, criterion, lr=0.05, needs_input_grad=True):
    """One SGD step with an inspector recording it; returns the record and the weights from before."""
    model.needs_input_grad = needs_input_grad
    inspector = Inspector(model, every=1, echo=False)
    before = [p.copy() for p in nt.module.flatten(model.getParameters())]
    optimizer = nt.SGD(model, lr=lr)
    optimizer.zero_grad()
    output = model.forward(x)
    loss = criterion.forward(output, target)
    model.backward(x, criterion.backward(output, target))
    optimizer.step()
    record = inspector.step(loss)
    assert record["step"] == 1 and record["loss"] == pytest.approx(loss)
    return record, before


def percentile(values, p):
    """Linear interpolation between the sorted values around rank p / 100 * (n - 1)."""
    ordered = np.sort(values)
    rank = p / 100 * (len(ordered) - 1)
    low = int(np.floor(rank))
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (rank - low) * (ordered[high] - ordered[low])


def by_hand_output(arrays, kind):
    """The output statistics, written independently: float64 copies, explicit loops over units."""
    values = np.concatenate([a.astype(np.float64).ravel() for a in arrays])
    units = []
    for a in arrays:
        if a.ndim == 1:
            units.append(bool(np.all(a == 0)))
        for unit in range(a.shape[1] if a.ndim > 1 else 0):
            units.append(bool(np.all(a[:, unit] == 0)))
    expected = {"mean": values.mean(), "std": np.sqrt(np.mean((values - values.mean()) ** 2)),
                "min": values.min(), "max": values.max(), "zeros": np.mean(values == 0),
                "units": len(units), "dead": np.mean(units),
                "percentiles": [percentile(values, p) for p in PERCENTILES]}
    if kind == "relu":
        expected["dead_units"] = [i for i, dead in enumerate(units) if dead]
    if kind == "tanh":
        expected["saturated"] = np.mean(np.abs(values) > 0.99)
    if kind == "sigmoid":
        expected["saturated"] = np.mean((values < 0.01) | (values > 0.99))
    return expected


def leaves(data):
    return [a for entry in data for a in leaves(entry)] if isinstance(data, list) else [data]


def check_module(stats, module, kind, before):
    """Compare one module's record with its arrays."""
    expected = by_hand_output(leaves(module.output), kind)
    output = stats["output"]
    for key, value in expected.items():
        if key in ("dead_units", "units"):
            assert output[key] == value, key
        else:
            assert output[key] == pytest.approx(value, rel=1e-5, abs=1e-6), key
    if kind not in ("tanh", "sigmoid"):
        assert output["saturated"] is None
    if module.gradInput is None:
        assert stats["grad_input_norm"] is None
    else:
        grads = leaves(module.gradInput)
        assert stats["grad_input_norm"] == pytest.approx(
            np.sqrt(sum(np.sum(g.astype(np.float64) ** 2) for g in grads)), rel=1e-5)
    names = [n for n in module._parameters if getattr(module, n) is not None]
    assert sorted(stats["parameters"]) == sorted(names)
    for name, grad_name in zip(module._parameters, module._gradients):
        param = getattr(module, name)
        if param is None:
            continue
        old = before.pop(0)
        numbers = stats["parameters"][name]
        assert numbers["norm"] == pytest.approx(np.linalg.norm(param.astype(np.float64)), rel=1e-5)
        assert numbers["grad_norm"] == pytest.approx(
            np.linalg.norm(getattr(module, grad_name).astype(np.float64)), rel=1e-5)
        ratio = np.linalg.norm(param.astype(np.float64) - old) / np.linalg.norm(old.astype(np.float64))
        assert numbers["update_ratio"] == pytest.approx(ratio, rel=1e-4)


KINDS = {nt.ReLU: "relu", nt.Tanh: "tanh", nt.Sigmoid: "sigmoid"}


def check_all(record, named, before):
    assert list(record["modules"]) == [name for name, _ in named]
    for name, module in named:
        check_module(record["modules"][name], module, KINDS.get(type(module)), before)
    assert before == []


def test_dense_net_statistics_match_the_arrays():
    nt.manual_seed(1)
    l0, r1, l2, t3, l4, s5, l6 = (nt.Linear(12, 16), nt.ReLU(), nt.Linear(16, 16), nt.Tanh(),
                                  nt.Linear(16, 8), nt.Sigmoid(), nt.Linear(8, 4))
    l0.b[:5] = -50  # units 0-4 of (1) ReLU are dead on every sample
    l2.W *= 6       # (3) Tanh saturates in part
    model = nt.Sequential(l0, r1, l2, t3, l4, s5, l6)
    x = RNG.standard_normal((32, 12)).astype(np.float32)
    record, before = one_step(model, x, RNG.integers(0, 4, 32), nt.CrossEntropyCriterion())
    named = [("(0) Linear", l0), ("(1) ReLU", r1), ("(2) Linear", l2), ("(3) Tanh", t3), ("(4) Linear", l4),
             ("(5) Sigmoid", s5), ("(6) Linear", l6)]
    check_all(record, named, before)
    assert record["modules"]["(1) ReLU"]["output"]["dead_units"][:5] == [0, 1, 2, 3, 4]
    assert 0 < record["modules"]["(3) Tanh"]["output"]["saturated"] < 1


def test_cnn_statistics_count_channels_as_units_and_skip_the_data_gradient():
    nt.manual_seed(2)
    conv, relu, pool, flat, linear = (nt.Conv2d(3, 6, 3), nt.ReLU(), nt.MaxPool2d(2), nt.Flatten(),
                                      nt.Linear(6 * 4 * 4, 5))
    conv.b[2] = -100  # channel 2 is dead
    model = nt.Sequential(conv, relu, pool, flat, linear)
    x = RNG.standard_normal((8, 3, 8, 8)).astype(np.float32)
    record, before = one_step(model, x, RNG.integers(0, 5, 8), nt.CrossEntropyCriterion(),
                              needs_input_grad=False)
    named = [("(0) Conv2d", conv), ("(1) ReLU", relu), ("(2) MaxPool2d", pool), ("(3) Flatten", flat),
             ("(4) Linear", linear)]
    check_all(record, named, before)
    assert record["modules"]["(0) Conv2d"]["grad_input_norm"] is None  # fit's first layer: no gradInput
    relu_output = record["modules"]["(1) ReLU"]["output"]
    assert relu_output["units"] == 6 and 2 in relu_output["dead_units"]


def test_branching_net_with_tables_names_modules_by_path():
    nt.manual_seed(3)
    a0, a1 = nt.Linear(6, 5), nt.ReLU()
    b0, b1 = nt.Linear(6, 5), nt.Tanh()
    inner = nt.Sequential(b0, b1)
    identity, add, head = nt.Identity(), nt.CAddTable(), nt.Linear(5, 3)
    model = nt.Sequential(nt.ConcatTable(nt.Sequential(a0, a1), nt.Sequential(inner)), identity, add, head)
    x = RNG.standard_normal((10, 6)).astype(np.float32)
    record, before = one_step(model, x, RNG.integers(0, 3, 10), nt.CrossEntropyCriterion())
    named = [("(0).(0).(0) Linear", a0), ("(0).(0).(1) ReLU", a1), ("(0).(1).(0).(0) Linear", b0),
             ("(0).(1).(0).(1) Tanh", b1), ("(1) Identity", identity), ("(2) CAddTable", add),
             ("(3) Linear", head)]
    check_all(record, named, before)
    table_output = record["modules"]["(1) Identity"]["output"]
    assert table_output["units"] == 10  # two entries of 5 units
    assert isinstance(add.gradInput, list) and record["modules"]["(2) CAddTable"]["grad_input_norm"] > 0


def test_a_single_module_is_named_by_its_class_and_a_module_that_did_not_run_has_no_output():
    nt.manual_seed(4)
    layer = nt.Linear(3, 2)
    inspector = Inspector(layer, every=1, echo=False)
    record = inspector.step()
    assert list(record["modules"]) == ["Linear"]
    assert record["modules"]["Linear"]["output"] is None
    assert record["modules"]["Linear"]["grad_input_norm"] is None


def test_norm_survives_float32_overflow_of_the_sum_of_squares():
    big = np.full(1000, 1e30, np.float32)
    assert norm([big]) == pytest.approx(1e30 * np.sqrt(1000), rel=1e-6)


def test_non_finite_numbers_are_recorded_as_none():
    layer = nt.Identity()
    layer.forward(np.array([[1.0, np.inf]], np.float32))
    inspector = Inspector(layer, every=1, echo=False)
    output = inspector.record(1)["modules"]["Identity"]["output"]
    assert output["max"] is None and output["mean"] is None and output["percentiles"] == [None] * 7
    assert output["min"] == 1.0


def test_percentiles_of_a_large_output_come_from_a_fixed_sample_close_to_the_exact_ones():
    from numtorch.inspector.statistics import PERCENTILE_SAMPLE, output_statistics

    values = np.random.default_rng(1).standard_normal((4, 16, 20, 20)).astype(np.float32)
    assert values.size > PERCENTILE_SAMPLE
    record = output_statistics(values)
    exact = np.percentile(values, PERCENTILES)
    np.testing.assert_allclose(record["percentiles"], exact, atol=0.05)
    assert record["percentiles"] == output_statistics(values)["percentiles"]
    assert record["min"] == float(values.min()) and record["max"] == float(values.max())
