"""End to end: the example scripts train to their promised accuracy; every README Python block runs."""

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def load_example(name):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def record_backward_results(monkeypatch):
    """What every ``Sequential.backward`` call returns, from now on (None: the data gradient skipped)."""
    import numtorch as nt

    results, backward = [], nt.Sequential.backward

    def recording(self, input, gradOutput):
        results.append(backward(self, input, gradOutput))
        return results[-1]

    monkeypatch.setattr(nt.Sequential, "backward", recording)
    return results


def test_train_digits_reaches_95_percent(monkeypatch):
    pytest.importorskip("sklearn")
    lines = []
    backward_results = record_backward_results(monkeypatch)
    accuracy = load_example("train_digits").train(seed=0, log=lambda line: lines.append(str(line)))
    assert backward_results and all(result is None for result in backward_results), \
        "the example computes the gradient with respect to the data"
    assert accuracy >= 0.95
    epochs = [line for line in lines if line.startswith("epoch")]
    assert len(epochs) == 15
    losses = [float(line.split("loss")[1]) for line in epochs]
    assert losses[-1] < losses[0] / 5, "the loss did not fall"
    assert lines[-1].startswith("test accuracy")


def test_readme_training_example_runs_and_fits_its_batch(capsys):
    readme = (EXAMPLES.parent / "README.md").read_text()
    example = readme.split("```python\n")[1].split("```")[0]
    namespace = {}
    exec(compile(example, "README.md", "exec"), namespace)
    loss, accuracy = (float(v) for v in capsys.readouterr().out.split())
    assert loss < 0.5 and accuracy > 0.9
    assert namespace["net"].needs_input_grad is False, "the README loop computes the data gradient"


MNIST = EXAMPLES.parent / ".." / "shared" / "data" / "mnist-t10k"


def test_train_mnist_cnn_skips_where_the_data_is_absent(tmp_path, capsys):
    assert load_example("train_mnist_cnn").main([str(tmp_path / "absent")]) == 0
    assert capsys.readouterr().out.startswith(f"skipped: MNIST folder {tmp_path / 'absent'} not found")


def test_train_mnist_cnn_learns_in_one_short_epoch(monkeypatch):
    """2,000 training images, 500 test ones: a quick check that the script runs and learns
    (the full run, 8 epochs on 8,000 images, reaches about 98%)."""
    if not MNIST.is_dir():
        pytest.skip(f"{MNIST} not found (optional data for this check)")
    lines = []
    example = load_example("train_mnist_cnn")
    monkeypatch.setattr(example, "N_TRAIN", 2000)
    monkeypatch.setattr(example, "N_TEST", 500)
    backward_results = record_backward_results(monkeypatch)
    accuracy = example.train(MNIST, epochs=1, log=lambda line: lines.append(str(line)))
    assert backward_results and all(result is None for result in backward_results)
    assert accuracy >= 0.6
    assert lines[-1] == f"test accuracy {accuracy:.2%} (500 images)"
    assert lines[1].startswith("epoch 1  loss") and " s  test accuracy" in lines[1]


def test_train_mnist_resnet_skips_where_the_data_is_absent(tmp_path, capsys):
    assert load_example("train_mnist_resnet").main([str(tmp_path / "absent")]) == 0
    assert capsys.readouterr().out.startswith(f"skipped: MNIST folder {tmp_path / 'absent'} not found")


def test_train_mnist_resnet_learns_in_two_short_epochs(monkeypatch):
    """2,000 training images, 500 test ones: the residual network of tables runs through fit and
    learns, without the data gradient (the full run, 8 epochs on 8,000 images, reaches about 99%)."""
    if not MNIST.is_dir():
        pytest.skip(f"{MNIST} not found (optional data for this check)")
    lines = []
    example = load_example("train_mnist_resnet")
    monkeypatch.setattr(example, "N_TRAIN", 2000)
    monkeypatch.setattr(example, "N_TEST", 500)
    backward_results = record_backward_results(monkeypatch)
    accuracy = example.train(MNIST, epochs=2, log=lambda line: lines.append(str(line)))
    assert backward_results and backward_results[-1] is None  # the outermost call, last
    assert accuracy >= 0.6
    assert "ConcatTable" in lines[0] and "CAddTable" in lines[0]
    assert lines[-1] == f"test accuracy {accuracy:.2%} (500 images)"


README = EXAMPLES.parent / "README.md"
SRC = EXAMPLES.parent / "src"
SKIP_STATUS = 77
RUN_BLOCK = f"""
import sys
code = sys.stdin.read()
try:
    exec(compile(code, "README.md", "exec"), {{"__name__": "__main__"}})
except ImportError as error:
    # An optional extra that is not installed (a module outside numtorch, or numtorch's own
    # "pip install 'numtorch[...]'" hint) skips the block; a numtorch name that does not exist fails it.
    missing = error.name or ""
    if (missing and missing.split(".")[0] != "numtorch") or "pip install 'numtorch[" in str(error):
        print(error)
        sys.exit({SKIP_STATUS})
    raise
"""


def readme_python_blocks():
    """``(line, code)`` of every ```python block of the README (line: where its code starts)."""
    blocks, lines = [], README.read_text().splitlines()
    start = None
    for number, line in enumerate(lines, 1):
        if start is None and line.strip() == "```python":
            start = number + 1
        elif start is not None and line.strip() == "```":
            blocks.append((start, "\n".join(lines[start - 1:number - 1]) + "\n"))
            start = None
    assert start is None, f"README.md:{start}: a ```python block is never closed"
    return blocks


def run_block(code, line, cwd):
    """Run a README block alone, in a fresh interpreter in ``cwd``; its line numbers are the README's."""
    env = dict(os.environ, PYTHONPATH=str(SRC), MPLBACKEND="Agg")
    return subprocess.run([sys.executable, "-c", RUN_BLOCK], input="\n" * (line - 1) + code, text=True,
                          capture_output=True, cwd=cwd, env=env, timeout=300)


@pytest.mark.parametrize("line,code", readme_python_blocks(), ids=lambda value: f"README.md:{value}"
                         if isinstance(value, int) else "")
def test_every_readme_python_block_runs_as_written(tmp_path, line, code):
    """Each block alone in an empty folder (what a reader pasting it gets); a block that needs an
    extra that is not installed (scikit-learn for the digits, ...) is skipped."""
    result = run_block(code, line, tmp_path)
    if result.returncode == SKIP_STATUS:
        pytest.skip(f"README.md:{line} needs an extra: {result.stdout.strip()}")
    assert result.returncode == 0, f"README.md:{line} failed:\n{result.stderr}"


def test_readme_blocks_are_found_and_judged(tmp_path):
    blocks = readme_python_blocks()
    assert len(blocks) >= 3 and all(code.strip() for _, code in blocks)
    assert any("gradcheck(" in code for _, code in blocks)
    fragment = run_block("import numpy as np\nfrom numtorch import *\nMyLayer()\n", 70, tmp_path)
    assert fragment.returncode == 1 and 'File "README.md", line 72' in fragment.stderr
    assert "NameError: name 'MyLayer' is not defined" in fragment.stderr
    assert run_block("from numtorch import Nothing\n", 1, tmp_path).returncode == 1
    assert run_block("import numtorch_extra_not_installed\n", 1, tmp_path).returncode == SKIP_STATUS
