"""The benchmarks run end to end on tiny sizes: structure, process isolation and agreement only.

No timing is asserted. The process-isolated benchmark (``python -m benchmarks``) must start a fresh
process per measurement whose imports are its own library's; its two sides must compute the same
thing; the in-process race (``benchmarks.race``) and ``benchmarks.phases`` stay runnable diagnostics.
"""

import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest

from harness import import_torch

import_torch()
pytest.importorskip("matplotlib")
pytest.importorskip("threadpoolctl")

from benchmarks import isolated, networks, numtorch_side, rows, torch_side  # noqa: E402
from benchmarks.__main__ import main, parse_args  # noqa: E402

TINY = ["--hidden", "6,5", "--train-batches", "4", "--train-window", "8", "--cnn-batch", "2",
        "--cnn-channels", "2,3", "--cnn-window", "4", "--infer-batches", "1,3", "--infer-window", "4,6",
        "--contention-batch", "4", "--warmup", "1", "--windows", "2"]


def test_every_measurement_is_a_fresh_process_that_imports_only_its_library(tmp_path):
    results = main(["--out", str(tmp_path), *TINY, "--pairs", "2", "--groups", "train,cold",
                    "--rows", "mlp-readme,cold"])[0]
    saved = json.loads((tmp_path / "results.json").read_text())
    assert [row["key"] for row in saved["rows"]] == ["mlp-readme-4", "cold-start"]
    assert (tmp_path / "results.png").stat().st_size > 0
    assert (tmp_path / "results.md").read_text().count("\n") == 2 + 1 + 2
    busy = main(["--out", str(tmp_path / "busy"), *TINY, "--pairs", "1", "--groups", "contention",
                 "--rows", "threads-busy", "--fixed-threads", "1"])[0]["rows"][0]
    results["rows"].append(busy)
    processes = [(row, entry["label"], process) for row in results["rows"] for entry in row["contestants"]
                 for process in entry["processes"]]
    assert len(processes) == 2 * 2 + 2 * 2 + 3
    pids = [process["pid"] for _, _, process in processes]
    assert len(set(pids)) == len(pids) and os.getpid() not in pids
    for _, label, process in processes:
        assert process["ppid"] == os.getpid() and process["child_pid"] == process["pid"]
        assert process["peak_rss_mb"] > 0 and process["wall_s"] > 0
        if process["library"] == "numtorch":
            assert "numtorch" in process["imported"] and "torch" not in process["imported"], label
        else:
            assert "torch" in process["imported"] and "numtorch" not in process["imported"], label
    for row in results["rows"]:
        # Alternated A B A B (A B C A B C): the spawn order is the contestants' order, round after round.
        spawned = sorted((process["spawned_at"], entry["label"]) for entry in row["contestants"]
                         for process in entry["processes"])
        order = [entry["label"] for entry in row["contestants"]]
        assert [label for _, label in spawned] == order * row["pairs"]
        assert row["max_difference"] is not None and row["max_difference"] < 1e-4, row["key"]
        for comparison in row["comparisons"]:
            assert len(comparison["ratios"]) == row["pairs"]
            assert comparison["min"] <= comparison["median"] <= comparison["max"]
    environment = saved["environment"]
    assert environment["numtorch"]["scipy"] and environment["torch"]["torch_num_threads"] >= 1
    labels = ["numtorch, auto", "numtorch, 1 thread", "PyTorch"]
    assert [entry["label"] for entry in busy["contestants"]] == labels
    assert busy["busy"] and busy["contestants"][1]["processes"][0]["threads"]["candidates"] == [1]
    auto = busy["contestants"][0]["processes"][0]["threads"]
    assert auto["candidates"][0] == 1 and max(auto["candidates"]) <= os.cpu_count()


def assert_sides_agree(spec, tolerance=1e-4):
    ours, theirs = numtorch_side.run(dict(spec)), torch_side.run(dict(spec))
    assert len(ours["marks"]) == len(theirs["marks"]) == spec["warmup"] + spec["windows"] + 1
    np.testing.assert_allclose(np.asarray(ours["values"], np.float64),
                               np.asarray(theirs["values"], np.float64), atol=tolerance)
    return ours, theirs


@pytest.mark.parametrize("form", ["readme", "equal", "fit", "inference"])
def test_both_sides_compute_the_same_mlp_steps(form):
    spec = {"library": "", "form": form, "network": "mlp", "hidden": [6, 5], "batch": 4, "steps": 3,
            "warmup": 1, "windows": 2, "seed": 3}
    ours, _ = assert_sides_agree(spec)
    if form == "fit":
        assert ours["threads"] is None or ours["threads"]["candidates"][0] == 1


def test_both_sides_compute_the_same_cnn_step():
    assert_sides_agree({"library": "", "form": "equal", "network": "cnn", "channels": [2, 3], "batch": 2,
                        "steps": 2, "warmup": 1, "windows": 1, "seed": 0})


def test_the_readme_form_skips_the_data_gradient_as_the_readme_shows():
    readme = (isolated.ROOT / "README.md").read_text()
    assert "net.needs_input_grad = False" in readme.split("```python\n")[1].split("```")[0]


