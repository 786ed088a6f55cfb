"""NaN-ignoring reductions, counts, weighted averages, covariance, interpolation and
bincount with numpy's names and JAX's signatures, composed of existing reductions."""
from __future__ import annotations

from typing import Optional

import numpy as np

from flowjit import lax
from flowjit.config import canonicalize_dtype
from flowjit.numpy._promote import (broadcast_to, dtype_of, inexact_dtype, promote,
                                    shape_of, wrap)
from flowjit.numpy.array_ops import diag
from flowjit.numpy.reductions import (Axis, all as _all, max as _max, mean as _mean,
                                      min as _min, normalize_axes, prod as _prod,
                                      sum as _sum)
from flowjit.numpy.shape_ops import concatenate, ravel, reshape, squeeze, transpose
from flowjit.source_info import at_user_line
from flowjit.ir.errors import ShapeError


def _unsupported(name: str, **given) -> None:
    for key, value in given.items():
        if value is not None:
            raise NotImplementedError(f"{name}: {key}= is not supported")


def _is_nan(a):
    return lax.ne(a, a)


def _without_nan(a, value):
    """a with NaNs replaced by `value` (integer arrays have none)."""
    if dtype_of(a).kind != "f":
        return a
    fill = lax.broadcast_in_dim(np.asarray(value, dtype_of(a)), tuple(shape_of(a)), [])
    return lax.select(_is_nan(a), fill, a)


def nansum(a, axis: Axis = None, dtype=None, out=None, keepdims: bool = False, initial=None,
           where=None):
    """Sum treating NaN as 0."""
    _unsupported("nansum", out=out, initial=initial, where=where)
    (a,) = promote(a)
    return _sum(_without_nan(a, 0), axis, dtype, keepdims)


def nanprod(a, axis: Axis = None, dtype=None, out=None, keepdims: bool = False, initial=None,
            where=None):
    """Product treating NaN as 1."""
    _unsupported("nanprod", out=out, initial=initial, where=where)
    (a,) = promote(a)
    return _prod(_without_nan(a, 1), axis, dtype, keepdims)


def _nan_extreme(a, axis, keepdims, reduce, ignored: float):
    (a,) = promote(a)
    if dtype_of(a).kind != "f":
        return reduce(a, axis, keepdims)
    value = reduce(_without_nan(a, ignored), axis, keepdims)
    all_nan = _all(_is_nan(a), axis, keepdims)   # such a slice gives NaN, as numpy
    nan = lax.broadcast_in_dim(np.asarray(np.nan, dtype_of(a)), tuple(shape_of(value)), [])
    return wrap(lax.select(all_nan, nan, value))


def nanmax(a, axis: Axis = None, out=None, keepdims: bool = False, initial=None, where=None):
    """Maximum ignoring NaNs (NaN where a slice is all NaN)."""
    _unsupported("nanmax", out=out, initial=initial, where=where)
    return _nan_extreme(a, axis, keepdims, _max, -np.inf)


def nanmin(a, axis: Axis = None, out=None, keepdims: bool = False, initial=None, where=None):
    """Minimum ignoring NaNs (NaN where a slice is all NaN)."""
    _unsupported("nanmin", out=out, initial=initial, where=where)
    return _nan_extreme(a, axis, keepdims, _min, np.inf)


def _nan_count(a, axis, keepdims, dtype):
    present = lax.convert_element_type(lax.bitwise_not(_is_nan(a)), dtype)
    return _sum(present, axis, dtype, keepdims)


def nanmean(a, axis: Axis = None, dtype=None, out=None, keepdims: bool = False, where=None):
    """Mean of the non-NaN values (NaN where there are none)."""
    _unsupported("nanmean", out=out, where=where)
    dt = canonicalize_dtype(dtype) if dtype is not None else inexact_dtype(a)
    (a,) = promote(a, dtype=dt)
    return wrap(lax.div(nansum(a, axis, dt, keepdims=keepdims),
                        _nan_count(a, axis, keepdims, dt)))


def nanvar(a, axis: Axis = None, dtype=None, out=None, ddof: int = 0, keepdims: bool = False,
           where=None, mean=None):
    """Variance of the non-NaN values, dividing by (count - ddof)."""
    _unsupported("nanvar", out=out, where=where, mean=mean)
    dt = canonicalize_dtype(dtype) if dtype is not None else inexact_dtype(a)
    (a,) = promote(a, dtype=dt)
    shape = tuple(shape_of(a))
    centre = broadcast_to(nanmean(a, axis, dt, keepdims=True), shape)
    centered = _without_nan(lax.sub(a, centre), 0)
    squares = _sum(lax.mul(centered, centered), axis, dt, keepdims)
    count = lax.sub(_nan_count(a, axis, keepdims, dt), np.asarray(ddof, dt))
    count = lax.max(count, np.asarray(0, dt))   # numpy: inf or NaN when nothing is left
    return wrap(lax.div(squares, count))


