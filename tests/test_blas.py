"""The BLAS wrappers against NumPy: every layout, both dtypes, one row, in-place accumulation."""

import numpy as np
import pytest

from numtorch._blas import add_matmul_tn, affine, axpy, matmul, matmul_into, matmul_tn, scale_add

DTYPES = [np.float32, np.float64]


def tolerance(dtype):
    return {"rtol": 1e-5, "atol": 1e-5} if dtype == np.float32 else {"rtol": 1e-12, "atol": 1e-12}


def layouts(array):
    """The array as C-contiguous, Fortran-ordered and a strided slice of a bigger one."""
    wide = np.zeros((array.shape[0], 2 * array.shape[1]), array.dtype)
    wide[:, ::2] = array
    return [array, np.asfortranarray(array), wide[:, ::2]]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", [1, 2, 9])
@pytest.mark.parametrize("bias", [True, False])
def test_affine(dtype, n, bias):
    rng = np.random.default_rng(n)
    W = rng.standard_normal((4, 6)).astype(dtype)
    b = rng.standard_normal(4).astype(dtype) if bias else None
    for x in layouts(rng.standard_normal((n, 6)).astype(dtype)):
        x_before = x.copy()
        y = affine(x, W, b)
        expected = x @ W.T + (b if bias else 0)
        assert y.dtype == dtype and y.flags.c_contiguous
        np.testing.assert_allclose(y, expected, **tolerance(dtype))
        np.testing.assert_array_equal(x, x_before)
        if bias:
            assert not np.shares_memory(y, b)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", [1, 2, 9])
def test_matmul(dtype, n):
    rng = np.random.default_rng(n)
    W = rng.standard_normal((4, 6)).astype(dtype)
    for g in layouts(rng.standard_normal((n, 4)).astype(dtype)):
        y = matmul(g, W)
        assert y.dtype == dtype and y.flags.c_contiguous
        np.testing.assert_allclose(y, g @ W, **tolerance(dtype))


@pytest.mark.parametrize("c_dtype,data_dtype", [(np.float32, np.float32), (np.float64, np.float64),
                                                 (np.float32, np.float64)])
@pytest.mark.parametrize("n", [1, 7])
def test_add_matmul_tn_accumulates_in_place(c_dtype, data_dtype, n):
    rng = np.random.default_rng(n)
    c = rng.standard_normal((4, 6)).astype(c_dtype)
    start = c.copy()
    for g, x in zip(layouts(rng.standard_normal((n, 4)).astype(data_dtype)),
                    layouts(rng.standard_normal((n, 6)).astype(data_dtype))):
        same = c
        add_matmul_tn(c, g, x)
        assert c is same and c.dtype == c_dtype
        start = start + g.T @ x
        np.testing.assert_allclose(c, start, **tolerance(c_dtype))


def test_add_matmul_tn_into_a_non_contiguous_array():
    rng = np.random.default_rng(0)
    storage = np.zeros((6, 4), np.float32)
    c = storage.T
    g, x = rng.standard_normal((3, 4)).astype(np.float32), rng.standard_normal((3, 6)).astype(np.float32)
    add_matmul_tn(c, g, x)
    np.testing.assert_allclose(storage.T, g.T @ x, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("x_dtype,y_dtype", [(np.float32, np.float32), (np.float64, np.float64),
                                             (np.float64, np.float32)])
def test_axpy_in_place(x_dtype, y_dtype):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 5)).astype(x_dtype)
    for y in (rng.standard_normal((3, 5)).astype(y_dtype), np.zeros((5, 3), y_dtype).T):
        expected = y + (-0.1 * x).astype(y_dtype)
        same = y
        axpy(-0.1, x, y)
        assert y is same and y.dtype == y_dtype
        np.testing.assert_allclose(y, expected, **tolerance(y_dtype))


@pytest.mark.parametrize("x_dtype,y_dtype", [(np.float32, np.float32), (np.float64, np.float64),
                                             (np.float64, np.float32)])
def test_scale_add_in_place(x_dtype, y_dtype):
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 5)).astype(x_dtype)
    for y in (rng.standard_normal((3, 5)).astype(y_dtype), np.ones((5, 3), y_dtype).T):
        expected = (0.9 * y.astype(np.float64) + x).astype(y_dtype)
        same = y
        scale_add(y, 0.9, x)
        assert y is same and y.dtype == y_dtype
        np.testing.assert_allclose(y, expected, **tolerance(y_dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("m", [1, 2, 9])
def test_matmul_into_writes_in_place(dtype, m):
    rng = np.random.default_rng(m)
    b = rng.standard_normal((4, 3)).astype(dtype)
    for a in layouts(rng.standard_normal((m, 4)).astype(dtype)):
        blocks = np.full((2, m, 3), np.nan, dtype)
        matmul_into(a, b, blocks[1])
        np.testing.assert_allclose(blocks[1], a @ b, **tolerance(dtype))
        assert np.isnan(blocks[0]).all()
    strided = np.zeros((m, 6), dtype)[:, ::2]
    matmul_into(a, b, strided)
    np.testing.assert_allclose(strided, a @ b, **tolerance(dtype))
    for out in (np.ones((m, 3), dtype), np.ones((m, 6), dtype)[:, ::2]):
        matmul_into(a, b, out, accumulate=True)
        np.testing.assert_allclose(out, 1 + a @ b, **tolerance(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("n", [1, 2, 9])
def test_matmul_tn(dtype, n):
    rng = np.random.default_rng(n)
    x = rng.standard_normal((n, 5)).astype(dtype)
    for g in layouts(rng.standard_normal((n, 4)).astype(dtype)):
        y = matmul_tn(g, x)
        assert y.dtype == dtype and y.flags.c_contiguous
        np.testing.assert_allclose(y, g.T @ x, **tolerance(dtype))
