"""Elementwise math with numpy's names, broadcasting and dtype rules."""
from __future__ import annotations

import math as _math

import numpy as np

from flowjit import lax
from flowjit.numpy._promote import (broadcast_arrays, dtype_of, inexact_dtype,
                                    is_float_dtype, prepare, promote, wrap)

# The float dtype `exp(x)` computes in: float16 and bfloat16 stay, ints and bools become the
# default float (float32; float64 with x64 enabled), as in JAX.
_float_type = inexact_dtype


def _float_unary(fn, doc: str):
    def op(x):
        (x,) = promote(x, dtype=_float_type(x))
        return wrap(fn(x))
    op.__doc__ = doc
    return op


exp = _float_unary(lax.exp, "e**x, elementwise.")
expm1 = _float_unary(lax.expm1, "exp(x) - 1, accurate near 0.")
log = _float_unary(lax.log, "Natural logarithm.")
log1p = _float_unary(lax.log1p, "log(1 + x), accurate near 0.")
sqrt = _float_unary(lax.sqrt, "Square root.")
cbrt = _float_unary(lax.cbrt, "Cube root.")
tanh = _float_unary(lax.tanh, "Hyperbolic tangent.")
sin = _float_unary(lax.sin, "Sine.")
cos = _float_unary(lax.cos, "Cosine.")
tan = _float_unary(lax.tan, "Tangent.")


def log2(x):
    (x,) = promote(x, dtype=_float_type(x))
    return wrap(lax.mul(lax.log(x), np.asarray(1 / _math.log(2), dtype_of(x))))


def log10(x):
    (x,) = promote(x, dtype=_float_type(x))
    return wrap(lax.mul(lax.log(x), np.asarray(1 / _math.log(10), dtype_of(x))))


def exp2(x):
    (x,) = promote(x, dtype=_float_type(x))
    return wrap(lax.exp(lax.mul(x, np.asarray(_math.log(2), dtype_of(x)))))


def sinh(x):
    (x,) = promote(x, dtype=_float_type(x))
    half = np.asarray(0.5, dtype_of(x))
    return wrap(lax.mul(lax.sub(lax.exp(x), lax.exp(lax.neg(x))), half))


def cosh(x):
    (x,) = promote(x, dtype=_float_type(x))
    half = np.asarray(0.5, dtype_of(x))
    return wrap(lax.mul(lax.add(lax.exp(x), lax.exp(lax.neg(x))), half))


def arctan2(y, x):
    y, x = prepare(y, x, dtype=_float_type(y, x))
    return wrap(lax.atan2(y, x))


def floor(x):
    return x if dtype_of(x).kind in "iub" else wrap(lax.floor(*promote(x)))


def ceil(x):
    return x if dtype_of(x).kind in "iub" else wrap(lax.ceil(*promote(x)))


def rint(x):
    return x if dtype_of(x).kind in "iub" else wrap(lax.round_even(*promote(x)))


def round(x, decimals: int = 0):  # noqa: A001 - numpy's name
    if dtype_of(x).kind in "iub":
        return x
    if decimals == 0:
        return rint(x)
    scale = np.asarray(10.0 ** decimals, dtype_of(x))
    return wrap(lax.div(lax.round_even(lax.mul(x, scale)), scale))


around = round


def negative(x):
    return wrap(lax.neg(x))


def positive(x):
    return x


def absolute(x):
    return x if dtype_of(x).kind in "ub" else wrap(lax.abs(x))


abs = absolute  # noqa: A001


def sign(x):
    return wrap(lax.sign(x))


def square(x):
    return wrap(lax.mul(x, x))


def reciprocal(x):
    return wrap(lax.div(np.ones((), dtype_of(x)), x))


def _binary(fn, name: str):
    def op(x, y):
        x, y = prepare(x, y)
        return wrap(fn(x, y))
    op.__name__ = name
    op.__doc__ = f"numpy.{name}: broadcasting, numpy's dtype promotion."
    return op


add = _binary(lax.add, "add")
subtract = _binary(lax.sub, "subtract")
multiply = _binary(lax.mul, "multiply")
maximum = _binary(lax.max, "maximum")
minimum = _binary(lax.min, "minimum")
bitwise_and = _binary(lax.bitwise_and, "bitwise_and")
bitwise_or = _binary(lax.bitwise_or, "bitwise_or")
bitwise_xor = _binary(lax.bitwise_xor, "bitwise_xor")
left_shift = _binary(lax.shift_left, "left_shift")


def right_shift(x, y):
    x, y = prepare(x, y)
    fn = lax.shift_right_logical if dtype_of(x).kind == "u" else lax.shift_right_arithmetic
    return wrap(fn(x, y))


