"""Plain-language warnings read from the inspector's records, with the numbers that raised them.

Every rule reads only the records (``statistics.module_statistics`` per
module, per recorded step), so a finished run's ``inspect.json`` gives the
same warnings again (``numtorch inspect RUN_DIR``). ``diagnose`` returns what
the newest record adds; each warning has a ``key`` and is given once.

A condition must hold at ``PATIENCE`` records in a row (one bad batch is not a
trend), except an update larger than the weights themselves, which is
reported at once. The rules:

- dead units (ReLU): at least ``DEAD_SHARE`` of a layer's units output 0 on
  every sample of every batch of those records (not a half: in the healthy CNN
  preset the first dense layer after Conv/ReLU/MaxPool runs at 43-54% dead,
  since its inputs are all >= 0 and a unit whose weights lean negative is off
  for every image, and it still learns MNIST to 98.5%);
- saturation (Tanh, Sigmoid): at least ``SATURATED_SHARE`` of the outputs
  where the curve is flat (``statistics.SATURATION``);
- vanishing or exploding gradients across depth: the relative gradient
  |dL/dW| / |W| of the layer nearest the input and of the layer nearest the
  output differ by ``DEPTH_ORDERS`` orders of magnitude or more;
- update/weight ratio |dW| / |W| of a step far from the ~1e-3 of a healthy run:
  above ``UPDATE_HIGH`` (``UPDATE_EXTREME``, half the weights in one step: at
  once) or below ``UPDATE_LOW`` (then said to follow from dead units or
  vanishing gradients, when those hold too: a larger learning rate would not
  help).
  Only weights (parameters of two or more dimensions) count: a bias starts
  near 0, so its ratio says little.
"""

import math
from collections import namedtuple

PATIENCE = 3
DEAD_SHARE = 0.6
SATURATED_SHARE = 0.2
DEPTH_ORDERS = 3
UPDATE_HIGH = 0.1
UPDATE_EXTREME = 0.5
UPDATE_LOW = 1e-5

Diagnosis = namedtuple("Diagnosis", ["key", "step", "text"])
Diagnosis.__doc__ = """One warning: ``key`` (rule and module; given once), ``step`` (the record that
raised it) and ``text``, a sentence with the numbers and a fix to try."""


def outputs(records, name):
    """The ``output`` records of module ``name``, oldest first."""
    return [record["modules"].get(name, {}).get("output") for record in records]


def streak_start(records, holds):
    """The step of the first record of the run of records, ending with the newest, where ``holds(record)``."""
    start = records[-1]["step"]
    for record in reversed(records):
        if not holds(record):
            break
        start = record["step"]
    return start


def dead_units(modules, records):
    if len(records) < PATIENCE:
        return
    for meta in modules:
        if meta["kind"] != "relu":
            continue
        name = meta["name"]
        recent = outputs(records[-PATIENCE:], name)
        if any(output is None or "dead_units" not in output for output in recent):
            continue
        dead = set(recent[0]["dead_units"]).intersection(*(output["dead_units"] for output in recent[1:]))
        units = recent[-1]["units"]
        if len(dead) < DEAD_SHARE * units:
            continue

        def all_dead(record, name=name, dead=dead):
            output = record["modules"].get(name, {}).get("output")
            return output is not None and dead <= set(output.get("dead_units", ()))

        since = streak_start(records, all_dead)
        yield (("dead", name), f"{name}: {len(dead) / units:.0%} of its {units} units output 0 on every "
               f"sample since step {since} (dead ReLUs: no gradient reaches them, so they do not recover); "
               "try a smaller learning rate, or LeakyReLU")


def saturation(modules, records):
    if len(records) < PATIENCE:
        return
    for meta in modules:
        if meta["kind"] not in ("tanh", "sigmoid"):
            continue
        name = meta["name"]

        def saturated(record, name=name):
            output = record["modules"].get(name, {}).get("output")
            return output is not None and output["saturated"] is not None and \
                output["saturated"] >= SATURATED_SHARE

        if not all(saturated(record) for record in records[-PATIENCE:]):
            continue
        share = records[-1]["modules"][name]["output"]["saturated"]
        flat = "|tanh| above 0.99" if meta["kind"] == "tanh" else "sigmoid within 0.01 of 0 or 1"
        yield (("saturated", name), f"{name}: {share:.0%} of its outputs are saturated ({flat}, where "
               f"almost no gradient passes) since step {streak_start(records, saturated)}; scale the "
               "inputs (to mean 0, spread 1), use a smaller learning rate, or ReLU")


def weight_name(meta):
    """The parameter that stands for a layer's weights: the first of the most dimensions."""
    if not meta["parameters"]:
        return None
    return max(meta["parameters"], key=lambda name: meta["parameters"][name])


def relative_gradients(modules, record):
    """``[(module name, |dL/dW| / |W|)]`` of the layers with weights, in forward order."""
    pairs = []
    for meta in modules:
        weight = weight_name(meta)
        stats = record["modules"].get(meta["name"], {}).get("parameters", {}).get(weight)
        if weight is None or stats is None or stats["grad_norm"] is None or not stats["norm"]:
            continue
        pairs.append((meta["name"], stats["grad_norm"] / stats["norm"]))
    return pairs


