"""Everyday numpy names (issue 15's list) against JAX on the same inputs: values (eager and,
for a sample, under jit), gradients against jax.grad, and JAX's signatures."""
import inspect

import numpy as np
import pytest

import flowjit
import flowjit.numpy as fnp

jax = pytest.importorskip("jax")
jnp = jax.numpy
# JAX's 32-bit defaults, whatever another test set for the process.
pytestmark = pytest.mark.usefixtures("no_x64")

RNG = np.random.default_rng(15)
A = RNG.standard_normal((4, 5)).astype(np.float32)
B = RNG.standard_normal((2, 4, 5)).astype(np.float32)
V = RNG.standard_normal(3).astype(np.float32)
U = RNG.uniform(-0.95, 0.95, (3, 4)).astype(np.float32)       # inside (-1, 1)
BIG = (np.abs(A) + 1.1).astype(np.float32)                    # > 1
NANS = A.copy()
NANS[0, 1] = NANS[2, 2] = NANS[2, 3] = np.nan
NANS[3] = np.nan                                               # an all-NaN row
INTS = RNG.integers(0, 7, 12).astype(np.int32)
XP = np.sort(RNG.uniform(-2, 2, 6)).astype(np.float32)
FP = RNG.standard_normal(6).astype(np.float32)
XQ = np.concatenate([RNG.uniform(-3, 3, 9), XP[:2]]).astype(np.float32)
SPECIAL = np.array([0.0, -0.0, 1.0, -1.0, np.inf, -np.inf, np.nan, 3.0], np.float32)

