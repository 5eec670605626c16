"""Training checkpoints: a model file plus what a run needs to continue exactly.

A checkpoint adds to a model file (``numtorch.io.model``) the optimizer's
state (``optimizer/<buffer>/<i>`` arrays, its hyper-parameters and step in the
JSON), the epoch, numtorch's RNG state and any other JSON-able state (the
batch iterator's generator, the history), so a resumed run ends with the same
weights as an uninterrupted one.
"""

import json

import numpy as np

from numtorch._checks import check_int
from numtorch.io.archive import Npz, atomic_savez
from numtorch.io.model import (
    HEADER,
    check_same_architecture,
    copy_arrays,
    header,
    model_arrays,
    read_meta,
    rebuild,
)
from numtorch.module import Module, flatten
from numtorch.random import get_rng_state, set_rng_state


def save_checkpoint(path, model, optimizer, epoch, **state):
    """Write model, optimizer state, ``epoch``, numtorch's RNG state and ``state`` (JSON-able).

    ``state`` holds whatever else a run needs to continue exactly: the batch
    iterator's ``state_dict()``, a schedule's, the history so far.
    """
    if not isinstance(model, Module):
        raise TypeError(f"save_checkpoint: expected a numtorch Module, got {type(model).__name__}")
    if not callable(getattr(optimizer, "state_dict", None)):
        raise TypeError(f"save_checkpoint: expected a numtorch Optimizer, got {type(optimizer).__name__}")
    epoch = check_int("save_checkpoint", epoch, "epoch", low=0)
    optimizer_state = optimizer.state_dict()
    buffers = optimizer_state.pop("buffers")
    arrays = {HEADER: None, **model_arrays(model)}
    for name, values in buffers.items():
        for i, array in enumerate(values):
            arrays[f"optimizer/{name}/{i}"] = array
    meta = header("checkpoint", model, epoch=int(epoch), rng=get_rng_state(), optimizer=optimizer_state,
                  optimizer_buffers={name: len(values) for name, values in buffers.items()}, state=state)
    try:
        # allow_nan=False: strict JSON, and a checkpoint restores exactly what it was given or refuses.
        arrays[HEADER] = np.array(json.dumps(meta, allow_nan=False))
    except (TypeError, ValueError) as error:
        raise type(error)(f"save_checkpoint: state must be JSON-serializable, with finite numbers "
                          f"({error})") from None
    atomic_savez(path, arrays)


def optimizer_entries(model, npz, meta):
    """``{buffer: [entry names]}`` of a checkpoint, checked by header against ``model``'s parameters.

    The optimizer keeps one array per parameter in each buffer, of that
    parameter's shape; an entry declaring anything else is refused unread.
    """
    path, params = npz.path, flatten(model.getParameters())
    counts = meta.get("optimizer_buffers")
    if not isinstance(counts, dict) or not all(type(count) is int for count in counts.values()):
        raise ValueError(f"{path}: corrupt checkpoint header (optimizer_buffers)")
    names = {}
    for buffer, count in counts.items():
        if count != len(params):
            raise ValueError(f"{path}: optimizer buffer {buffer!r} has {count} arrays "
                             f"for {len(params)} parameters")
        names[buffer] = [f"optimizer/{buffer}/{i}" for i in range(count)]
        for key, param in zip(names[buffer], params):
            entry = npz.entries.get(key)
            if entry is None:
                raise ValueError(f"{path}: optimizer array {key!r} missing from the checkpoint")
            if entry.shape != param.shape or entry.dtype.kind != "f":
                raise ValueError(f"{path}: optimizer array {key!r} is {entry.dtype} of shape {entry.shape} "
                                 f"in the file, its parameter {param.dtype} of shape {param.shape}")
    return names


def load_checkpoint(path, model, optimizer):
    """Restore ``model``'s weights, ``optimizer``'s state and the RNG from a checkpoint.

    Returns ``(epoch, state)``: the epoch the checkpoint was written after and the
    extra state given to ``save_checkpoint``. Every entry's header is checked
    against ``model`` before any array is read.
    """
    with Npz(path) as npz:
        meta = read_meta(npz)
        if meta.get("kind") != "checkpoint":
            raise ValueError(f"{npz.path}: a saved model, not a checkpoint")
        optimizer_keys = [key for key in npz.entries if key.startswith("optimizer/")]
        loaded = rebuild(meta, npz, optimizer_keys)
        copies = check_same_architecture(model, loaded, npz.path)
        names = optimizer_entries(loaded, npz, meta)
        optimizer_state = dict(meta["optimizer"])
        optimizer_state["buffers"] = {buffer: [npz.read(key) for key in keys]
                                      for buffer, keys in names.items()}
    copy_arrays(copies)
    optimizer.load_state_dict(optimizer_state)
    set_rng_state(meta["rng"])
    return meta["epoch"], meta["state"]
