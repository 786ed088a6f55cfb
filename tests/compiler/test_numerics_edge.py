"""Float functions at edge inputs (±0, subnormals, near overflow, large negative, inf, NaN)
against a higher-precision numpy oracle rounded to the dtype, eagerly and under jit, for
f16, bf16, f32 and f64; and nan_to_num with numpy's / jax.numpy's defaults."""
import inspect

import ml_dtypes
import numpy as np
import pytest

import flowjit
import flowjit.numpy as fnp
from flowjit import lax

# 64-bit dtypes are tested as such (JAX too runs them with x64 enabled).
pytestmark = pytest.mark.usefixtures("x64")

BF16 = np.dtype(ml_dtypes.bfloat16)
DTYPES = [np.dtype(np.float16), BF16, np.dtype(np.float32), np.dtype(np.float64)]
ORACLE = np.longdouble   # 80-bit on x86: an oracle for f64 too (else f64 itself)

# name -> (ours, oracle evaluated on `ORACLE` values)
FUNCTIONS = {
    "sinh": (fnp.sinh, np.sinh), "cosh": (fnp.cosh, np.cosh), "tanh": (fnp.tanh, np.tanh),
    "exp2": (fnp.exp2, np.exp2), "log2": (fnp.log2, np.log2), "log10": (fnp.log10, np.log10),
    "expm1": (fnp.expm1, np.expm1), "log1p": (fnp.log1p, np.log1p),
    "logistic": (lax.logistic, lambda x: 1 / (1 + np.exp(-x))),
    "rsqrt": (lax.rsqrt, lambda x: 1 / np.sqrt(x)),
}
# f16/bf16 are computed in f32 and rounded once: within an ulp. f32/f64 compose a few
# correctly rounded steps: a few ulp.
MAX_ULP = {np.dtype(np.float16): 1.0, BF16: 1.0, np.dtype(np.float32): 3.0,
           np.dtype(np.float64): 3.0}


def _edge_inputs(dtype: np.dtype) -> np.ndarray:
    info = ml_dtypes.finfo(dtype)
    tiny, normal = float(info.smallest_subnormal), float(info.smallest_normal)
    points = [0.0, tiny, normal - tiny, normal, 1e-8, 1e-4, 1e-3, 0.01, 0.1, 0.5, 1, 2, 5, 10,
              11.1, 20, 50, 88.5, 88.72, 88.73, 89, 89.4, 100, 709.5, 710, 710.4, 711, 1e4,
              float(info.max), np.inf]
    sweep = list(np.logspace(-45, 3.2, 1500))
    values = np.array(points + sweep)
    return np.concatenate([values, -values, [np.nan]]).astype(dtype)


def _ulp(value: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """The spacing of `dtype`'s values at |value| (the subnormal spacing below normals)."""
    info = ml_dtypes.finfo(dtype)
    digits = info.nmant + 1
    _, exponent = np.frexp(np.abs(value))
    lowest = int(np.log2(float(info.smallest_subnormal))) + digits
    return np.ldexp(ORACLE(1), (np.maximum(exponent, lowest) - digits).astype(int))


def _check(got: np.ndarray, exact: np.ndarray, x: np.ndarray, dtype, max_ulp, where: str):
    """Within max_ulp of `exact` where it is finite in the dtype; the same inf / NaN / sign
    of zero where it is not."""
    assert got.dtype == dtype, (where, got.dtype)
    got = got.astype(ORACLE)
    with np.errstate(over="ignore"):
        rounded = exact.astype(np.float64).astype(dtype).astype(ORACLE)
    nan = np.isnan(exact)
    np.testing.assert_array_equal(np.isnan(got), nan, err_msg=f"{where}: NaN at {x}")
    special = ~nan & (np.isinf(rounded) | (rounded == 0))
    np.testing.assert_array_equal(got[special], rounded[special], err_msg=where)
    zero = special & (rounded == 0)
    bad_sign = np.signbit(got[zero]) != np.signbit(exact[zero])
    assert not bad_sign.any(), (where, "sign of zero", x[zero][bad_sign])
    finite = ~nan & ~special
    assert np.isfinite(got[finite]).all(), (where, x[finite][~np.isfinite(got[finite])])
    error = np.abs(got[finite] - exact[finite]) / _ulp(exact[finite], dtype)
    worst = int(np.argmax(error)) if error.size else 0
    assert error.size == 0 or error.max() <= max_ulp, (
        where, f"{float(error.max()):.3g} ulp at x={x[finite][worst]!r}")


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.name)
@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_function_at_edge_inputs(name, dtype, opt_level):
    ours, oracle = FUNCTIONS[name]
    x = _edge_inputs(dtype)
    with np.errstate(all="ignore"):
        exact = oracle(x.astype(ORACLE))
    for how, run in {"eager": ours, "jit": flowjit.jit(ours, opt_level=opt_level)}.items():
        _check(np.asarray(run(x)), exact, x, dtype, MAX_ULP[dtype], f"{name} {how}")


