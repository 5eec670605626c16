"""The benchmark runs end to end on tiny sizes (structure and agreement only; no timing is asserted)."""

import json

import numpy as np
import pytest

from harness import import_torch

import_torch()
pytest.importorskip("matplotlib")
pytest.importorskip("threadpoolctl")

from benchmarks.__main__ import main  # noqa: E402


def test_tiny_run_writes_results_and_both_libraries_agree(tmp_path):
    results = main(["--out", str(tmp_path), "--hidden", "6,5", "--train-batches", "3,4",
                    "--cnn-batch", "2", "--cnn-channels", "2,3", "--infer-batches", "1,3",
                    "--gemm-batch", "4", "--repeats", "2", "--steps", "2", "--warmup", "1", "--settle", "0",
                    "--data-batches", "2"])
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["rows"] == json.loads(json.dumps(results["rows"]))
    assert (tmp_path / "results.png").stat().st_size > 0
    env = saved["environment"]
    assert env["torch_num_threads"] >= 1 and isinstance(env["thread_env"], dict)
    assert any(pool["user_api"] == "blas" for pool in env["blas"])
    names = [row["name"] for row in saved["rows"]]
    assert names == ["MLP train, batch 3", "MLP train, batch 4", "CNN train, batch 2",
                     "MLP inference, batch 1", "MLP inference, batch 3",
                     "MLP train step / GEMM only, batch 4"]
    for row in saved["rows"]:
        assert len(row["repetitions_s"][0]) == len(row["repetitions_s"][1]) == 2
        assert row["ratio"] == pytest.approx(row["time_s"][0] / row["time_s"][1])
        if row["reference"] == "PyTorch":
            assert row["max_difference"] < 1e-4, row["name"]
    for row in saved["rows"]:
        has_floor = row["name"].startswith(("MLP train,", "MLP inference"))
        assert (row["floor_ratio"] is not None) == has_floor, row["name"]
        if has_floor:
            assert len(row["floor_repetitions_s"]) == 2
            assert row["floor_ratio"] == pytest.approx(row["floor_s"] / row["time_s"][1])
    for row in saved["rows"][:3]:
        ours, theirs = row["losses"]
        assert len(ours) == 2 and np.all(np.isfinite(ours))
        np.testing.assert_allclose(ours, theirs, rtol=1e-5)


def test_race_rotates_the_starting_contestant_and_keeps_each_ones_step_count():
    from benchmarks.timing import race

    calls = []
    contestants = [lambda i, k=k: calls.append((k, i)) or k for k in range(3)]
    times, values = race(contestants, warmup=1, repeats=3, steps=2, settle=0.001, rewarm=1)
    assert [len(t) for t in times] == [3, 3, 3]
    # warm-up, then per repetition: one re-warm step and two timed steps, starting with r mod 3.
    starts = [calls[3 + 9 * r][0] for r in range(3)]
    assert starts == [0, 1, 2]
    for k in range(3):
        assert [i for who, i in calls if who == k] == list(range(1 + 3 * 3))
        assert values[k] == [k] * 10


def test_phases_time_every_part_of_the_step():
    from benchmarks.phases import PHASES
    from benchmarks.phases import main as phases_main

    total, gemm, medians = phases_main(["--hidden", "6,5", "--batch", "4", "--repeats", "2", "--steps", "2",
                                        "--settle", "0"])
    assert list(medians) == list(PHASES)
    assert total > 0 and gemm > 0 and all(value > 0 for value in medians.values())


def test_the_timed_step_is_the_benchmark_step():
    # benchmarks.phases times its own copy of the step: it must stay the same computation.
    import numtorch as nt
    from benchmarks import models
    from benchmarks.phases import timed_step

    data = models.synthetic_batches(0, 4, 3, flat=True)
    nt.manual_seed(0)
    plain = models.numtorch_train_step(models.mlp([6, 5]), data)
    nt.manual_seed(0)
    timed, phases = timed_step(models.mlp([6, 5]), data)
    assert [plain(i) for i in range(5)] == [timed(i) for i in range(5)]
    assert all(len(values) == 5 for values in phases.values())


def test_inspector_overhead_measurement_runs_each_configuration_in_its_own_process(tmp_path):
    from benchmarks.inspect_overhead import main as overhead

    results = overhead(["--models", "mlp", "--data", "digits", "--hidden", "8", "--epochs", "1",
                        "--every", "5", "--repeats", "1", "--threads", "1",
                        "--out", str(tmp_path / "overhead.json")])
    mlp = results["mlp"]
    assert mlp["steps"] == 21 and mlp["records"] == 5  # steps 1, 6, 11, 16, 21
    assert [run["records"] for run in mlp["runs"]["off"]] == [0]
    assert 0 < mlp["inspector_share"] < 1 and mlp["ratio_of_medians"] > 0
    assert json.loads((tmp_path / "overhead.json").read_text())["mlp"]["every"] == 5