def nanstd(a, axis: Axis = None, dtype=None, out=None, ddof: int = 0, keepdims: bool = False,
           where=None, mean=None):
    """Standard deviation of the non-NaN values."""
    return wrap(lax.sqrt(nanvar(a, axis, dtype, out, ddof, keepdims, where, mean)))


def count_nonzero(a, axis: Axis = None, keepdims: bool = False):
    """How many elements are not zero (int32 unless x64 is enabled, as JAX)."""
    (a,) = promote(a)
    zero = lax.broadcast_in_dim(np.zeros((), dtype_of(a)), tuple(shape_of(a)), [])
    index = canonicalize_dtype(np.int64)
    return _sum(lax.convert_element_type(lax.ne(a, zero), index), axis, index, keepdims)


def average(a, axis: Axis = None, weights=None, returned: bool = False,
            keepdims: bool = False):
    """Weighted mean (weights 1-D along a single axis, or a's shape); with `returned`, also
    the sum of the weights."""
    if weights is None:
        avg = _mean(a, axis, keepdims=keepdims)
        shape = tuple(shape_of(a))
        count = int(np.prod([shape[d] for d in normalize_axes(axis, len(shape))]))
        return (avg, wrap(broadcast_to(np.asarray(count, dtype_of(avg)),
                                       tuple(shape_of(avg))))) if returned else avg
    dt = inexact_dtype(a, weights)
    a, weights = promote(a, weights, dtype=dt)
    a_shape, w_shape = tuple(shape_of(a)), tuple(shape_of(weights))
    if a_shape != w_shape:
        if axis is None or not isinstance(axis, (int, np.integer)) or len(w_shape) != 1:
            raise ShapeError(at_user_line(f"average: weights of shape {w_shape} differ from "
                                          f"the array's {a_shape}; give 1-D weights and an "
                                          f"axis"))
        (ax,) = normalize_axes(axis, len(a_shape))
        if w_shape[0] != a_shape[ax]:
            raise ShapeError(at_user_line(f"average: {w_shape[0]} weights for axis {ax} of "
                                          f"size {a_shape[ax]}"))
        weights = lax.broadcast_in_dim(weights, a_shape, [ax])
    total = _sum(weights, axis, keepdims=keepdims)
    avg = wrap(lax.div(_sum(lax.mul(a, weights), axis, keepdims=keepdims), total))
    return (avg, wrap(total)) if returned else avg


def cov(m, y=None, rowvar: bool = True, bias: bool = False, ddof: Optional[int] = None,
        fweights=None, aweights=None, dtype=None):
    """Covariance matrix of the variables in m's rows (columns when rowvar=False), with
    numpy's frequency and analytic weights."""
    dt = canonicalize_dtype(dtype) if dtype is not None else inexact_dtype(m)
    (x,) = promote(m, dtype=dt)
    x = reshape(x, (1, -1)) if len(shape_of(x)) < 2 else x
    if len(shape_of(x)) != 2:
        raise ShapeError(at_user_line(f"cov: m must have at most 2 dims, got shape "
                                      f"{tuple(shape_of(m))}"))
    if not rowvar and shape_of(x)[0] != 1:
        x = transpose(x)
    if y is not None:
        (other,) = promote(y, dtype=dt)
        other = reshape(other, (1, -1)) if len(shape_of(other)) < 2 else other
        if not rowvar and shape_of(other)[0] != 1:
            other = transpose(other)
        x = concatenate([x, other], axis=0)
    if ddof is None:
        ddof = 0 if bias else 1
    observations = shape_of(x)[1]
    weights = None
    if fweights is not None:
        weights = promote(fweights, dtype=dt)[0]
    if aweights is not None:
        aw = promote(aweights, dtype=dt)[0]
        weights = aw if weights is None else lax.mul(weights, aw)
    if weights is None:
        mean_x = _mean(x, axis=1, keepdims=True)
        factor = np.asarray(observations - ddof, dt)
        centered = lax.sub(x, broadcast_to(mean_x, tuple(shape_of(x))))
        weighted = centered
    else:
        total = _sum(weights)
        mean_x = lax.div(_sum(lax.mul(x, broadcast_to(weights, tuple(shape_of(x)))), 1,
                              keepdims=True), total)
        if aweights is None:
            factor = lax.sub(total, np.asarray(ddof, dt))
        else:
            aw = promote(aweights, dtype=dt)[0]
            factor = lax.sub(total, lax.div(lax.mul(np.asarray(ddof, dt),
                                                    _sum(lax.mul(weights, aw))), total))
        centered = lax.sub(x, broadcast_to(mean_x, tuple(shape_of(x))))
        weighted = lax.mul(centered, broadcast_to(weights, tuple(shape_of(x))))
    product = lax.dot_general(centered, weighted, (((1,), (1,)), ((), ())))
    return squeeze(wrap(lax.div(product, broadcast_to(factor, tuple(shape_of(product))))))


