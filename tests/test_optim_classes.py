"""The optimizer classes, schedules and gradient clipping of numtorch.optim, step for step against torch.

(The notebook-style functions ``sgd_momentum``/``adam_optimizer`` are tested
on their own; this file covers the classes appended to ``optim.py``.)
"""

import numpy as np
import pytest

import numtorch as nt
from harness import import_torch
from numtorch.module import flatten
from numtorch.optim import SGD, Adam, AdamW, CosineAnnealingLR, RMSprop, StepLR, clip_grad_norm

torch = import_torch()

CASES = [
    (SGD, dict(lr=0.1), dict(lr=0.1)),
    (SGD, dict(lr=0.05, momentum=0.9), dict(lr=0.05, momentum=0.9)),
    (SGD, dict(lr=0.05, momentum=0.9, nesterov=True), dict(lr=0.05, momentum=0.9, nesterov=True)),
    (SGD, dict(lr=0.05, momentum=0.5, weight_decay=0.1), dict(lr=0.05, momentum=0.5, weight_decay=0.1)),
    (Adam, dict(lr=1e-2), dict(lr=1e-2)),
    (Adam, dict(lr=3e-3, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1),
     dict(lr=3e-3, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1)),
    (AdamW, dict(lr=1e-2), dict(lr=1e-2)),
    (AdamW, dict(lr=1e-2, weight_decay=0.3), dict(lr=1e-2, weight_decay=0.3)),
    (RMSprop, dict(), dict(lr=1e-2)),
    (RMSprop, dict(lr=1e-3, centered=True), dict(lr=1e-3, centered=True)),
    (RMSprop, dict(lr=1e-3, momentum=0.9, alpha=0.9), dict(lr=1e-3, momentum=0.9, alpha=0.9)),
    (RMSprop, dict(lr=1e-3, momentum=0.5, centered=True, weight_decay=0.1),
     dict(lr=1e-3, momentum=0.5, centered=True, weight_decay=0.1)),
]
CASE_IDS = [f"{cls.__name__}-{kwargs}" for cls, kwargs, _ in CASES]


def make_model(seed=0):
    nt.manual_seed(seed)
    return nt.Sequential(nt.Linear(6, 5), nt.Tanh(), nt.Linear(5, 3, bias=False))


def random_grads(model, rng):
    for grad in flatten(model.getGradParameters()):
        grad[...] = rng.standard_normal(grad.shape) * rng.choice([1e-3, 1.0, 10.0])


def train_steps(model, optimizer, rng, steps):
    for _ in range(steps):
        random_grads(model, rng)
        optimizer.step()


@pytest.mark.parametrize("cls,ours,theirs", CASES, ids=CASE_IDS)
def test_matches_torch_step_for_step(cls, ours, theirs):
    model = make_model()
    optimizer = cls(model, **ours)
    params = flatten(model.getParameters())
    tparams = [torch.tensor(p.copy(), requires_grad=True) for p in params]
    toptimizer = getattr(torch.optim, cls.__name__)(tparams, **theirs)
    rng = np.random.default_rng(1)
    for step in range(20):
        random_grads(model, rng)
        for g, tp in zip(flatten(model.getGradParameters()), tparams):
            tp.grad = torch.tensor(g.copy())
        optimizer.step()
        toptimizer.step()
        for i, (p, tp) in enumerate(zip(params, tparams)):
            assert p.dtype == np.float32
            np.testing.assert_allclose(p, tp.detach().numpy(), rtol=1e-5, atol=1e-6,
                                       err_msg=f"step {step + 1}, parameter {i}")


@pytest.mark.parametrize("cls,ours,theirs", CASES, ids=CASE_IDS)
def test_state_dict_resumes_bit_for_bit(cls, ours, theirs):
    reference, interrupted = make_model(), make_model()
    reference_opt = cls(reference, **ours)
    train_steps(reference, reference_opt, np.random.default_rng(2), 3)
    train_steps(interrupted, cls(interrupted, **ours), np.random.default_rng(2), 3)
    state = reference_opt.state_dict()
    rest = np.random.default_rng(3)
    train_steps(reference, reference_opt, rest, 4)

    resumed_opt = cls(interrupted, lr=0.5)
    resumed_opt.load_state_dict(state)
    assert resumed_opt.hyperparameters() == cls(make_model(), **ours).hyperparameters()
    train_steps(interrupted, resumed_opt, np.random.default_rng(3), 4)
    for a, b in zip(flatten(reference.getParameters()), flatten(interrupted.getParameters())):
        np.testing.assert_array_equal(a, b)


