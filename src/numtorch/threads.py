"""BLAS threads: a fixed count, or one that follows the machine's load while ``fit`` trains.

Every matrix product runs on OpenBLAS's thread pool. On an idle 2-core
machine two threads make an MLP step about 1.5x faster than one; but when
another process keeps a core busy, OpenBLAS's threads wait for each other at
every product and the same step becomes 2-3x SLOWER than with one thread
(MLP 784-512-256-10, batch 128, next to one CPU-bound process: 5.4-6.0 ms a
step with one thread, 13.9-15.1 ms with two; under heavier load two threads
took 10-20x one thread's time in noisy measurements). No fixed count is right
on a machine whose load changes, so ``fit`` measures (``ThreadTuner``).

``set_num_threads(n)`` fixes the count for the process (``fit`` then leaves
it alone). Results are bit-identical only with the same thread count: OpenBLAS
splits a product's work differently for another count, which changes the
rounding (differences of about 1e-7 relative).

Setting threads needs threadpoolctl (in the ``train`` extra), imported here
only when a count is set or measured.
"""

import statistics
import time
from contextlib import contextmanager

import numpy as np

from numtorch._checks import check_positive_int

_fixed = None  # the count set_num_threads chose: fit's "auto" does not change it


def blas_controller():
    """threadpoolctl's controller of the BLAS libraries loaded in this process (NumPy's and SciPy's)."""
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:
        raise ImportError("setting BLAS threads needs threadpoolctl: pip install 'numtorch[train]' "
                          "(or set OPENBLAS_NUM_THREADS before starting Python)") from None
    return ThreadpoolController().select(user_api="blas")


def set_num_threads(n):
    """Use ``n`` BLAS threads from now on in this process; ``fit(threads="auto")`` keeps them."""
    global _fixed
    n = check_positive_int("set_num_threads", n, "n")
    blas_controller().limit(limits=n)
    _fixed = n


def get_num_threads():
    """The BLAS thread count in effect (the largest among the BLAS libraries loaded)."""
    return BlasThreads().count()


class BlasThreads:
    """Sets the thread count of every BLAS library loaded, and sets back what it found."""

    def __init__(self):
        self.controller = blas_controller()
        self.first = None

    def count(self):
        return max((lib.num_threads for lib in self.controller.lib_controllers), default=1)

    def apply(self, n):
        limiter = self.controller.limit(limits=n)
        self.first = self.first or limiter

    def restore(self):
        if self.first is not None:
            self.first.restore_original_limits()
            self.first = None


def candidate_counts(maximum):
    """Thread counts worth trying up to ``maximum``: 1, 2, 3, 4, then powers of two and ``maximum``."""
    counts = {n for n in (1, 2, 3, 4) if n <= maximum} | {maximum}
    n = 8
    while n < maximum:
        counts.add(n)
        n *= 2
    return sorted(counts)


