"""The matrix products of the dense layers and optimizers, as direct BLAS calls through SciPy.

Why not ``@``: BLAS computes ``C = alpha A B + beta C`` in place, so with
``beta=1`` a weight gradient accumulates straight into ``gradW`` (no temporary,
no extra pass over it), and a bias is added by starting ``C`` from it. All
products go through SciPy's BLAS, so only one BLAS thread pool is busy.

NumPy arrays are row-major and BLAS is column-major: a C-contiguous (m, n)
array ``a`` is, to BLAS, the (n, m) matrix ``a.T``, so every product below is
computed transposed, ``(A B)^T = B^T A^T``, on ``.T`` views; no array is copied
(SciPy copies an operand only if it is not contiguous, and the result stays right).
"""

import numpy as np
from scipy.linalg import blas

_GEMM = {np.dtype(np.float32): blas.sgemm, np.dtype(np.float64): blas.dgemm}
_GEMV = {np.dtype(np.float32): blas.sgemv, np.dtype(np.float64): blas.dgemv}
_AXPY = {np.dtype(np.float32): blas.saxpy, np.dtype(np.float64): blas.daxpy}
_SCAL = {np.dtype(np.float32): blas.sscal, np.dtype(np.float64): blas.dscal}


def affine(x, W, b):
    """``x W^T + b`` as a new C-contiguous array: x (N, n_in), W (n_out, n_in), b (n_out,) or None.

    ``x``, ``W`` and ``b`` share one dtype. One row is a matrix-vector product
    (GEMM with N = 1 is several times slower in OpenBLAS).
    """
    n, n_out = x.shape[0], W.shape[0]
    if n == 1:
        gemv = _GEMV[x.dtype]
        if b is None:
            return gemv(1.0, W.T, x[0], trans=1)[None]
        return gemv(1.0, W.T, x[0], beta=1.0, y=b.copy(), trans=1, overwrite_y=1)[None]
    gemm = _GEMM[x.dtype]
    if b is None:
        return gemm(1.0, W.T, x.T, trans_a=1).T
    output = np.empty((n, n_out), x.dtype)
    output[...] = b
    gemm(1.0, W.T, x.T, beta=1.0, c=output.T, trans_a=1, overwrite_c=1)
    return output


def matmul(a, b):
    """``a b`` as a new C-contiguous array: a (m, k), b (k, n), one dtype."""
    if a.shape[0] == 1:
        return _GEMV[a.dtype](1.0, b.T, a[0])[None]
    return _GEMM[a.dtype](1.0, b.T, a.T).T


def matmul_into(a, b, out, accumulate=False):
    """``out[...] = a b`` (``out += a b`` with ``accumulate``) in place: a (m, k), b (k, n), out (m, n).

    One GEMM writing straight into ``out`` (``beta=1`` to accumulate) when it
    is C-contiguous and all three share its dtype, as the per-offset products
    of Conv2d's backward; otherwise NumPy.
    """
    if out.flags.c_contiguous and out.dtype == a.dtype == b.dtype:
        _GEMM[out.dtype](1.0, b.T, a.T, beta=float(accumulate), c=out.T, overwrite_c=1)
    elif accumulate:
        out += a @ b
    else:
        np.matmul(a, b, out=out)


def matmul_tn(g, x):
    """``g^T x`` as a new C-contiguous array: g (N, m), x (N, n), one dtype."""
    return _GEMM[x.dtype](1.0, x.T, g.T, trans_b=1).T


def add_matmul_tn(c, g, x):
    """``c += g^T x`` in place: c (n_out, n_in), g (N, n_out), x (N, n_in).

    One GEMM with ``beta=1`` when ``c`` is C-contiguous and all three share its
    dtype; otherwise (e.g. float64 data into float32 gradients) the product is
    computed in the data's dtype and added.
    """
    if c.flags.c_contiguous and c.dtype == g.dtype == x.dtype:
        _GEMM[c.dtype](1.0, x.T, g.T, beta=1.0, c=c.T, trans_b=1, overwrite_c=1)
    else:
        c += _GEMM[x.dtype](1.0, x.T, g.T, trans_b=1).T if x.dtype == g.dtype else g.T @ x


def axpy(alpha, x, y):
    """``y += alpha x`` in place, in one pass, for arrays of one shape."""
    if y.flags.c_contiguous and x.flags.c_contiguous and x.dtype == y.dtype:
        _AXPY[y.dtype](x.reshape(-1), y.reshape(-1), a=alpha)
    else:
        y += y.dtype.type(alpha) * x


def scale_add(y, alpha, x):
    """``y = alpha y + x`` in place (a momentum buffer update), for arrays of one shape.

    BLAS ``scal`` then ``axpy`` (multi-threaded, no temporary) when both are
    C-contiguous and share a dtype; otherwise NumPy.
    """
    if y.flags.c_contiguous and x.flags.c_contiguous and x.dtype == y.dtype:
        flat = y.reshape(-1)
        _SCAL[y.dtype](alpha, flat)
        _AXPY[y.dtype](x.reshape(-1), flat)
    else:
        y *= alpha
        y += x
