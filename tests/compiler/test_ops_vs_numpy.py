"""Every flowjit.numpy function against numpy itself, eagerly and compiled (O0 and O2).

One jitted function per (op, opt level) takes a whole list of inputs, so that the many dtype
and shape cases cost one LLVM compile.
"""
import zlib

import numpy as np
import pytest

import flowjit
import flowjit.numpy as fnp

# numpy's dtypes, float64 and int64 included: 64-bit types on, as JAX needs for them.
pytestmark = pytest.mark.usefixtures("x64")

FLOATS = [np.float16, np.float32, np.float64]
SIGNED = [np.int8, np.int32, np.int64]
UNSIGNED = [np.uint8, np.uint32]
INTS = SIGNED + UNSIGNED
NUMERIC = FLOATS + INTS
SHAPES_UNARY = [(), (0,), (1,), (5,), (3, 1), (2, 3, 4)]
# Binary broadcasting cases: scalar with array, size-1 dims both ways, zero-size.
SHAPES_BINARY = [((), ()), ((4,), ()), ((), (4,)), ((3, 1), (1, 4)), ((2, 3), (3,)),
                 ((0,), (1,)), ((1, 1), (5, 1)), ((2, 3, 4), (2, 1, 4))]


def _random(rng, shape, dtype, positive=False, nonzero=False):
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        x = rng.standard_normal(shape) * 3
        if positive:
            x = np.abs(x) + 0.1
        return x.astype(dtype)
    if dtype.kind == "b":
        return rng.random(shape) < 0.5
    info = np.iinfo(dtype)
    lo = 1 if positive else max(info.min, -50)
    x = rng.integers(lo, min(info.max, 50), size=shape).astype(dtype)
    if nonzero:
        x[x == 0] = 1
    return x


def _seed(name: str) -> int:
    """A seed per op that is the same in every process (str hashes are salted)."""
    return zlib.crc32(name.encode())


def _tolerance(dtype, transcendental):
    if np.dtype(dtype).kind != "f":
        return dict(rtol=0, atol=0)
    if dtype == np.float16:   # both compute in f32 and round: at most an ulp apart
        return dict(rtol=1e-3, atol=1e-3 if transcendental else 0)
    if not transcendental:
        return dict(rtol=1e-6 if dtype == np.float32 else 1e-13, atol=0)
    return dict(rtol=2e-6 if dtype == np.float32 else 1e-14,
                atol=1e-6 if dtype == np.float32 else 1e-14)


# name: (ours, numpy's, dtypes, input domain, transcendental?)
UNARY = {
    "negative": (fnp.negative, np.negative, NUMERIC, "any", False),
    "abs": (fnp.abs, np.abs, NUMERIC, "any", False),
    "sign": (fnp.sign, np.sign, FLOATS + SIGNED, "any", False),
    "square": (fnp.square, np.square, NUMERIC, "any", False),
    "exp": (fnp.exp, np.exp, FLOATS, "any", True),
    "expm1": (fnp.expm1, np.expm1, FLOATS, "any", True),
    "log": (fnp.log, np.log, FLOATS, "positive", True),
    "log1p": (fnp.log1p, np.log1p, FLOATS, "positive", True),
    "log2": (fnp.log2, np.log2, FLOATS, "positive", True),
    "sqrt": (fnp.sqrt, np.sqrt, FLOATS, "positive", True),
    "tanh": (fnp.tanh, np.tanh, FLOATS, "any", True),
    "sin": (fnp.sin, np.sin, FLOATS, "any", True),
    "cos": (fnp.cos, np.cos, FLOATS, "any", True),
    "floor": (fnp.floor, np.floor, FLOATS, "any", False),
    "ceil": (fnp.ceil, np.ceil, FLOATS, "any", False),
    "rint": (fnp.rint, np.rint, FLOATS, "any", False),
    "invert": (fnp.invert, np.invert, INTS + [np.bool_], "any", False),
    "logical_not": (fnp.logical_not, np.logical_not, [np.bool_], "any", False),
    "isnan": (fnp.isnan, np.isnan, FLOATS, "any", False),
    "int_sqrt": (fnp.sqrt, np.sqrt, [np.int32], "positive", True),
}

BINARY = {
    "add": (fnp.add, np.add, NUMERIC, "any"),
    "subtract": (fnp.subtract, np.subtract, NUMERIC, "any"),
    "multiply": (fnp.multiply, np.multiply, NUMERIC, "any"),
    "divide": (fnp.divide, np.divide, FLOATS + [np.int32], "nonzero"),
    "floor_divide": (fnp.floor_divide, np.floor_divide, FLOATS + INTS, "nonzero"),
    "remainder": (fnp.remainder, np.remainder, FLOATS + INTS, "nonzero"),
    "power": (fnp.power, np.power, FLOATS, "positive"),
    "maximum": (fnp.maximum, np.maximum, NUMERIC, "any"),
    "minimum": (fnp.minimum, np.minimum, NUMERIC, "any"),
    "arctan2": (fnp.arctan2, np.arctan2, FLOATS, "any"),
    "less": (fnp.less, np.less, NUMERIC, "any"),
    "greater_equal": (fnp.greater_equal, np.greater_equal, NUMERIC, "any"),
    "equal": (fnp.equal, np.equal, NUMERIC, "any"),
    "not_equal": (fnp.not_equal, np.not_equal, NUMERIC, "any"),
    "bitwise_and": (fnp.bitwise_and, np.bitwise_and, INTS + [np.bool_], "any"),
    "bitwise_or": (fnp.bitwise_or, np.bitwise_or, INTS + [np.bool_], "any"),
    "bitwise_xor": (fnp.bitwise_xor, np.bitwise_xor, INTS + [np.bool_], "any"),
    "logical_and": (fnp.logical_and, np.logical_and, [np.bool_], "any"),
}


