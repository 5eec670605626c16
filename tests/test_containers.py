"""Sequential beyond the harness row: building, indexing, recursion and errors."""

import numpy as np
import pytest

import numtorch as nt
from numtorch.containers import path_name, walk
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


def branching_network():
    nt.manual_seed(0)
    block = nt.Sequential(nt.ConcatTable(nt.Sequential(nt.Linear(4, 4), nt.Tanh()), nt.Identity()),
                          nt.CAddTable())
    return nt.Sequential(nt.Linear(3, 4), block, nt.Concat(1, nt.Linear(4, 2), nt.Linear(4, 3)),
                         nt.ConcatTable(nt.Identity(), nt.ReLU()), nt.ParallelTable(nt.Tanh(), nt.Sigmoid()),
                         nt.JoinTable(1))


def test_branching_repr_is_a_numbered_tree():
    assert repr(branching_network()) == (
        "Sequential(\n"
        "  (0) Linear(3 -> 4)\n"
        "  (1) Sequential(\n"
        "    (0) ConcatTable(\n"
        "      (0) Sequential(\n"
        "        (0) Linear(4 -> 4)\n"
        "        (1) Tanh\n"
        "      )\n"
        "      (1) Identity\n"
        "    )\n"
        "    (1) CAddTable\n"
        "  )\n"
        "  (2) Concat(dim=1,\n"
        "    (0) Linear(4 -> 2)\n"
        "    (1) Linear(4 -> 3)\n"
        "  )\n"
        "  (3) ConcatTable(\n"
        "    (0) Identity\n"
        "    (1) ReLU\n"
        "  )\n"
        "  (4) ParallelTable(\n"
        "    (0) Tanh\n"
        "    (1) Sigmoid\n"
        "  )\n"
        "  (5) JoinTable(dim=1)\n"
        ")"
    )
    assert repr(nt.ConcatTable()) == "ConcatTable()" and repr(nt.Concat(-1)) == "Concat(dim=-1)"


def test_walk_names_every_module_by_its_path():
    net = branching_network()
    names = [(path_name(path), type(module).__name__) for path, module in walk(net)]
    assert names[:6] == [("", "Sequential"), ("(0)", "Linear"), ("(1)", "Sequential"),
                         ("(1).(0)", "ConcatTable"), ("(1).(0).(0)", "Sequential"),
                         ("(1).(0).(0).(0)", "Linear")]
    assert len(names) == 19 and names[-1] == ("(5)", "JoinTable")


def test_branching_network_parameters_nest_per_child_and_train_evaluate_recurse():
    net = branching_network()
    params = net.getParameters()
    assert len(params) == 6 and params[1][0][0][0][0] is net[1][0][0][0].W
    assert len(flatten(params)) == 8
    net.evaluate()
    assert all(not module.training for _, module in walk(net))


def test_concat_table_grad_input_is_a_new_array_summing_the_branches():
    nt.manual_seed(0)
    net = nt.ConcatTable(nt.Linear(3, 2), nt.Identity())
    x = np.random.default_rng(0).standard_normal((4, 3)).astype(np.float32)
    output = net.forward(x)
    grads = [np.ones_like(o) for o in output]
    grad_input = net.backward(x, grads)
    assert all(not np.may_share_memory(grad_input, m.gradInput) for m in net)
    np.testing.assert_allclose(grad_input, net[0].gradInput + net[1].gradInput)


@pytest.mark.parametrize("make", [
    lambda: nt.ConcatTable(nt.Linear(3, 2), nt.Sequential(nt.Linear(3, 2), nt.ReLU())),
    lambda: nt.Concat(1, nt.Linear(3, 2), nt.Sequential(nt.Linear(3, 2), nt.ReLU())),
    lambda: nt.Sequential(nt.ConcatTable(nt.Linear(3, 2), nt.Linear(3, 2)), nt.CAddTable()),
], ids=["ConcatTable", "Concat", "Sequential-of-ConcatTable"])
def test_needs_input_grad_false_skips_every_branch_that_reads_the_input(make):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((5, 3)).astype(np.float32)
    nets = []
    for _ in range(2):
        nt.manual_seed(0)
        nets.append(make())
    full, skipping = nets
    skipping.needs_input_grad = False
    grads = None
    for net in nets:
        output = net.forward(x)
        grads = grads or [np.ones_like(a) for a in (output if isinstance(output, list) else [output])]
        grad = grads if isinstance(output, list) else grads[0]
        net.backward(x, grad)
    assert full.gradInput is not None and skipping.gradInput is None
    for _, module in walk(skipping):
        assert module.needs_input_grad is True or module is skipping
    for ours, theirs in zip(flatten(skipping.getGradParameters()), flatten(full.getGradParameters())):
        np.testing.assert_array_equal(ours, theirs)


