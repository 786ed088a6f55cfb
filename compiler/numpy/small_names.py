"""Small numpy names that are one or two lines over existing ones (atleast_*d, degrees,
fliplr, fmax, hsplit, logspace, ptp, rot90, signbit, sinc, trapezoid, nanargmax, isin)."""
from __future__ import annotations

import math
from typing import Optional

import numpy as np

from flowjit import lax
from flowjit.numpy import elementwise as _ew
from flowjit.numpy._promote import (broadcast_arrays as _broadcast_arrays, dtype_of,
                                    inexact_dtype, prepare, promote, shape_of, wrap)
from flowjit.numpy.array_ops import split
from flowjit.numpy.inverse_trig import _sign_bit
from flowjit.numpy.reductions import (any as _any, argmax as _argmax, argmin as _argmin,
                                      max as _max, min as _min, normalize_axis, sum as _sum)
from flowjit.numpy.shape_ops import concatenate, flip, reshape, swapaxes


def _at_least(arys, rank: int):
    out = []
    for a in arys:
        (a,) = promote(a)
        shape = tuple(shape_of(a))
        if len(shape) < rank:
            shape = (1,) * (rank - len(shape)) + shape if rank <= 2 else shape
            a = lax.reshape(a, shape)
        out.append(wrap(a))
    return out[0] if len(out) == 1 else out


def atleast_1d(*arys):
    """Each argument with at least one dim."""
    return _at_least(arys, 1)


def atleast_2d(*arys):
    """Each argument with at least two dims (new ones in front)."""
    return _at_least(arys, 2)


def broadcast_arrays(*args):
    """The arguments broadcast to their common shape."""
    return [wrap(a) for a in _broadcast_arrays(*promote(*args))] if args else []


def _scaled(factor: float, name: str, doc: str):
    def op(x, /):
        (x,) = promote(x, dtype=inexact_dtype(x))
        return wrap(lax.mul(x, np.asarray(factor, dtype_of(x))))
    op.__name__, op.__doc__ = name, doc
    return op


deg2rad = _scaled(math.pi / 180, "deg2rad", "Degrees to radians.")
radians = _scaled(math.pi / 180, "radians", "Degrees to radians.")
rad2deg = _scaled(180 / math.pi, "rad2deg", "Radians to degrees.")
degrees = _scaled(180 / math.pi, "degrees", "Radians to degrees.")


def dstack(tup, dtype=None):
    """Arrays stacked along a third dim (1-D and 2-D ones grown to 3-D first)."""
    grown = []
    for a in tup:
        (a,) = promote(a) if dtype is None else promote(a, dtype=dtype)
        shape = tuple(shape_of(a))
        grown_shape = {0: (1, 1, 1), 1: (1,) + shape + (1,), 2: shape + (1,)}.get(len(shape))
        grown.append(a if grown_shape is None else lax.reshape(a, grown_shape))
    return concatenate(grown, axis=2)


def fliplr(m):
    """m reversed along dim 1."""
    return flip(m, 1)


def flipud(m):
    """m reversed along dim 0."""
    return flip(m, 0)


def _nan_ignoring(pick):
    def op(x1, x2):
        a, b = prepare(x1, x2)
        if dtype_of(a).kind != "f":
            return wrap(pick(a, b))
        a_nan, b_nan = lax.ne(a, a), lax.ne(b, b)
        return wrap(lax.select(a_nan, b, lax.select(b_nan, a, pick(a, b))))
    return op


fmax = _nan_ignoring(lax.max)
fmax.__name__, fmax.__doc__ = "fmax", "Elementwise maximum, ignoring a NaN on one side."
fmin = _nan_ignoring(lax.min)
fmin.__name__, fmin.__doc__ = "fmin", "Elementwise minimum, ignoring a NaN on one side."


def hsplit(ary, indices_or_sections):
    """split along dim 1 (dim 0 for 1-D arrays)."""
    return split(ary, indices_or_sections, 1 if len(shape_of(ary)) > 1 else 0)


def vsplit(ary, indices_or_sections):
    """split along dim 0."""
    return split(ary, indices_or_sections, 0)


def logspace(start, stop, num: int = 50, endpoint: bool = True, base=10.0, dtype=None,
             axis: int = 0):
    """base ** linspace(start, stop, num)."""
    from flowjit.numpy.creation import linspace
    exponents = linspace(start, stop, num, endpoint, dtype=inexact_dtype(start, stop, base),
                         axis=axis)
    out = _ew.power(np.asarray(base, dtype_of(exponents)), exponents)
    return out if dtype is None else out.astype(dtype)


def ptp(a, axis=None, out=None, keepdims: bool = False):
    """max - min over `axis`."""
    return _max(a, axis, keepdims) - _min(a, axis, keepdims)