def test_state_dict_is_plain_values_and_copies():
    model = make_model()
    optimizer = Adam(model, lr=1e-2)
    train_steps(model, optimizer, np.random.default_rng(0), 2)
    state = optimizer.state_dict()
    assert state["class"] == "Adam" and state["step"] == 2
    assert state["hyperparameters"] == {"lr": 1e-2, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.0}
    assert sorted(state["buffers"]) == ["exp_avg", "exp_avg_sq"]
    assert state["buffers"]["exp_avg"][0] is not optimizer.buffers["exp_avg"][0]


def test_load_state_dict_rejects_mismatches():
    model = make_model()
    adam = Adam(model)
    train_steps(model, adam, np.random.default_rng(0), 1)
    with pytest.raises(ValueError, match="the state is of 'Adam', not SGD"):
        SGD(model, lr=0.1).load_state_dict(adam.state_dict())
    other = nt.Sequential(nt.Linear(6, 4), nt.Linear(4, 3, bias=False))
    with pytest.raises(ValueError, match=r"buffer 'exp_avg'\[0\] has shape \(5, 6\), the parameter \(4, 6\)"):
        Adam(other).load_state_dict(adam.state_dict())
    with pytest.raises(ValueError, match="has 3 arrays for 2 parameters"):
        Adam(nt.Linear(6, 5)).load_state_dict(adam.state_dict())


def set_first(name, dtype):
    def edit(state):
        state["buffers"][name][0] = state["buffers"][name][0].astype(dtype)
    return edit


REFUSED_STATES = {
    "step-negative": (lambda s: s.update(step=-1), ValueError, "expected step >= 0, got -1"),
    "step-infinite": (lambda s: s.update(step=float("inf")), TypeError,
                      "expected step as an int, got float inf"),
    "unknown-buffer": (lambda s: s["buffers"].update(evil=s["buffers"]["exp_avg"]), ValueError,
                       r"expected buffers among \['exp_avg', 'exp_avg_sq'\], got \['evil'\]"),
    "nan": (lambda s: s["buffers"]["exp_avg"][1].fill(np.nan), ValueError,
            r"buffer 'exp_avg'\[1\]: expected finite values"),
    "negative-second-moment": (lambda s: s["buffers"]["exp_avg_sq"][0].fill(-1), ValueError,
                               r"'exp_avg_sq'\[0\]: expected a running average of squares \(>= 0\)"),
    "float16": (set_first("exp_avg", np.float16), TypeError,
                "expected a float32 or float64 array, got float16"),
    "bad-hyperparameter-after-good-ones": (lambda s: s["hyperparameters"].update(lr=0.5, eps=-1.0),
                                           ValueError, r"eps in \[0, inf\], got -1.0"),
    "unknown-hyperparameter": (lambda s: s["hyperparameters"].update(momentum=0.9), TypeError,
                               r"hyperparameters .* do not fit Adam"),
}


@pytest.mark.parametrize("kind", sorted(REFUSED_STATES))
def test_a_refused_state_leaves_the_optimizer_unchanged(kind):
    """load_state_dict checks the whole state (check_state_dict) before it changes anything."""
    edit, error, message = REFUSED_STATES[kind]
    model = make_model()
    adam = Adam(model, lr=0.01)
    train_steps(model, adam, np.random.default_rng(0), 2)
    state = adam.state_dict()
    edit(state)
    target = Adam(model, lr=0.02)
    train_steps(model, target, np.random.default_rng(1), 1)
    before = target.state_dict()
    with pytest.raises(error, match=message):
        target.load_state_dict(state)
    after = target.state_dict()
    assert after["hyperparameters"] == before["hyperparameters"] and after["step"] == before["step"]
    for name, arrays in before["buffers"].items():
        for ours, theirs in zip(arrays, after["buffers"][name]):
            np.testing.assert_array_equal(ours, theirs)