def test_parallel_table_needs_one_entry_per_branch():
    net = nt.ParallelTable(nt.ReLU(), nt.Tanh())
    with pytest.raises(ValueError, match=r"ParallelTable: expected input as a table of 2 entries \(one per "
                                         r"module\), got 3: \[\(2, 1\), \(2, 1\), \(2, 1\)\]"):
        net.forward([np.ones((2, 1), np.float32)] * 3)
    with pytest.raises(TypeError, match=r"ParallelTable: expected input as a table \(a list of arrays\), "
                                        r"got array of shape \(2, 1\)"):
        net.forward(np.ones((2, 1), np.float32))


def test_concat_checks_what_its_branches_give():
    x = np.ones((2, 3), np.float32)
    with pytest.raises(ValueError, match=r"Concat: expected module outputs that agree on every axis but 0, "
                                         r"got shapes \[\(2, 2\), \(2, 4\)\]"):
        nt.Concat(0, nt.Linear(3, 2), nt.Linear(3, 4)).forward(x)
    with pytest.raises(TypeError, match=r"Concat: expected every module outputs entry as an array, got list"):
        nt.Concat(1, nt.ConcatTable(nt.ReLU()), nt.ReLU()).forward(x)
    with pytest.raises(TypeError, match="Concat: expected dim as an int, got str '1'"):
        nt.Concat("1")


def test_a_branchs_error_names_the_branch_and_the_containers_input():
    net = nt.ConcatTable(nt.Linear(3, 2), nt.Linear(4, 2))
    with pytest.raises(ValueError, match=r"^ConcatTable: on input \(2, 3\), module \(1\) failed: "
                                         r"Linear\(4 -> 2\): expected input \(N, 4\), got \(2, 3\)"):
        net.forward(np.ones((2, 3), np.float32))
    table = nt.ParallelTable(nt.ReLU(), nt.Linear(4, 2))
    with pytest.raises(ValueError,
                       match=r"^ParallelTable: on input \[\(2, 3\), \(2, 3\)\], module \(1\) failed"):
        table.forward([np.ones((2, 3), np.float32)] * 2)


def test_table_gradoutput_must_match_the_output_table():
    net = nt.ConcatTable(nt.ReLU(), nt.Tanh())
    x = np.ones((2, 3), np.float32)
    net.forward(x)
    with pytest.raises(ValueError, match=r"ConcatTable: expected gradOutput of the output's shape "
                                         r"\[\(2, 3\), \(2, 3\)\], got \(2, 3\)"):
        net.backward(x, np.ones((2, 3), np.float32))
    with pytest.raises(ValueError, match=r"ConcatTable: expected gradOutput as a table of 2 entries"):
        net.updateGradInput(x, np.ones((2, 3), np.float32))


def test_direct_calls_drive_a_network_without_forward():
    """The course's tests call updateOutput, updateGradInput and accGradParameters themselves."""
    x = np.random.default_rng(0).standard_normal((4, 3)).astype(np.float32)
    grad = np.ones((4, 10), np.float32)
    results = []
    for calls in ("forward", "updateOutput"):
        net = branching_network()
        output = getattr(net, calls)(x)
        net.zeroGradParameters()
        results.append((output.copy(), net.backward(x, grad).copy(), [g.copy() for g in
                                                                     flatten(net.getGradParameters())]))
    for ours, theirs in zip(flatten(list(results[1])), flatten(list(results[0]))):
        np.testing.assert_array_equal(ours, theirs)


def test_a_container_of_your_own_only_writes_its_data_flow():
    class Residual(nt.Container):
        """y = f(x) + x for its one child f."""

        def updateOutput(self, input):
            self.output = self.modules[0].forward(input) + input
            return self.output

        def updateGradInput(self, input, gradOutput):
            self.gradInput = self.modules[0].updateGradInput(input, gradOutput) + gradOutput
            return self.gradInput

        def accGradParameters(self, input, gradOutput):
            self.modules[0].accGradParameters(input, gradOutput)

    nt.manual_seed(0)
    net = Residual(nt.Linear(3, 3))
    assert repr(net) == "Residual(\n  (0) Linear(3 -> 3)\n)"
    assert len(net.getParameters()) == 1 and net.evaluate().modules[0].training is False
    assert nt.gradcheck(net, np.random.default_rng(0).standard_normal((2, 3))) <= 1e-6
