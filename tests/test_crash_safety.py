"""An interrupted ``numtorch train`` loses nothing.

``numtorch train`` writes a checkpoint after every epoch. This test kills it
with SIGKILL at seeded random moments (several times, bounded in count and
time), and after every kill checks that the checkpoint on disk loads; then
``--resume`` carries the run to its end, and the final weights and history
must equal, bit for bit, those of an uninterrupted run with the same seed.
"""

import json
import os
import random
import signal
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
