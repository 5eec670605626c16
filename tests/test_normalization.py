"""BatchNormalization and ChannelwiseScaling beyond the harness: statistics, modes, errors."""

import re

import numpy as np
import pytest

import numtorch as nt


def batch(shape, seed=0, dtype=np.float32):
    return (np.random.default_rng(seed).standard_normal(shape) * 3 + 2).astype(dtype)


def test_defaults_match_pytorch():
    bn = nt.BatchNormalization(n_features=3)
    assert bn.EPS == 1e-5 and bn.alpha == 0.9
    np.testing.assert_array_equal(bn.moving_mean, np.zeros(3, np.float32))
    np.testing.assert_array_equal(bn.moving_variance, np.ones(3, np.float32))
    assert bn.getBuffers() == [bn.moving_mean, bn.moving_variance] and bn.getParameters() == []


@pytest.mark.parametrize("shape", [(16, 3), (4, 3, 5, 2)])
def test_lazy_statistics_equal_explicit_ones(shape):
    lazy, explicit = nt.BatchNormalization(0.7), nt.BatchNormalization(0.7, n_features=3)
    assert lazy.moving_mean is None and repr(lazy) == "BatchNormalization(alpha=0.7)"
    for seed in range(3):
        x = batch(shape, seed)
        np.testing.assert_array_equal(lazy.forward(x), explicit.forward(x))
    np.testing.assert_array_equal(lazy.moving_mean, explicit.moving_mean)
    np.testing.assert_array_equal(lazy.moving_variance, explicit.moving_variance)
    assert lazy.n_features == 3 and lazy.moving_mean.dtype == np.float32
    with pytest.raises(ValueError, match=r"expected input \(N, 3\) or \(N, 3, H, W\), got \(2, 4\)"):
        lazy.forward(batch((2, 4)))


def test_training_normalizes_each_channel_and_moving_statistics_converge():
    bn = nt.BatchNormalization(0.5, n_features=2)
    rng = np.random.default_rng(0)
    for _ in range(40):
        x = (rng.standard_normal((500, 2, 3, 3)) * [[[[2.0]], [[0.5]]]] + [[[[3.0]], [[-1.0]]]])
        y = bn.forward(x.astype(np.float32))
    np.testing.assert_allclose(y.mean(axis=(0, 2, 3)), 0, atol=1e-5)
    np.testing.assert_allclose(y.var(axis=(0, 2, 3)), 1, rtol=1e-3)
    np.testing.assert_allclose(bn.moving_mean, [3.0, -1.0], atol=0.05)
    np.testing.assert_allclose(bn.moving_variance, [4.0, 0.25], rtol=0.05)


def test_evaluate_uses_moving_statistics_and_leaves_them():
    bn = nt.BatchNormalization(n_features=2)
    bn.moving_mean[:] = [1.0, -2.0]
    bn.moving_variance[:] = [4.0, 9.0]
    bn.evaluate()
    x = batch((1, 2))
    std = np.sqrt(np.array([4.0, 9.0]) + bn.EPS)
    np.testing.assert_allclose(bn.forward(x), (x - [1.0, -2.0]) / std, rtol=1e-6)
    np.testing.assert_array_equal(bn.moving_mean, [1.0, -2.0])
    np.testing.assert_allclose(bn.backward(x, np.ones_like(x)), 1 / std[None], rtol=1e-6)


def test_backward_follows_the_mode_of_the_last_forward():
    bn, reference = nt.BatchNormalization(n_features=3), nt.BatchNormalization(n_features=3)
    x, g = batch((6, 3)), batch((6, 3), seed=1)
    bn.forward(x)
    reference.forward(x)
    bn.evaluate()
    np.testing.assert_array_equal(bn.backward(x, g), reference.backward(x, g))


@pytest.mark.parametrize("shape", [(1, 4), (1, 2, 1, 1)])
def test_training_with_one_value_per_channel_raises(shape):
    bn = nt.BatchNormalization()
    message = ("BatchNormalization(alpha=0.9): expected more than one value per channel in training, got "
               f"{shape}")
    with pytest.raises(ValueError, match=re.escape(message)):
        bn.forward(np.ones(shape, np.float32))
    assert bn.evaluate().forward(np.ones(shape, np.float32)).shape == shape


