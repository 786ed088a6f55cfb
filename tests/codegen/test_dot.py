"""Matrix products through both dot kernels (loops for small, BLAS for large) vs numpy."""
import numpy as np
import pytest

import flowjit
import flowjit.numpy as fnp

# float64 / int64 against 64-bit oracles at 64-bit tolerances: 64-bit types on, as JAX needs.
pytestmark = pytest.mark.usefixtures("x64")


@pytest.mark.parametrize("size", [7, 70], ids=["loop-kernel", "blas-sized"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_matrix_products_and_layouts(size, dtype, opt_level):
    rng = np.random.default_rng(size)
    a = rng.standard_normal((3, size, size + 1)).astype(dtype)
    b = rng.standard_normal((3, size + 1, size + 2)).astype(dtype)
    m = rng.standard_normal((size + 1, size)).astype(dtype)
    bias = rng.standard_normal(size + 2).astype(dtype)

    def f(a, b, m, bias):
        return (a @ b,                                  # batched
                a[0].T @ m.T,                           # both transposed
                fnp.maximum(a[1] @ b[1] + bias, 0.0),   # dense + bias + relu
                a[2] @ m[:, 0])                         # matrix-vector
    got = flowjit.jit(f, opt_level=opt_level)(a, b, m, bias)
    want = (a @ b, a[0].T @ m.T, np.maximum(a[1] @ b[1] + bias, 0.0), a[2] @ m[:, 0])
    tol = 2e-4 if dtype == np.float32 else 1e-11
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=tol, atol=tol * size)


def test_integer_dot_uses_exact_integer_arithmetic():
    a = np.arange(12, dtype=np.int32).reshape(3, 4)
    b = np.arange(8, dtype=np.int32).reshape(4, 2) - 3
    np.testing.assert_array_equal(flowjit.jit(lambda a, b: a @ b)(a, b), a @ b)
