"""numtorch.threads: the thread-count tuner on a simulated machine, fixed counts, and fit's use of them.

No timing is asserted: the tuner runs on a fake clock whose step time depends on the
thread count and a load that the tests change; the real BLAS tests check which count
is in effect during fit's training steps and afterwards.
"""

import subprocess
import sys

import numpy as np
import pytest

import numtorch as nt
from numtorch import threads
from numtorch.module import Module
from numtorch.optim import SGD
from numtorch.threads import ThreadTuner, candidate_counts, tuned_steps
from numtorch.train import fit

threadpoolctl = pytest.importorskip("threadpoolctl")


class Machine:
    """A fake clock and thread setting: a step takes ``times[count]`` milliseconds under the current load."""

    def __init__(self, times):
        self.times, self.now, self.count, self.restores, self.counts = times, 0.0, None, 0, []

    def clock(self):
        return self.now

    def apply(self, n):
        self.count = n

    def restore(self):
        self.count = None
        self.restores += 1

    def tuner(self, candidates=(1, 2), **options):
        return ThreadTuner(candidates, self.apply, self.restore, clock=self.clock, **options)

    def train(self, tuner, steps, batch_size=4, last=None):
        batches = [(None, [0] * batch_size)] * steps + ([(None, [0] * last)] if last else [])
        for _ in tuner.steps(batches):
            self.counts.append(self.count)
            self.now += self.times[self.count] / 1000


def test_an_idle_machine_keeps_the_default_count_after_one_probe():
    machine = Machine({1: 5.0, 2: 3.0})
    tuner = machine.tuner()
    machine.train(tuner, 100)
    probe = len(tuner.candidates) * 2 * tuner.rounds
    assert sorted(set(machine.counts[:probe])) == [1, 2] and set(machine.counts[probe:]) == {2}
    assert [count for count, _ in tuner.choices] == [2]
    assert machine.count is None and machine.restores == 1


def test_a_busy_machine_moves_to_the_faster_count_and_back_when_the_load_goes():
    machine = Machine({1: 6.0, 2: 15.0})
    tuner = machine.tuner(interval=1e9)
    machine.train(tuner, 50)
    assert tuner.current == 1 and machine.counts[-20:] == [1] * 20
    machine.times[1] = 3.0  # the competing process ended: one thread is now 2x faster than before,
    machine.times[2] = 1.7  # a drift that starts a new probe once the probes so far cost <= 5%
    machine.train(tuner, 1000)
    assert [count for count, _ in tuner.choices] == [1, 2] and machine.counts[-20:] == [2] * 20


def test_a_load_that_leaves_unseen_by_one_thread_is_found_by_the_periodic_probe():
    machine = Machine({1: 6.0, 2: 15.0})
    tuner = machine.tuner(interval=5.0)
    machine.train(tuner, 40)
    machine.times.update({1: 5.5, 2: 3.0})  # within the drift band for one thread
    machine.train(tuner, 500)
    assert tuner.current == 1, "no probe before the interval"
    machine.train(tuner, 500)
    assert tuner.current == 2 and [count for count, _ in tuner.choices] == [1, 2]


def test_under_a_jumpy_load_probing_costs_little():
    """Step times scattered over 10x, two threads 3x slower than one on average and sometimes 20x:
    the probes the drift triggers stay within the budget, and auto runs within 1.2x of one thread."""
    rng = np.random.default_rng(0)

    class Jumpy(Machine):
        def train(self, tuner, steps):
            for _ in tuner.steps([(None, [0] * 4)] * steps):
                self.counts.append(self.count)
                stall = rng.choice([1, 20], p=[0.9, 0.1]) if self.count == 2 else 1
                scale = rng.lognormal(0.0, 0.6) * stall
                self.now += self.times[self.count] * scale / 1000

    machine = Jumpy({1: 6.0, 2: 6.0})
    tuner = machine.tuner(interval=1e9)
    machine.train(tuner, 5000)
    assert len(tuner.choices) > 3, "the drift should have triggered probes"
    assert tuner.probing <= 0.08 * tuner.trained
    one_thread = sum(6.0 * rng.lognormal(0.0, 0.6, 5000)) / 1000
    assert tuner.trained <= 1.2 * one_thread


def test_a_slightly_faster_count_does_not_displace_the_current_one():
    machine = Machine({1: 2.9, 2: 3.0})
    tuner = machine.tuner(margin=1.1)
    machine.train(tuner, 30)
    assert tuner.current == 2
    machine.times[1] = 2.0
    tuner.start_probe()
    machine.train(tuner, 30)
    assert tuner.current == 1


def test_only_full_batches_are_timed_and_the_probe_spans_epochs():
    machine = Machine({1: 6.0, 2: 15.0})
    tuner = machine.tuner()
    machine.train(tuner, 5, last=1)  # an epoch shorter than the probe, with a short last batch
    assert tuner.choices == [] and sum(len(t) for t in tuner.probe_times.values()) == 2
    machine.train(tuner, 10)
    assert tuner.current == 1 and machine.restores == 2


