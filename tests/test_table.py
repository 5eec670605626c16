"""Table modules beyond the shared table: fresh gradient arrays, indices, and bad tables.

Outputs and gradients against PyTorch and by finite differences: the CAddTable,
CMulTable, JoinTable, SelectTable and Identity/table rows of ``module_table.py``.
"""

import numpy as np
import pytest

import numtorch as nt


def batch(*shape, seed=0, dtype=np.float32):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def test_cadd_table_gives_every_entry_its_own_gradient_array():
    x = [batch(2, 3, seed=i) for i in range(3)]
    module = nt.CAddTable()
    np.testing.assert_allclose(module.forward(x), x[0] + x[1] + x[2], rtol=1e-6)
    grad = batch(2, 3, seed=9)
    grads = module.backward(x, grad)
    assert len(grads) == 3 and len({id(g) for g in grads}) == 3
    assert not any(np.may_share_memory(a, b) for i, a in enumerate(grads) for b in grads[i + 1:])
    assert not any(np.may_share_memory(g, grad) for g in grads)
    grads[0] += 1  # a caller may change one entry without touching the others
    np.testing.assert_array_equal(grads[1], grad)


def test_cadd_table_of_one_entry_is_a_copy():
    x = [batch(2, 3)]
    output = nt.CAddTable().forward(x)
    assert not np.may_share_memory(output, x[0])
    np.testing.assert_array_equal(output, x[0])


def test_cmul_table_gradient_needs_no_division():
    x = [np.array([[0.0, 2.0]], np.float32), np.array([[3.0, 0.0]], np.float32)]
    module = nt.CMulTable()
    module.forward(x)
    grads = module.backward(x, np.ones((1, 2), np.float32))
    np.testing.assert_array_equal(grads[0], [[3.0, 0.0]])
    np.testing.assert_array_equal(grads[1], [[0.0, 2.0]])


@pytest.mark.parametrize("dim,expected", [(0, (5, 3)), (1, (2, 6)), (-1, (2, 6)), (-2, (5, 3))])
def test_join_table_counts_axes_as_numpy_concatenate(dim, expected):
    a, b = batch(2, 3), batch(3 if dim in (0, -2) else 2, 3, seed=1)
    output = nt.JoinTable(dim).forward([a, b])
    assert output.shape == expected
    np.testing.assert_array_equal(output, np.concatenate([a, b], axis=dim))


def test_join_table_gradient_entries_are_copies_not_views_of_grad_output():
    x = [batch(2, 3), batch(2, 1, seed=1)]
    module = nt.JoinTable(1)
    module.forward(x)
    grad = batch(2, 4, seed=2)
    grads = module.backward(x, grad)
    np.testing.assert_array_equal(grads[0], grad[:, :3])
    np.testing.assert_array_equal(grads[1], grad[:, 3:])
    assert not any(np.may_share_memory(g, grad) for g in grads)


@pytest.mark.parametrize("index", [0, 1, 2, -1, -3])
def test_select_table_takes_python_indices_and_sends_zeros_elsewhere(index):
    x = [batch(2, 3), [batch(2, 2, seed=1), batch(2, 1, seed=2)], batch(2, 4, seed=3)]
    module = nt.SelectTable(index)
    output = module.forward(x)
    chosen = x[index]
    if isinstance(chosen, list):
        assert [o.shape for o in output] == [c.shape for c in chosen]
        assert not any(np.may_share_memory(o, c) for o, c in zip(output, chosen))
        grad_output = [np.ones_like(o) for o in output]
    else:
        np.testing.assert_array_equal(output, chosen)
        assert not np.may_share_memory(output, chosen)
        grad_output = np.ones_like(output)
    grads = module.backward(x, grad_output)
    for i, (grad, entry) in enumerate(zip(grads, x)):
        grad_leaves = grad if isinstance(grad, list) else [grad]
        entry_leaves = entry if isinstance(entry, list) else [entry]
        assert [g.shape for g in grad_leaves] == [e.shape for e in entry_leaves]
        selected = i == index % len(x)
        assert all((g == 1).all() if selected else not g.any() for g in grad_leaves)