def test_a_refused_schedule_state_leaves_the_schedule_and_rate_unchanged():
    optimizer = Adam(make_model(), lr=0.1)
    scheduler = StepLR(optimizer, step_size=2)
    state = {**scheduler.state_dict(), "last_epoch": -3}
    with pytest.raises(ValueError, match="expected last_epoch >= 0, got -3"):
        scheduler.load_state_dict(state)
    assert scheduler.last_epoch == 0 and optimizer.lr == 0.1
    state = {**scheduler.state_dict(), "hyperparameters": {"step_size": 3, "gamma": -1.0}}
    with pytest.raises(ValueError, match="gamma"):
        scheduler.load_state_dict(state)
    assert scheduler.step_size == 2 and scheduler.gamma == 0.1


def test_step_and_zero_grad_work_through_forward_and_backward():
    model = make_model()
    criterion = nt.CrossEntropyCriterion()
    optimizer = SGD(model, lr=0.5, momentum=0.9)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((32, 6)).astype(np.float32)
    y = rng.integers(0, 3, 32)
    losses = []
    for _ in range(30):
        optimizer.zero_grad()
        losses.append(criterion.forward(model.forward(x), y))
        model.backward(x, criterion.backward(model.output, y))
        optimizer.step()
    assert losses[-1] < 0.5 * losses[0]
    optimizer.zero_grad()
    assert not any(g.any() for g in flatten(model.getGradParameters()))


@pytest.mark.parametrize("make,message,error", [
    (lambda m: SGD(m, lr=-0.1), r"SGD: expected lr in \[0, inf\], got -0.1", ValueError),
    (lambda m: SGD(m, lr="0.1"), "SGD: expected lr as a number, got str", TypeError),
    (lambda m: SGD(m, lr=0.1, momentum=1.5), r"momentum in \[0, 1\]", ValueError),
    (lambda m: SGD(m, lr=0.1, nesterov=True), "nesterov=True needs a momentum > 0", ValueError),
    (lambda m: SGD(m, lr=0.1, momentum=0.9, nesterov=1), "nesterov as a bool", TypeError),
    (lambda m: Adam(m, lr=float("nan")), "Adam: expected lr", ValueError),
    (lambda m: Adam(m, betas=(0.9, 1.0)), r"betas\[1\] in \[0, 1\)", ValueError),
    (lambda m: Adam(m, betas=0.9), "betas as a pair", ValueError),
    (lambda m: AdamW(m, eps=-1), "AdamW: expected eps", ValueError),
    (lambda m: RMSprop(m, alpha=2), "RMSprop: expected alpha", ValueError),
    (lambda m: RMSprop(m, centered="yes"), "centered as a bool", TypeError),
    (lambda m: Adam(nt.ReLU()), "ReLU has no parameters", ValueError),
    (lambda m: Adam([np.zeros(3)]), "expected a numtorch Module, got list", TypeError),
    (lambda m: StepLR(SGD(m, lr=0.1), step_size=0), "StepLR: expected step_size >= 1", ValueError),
    (lambda m: CosineAnnealingLR(SGD(m, lr=0.1), T_max=2.5), "T_max as an int", TypeError),
    (lambda m: StepLR(torch.optim.SGD([torch.zeros(1)], lr=0.1), 2), "expected a numtorch Optimizer",
     TypeError),
    (lambda m: clip_grad_norm(m, -1.0), "clip_grad_norm: expected max_norm", ValueError),
])
def test_bad_hyperparameters(make, message, error):
    with pytest.raises(error, match=message):
        make(make_model())


