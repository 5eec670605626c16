"""The scaling benchmark runs end to end on tiny sizes (structure only; no timing is asserted)."""

import json

import pytest

from benchmarks.distributed import main, ring_allreduce_s
from harness import require_mpi


def test_tiny_run_writes_every_figure(tmp_path):
    require_mpi()
    pytest.importorskip("threadpoolctl")
    results = main(["--out", str(tmp_path), "--hidden", "6,5", "--batch", "8", "--steps", "2", "--repeats",
                    "2", "--warmup", "1", "--rounds", "1", "--machines", "2,4", "--weak-batch", "4"])
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["summary"] == json.loads(json.dumps(results["summary"]))
    runs = saved["runs"]
    assert [run["processes"] for run in runs] == [1, 2]
    assert [run["rank_batch"] for run in runs] == [8, 4]
    assert all(run["environment"]["blas_threads"] == [1] for run in runs)
    assert sorted(runs[0]["compute_s"]) == ["2", "4", "8"]
    summary = saved["summary"]
    assert summary["gradient_bytes"] == 4 * (784 * 6 + 6 + 6 * 5 + 5 + 5 * 10 + 10)
    for key in ("single_samples_per_s", "parallel_samples_per_s", "efficiency", "allreduce_share",
                "allreduce_alone_s", "latency_s", "copies_s", "views_s", "single_compute_cpu_s",
                "rank_compute_cpu_s"):
        assert summary[key] > 0, key
    assert [row["machines"] for row in summary["projection"]] == [2, 4]


def test_ring_allreduce_model():
    # 2 (N - 1) steps, each moving a 1/N slice and paying one latency.
    assert ring_allreduce_s(1, 1e6, 1e9, 1e-5) == 0
    assert ring_allreduce_s(4, 4e6, 1e9, 1e-5) == pytest.approx(6 * (1e-3 + 1e-5))