def test_reported_hyperbolic_values():
    """The issue's cases: sinh(1e-3) in f32 to an ulp, sinh(-0) = tanh(-0) = -0, and
    cosh(88.73) = 1.7e38 in f32 (finite: cosh exceeds f32's max only past 89.4)."""
    x = np.float32(1e-3)
    for how, run in {"eager": lambda f, v: f(v), "jit": lambda f, v: flowjit.jit(f)(v)}.items():
        sinh = np.float64(run(fnp.sinh, np.array([x, -0.0], np.float32))[0])
        assert abs(sinh - np.sinh(np.float64(x))) <= np.spacing(np.float32(sinh)), how
        for fn in (fnp.sinh, fnp.tanh):
            assert np.signbit(np.asarray(run(fn, np.array([-0.0], np.float32)))[0]), how
        cosh = np.asarray(run(fnp.cosh, np.array([88.73, -88.73], np.float32)))
        np.testing.assert_allclose(cosh, np.cosh(np.float64(np.float32(88.73))), rtol=3e-7)


def test_logaddexp_of_infinities_and_in_half_precision(opt_level):
    """log(e^inf + e^inf) = inf (not inf - inf = NaN); f16 is computed in f32, so
    logaddexp(-0.6934, -0.6934) (close to 0) is not lost to cancellation in f16."""
    inf = np.inf
    x = np.array([inf, -inf, inf, -inf, np.nan, 1.0], np.float32)
    y = np.array([inf, -inf, -inf, 1.0, 1.0, -1e30], np.float32)
    want = np.array([inf, -inf, inf, 1.0, np.nan, 1.0], np.float32)
    half = np.full(3, -0.6934, np.float16)
    half_want = np.logaddexp(half.astype(np.float64), half.astype(np.float64))
    for how, run in {"eager": fnp.logaddexp,
                     "jit": flowjit.jit(fnp.logaddexp, opt_level=opt_level)}.items():
        np.testing.assert_array_equal(np.asarray(run(x, y)), want, err_msg=how)
        got = np.asarray(run(half, half))
        assert got.dtype == np.float16
        np.testing.assert_allclose(got.astype(np.float64), half_want, rtol=1e-3, err_msg=how)


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: d.name)
def test_nan_to_num_maps_infinities_to_the_largest_finite(dtype, opt_level):
    big = float(ml_dtypes.finfo(dtype).max)
    x = np.array([np.nan, np.inf, -np.inf, 1.5, -0.0], dtype)
    defaults = np.array([0.0, big, -big, 1.5, -0.0], dtype)
    chosen = np.array([7.0, 3.0, -2.0, 1.5, -0.0], dtype)
    jitted = flowjit.jit(fnp.nan_to_num, opt_level=opt_level)
    for how, run in {"eager": fnp.nan_to_num, "jit": jitted}.items():
        got = np.asarray(run(x))
        assert got.dtype == dtype, how
        np.testing.assert_array_equal(got, defaults, err_msg=how)
        assert np.signbit(got[-1]), how
    np.testing.assert_array_equal(np.asarray(fnp.nan_to_num(x, nan=7.0, posinf=3.0,
                                                            neginf=-2.0)), chosen)
    np.testing.assert_array_equal(np.asarray(fnp.nan_to_num(x, True, 7.0, 3.0, -2.0)), chosen)
    if dtype != BF16:
        np.testing.assert_array_equal(np.asarray(fnp.nan_to_num(x)), np.nan_to_num(x))


def test_nan_to_num_leaves_integers_and_has_jax_signature():
    ints = np.array([1, -2, 3], np.int32)
    np.testing.assert_array_equal(np.asarray(fnp.nan_to_num(ints)), ints)
    ours = inspect.signature(fnp.nan_to_num)
    assert list(ours.parameters) == ["x", "copy", "nan", "posinf", "neginf"]
    assert [p.default for p in list(ours.parameters.values())[1:]] == [True, 0.0, None, None]
    jnp = pytest.importorskip("jax.numpy")
    theirs = inspect.signature(jnp.nan_to_num)
    assert list(ours.parameters) == list(theirs.parameters)
    assert ([p.default for p in ours.parameters.values()]
            == [p.default for p in theirs.parameters.values()])