# name -> function of the library module (flowjit.numpy or jax.numpy), run on no arguments
VALUES = {
    "split": lambda np_: np_.split(B, 2, axis=1),
    "split_points": lambda np_: np_.split(B, [1, 3], axis=2),
    "array_split": lambda np_: np_.array_split(A, 3, axis=1),
    "tril": lambda np_: np_.tril(B, -1),
    "tril_wide": lambda np_: np_.tril(A, 2),
    "triu": lambda np_: np_.triu(B, 1),
    "triu_low": lambda np_: np_.triu(A, -2),
    "diag_vector": lambda np_: np_.diag(V, 2),
    "diag_vector_below": lambda np_: np_.diag(V, -1),
    "diag_matrix": lambda np_: np_.diag(A, -1),
    "diagonal": lambda np_: np_.diagonal(B, 1, 2, 1),
    "diagonal_below": lambda np_: np_.diagonal(B, -1, 0, 2),
    "trace": lambda np_: np_.trace(B, 1, 1, 2),
    "trace_int": lambda np_: np_.trace(INTS[:9].reshape(3, 3)),
    "roll_flat": lambda np_: np_.roll(B, 3),
    "roll_axes": lambda np_: np_.roll(B, (1, -7), axis=(1, 2)),
    "meshgrid": lambda np_: np_.meshgrid(V, A[0], A[1, :2]),
    "meshgrid_ij_sparse": lambda np_: np_.meshgrid(V, A[0], indexing="ij", sparse=True),
    "kron": lambda np_: np_.kron(A[:2, :3], B[:, :2]),
    "kron_vector": lambda np_: np_.kron(V, A),
    "cross": lambda np_: np_.cross(B[:, :3, :3], A[:3, :3]),
    "cross_axis": lambda np_: np_.cross(A[:3], B[1, :3], axis=0),
    "cross_2d": lambda np_: np_.cross(A[:, :2], A[:, 2:4]),
    "diff": lambda np_: np_.diff(B, 2, axis=1),
    "diff_prepend_append": lambda np_: np_.diff(A, prepend=0.0, append=A[:, :2]),
    "diff_bool": lambda np_: np_.diff(A > 0),
    "arcsin": lambda np_: np_.arcsin(np.concatenate([U.ravel(), [-1, 1, 0, 1.5]])),
    "arccos": lambda np_: np_.arccos(np.concatenate([U.ravel(), [-1, 1, 0, 1.5]])),
    "arctan": lambda np_: np_.arctan(np.concatenate([A.ravel() * 50, SPECIAL])),
    "arcsinh": lambda np_: np_.arcsinh(np.concatenate([A.ravel() * 1e3, [1e-30, -3e38],
                                                        SPECIAL])),
    "arccosh": lambda np_: np_.arccosh(np.concatenate([BIG.ravel(), [1, 0.5, 3e38]])),
    "arctanh": lambda np_: np_.arctanh(np.concatenate([U.ravel(), [-1, 1, 1e-20, 2]])),
    "arcsin_int": lambda np_: np_.arcsin(np.array([0, 1, -1], np.int32)),
    "hypot": lambda np_: np_.hypot(A * 1e20, B * 1e20),
    "hypot_special": lambda np_: np_.hypot(SPECIAL, SPECIAL[::-1]),
    "copysign": lambda np_: np_.copysign(A, SPECIAL[:4, None]),
    "isclose": lambda np_: np_.isclose(SPECIAL[:, None], SPECIAL + 1e-7),
    "isclose_nan_tolerances": lambda np_: np_.isclose(SPECIAL, SPECIAL * (1 + 1e-3), 1e-2,
                                                      0.0, True),
    "isclose_int": lambda np_: np_.isclose(INTS, 3),
    "allclose": lambda np_: np_.allclose(A, A + 1e-6),
    "allclose_not": lambda np_: np_.allclose(A, A + 1e-2),
    "nansum": lambda np_: np_.nansum(NANS, axis=1),
    "nanprod": lambda np_: np_.nanprod(NANS, axis=0, keepdims=True),
    "nanmax": lambda np_: np_.nanmax(NANS, axis=1),
    "nanmin": lambda np_: np_.nanmin(NANS, axis=-1),
    "nanmin_all": lambda np_: np_.nanmin(NANS),
    "nanmean": lambda np_: np_.nanmean(NANS, axis=1),
    "nanvar": lambda np_: np_.nanvar(NANS, axis=1, ddof=1),
    "nanstd": lambda np_: np_.nanstd(NANS, axis=0),
    "nanmean_int": lambda np_: np_.nanmean(INTS),
    "count_nonzero": lambda np_: np_.count_nonzero(np.round(B), axis=(0, 2)),
    "count_nonzero_all": lambda np_: np_.count_nonzero(INTS - 3),
    "average": lambda np_: np_.average(B, axis=1),
    "average_weights": lambda np_: np_.average(B, axis=1, weights=np.arange(1.0, 5.0),
                                               returned=True),
    "average_full_weights": lambda np_: np_.average(A, weights=np.abs(A), keepdims=True),
    "cov": lambda np_: np_.cov(A),
    "cov_y_columns": lambda np_: np_.cov(A, A[::-1] * 2, rowvar=False, bias=True),
    "cov_weights": lambda np_: np_.cov(A, fweights=np.array([1, 2, 1, 3, 1]),
                                       aweights=np.abs(A[0])),
    "cov_vector": lambda np_: np_.cov(A[0], ddof=0),
    "corrcoef": lambda np_: np_.corrcoef(B[0]),
    "corrcoef_columns": lambda np_: np_.corrcoef(A, rowvar=False),
    "interp": lambda np_: np_.interp(XQ, XP, FP),
    "interp_left_right": lambda np_: np_.interp(XQ.reshape(1, -1), XP, FP, -7.0, 9.0),
    "bincount": lambda np_: np_.bincount(INTS, length=9),
    "bincount_weights": lambda np_: np_.bincount(INTS, np.arange(12.0, dtype=np.float32),
                                                 length=5),
    "bincount_minlength": lambda np_: np_.bincount(INTS, minlength=10),
    "atleast_1d": lambda np_: np_.atleast_1d(np.float32(3), V),
    "atleast_2d": lambda np_: np_.atleast_2d(V),
    "broadcast_arrays": lambda np_: np_.broadcast_arrays(V[:, None], A[0]),
    "deg2rad": lambda np_: np_.deg2rad(A * 90),
    "degrees": lambda np_: np_.degrees(A),
    "rad2deg": lambda np_: np_.rad2deg(INTS),
    "radians": lambda np_: np_.radians(A),
    "dstack": lambda np_: np_.dstack([A, A * 2]),
    "dstack_vectors": lambda np_: np_.dstack([V, V]),
    "fliplr": lambda np_: np_.fliplr(B),
    "flipud": lambda np_: np_.flipud(A),
    "fmax": lambda np_: np_.fmax(NANS, NANS[::-1]),
    "fmin": lambda np_: np_.fmin(NANS, 0.5),
    "hsplit": lambda np_: np_.hsplit(B, [2]),
    "vsplit": lambda np_: np_.vsplit(A, 2),
    "logspace": lambda np_: np_.logspace(0.0, 2.0, 5),
    "ptp": lambda np_: np_.ptp(B, axis=1),
    "rot90": lambda np_: np_.rot90(B, 1, (1, 2)),
    "rot90_back": lambda np_: np_.rot90(A, -1),
    "rot90_twice": lambda np_: np_.rot90(A, 2),
    "signbit": lambda np_: np_.signbit(SPECIAL),
    "signbit_int": lambda np_: np_.signbit(INTS - 3),
    "sinc": lambda np_: np_.sinc(np.concatenate([A.ravel(), [0.0]]).astype(np.float32)),
    "trapezoid": lambda np_: np_.trapezoid(B, dx=0.5, axis=1),
    "trapezoid_points": lambda np_: np_.trapezoid(A, XP[:5]),
    "nanargmax": lambda np_: np_.nanargmax(NANS, axis=1),
    "nanargmin": lambda np_: np_.nanargmin(NANS[:3]),
    "isin": lambda np_: np_.isin(INTS.reshape(3, 4), np.array([1, 4, 9])),
    "isin_invert": lambda np_: np_.isin(INTS, np.array([2, 3]), invert=True),
}
JITTED = ["split_points", "tril", "diag_vector", "diagonal", "trace", "roll_axes", "kron",
          "cross", "diff", "arcsinh", "arccos", "hypot_special", "copysign", "nanvar",
          "cov_weights", "corrcoef", "interp", "bincount_weights"]
