"""Seeded shuffling mini-batches."""

import numpy as np

from numtorch._checks import check_int, check_positive_int
from numtorch.data.datasets import check_pair


class Batches:
    """Iterate over ``(X[idx], y[idx])`` mini-batches, reshuffled every pass.

    ``for xb, yb in Batches(X, y, 64, seed=0)`` gives one epoch. The order is
    drawn from the iterator's own generator (seeded, independent of numtorch's).
    ``state_dict()`` says where the iterator is, between passes or inside one
    (the generator state the pass drew its order from, and how many batches
    of it were given out), so a resumed run draws the same orders and can
    continue a pass where it stopped. The last batch is smaller when
    ``batch_size`` does not divide N.
    """

    def __init__(self, X, y, batch_size, shuffle=True, seed=0):
        self.n = check_pair("Batches", X, y)
        self.X, self.y = X, y
        self.batch_size = check_positive_int("Batches", batch_size, "batch_size")
        if not isinstance(shuffle, (bool, np.bool_)):
            raise TypeError(f"Batches: expected shuffle as a bool, got {type(shuffle).__name__}")
        self.shuffle = bool(shuffle)
        self.rng = np.random.Generator(np.random.PCG64(check_int("Batches", seed, "seed", low=0)))
        self._pass_rng = None  # the generator state the pass in progress drew its order from
        self._given = 0  # batches of that pass given out so far
        self._skip = 0  # batches the next pass skips: the part of a stopped pass done before a resume

    def __len__(self):
        return -(-self.n // self.batch_size)

    def __iter__(self):
        rng_state = self.rng.bit_generator.state
        order = self.rng.permutation(self.n) if self.shuffle else np.arange(self.n)
        self._pass_rng, self._given, skip, self._skip = rng_state, 0, self._skip, 0
        for start in range(skip * self.batch_size, self.n, self.batch_size):
            idx = order[start:start + self.batch_size]
            self._given = start // self.batch_size + 1
            yield self.X[idx], self.y[idx]
        self._pass_rng, self._given = None, 0

    def state_dict(self):
        """``{"rng": generator state, "batch": int}`` (plain ints and strings).

        Between passes (or once a pass has given out its last batch): the
        state the next pass draws its order from, and 0. Inside a pass: the
        state this pass drew its order from, and the number of its batches
        given out so far.
        """
        if self._pass_rng is None or self._given == len(self):
            return {"rng": self.rng.bit_generator.state, "batch": 0}
        return {"rng": self._pass_rng, "batch": self._given}

    def load_state_dict(self, state):
        """Continue from ``state_dict()``: the next pass draws that order and skips the batches given out.
        A state that is refused changes nothing."""
        try:
            rng_state, batch = state["rng"], state.get("batch", 0)  # no "batch" (older files): between passes
        except (TypeError, KeyError, AttributeError) as error:
            raise self.not_a_state(state, error) from None
        batch = check_int("Batches.load_state_dict", batch, "state['batch']", low=0)
        if batch >= len(self):
            raise ValueError(f"Batches.load_state_dict: expected state['batch'] < {len(self)} (the batches "
                             f"of a pass), got {batch}")
        try:
            self.rng.bit_generator.state = rng_state
        except (TypeError, ValueError, KeyError, OverflowError) as error:
            raise self.not_a_state(state, error) from None
        self._skip = batch
        self._pass_rng, self._given = None, 0

    @staticmethod
    def not_a_state(state, error):
        return ValueError(f"Batches.load_state_dict: not a Batches state: expected a Batches.state_dict(), "
                          f"got {type(state).__name__} ({error!r})")
