"""Training checkpoints: a model file plus what a run needs to continue exactly.

A checkpoint adds to a model file (``numtorch.io.model``) the optimizer's
state (``optimizer/<buffer>/<i>`` arrays, its hyper-parameters and step in the
JSON), the epoch, numtorch's RNG state and any other JSON-able state (the
batch iterator's generator, the history), so a resumed run ends with the same
weights as an uninterrupted one.

``load_checkpoint`` is all or nothing: it reads and checks everything (the
header's fields, the model, the optimizer's state, the RNG state, and what a
caller's ``check`` asks) before it changes the model, the optimizer or the RNG.
"""

import json

import numpy as np

from numtorch._checks import check_int
from numtorch.io.architecture import shorten
from numtorch.io.archive import Npz, atomic_savez
from numtorch.io.model import HEADER, MAX_MODEL_BYTES, copy_arrays, header, model_arrays, read_for, read_meta
from numtorch.module import Module, flatten
from numtorch.random import get_rng_state, set_rng_state

FIELDS = ("epoch", "rng", "optimizer", "optimizer_buffers", "state")


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


def check_fields(meta, path, parameters):
    """The checkpoint's own header fields, each checked; returns ``{buffer: [entry names]}``."""
    def corrupt(what):
        return ValueError(f"{path}: corrupt checkpoint header: {what}")

    missing = [field for field in FIELDS if field not in meta]
    if missing:
        raise corrupt(f"missing {missing}")
    if type(meta["epoch"]) is not int or meta["epoch"] < 0:
        raise corrupt(f"expected epoch as an int >= 0, got {shorten(meta['epoch'])}")
    try:
        np.random.PCG64().state = meta["rng"]  # a scratch generator: numtorch's own is set last
    except (TypeError, ValueError, KeyError, OverflowError) as error:
        raise corrupt(f"rng is not a generator state from get_rng_state() ({error})") from None
    for field in ("optimizer", "state"):
        if not isinstance(meta[field], dict):
            raise corrupt(f"expected {field} as a dict, got {type(meta[field]).__name__}")
    counts = meta["optimizer_buffers"]
    if not isinstance(counts, dict) or not all(type(count) is int for count in counts.values()):
        raise corrupt(f"expected optimizer_buffers as {{buffer: count}}, got {shorten(counts)}")
    names = {}
    for buffer, count in counts.items():
        if count != parameters:
            raise ValueError(f"{path}: optimizer buffer {shorten(buffer)} has {count} arrays "
                             f"for {parameters} parameters")
        names[buffer] = [f"optimizer/{buffer}/{i}" for i in range(count)]
    return names


def read_buffers(npz, names, params):
    """The optimizer's arrays, each checked by its header against its parameter before it is read."""
    buffers = {}
    for buffer, keys in names.items():
        for key, param in zip(keys, params):
            if key not in npz.names:
                raise ValueError(f"{npz.path}: optimizer array {key!r} missing from the checkpoint")
            entry = npz.entry(key)
            if entry.shape != param.shape or entry.dtype not in (np.dtype(np.float32), np.dtype(np.float64)):
                raise ValueError(f"{npz.path}: optimizer array {key!r} is {entry.dtype} of shape "
                                 f"{entry.shape} in the file, expected float32 or float64 of its "
                                 f"parameter's shape {param.shape}")
        buffers[buffer] = [npz.read(key) for key in keys]
    return buffers


def load_checkpoint(path, model, optimizer, check=None, max_bytes=MAX_MODEL_BYTES):
    """Restore ``model``'s weights, ``optimizer``'s state and the RNG from a checkpoint.

    Returns ``(epoch, state)``: the epoch the checkpoint was written after and the
    extra state given to ``save_checkpoint``. Everything is read and checked
    first, then ``check(epoch, state)`` if given (a caller's own checks of its
    state: raise to refuse); only then do the model, the optimizer and the RNG
    change, so a refused checkpoint changes nothing. The file may name only the
    classes ``model`` is made of.
    """
    if not isinstance(model, Module):
        raise TypeError(f"load_checkpoint: expected a numtorch Module, got {type(model).__name__}")
    if not callable(getattr(optimizer, "check_state_dict", None)):
        raise TypeError(f"load_checkpoint: expected a numtorch Optimizer, got {type(optimizer).__name__}")
    params = flatten(model.getParameters())
    with Npz(path) as npz:
        meta = read_meta(npz)
        if meta.get("kind") != "checkpoint":
            raise ValueError(f"{npz.path}: a saved model, not a checkpoint")
        names = check_fields(meta, npz.path, len(params))
        copies = read_for(model, npz, meta, [key for keys in names.values() for key in keys], max_bytes)
        optimizer_state = {**meta["optimizer"], "buffers": read_buffers(npz, names, params)}
    try:
        optimizer.check_state_dict(optimizer_state)
    except (TypeError, ValueError) as error:
        raise type(error)(f"{path}: {error}") from None
    if check is not None:
        check(meta["epoch"], meta["state"])
    copy_arrays(copies)
    optimizer.load_state_dict(optimizer_state)
    set_rng_state(meta["rng"])
    return meta["epoch"], meta["state"]