GRADS = {
    "tril": lambda np_: lambda x: (np_.tril(x, 1) ** 2).sum(),
    "diag": lambda np_: lambda x: (np_.diag(np_.diag(x[:, :4] * 2), 1) ** 3).sum(),
    "trace": lambda np_: lambda x: np_.trace(x * x, -1),
    "roll": lambda np_: lambda x: (np_.roll(x, 2, axis=1) * A).sum(),
    "kron": lambda np_: lambda x: (np_.kron(x, x[:2, :2]) ** 2).sum(),
    "cross": lambda np_: lambda x: (np_.cross(x[:, :3], x[:, 2:]) ** 2).sum(),
    "diff": lambda np_: lambda x: (np_.diff(x, 2) ** 2).sum(),
    "arcsin": lambda np_: lambda x: np_.arcsin(np_.tanh(x)).sum(),
    "arccos": lambda np_: lambda x: np_.arccos(np_.tanh(x)).sum(),
    "arctan": lambda np_: lambda x: np_.arctan(x * 3).sum(),
    "arcsinh": lambda np_: lambda x: np_.arcsinh(x * 3).sum(),
    "arccosh": lambda np_: lambda x: np_.arccosh(x * x + 1.5).sum(),
    "arctanh": lambda np_: lambda x: np_.arctanh(np_.tanh(x) * 0.9).sum(),
    "hypot": lambda np_: lambda x: np_.hypot(x, x[::-1] * 2).sum(),
    "copysign": lambda np_: lambda x: (np_.copysign(x, x[::-1]) * A).sum(),
    "nansum": lambda np_: lambda x: np_.nansum(np_.where(x > 1, np_.nan, x) ** 2),
    "nanmean": lambda np_: lambda x: np_.nanmean(np_.where(x > 1, np_.nan, x) ** 2, axis=0).sum(),
    "nanstd": lambda np_: lambda x: np_.nanstd(np_.where(x > 1, np_.nan, x), axis=1).sum(),
    "nanmax": lambda np_: lambda x: np_.nanmax(np_.where(x > 1, np_.nan, x), axis=1).sum(),
    "average": lambda np_: lambda x: np_.average(x, axis=0, weights=np_.arange(1.0, 5.0)).sum(),
    "cov": lambda np_: lambda x: (np_.cov(x) ** 2).sum(),
    "corrcoef": lambda np_: lambda x: (np_.corrcoef(x) * A[:, :4]).sum(),
    "interp": lambda np_: lambda x: np_.interp(x[0] * 2, XP, FP).sum(),
}


def close(got, want, rtol=2e-6, atol=2e-6):
    if isinstance(want, (list, tuple)):
        assert isinstance(got, (list, tuple)) and len(got) == len(want)
        for g, w in zip(got, want):
            close(g, w, rtol, atol)
        return
    got, want = np.asarray(got), np.asarray(want)
    assert got.shape == want.shape and got.dtype == want.dtype, (got.shape, got.dtype,
                                                                  want.shape, want.dtype)
    np.testing.assert_allclose(got, want, rtol=rtol, atol=atol, equal_nan=True)


@pytest.mark.parametrize("name", sorted(VALUES))
def test_value_matches_jax(name):
    close(VALUES[name](fnp), VALUES[name](jnp))


@pytest.mark.parametrize("name", JITTED)
def test_value_under_jit_matches_jax(name):
    close(flowjit.jit(lambda: VALUES[name](fnp))(), VALUES[name](jnp))


@pytest.mark.parametrize("name", sorted(GRADS))
def test_gradient_matches_jax(name):
    close(flowjit.grad(GRADS[name](fnp))(A), jax.grad(GRADS[name](jnp))(A), rtol=1e-5)


def test_roll_by_a_traced_shift():
    for shift in (-3, 0, 4, 12):
        close(flowjit.jit(lambda x, s: fnp.roll(x, s, axis=1))(A, np.int32(shift)),
              jnp.roll(A, shift, axis=1))


def _function_name(case: str) -> str:
    while not hasattr(jnp, case):   # "nanmin_all" tests nanmin
        case = case.rsplit("_", 1)[0]
    return case


@pytest.mark.parametrize("name", sorted({_function_name(n) for n in VALUES}))
def test_signature_is_jax_s(name):
    ours = inspect.signature(getattr(fnp, name)).parameters
    theirs = inspect.signature(getattr(jnp, name)).parameters
    assert list(ours) == list(theirs)
    for key in theirs:
        assert ours[key].kind == theirs[key].kind or (
            theirs[key].kind is inspect.Parameter.POSITIONAL_ONLY), key