def rot90(m, k: int = 1, axes: tuple = (0, 1)):
    """m rotated by 90 degrees k times in the plane of `axes` (from the first toward the
    second)."""
    ndim = len(shape_of(m))
    a0, a1 = (normalize_axis(a, ndim) for a in axes)
    if a0 == a1:
        raise ValueError("rot90: axes must be different")
    k %= 4
    if k == 0:
        return wrap(m)
    if k == 2:
        return flip(flip(m, a0), a1)
    if k == 1:
        return swapaxes(flip(m, a1), a0, a1)
    return flip(swapaxes(m, a0, a1), a1)


def signbit(x, /):
    """Whether x's sign bit is set (-0.0 included); x < 0 for integers."""
    (x,) = promote(x)
    if dtype_of(x).kind == "f":
        return wrap(_sign_bit(x))
    if dtype_of(x).kind == "u" or dtype_of(x).kind == "b":
        return wrap(lax.ne(x, x))
    return wrap(lax.lt(x, lax.broadcast_in_dim(np.zeros((), dtype_of(x)),
                                               tuple(shape_of(x)), [])))


def sinc(x, /):
    """sin(pi x) / (pi x), 1 at 0."""
    (x,) = promote(x, dtype=inexact_dtype(x))
    zero = lax.eq(x, lax.broadcast_in_dim(np.zeros((), dtype_of(x)), tuple(shape_of(x)), []))
    safe = lax.select(zero, lax.broadcast_in_dim(np.ones((), dtype_of(x)),
                                                 tuple(shape_of(x)), []), x)
    pi_x = lax.mul(safe, np.asarray(math.pi, dtype_of(x)))
    value = lax.div(lax.sin(pi_x), pi_x)
    return wrap(lax.select(zero, lax.broadcast_in_dim(np.ones((), dtype_of(x)),
                                                      tuple(shape_of(x)), []), value))


def trapezoid(y, x=None, dx=1.0, axis: int = -1):
    """Integral of y by the trapezoidal rule along `axis` (at points x, or spaced dx)."""
    (y,) = promote(y, dtype=inexact_dtype(y))
    axis = normalize_axis(axis, len(shape_of(y)))
    n = shape_of(y)[axis]

    def take(a, lo: int, hi: int):   # a[lo:hi] along axis
        dims = tuple(shape_of(a))
        return lax.slice(a, [lo if d == axis else 0 for d in range(len(dims))],
                         [hi if d == axis else size for d, size in enumerate(dims)])
    mids = lax.mul(lax.add(take(y, 1, n), take(y, 0, n - 1)), np.asarray(0.5, dtype_of(y)))
    if x is None:
        return _sum(mids, axis) * np.asarray(dx, dtype_of(y))
    (x,) = promote(x, dtype=dtype_of(y))
    if len(shape_of(x)) == 1:
        x = lax.broadcast_in_dim(x, tuple(shape_of(y)), [axis])
    steps = lax.sub(take(x, 1, n), take(x, 0, n - 1))
    return _sum(lax.mul(mids, steps), axis)


def _nan_arg(pick, fill: float, name: str):
    def op(a, axis: Optional[int] = None, out=None, keepdims: Optional[bool] = None):
        (a,) = promote(a)
        if dtype_of(a).kind != "f":
            return pick(a, axis, bool(keepdims))
        is_nan = lax.ne(a, a)
        filled = lax.select(is_nan, lax.broadcast_in_dim(np.asarray(fill, dtype_of(a)),
                                                         tuple(shape_of(a)), []), a)
        index = pick(filled, axis, bool(keepdims))
        all_nan = lax.bitwise_not(_any(lax.bitwise_not(is_nan), axis, bool(keepdims)))
        return wrap(lax.select(all_nan, lax.broadcast_in_dim(
            np.asarray(-1, dtype_of(index)), tuple(shape_of(index)), []), index))
    op.__name__ = name
    op.__doc__ = f"{name[3:]} ignoring NaNs (-1 where a slice is all NaN, as JAX)."
    return op


nanargmax = _nan_arg(_argmax, -np.inf, "nanargmax")
nanargmin = _nan_arg(_argmin, np.inf, "nanargmin")


def isin(element, test_elements, assume_unique: bool = False, invert: bool = False, *,
         method="auto"):
    """Whether each element equals one of test_elements (one compare per pair)."""
    element, tests = promote(element, test_elements)
    shape = tuple(shape_of(element))
    flat = reshape(element, (-1,))
    tests = reshape(tests, (-1,))
    n, m = shape_of(flat)[0], shape_of(tests)[0]
    equal = lax.eq(lax.broadcast_in_dim(flat, (n, m), [0]),
                   lax.broadcast_in_dim(tests, (n, m), [1]))
    found = _any(equal, axis=1)
    found = lax.bitwise_not(found) if invert else found
    return reshape(wrap(found), shape)