@pytest.mark.parametrize("ours,theirs", [
    (lambda o: StepLR(o, step_size=3, gamma=0.5),
     lambda o: torch.optim.lr_scheduler.StepLR(o, step_size=3, gamma=0.5)),
    (lambda o: CosineAnnealingLR(o, T_max=7, eta_min=1e-3),
     lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=7, eta_min=1e-3)),
    (lambda o: CosineAnnealingLR(o, T_max=5),
     lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=5)),
], ids=["StepLR", "CosineAnnealingLR", "CosineAnnealingLR-eta0"])
def test_schedules_match_torch(ours, theirs):
    optimizer = SGD(make_model(), lr=0.1)
    scheduler = ours(optimizer)
    toptimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    tscheduler = theirs(toptimizer)
    for epoch in range(12):
        assert optimizer.lr == pytest.approx(toptimizer.param_groups[0]["lr"], rel=1e-9, abs=1e-12), epoch
        scheduler.step()
        toptimizer.step()
        tscheduler.step()


def test_schedule_state_dict_resumes():
    optimizer = Adam(make_model(), lr=0.1)
    scheduler = StepLR(optimizer, step_size=2, gamma=0.1)
    for _ in range(3):
        scheduler.step()
    state = scheduler.state_dict()
    resumed_optimizer = Adam(make_model(), lr=0.7)
    resumed = StepLR(resumed_optimizer, step_size=5)
    resumed.load_state_dict(state)
    assert resumed_optimizer.lr == pytest.approx(0.01)
    scheduler.step()
    resumed.step()
    assert resumed_optimizer.lr == optimizer.lr == pytest.approx(0.001)
    with pytest.raises(ValueError, match="the state is of 'StepLR', not CosineAnnealingLR"):
        CosineAnnealingLR(optimizer, 3).load_state_dict(state)


@pytest.mark.parametrize("scale,max_norm", [(10.0, 1.0), (1e-3, 1.0), (1.0, 0.0)])
def test_clip_grad_norm_matches_torch(scale, max_norm):
    model = make_model()
    rng = np.random.default_rng(4)
    random_grads(model, rng)
    grads = flatten(model.getGradParameters())
    for grad in grads:
        grad *= scale
    tparams = [torch.zeros(g.shape, requires_grad=True) for g in grads]
    for g, tp in zip(grads, tparams):
        tp.grad = torch.tensor(g.copy())
    total = clip_grad_norm(model, max_norm)
    expected = torch.nn.utils.clip_grad_norm_(tparams, max_norm)
    assert total == pytest.approx(float(expected), rel=1e-5)
    for g, tp in zip(grads, tparams):
        assert g.dtype == np.float32
        np.testing.assert_allclose(g, tp.grad.numpy(), rtol=1e-5, atol=1e-7)


class DtypeRecorder(np.ndarray):
    """An array that records the dtype of every array a NumPy operation on it makes."""

    dtypes = set()

    def __array_ufunc__(self, ufunc, method, *inputs, out=None, **kwargs):
        def plain(arrays):
            return tuple(a.view(np.ndarray) if isinstance(a, DtypeRecorder) else a for a in arrays)

        if out is not None:
            kwargs["out"] = plain(out)
        result = getattr(ufunc, method)(*plain(inputs), **kwargs)
        if out is not None:
            return out[0] if len(out) == 1 else out
        DtypeRecorder.dtypes.add(np.result_type(result))
        return result.view(DtypeRecorder) if isinstance(result, np.ndarray) else result


@pytest.mark.parametrize("cls,ours,theirs", CASES, ids=CASE_IDS)
def test_float32_parameters_get_float32_state_and_temporaries(cls, ours, theirs):
    model = make_model()
    for module in model:
        for name in (*module._parameters, *module._gradients):
            if getattr(module, name) is not None:
                setattr(module, name, getattr(module, name).view(DtypeRecorder))
    optimizer = cls(model, **ours)
    DtypeRecorder.dtypes = set()
    train_steps(model, optimizer, np.random.default_rng(0), 3)
    assert DtypeRecorder.dtypes <= {np.dtype(np.float32)}, cls.__name__
    assert all(p.dtype == np.float32 for p in flatten(model.getParameters()))
    for name, arrays in optimizer.state_dict()["buffers"].items():
        assert all(a.dtype == np.float32 for a in arrays), name
