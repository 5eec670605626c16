"""See inside backprop: per-module statistics of a training run, warnings, plots, TensorBoard logs.

After ``backward`` every numtorch module still holds its ``output`` and
``gradInput`` and its parameters hold their gradients, as in Torch7; the
inspector reads those arrays, with no hooks, every ``every`` steps.

- ``recorder``: ``Inspector``, the one call after ``optimizer.step()``
  (``fit(..., inspect=Inspector(model))`` makes it for you);
- ``statistics``: what is measured per module;
- ``nonfinite``: where the first NaN or infinity appeared (``NonFinite``);
- ``diagnosis``: the plain-language warnings;
- ``report``: ``inspect.json``, written and read back;
- ``plot``: ``inspect.png`` (matplotlib);
- ``tensorboard``: TensorBoard event files (tensorboardX).

The package is ``numtorch.inspector``, not ``numtorch.inspect``: ``from
numtorch import *`` in a notebook must not rebind the standard library's
``inspect``, and a reader should not have to wonder which one a line means.
"""

from numtorch.inspector.diagnosis import Diagnosis, replay
from numtorch.inspector.nonfinite import AFTER_FORWARD, SAME_STEP, NonFinite, describe, first_nonfinite
from numtorch.inspector.recorder import DEFAULT_EVERY, Inspector
from numtorch.inspector.report import load

__all__ = ["AFTER_FORWARD", "DEFAULT_EVERY", "Diagnosis", "Inspector", "NonFinite", "SAME_STEP", "describe",
           "first_nonfinite", "load", "replay"]
