"""``python -m benchmarks.child SPEC_JSON``: one contestant's measurement, in a process of its own.

The parent (``benchmarks.isolated``) starts one of these per measurement.
It imports only its own library's side (``benchmarks.numtorch_side`` or
``benchmarks.torch_side``), runs the spec's form and prints one JSON line:
its PID and parent's PID, the libraries it had imported when the
measurement ended, the per-step seconds of every timed window, what the
first steps returned, and (``"done_at"``) the system-wide monotonic clock
when the work ended, from which the parent computes a cold start's wall time.
With ``"environment": true`` it adds versions, thread counts and BLAS
libraries (threadpoolctl is imported for that only after the snapshot of
imported libraries).
"""

import importlib
import json
import os
import sys
import time

WATCHED = ("numtorch", "torch", "numpy", "scipy", "threadpoolctl", "tqdm", "matplotlib", "sklearn")
SIDES = {"numtorch": "benchmarks.numtorch_side", "torch": "benchmarks.torch_side"}


def imported():
    """The watched libraries this process has imported."""
    return [name for name in WATCHED if name in sys.modules]


def environment(library):
    """Versions, thread counts, the BLAS/OpenMP libraries loaded and the thread variables set."""
    import numpy

    info = {"python": sys.version.split()[0], "numpy": numpy.__version__}
    if library == "numtorch":
        import scipy

        import numtorch

        info.update(numtorch=numtorch.__version__, scipy=scipy.__version__)
    else:
        import torch

        info.update(torch=torch.__version__, torch_num_threads=torch.get_num_threads())
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        threadpool_info = list
    info["threadpools"] = [
        {"library": os.path.basename(pool["filepath"]),
         **{key: pool.get(key) for key in ("user_api", "internal_api", "version", "num_threads")}}
        for pool in threadpool_info()
    ]
    info["thread_env"] = {key: value for key, value in sorted(os.environ.items())
                          if key.startswith(("OPENBLAS_", "OMP_", "MKL_", "GOTO_"))}
    return info


def measure(spec):
    """Run ``spec`` and return the report (a JSON-ready dict)."""
    result = importlib.import_module(SIDES[spec["library"]]).run(spec)
    done_at = time.clock_gettime(time.CLOCK_MONOTONIC)
    report = {"pid": os.getpid(), "ppid": os.getppid(), "library": spec["library"], "form": spec["form"],
              "imported": imported(), "done_at": done_at, "values": result.get("values", [])}
    marks = result.get("marks", [])
    if marks:
        per_step = [(end - start) / spec["steps"] for start, end in zip(marks, marks[1:])]
        report["warmup_s"], report["windows_s"] = per_step[:spec["warmup"]], per_step[spec["warmup"]:]
    if result.get("threads") is not None:
        report["threads"] = result["threads"]
    if spec.get("environment"):
        report["environment"] = environment(spec["library"])
    return report


def peak_resident_mb():
    """This process's peak resident memory since it started its program, or None off Linux.

    /proc's VmHWM starts again at exec; ``ru_maxrss`` as the parent's ``wait4`` reports it does
    not: it includes the runner's own memory at the fork before exec, which grew from 61 to 115 MB
    over six runs and hid the child's 61 MB."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def main(argv=None):
    spec = json.loads((sys.argv[1:] if argv is None else argv)[0])
    report = measure(spec)
    report["peak_rss_mb"] = peak_resident_mb()
    print(json.dumps(report), flush=True)


if __name__ == "__main__":
    main()