def test_identity_copies_nested_tables():
    x = [batch(2, 3), [batch(2, 2, seed=1)]]
    output = nt.Identity().forward(x)
    assert isinstance(output[1], list)
    assert not np.may_share_memory(output[0], x[0]) and not np.may_share_memory(output[1][0], x[1][0])


@pytest.mark.parametrize("module,table,error,message", [
    (nt.CAddTable(), batch(2, 3), TypeError,
     r"CAddTable: expected input as a table \(a list of arrays\), got array of shape \(2, 3\)"),
    (nt.CAddTable(), [batch(2, 3), batch(2, 4)], ValueError,
     r"CAddTable: expected input entries of one shape, got \[\(2, 3\), \(2, 4\)\]"),
    (nt.CMulTable(), [batch(2, 3), batch(3, 3)], ValueError,
     r"CMulTable: expected input entries of one shape, got \[\(2, 3\), \(3, 3\)\]"),
    (nt.CAddTable(), [batch(2, 3), batch(2, 3, dtype=np.float64)], TypeError,
     "CAddTable: expected input entries of one dtype, got float32, float64"),
    (nt.CAddTable(), [batch(2, 3), [batch(2, 3)]], TypeError,
     r"CAddTable: expected every input entry as an array, got list at \[1\]"),
    (nt.CAddTable(), [], ValueError, "CAddTable: expected input as a non-empty table, got an empty list"),
    (nt.CAddTable(), [batch(2, 3), [1.0, 2.0]], TypeError,
     r"CAddTable: expected input\[1\] as a NumPy float array or a table \(list\) of them, got a list "
     r"holding float at \[0\]"),
    (nt.CAddTable(), [batch(2, 3), batch(2, 3).astype(int)], TypeError,
     r"CAddTable: expected input\[1\] of dtype float32 or float64, got int64"),
    (nt.SelectTable(3), [batch(2, 3)] * 3, ValueError,
     r"SelectTable\(index=3\): expected a table of more than 3 entries, got 3 "
     r"\(shapes \[\(2, 3\), \(2, 3\), \(2, 3\)\]\)"),
    (nt.SelectTable(-4), [batch(2, 3)] * 3, ValueError,
     r"SelectTable\(index=-4\): expected a table of more than 3 entries, got 3"),
    (nt.JoinTable(1), [batch(2, 3), batch(3, 3)], ValueError,
     r"JoinTable\(dim=1\): expected input that agree on every axis but 1, got shapes \[\(2, 3\), \(3, 3\)\]"),
    (nt.JoinTable(2), [batch(2, 3), batch(2, 3)], ValueError,
     r"JoinTable\(dim=2\): expected input with one number of dimensions, more than 2, "
     r"got shapes \[\(2, 3\), \(2, 3\)\]"),
    (nt.JoinTable(1), [batch(2, 3), batch(2, 3, 1)], ValueError,
     r"JoinTable\(dim=1\): expected input with one number of dimensions"),
])
def test_bad_tables_name_the_module_and_the_shapes(module, table, error, message):
    with pytest.raises(error, match=message):
        module.forward(table)


@pytest.mark.parametrize("make,bad", [(nt.JoinTable, 1.0), (nt.JoinTable, True), (nt.SelectTable, "0"),
                                      (nt.SelectTable, None)])
def test_dims_and_indices_are_ints(make, bad):
    with pytest.raises(TypeError, match=f"{make.__name__}: expected .* as an int, got"):
        make(bad)


def test_table_modules_rebuild_from_their_config():
    for module in (nt.CAddTable(), nt.CMulTable(), nt.JoinTable(-1), nt.SelectTable(-2)):
        rebuilt = type(module)(**module.config())
        assert repr(rebuilt) == repr(module)