def test_counts_are_set_back_when_the_loop_stops_early_or_fails():
    machine = Machine({1: 1.0, 2: 1.0})
    tuner = machine.tuner()
    with tuned_steps(tuner, [(None, [0])] * 10) as steps:
        for _ in steps:
            break
    assert machine.count is None and machine.restores == 1
    with pytest.raises(RuntimeError):
        with tuned_steps(tuner, [(None, [0])] * 10) as steps:
            for _ in steps:
                raise RuntimeError("step failed")
    assert machine.count is None and machine.restores == 2
    batches = [(None, [0])]
    with tuned_steps(None, batches) as steps:
        assert steps is batches


def test_a_single_candidate_is_never_probed():
    machine = Machine({2: 3.0})
    tuner = machine.tuner(candidates=(2,))
    machine.train(tuner, 40)
    machine.times[2] = 30.0
    machine.train(tuner, 40)
    assert set(machine.counts) == {2} and tuner.choices == [] and tuner.probing == 0


def test_candidate_counts():
    assert candidate_counts(1) == [1]
    assert candidate_counts(2) == [1, 2]
    assert candidate_counts(6) == [1, 2, 3, 4, 6]
    assert candidate_counts(64) == [1, 2, 3, 4, 8, 16, 32, 64]


@pytest.fixture
def blas_threads():
    """The BLAS thread counts before the test, set back after it (set_num_threads is process-wide)."""
    controller = threadpoolctl.ThreadpoolController().select(user_api="blas")
    limiter = controller.limit(limits=None)
    yield
    limiter.restore_original_limits()
    threads._fixed = None


class ThreadSpy(Module):
    """Identity that records the BLAS thread count in effect at every forward call."""

    def __init__(self):
        super().__init__()
        self.counts = []

    def updateOutput(self, input):
        self.counts.append(nt.get_num_threads())
        self.output = input.copy()
        return self.output

    def updateGradInput(self, input, gradOutput):
        self.gradInput = gradOutput.copy()
        return self.gradInput


def fit_with_spy(threads_argument, epochs=1):
    rng = np.random.default_rng(0)
    X, y = rng.random((40, 3), dtype=np.float32), rng.integers(0, 2, 40)
    spy = ThreadSpy()
    model = nt.Sequential(nt.Linear(3, 4), spy, nt.Linear(4, 2))
    fit(model, nt.CrossEntropyCriterion(), SGD(model, lr=0.1), (X, y), epochs=epochs, batch_size=8,
        progress=False, threads=threads_argument)
    return spy.counts


def test_fit_with_a_fixed_count_trains_with_it_and_sets_back_the_default(blas_threads):
    before = nt.get_num_threads()
    assert fit_with_spy(1, epochs=2) == [1] * 10
    assert nt.get_num_threads() == before


def test_fit_auto_sets_back_the_counts_and_leaves_a_fixed_choice_alone(blas_threads):
    before = nt.get_num_threads()
    counts = fit_with_spy("auto", epochs=3)
    assert len(counts) == 15 and set(counts) <= set(range(1, before + 1))
    if before > 1:
        assert set(counts) == set(candidate_counts(before)), "auto probes every candidate"
    assert nt.get_num_threads() == before
    nt.set_num_threads(1)
    assert nt.get_num_threads() == 1 and fit_with_spy("auto") == [1] * 5
    assert nt.get_num_threads() == 1
    assert fit_with_spy(None) == [1] * 5


def test_a_fixed_count_repeats_a_run_to_the_bit(blas_threads):
    def run():
        nt.manual_seed(0)
        model = nt.Sequential(nt.Linear(64, 256), nt.ReLU(), nt.Linear(256, 10))
        rng = np.random.default_rng(0)
        X, y = rng.random((512, 64), dtype=np.float32), rng.integers(0, 10, 512)
        fit(model, nt.CrossEntropyCriterion(), SGD(model, lr=0.1), (X, y), epochs=2, batch_size=128,
            progress=False, threads=1)
        return [p.copy() for p in nt.module.flatten(model.getParameters())]

    for ours, theirs in zip(run(), run()):
        np.testing.assert_array_equal(ours, theirs)


def test_threads_argument_errors():
    cases = [("two", ValueError, "'auto', an int >= 1 or None, got 'two'"),
             (0, ValueError, "got 0"), (1.5, TypeError, "got float"), (True, TypeError, "got bool")]
    for value, error, message in cases:
        with pytest.raises(error, match=message):
            ThreadTuner.for_fit(value)
    with pytest.raises(ValueError, match="set_num_threads: expected n >= 1, got 0"):
        nt.set_num_threads(0)
    with pytest.raises(TypeError, match="set_num_threads: expected n as an int, got str '2'"):
        nt.set_num_threads("2")


def test_import_numtorch_does_not_import_threadpoolctl():
    code = "import sys, numtorch, numtorch.train, numtorch.threads; print('threadpoolctl' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"