class ThreadTuner:
    """Chooses the BLAS thread count by timing training steps, and chooses again when they drift.

    A probe runs ``rounds`` rounds; in each, every candidate count (fewest
    threads first in the first round) runs two steps, the second one timed
    (the first absorbs the switch: OpenBLAS's workers waking or parking).
    A count whose step takes over ``cutoff`` times the best mean so far is
    dropped at once (next to busy cores two threads can take 10-20x one
    thread's time: a probe pays that once). The lowest mean wins, but the current count
    stays unless another is at least ``margin`` times faster, so an idle
    machine keeps its default count, with the default's speed and results.
    The probe steps are real training steps: nothing is computed twice.

    After a probe the median of the first ``window`` steps is the reference;
    a later window's median off by more than ``drift`` times in either
    direction (a process started or ended), or ``interval`` seconds of
    training since the last probe (a load that left barely changes the
    one-thread time), starts a new probe, provided the probes so far took at
    most ``budget`` of the training time: on a machine whose load jumps
    about, probing costs no more than that.

    ``apply(n)`` sets the count and ``restore()`` sets back the counts in
    effect before the first ``apply`` (``BlasThreads`` in ``for_fit``; tests
    pass fakes, with a fake ``clock``). Only steps on batches of the first
    batch's size are timed (an epoch's last batch may be smaller).
    """

    def __init__(self, candidates, apply, restore, clock=time.perf_counter, rounds=3, margin=1.1, drift=1.3,
                 window=16, interval=30.0, budget=0.05, cutoff=3.0):
        self.candidates = sorted(set(candidates))
        self.apply, self.restore, self.clock = apply, restore, clock
        self.rounds, self.margin, self.drift, self.cutoff = rounds, margin, drift, cutoff
        self.window, self.interval, self.budget = window, interval, budget
        self.current = self.candidates[-1]
        self.applied = None
        self.plan = []  # the coming probe steps: (count, timed)
        self.probe_times = {}  # count -> seconds of its probe steps; empty outside a probe
        self.reference = None  # median step time at the current count after the last probe
        self.recent = []
        self.trained = self.probing = self.last_probe = 0.0  # seconds of timed steps, of probe steps
        self.choices = []  # (count chosen, mean seconds per count tried) after every probe
        if len(self.candidates) > 1:
            self.start_probe()

    @classmethod
    def for_fit(cls, threads):
        """The tuner ``fit`` uses for ``threads``, or None to leave the threads alone.

        "auto": candidates from 1 up to the count in effect (the cores,
        OPENBLAS_NUM_THREADS, an enclosing threadpoolctl limit); none after
        ``set_num_threads`` (a fixed choice) or without threadpoolctl. An int:
        that count during the training steps. None: the threads are left alone.
        """
        if threads is None:
            return None
        if isinstance(threads, str):
            if threads != "auto":
                raise ValueError(f"fit: expected threads as 'auto', an int >= 1 or None, got {threads!r}")
            if _fixed is not None:
                return None
            try:
                blas = BlasThreads()
            except ImportError:
                return None
            maximum = blas.count()
            return cls(candidate_counts(maximum), blas.apply, blas.restore) if maximum > 1 else None
        if isinstance(threads, (bool, np.bool_)) or not isinstance(threads, (int, np.integer)):
            raise TypeError(f"fit: expected threads as 'auto', an int >= 1 or None, "
                            f"got {type(threads).__name__}")
        if threads < 1:
            raise ValueError(f"fit: expected threads as 'auto', an int >= 1 or None, got {threads}")
        blas = BlasThreads()
        return cls([int(threads)], blas.apply, blas.restore)

    def start_probe(self):
        counts, k = self.candidates, len(self.candidates)
        self.plan = [(count, timed)
                     for r in range(self.rounds)
                     for count in counts[r % k:] + counts[:r % k]
                     for timed in (False, True)]
        self.probe_times = {count: [] for count in self.candidates}
        self.reference, self.recent = None, []
        self.last_probe = self.trained

    def set_count(self, count):
        if count != self.applied:
            self.apply(count)
            self.applied = count

    def steps(self, batches):
        """Yield ``batches`` unchanged, each step run with the chosen count; the count in effect
        before is set back when the iteration ends (or is abandoned)."""
        size = None
        try:
            for batch in batches:
                count, timed = self.plan.pop(0) if self.plan else (self.current, True)
                self.set_count(count)
                start = self.clock()
                yield batch
                seconds = self.clock() - start
                n = len(batch[1])
                size = n if size is None else size
                if n == size:
                    self.record(count, timed, seconds)
        finally:
            if self.applied is not None:
                self.restore()
                self.applied = None

    def record(self, count, timed, seconds):
        self.trained += seconds
        if len(self.candidates) == 1:
            return
        if self.probe_times:
            self.probing += seconds
            means = [statistics.fmean(times) for times in self.probe_times.values() if times]
            if means and seconds > self.cutoff * min(means):
                self.probe_times[count].append(seconds)
                self.plan = [step for step in self.plan if step[0] != count]
            elif timed:
                self.probe_times[count].append(seconds)
            if not self.plan:
                self.decide()
            return
        self.recent.append(seconds)
        if len(self.recent) < self.window:
            return
        typical = statistics.median(self.recent)
        self.recent = []
        if self.reference is None:
            self.reference = typical
            return
        drifted = typical > self.drift * self.reference or typical * self.drift < self.reference
        due = self.trained - self.last_probe > self.interval
        if (drifted or due) and self.probing <= self.budget * self.trained:
            self.start_probe()

    def decide(self):
        means = {count: statistics.fmean(times) for count, times in self.probe_times.items() if times}
        self.probe_times = {}
        best = min(means, key=means.get)
        if means.get(self.current, float("inf")) > self.margin * means[best]:
            self.current = best
        self.choices.append((self.current, means))


@contextmanager
def tuned_steps(tuner, batches):
    """``batches`` to iterate under ``tuner``'s thread counts (unchanged when ``tuner`` is None);
    the counts in effect before are set back on leaving the block, even on error."""
    if tuner is None:
        yield batches
        return
    steps = tuner.steps(batches)
    try:
        yield steps
    finally:
        steps.close()