def invert(x):
    return wrap(lax.bitwise_not(x))


bitwise_not = invert


def true_divide(x, y):
    x, y = prepare(x, y, dtype=_float_type(x, y))
    return wrap(lax.div(x, y))


divide = true_divide


def floor_divide(x, y):
    """numpy's `//`: rounds toward -inf for ints and floats."""
    x, y = prepare(x, y)
    if is_float_dtype(dtype_of(x)):
        return wrap(lax.floor(lax.div(x, y)))
    if dtype_of(x).kind == "u":
        return wrap(lax.div(x, y))
    quotient = lax.div(x, y)
    # Truncation differs from floor when the signs differ and the division is inexact.
    zero = np.zeros((), dtype_of(x))
    signs_differ = lax.compare(lax.compare(x, zero, "LT"), lax.compare(y, zero, "LT"), "NE")
    inexact = lax.compare(lax.rem(x, y), zero, "NE")
    adjust = lax.bitwise_and(signs_differ, inexact)
    return wrap(lax.select(adjust, lax.sub(quotient, np.ones((), dtype_of(x))), quotient))


def remainder(x, y):
    """numpy's `%`: the result has the sign of the divisor."""
    x, y = prepare(x, y)
    r = lax.rem(x, y)
    if dtype_of(x).kind == "u":
        return wrap(r)
    zero = np.zeros((), dtype_of(x))
    fix = lax.bitwise_and(lax.compare(r, zero, "NE"),
                          lax.compare(lax.compare(r, zero, "LT"),
                                      lax.compare(y, zero, "LT"), "NE"))
    return wrap(lax.select(fix, lax.add(r, y), r))


mod = remainder


def fmod(x, y):
    x, y = prepare(x, y)
    return wrap(lax.rem(x, y))


def power(x, y):
    x, y = prepare(x, y)
    return wrap(lax.pow(x, y))


def _compare(direction: str, name: str):
    def op(x, y):
        x, y = prepare(x, y)
        return wrap(lax.compare(x, y, direction))
    op.__name__ = name
    return op


equal = _compare("EQ", "equal")
not_equal = _compare("NE", "not_equal")
less = _compare("LT", "less")
less_equal = _compare("LE", "less_equal")
greater = _compare("GT", "greater")
greater_equal = _compare("GE", "greater_equal")


def _logical(fn):
    def op(x, y):
        x, y = prepare(x, y, dtype=np.bool_)
        return wrap(fn(x, y))
    return op


logical_and = _logical(lax.bitwise_and)
logical_or = _logical(lax.bitwise_or)
logical_xor = _logical(lax.bitwise_xor)


def logical_not(x):
    (x,) = promote(x, dtype=np.bool_) if dtype_of(x).kind != "b" else (x,)
    return wrap(lax.bitwise_not(lax.convert_element_type(x, np.bool_)))


def isnan(x):
    if not is_float_dtype(dtype_of(x)):
        return zeros_like_bool(x)
    return wrap(lax.compare(x, x, "NE"))


def isfinite(x):
    if not is_float_dtype(dtype_of(x)):
        return wrap(lax.compare(x, x, "EQ"))
    return wrap(lax.is_finite(x))


def isinf(x):
    if not is_float_dtype(dtype_of(x)):
        return zeros_like_bool(x)
    return wrap(lax.compare(lax.abs(x), np.asarray(np.inf, dtype_of(x)), "EQ"))


def zeros_like_bool(x):
    """All-False of x's shape (integers are never NaN or inf)."""
    return wrap(lax.compare(x, x, "NE"))


def where(condition, x=None, y=None):
    """Elementwise select (the three-argument form of numpy.where)."""
    if x is None or y is None:
        raise NotImplementedError("where(condition) with one argument has a data-dependent "
                                  "shape; use where(condition, x, y)")
    (condition,) = promote(condition, dtype=np.bool_)
    x, y = promote(x, y)
    condition, x, y = broadcast_arrays(condition, x, y)
    return wrap(lax.select(condition, x, y))


def clip(a, a_min=None, a_max=None):
    """Values of `a` limited to [a_min, a_max] (either may be None)."""
    out = a
    if a_min is not None:
        out = maximum(out, a_min)
    if a_max is not None:
        out = minimum(out, a_max)
    return wrap(out)


def logaddexp(x, y):
    x, y = prepare(x, y, dtype=_float_type(x, y))
    big = lax.max(x, y)
    small = lax.min(x, y)
    return wrap(lax.add(big, lax.log1p(lax.exp(lax.sub(small, big)))))


def nan_to_num(x, nan: float = 0.0):
    if not is_float_dtype(dtype_of(x)):
        return x
    return where(isnan(x), np.asarray(nan, dtype_of(x)), x)
