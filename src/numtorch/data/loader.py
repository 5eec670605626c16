"""Seeded shuffling mini-batches."""

import numpy as np

from numtorch._checks import check_int, check_positive_int
from numtorch.data.datasets import check_pair


class Batches:
    """Iterate over ``(X[idx], y[idx])`` mini-batches, reshuffled every pass.

    ``for xb, yb in Batches(X, y, 64, seed=0)`` gives one epoch. The order is
    drawn from the iterator's own generator (seeded, independent of numtorch's),
    whose state ``state_dict()`` returns so a resumed run draws the same orders.
    The last batch is smaller when ``batch_size`` does not divide N.
    """

    def __init__(self, X, y, batch_size, shuffle=True, seed=0):
        self.n = check_pair("Batches", X, y)
        self.X, self.y = X, y
        self.batch_size = check_positive_int("Batches", batch_size, "batch_size")
        if not isinstance(shuffle, (bool, np.bool_)):
            raise TypeError(f"Batches: expected shuffle as a bool, got {type(shuffle).__name__}")
        self.shuffle = bool(shuffle)
        self.rng = np.random.Generator(np.random.PCG64(check_int("Batches", seed, "seed", low=0)))

    def __len__(self):
        return -(-self.n // self.batch_size)

    def __iter__(self):
        order = self.rng.permutation(self.n) if self.shuffle else np.arange(self.n)
        for start in range(0, self.n, self.batch_size):
            idx = order[start:start + self.batch_size]
            yield self.X[idx], self.y[idx]

    def state_dict(self):
        """The shuffling generator's state (plain ints and strings)."""
        return {"rng": self.rng.bit_generator.state}

    def load_state_dict(self, state):
        try:
            self.rng.bit_generator.state = state["rng"]
        except (TypeError, ValueError, KeyError, OverflowError) as error:
            raise ValueError(f"Batches.load_state_dict: not a Batches state: expected a "
                             f"Batches.state_dict(), got {type(state).__name__} ({error!r})") from None
