"""Integer division by zero and INT_MIN / -1 give XLA's values (lax.div, lax.rem) and
jax.numpy's (floor_divide, remainder, fmod, divmod on top of them): eagerly, through the
Python operators, and under jit at O0 and O2. Float `//` is jax.numpy's too (1 // 0.1 == 9)."""
import numpy as np
import pytest

import flowjit
import flowjit.numpy as fnp
from flowjit import lax

# 64-bit dtypes are tested as such (JAX too runs them with x64 enabled).
pytestmark = pytest.mark.usefixtures("x64")

SIGNED = [np.int8, np.int16, np.int32, np.int64]
UNSIGNED = [np.uint8, np.uint16, np.uint32, np.uint64]


def _runs(fn, opt_level):
    return {"eager": fn, "jit": flowjit.jit(fn, opt_level=opt_level)}


def _expected_by_zero(x: np.ndarray) -> dict:
    """The documented values for x op 0 (XLA: x/0 = -1 (all ones), x%0 = x; jax.numpy's
    floor_divide adjusts -1 down where sign(x) != sign(0) and x % 0 != 0; remainder and fmod
    divide by 1 instead of 0)."""
    dt = x.dtype
    all_ones = np.full(x.shape, -1).astype(dt) if dt.kind == "i" else np.full(
        x.shape, np.iinfo(dt).max, dt)
    floor = np.where(x != 0, -2, -1).astype(dt) if dt.kind == "i" else all_ones
    zeros = np.zeros_like(x)
    return {"floor_divide": floor, "remainder": zeros, "fmod": zeros,
            "div": all_ones, "rem": x}


FUNCTIONS = {"floor_divide": fnp.floor_divide, "remainder": fnp.remainder, "fmod": fnp.fmod,
             "div": lax.div, "rem": lax.rem}


@pytest.mark.parametrize("dtype", SIGNED + UNSIGNED, ids=lambda d: np.dtype(d).name)
def test_division_by_zero_gives_xla_values(dtype, opt_level):
    info = np.iinfo(dtype)
    x = np.array(sorted({0, 1, 7, info.max, info.min, info.min + 1}), dtype)
    zero = np.zeros_like(x)
    want = _expected_by_zero(x)
    for name, fn in FUNCTIONS.items():
        for how, run in _runs(fn, opt_level).items():
            np.testing.assert_array_equal(np.asarray(run(x, zero)), want[name],
                                          err_msg=f"{name} {how}")


@pytest.mark.parametrize("dtype", SIGNED + UNSIGNED, ids=lambda d: np.dtype(d).name)
def test_operators_by_zero_agree_eagerly_and_under_jit(dtype, opt_level):
    """`x // 0`, `x % 0` and divmod on eager arrays give what jit gives (numpy's own
    operators would give 0 with a warning)."""
    x = fnp.asarray(np.array([0, 1, 7, np.iinfo(dtype).max], dtype))
    want = _expected_by_zero(np.asarray(x))

    def operators(a, b):
        b = fnp.asarray(b)
        q, r = divmod(a, b)
        return a // b, a % b, q, r, 7 // b, 7 % b
    for how, run in _runs(operators, opt_level).items():
        floor, rem, q, r, seven_floor, seven_rem = run(x, np.zeros(4, dtype))
        for got, expected in [(floor, want["floor_divide"]), (rem, want["remainder"]),
                              (q, want["floor_divide"]), (r, want["remainder"]),
                              (seven_floor, want["floor_divide"][2]),
                              (seven_rem, np.zeros(4, dtype))]:
            np.testing.assert_array_equal(np.asarray(got), expected, err_msg=how)
            assert np.asarray(got).dtype == dtype, how


@pytest.mark.parametrize("dtype", SIGNED, ids=lambda d: np.dtype(d).name)
def test_int_min_by_minus_one_wraps(dtype, opt_level):
    smallest = np.iinfo(dtype).min
    x = np.array([smallest, smallest, 7], dtype)
    y = np.array([-1, -1, -1], dtype)
    want = {"floor_divide": [smallest, smallest, -7], "remainder": [0, 0, 0],
            "fmod": [0, 0, 0], "div": [smallest, smallest, -7], "rem": [0, 0, 0]}
    for name, fn in FUNCTIONS.items():
        for how, run in _runs(fn, opt_level).items():
            np.testing.assert_array_equal(np.asarray(run(x, y)), np.array(want[name], dtype),
                                          err_msg=f"{name} {how}")


def test_float_floor_divide_is_floor_of_the_exact_quotient(opt_level):
    """numpy and jax.numpy: 1 // 0.1 == 9 (0.1 is a bit more than 1/10), inf // 3 is NaN,
    x // 0 is ±inf (NaN for 0 // 0), -7.5 // 2 == -4."""
    x = np.array([1.0, np.inf, 1.0, -1.0, 0.0, -7.5, 7.5, 5.0])
    y = np.array([0.1, 3.0, 0.0, 0.0, 0.0, 2.0, -2.0, np.inf])
    want = np.array([9.0, np.nan, np.inf, -np.inf, np.nan, -4.0, -4.0, 0.0])
    for dtype in (np.float32, np.float64):
        for how, run in _runs(fnp.floor_divide, opt_level).items():
            np.testing.assert_array_equal(np.asarray(run(x.astype(dtype), y.astype(dtype))),
                                          want.astype(dtype), err_msg=how)


@pytest.mark.parametrize("dtype", SIGNED + UNSIGNED, ids=lambda d: np.dtype(d).name)
def test_integer_division_matches_jax_on_all_edge_pairs(dtype):
    jax = pytest.importorskip("jax")
    jnp = pytest.importorskip("jax.numpy")
    info = np.iinfo(dtype)
    values = {0, 1, 2, 7, info.max, info.max - 1, info.min, info.min + 1}
    if info.min < 0:
        values |= {-1, -2, -7}
    values = np.array(sorted(values), dtype)
    x, y = np.repeat(values, len(values)), np.tile(values, len(values))
    with jax.enable_x64(True):
        for name in ("floor_divide", "remainder", "fmod"):
            want = np.asarray(getattr(jnp, name)(x, y))
            for how, run in _runs(getattr(fnp, name), 2).items():
                np.testing.assert_array_equal(np.asarray(run(x, y)), want,
                                              err_msg=f"{name} {how}")
        for name in ("div", "rem"):
            want = np.asarray(getattr(jax.lax, name)(x, y))
            for how, run in _runs(getattr(lax, name), 2).items():
                np.testing.assert_array_equal(np.asarray(run(x, y)), want,
                                              err_msg=f"{name} {how}")
