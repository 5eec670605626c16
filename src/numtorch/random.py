"""The library's one random number generator (Dropout masks, initial weights).

``manual_seed`` makes a run reproducible; ``get_rng_state``/``set_rng_state``
let a checkpoint continue exactly where a run stopped. The state is a plain
dict of ints and strings, so it is stored without pickle.
"""

import numpy as np

from numtorch._checks import check_int

_generator = np.random.Generator(np.random.PCG64())


def generator():
    """The generator numtorch draws from."""
    return _generator


def manual_seed(seed):
    """Reseed numtorch's generator (weights created and masks drawn after this repeat)."""
    seed = check_int("manual_seed", seed, "seed", low=0)
    _generator.bit_generator.state = np.random.PCG64(seed).state


def get_rng_state():
    """A copy of the generator's state (a JSON-serializable dict)."""
    return _generator.bit_generator.state


def set_rng_state(state):
    """Restore a state returned by ``get_rng_state``."""
    try:
        _generator.bit_generator.state = state
    except (TypeError, ValueError, KeyError, OverflowError) as error:
        raise ValueError(
            f"set_rng_state: not a numtorch generator state: expected a state from get_rng_state(), "
            f"got {state!r} ({error})") from None
