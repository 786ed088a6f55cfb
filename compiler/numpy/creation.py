"""Array creation with jax.numpy's signatures and dtype defaults: zeros, ones, full, arange,
linspace, eye, asarray, ...

Defaults follow JAX: float32 / int32 (float64 / int64 with x64 enabled, see flowjit.config),
and a dtype asked for is canonicalized the same way.
"""
from __future__ import annotations

from typing import Any, Optional

import numpy as np

from flowjit import lax
from flowjit.config import canonicalize_dtype, default_float
from flowjit.core import Tracer, as_array, current_trace
from flowjit.ir import dtypes
from flowjit.numpy._promote import asarray_or_tracer, dtype_of, result_type, shape_of, wrap


def _shape(shape) -> tuple[int, ...]:
    return (int(shape),) if isinstance(shape, (int, np.integer)) else tuple(int(s) for s in shape)


def _dtype(dtype, default) -> np.dtype:
    """A requested dtype, canonicalized; `default` when none is asked for."""
    return canonicalize_dtype(default if dtype is None else dtype)


def full(shape, fill_value, dtype=None):
    """An array of `fill_value` (dtype: `fill_value`'s, canonicalized); inside jit a
    broadcast of one scalar, not a big literal."""
    shape = _shape(shape)
    dtype = _dtype(dtype, dtype_of(fill_value))
    if isinstance(fill_value, Tracer):
        return wrap(lax.broadcast_in_dim(lax.convert_element_type(fill_value, dtype), shape,
                                         list(range(len(shape) - fill_value.ndim, len(shape)))))
    if current_trace() is not None:
        return lax.broadcast_in_dim(np.asarray(fill_value, dtype), shape, [])
    return as_array(np.full(shape, fill_value, dtype))


def zeros(shape, dtype=None):
    """An array of zeros (float32 by default; float64 with x64 enabled)."""
    return full(shape, 0, _dtype(dtype, default_float()))


def ones(shape, dtype=None):
    """An array of ones (float32 by default; float64 with x64 enabled)."""
    return full(shape, 1, _dtype(dtype, default_float()))


def empty(shape, dtype=None):
    """zeros(shape, dtype): flowjit arrays are never uninitialized."""
    return zeros(shape, dtype)


def _like(a, dtype, shape):
    return (_dtype(dtype, dtype_of(a)),
            _shape(shape) if shape is not None else tuple(shape_of(a)))


def zeros_like(a, dtype=None, shape=None):
    dt, sh = _like(a, dtype, shape)
    return full(sh, 0, dt)


def ones_like(a, dtype=None, shape=None):
    dt, sh = _like(a, dtype, shape)
    return full(sh, 1, dt)


def full_like(a, fill_value, dtype=None, shape=None):
    dt, sh = _like(a, dtype, shape)
    return full(sh, fill_value, dt)


def _concrete_scalar(value, name: str):
    if isinstance(value, Tracer):
        raise TypeError(f"arange: `{name}` must be a concrete number, not a traced value (the "
                        "length of the result must be known when tracing)")
    if value is not None and np.ndim(value) != 0:
        raise ValueError(f"arange: arguments must be scalars; got {name}={value}")
    return value


def arange(start, stop=None, step=None, dtype=None):
    """Evenly spaced values in [start, stop), computed as JAX does (start + step * iota);
    int32 for integer arguments, float32 if any is a float (64-bit with x64 enabled)."""
    for name, value in (("start", start), ("stop", stop), ("step", step)):
        _concrete_scalar(value, name)
    if dtype is None:
        dtype = result_type(*(v for v in (start, stop, step) if v is not None))
    dtype = canonicalize_dtype(dtype)
    if stop is None:
        start, stop = 0, start
    if step is None:
        size = max(0, int(np.ceil(stop - start)))
        values = lax.iota(dtype, size)
        return wrap(values if start == 0 else lax.add(np.asarray(start, dtype), values))
    working = dtype
    if dtypes.from_numpy(dtype).is_float and np.finfo(dtype).bits < 32:
        working = np.dtype(np.float32)
    size = max(0, int(np.ceil((stop - start) / step)))
    values = lax.add(np.asarray(start, working),
                     lax.mul(np.asarray(step, working), lax.iota(working, size)))
    return wrap(lax.convert_element_type(values, dtype))


