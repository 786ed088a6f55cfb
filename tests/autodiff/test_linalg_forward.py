"""Forward mode and vmap of HLO's cholesky and triangular-solve, against float64 finite
differences of numpy's own factorization and solves (the oracle), and against a Python loop
of the unbatched op."""
import itertools

import numpy as np
import pytest

import flowjit
from flowjit.core import bind

RNG = np.random.default_rng(0)
_M = RNG.standard_normal((4, 4))
A = _M @ _M.T + 4 * np.eye(4)
DA = RNG.standard_normal((4, 4))
DA = DA + DA.T
B = RNG.standard_normal((4, 3))
DB = RNG.standard_normal((4, 3))
H = 1e-6


def cholesky(lower):
    return lambda a: bind("cholesky", [a], {"lower": lower})


def triangular_solve(lower, left, transpose, unit):
    attrs = {"lower": lower, "left_side": left, "unit_diagonal": unit,
             "transpose_a": "TRANSPOSE" if transpose else "NO_TRANSPOSE"}
    return lambda a, b: bind("triangular-solve", [a, b], attrs)


def numpy_cholesky(a, lower):
    factor = np.linalg.cholesky(a)
    return factor if lower else factor.T


def numpy_solve(a, b, lower, left, transpose, unit):
    t = np.tril(a) if lower else np.triu(a)
    if unit:
        np.fill_diagonal(t, 1)
    op = t.T if transpose else t
    return np.linalg.solve(op, b) if left else b @ np.linalg.inv(op)


def _f32(*arrays):
    return tuple(np.asarray(x, np.float32) for x in arrays)


@pytest.mark.parametrize("lower", [True, False])
def test_cholesky_tangent_matches_central_differences(lower):
    _, tangent = flowjit.jvp(cholesky(lower), _f32(A), _f32(DA))
    want = (numpy_cholesky(A + H * DA, lower) - numpy_cholesky(A - H * DA, lower)) / (2 * H)
    np.testing.assert_allclose(np.asarray(tangent), want, atol=2e-5)


@pytest.mark.parametrize("lower, left, transpose, unit",
                         list(itertools.product([True, False], repeat=4)))
def test_triangular_solve_tangent_matches_central_differences(lower, left, transpose, unit):
    b, db = (B, DB) if left else (B.T, DB.T)
    flags = (lower, left, transpose, unit)
    _, tangent = flowjit.jvp(triangular_solve(*flags), _f32(A, b), _f32(DA, db))
    want = (numpy_solve(A + H * DA, b + H * db, *flags)
            - numpy_solve(A - H * DA, b - H * db, *flags)) / (2 * H)
    np.testing.assert_allclose(np.asarray(tangent), want, atol=2e-5)


def test_vmap_of_cholesky_and_solve_equals_a_loop():
    stack = np.stack([A + k * np.eye(4) for k in range(3)]).astype(np.float32)
    rhs = np.float32(B)
    solve = triangular_solve(True, True, False, False)
    batched = flowjit.vmap(lambda a: solve(cholesky(True)(a), rhs))(stack)
    for k in range(3):
        want = numpy_solve(numpy_cholesky(np.float64(stack[k]), True), B, True, True, False,
                           False)
        np.testing.assert_allclose(np.asarray(batched[k]), want, rtol=1e-5, atol=1e-5)
