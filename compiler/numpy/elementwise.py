"""Elementwise math with numpy's names, broadcasting and dtype rules."""
from __future__ import annotations

import math as _math
from typing import Optional

import numpy as np

from flowjit import lax
from flowjit.core import bind
from flowjit.ir import dtypes
from flowjit.numpy._promote import (broadcast_arrays, dtype_of, inexact_dtype,
                                    is_float_dtype, prepare, promote, shape_of,
                                    wrap)

# The float dtype `exp(x)` computes in: float16 and bfloat16 stay, ints and bools become the
# default float (float32; float64 with x64 enabled), as in JAX.
_float_type = inexact_dtype


def _widened(fn, *args):
    """fn(*args) computed in f32 for f16/bf16 arguments and rounded once at the end (a
    composed function rounded after every step would lose several ulp)."""
    dt = dtype_of(args[0])
    if dt.itemsize >= 4:
        return fn(*args)
    wide = [lax.convert_element_type(a, np.float32) for a in args]
    return lax.convert_element_type(fn(*wide), dt)


def _float_composite(fn, doc: str):
    """A numpy float function of one argument composed of primitives by `fn`."""
    def op(x):
        (x,) = promote(x, dtype=_float_type(x))
        return wrap(_widened(fn, x))
    op.__doc__ = doc
    op.__name__ = fn.__name__.lstrip("_")
    return op


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


def _constant(value: float, like) -> np.ndarray:
    return np.asarray(value, dtype_of(like))


def _log2(x):
    return lax.mul(lax.log(x), _constant(1 / _math.log(2), x))


def _log10(x):
    return lax.mul(lax.log(x), _constant(1 / _math.log(10), x))


def _exp2(x):
    # pow(2, x) is accurate to an ulp; exp(x * ln 2) multiplies the rounding error of the
    # product by up to |x| * ln 2 (40 ulp in f32, 384 in f64 near the extremes).
    return lax.pow(lax.broadcast_in_dim(_constant(2.0, x), shape_of(x), []), x)


def _half_square_of_exp_half(a):
    """exp(a) / 2 for large a, as (exp(a/2) / 2) * exp(a/2): finite up to log(2 * max)."""
    root = lax.exp(lax.mul(a, _constant(0.5, a)))
    return lax.mul(lax.mul(root, _constant(0.5, a)), root)


def _sinh(x):
    # With e = expm1(|x|): e^a - e^-a = e + e / (e + 1), accurate near 0 where the textbook
    # (e^x - e^-x) / 2 cancels; past exp's overflow, e^a / 2 from two half-size exps. The
    # sign is put back by multiplying with sign(x), which keeps -0 and NaN.
    a = lax.abs(x)
    e = lax.expm1(a)
    moderate = lax.mul(lax.add(e, lax.div(e, lax.add(e, _constant(1.0, x)))),
                       _constant(0.5, x))
    finite = lax.compare(e, _constant(np.inf, x), "LT")
    magnitude = lax.select(finite, moderate, _half_square_of_exp_half(a))
    return lax.mul(magnitude, lax.sign(x))


def _cosh(x):
    # (e^a + e^-a) / 2 as e^a / 2 + 0.5 / e^a; past exp's overflow, e^a / 2 from two
    # half-size exps (cosh(88.73) is 1.7e38 in f32, not inf).
    a = lax.abs(x)
    h = lax.exp(a)
    half = _constant(0.5, x)
    moderate = lax.add(lax.mul(h, half), lax.div(half, h))
    finite = lax.compare(h, _constant(np.inf, x), "LT")
    return lax.select(finite, moderate, _half_square_of_exp_half(a))


log2 = _float_composite(_log2, "Base-2 logarithm.")
log10 = _float_composite(_log10, "Base-10 logarithm.")
exp2 = _float_composite(_exp2, "2**x, elementwise.")
sinh = _float_composite(_sinh, "Hyperbolic sine, accurate near 0 and up to overflow.")
cosh = _float_composite(_cosh, "Hyperbolic cosine, finite up to log(2 * max).")


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
    """numpy's `//`: rounds toward -inf. Integers divided by 0 give jax.numpy's values
    (XLA's x/0 = -1, then -2 where x != 0 for signed types; the maximum for unsigned)."""
    x, y = prepare(x, y)
    if is_float_dtype(dtype_of(x)):
        return wrap(_float_floor_divide(x, y))
    if dtype_of(x).kind == "u":
        return wrap(lax.div(x, y))
    quotient = lax.div(x, y)
    # Truncation differs from floor when the signs differ and the division is inexact.
    # sign() (not x < 0) as jax.numpy does: it decides the results for y == 0.
    zero = np.zeros((), dtype_of(x))
    signs_differ = lax.compare(lax.sign(x), lax.sign(y), "NE")
    inexact = lax.compare(lax.rem(x, y), zero, "NE")
    adjust = lax.bitwise_and(signs_differ, inexact)
    return wrap(lax.select(adjust, lax.sub(quotient, np.ones((), dtype_of(x))), quotient))