def test_networks_are_the_same_numbers_every_time():
    layers = networks.mlp([6, 5])
    first, second = networks.initial_weights(layers, 0), networks.initial_weights(layers, 0)
    assert [w.shape for w, _ in first] == [(6, 784), (5, 6), (10, 5)]
    assert all(np.array_equal(a, b) for (a, _), (b, _) in zip(first, second))
    assert all(np.abs(w).max() <= 1 / np.sqrt(w.shape[1]) for w, _ in first)
    X, y = networks.dataset(0, 5, flat=False)
    assert X.shape == (5, 1, 28, 28) and X.dtype == np.float32 and y.shape == (5,)


def test_fit_orders_are_the_ones_fit_draws():
    from numtorch.data.loader import Batches

    X, y = networks.dataset(0, 10, flat=True)
    batches = Batches(X, y, 10, seed=7)
    for order in networks.epoch_orders(7, 10, 3):
        np.testing.assert_array_equal(next(iter(batches))[1], y[order])


def test_the_spinner_keeps_a_core_busy_and_stops():
    with isolated.Spinner() as spinner:
        time.sleep(0.3)
        with open(f"/proc/{spinner.process.pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        assert int(fields[11]) > 0, "no CPU time used"  # utime, in clock ticks
    assert spinner.process.poll() is not None


def test_a_spinner_whose_parent_died_stops():
    code = ("import subprocess, sys; from benchmarks.isolated import SPIN; "
            "print(subprocess.Popen([sys.executable, '-c', SPIN]).pid)")
    parent = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=isolated.ROOT,
                            env=isolated.child_environment(), timeout=60)
    orphan = int(parent.stdout)
    for _ in range(100):
        if not os.path.exists(f"/proc/{orphan}") or open(f"/proc/{orphan}/stat").read().split()[2] == "Z":
            break
        time.sleep(0.1)
    else:
        os.kill(orphan, 9)
        raise AssertionError("the spinner outlived its parent")


def test_thread_rows_compare_auto_with_every_fixed_count_and_pytorch():
    args = parse_args([*TINY, "--fixed-threads", "1,2,4"])
    idle, busy = rows.contention_rows(args)
    fixed = ["numtorch, 1 thread", "numtorch, 2 threads", "numtorch, 4 threads"]
    assert [c["label"] for c in busy["contestants"]] == ["numtorch, auto", *fixed, "PyTorch"]
    assert [c["spec"].get("threads") for c in busy["contestants"]] == ["auto", 1, 2, 4, None]
    assert busy["busy"] and not idle["busy"]
    assert busy["statistic"] == "median" and idle["statistic"] == "fastest"
    assert busy["comparisons"][0]["to"] == fixed
    assert [c["target"] for c in busy["comparisons"]] == [1.2, None]


def test_default_rows_and_targets():
    table = {row["key"]: [c["target"] for c in row["comparisons"]] for row in rows.all_rows(parse_args([]))}
    for form in ("readme", "fit", "equal"):
        assert [table[f"mlp-{form}-{b}"] for b in (32, 128, 512)] == [[0.9], [0.9], [1.0]]
    assert table["cnn-equal-64"] == [0.9]
    assert table["mlp-inference-1"] == [0.8] and table["mlp-inference-256"] == [0.95]
    assert table["cold-start"] == [0.3, 0.3]
    assert table["threads-idle-128"] == [1.05, None] and table["threads-busy-128"] == [1.2, None]
    for row in rows.all_rows(parse_args([])):
        for contestant in row["contestants"]:
            spec = contestant["spec"]
            if row["group"] != "cold":
                assert spec["steps"] >= 2 and spec["warmup"] >= 1
            if spec["form"] == "fit":  # fit's thread probe ends inside the warm-up
                assert spec["warmup"] * spec["steps"] >= rows.FIT_WARMUP_STEPS, row["key"]


def test_summary_lists_every_run_and_the_median():
    from benchmarks.report import summary

    def run(ratio):
        comparison = {"name": "", "target": 0.9, "median": ratio}
        return {"rows": [{"name": "MLP train, batch 32, fit", "comparisons": [comparison]}]}

    text, table = summary([run(0.8), run(1.0), run(0.85)])
    assert "| MLP train, batch 32, fit | 0.80 / 1.00 / 0.85 | 0.85 | <= 0.9 | 2 of 3 |" in text
    assert table["MLP train, batch 32, fit"]["median"] == 0.85


def test_the_in_process_race_runs_as_a_diagnostic(tmp_path):
    from benchmarks.race import main as race_main

    results = race_main(["--out", str(tmp_path), "--hidden", "6,5", "--train-batches", "3",
                         "--cnn-batch", "2", "--cnn-channels", "2,3", "--infer-batches", "1",
                         "--gemm-batch", "4", "--repeats", "2", "--steps", "2", "--warmup", "1",
                         "--settle", "0", "--data-batches", "2"])
    assert (tmp_path / "results.png").stat().st_size > 0
    for row in results["rows"]:
        if row["reference"] == "PyTorch":
            assert row["max_difference"] < 1e-4, row["name"]


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


def test_results_json_is_strict_json(tmp_path):
    """A NaN (a loss that diverged, a ratio of nothing) is written as null, not as the bare NaN token."""
    from benchmarks.report import write_json

    write_json({"rows": [{"ratio": float("nan"), "ms": 1.5}]}, tmp_path / "results.json")

    def refuse(token):
        raise ValueError(f"not strict JSON: {token}")

    text = (tmp_path / "results.json").read_text()
    assert json.loads(text, parse_constant=refuse) == {"rows": [{"ratio": None, "ms": 1.5}]}
