"""Inverse trigonometric and hyperbolic functions, hypot, copysign, isclose/allclose, composed
of existing primitives (atan2, sqrt, log1p, ...) in the numerically careful forms JAX uses,
so their gradients come from the primitives'."""
from __future__ import annotations

import math

import numpy as np

from flowjit import lax
from flowjit.numpy._promote import dtype_of, inexact_dtype, prepare, promote, shape_of, wrap
from flowjit.numpy.elementwise import _widened
from flowjit.numpy.reductions import all as _all


def _like(value, x):
    return lax.broadcast_in_dim(np.asarray(value, dtype_of(x)), tuple(shape_of(x)), [])


def _float_function(compute, doc: str, name: str):
    def op(x, /):
        (x,) = promote(x, dtype=inexact_dtype(x))
        return wrap(_widened(compute, x))
    op.__doc__ = doc
    op.__name__ = name
    return op


def _one_minus_square_root(x):
    return lax.sqrt(lax.mul(lax.sub(_like(1, x), x), lax.add(_like(1, x), x)))


def _arcsin(x):
    # 2 atan2(x, 1 + sqrt(1 - x^2)): accurate near +-1, where asin(x) = atan2(x, sqrt(..))
    # would divide by a cancelled difference.
    return lax.mul(_like(2, x), lax.atan2(x, lax.add(_like(1, x), _one_minus_square_root(x))))


def _arccos(x):
    # 2 atan2(sqrt(1 - x^2), 1 + x), and pi at x = -1 (where that is atan2(0, 0)).
    value = lax.mul(_like(2, x), lax.atan2(_one_minus_square_root(x), lax.add(_like(1, x), x)))
    return lax.select(lax.eq(x, _like(-1, x)), _like(math.pi, x), value)


def _arctan(x):
    return lax.atan2(x, _like(1, x))


def _large(x):
    """|x| beyond which x^2 + 1 == x^2 in x's type (there asinh, acosh = log(2|x|))."""
    return _like(math.sqrt(np.finfo(dtype_of(x)).max) / 2, x)


def _arcsinh(x):
    # sign(x) * log1p(|x| + x^2 / (1 + sqrt(1 + x^2))): no cancellation for small or
    # negative x; log(2|x|) once x^2 would overflow.
    a = lax.abs(x)
    big = lax.gt(a, _large(x))
    small_a = lax.select(big, _like(1, x), a)
    square = lax.mul(small_a, small_a)
    inner = lax.add(small_a, lax.div(square, lax.add(_like(1, x),
                                                     lax.sqrt(lax.add(_like(1, x), square)))))
    value = lax.select(big, lax.add(lax.log(a), _like(math.log(2), x)), lax.log1p(inner))
    return lax.select(lax.lt(x, _like(0, x)), lax.neg(value), value)


def _arccosh(x):
    # log(x + sqrt(x + 1) sqrt(x - 1)); log(2x) for large x; NaN below 1 (from the sqrt).
    big = lax.gt(x, _large(x))
    safe = lax.select(big, _like(2, x), x)
    root = lax.mul(lax.sqrt(lax.add(safe, _like(1, x))), lax.sqrt(lax.sub(safe, _like(1, x))))
    value = lax.log(lax.add(safe, root))
    return lax.select(big, lax.add(lax.log(x), _like(math.log(2), x)), value)


def _arctanh(x):
    # 0.5 * (log1p(x) - log1p(-x)) (XLA's form): accurate near 0, +-inf at +-1, NaN beyond.
    return lax.mul(_like(0.5, x), lax.sub(lax.log1p(x), lax.log1p(lax.neg(x))))


arcsin = _float_function(_arcsin, "Inverse sine, in [-pi/2, pi/2].", "arcsin")
arccos = _float_function(_arccos, "Inverse cosine, in [0, pi].", "arccos")
arctan = _float_function(_arctan, "Inverse tangent, in (-pi/2, pi/2).", "arctan")
arcsinh = _float_function(_arcsinh, "Inverse hyperbolic sine.", "arcsinh")
arccosh = _float_function(_arccosh, "Inverse hyperbolic cosine (NaN below 1).", "arccosh")
arctanh = _float_function(_arctanh, "Inverse hyperbolic tangent (NaN outside [-1, 1]).",
                          "arctanh")


def _float_pair(x1, x2):
    return prepare(x1, x2, dtype=inexact_dtype(x1, x2))


def hypot(x1, x2, /):
    """sqrt(x1^2 + x2^2) without overflow or underflow in the squares."""
    x, y = _float_pair(x1, x2)

    def compute(x, y):
        x, y = lax.abs(x), lax.abs(y)
        big, small = lax.max(x, y), lax.min(x, y)
        zero = lax.eq(big, _like(0, big))
        safe_big = lax.select(zero, _like(1, big), big)
        ratio = lax.div(small, safe_big)
        value = lax.mul(big, lax.sqrt(lax.add(_like(1, big), lax.mul(ratio, ratio))))
        infinite = lax.eq(big, _like(np.inf, big))   # hypot(inf, nan) is inf
        return lax.select(infinite, big, lax.select(zero, _like(0, big), value))
    return wrap(_widened(compute, x, y))


def _sign_bit(x):
    """True where x's sign bit is set (-0.0 and negative NaNs included)."""
    bits = {2: np.int16, 4: np.int32, 8: np.int64}[dtype_of(x).itemsize]
    as_int = lax.bitcast_convert_type(x, bits)
    return lax.lt(as_int, lax.broadcast_in_dim(np.zeros((), bits), tuple(shape_of(x)), []))


def copysign(x1, x2, /):
    """|x1| with the sign bit of x2."""
    x, y = _float_pair(x1, x2)
    flip = lax.ne(_sign_bit(x), _sign_bit(y))
    return wrap(lax.select(flip, lax.neg(x), x))


def isclose(a, b, rtol=1e-05, atol=1e-08, equal_nan: bool = False):
    """|a - b| <= atol + rtol * |b| elementwise; infinities are close only to themselves,
    NaNs to nothing (to each other with equal_nan)."""
    a, b = prepare(a, b)
    if dtype_of(a).kind in "biu":
        return wrap(lax.eq(a, b))
    finite = lax.bitwise_and(lax.is_finite(a), lax.is_finite(b))
    tolerance = lax.add(_like(atol, a), lax.mul(_like(rtol, a), lax.abs(b)))
    near = lax.le(lax.abs(lax.sub(a, b)), tolerance)
    out = lax.bitwise_or(lax.bitwise_and(finite, near), lax.eq(a, b))
    if equal_nan:
        both_nan = lax.bitwise_and(lax.ne(a, a), lax.ne(b, b))
        out = lax.bitwise_or(out, both_nan)
    return wrap(out)


def allclose(a, b, rtol=1e-05, atol=1e-08, equal_nan: bool = False):
    """Whether every element of a is close to b's (see isclose)."""
    return _all(isclose(a, b, rtol, atol, equal_nan))
