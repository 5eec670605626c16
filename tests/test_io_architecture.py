"""numtorch.io.architecture: a model described by its modules' config() and rebuilt from it."""

import os

import numpy as np
import pytest

import numtorch as nt
from numtorch import io
from numtorch.io.architecture import architecture, is_container
from user_layers import Holder, NoConfig, Noise, Options, WrongConfig


def test_user_modules_round_trip_with_tuple_and_module_arguments(tmp_path):
    net = nt.Sequential(nt.Linear(2, 3), Noise(3, scale=0.25, sizes=(4, 5)))
    net[1].shift[:] = [1, 2, 3]
    io.save(net, tmp_path / "m.npz")
    loaded = io.load(tmp_path / "m.npz", custom=[Noise])
    assert loaded[1].sizes == (4, 5) and loaded[1].scale == 0.25
    np.testing.assert_array_equal(loaded[1].shift, [1, 2, 3])

    holder = Holder(Noise(2))
    holder.inner.shift[:] = [5, 6]
    io.save(holder, tmp_path / "h.npz")
    np.testing.assert_array_equal(io.load(tmp_path / "h.npz", custom=[Holder, Noise]).inner.shift, [5, 6])


def test_var_positional_and_keyword_arguments_round_trip(tmp_path):
    io.save(Options((1, 2), mode="fast", extra={"a": (1, 2)}), tmp_path / "m.npz")
    loaded = io.load(tmp_path / "m.npz", custom=[Options])
    assert loaded.sizes == (1, 2) and loaded.options == {"mode": "fast", "extra": {"a": (1, 2)}}


def test_arguments_that_are_not_data_are_refused(tmp_path):
    with pytest.raises(TypeError, match=r"cannot store argument 'scale' of Noise: a ndarray"):
        io.save(Noise(2, scale=np.ones(2)), tmp_path / "m.npz")
    with pytest.raises(TypeError, match="expected a numtorch Module, got list"):
        io.save([np.zeros(2)], tmp_path / "m.npz")
    assert not os.listdir(tmp_path)


def test_a_layer_without_config_is_refused_at_save_time(tmp_path):
    with pytest.raises(TypeError, match=r"NoConfig's constructor takes \(width\) but the class does not "
                                        r"define config\(\): define NoConfig.config\(\)"):
        io.save(nt.Sequential(NoConfig(3)), tmp_path / "m.npz")
    with pytest.raises(TypeError, match=r"WrongConfig.config\(\) returned \['size'\], which does not fit its "
                                        r"constructor WrongConfig\(width\)"):
        io.save(WrongConfig(3), tmp_path / "m.npz")
    assert not os.listdir(tmp_path)


def test_containers_are_told_by_their_modules_list_and_add():
    assert is_container(nt.Sequential()) and not is_container(nt.Linear(2, 3))
    spec = architecture(nt.Sequential(nt.Linear(2, 3, bias=False), nt.Dropout(0.25)))
    assert spec == {"class": "Sequential", "args": {}, "children": [
        {"class": "Linear", "args": {"n_in": 2, "n_out": 3, "bias": False}},
        {"class": "Dropout", "args": {"p": 0.25}}]}
    assert architecture(nt.Conv2d(1, 2, (3, 2)))["args"]["padding"] == {"__tuple__": [1, 1]}
