"""An interrupted ``numtorch train`` loses nothing.

``numtorch train`` writes a checkpoint after every epoch. The first test kills
it with SIGKILL at seeded random moments (several times, bounded in count and
time), and after every kill checks that the checkpoint on disk loads; then
``--resume`` carries the run to its end, and the final weights and history
must equal, bit for bit, those of an uninterrupted run with the same seed.
The second kills a process that does nothing but write checkpoints, so the
kills land mid-write: what is on disk is always one whole checkpoint.
"""

import json
import os
import random
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import numtorch
from numtorch import io

pytest.importorskip("sklearn")
pytest.importorskip("matplotlib")

SRC = Path(__file__).resolve().parents[1] / "src"
EPOCHS = 16
TRAIN = ["train", "--data", "digits", "--hidden", "64", "--epochs", str(EPOCHS), "--batch-size", "32",
         "--seed", "7", "--no-progress"]
MAX_KILLS = 6
KILL_WINDOW_S = 40.0  # no new kill after this long; the run then finishes unkilled


def start(out, resume):
    env = {**os.environ, "PYTHONPATH": str(SRC), "PYTHONUNBUFFERED": "1", "MPLBACKEND": "Agg"}
    command = [sys.executable, "-m", "numtorch", *TRAIN, "--out", str(out), *(["--resume"] if resume else [])]
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for_training(process):
    """Read stdout until the line printed just before training starts; False if the process ended."""
    for line in process.stdout:
        if line.startswith("model:"):
            return True
    return False


def checkpoint_epoch(path):
    """The epoch a checkpoint holds, after checking that it and its model load."""
    meta, arrays = io.read(path)
    assert meta["kind"] == "checkpoint"
    assert isinstance(numtorch.load(path), numtorch.Module)
    assert any(key.startswith("optimizer/") for key in arrays), "the checkpoint lost the optimizer state"
    return meta["epoch"]


def final_state(out):
    with np.load(out / "model.npz", allow_pickle=False) as archive:
        arrays = {name: archive[name] for name in archive.files}
    record = json.loads((out / "history.json").read_text())
    return arrays, record["history"], record["test"]


def test_sigkill_at_random_moments_then_resume_equals_an_uninterrupted_run(tmp_path):
    reference_out, killed_out = tmp_path / "reference", tmp_path / "killed"
    reference = start(reference_out, resume=False)  # runs alongside the kills

    rng = random.Random(2026)
    checkpoint = killed_out / "checkpoint.npz"
    kills, epochs_seen, began = 0, [], time.monotonic()
    epoch_seconds = 0.1  # estimate, refined from the runs below: kills land over the epochs left
    while True:
        done = checkpoint_epoch(checkpoint) if checkpoint.exists() else 0
        process = start(killed_out, resume=checkpoint.exists())
        if kills < MAX_KILLS and time.monotonic() - began < KILL_WINDOW_S and wait_for_training(process):
            started = time.monotonic()
            time.sleep(rng.uniform(0, 1.1 * (EPOCHS - done) * epoch_seconds))
            if process.poll() is None:
                process.send_signal(signal.SIGKILL)
                assert process.wait(timeout=30) == -signal.SIGKILL
                kills += 1
                if checkpoint.exists():
                    epochs_seen.append(checkpoint_epoch(checkpoint))
                    if epochs_seen[-1] > done:
                        epoch_seconds = (time.monotonic() - started) / (epochs_seen[-1] - done + 0.5)
                continue
        _, stderr = process.communicate(timeout=300)
        assert process.returncode == 0, stderr
        break

    _, stderr = reference.communicate(timeout=300)
    assert reference.returncode == 0, stderr
    assert kills >= 3, f"only {kills} kills landed while training ran"
    assert epochs_seen == sorted(epochs_seen), f"a resumed run went backwards: {epochs_seen}"

    ours, ours_history, ours_test = final_state(killed_out)
    theirs, theirs_history, theirs_test = final_state(reference_out)
    assert sorted(ours) == sorted(theirs)
    for name in theirs:
        assert ours[name].dtype == theirs[name].dtype
        np.testing.assert_array_equal(ours[name], theirs[name], err_msg=f"{name} differs after {kills} kills")
    assert ours_history == theirs_history
    assert ours_test == theirs_test
    assert checkpoint_epoch(checkpoint) == EPOCHS
    print(f"{kills} SIGKILLs, checkpoint epochs seen after them: {epochs_seen}")


