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
    for row in saved["rows"][:3]:
        ours, theirs = row["losses"]
        assert len(ours) == 2 and np.all(np.isfinite(ours))
        np.testing.assert_allclose(ours, theirs, rtol=1e-5)