def linspace(start, stop, num: int = 50, endpoint: bool = True, retstep: bool = False,
             dtype=None, axis: int = 0):
    """`num` evenly spaced values from start to stop, computed as JAX does
    (start * (1 - t) + stop * t), so that both ends are exact."""
    import flowjit.numpy as fnp
    num = int(num)
    if num < 0:
        raise ValueError(f"Number of samples, {num}, must be non-negative.")
    if dtype is None:
        dtype = result_type(start, stop)
        if not dtypes.from_numpy(dtype).is_float:
            dtype = default_float()
    dtype = canonicalize_dtype(dtype)
    work = dtype if dtypes.from_numpy(dtype).is_float else default_float()
    start, stop = fnp.asarray(start, work), fnp.asarray(stop, work)
    bounds = fnp.broadcast_shapes(tuple(shape_of(start)), tuple(shape_of(stop)))
    start, stop = fnp.broadcast_to(start, bounds), fnp.broadcast_to(stop, bounds)
    axis = len(bounds) + axis + 1 if axis < 0 else axis
    column = list(bounds)
    column.insert(axis, 1)
    div = num - 1 if endpoint else num
    if num > 1:
        delta = (stop - start) / np.asarray(div, work)
        iota_shape = [1] * len(column)
        iota_shape[axis] = div
        t = fnp.reshape(lax.iota(work, div), iota_shape) / np.asarray(div, work)
        out = (fnp.reshape(start, column) * (np.asarray(1, work) - t)
               + fnp.reshape(stop, column) * t)
        if endpoint:
            out = fnp.concatenate([out, fnp.reshape(stop, column)], axis=axis)
    elif num == 1:
        delta = fnp.full((), np.nan, work) if endpoint else stop - start
        out = fnp.reshape(start, column)
    else:
        delta = fnp.full((), np.nan, work)
        empty_shape = list(bounds)
        empty_shape.insert(axis, 0)
        out = zeros(empty_shape, work)
    if not dtypes.from_numpy(dtype).is_float:
        out = fnp.floor(out)
    out = wrap(lax.convert_element_type(out, dtype))
    return (out, delta) if retstep else out


def eye(N: int, M: Optional[int] = None, k: int = 0, dtype=None):
    """Ones on the k-th diagonal (float32 by default; float64 with x64 enabled)."""
    M = N if M is None else M
    dtype = _dtype(dtype, default_float())
    rows = lax.broadcasted_iota(np.int32, (int(N), int(M)), 0)
    cols = lax.broadcasted_iota(np.int32, (int(N), int(M)), 1)
    on_diagonal = lax.eq(lax.add(rows, np.int32(k)), cols)
    return wrap(lax.convert_element_type(on_diagonal, dtype))


def identity(n: int, dtype=None):
    """The n x n identity matrix (float32 by default; float64 with x64 enabled)."""
    return eye(n, dtype=dtype)


def asarray(a: Any, dtype=None, order: Optional[str] = None, *, copy: Optional[bool] = None):
    """`a` as an array (64-bit inputs become 32-bit unless x64 is enabled)."""
    return wrap(asarray_or_tracer(a, canonicalize_dtype(dtype) if dtype is not None else None))


def array(object: Any, dtype=None, *, copy: bool = True, order: str = "K",  # noqa: A002
          ndmin: int = 0):
    """A new array holding `object` (64-bit inputs become 32-bit unless x64 is enabled)."""
    value = asarray_or_tracer(object, canonicalize_dtype(dtype) if dtype is not None else None)
    if not isinstance(value, Tracer) and copy:
        value = np.array(value)
    if len(shape_of(value)) < ndmin:
        value = lax.reshape(value, (1,) * (ndmin - len(shape_of(value))) + tuple(shape_of(value)))
    return wrap(value)


__all__ = ["arange", "array", "asarray", "empty", "eye", "full", "full_like", "identity",
           "linspace", "ones", "ones_like", "zeros", "zeros_like"]
