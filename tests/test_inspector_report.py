"""numtorch.inspector.report: inspect.json is strict JSON, written atomically, read back checked."""

import json

import numpy as np
import pytest

import numtorch as nt
from numtorch.inspector import Inspector, load


def inspected(steps=3):
    nt.manual_seed(0)
    model = nt.Sequential(nt.Linear(4, 6), nt.ReLU(), nt.Linear(6, 2))
    optimizer = nt.SGD(model, lr=0.1)
    inspector = Inspector(model, every=1, echo=False)
    x, y = np.random.default_rng(0).standard_normal((8, 4)).astype(np.float32), np.arange(8) % 2
    for _ in range(steps):
        optimizer.zero_grad()
        output = model.forward(x)
        loss = nt.CrossEntropyCriterion().forward(output, y)
        model.backward(x, nt.CrossEntropyCriterion().backward(output, y))
        optimizer.step()
        inspector.step(loss)
    return inspector


def test_save_and_load_round_trip(tmp_path):
    inspector = inspected()
    path = tmp_path / "inspect.json"
    inspector.save(path)
    assert load(path) == json.loads(json.dumps(inspector.report()))
    assert [p.name for p in tmp_path.iterdir()] == ["inspect.json"]  # no temporary file left


def test_non_finite_numbers_are_null_and_nan_tokens_are_refused(tmp_path):
    inspector = inspected(1)
    inspector.records[0]["modules"]["(0) Linear"]["output"]["max"] = None  # what number() makes of inf
    inspector.model[0].output[0, 0] = np.inf
    inspector.record(2)
    path = tmp_path / "inspect.json"
    inspector.save(path)
    text = path.read_text()
    assert "NaN" not in text and "Infinity" not in text
    assert load(path)["records"][1]["modules"]["(0) Linear"]["output"]["max"] is None
    path.write_text(text.replace('"loss":', '"loss":NaN,"x":', 1))
    with pytest.raises(ValueError, match="not a numtorch inspect report \\(NaN is not JSON"):
        load(path)


@pytest.mark.parametrize("change, message", [
    (lambda r: r.update(format="other"), "expected an object with format 'numtorch inspect'"),
    (lambda r: r.update(version=9), "expected version 1, got 9"),
    (lambda r: r["records"][0].update(step="1"), "records\\[0\\] should have a step and modules"),
    (lambda r: r["records"][0]["modules"]["(1) ReLU"]["output"].update(percentiles=[1]),
     "percentiles should be a list of 7"),
    (lambda r: r["records"][0]["modules"].update({"(9) X": {}}), "names a module '\\(9\\) X'"),
    (lambda r: r["modules"][0].update(kind="elu"), "modules\\[0\\] should have a name, type, kind"),
])
def test_load_refuses_what_is_not_a_report_naming_the_file(tmp_path, change, message):
    report = json.loads(json.dumps(inspected(1).report()))
    change(report)
    path = tmp_path / "inspect.json"
    path.write_text(json.dumps(report))
    with pytest.raises(ValueError, match=f"^{path}: not a numtorch inspect report \\(.*{message}"):
        load(path)


def test_load_refuses_a_truncated_or_binary_file(tmp_path):
    path = tmp_path / "inspect.json"
    inspected(1).save(path)
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(ValueError, match="not a numtorch inspect report"):
        load(path)
    path.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ValueError, match="not a numtorch inspect report"):
        load(path)
