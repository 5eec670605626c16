"""End to end: the example scripts train to their promised accuracy."""

import importlib.util
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