def corrcoef(x, y=None, rowvar: bool = True, dtype=None):
    """Pearson correlation coefficients (cov normalized by the standard deviations), clipped
    to [-1, 1]."""
    c = cov(x, y, rowvar, dtype=dtype)
    if len(shape_of(c)) == 0:
        return wrap(lax.div(c, c))
    d = diag(c)
    scale = lax.sqrt(d)
    rows = lax.broadcast_in_dim(scale, tuple(shape_of(c)), [0])
    cols = lax.broadcast_in_dim(scale, tuple(shape_of(c)), [1])
    out = lax.div(lax.div(c, rows), cols)
    one = np.asarray(1, dtype_of(out))
    return wrap(lax.clamp(-one, out, one))


def interp(x, xp, fp, left=None, right=None, period=None):
    """Piecewise-linear interpolation of (xp, fp) at x (xp increasing); fp[0] / fp[-1] (or
    left / right) outside. Each x's interval is found by counting the xp at or below it
    (one compare per pair: no sort or search is needed for the sizes this is used at)."""
    if isinstance(left, str) or isinstance(right, str):
        raise NotImplementedError("interp: left/right as strings are not supported")
    if period is not None:   # it needs xp sorted after the reduction: a sort
        raise NotImplementedError("interp: period= is not supported yet")
    dt = inexact_dtype(x, xp, fp)
    x, xp, fp = promote(x, xp, fp, dtype=dt)
    if len(shape_of(xp)) != 1 or shape_of(xp) != shape_of(fp):
        raise ShapeError(at_user_line(f"interp: xp and fp must be 1-D of one length, got "
                                      f"{tuple(shape_of(xp))} and {tuple(shape_of(fp))}"))
    n = shape_of(xp)[0]
    x_shape = tuple(shape_of(x))
    flat = ravel(x)
    count = shape_of(flat)[0]
    below = lax.le(lax.broadcast_in_dim(xp, (count, n), [1]),
                   lax.broadcast_in_dim(flat, (count, n), [0]))
    index_type = np.int32
    k = _sum(lax.convert_element_type(below, index_type), 1, index_type)   # 0..n
    i = lax.clamp(np.int32(1), k, np.int32(max(n - 1, 1)))                # interval [i-1, i]
    lo = lax.sub(i, np.int32(1))
    x0, x1 = _take_1d(xp, lo), _take_1d(xp, i)
    f0, f1 = _take_1d(fp, lo), _take_1d(fp, i)
    dx = lax.sub(x1, x0)
    t = lax.div(lax.sub(flat, x0), dx)
    value = lax.add(f0, lax.mul(t, lax.sub(f1, f0)))
    value = lax.select(lax.eq(dx, np.zeros((), dt)), f0, value)
    lo_value = _first(fp) if left is None else np.asarray(left, dt)
    hi_value = _last(fp) if right is None else np.asarray(right, dt)
    full = lambda v: lax.broadcast_in_dim(reshape(v, ()), (count,), [])  # noqa: E731
    value = lax.select(lax.lt(flat, full(_first(xp))), full(lo_value), value)
    value = lax.select(lax.gt(flat, full(_last(xp))), full(hi_value), value)
    return reshape(wrap(value), x_shape)


def _first(v):
    return lax.slice(v, [0], [1])


def _last(v):
    n = shape_of(v)[0]
    return lax.slice(v, [n - 1], [n])


def _take_1d(v, positions):
    """v[positions] for in-range int positions (one gather)."""
    numbers = lax.GatherDimensionNumbers(offset_dims=(), collapsed_slice_dims=(0,),
                                         start_index_map=(0,))
    count = shape_of(positions)[0]
    return lax.gather(v, lax.reshape(positions, (count, 1)), numbers, (1,),
                      mode="promise_in_bounds")


def bincount(x, weights=None, minlength: int = 0, *, length: Optional[int] = None,
             out_sharding=None):
    """Counts (or summed weights) of each non-negative integer in x; `length` (needed
    under jit) fixes the output size, values at or past it are dropped, negative ones too."""
    del out_sharding
    if dtype_of(x).kind not in "iub":
        raise ShapeError(at_user_line(f"bincount: x must be integers, got {dtype_of(x)}"))
    if length is None:
        from flowjit.core import Tracer
        if isinstance(x, Tracer):
            raise ValueError("bincount: give length= under jit (the output size must be "
                             "static)")
        values = np.asarray(x)
        length = max(minlength, int(values.max()) + 1 if values.size else 0)
    length = max(int(length), 0)
    flat = ravel(x)
    count = shape_of(flat)[0]
    if weights is None:
        index = canonicalize_dtype(np.int64)
        updates = lax.broadcast_in_dim(np.ones((), index), (count,), [])
        dt = index
    else:
        (w,) = promote(weights)
        updates = ravel(w)
        dt = dtype_of(updates)
    zeros = lax.broadcast_in_dim(np.zeros((), dt), (length,), [])
    numbers = lax.ScatterDimensionNumbers(update_window_dims=(), inserted_window_dims=(0,),
                                          scatter_dims_to_operand_dims=(0,))
    positions = lax.reshape(lax.convert_element_type(flat, np.int32), (count, 1))
    return wrap(lax.scatter_add(zeros, positions, updates, numbers, mode="drop"))
