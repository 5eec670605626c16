"""The ``Inspector``: one call after each optimizer step; statistics every ``every`` steps.

```
inspector = Inspector(model, every=50)
for xb, yb in batches:
    optimizer.zero_grad()
    output = model.forward(xb)
    loss = criterion.forward(output, yb)
    model.backward(xb, criterion.backward(output, yb))
    optimizer.step()
    inspector.step(loss)
```

``step`` raises ``NonFinite`` at the first NaN or infinity, naming the module
and whether it was an output, a gradient or a parameter; on steps 1,
``every + 1``, ``2 * every + 1`` ... it records ``module_statistics`` of every
module that is not a container and prints each new warning (``diagnosis``)
once. ``fit(..., inspect=inspector)`` makes the same calls (through
``observe``; fit stops at a non-finite loss itself).
"""

import math
import sys

from numtorch._checks import check_positive_int
from numtorch.inspector.diagnosis import diagnose, replay
from numtorch.inspector.nonfinite import NonFinite, first_nonfinite, leaf_modules, parameters_finite
from numtorch.inspector.report import FORMAT, VERSION, save
from numtorch.inspector.statistics import (
    PERCENTILES,
    activation_kind,
    module_statistics,
    number,
    parameter_items,
)
from numtorch.module import Module

DEFAULT_EVERY = 50


def say(text):
    """A warning line on stderr, above a progress bar when tqdm draws one."""
    tqdm = sys.modules.get("tqdm")
    if tqdm is not None:
        tqdm.tqdm.write(text, file=sys.stderr)
    else:
        print(text, file=sys.stderr, flush=True)


class Inspector:
    """Per-module statistics of a training run, warnings, plots and TensorBoard logs.

    ``model``: the network (its tree is read once: build the inspector after the
    model is complete). ``every``: record steps 1, every + 1, 2 * every + 1 ...
    ``tensorboard``: a directory for TensorBoard event files (needs
    tensorboardX: ``pip install 'numtorch[tensorboard]'``). ``echo``: print each
    warning on stderr when it appears.

    After training: ``records`` (one dict per recorded step), ``warnings``
    (``Diagnosis`` tuples), ``report()`` (what ``save`` writes as
    ``inspect.json``), ``plot(path)``.
    """

    def __init__(self, model, every=DEFAULT_EVERY, tensorboard=None, echo=True):
        if not isinstance(model, Module):
            raise TypeError(f"Inspector: expected model as a numtorch Module, got {type(model).__name__}")
        self.model = model
        self.every = check_positive_int("Inspector", every, "every")
        self.echo = bool(echo)
        self.layers = leaf_modules(model)
        self.modules = [{"name": name, "type": type(module).__name__, "kind": activation_kind(module),
                         "parameters": {p: param.ndim for p, param, _ in parameter_items(module)}}
                        for name, module in self.layers]
        self.records, self.warnings, self._given = [], [], set()
        self.steps = 0
        self.board = None
        if tensorboard is not None:
            from numtorch.inspector.tensorboard import TensorBoard

            self.board = TensorBoard(tensorboard)
        self._before = (1, self._weights())

    def due(self, step):
        """True for the steps that are recorded: 1, every + 1, 2 * every + 1, ..."""
        return (step - 1) % self.every == 0

    def step(self, loss=None, step=None):
        """Call once after ``optimizer.step()``, with the step's loss if you have it.

        Raises ``NonFinite`` if the loss or a parameter is NaN or infinite, naming
        the first non-finite output, gradient or parameter of the step; records
        the statistics on the recorded steps. ``step``: this step's number when
        you count (``fit`` does, so a resumed run goes on counting); by
        default one more than the last.
        """
        step = self.steps + 1 if step is None else step
        if (loss is not None and not math.isfinite(loss)) or not parameters_finite(self.layers):
            raise NonFinite(step, first_nonfinite(self.model, loss=loss))
        return self.observe(step, loss)

    def observe(self, step, loss=None):
        """Step ``step`` is done: record it if it is due, and keep the weights the next recorded step
        starts from (its update/weight ratio needs them). Returns the record, or None."""
        self.steps = step
        record = self.record(step, loss) if self.due(step) else None
        if self.due(step + 1):
            self._before = (step + 1, self._weights())
        return record

    def _weights(self):
        return {name: {p: param.copy() for p, param, _ in parameter_items(module)}
                for name, module in self.layers}

    def resume(self, report):
        """Go on from the report of an earlier part of this run (a training run resumed from its
        checkpoint): its records are kept, and its warnings are not given again. Records past the
        step training resumes from go when that step is recorded again."""
        if [meta["name"] for meta in report["modules"]] != [meta["name"] for meta in self.modules]:
            raise ValueError(f"Inspector.resume: the report is of another network: expected the modules "
                             f"{[meta['name'] for meta in self.modules]}, got "
                             f"{[meta['name'] for meta in report['modules']]}")
        self.records = list(report["records"])
        self.warnings = replay(self.modules, self.records)
        self._given = {warning.key for warning in self.warnings}

    def record(self, step, loss=None):
        """Measure every module now, as step ``step``; append, diagnose, log. Returns the record."""
        before_step, before = self._before
        if before_step != step:
            before = {}
        while self.records and self.records[-1]["step"] >= step:
            self.records.pop()
        record = {"step": int(step), "loss": None if loss is None else number(loss),
                  "modules": {name: module_statistics(module, before.get(name))
                              for name, module in self.layers}}
        self.records.append(record)
        new = diagnose(self.modules, self.records, self._given)
        self.warnings += new
        if self.echo:
            for warning in new:
                say(f"numtorch inspect: warning: {warning.text}")
        if self.board is not None:
            self.board.record(record, self.layers)
        return record

    def log_epoch(self, step, values):
        """Epoch figures (``{"train_loss": ..., "lr": ...}``; ``None`` skipped) to TensorBoard at ``step``."""
        if self.board is not None:
            self.board.scalars(step, {f"epoch/{key}": value for key, value in values.items()
                                      if value is not None})

    def report(self):
        """Everything recorded, as plain data (what ``save`` writes; ``plot`` and ``replay`` read it)."""
        return {"format": FORMAT, "version": VERSION, "every": self.every, "percentiles": list(PERCENTILES),
                "modules": self.modules, "records": self.records,
                "warnings": [{"key": list(w.key), "step": w.step, "text": w.text} for w in self.warnings]}

    def save(self, path):
        """Write ``report()`` to ``path`` as strict JSON, atomically."""
        save(self.report(), path)

    def plot(self, path):
        """Draw the records as a PNG at ``path`` (needs matplotlib)."""
        from numtorch.inspector.plot import plot

        plot(self.report(), path)

    def close(self):
        """Flush and close the TensorBoard files (if any)."""
        if self.board is not None:
            self.board.close()
