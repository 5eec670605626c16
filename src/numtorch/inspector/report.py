"""``inspect.json``: an inspector's report written as strict JSON and read back, checked.

The report is ``Inspector.report()``: ``format``, ``version``, ``every``,
``percentiles``, ``modules`` (``name``, ``type``, ``kind``, ``parameters``:
name -> number of dimensions), ``records`` (``step``, ``loss``, ``modules``:
name -> ``statistics.module_statistics``) and the ``warnings`` given live.
Numbers that are not finite are ``null``; ``load`` refuses ``NaN`` tokens and
anything else that is not a report, in one sentence naming the file.
"""

import json

from numtorch.inspector.statistics import PERCENTILES
from numtorch.io.archive import atomic_write

FORMAT = "numtorch inspect"
VERSION = 1
KINDS = (None, "relu", "tanh", "sigmoid")
MAX_BYTES = 1 << 30


def save(report, path):
    """Write ``report`` to ``path`` as strict JSON (no NaN or Infinity tokens), atomically."""
    text = json.dumps(report, allow_nan=False, separators=(",", ":"))
    atomic_write(path, lambda file: file.write(text.encode()))


class Malformed(ValueError):
    """A report that is not what ``save`` writes (raised by the checks on load)."""


def is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def expect(condition, what):
    if not condition:
        raise Malformed(what)


def check_optional_number(value, what):
    expect(value is None or is_number(value), f"{what} should be a number or null, got {value!r:.40}")


def check_output(output, where):
    if output is None:
        return
    expect(isinstance(output, dict), f"{where}.output should be an object")
    for key in ("mean", "std", "min", "max", "saturated"):
        check_optional_number(output.get(key), f"{where}.output.{key}")
    for key in ("zeros", "dead"):
        expect(is_number(output.get(key)), f"{where}.output.{key} should be a number")
    expect(isinstance(output.get("units"), int), f"{where}.output.units should be an integer")
    percentiles = output.get("percentiles")
    expect(isinstance(percentiles, list) and len(percentiles) == len(PERCENTILES),
           f"{where}.output.percentiles should be a list of {len(PERCENTILES)}")
    for value in percentiles:
        check_optional_number(value, f"{where}.output.percentiles")
    if "dead_units" in output:
        units = output["dead_units"]
        expect(isinstance(units, list) and all(isinstance(u, int) and not isinstance(u, bool) for u in units),
               f"{where}.output.dead_units should be a list of integers")


def check_module_record(stats, where):
    expect(isinstance(stats, dict), f"{where} should be an object")
    check_output(stats.get("output"), where)
    check_optional_number(stats.get("grad_input_norm"), f"{where}.grad_input_norm")
    parameters = stats.get("parameters")
    expect(isinstance(parameters, dict), f"{where}.parameters should be an object")
    for name, values in parameters.items():
        expect(isinstance(values, dict), f"{where}.parameters.{name} should be an object")
        for key in ("norm", "grad_norm", "update_ratio"):
            check_optional_number(values.get(key), f"{where}.parameters.{name}.{key}")


def check_report(report):
    expect(isinstance(report, dict) and report.get("format") == FORMAT,
           f"expected an object with format {FORMAT!r}")
    expect(report.get("version") == VERSION, f"expected version {VERSION}, got {report.get('version')!r}")
    expect(isinstance(report.get("every"), int) and report["every"] >= 1, "every should be an integer >= 1")
    modules = report.get("modules")
    expect(isinstance(modules, list), "modules should be a list")
    names = set()
    for i, meta in enumerate(modules):
        expect(isinstance(meta, dict) and isinstance(meta.get("name"), str)
               and isinstance(meta.get("type"), str) and meta.get("kind") in KINDS
               and isinstance(meta.get("parameters"), dict)
               and all(isinstance(n, int) for n in meta["parameters"].values()),
               f"modules[{i}] should have a name, type, kind and parameters")
        names.add(meta["name"])
    records = report.get("records")
    expect(isinstance(records, list), "records should be a list")
    for i, record in enumerate(records):
        expect(isinstance(record, dict) and isinstance(record.get("step"), int)
               and isinstance(record.get("modules"), dict), f"records[{i}] should have a step and modules")
        check_optional_number(record.get("loss"), f"records[{i}].loss")
        for name, stats in record["modules"].items():
            expect(name in names, f"records[{i}] names a module {name!r:.60} that modules does not list")
            check_module_record(stats, f"records[{i}].modules[{name!r:.60}]")


def reject_constant(token):
    raise Malformed(f"{token} is not JSON (strict JSON has no {token})")


def load(path):
    """The report in ``path``, checked; ``ValueError`` naming the file if it is not one."""
    with open(path, "rb") as file:
        data = file.read(MAX_BYTES + 1)
    if len(data) > MAX_BYTES:
        raise ValueError(f"{path}: larger than {MAX_BYTES >> 20} MiB, not an inspect report")
    try:
        report = json.loads(data, parse_constant=reject_constant)
        check_report(report)
    except (Malformed, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{path}: not a numtorch inspect report ({error})") from None
    except RecursionError:
        raise ValueError(f"{path}: not a numtorch inspect report (nested too deeply)") from None
    return report
