"""PyTorch interop: every row of the module table through to_torch agrees with PyTorch (outputs,
gradients, running statistics) and comes back through from_torch bit for bit; PyTorch models built
by hand come in; what has no counterpart is named."""

import copy
import subprocess
import sys

import numpy as np
import pytest

import numtorch as nt
from harness import as_float, assert_close, import_torch, random_like, set_mode
from module_table import MODULES
from numtorch._table import leaves, map_table
from numtorch.containers import walk
from numtorch.interop import from_torch, to_torch
from numtorch.io import architecture
from numtorch.module import flatten

torch = import_torch()
nn = torch.nn
tm = pytest.importorskip("numtorch.interop.torch_modules")


def sample_shape(data):
    return [sample_shape(entry) for entry in data] if isinstance(data, list) else tuple(data.shape[1:])


def torch_step(model, x, grad_output):
    """Forward and backward in PyTorch: ``(output, gradInput, parameter gradients)`` as arrays."""
    tx = map_table(lambda a: torch.tensor(a, requires_grad=True), x)
    output = model(tx)
    torch.autograd.backward(leaves(output), [torch.tensor(g) for g in leaves(grad_output)])
    grads = [p.grad.numpy() if p.grad is not None else np.zeros(tuple(p.shape), np.float32)
             for p in model.parameters()]
    grad_input = map_table(lambda t: t.grad.numpy() if t.grad is not None else np.zeros(t.shape, np.float32),
                           tx)
    return map_table(lambda t: t.detach().numpy(), output), grad_input, grads


def numtorch_step(model, x, grad_output):
    model.zeroGradParameters()
    output = map_table(np.copy, model.forward(x))
    grad_input = map_table(np.copy, model.backward(x, grad_output))
    return output, grad_input, [g.copy() for g in flatten(model.getGradParameters())]


def modes(model):
    return [m.training for _, m in walk(model)] if isinstance(model, nt.Module) else \
        [m.training for m in model.modules()]


def rows_and_modes():
    """Every row in each of its modes, but Dropout in training: two libraries draw two random masks."""
    return [pytest.param(case, mode, id=f"{case}-{mode}") for case in MODULES for mode in case.modes
            if not (mode == "train" and "Dropout" in case.name)]


@pytest.mark.parametrize("case, mode", rows_and_modes())
def test_to_torch_agrees_with_numtorch(case, mode):
    rng = np.random.default_rng(0)
    nt.manual_seed(0)
    module, x = case.build(rng, 4)
    x = as_float(x)
    set_mode(module, mode)
    converted = to_torch(module, sample_shape(x))
    assert [m.training for m in converted.modules()].count(mode == "train") == len(list(converted.modules()))
    grad_output = random_like(rng, copy.deepcopy(module).forward(x))
    theirs = torch_step(converted, x, grad_output)
    ours = numtorch_step(module, x, grad_output)
    for what, a, b in zip(("output", "gradInput"), ours, theirs):
        assert_close(a, b, case.rtol, case.atol, f"{case} {what}")
    assert len(ours[2]) == len(theirs[2])
    for i, (a, b) in enumerate(zip(ours[2], theirs[2])):
        assert_close(a, b, case.rtol, case.atol, f"{case} parameter gradient {i}")
    statistics = [b.numpy() for name, b in converted.named_buffers() if name.split(".")[-1] in
                  ("running_mean", "running_var")]
    buffers = flatten(module.getBuffers())
    assert len(statistics) == len(buffers)
    for a, b in zip(buffers, statistics):
        assert_close(a, b, case.rtol, case.atol, f"{case} running statistics after the step")


@pytest.mark.parametrize("case", MODULES, ids=str)
def test_numtorch_torch_numtorch_is_bit_identical(case):
    rng = np.random.default_rng(1)
    nt.manual_seed(1)
    module, x = case.build(rng, 3)
    x = as_float(x)
    back = from_torch(to_torch(module, sample_shape(x)))
    expected = architecture(module)
    if type(module) is nt.GlobalAvgPool2d:  # PyTorch's form is a Sequential of two modules
        expected = architecture(nt.Sequential(module))
    assert architecture(back) == expected
    arrays = flatten(module.getParameters()) + flatten(module.getBuffers())
    returned = flatten(back.getParameters()) + flatten(back.getBuffers())
    assert len(arrays) == len(returned)
    for ours, theirs in zip(arrays, returned):
        assert ours.dtype == theirs.dtype and np.array_equal(ours, theirs) and ours is not theirs
    assert modes(back) == modes(module) or type(module) is nt.GlobalAvgPool2d


