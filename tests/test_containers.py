"""Sequential beyond the harness row: building, indexing, recursion and errors."""

import numpy as np
import pytest

import numtorch as nt
from numtorch.module import flatten


def network():
    nt.manual_seed(0)
    inner = nt.Sequential(nt.Linear(4, 3), nt.Dropout(0.5), nt.BatchNormalization(n_features=3))
    return nt.Sequential(nt.Linear(5, 4), nt.ReLU(), inner, nt.LogSoftMax()), inner


def test_add_index_len_and_iteration():
    net = nt.Sequential()
    assert len(net) == 0
    relu, linear = nt.ReLU(), nt.Linear(2, 2)
    assert net.add(linear).add(relu) is net
    assert len(net) == 2 and net[0] is linear and net[-1] is relu
    assert list(net) == [linear, relu] and net.modules == [linear, relu]
    assert [type(m) for m in net[0:1]] == [nt.Linear]


def test_add_rejects_what_is_not_a_module():
    with pytest.raises(TypeError, match="Sequential.add: expected a Module, got function"):
        nt.Sequential().add(lambda x: x)
    with pytest.raises(TypeError, match="got CrossEntropyCriterion"):
        nt.Sequential(nt.CrossEntropyCriterion())


def test_repr_numbers_the_children_and_indents_nesting():
    net, _ = network()
    assert repr(net) == (
        "Sequential(\n"
        "  (0) Linear(5 -> 4)\n"
        "  (1) ReLU\n"
        "  (2) Sequential(\n"
        "    (0) Linear(4 -> 3)\n"
        "    (1) Dropout(p=0.5)\n"
        "    (2) BatchNormalization(alpha=0.9, n_features=3)\n"
        "  )\n"
        "  (3) LogSoftMax\n"
        ")"
    )


def test_output_is_the_last_childs_array_and_inputs_are_kept():
    net, inner = network()
    x = np.random.default_rng(0).standard_normal((6, 5)).astype(np.float32)
    output = net.forward(x)
    assert output is net[-1].output and isinstance(output, np.ndarray)
    assert net.inputs[0] is x and net.inputs[1] is net[0].output and net.inputs[3] is inner.output


def test_parameters_nest_one_list_per_child():
    net, inner = network()
    params, grads = net.getParameters(), net.getGradParameters()
    assert len(params) == 4 and params[1] == [] and len(params[2]) == 3
    assert params[0][0] is net[0].W and params[2][0][1] is inner[0].b
    assert [p.shape for p in flatten(params)] == [g.shape for g in flatten(grads)]
    assert all(a is b for a, b in zip(flatten(params), flatten(net.getParameters())))
    assert [b.shape for b in flatten(net.getBuffers())] == [(3,), (3,)]


def test_train_evaluate_and_zero_grad_recurse():
    net, inner = network()
    assert net.evaluate() is net
    assert not net.training and not inner.training and not inner[1].training
    assert net.train() is net and inner[2].training
    x = np.random.default_rng(1).standard_normal((6, 5)).astype(np.float32)
    net.forward(x)
    net.backward(x, np.ones((6, 3), np.float32))
    assert any(g.any() for g in flatten(net.getGradParameters()))
    net.zeroGradParameters()
    assert not any(g.any() for g in flatten(net.getGradParameters()))


def test_astype_recurses_and_returns_the_container():
    net, inner = network()
    assert net.astype(np.float64) is net
    assert inner[0].W.dtype == np.float64 and inner[2].moving_mean.dtype == np.float64
    x = np.random.default_rng(2).standard_normal((3, 5))
    assert net.forward(x).dtype == np.float64


def test_backward_before_forward_and_bad_gradoutput():
    net, _ = network()
    with pytest.raises(ValueError, match="^Sequential: backward called before forward"):
        net.backward(np.ones((2, 5), np.float32), np.ones((2, 3), np.float32))
    x = np.ones((2, 5), np.float32)
    net.forward(x)
    with pytest.raises(ValueError, match=r"Sequential: expected gradOutput of the output's shape \(2, 3\), "
                                         r"got \(2, 4\)"):
        net.backward(x, np.ones((2, 4), np.float32))


def test_empty_container_cannot_run():
    with pytest.raises(ValueError, match="Sequential: cannot run forward with no modules"):
        nt.Sequential().forward(np.ones((1, 2)))


def test_a_childs_error_names_the_child():
    net, _ = network()
    with pytest.raises(ValueError, match=r"Linear\(5 -> 4\): expected input \(N, 5\), got \(2, 6\)"):
        net.forward(np.ones((2, 6), np.float32))


def test_update_grad_input_then_acc_grad_parameters_equals_backward():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((6, 5)).astype(np.float32)
    grad_output = rng.standard_normal((6, 3)).astype(np.float32)
    results = []
    for split in (False, True):
        net, _ = network()
        net.evaluate()
        net.forward(x)
        net.zeroGradParameters()
        if split:
            grad_input = net.updateGradInput(x, grad_output).copy()
            net.accGradParameters(x, grad_output)
        else:
            grad_input = net.backward(x, grad_output).copy()
        results.append([grad_input, *(g.copy() for g in flatten(net.getGradParameters()))])
    for joint, split in zip(*results):
        np.testing.assert_array_equal(split, joint)


def test_acc_grad_parameters_needs_update_grad_input_first():
    net = nt.Sequential(nt.Linear(5, 4), nt.Tanh(), nt.Linear(4, 3))
    net.zeroGradParameters()
    x, grad_output = np.ones((2, 5), np.float32), np.ones((2, 3), np.float32)
    net.forward(x)
    with pytest.raises(ValueError, match=r"Sequential: accGradParameters needs updateGradInput first "
                                         r"\(module \(1\) Tanh has no gradInput for an input of shape "
                                         r"\(2, 4\)\)"):
        net.accGradParameters(x, grad_output)
    net.updateGradInput(x, grad_output)
    x, grad_output = np.ones((7, 5), np.float32), np.ones((7, 3), np.float32)
    net.forward(x)
    with pytest.raises(ValueError, match=r"module \(1\) Tanh has no gradInput for an input of shape "
                                         r"\(7, 4\)"):
        net.accGradParameters(x, grad_output)
    assert not any(g.any() for g in flatten(net.getGradParameters())), "a failed call accumulated"


def test_needs_input_grad_false_on_a_container_skips_its_first_childs_input_gradient():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((5, 4)).astype(np.float32)
    grad = rng.standard_normal((5, 2)).astype(np.float32)
    nets = []
    for _ in range(2):
        nt.manual_seed(0)
        nets.append(nt.Sequential(nt.Sequential(nt.Linear(4, 3), nt.ReLU()), nt.Linear(3, 2)))
    full, skipping = nets
    skipping.needs_input_grad = False
    for model in nets:
        model.forward(x)
    assert full.backward(x, grad).shape == x.shape
    assert skipping.backward(x, grad) is None
    assert skipping[0].gradInput is None and skipping[0][0].gradInput is None
    # The children's own flags are left as they were; later calls compute what they are asked for.
    assert skipping[0].needs_input_grad and skipping[0][0].needs_input_grad
    for ours, theirs in zip(flatten(skipping.getGradParameters()), flatten(full.getGradParameters())):
        np.testing.assert_array_equal(ours, theirs)
    skipping.needs_input_grad = True
    np.testing.assert_array_equal(skipping.backward(x, grad), full.gradInput)
