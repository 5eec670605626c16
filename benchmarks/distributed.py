"""``python -m benchmarks.distributed``: data-parallel scaling of the MLP step under mpiexec.

Two configurations, each in processes of its own, taking turns (``--rounds``):
one process with one BLAS thread, and ``--processes`` ranks under ``mpiexec``
with one BLAS thread each, all training the MLP 784-512-256-10 (LogSoftMax,
NLL loss, SGD with momentum) on the same synthetic MNIST-shaped global
batches of ``--batch`` samples. A rank's step is the one ``fit`` takes: its
part of the batch forward and backward, ``distributed.average_gradients``
(the gradients copied into one buffer, one ``Allreduce``, copied back), the
update. Reported: samples per second (median over repetitions, then over
rounds), the scaling efficiency (N ranks' samples/s over N times one
process's; target >= 0.8), the share of a rank's step spent in the
``Allreduce`` (waiting for the slower rank included) and in the copies, and
the CPU time of forward and backward (which other load does not stretch, as
it stretches the wall-clock times: a check on how quiet the machine was).

Also measured by the ranks: ``Allreduce`` alone on the gradient buffer and on
one value (bandwidth and latency here), the copies against what gradient
arrays that were views into the buffer would still cost (the weighting's two
passes over the buffer), and, by the single process, the step time at the
per-machine batches of the projection. From those, a ring-allreduce model
projects the efficiency on 8 and 64 machines on a ``--network-gbps`` network.

Use the size options for a quick run (``tests/test_benchmark_distributed.py``
runs it on tiny sizes); figures for the README come from a quiet machine.
"""

import argparse
import json
import os
import pathlib
import statistics
import subprocess
import sys
import time

from numtorch.io.archive import strict_json

ROOT = pathlib.Path(__file__).resolve().parents[1]


def sizes(text):
    return [int(v) for v in text.split(",") if v]