def test_running_statistics_move_alike_in_training():
    rng = np.random.default_rng(2)
    model = nt.Sequential(nt.Conv2d(2, 3, 3), nt.BatchNormalization(0.8, n_features=3),
                          nt.ChannelwiseScaling(3), nt.ReLU(), nt.GlobalAvgPool2d(),
                          nt.BatchNormalization(0.7, n_features=3))
    converted = to_torch(model, (2, 5, 5))
    assert isinstance(converted[1], nn.BatchNorm2d) and converted[1].affine
    assert isinstance(converted[-1], nn.BatchNorm1d) and not converted[-1].affine
    assert converted[1].momentum == pytest.approx(0.2)
    x = rng.standard_normal((6, 2, 5, 5)).astype(np.float32)
    for _ in range(3):
        model.forward(x)
        converted(torch.tensor(x))
    for ours, theirs in ((model[1], converted[1]), (model[5], converted[-1])):
        assert_close(ours.moving_mean, theirs.running_mean.numpy(), 1e-5, 1e-6, "running mean")
        assert_close(ours.moving_variance, theirs.running_var.numpy(), 1e-5, 1e-6, "running variance")


def test_float64_round_trip_keeps_dtype():
    model = nt.Sequential(nt.Linear(3, 2), nt.BatchNormalization(n_features=2), nt.ChannelwiseScaling(2))
    model.astype(np.float64)
    converted = to_torch(model, (3,))
    assert all(p.dtype == torch.float64 for p in converted.parameters())
    back = from_torch(converted)
    assert all(p.dtype == np.float64 for p in flatten(back.getParameters() + back.getBuffers()))


def test_batch_norm_rank_comes_from_the_last_forward():
    model = nt.Sequential(nt.Linear(3, 4), nt.BatchNormalization())
    with pytest.raises(ValueError, match=r"to_torch: \(1\) \(BatchNormalization\): has not seen an input"):
        to_torch(model)
    model.forward(np.ones((2, 3), np.float32))
    assert isinstance(to_torch(model)[1], nn.BatchNorm1d)


# from_torch on models written in PyTorch


def torch_cnn():
    return nn.Sequential(
        nn.Conv2d(1, 4, 3, padding="same"), nn.BatchNorm2d(4, momentum=0.3), nn.ReLU(), nn.MaxPool2d(2),
        nn.Sequential(nn.Conv2d(4, 6, (3, 1), stride=(1, 2), padding=(1, 0), bias=False), nn.ELU(0.5)),
        nn.AvgPool2d(2, 1, padding=1), nn.Dropout(0.0), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        nn.Linear(6, 5), nn.BatchNorm1d(5, affine=False), nn.LeakyReLU(0.2), nn.Identity(), nn.Linear(5, 3),
        nn.Softplus(), nn.Linear(3, 3), nn.Tanh(), nn.Linear(3, 2), nn.Sigmoid(), nn.Linear(2, 2),
        nn.LogSoftmax(dim=1))


def torch_branches():
    body = nn.Sequential(nn.Conv2d(3, 3, 3, padding=1), nn.BatchNorm2d(3), nn.ReLU(),
                         nn.Conv2d(3, 3, 3, padding=1))
    inception = tm.Concat(1, nn.Conv2d(3, 2, 1), nn.Sequential(nn.MaxPool2d(3, 1, 1), nn.Conv2d(3, 1, 1)))
    head = tm.ConcatTable(nn.Sequential(nn.Flatten(), nn.Linear(3 * 16, 4)),
                          nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(3, 4)))
    return nn.Sequential(tm.ConcatTable(body, nn.Identity()), tm.CAddTable(), nn.ReLU(), inception,
                         tm.ChannelwiseScaling(3), head, tm.ParallelTable(nn.Tanh(), nn.Sigmoid()),
                         tm.ConcatTable(tm.CMulTable(), tm.JoinTable(1), tm.SelectTable(-1)))


@pytest.mark.parametrize("mode", ("train", "evaluate"))
@pytest.mark.parametrize("build, shape", [(torch_cnn, (1, 8, 8)), (torch_branches, (3, 4, 4))],
                         ids=("cnn", "branches"))
def test_from_torch_agrees_with_pytorch(build, shape, mode):
    torch.manual_seed(0)
    model = build()
    for module in model.modules():
        if isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
            module.running_mean.uniform_(-1, 1)
            module.running_var.uniform_(0.5, 2)
        if isinstance(module, tm.ChannelwiseScaling):
            module.weight.data.uniform_(0.5, 2)
    model.train(mode == "train")
    ours = from_torch(model)
    assert modes(ours) == [mode == "train"] * len(modes(ours))
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, *shape)).astype(np.float32)
    grad_output = random_like(rng, ours.forward(x))
    ours = from_torch(model)  # again: the forward above moved numtorch's running statistics
    theirs = torch_step(model, x, grad_output)
    mine = numtorch_step(ours, x, grad_output)
    for what, a, b in zip(("output", "gradInput"), mine, theirs):
        assert_close(a, b, 2e-4, 2e-5, f"{build.__name__} {what}")
    for i, (a, b) in enumerate(zip(mine[2], theirs[2])):
        assert_close(a, b, 2e-4, 2e-5, f"{build.__name__} parameter gradient {i}")
    if mode == "train":
        norms = [m for _, m in walk(ours) if isinstance(m, nt.BatchNormalization)]
        torch_norms = [m for m in model.modules() if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d))]
        for a, b in zip(norms, torch_norms):
            assert_close(a.moving_mean, b.running_mean.numpy(), 1e-5, 1e-6, "running mean")


