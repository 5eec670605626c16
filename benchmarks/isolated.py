"""Every measurement in a fresh process: spawn, alternate, and turn the reports into ratios.

For each row the contestants' processes run one after the other, A B A B
... (A B C D A B C D ... with more contestants), ``pairs`` rounds. Each
child times ``windows`` windows of steps after ``warmup`` untimed ones and
reports the per-step time of every window; the row's statistic turns them
into one value per process: the fastest window (noise on a shared machine
only ever adds time) or, where the noise is the point (next to a busy core),
the median window. A round gives one ratio per comparison; the row reports
the median of the rounds' ratios and their spread (min and max).

The parent imports neither numtorch nor torch. It measures what only it can
see: a child's wall time from the moment it was spawned (cold start) and,
through ``os.wait4``, the child's CPU time; its peak resident memory comes from the child
itself (``VmHWM``: ``wait4``'s ``ru_maxrss`` counts the runner's memory at the fork too).
"""

import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks import networks

ROOT = Path(__file__).resolve().parent.parent


def child_environment():
    """The child's environment: this one, with the repository importable (``benchmarks`` and, for a
    source checkout, ``src``)."""
    paths = [str(ROOT), str(ROOT / "src")]
    existing = os.environ.get("PYTHONPATH")
    return dict(os.environ, PYTHONPATH=os.pathsep.join(paths + ([existing] if existing else [])))


def spawn(spec):
    """Run ``python -m benchmarks.child SPEC`` and wait for it; its report plus what the parent measured."""
    with tempfile.TemporaryFile() as errors:
        spawned_at = time.clock_gettime(time.CLOCK_MONOTONIC)
        process = subprocess.Popen([sys.executable, "-m", "benchmarks.child", json.dumps(spec)],
                                   stdout=subprocess.PIPE, stderr=errors, cwd=ROOT, env=child_environment())
        output = process.stdout.read()
        process.stdout.close()
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        if process.returncode != 0:
            errors.seek(0)
            message = errors.read().decode(errors="replace").strip().splitlines()[-5:]
            raise RuntimeError(f"benchmark child {spec['library']} {spec['form']} exited with status "
                               f"{process.returncode}: " + " | ".join(message))
    report = json.loads(output.decode().strip().splitlines()[-1])
    report["spawned_at"] = spawned_at
    report["wall_s"] = report["done_at"] - spawned_at
    if report.get("peak_rss_mb") is None:  # the child's own VmHWM where /proc has it
        report["peak_rss_mb"] = usage.ru_maxrss / 1024  # Linux reports kilobytes
    report["cpu_s"] = usage.ru_utime + usage.ru_stime
    report["child_pid"] = process.pid
    return report


# A Python busy loop that also ends when its parent has gone (it then belongs to another parent).
SPIN = """
import os
parent = os.getppid()
while os.getppid() == parent:
    for _ in range(1_000_000):
        pass
"""


class Spinner:
    """One CPU-bound process for the life of a ``with`` block."""

    def __enter__(self):
        self.process = subprocess.Popen([sys.executable, "-c", SPIN])
        time.sleep(0.2)
        return self

    def __exit__(self, *exc):
        self.process.kill()
        self.process.wait()


def value(report, metric, statistic):
    """One number per process: seconds a step (the row's statistic over the windows), wall seconds or MB."""
    if metric == "wall":
        return report["wall_s"]
    if metric == "rss":
        return report["peak_rss_mb"]
    windows = report["windows_s"]
    return min(windows) if statistic == "fastest" else statistics.median(windows)


def max_difference(reports):
    """Largest absolute difference between what numtorch's and PyTorch's processes returned."""
    by_library = {}
    for report in reports:
        by_library.setdefault(report["library"], report)
    if len(by_library) < 2:
        return None
    ours, theirs = (np.asarray(by_library[name]["values"], dtype=np.float64)
                    for name in ("numtorch", "torch"))
    if ours.shape != theirs.shape or ours.size == 0:
        return None
    return float(np.max(np.abs(ours - theirs)))


def prepare(row, folder):
    """Files a row's children read: for the cold start, each library's saved MLP and one input sample."""
    if row["group"] != "cold":
        return
    X, _ = networks.dataset(row["contestants"][0]["spec"]["seed"], 1, flat=True)
    np.save(folder / "input.npy", X)
    for contestant in row["contestants"]:
        spec = contestant["spec"]
        path = folder / f"model-{spec['library']}.{'npz' if spec['library'] == 'numtorch' else 'pt'}"
        spec.update(model_path=str(path), input_path=str(folder / "input.npy"))
        spawn(dict(spec, form="prepare"))


def run_row(row, pairs, log=print):
    """Run ``pairs`` rounds of the row's contestants, alternating; the row with its results filled in."""
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="numtorch-bench-") as folder:
        prepare(row, Path(folder))
        with Spinner() if row["busy"] else contextlib.nullcontext():
            # Versions and thread pools from the first round (not cold starts: it adds to their memory).
            rounds = [[spawn(dict(contestant["spec"], environment=r == 0 and row["group"] != "cold"))
                       for contestant in row["contestants"]]
                      for r in range(pairs)]
    result = dict(row, pairs=pairs, seconds=time.perf_counter() - started)
    result["max_difference"] = max_difference(rounds[0])
    result["environment"] = {report["library"]: report.pop("environment")
                             for report in rounds[0] if "environment" in report}
    metrics = {comparison["metric"] for comparison in row["comparisons"]}
    result["contestants"] = []
    for k, contestant in enumerate(row["contestants"]):
        processes = [round_[k] for round_ in rounds]
        entry = dict(contestant, processes=processes)
        for metric in sorted(metrics):
            values = [value(report, metric, row["statistic"]) for report in processes]
            entry[metric] = {"values": values, "median": statistics.median(values)}
        result["contestants"].append(entry)
    result["comparisons"] = []
    for comparison in row["comparisons"]:
        metric = comparison["metric"]
        values = {entry["label"]: entry[metric]["values"] for entry in result["contestants"]}
        of = values[comparison["of"]]
        to = [min(values[label][r] for label in comparison["to"]) for r in range(pairs)]
        ratios = [a / b for a, b in zip(of, to)]
        median = statistics.median(ratios)
        target = comparison["target"]
        result["comparisons"].append(dict(
            comparison, ratios=ratios, median=median, min=min(ratios), max=max(ratios),
            of_median=statistics.median(of), to_median=statistics.median(to),
            met=None if target is None else median <= target))
    for comparison in result["comparisons"]:
        name = row["name"] + (f": {comparison['name']}" if comparison["name"] else "")
        log(f"{name:<58} ratio {comparison['median']:5.2f} ({comparison['min']:.2f}-{comparison['max']:.2f}) "
            f"{format_value(comparison['of_median'], comparison['metric'])} vs "
            f"{format_value(comparison['to_median'], comparison['metric'])}  [{pairs} rounds, "
            f"{result['seconds']:.0f} s]")
    return result


def format_value(number, metric):
    if metric == "rss":
        return f"{number:.0f} MB"
    return f"{number * 1e3:.3f} ms"