def _float_floor_divide(x, y):
    """jax.numpy's float `//` (CPython's float_divmod): (x - x % y) / y, so 1 // 0.1 is 9
    as in numpy, where floor(1 / 0.1) would be 10; inf // 3 is NaN."""
    dt = dtype_of(x)
    zero, one = np.zeros((), dt), np.ones((), dt)
    mod = lax.rem(x, y)
    exact = lax.select(lax.compare(y, zero, "EQ"), x, lax.sub(x, mod))
    quotient = lax.div(exact, y)
    below = lax.bitwise_and(lax.compare(mod, zero, "NE"),
                            lax.compare(lax.sign(y), lax.sign(mod), "NE"))
    quotient = lax.select(below, lax.sub(quotient, one), quotient)
    return bind("round-nearest-afz", [quotient])


def _nonzero_divisor(y):
    """An integer divisor with zeros replaced by one: jax.numpy's `%` and fmod give 0 for
    x % 0 (XLA's remainder alone would give x)."""
    if dtype_of(y).kind not in "iu":
        return y
    one = np.ones((), dtype_of(y))
    zero = np.zeros((), dtype_of(y))
    return lax.select(lax.compare(y, zero, "EQ"), lax.broadcast_in_dim(one, shape_of(y), []),
                      y)


def remainder(x, y):
    """numpy's `%`: the result has the sign of the divisor; x % 0 is 0 for integers."""
    x, y = prepare(x, y)
    y = _nonzero_divisor(y)
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
    """C's fmod: the result has the sign of x; x fmod 0 is 0 for integers (as jax.numpy)."""
    x, y = prepare(x, y)
    return wrap(lax.rem(x, _nonzero_divisor(y)))


def divmod(x, y):  # noqa: A001 - numpy's name
    """(x // y, x % y), as numpy.divmod."""
    return floor_divide(x, y), remainder(x, y)


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


def _logaddexp(x, y):
    # As jax.numpy: max + log1p(exp(min - max)) (= -|x - y|); where x - y is NaN (a NaN, or
    # infinities of one sign) x + y gives the answer (inf + inf = inf, not NaN). Written
    # with min and max rather than abs so the gradient at x == y is JAX's (1/2 to each: max
    # and min split ties, while abs'(0) = 1 would give 0 to x).
    delta = lax.sub(x, y)
    high, low = lax.max(x, y), lax.min(x, y)
    spread = lax.log1p(lax.exp(lax.sub(low, high)))
    return lax.select(lax.compare(delta, delta, "NE"), lax.add(x, y), lax.add(high, spread))


def logaddexp(x, y):
    """log(exp(x) + exp(y)) without overflow."""
    x, y = prepare(x, y, dtype=_float_type(x, y))
    return wrap(_widened(_logaddexp, x, y))


def _largest_finite(dt: np.dtype) -> float:
    if dtypes.from_numpy(dt) is dtypes.DType.BF16:
        import ml_dtypes   # the only source of a bf16 dtype, so present when one is used
        return float(ml_dtypes.finfo(dt).max)
    return float(np.finfo(dt).max)


def nan_to_num(x, copy: bool = True, nan: float = 0.0, posinf: Optional[float] = None,
               neginf: Optional[float] = None):
    """NaN -> `nan`, +inf -> `posinf`, -inf -> `neginf`; infinities default to the largest
    finite values of x's dtype (numpy's and jax.numpy's signature and defaults)."""
    del copy  # arrays are immutable: there is never a copy to avoid
    dt = dtype_of(x)
    if not dtypes.from_numpy(dt).is_float:
        return x
    big = _largest_finite(dt)
    posinf = big if posinf is None else posinf
    neginf = -big if neginf is None else neginf
    out = where(isnan(x), np.asarray(nan, dt), x)
    out = where(lax.compare(x, np.asarray(np.inf, dt), "EQ"), np.asarray(posinf, dt), out)
    return where(lax.compare(x, np.asarray(-np.inf, dt), "EQ"), np.asarray(neginf, dt), out)