def parse_args(argv=None):
    parser = argparse.ArgumentParser(prog="python -m benchmarks.distributed",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path("benchmarks/results-distributed"),
                        help="folder for results.json (default: %(default)s)")
    parser.add_argument("--processes", type=int, default=2, help="ranks of the parallel run (default: 2)")
    parser.add_argument("--hidden", type=sizes, default=[512, 256],
                        help="MLP hidden sizes (default: 512,256)")
    parser.add_argument("--batch", type=int, default=256, help="global batch (default: %(default)s)")
    parser.add_argument("--steps", type=int, default=20, help="steps per repetition (default: %(default)s)")
    parser.add_argument("--repeats", type=int, default=15, help="timed repetitions (default: %(default)s)")
    parser.add_argument("--warmup", type=int, default=10, help="untimed steps first (default: %(default)s)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="times each configuration runs, in turns (default: %(default)s)")
    parser.add_argument("--machines", type=sizes, default=[8, 64],
                        help="machine counts of the projection (default: 8,64)")
    parser.add_argument("--network-gbps", type=float, default=10.0,
                        help="network bandwidth of the projection, Gb/s (default: %(default)s)")
    parser.add_argument("--latency-us", type=float, default=25.0,
                        help="network latency per message of the projection, microseconds "
                             "(default: %(default)s, a TCP round on 10 Gb Ethernet)")
    parser.add_argument("--weak-batch", type=int, default=128,
                        help="per-machine batch of the projection's growing global batch (default: 128)")
    parser.add_argument("--bind-to", help="mpiexec's --bind-to for the ranks (default: mpiexec's own, "
                                          "one core per rank for 2 ranks)")
    parser.add_argument("--worker", type=pathlib.Path, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def single_thread_environment(**extra):
    """This environment with one BLAS thread per process and no launcher variables of the caller."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OMPI_", "PMIX_", "PMI_"))}
    env.update(OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1", NUMTORCH_BLAS_THREADS="1",
               PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT / "src"), str(ROOT),
                                                        os.environ.get("PYTHONPATH")])), **extra)
    return env


def worker_arguments(args, result):
    return ["-m", "benchmarks.distributed", "--worker", str(result),
            "--hidden", ",".join(map(str, args.hidden)), "--batch", str(args.batch),
            "--steps", str(args.steps), "--repeats", str(args.repeats),
            "--warmup", str(args.warmup), "--machines", ",".join(map(str, args.machines)),
            "--weak-batch", str(args.weak_batch)]


def run_configuration(args, processes, result):
    """One configuration in processes of its own; returns what its rank 0 wrote."""
    command = [sys.executable, *worker_arguments(args, result)]
    env = single_thread_environment()
    if processes > 1:
        mpiexec = pathlib.Path(sys.executable).with_name("mpiexec")
        command = [str(mpiexec), "-n", str(processes), *command]
        if processes > (os.cpu_count() or 1):
            command.insert(1, "--oversubscribe")
        if args.bind_to:
            command[1:1] = ["--bind-to", args.bind_to]
        if os.geteuid() == 0:
            env.update(OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    finished = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=3600)
    if finished.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{finished.stdout}\n{finished.stderr}")
    return json.loads(result.read_text())


# The worker: runs in every process of a configuration.

def timed_steps(step, args, barrier):
    """Median-ready per-repetition mean step times (s) of ``step(i)`` after ``args.warmup`` steps."""
    for i in range(args.warmup):
        step(i)
    times, i = [], args.warmup
    for _ in range(args.repeats):
        barrier()
        start = time.perf_counter()
        for _ in range(args.steps):
            step(i)
            i += 1
        times.append((time.perf_counter() - start) / args.steps)
    return times


def timed_calls(call, repeats):
    """The median time of ``call()`` over ``repeats`` calls, after three untimed ones."""
    for _ in range(3):
        call()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def worker(args):
    import numpy as np

    import numtorch as nt
    from benchmarks import models
    from numtorch import distributed
    from numtorch.distributed import data_parallel
    from numtorch.module import flatten
    from numtorch.optim import sgd_momentum

    comm = distributed.init()
    barrier = comm.Barrier if comm is not None else (lambda: None)
    size, rank = distributed.size(), distributed.rank()
    nt.manual_seed(0)
    model = models.mlp(args.hidden)
    batches = models.synthetic_batches(0, args.batch, 8, flat=True)
    mine = distributed.part(args.batch)
    parts = [(x[mine], y[mine]) for x, y in batches]
    criterion = nt.ClassNLLCriterion(log_input=True)
    params, grads = model.getParameters(), model.getGradParameters()
    config, state = {"learning_rate": models.LEARNING_RATE, "momentum": models.MOMENTUM}, {}

    clocks = {"average": 0.0, "allreduce": 0.0, "compute_cpu": 0.0}
    reduce_in_place = data_parallel.reduce_in_place

    def timed_reduce(buffer):
        start = time.perf_counter()
        reduce_in_place(buffer)
        clocks["allreduce"] += time.perf_counter() - start

    data_parallel.reduce_in_place = timed_reduce

    def step(i):
        x, y = parts[i % len(parts)]
        cpu = time.process_time()
        model.zeroGradParameters()
        output = model.forward(x)
        criterion.forward(output, y)
        model.backward(x, criterion.backward(output, y))
        clocks["compute_cpu"] += time.process_time() - cpu
        start = time.perf_counter()
        distributed.average_gradients(model, len(y))
        clocks["average"] += time.perf_counter() - start
        sgd_momentum(params, grads, config, state)

    step(0)
    clocks.update(average=0.0, allreduce=0.0, compute_cpu=0.0)
    times = timed_steps(step, args, barrier)
    steps = args.steps * args.repeats + args.warmup
    record = {"processes": size, "rank_batch": mine.stop - mine.start, "step_s": statistics.median(times),
              "repetitions_s": times, "samples_per_s": args.batch / statistics.median(times),
              "average_s": clocks["average"] / steps, "allreduce_s": clocks["allreduce"] / steps,
              "compute_cpu_s": clocks["compute_cpu"] / steps}
    data_parallel.reduce_in_place = reduce_in_place

    grad_list = flatten(grads)
    count = sum(g.size for g in grad_list) + 1
    buffer = data_parallel.flat_buffer(np.float32, count)
    record["gradient_bytes"] = 4 * (count - 1)

    def copies():
        offset = 0
        for grad in grad_list:
            np.multiply(grad, 3, out=buffer[offset:offset + grad.size].reshape(grad.shape))
            offset += grad.size
        offset = 0
        for grad in grad_list:
            np.divide(buffer[offset:offset + grad.size].reshape(grad.shape), 7, out=grad)
            offset += grad.size

    def views():
        buffer[:-1] *= 3
        buffer[:-1] /= 7

    record["copies_s"] = timed_calls(copies, 50)
    record["views_s"] = timed_calls(views, 50)
    if size > 1:
        one = np.zeros(1, np.float64)
        barrier()
        record["allreduce_alone_s"] = timed_calls(lambda: reduce_in_place(buffer), 50)
        barrier()
        record["allreduce_one_value_s"] = timed_calls(lambda: reduce_in_place(one), 200)
    else:
        batches = {machine_batch(args, machines) for machines in [1, *args.machines]} | {args.weak_batch}
        record["compute_s"] = {str(batch): batch_step_time(model, batch, args, (criterion, config, state))
                               for batch in sorted(batches)}
    if rank == 0:
        record["environment"] = environment()
        args.worker.write_text(strict_json(record, indent=1))


def machine_batch(args, machines):
    """Each machine's part of the global batch on ``machines`` machines (at least one sample)."""
    return max(1, args.batch // machines)


def batch_step_time(model, batch, args, step_parts):
    """Median step time (s) of the single process at ``batch`` samples: one machine's compute."""
    from benchmarks import models
    from numtorch.optim import sgd_momentum

    criterion, config, state = step_parts
    batches = models.synthetic_batches(1, batch, 4, flat=True)
    params, grads = model.getParameters(), model.getGradParameters()

    def step(i):
        x, y = batches[i % len(batches)]
        model.zeroGradParameters()
        output = model.forward(x)
        criterion.forward(output, y)
        model.backward(x, criterion.backward(output, y))
        sgd_momentum(params, grads, config, state)

    return statistics.median(timed_steps(step, args, lambda: None))


def environment():
    import numpy as np
    import scipy
    from threadpoolctl import threadpool_info

    from benchmarks.report import cpu_model

    return {"machine": f"{cpu_model()}, {os.cpu_count()} CPUs", "python": sys.version.split()[0],
            "numpy": np.__version__, "scipy": scipy.__version__,
            "blas_threads": sorted({pool["num_threads"] for pool in threadpool_info()
                                    if pool["user_api"] == "blas"}),
            "load_average": os.getloadavg(),
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}


# The orchestrator.

def ring_allreduce_s(machines, nbytes, bandwidth, latency):
    """Ring allreduce: 2 (N - 1) messages of nbytes / N each (reduce-scatter, then allgather)."""
    return 2 * (machines - 1) * (nbytes / machines / bandwidth + latency)


def projection(single, gradient_bytes, args):
    """Efficiency on N machines: one step's compute at the per-machine batch, then the ring allreduce.

    No overlap of communication with computation (numtorch reduces once,
    after backward). Strong: the global batch stays ``--batch``; weak: each
    machine keeps ``--weak-batch`` samples.
    """
    bandwidth = args.network_gbps * 1e9 / 8
    latency = args.latency_us * 1e-6
    compute = {int(k): v for k, v in single["compute_s"].items()}
    rows = []
    for machines in args.machines:
        allreduce = ring_allreduce_s(machines, gradient_bytes, bandwidth, latency)
        strong_compute = compute[machine_batch(args, machines)]
        strong = compute[args.batch] / (machines * (strong_compute + allreduce))
        weak = compute[args.weak_batch] / (compute[args.weak_batch] + allreduce)
        rows.append({"machines": machines, "allreduce_s": allreduce, "strong_compute_s": strong_compute,
                     "strong_efficiency": strong, "weak_efficiency": weak})
    return rows


def summarize(args, runs):
    single = [run for run in runs if run["processes"] == 1]
    parallel = [run for run in runs if run["processes"] > 1]
    one = statistics.median(run["samples_per_s"] for run in single)
    many = statistics.median(run["samples_per_s"] for run in parallel)
    efficiency = many / (args.processes * one)
    last = parallel[-1]
    share = statistics.median(run["allreduce_s"] / run["step_s"] for run in parallel)
    copies = statistics.median((run["average_s"] - run["allreduce_s"]) / run["step_s"] for run in parallel)
    nbytes = last["gradient_bytes"]
    alone = statistics.median(run["allreduce_alone_s"] for run in parallel)
    n = args.processes
    summary = {
        "single_samples_per_s": one, "parallel_samples_per_s": many, "efficiency": efficiency,
        "target": 0.8, "met": efficiency >= 0.8, "allreduce_share": share, "copy_share": copies,
        "gradient_bytes": nbytes, "allreduce_alone_s": alone,
        "algorithm_bandwidth_gbps": 8 * nbytes / alone / 1e9,
        "bus_bandwidth_gbps": 8 * nbytes * 2 * (n - 1) / n / alone / 1e9,
        "latency_s": statistics.median(run["allreduce_one_value_s"] for run in parallel),
        "copies_s": statistics.median(run["copies_s"] for run in parallel),
        "single_compute_cpu_s": statistics.median(run["compute_cpu_s"] for run in single),
        "rank_compute_cpu_s": statistics.median(run["compute_cpu_s"] for run in parallel),
        "views_s": statistics.median(run["views_s"] for run in parallel),
        "projection": projection(single[-1], nbytes, args),
    }
    return summary


def report(args, summary):
    n = args.processes
    one_cpu, rank_cpu = summary["single_compute_cpu_s"], summary["rank_compute_cpu_s"]
    lines = [
        f"MLP 784-{'-'.join(map(str, args.hidden))}-10, global batch {args.batch}, "
        "one BLAS thread per process:",
        f"  1 process: {summary['single_samples_per_s']:.0f} samples/s; {n} ranks: "
        f"{summary['parallel_samples_per_s']:.0f} samples/s; scaling efficiency {summary['efficiency']:.2f} "
        f"(target >= 0.8: {'met' if summary['met'] else 'missed'})",
        f"  share of a rank's step in the Allreduce (waits included): {summary['allreduce_share']:.1%}; "
        f"in the copies: {summary['copy_share']:.1%}",
        f"  forward and backward, CPU time (what load on the machine does not stretch): 1 process "
        f"{one_cpu * 1e3:.2f} ms, a rank {rank_cpu * 1e3:.2f} ms (ratio {one_cpu / (n * rank_cpu):.2f})",
        f"  Allreduce of the {summary['gradient_bytes'] / 1e6:.2f} MB gradient alone: "
        f"{summary['allreduce_alone_s'] * 1e3:.3f} ms ({summary['algorithm_bandwidth_gbps']:.1f} Gb/s "
        f"algorithm, {summary['bus_bandwidth_gbps']:.1f} Gb/s bus bandwidth); of one value: "
        f"{summary['latency_s'] * 1e6:.1f} us",
        f"  copies in and out: {summary['copies_s'] * 1e3:.3f} ms a step; views would still weight in place: "
        f"{summary['views_s'] * 1e3:.3f} ms",
        f"Projection (ring allreduce, {args.network_gbps:g} Gb/s, {args.latency_us:g} us a message, "
        "no overlap):",
    ]
    for row in summary["projection"]:
        lines.append(f"  {row['machines']} machines: allreduce {row['allreduce_s'] * 1e3:.2f} ms; "
                     f"global batch {args.batch}: {machine_batch(args, row['machines'])} a machine, compute "
                     f"{row['strong_compute_s'] * 1e3:.2f} ms, efficiency {row['strong_efficiency']:.2f}; "
                     f"{args.weak_batch} a machine: efficiency {row['weak_efficiency']:.2f}")
    return "\n".join(lines)


def main(argv=None):
    args = parse_args(argv)
    if args.worker is not None:
        worker(args)
        return None
    args.out.mkdir(parents=True, exist_ok=True)
    runs = []
    for round_ in range(args.rounds):
        for processes in (1, args.processes):
            runs.append(run_configuration(args, processes, args.out / f"run-{round_}-{processes}.json"))
    summary = summarize(args, runs)
    results = {"arguments": {k: v for k, v in vars(args).items() if k not in ("out", "worker")},
               "command": " ".join(["python -m benchmarks.distributed", *(argv or sys.argv[1:])]),
               "runs": runs, "summary": summary}
    (args.out / "results.json").write_text(strict_json(results, indent=1))
    print(report(args, summary))
    return results


if __name__ == "__main__":
    main()