def depth_ratio(modules, record):
    """``(first, last, ratio)``: relative gradient nearest the input over nearest the output, or None."""
    pairs = relative_gradients(modules, record)
    if len(pairs) < 2 or pairs[-1][1] == 0:
        return None
    (first, near_input), (last, near_output) = pairs[0], pairs[-1]
    return first, last, near_input, near_output


def gradient_depth(modules, records):
    for direction in ("vanish", "explode"):

        def holds(record, direction=direction):
            found = depth_ratio(modules, record)
            if found is None:
                return False
            ratio = found[2] / found[3]
            return ratio <= 10.0**-DEPTH_ORDERS if direction == "vanish" else ratio >= 10.0**DEPTH_ORDERS

        if len(records) < PATIENCE or not all(holds(record) for record in records[-PATIENCE:]):
            continue
        first, last, near_input, near_output = depth_ratio(modules, records[-1])
        since = streak_start(records, holds)
        if direction == "vanish":
            orders = "all" if near_input == 0 else f"{math.log10(near_output / near_input):.0f}"
            yield (("vanishing",), f"gradients vanish with depth: |dL/dW| / |W| is {near_input:.1e} at "
                   f"{first} but {near_output:.1e} at {last}, {orders} orders of magnitude smaller near "
                   f"the input, since step {since}: the first layers barely learn; try fewer layers, ReLU "
                   "instead of Sigmoid or Tanh, or BatchNormalization between layers")
        else:
            orders = f"{math.log10(near_input / near_output):.0f}"
            yield (("exploding",), f"gradients explode with depth: |dL/dW| / |W| is {near_input:.1e} at "
                   f"{first} but {near_output:.1e} at {last}, {orders} orders of magnitude larger near "
                   f"the input, since step {since}; try a smaller learning rate, clip_norm, or "
                   "BatchNormalization between layers")


def update_ratios(modules, record):
    """``[(module name, weight name, |dW| / |W|)]`` of the weights (2 or more dimensions) in ``record``."""
    ratios = []
    for meta in modules:
        for weight, ndim in meta["parameters"].items():
            stats = record["modules"].get(meta["name"], {}).get("parameters", {}).get(weight)
            if ndim >= 2 and stats is not None and stats["update_ratio"] is not None:
                ratios.append((meta["name"], weight, stats["update_ratio"]))
    return ratios


def listed(ratios):
    return ", ".join(f"{ratio:.1e} at {name} {weight}" for name, weight, ratio in ratios)


def update_size(modules, records):
    newest = update_ratios(modules, records[-1])
    extreme = [item for item in newest if item[2] >= UPDATE_EXTREME]
    keys = {item[:2] for item in newest}
    for previous in records[-PATIENCE:-1]:
        keys &= {item[:2] for item in update_ratios(modules, previous) if item[2] >= UPDATE_HIGH}
    high = [item for item in newest if item[:2] in keys and item[2] >= UPDATE_HIGH]
    step = records[-1]["step"]
    if extreme or (len(records) >= PATIENCE and high):
        yield (("update-high",), f"updates too large for the weights at step {step}: |dW| / |W| is "
               f"{listed(extreme or high)} (about 1e-3 is healthy; above {UPDATE_HIGH:g} the weights are "
               "rewritten in a few steps); try a learning rate 10 times smaller")
    keys = {item[:2] for item in newest}
    for previous in records[-PATIENCE:-1]:
        keys &= {item[:2] for item in update_ratios(modules, previous) if item[2] <= UPDATE_LOW}
    low = [item for item in newest if item[:2] in keys and item[2] <= UPDATE_LOW]
    if len(records) >= PATIENCE and low:
        cause = stalled(modules, records)
        advice = (f"no gradient reaches them: {cause} (see that warning), so a larger learning rate would "
                  "not help" if cause else "try a larger learning rate")
        yield (("update-low",), f"updates tiny next to the weights at step {step}: |dW| / |W| is "
               f"{listed(low)} (about 1e-3 is healthy): these weights barely change; {advice}")


def stalled(modules, records):
    """What already explains tiny updates: units that died, or gradients that vanish (else None)."""
    if next(dead_units(modules, records), None) is not None:
        return "units died"
    if any(key == ("vanishing",) for key, _ in gradient_depth(modules, records)):
        return "the gradients vanish with depth"
    return None


RULES = (dead_units, saturation, gradient_depth, update_size)


def diagnose(modules, records, given):
    """The warnings the newest of ``records`` raises whose key is not in ``given`` (a set, updated)."""
    if not records:
        return []
    new = []
    for rule in RULES:
        for key, text in rule(modules, records):
            if key not in given:
                given.add(key)
                new.append(Diagnosis(key, records[-1]["step"], text))
    return new


def replay(modules, records):
    """Every warning a run's records raise, in the order a live run gave them."""
    given, found = set(), []
    for end in range(1, len(records) + 1):
        found += diagnose(modules, records[:end], given)
    return found