def test_astype_applies_to_statistics_created_later():
    bn = nt.BatchNormalization().astype(np.float64)
    bn.forward(batch((4, 3)))
    assert bn.moving_mean.dtype == np.float64 and bn.moving_variance.dtype == np.float64


def test_float64_input_keeps_float32_statistics():
    bn = nt.BatchNormalization(n_features=2)
    assert bn.forward(batch((5, 2), dtype=np.float64)).dtype == np.float64
    assert bn.moving_mean.dtype == np.float32 and bn.moving_variance.dtype == np.float32


@pytest.mark.parametrize("make", [lambda: nt.BatchNormalization(), lambda: nt.ChannelwiseScaling(3)],
                         ids=["BatchNormalization", "ChannelwiseScaling"])
@pytest.mark.parametrize("shape", [(4,), (4, 3, 2), (4, 3, 2, 2, 2)])
def test_wrong_rank(make, shape):
    with pytest.raises(ValueError, match=r"\): expected input \(N, (C|3)\) or \(N, (C|3), H, W\), got"):
        make().forward(np.ones(shape, np.float32))


@pytest.mark.parametrize("kwargs,error,message", [
    ({"alpha": 1.5}, ValueError, r"BatchNormalization: expected alpha in \[0, 1\], got 1.5"),
    ({"alpha": "0.9"}, TypeError, "BatchNormalization: expected alpha as a number"),
    ({"n_features": 0}, ValueError, "BatchNormalization: expected n_features >= 1, got 0"),
    ({"n_features": 2.0}, TypeError, "BatchNormalization: expected n_features as an int"),
])
def test_bad_batch_normalization_arguments(kwargs, error, message):
    with pytest.raises(error, match=message):
        nt.BatchNormalization(**kwargs)


def test_channelwise_scaling_starts_as_identity():
    scaling = nt.ChannelwiseScaling(3)
    np.testing.assert_array_equal(scaling.gamma, np.ones(3, np.float32))
    np.testing.assert_array_equal(scaling.beta, np.zeros(3, np.float32))
    assert scaling.getParameters() == [scaling.gamma, scaling.beta]
    assert scaling.getGradParameters() == [scaling.gradGamma, scaling.gradBeta]
    x = batch((2, 3, 4, 4))
    np.testing.assert_array_equal(scaling.forward(x), x)
    assert repr(scaling) == "ChannelwiseScaling(3)"


def test_channelwise_scaling_checks_channels_and_size():
    message = "ChannelwiseScaling(3): expected input (N, 3) or (N, 3, H, W), got (2, 4, 5, 5)"
    with pytest.raises(ValueError, match=re.escape(message)):
        nt.ChannelwiseScaling(3).forward(np.ones((2, 4, 5, 5), np.float32))
    with pytest.raises(ValueError, match="ChannelwiseScaling: expected n >= 1, got 0"):
        nt.ChannelwiseScaling(0)


def test_batch_norm_then_scaling_trains_in_a_network():
    nt.manual_seed(0)
    net = nt.Sequential(nt.Linear(4, 3), nt.BatchNormalization(n_features=3), nt.ChannelwiseScaling(3))
    x = batch((8, 4))
    net.forward(x)
    net.backward(x, batch((8, 3), seed=1))
    scaling = net[2]
    assert scaling.gradGamma.any() and scaling.gradBeta.any()
    # BatchNorm removes the mean, so a bias before it gets no gradient.
    np.testing.assert_allclose(net[0].gradb, 0, atol=1e-5)


def test_lazy_statistics_survive_save_and_load(tmp_path):
    from numtorch import io

    net = nt.Sequential(nt.Linear(3, 4), nt.BatchNormalization(0.8))
    assert net[1].config() == {"alpha": 0.8, "n_features": None}
    net.forward(batch((5, 3)))
    assert net[1].config() == {"alpha": 0.8, "n_features": 4}
    io.save(net, tmp_path / "bn.npz")
    loaded = io.load(tmp_path / "bn.npz")
    assert repr(loaded[1]) == "BatchNormalization(alpha=0.8, n_features=4)"
    np.testing.assert_array_equal(loaded[1].moving_variance, net[1].moving_variance)