def _run_cases(fn, cases, opt_level):
    """Results of fn on each case: eagerly, and in one compiled function at opt_level."""
    eager = [fn(*case) for case in cases]
    jitted = flowjit.jit(lambda cs: [fn(*c) for c in cs], opt_level=opt_level)
    return eager, jitted(cases)


def _check(ours, theirs, tol, what):
    ours = np.asarray(ours)
    assert ours.shape == theirs.shape, f"{what}: shape {ours.shape} != {theirs.shape}"
    assert ours.dtype == theirs.dtype, f"{what}: dtype {ours.dtype} != {theirs.dtype}"
    np.testing.assert_allclose(ours, theirs, equal_nan=True, err_msg=what, **tol)


@pytest.mark.parametrize("name", sorted(UNARY))
def test_unary_matches_numpy(name, opt_level):
    ours, theirs, dtypes, domain, transcendental = UNARY[name]
    rng = np.random.default_rng(_seed(name))
    cases = [(_random(rng, s, dt, positive=domain == "positive"),)
             for dt in dtypes for s in SHAPES_UNARY]
    eager, compiled = _run_cases(ours, cases, opt_level)
    for (x,), e, c in zip(cases, eager, compiled):
        expected = theirs(x)
        tol = _tolerance(expected.dtype, transcendental)
        _check(e, expected, tol, f"eager {name}{x.dtype}{x.shape}")
        _check(c, expected, tol, f"jit {name}{x.dtype}{x.shape}")


@pytest.mark.parametrize("name", sorted(BINARY))
def test_binary_matches_numpy(name, opt_level):
    ours, theirs, dtypes, domain = BINARY[name]
    rng = np.random.default_rng(_seed(name))
    cases = []
    for dt in dtypes:
        for sa, sb in SHAPES_BINARY:
            a = _random(rng, sa, dt, positive=domain == "positive")
            b = _random(rng, sb, dt, positive=domain == "positive",
                        nonzero=domain == "nonzero")
            cases.append((a, b))
    eager, compiled = _run_cases(ours, cases, opt_level)
    for (a, b), e, c in zip(cases, eager, compiled):
        with np.errstate(all="ignore"):
            expected = theirs(a, b)
        tol = _tolerance(expected.dtype, name in ("power", "arctan2"))
        what = f"{name}({a.dtype}{a.shape}, {b.dtype}{b.shape})"
        _check(e, expected, tol, "eager " + what)
        _check(c, expected, tol, "jit " + what)


def test_integer_division_follows_numpy_sign_rules(opt_level):
    a = np.array([-7, -7, 7, 7, -6, 6, 0, -1], dtype=np.int32)
    b = np.array([2, -2, 2, -2, 3, -3, 5, 7], dtype=np.int32)
    f = flowjit.jit(lambda a, b: (a // b, a % b), opt_level=opt_level)
    q, r = f(a, b)
    np.testing.assert_array_equal(q, np.array([-4, 3, 3, -4, -2, -2, 0, -1]))
    np.testing.assert_array_equal(r, np.array([1, -1, 1, -1, 0, 0, 0, 6]))
    np.testing.assert_array_equal(q * b + r, a)


def test_float_remainder_and_floor_divide_signs(opt_level):
    a = np.array([-7.5, 7.5, -7.5, 7.5], np.float64)
    b = np.array([2.0, -2.0, -2.0, 2.0], np.float64)
    f = flowjit.jit(lambda a, b: (a // b, a % b), opt_level=opt_level)
    q, r = f(a, b)
    np.testing.assert_array_equal(q, np.floor_divide(a, b))
    np.testing.assert_array_equal(r, np.remainder(a, b))


def test_nan_and_inf_propagate_like_numpy(opt_level):
    x = np.array([np.nan, np.inf, -np.inf, 1.0, 0.0, -0.0], np.float32)
    y = np.array([1.0, np.nan, np.inf, -np.inf, 0.0, 2.0], np.float32)
    f = flowjit.jit(lambda x, y: (x + y, x * y, fnp.maximum(x, y), fnp.minimum(x, y),
                                   fnp.exp(x), x / y, fnp.sqrt(x)), opt_level=opt_level)
    with np.errstate(all="ignore"):
        expected = (x + y, x * y, np.maximum(x, y), np.minimum(x, y), np.exp(x), x / y,
                    np.sqrt(x))
    for got, want in zip(f(x, y), expected):
        # Same NaN/inf pattern; finite values within 2 ulp (exp comes from another libm).
        np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
        np.testing.assert_allclose(got, want, rtol=2.5e-7, atol=0)


def test_python_scalars_do_not_widen_float32(opt_level):
    x = np.ones(3, np.float32)
    f = flowjit.jit(lambda x: (x + 1.5, x * 2, 2.0 ** x), opt_level=opt_level)
    for out in f(x):
        assert np.asarray(out).dtype == np.float32
    np.testing.assert_array_equal(f(x)[0], x + 1.5)