def test_from_torch_reads_momentum_and_skips_num_batches_tracked():
    norm = nn.BatchNorm1d(3, momentum=0.25)
    norm.num_batches_tracked += 7
    model = from_torch(nn.Sequential(norm))
    assert [type(m) for m in model.modules] == [nt.BatchNormalization, nt.ChannelwiseScaling]
    assert model[0].alpha == 0.75 and model[0].getBuffers()[0].shape == (3,)


def test_mixed_modes_are_kept():
    model = nn.Sequential(nn.Linear(2, 2), nn.Dropout(0.5), nn.Sequential(nn.BatchNorm1d(2)))
    model.train()
    model[1].eval()
    ours = from_torch(model)
    assert [m.training for m in (ours, ours[0], ours[1], ours[2], ours[2][0], ours[2][1])] == \
        [True, True, False, True, True, True]
    assert [m.training for m in to_torch(ours, (2,)).modules()] == [m.training for m in model.modules()]


class MyLinear(nn.Linear):
    pass


@pytest.mark.parametrize("model, pattern", [
    (nn.Sequential(nn.Linear(2, 2), nn.Sequential(nn.ReLU(), nn.GELU())),
     r"from_torch: 1\.1 \(GELU\): no numtorch counterpart"),
    (nn.Sequential(MyLinear(2, 2)), r"from_torch: 0 \(MyLinear\): no numtorch counterpart"),
    (nn.Sequential(nn.Conv2d(2, 2, 3, groups=2)), r"0 \(Conv2d\): groups=2"),
    (nn.Sequential(nn.Conv2d(2, 2, 3, dilation=2)), r"0 \(Conv2d\): groups=1, dilation=\(2, 2\)"),
    (nn.Sequential(nn.Conv2d(2, 2, 2, padding="same")), "even kernel"),
    (nn.Sequential(nn.AvgPool2d(3, padding=1, count_include_pad=False)), "count_include_pad=True"),
    (nn.Sequential(nn.MaxPool2d(2, ceil_mode=True)), "ceil_mode=True"),
    (nn.Sequential(nn.Softplus(beta=2)), "beta=2"),
    (nn.Sequential(nn.BatchNorm2d(2, eps=1e-3)), "eps=0.001"),
    (nn.Sequential(nn.BatchNorm2d(2, momentum=None)), "momentum a number"),
    (nn.Sequential(nn.Softmax(dim=0)), "dim=0"),
    (nn.Sequential(nn.Flatten(0)), "start_dim=0"),
    (nn.Sequential(nn.AdaptiveAvgPool2d(2), nn.Flatten()), r"0 \(AdaptiveAvgPool2d\): numtorch reads"),
    (nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.ReLU()), "followed by Flatten"),
    (nn.Sequential(nn.Linear(2, 2).half()), "float16"),
    (nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2).double()), "earlier weights float32"),
])
def test_from_torch_names_what_it_cannot_read(model, pattern):
    with pytest.raises(ValueError, match=pattern):
        from_torch(model)


def test_to_torch_names_what_it_cannot_write():
    class Square(nt.Module):
        def updateOutput(self, input):
            self.output = input * input
            return self.output

    with pytest.raises(ValueError, match=r"to_torch: \(1\)\.\(0\) \(Square\): no PyTorch counterpart"):
        to_torch(nt.Sequential(nt.Linear(2, 2), nt.ConcatTable(Square())))
    with pytest.raises(TypeError, match="to_torch: expected a numtorch Module"):
        to_torch(nn.Linear(2, 2))
    with pytest.raises(TypeError, match="from_torch: expected a torch.nn.Module"):
        from_torch(nt.Linear(2, 2))


def test_conversions_keep_numtorchs_random_stream():
    nt.manual_seed(3)
    expected = nt.random.generator().random(2)
    nt.manual_seed(3)
    from_torch(nn.Sequential(nn.Linear(4, 4), nn.Conv2d(2, 2, 3)))
    np.testing.assert_array_equal(nt.random.generator().random(2), expected)


def test_import_numtorch_imports_no_torch_or_onnx():
    code = ("import sys, numtorch, numtorch.interop, numtorch.cli; "
            "print(sorted(m for m in ('torch', 'onnx', 'onnxruntime') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