WRITER = """
import sys
import time

import numpy as np

import numtorch
from numtorch.io import save_checkpoint
from numtorch.optim import SGD

path, stall = sys.argv[1], sys.argv[2] == "stall"
savez = np.savez


def stalling_savez(file, **arrays):
    # The second write stops halfway through, long enough to be killed there.
    file.write(b"PK\\x03\\x04 half a checkpoint")
    file.flush()
    print("stalled", flush=True)
    time.sleep(600)
    savez(file, **arrays)


numtorch.manual_seed(0)
model = numtorch.Sequential(numtorch.Linear(512, 512), numtorch.Linear(512, 10))
optimizer = SGD(model, lr=0.1, momentum=0.9)
model.getGradParameters()[0][0].fill(1.0)
optimizer.step()
weights = model.getParameters()[0][0]
epoch = 0
while True:
    epoch += 1
    weights.fill(epoch)  # the weights carry the epoch: a torn write would disagree with the header
    save_checkpoint(path, model, optimizer, epoch)
    if epoch == 1:
        print("written", flush=True)
        np.savez = stalling_savez if stall else savez
"""


def kill_writer(path, stall, rng):
    """Start a process that writes checkpoints in a loop, SIGKILL it; return the epoch on disk."""
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    process = subprocess.Popen([sys.executable, "-c", WRITER, str(path), "stall" if stall else "run"],
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert process.stdout.readline() == "written\n", process.stderr.read()
    if stall:
        assert process.stdout.readline() == "stalled\n", process.stderr.read()
    else:
        time.sleep(rng.uniform(0, 0.5))
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    epoch = checkpoint_epoch(path)
    model = numtorch.load(path)
    assert np.all(model.getParameters()[0][0] == epoch), "weights and header from different writes"
    return epoch


def test_sigkill_during_checkpoint_writes_leaves_a_whole_checkpoint(tmp_path):
    path = tmp_path / "checkpoint.npz"
    rng = random.Random(7)
    assert kill_writer(path, stall=True, rng=rng) == 1  # killed halfway through writing epoch 2
    epochs = [kill_writer(path, stall=False, rng=rng) for _ in range(2)]
    leftovers = [p.name for p in tmp_path.iterdir() if p.name != "checkpoint.npz"]
    assert leftovers and all(name.startswith(".checkpoint.npz.") and name.endswith(".tmp")
                             for name in leftovers)
    print(f"3 SIGKILLs of a checkpoint writer (one mid-write by construction): epochs on disk "
          f"{[1, *epochs]}, {len(leftovers)} temporary files left by kills mid-write")


def test_a_write_is_durable_file_then_folder(tmp_path, monkeypatch):
    """The checkpoint's bytes are fsynced before the rename, and its folder after it."""
    synced, fsync = [], os.fsync

    def recording_fsync(descriptor):
        synced.append(("folder" if stat.S_ISDIR(os.fstat(descriptor).st_mode) else "file",
                       sorted(p.name for p in tmp_path.iterdir())))
        fsync(descriptor)

    monkeypatch.setattr(io.archive.os, "fsync", recording_fsync)
    numtorch.manual_seed(0)
    numtorch.save(numtorch.Sequential(numtorch.Linear(3, 2)), tmp_path / "model.npz")
    (kind, files_before), (last_kind, files_after) = synced[0], synced[-1]
    assert kind == "file" and "model.npz" not in files_before
    assert last_kind == "folder" and files_after == ["model.npz"]
