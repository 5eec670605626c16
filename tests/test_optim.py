"""The notebook-style optimizers follow torch.optim step for step; bad configs raise."""

import numpy as np
import pytest

import numtorch as nt
from harness import import_torch
from numtorch.module import flatten

torch = import_torch()


def nested_network():
    nt.manual_seed(0)
    return nt.Sequential(
        nt.Linear(4, 5),
        nt.Sequential(nt.Linear(5, 3), nt.ReLU(), nt.ChannelwiseScaling(3)),
        nt.Linear(3, 2, bias=False),
    )


def run_both(step, config, make_torch_optimizer, steps=6):
    """Run ``steps`` updates on the same random gradients in numtorch and torch; compare after each."""
    net = nested_network()
    params = flatten(net.getParameters())
    tensors = [torch.tensor(p.copy(), requires_grad=True) for p in params]
    optimizer = make_torch_optimizer(tensors)
    state = {}
    rng = np.random.default_rng(1)
    for _ in range(steps):
        for grad, tensor in zip(flatten(net.getGradParameters()), tensors):
            grad[...] = rng.standard_normal(grad.shape)
            tensor.grad = torch.tensor(grad.copy())
        step(net.getParameters(), net.getGradParameters(), config, state)
        optimizer.step()
        for param, tensor in zip(params, tensors):
            np.testing.assert_allclose(param, tensor.detach().numpy(), rtol=1e-5, atol=1e-6)
    assert all(p is q for p, q in zip(params, flatten(net.getParameters()))), "parameters were rebound"
    return state


@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_sgd_momentum_follows_torch(momentum):
    config = {"learning_rate": 0.05, "momentum": momentum}
    state = run_both(nt.sgd_momentum, config,
                     lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=momentum))
    assert len(state["momentum_buffer"]) == 7


@pytest.mark.parametrize("betas", [(0.9, 0.999), (0.5, 0.9)])
def test_adam_follows_torch(betas):
    config = {"learning_rate": 0.01, "beta1": betas[0], "beta2": betas[1], "epsilon": 1e-7}
    state = run_both(nt.adam_optimizer, config,
                     lambda ps: torch.optim.Adam(ps, lr=0.01, betas=betas, eps=1e-7))
    assert state["t"] == 6 and set(state) == {"m", "v", "t"}


def test_adam_defaults_are_torchs():
    run_both(nt.adam_optimizer, {"learning_rate": 0.001}, lambda ps: torch.optim.Adam(ps, lr=0.001))


@pytest.mark.parametrize("step,config,error,message", [
    (nt.sgd_momentum, {}, TypeError, "learning_rate"),
    (nt.sgd_momentum, {"learning_rate": -0.1}, ValueError, r"learning_rate'\] in \[0"),
    (nt.sgd_momentum, {"learning_rate": 0.1, "momentum": 1.5}, ValueError, "momentum"),
    (nt.sgd_momentum, {"learning_rate": float("nan")}, ValueError, "learning_rate"),
    (nt.adam_optimizer, {"learning_rate": "0.1"}, TypeError, "as a number, got str"),
    (nt.adam_optimizer, {"learning_rate": 0.1, "beta1": 1.0}, ValueError, "beta1"),
    (nt.adam_optimizer, {"learning_rate": 0.1, "beta2": -0.1}, ValueError, "beta2"),
    (nt.adam_optimizer, {"learning_rate": 0.1, "epsilon": -1e-8}, ValueError, "epsilon"),
])
def test_bad_config_raises(step, config, error, message):
    net = nested_network()
    before = [p.copy() for p in flatten(net.getParameters())]
    with pytest.raises(error, match=message):
        step(net.getParameters(), net.getGradParameters(), config, {})
    assert all(np.array_equal(p, q) for p, q in zip(before, flatten(net.getParameters())))


@pytest.mark.parametrize("step", [nt.sgd_momentum, nt.adam_optimizer])
def test_mismatched_parameters_and_gradients_raise(step):
    w, g = np.zeros((2, 3), np.float32), np.zeros((3, 2), np.float32)
    with pytest.raises(ValueError, match=f"{step.__name__}: got 1 parameters but 2 gradients"):
        step([w], [g, g], {"learning_rate": 0.1}, {})
    with pytest.raises(ValueError, match=r"parameter 0 .* \(2, 3\) and \(3, 2\)"):
        step([w], [g], {"learning_rate": 0.1}, {})
