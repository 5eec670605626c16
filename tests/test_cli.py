"""The numtorch command line, end to end on small data in temporary directories."""

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from test_data import write_mnist

import numtorch as nt
from numtorch import cli, io
from numtorch.cli import main
from numtorch.containers import walk

SRC = os.path.join(os.path.dirname(__file__), "..", "src")
FAST = ["--epochs", "2", "--hidden", "16", "--batch-size", "128", "--lr", "0.01"]


def run(*argv):
    """Exit status of ``numtorch argv`` run in this process (argparse errors included)."""
    try:
        return main([str(a) for a in argv])
    except SystemExit as exit:
        return exit.code


def one_error_line(capsys):
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_train_digits_writes_everything(tmp_path, capsys):
    out = tmp_path / "run"
    assert run("train", *FAST, "--out", out) == 0
    captured = capsys.readouterr()
    assert "epoch 1/2" in captured.err and "val_acc=" in captured.err
    assert "test: accuracy" in captured.out
    for name in ("model.npz", "checkpoint.npz", "history.json", "curves.png", "confusion.png"):
        assert (out / name).stat().st_size > 0, name
    for name in ("curves.png", "confusion.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    record = json.loads((out / "history.json").read_text())
    assert record["history"]["epoch"] == [1, 2] and record["hidden"] == [16]
    assert record["test"]["accuracy"] > 0.5
    assert np.asarray(record["test"]["confusion"]).sum() == 359

    model, meta = io.load_with_metadata(out / "model.npz")
    assert meta["input_shape"] == [64]
    assert repr(model) == repr(nt.Sequential(nt.Linear(64, 16), nt.ReLU(), nt.Linear(16, 10)))
    assert run("evaluate", out / "model.npz", "--data", "digits") == 0
    assert f"accuracy {record['test']['accuracy']:.4f}" in capsys.readouterr().out
    assert run("summary", out / "model.npz") == 0
    summary = capsys.readouterr().out
    assert "Linear(64 -> 16)" in summary and "(N, 16)" in summary and "total: 1,210 parameters" in summary


def test_resume_equals_uninterrupted(tmp_path, capsys):
    common = ["--epochs", "3", "--hidden", "8", "--batch-size", "200", "--optimizer", "sgd", "--lr", "0.05",
              "--seed", "4", "--no-progress"]
    assert run("train", *common, "--out", tmp_path / "full") == 0
    assert run("train", *common[:1], "1", *common[2:], "--out", tmp_path / "part") == 0
    assert run("train", *common, "--out", tmp_path / "part", "--resume") == 0
    full, part = (io.read(tmp_path / name / "model.npz")[1] for name in ("full", "part"))
    assert sorted(full) == sorted(part)
    for key in full:
        np.testing.assert_array_equal(full[key], part[key])
    histories = [json.loads((tmp_path / name / "history.json").read_text())["history"]
                 for name in ("full", "part")]
    assert histories[0] == histories[1] and histories[0]["epoch"] == [1, 2, 3]

    assert run("train", "--resume", "--out", tmp_path / "empty") == 1
    assert "no checkpoint to resume from" in one_error_line(capsys)
    # A checkpoint that records no settings (as before they were kept): the options given run, and
    # one of another network is refused.
    (tmp_path / "old").mkdir()
    other = nt.Sequential(nt.Linear(64, 10))
    io.save_checkpoint(tmp_path / "old" / "checkpoint.npz", other, nt.SGD(other, lr=0.1), 1)
    assert run("train", *common, "--out", tmp_path / "old", "--resume") == 1
    captured = capsys.readouterr()
    assert "the checkpoint records no settings (an older numtorch wrote it): the options given run" \
        in captured.out
    assert captured.err.count("\n") == 1
    assert "the file holds Sequential(Linear), not this model's" in captured.err


def test_resume_runs_the_checkpoints_settings_and_says_which_options_it_ignores(tmp_path):
    out = tmp_path / "run"
    first = numtorch_command("train", "--epochs", "1", "--hidden", "8", "--batch-size", "200", "--optimizer",
                             "sgd", "--lr", "0.05", "--seed", "4", "--no-progress", "--out", out)
    assert first.returncode == 0, first.stderr
    resumed = numtorch_command("train", "--resume", "--out", out, "--lr", "0.5", "--seed", "1", "--hidden",
                               "8", "--optimizer", "adam", "--epochs", "2", "--no-progress")
    assert resumed.returncode == 0, resumed.stderr
    lines = resumed.stdout.splitlines()
    assert lines[1].startswith("model: mlp, 610 parameters; SGD(lr=0.05, momentum=0.9") and \
        lines[1].endswith("batch 200, 2 epochs, seed 4")
    assert lines[2:4] == ["resuming at epoch 2 of 2",
                          "ignored with --resume, the checkpoint's settings run: --optimizer adam (runs "
                          "--optimizer sgd), --lr 0.5 (runs --lr 0.05), --seed 1 (runs --seed 4)"]
    record = json.loads((out / "history.json").read_text())
    assert {key: record[key] for key in ("optimizer", "lr", "seed", "epochs", "hidden", "batch_size")} == \
        {"optimizer": "sgd", "lr": 0.05, "seed": 4, "epochs": 2, "hidden": [8], "batch_size": 200}
    assert record["ignored_options"] == {"optimizer": "adam", "lr": 0.5, "seed": 1}
    assert record["data"] == "digits" and record["history"]["epoch"] == [1, 2]
    again = numtorch_command("train", "--resume", "--out", out, "--no-progress")
    assert again.stdout.splitlines()[2] == ("resuming after epoch 2 of 2: training is done, the results are "
                                            "written")


def test_mnist_folders_and_npz_data(tmp_path, capsys, monkeypatch):
    only_test = tmp_path / "t10k"
    only_test.mkdir()
    write_mnist(only_test, "test", n=30)
    assert run("train", *FAST, "--data", f"mnist:{only_test}", "--out", tmp_path / "a", "--no-progress") == 0
    assert "only the test split, first 24 images to train, last 6 to test" in capsys.readouterr().out
    both = tmp_path / "both"
    both.mkdir()
    write_mnist(both, "train", n=20, rows=6, cols=5)
    write_mnist(both, "test", n=10, rows=6, cols=5, seed=1)
    assert run("train", *FAST, "--data", f"mnist:{both}", "--out", tmp_path / "b", "--no-progress") == 0
    assert "18 train, 2 validation, 10 test samples" in capsys.readouterr().out
    assert io.load_with_metadata(tmp_path / "b" / "model.npz")[1]["input_shape"] == [30]

    rng = np.random.default_rng(0)
    np.savez(tmp_path / "mine.npz", X=rng.standard_normal((50, 3)), y=rng.integers(0, 3, 50))
    monkeypatch.chdir(tmp_path)
    assert run("train", *FAST, "--data", "mine.npz", "--no-progress") == 0
    assert (tmp_path / "runs" / "mine-mlp" / "model.npz").exists()
    assert run("summary", tmp_path / "runs" / "mine-mlp" / "model.npz") == 0
    assert "input (N, 3)" in capsys.readouterr().out

    # evaluate without --data measures the test split of what the model was trained on, from anywhere
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    for model in (tmp_path / "runs" / "mine-mlp" / "model.npz", tmp_path / "b" / "model.npz"):
        assert run("evaluate", model) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == (f"{tmp_path / 'runs' / 'mine-mlp' / 'model.npz'} on {tmp_path / 'mine.npz'}: 80/20 "
                      "split (what it was trained on), 10 test samples")
    assert f"on {both}: train / t10k (what it was trained on), 10 test samples" in "\n".join(out)
    result = numtorch_command("evaluate", tmp_path / "b" / "model.npz", cwd=elsewhere)
    assert result.returncode == 0 and "(what it was trained on)" in result.stdout, result.stderr


@pytest.mark.parametrize("argv,message,status", [
    ([], "the following arguments are required: COMMAND", 2),
    (["fly"], "invalid choice: 'fly'", 2),
    (["train", "--epochs", "0"], "argument --epochs: expected an integer >= 1, got '0'", 2),
    (["train", "--lr", "0"], "argument --lr: expected a positive number, got '0'", 2),
    (["train", "--hidden", "64,x"], "argument --hidden: expected sizes like 256,128", 2),
    (["train", "--model", "rnn"], "argument --model: invalid choice: 'rnn'", 2),
    (["train", "--data", "imagenet"], "--data: expected digits, mnist:DIR or PATH.npz, got 'imagenet'", 1),
    (["train", "--data", "mnist:{tmp}/nowhere"], "is not a directory", 1),
    (["train", "--data", "mnist:{tmp}"], "no MNIST IDX files", 1),
    (["train", "--data", "{tmp}/absent.npz"], "absent.npz: no such file", 1),
    (["train", "--data", "{tmp}/junk.npz"], "not a readable .npz file", 1),
    (["evaluate", "{tmp}/absent.npz"], "absent.npz: no such file", 1),
    (["summary", "{tmp}/junk.npz"], "not a readable .npz file", 1),
    (["evaluate", "{tmp}/wide.npz"], "samples of shape (1, 8, 8) do not fit the model's input (3,)", 1),
])
def test_bad_invocations_print_one_line(tmp_path, capsys, argv, message, status):
    (tmp_path / "junk.npz").write_bytes(b"junk")
    io.save(nt.Linear(3, 2), tmp_path / "wide.npz", input_shape=(3,))
    assert run(*(a.format(tmp=tmp_path) for a in argv)) == status
    line = one_error_line(capsys)
    command = argv[0] if argv and argv[0] in ("train", "evaluate", "summary") else None
    assert line.startswith(f"numtorch {command}: error: " if command else "numtorch: error: "), line
    assert message in line, line


def test_summary_without_input_shape(tmp_path, capsys):
    io.save(nt.Sequential(nt.Linear(3, 2), nt.Tanh()), tmp_path / "m.npz")
    assert run("summary", tmp_path / "m.npz") == 0
    out = capsys.readouterr().out
    assert "shape unknown" in out and "Linear(3 -> 2)" in out and "total: 8 parameters" in out


def python(*code_or_args, cwd=None):
    env = dict(os.environ, PYTHONPATH=os.path.abspath(SRC))
    return subprocess.run([sys.executable, *code_or_args], capture_output=True, text=True, env=env, cwd=cwd,
                          timeout=300)


def test_python_m_numtorch_exit_status_and_stderr(tmp_path):
    result = python("-m", "numtorch", "train", "--data", str(tmp_path / "none.npz"), cwd=tmp_path)
    assert result.returncode == 1
    expected = f"numtorch train: error: {tmp_path / 'none.npz'}: no such file"
    assert result.stderr.strip().splitlines() == [expected]
    assert python("-m", "numtorch", "--help").returncode == 0


def test_core_import_needs_no_extras():
    code = ("import sys, numtorch, numtorch.data, numtorch.io, numtorch.train, numtorch.cli, "
            "numtorch.distributed, numtorch.inspector; extras = ('tqdm', 'matplotlib', 'sklearn', 'torch', "
            "'mpi4py', 'threadpoolctl', 'tensorboardX', 'tensorboard'); "
            "print(sorted(m for m in extras if m in sys.modules))")
    result = python("-c", code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_readme_training_section_python_example_runs(tmp_path, capsys, monkeypatch):
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    section = readme.split("## Training from the command line")[1]
    example = section.split("```python\n")[1].split("```")[0]
    monkeypatch.chdir(tmp_path)
    exec(compile(example, "README.md", "exec"), {})
    assert float(capsys.readouterr().out.split()[-1]) > 0.9
    assert (tmp_path / "digits.npz").exists() and (tmp_path / "run.ckpt.npz").exists()


def test_cnn_preset_on_digits(tmp_path, capsys):
    out = tmp_path / "cnn"
    assert run("train", "--model", "cnn", "--epochs", "1", "--hidden", "8", "--batch-size", "256",
               "--no-progress", "--out", out) == 0
    assert io.load_with_metadata(out / "model.npz")[1]["input_shape"] == [1, 8, 8]
    capsys.readouterr()
    assert run("summary", out / "model.npz") == 0
    summary = capsys.readouterr().out
    for text in ("input (N, 1, 8, 8)", "Conv2d", "(N, 16, 8, 8)", "(N, 16, 4, 4)", "(N, 32, 2, 2)",
                 "Flatten", "(N, 128)", "Linear(128 -> 8)", "(N, 10)"):
        assert text in summary, text
    assert run("evaluate", out / "model.npz") == 0
    record = json.loads((out / "history.json").read_text())
    assert f"accuracy {record['test']['accuracy']:.4f}" in capsys.readouterr().out


def test_cnn_preset_needs_images(tmp_path, capsys):
    np.savez(tmp_path / "flat.npz", X=np.zeros((20, 5)), y=np.arange(20) % 2)
    assert run("train", "--model", "cnn", "--data", tmp_path / "flat.npz", "--out", tmp_path / "o") == 1
    assert "--model cnn: expected images (N, C, H, W), got samples of shape (5,)" in one_error_line(capsys)


def test_summary_of_a_model_without_parameters(tmp_path, capsys):
    io.save(nt.Sequential(nt.Flatten(), nt.ReLU()), tmp_path / "m.npz", input_shape=(4,))
    assert run("summary", tmp_path / "m.npz") == 0
    out = capsys.readouterr().out
    assert "input (N, 4)" in out and "ReLU" in out and "(N, 4)" in out and "total: 0 parameters" in out


def numtorch_command(*argv, stdout=subprocess.PIPE, cwd=None, env=None):
    """``python -m numtorch argv`` in a subprocess, with this checkout's sources."""
    env = dict(os.environ, PYTHONPATH=os.path.abspath(SRC), MPLBACKEND="Agg", **(env or {}))
    return subprocess.run([sys.executable, "-m", "numtorch", *map(str, argv)], stdout=stdout,
                          stderr=subprocess.PIPE, text=True, env=env, cwd=cwd, timeout=300)


def test_version():
    result = numtorch_command("--version")
    assert result.returncode == 0 and result.stderr == ""
    assert result.stdout.startswith(f"numtorch {nt.__version__} (NumPy ") and "Python 3." in result.stdout


def test_a_closed_stdout_is_a_normal_end(tmp_path):
    """As ``numtorch summary m.npz | head -2`` once ``head`` has gone: the pipe's reading end is closed
    before the command writes, so every write meets a broken pipe. No error, exit status 0; ``train``
    still does its work."""
    io.save(nt.Sequential(*[nt.Linear(4, 4) for _ in range(50)]), tmp_path / "m.npz", input_shape=(4,))
    reading, writing = os.pipe()
    os.close(reading)
    try:
        train = ["train", *FAST, "--no-progress", "--out", tmp_path / "r"]
        for argv in (["summary", tmp_path / "m.npz"], train):
            result = numtorch_command(*argv, stdout=writing)
            assert (result.returncode, result.stderr) == (0, ""), argv
    finally:
        os.close(writing)
    assert json.loads((tmp_path / "r" / "history.json").read_text())["history"]["epoch"] == [1, 2]


@pytest.mark.parametrize("error,line", [
    (MemoryError("Unable to allocate 37.3 GiB for an array with shape (100000, 100000)"),
     "numtorch summary: error: not enough memory: Unable to allocate 37.3 GiB for an array with shape "
     "(100000, 100000)"),
    (MemoryError(), "numtorch summary: error: not enough memory"),
    (RecursionError("maximum recursion depth exceeded"),
     "numtorch summary: error: RecursionError: maximum recursion depth exceeded (unexpected: set "
     "NUMTORCH_TRACEBACK=1 to see where, and please report it with the output of numtorch --version)"),
])
def test_any_failure_is_one_line_and_status_1(tmp_path, capsys, monkeypatch, error, line):
    def fail(args):
        raise error

    monkeypatch.setitem(cli.COMMANDS, "summary", fail)
    assert run("summary", tmp_path / "m.npz") == 1
    assert one_error_line(capsys) == line
    monkeypatch.setenv("NUMTORCH_TRACEBACK", "1")
    with pytest.raises(type(error)):
        run("summary", tmp_path / "m.npz")


def test_curve_panels_have_axis_labels(tmp_path, monkeypatch):
    plt = cli.pyplot()
    close, figures = plt.close, []
    monkeypatch.setattr(plt, "close", figures.append)
    history = {"epoch": [1, 2], "train_loss": [0.9, 0.5], "val_loss": [1.0, 0.6],
               "train_accuracy": [0.7, 0.8], "val_accuracy": [0.6, 0.75]}
    cli.plot_curves(history, tmp_path / "curves.png")
    loss, accuracy = figures[0].axes
    assert (loss.get_xlabel(), loss.get_ylabel()) == ("epoch", "mean cross-entropy")
    assert (accuracy.get_xlabel(), accuracy.get_ylabel()) == ("epoch", "fraction classified correctly")
    close(figures[0])


def test_out_is_checked_before_the_data_is_loaded(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    result = numtorch_command("train", "--data", tmp_path / "absent.npz", "--out", tmp_path / "notes.txt")
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr == (f"numtorch train: error: --out {tmp_path / 'notes.txt'}: this is a file, not a "
                             "folder: give a folder (it is created if absent)\n")
    assert (tmp_path / "notes.txt").read_text() == "mine"


HOLD = ("import sys; from numtorch.run_folder import claim; folder = claim(sys.argv[1]); "
        "print('held', flush=True); input()")


def test_one_run_per_output_folder_and_stale_locks(tmp_path):
    """A folder another process holds is refused (a new run and a --resume alike); once that process
    is killed, its lock file is stale and the next run takes it over, saying so."""
    out = tmp_path / "run"
    env = dict(os.environ, PYTHONPATH=os.path.abspath(SRC))
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(out)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert holder.stdout.readline() == "held\n"
        for extra in ([], ["--resume"]):
            result = numtorch_command("train", *FAST, "--no-progress", "--out", out, *extra)
            assert result.returncode == 1 and result.stdout == ""
            assert result.stderr.startswith(f"numtorch train: error: --out {out} is in use by another run "
                                            f"(PID {holder.pid}, since "), result.stderr
            assert result.stderr.endswith("): wait for it to end, or choose another --out\n")
    finally:
        holder.kill()
        holder.wait()
    result = numtorch_command("train", *FAST, "--no-progress", "--out", out)
    assert result.returncode == 0, result.stderr
    assert result.stderr == (f"numtorch train: note: took over the lock of {out} from PID {holder.pid}, "
                             "a run that ended without releasing it\n")
    assert sorted(p.name for p in out.iterdir()) == sorted(cli.OUTPUTS)


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="finds a descriptor's file through /proc")
def test_train_replaces_planted_symlinks_and_never_leaves_a_half_written_file(tmp_path, monkeypatch, capsys):
    """Every output is written to a temporary file and renamed: a symlink planted at OUT/history.json
    or OUT/curves.png is replaced (its target untouched), and a full disk leaves no empty history.json."""
    out, victim = tmp_path / "run", tmp_path / "victim"
    out.mkdir()
    victim.write_text("precious")
    for name in ("history.json", "curves.png", "confusion.png"):
        (out / name).symlink_to(victim)
    assert run("train", *FAST, "--no-progress", "--out", out) == 0
    assert victim.read_text() == "precious"
    for name in ("history.json", "curves.png", "confusion.png"):
        assert not (out / name).is_symlink() and (out / name).stat().st_size > 0
    record = (out / "history.json").read_bytes()

    fsync = os.fsync

    def full_disk_at_history(descriptor):
        # A full disk often surfaces at fsync (delayed allocation); here, for history.json only.
        if "history.json" in os.readlink(f"/proc/self/fd/{descriptor}"):
            raise OSError(28, "No space left on device")
        fsync(descriptor)

    monkeypatch.setattr(os, "fsync", full_disk_at_history)
    assert run("train", *FAST, "--no-progress", "--out", out) == 1
    assert f"cannot write {out / 'history.json'}: No space left on device" in capsys.readouterr().err
    assert (out / "history.json").read_bytes() == record
    assert sorted(os.listdir(out)) == ["checkpoint.npz", "confusion.png", "curves.png", "history.json",
                                       "model.npz"]


def test_training_that_diverges_stops_with_one_line_and_saves_nothing(tmp_path):
    """The issue's case: SGD at lr 1e6 reaches a NaN loss in the first epoch."""
    out = tmp_path / "run"
    result = numtorch_command("train", "--optimizer", "sgd", "--lr", "1e6", "--no-progress", "--out", out)
    assert result.returncode == 1
    assert result.stderr == ("numtorch train: error: training diverged: the loss is nan at epoch 1, batch 3 "
                             "of 21 (step 3); the first non-finite value is in the output of (4) Linear at "
                             "step 3 (640 inf of 640 values): the modules before it gave finite outputs: "
                             "the forward pass overflowed here (lr 1e+06: try a smaller --lr); nothing was "
                             "saved\n")
    assert os.listdir(out) == []


def test_training_that_diverges_later_keeps_the_last_checkpoint(tmp_path, capsys, monkeypatch):
    class NaNInEpoch2(nt.CrossEntropyCriterion):
        calls = 0

        def updateOutput(self, input, target):
            NaNInEpoch2.calls += 1
            return np.nan if NaNInEpoch2.calls == 13 else super().updateOutput(input, target)

    monkeypatch.setattr(cli, "CrossEntropyCriterion", NaNInEpoch2)
    out = tmp_path / "run"
    # 11 training batches an epoch, then one call for the validation set: call 13 is epoch 2's first.
    assert run("train", *FAST, "--epochs", "3", "--no-progress", "--out", out) == 1
    assert one_error_line(capsys) == ("numtorch train: error: training diverged: the loss is nan at epoch 2, "
                                      "batch 1 of 11 (step 12); the first non-finite value is the loss (nan) "
                                      "at step 12: the outputs before it were finite: the criterion made it "
                                      "(an overflow, or the log of 0) (lr 0.01: try a smaller --lr); the "
                                      "checkpoint at epoch 1 of 3 is intact")
    assert os.listdir(out) == ["checkpoint.npz"] and io.read(out / "checkpoint.npz")[0]["epoch"] == 1


def test_history_json_is_strict_json(tmp_path, monkeypatch):
    """A non-finite test loss is written as null, never as the bare NaN token strict parsers reject."""
    evaluate = cli.evaluate
    monkeypatch.setattr(cli, "evaluate", lambda *a: evaluate(*a)._replace(loss=float("inf")))
    assert run("train", *FAST, "--no-progress", "--out", tmp_path) == 0
    text = (tmp_path / "history.json").read_text()

    def refuse(token):
        raise ValueError(f"not strict JSON: {token}")

    assert json.loads(text, parse_constant=refuse)["test"]["loss"] is None


def test_ctrl_c_says_what_was_saved_and_the_command_it_names_continues_bit_for_bit(tmp_path):
    """A real SIGINT once the second epoch's progress bar shows (wherever it lands from there): exit
    status 130, one line saying where the checkpoint stands and the command that continues; that
    command, run as printed, ends with the model and history of an uninterrupted run."""
    common = ["train", "--hidden", "64", "--epochs", "20", "--batch-size", "16", "--seed", "7",
              "--threads", "1"]
    env = dict(os.environ, PYTHONPATH=os.path.abspath(SRC), MPLBACKEND="Agg")
    out = tmp_path / "run"
    reference = subprocess.Popen([sys.executable, "-m", "numtorch", *common, "--no-progress", "--out",
                                  str(tmp_path / "ref")], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                 text=True, env=env)
    for _ in range(3):
        # On a loaded machine this process may read the bar only after the run has ended: a run that
        # ended before the SIGINT (status 0) proves nothing here, and is tried again.
        shutil.rmtree(out, ignore_errors=True)
        process = subprocess.Popen([sys.executable, "-m", "numtorch", *common, "--out", str(out)],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
        shown = b""
        while b"epoch 2/20" not in shown:
            chunk = os.read(process.stderr.fileno(), 4096)
            assert chunk, shown.decode()
            shown += chunk
        process.send_signal(signal.SIGINT)
        _, rest = process.communicate(timeout=300)
        stderr = (shown + rest).decode()
        if process.returncode != 0:
            break
    assert process.returncode == 130, f"status {process.returncode}\n{stderr}"
    assert stderr.endswith("\n")
    match = re.fullmatch(r"numtorch train: interrupted: saved checkpoint (at epoch (\d+) of 20|in epoch "
                         r"(\d+) of 20, after batch (\d+) of 81) \((.*)\): rerun with --resume to continue: "
                         r"(numtorch train --resume --out .* --threads 1)", stderr.splitlines()[-1])
    assert match, stderr
    assert match[5] == str(out / "checkpoint.npz")
    meta = io.read_header(out / "checkpoint.npz")
    done, batch = (int(match[2]), 0) if match[2] else (int(match[3]) - 1, int(match[4]))
    assert done >= 1 and (meta["epoch"], (meta["state"]["epoch_sums"] or {"batches": 0})["batches"]) == \
        (done, batch)

    command = shlex.split(match[6])
    resumed = numtorch_command(*command[1:])
    assert resumed.returncode == 0, resumed.stderr
    expected = (f"resuming in epoch {done + 1} of 20, at batch {batch + 1} of 81" if batch
                else f"resuming at epoch {done + 1} of 20")
    assert resumed.stdout.splitlines()[2] == expected
    assert reference.wait(timeout=300) == 0, reference.stderr.read()
    ours, theirs = (np.load(folder / "model.npz") for folder in (out, tmp_path / "ref"))
    assert sorted(ours.files) == sorted(theirs.files)
    for name in theirs.files:
        np.testing.assert_array_equal(ours[name], theirs[name])
    histories = [json.loads((folder / "history.json").read_text())["history"]
                 for folder in (out, tmp_path / "ref")]
    assert histories[0] == histories[1]


def test_ctrl_c_before_training_saves_nothing(tmp_path, capsys, monkeypatch):
    def interrupted(spec):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "load_data", interrupted)
    assert run("train", "--out", tmp_path) == 130
    assert one_error_line(capsys) == "numtorch train: interrupted: nothing was saved"
    assert os.listdir(tmp_path) == []


def test_ctrl_c_inside_the_first_epoch_saves_a_checkpoint_there(tmp_path, capsys, monkeypatch):
    class CtrlCAtThirdBatch(nt.CrossEntropyCriterion):
        calls = 0

        def updateOutput(self, input, target):
            CtrlCAtThirdBatch.calls += 1
            if CtrlCAtThirdBatch.calls == 3:
                os.kill(os.getpid(), signal.SIGINT)
            return super().updateOutput(input, target)

    out = tmp_path / "run"
    monkeypatch.setattr(cli, "CrossEntropyCriterion", CtrlCAtThirdBatch)
    assert run("train", *FAST, "--epochs", "3", "--no-progress", "--out", out) == 130
    assert one_error_line(capsys) == (f"numtorch train: interrupted: saved checkpoint in epoch 1 of 3, after "
                                      f"batch 3 of 11 ({out / 'checkpoint.npz'}): rerun with --resume to "
                                      f"continue: numtorch train --resume --out {out}")
    monkeypatch.undo()
    assert run("train", "--resume", "--out", out) == 0
    assert capsys.readouterr().out.splitlines()[2] == "resuming in epoch 1 of 3, at batch 4 of 11"
    assert run("train", *FAST, "--epochs", "3", "--no-progress", "--out", tmp_path / "ref") == 0
    ours, theirs = (io.read(folder / "model.npz")[1] for folder in (out, tmp_path / "ref"))
    for name in theirs:
        np.testing.assert_array_equal(ours[name], theirs[name])


def test_custom_makes_a_model_with_your_own_layers_loadable(tmp_path, capsys):
    """Only numtorch's layers are built from a file; --custom imports the file or module defining yours."""
    from user_layers import Noise

    nt.manual_seed(0)
    io.save(nt.Sequential(nt.Linear(64, 10), Noise(10)), tmp_path / "m.npz", input_shape=(64,))
    assert run("summary", tmp_path / "m.npz") == 1
    assert "unknown layer 'Noise'" in one_error_line(capsys)
    layers = Path(__file__).parent / "user_layers.py"
    assert run("summary", tmp_path / "m.npz", "--custom", layers) == 0
    assert "Noise" in capsys.readouterr().out
    assert run("evaluate", tmp_path / "m.npz", "--custom", "user_layers") == 0
    assert "accuracy" in capsys.readouterr().out
    (tmp_path / "empty.py").write_text("X = 1\n")
    for custom, message in ((tmp_path / "empty.py", "defines no numtorch Module subclass"),
                            (tmp_path / "absent.py", "no such file"),
                            ("no_such_module_here", "no_such_module")):
        assert run("summary", tmp_path / "m.npz", "--custom", custom) == 1
        assert message in one_error_line(capsys)


def test_threads_option_fixes_the_blas_threads_or_leaves_them_to_fit(tmp_path, capsys, monkeypatch):
    chosen = []
    monkeypatch.setattr("numtorch.cli.set_num_threads", chosen.append)
    assert run("train", *FAST, "--epochs", "1", "--threads", "1", "--out", tmp_path / "fixed") == 0
    assert run("train", *FAST, "--epochs", "1", "--out", tmp_path / "auto") == 0
    assert chosen == [1]
    capsys.readouterr()
    assert run("train", "--threads", "0") == 2
    assert "argument --threads: expected auto or an integer >= 1, got '0'" in one_error_line(capsys)


def test_train_inspect_writes_the_records_and_the_picture_and_inspect_reads_them(tmp_path, capsys):
    out = tmp_path / "run"
    assert run("train", *FAST, "--no-progress", "--inspect", "3", "--out", out) == 0
    assert "inspect.json inspect.png" in capsys.readouterr().out
    report = json.loads((out / "inspect.json").read_text())
    assert report["every"] == 3 and [r["step"] for r in report["records"]][:3] == [1, 4, 7]
    assert [m["name"] for m in report["modules"]] == ["(0) Linear", "(1) ReLU", "(2) Linear"]
    (out / "inspect.png").unlink()
    assert run("inspect", out) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == (f"{out / 'inspect.json'}: 3 modules, {len(report['records'])} records every 3 "
                          f"steps, steps 1 to {report['records'][-1]['step']}")
    assert printed[-1] == f"wrote {out / 'inspect.png'}"
    assert (out / "inspect.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_inspect_prints_the_warnings_of_a_run_with_a_learning_rate_far_too_high(tmp_path, capsys):
    out = tmp_path / "run"
    assert run("train", *FAST[:4], "--no-progress", "--inspect", "2", "--optimizer", "sgd", "--lr", "50",
               "--out", out) in (0, 1)
    live = capsys.readouterr().err
    assert "numtorch inspect: warning: updates too large for the weights at step 1" in live
    assert run("inspect", out) == 0
    printed = capsys.readouterr().out
    assert "warning at step 1: updates too large for the weights at step 1" in printed


def test_inspect_without_a_report_says_what_writes_one(tmp_path, capsys):
    assert run("inspect", tmp_path) == 1
    assert one_error_line(capsys) == (f"numtorch inspect: error: {tmp_path / 'inspect.json'}: no such file "
                                      "(numtorch train --inspect writes it)")
    assert run("inspect", tmp_path / "none") == 1
    assert one_error_line(capsys) == f"numtorch inspect: error: {tmp_path / 'none'}: no such folder"


def test_train_tensorboard_writes_event_files(tmp_path, capsys):
    pytest.importorskip("tensorboardX")
    accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    out = tmp_path / "run"
    assert run("train", *FAST, "--no-progress", "--tensorboard", tmp_path / "tb", "--out", out) == 0
    events = accumulator.EventAccumulator(str(tmp_path / "tb"), size_guidance={"scalars": 0, "histograms": 0})
    events.Reload()
    scalars = set(events.Tags()["scalars"])
    assert {"epoch/lr", "epoch/train_loss", "epoch/train_accuracy", "epoch/val_loss", "epoch/val_accuracy",
            "train/loss", "0_Linear/W_update_ratio"} <= scalars
    assert "1_ReLU/output" in events.Tags()["histograms"]
    assert [e.step for e in events.Scalars("epoch/val_accuracy")] == [11, 22]  # 1,294 samples, batch 128
    assert not (out / "inspect.json").exists()  # --tensorboard alone writes no inspect files


def test_resnet_preset_on_digits_saves_loads_and_summarises_the_tree(tmp_path, capsys):
    out = tmp_path / "resnet"
    assert run("train", "--model", "resnet", "--epochs", "3", "--batch-size", "64", "--no-progress",
               "--out", out) == 0
    model, meta = io.load_with_metadata(out / "model.npz")
    assert meta["input_shape"] == [1, 8, 8]
    assert sum(isinstance(m, nt.CAddTable) for _, m in walk(model)) == 2
    record = json.loads((out / "history.json").read_text())
    assert record["hidden"] == [] and record["test"]["accuracy"] > 0.5
    capsys.readouterr()
    assert run("summary", out / "model.npz") == 0
    summary = capsys.readouterr().out
    for text in ("    (0) ConcatTable", "[(N, 16, 4, 4), (N, 16, 4, 4)]", "    (1) CAddTable",
                 "GlobalAvgPool2d", "(N, 32)", "Linear(32 -> 10)", "(N, 10)"):
        assert text in summary, text
    assert run("evaluate", out / "model.npz") == 0
    assert f"accuracy {record['test']['accuracy']:.4f}" in capsys.readouterr().out


def test_what_cannot_fit_in_memory_is_refused_before_allocating(tmp_path, capsys, monkeypatch):
    """Sizes no machine holds (tens of TiB), refused in one line before anything is allocated."""
    rng = np.random.default_rng(0)
    y = np.arange(40) % 3
    y[7] = 2_000_000
    np.savez(tmp_path / "labels.npz", X=rng.standard_normal((40, 4)), y=y)
    io.save(nt.Linear(3, 2), tmp_path / "huge.npz", input_shape=(100000, 100000, 1000))
    for argv, start in [
        (["train", "--hidden", "1000000,1000000", "--out", tmp_path / "a"],
         "numtorch train: error: not enough memory: --hidden 1000000,1000000: training 1,000,076,000,010 "
         "weights (with their gradients and adam's state) needs about "),
        (["train", "--data", tmp_path / "labels.npz", "--out", tmp_path / "b"],
         "numtorch train: error: not enough memory: --data: labels up to 2,000,000, so 2,000,001 classes: "
         "the test confusion matrix needs about "),
        (["summary", tmp_path / "huge.npz"],
         f"numtorch summary: error: not enough memory: {tmp_path / 'huge.npz'}: input_shape (100000, 100000, "
         "1000): one sample of zeros to find the output shapes needs about 36.4 TiB, more than the "),
    ]:
        result = numtorch_command(*argv)
        assert result.returncode == 1 and result.stderr.startswith(start), result.stderr
        assert result.stderr.count("\n") == 1

    # A model of 300,000 outputs: its confusion matrix (720 GB) on a machine with 1 GiB available.
    monkeypatch.setattr("numtorch._memory.available_memory", lambda: 2**30)
    np.savez(tmp_path / "one.npz", X=rng.standard_normal((40, 1)), y=np.arange(40) % 3)
    io.save(nt.Linear(1, 300000), tmp_path / "wide.npz", input_shape=(1,))
    assert run("evaluate", tmp_path / "wide.npz", "--data", tmp_path / "one.npz") == 1
    assert one_error_line(capsys) == (f"numtorch evaluate: error: not enough memory: {tmp_path / 'wide.npz'}"
                                      ": 300,000 outputs, so its 300,000 x 300,000 confusion matrix needs "
                                      "about 670.6 GiB, more than the 1.0 GiB this machine has available: "
                                      "this command cannot measure it")


def test_confusion_plot_writes_counts_up_to_twenty_classes(tmp_path, monkeypatch):
    plt = cli.pyplot()
    close, figures = plt.close, []
    monkeypatch.setattr(plt, "close", figures.append)
    for classes in (10, 200):
        cli.plot_confusion(np.eye(classes, dtype=np.int64) * 3, 1.0, tmp_path / f"c{classes}.png")
    small, large = (figure.axes[0] for figure in figures)
    assert len(small.texts) == 100 and len(small.get_xticks()) == 10
    assert len(large.texts) == 0
    for figure in figures:
        close(figure)


def test_export_import_evaluate_summary_and_fine_tune(tmp_path, capsys):
    """numtorch export, then numtorch import of that file: the model reads back whole, evaluate and summary
    take it, and the Python API fine-tunes it with a checkpoint it resumes from."""
    pytest.importorskip("onnx")
    out = tmp_path / "run"
    assert run("train", *FAST, "--out", out) == 0
    assert run("export", out / "model.npz", tmp_path / "model.onnx") == 0
    assert run("import", tmp_path / "model.onnx", tmp_path / "imported.npz") == 0
    output = capsys.readouterr().out
    assert "ONNX opset 17, input (N, 64) float32, 1,210 parameters" in output
    assert "input (N, 64), 1,210 parameters" in output
    trained, imported = io.load(out / "model.npz"), io.load(tmp_path / "imported.npz")
    assert repr(imported) == repr(trained)
    for ours, theirs in zip(nt.module.flatten(trained.getParameters()),
                            nt.module.flatten(imported.getParameters())):
        assert np.array_equal(ours, theirs)
    assert run("evaluate", out / "model.npz") == 0
    original = capsys.readouterr().out.split("\n", 1)[1]
    assert run("evaluate", tmp_path / "imported.npz") == 0
    assert capsys.readouterr().out.split("\n", 1)[1] == original
    assert run("summary", tmp_path / "imported.npz") == 0
    assert "total: 1,210 parameters" in capsys.readouterr().out

    (X, y), _ = nt.data.load_digits(0.2, seed=0)
    X = X.reshape(len(X), -1)
    checkpoint = tmp_path / "fine.ckpt.npz"
    optimizer = nt.SGD(imported, lr=0.01)
    first = nt.train.fit(imported, nt.CrossEntropyCriterion(), optimizer, (X, y), epochs=1, batch_size=64,
                         checkpoint=checkpoint, progress=False)
    resumed = nt.train.fit(imported, nt.CrossEntropyCriterion(), optimizer, (X, y), epochs=2, batch_size=64,
                           checkpoint=checkpoint, resume=True, progress=False)
    assert resumed["epoch"] == [1, 2] and resumed["train_loss"][0] == first["train_loss"][0]


def test_export_needs_an_input_shape_and_import_refuses_with_one_line(tmp_path, capsys):
    pytest.importorskip("onnx")
    io.save(nt.Sequential(nt.Linear(4, 2)), tmp_path / "model.npz")
    assert run("export", tmp_path / "model.npz", tmp_path / "model.onnx") == 1
    assert one_error_line(capsys) == (f"numtorch export: error: {tmp_path / 'model.npz'} records no input "
                                      "shape: give the shape of one sample with --input-shape, e.g. "
                                      "--input-shape 1,28,28")
    assert run("export", tmp_path / "model.npz", tmp_path / "model.onnx", "--input-shape", "4") == 0
    assert run("export", tmp_path / "model.npz", tmp_path / "m.onnx", "--input-shape", "4,x") == 2
    assert "expected positive sizes like 1,28,28" in one_error_line(capsys)
    (tmp_path / "bad.onnx").write_bytes(b"\x08\x07junk")
    assert run("import", tmp_path / "bad.onnx", tmp_path / "out.npz") == 1
    assert one_error_line(capsys).startswith(f"numtorch import: error: {tmp_path / 'bad.onnx'}: ")
    assert not (tmp_path / "out.npz").exists()
