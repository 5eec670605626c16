"""numtorch.random: seeding, state round trips, errors."""

import json

import numpy as np
import pytest

import numtorch as nt
from numtorch.random import generator


def test_manual_seed_repeats_weights_and_masks():
    def draw():
        nt.manual_seed(42)
        return nt.Linear(3, 3).W, nt.Dropout().forward(np.ones((4, 4)))

    (w1, m1), (w2, m2) = draw(), draw()
    np.testing.assert_array_equal(w1, w2)
    np.testing.assert_array_equal(m1, m2)
    nt.manual_seed(43)
    assert not np.array_equal(nt.Linear(3, 3).W, w1)


def test_state_round_trip_is_json():
    nt.manual_seed(0)
    generator().random(5)
    state = json.loads(json.dumps(nt.get_rng_state()))
    expected = generator().random(5)
    nt.set_rng_state(state)
    np.testing.assert_array_equal(generator().random(5), expected)


@pytest.mark.parametrize("seed,error,message", [
    (-1, ValueError, "manual_seed: expected seed >= 0, got -1"),
    (1.5, TypeError, "manual_seed: expected seed as an int, got float 1.5"),
    (True, TypeError, "manual_seed: expected seed as an int, got bool True"),
    ("3", TypeError, "manual_seed: expected seed as an int, got str '3'"),
    (None, TypeError, "manual_seed: expected seed as an int, got NoneType None"),
])
def test_bad_seed(seed, error, message):
    with pytest.raises(error, match=message):
        nt.manual_seed(seed)


@pytest.mark.parametrize("state", [{}, {"bit_generator": "MT19937"}, "state", None])
def test_bad_state(state):
    before = nt.get_rng_state()
    with pytest.raises(ValueError, match="set_rng_state: not a numtorch generator state"):
        nt.set_rng_state(state)
    assert nt.get_rng_state() == before
