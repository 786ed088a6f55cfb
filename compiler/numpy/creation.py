"""Array creation: zeros, ones, full, arange, linspace, eye, asarray, ..."""
from __future__ import annotations

from typing import Any, Optional

import numpy as np

from flowjit import lax
from flowjit.core import Tracer, as_array, current_trace
from flowjit.numpy._promote import asarray_or_tracer, dtype_of, shape_of, wrap


def _shape(shape) -> tuple[int, ...]:
    return (int(shape),) if isinstance(shape, (int, np.integer)) else tuple(int(s) for s in shape)


def full(shape, fill_value, dtype=None):
    """An array of `fill_value`; inside jit a broadcast of one scalar, not a big literal."""
    shape = _shape(shape)
    dtype = np.dtype(dtype) if dtype is not None else np.asarray(fill_value).dtype
    if isinstance(fill_value, Tracer):
        return wrap(lax.broadcast_in_dim(lax.convert_element_type(fill_value, dtype), shape,
                                         list(range(len(shape) - fill_value.ndim, len(shape)))))
    if current_trace() is not None:
        return lax.broadcast_in_dim(np.asarray(fill_value, dtype), shape, [])
    return as_array(np.full(shape, fill_value, dtype))


def zeros(shape, dtype=float):
    return full(shape, 0, dtype)


def ones(shape, dtype=float):
    return full(shape, 1, dtype)


def empty(shape, dtype=float):
    return zeros(shape, dtype)


def _like(a, dtype, shape):
    return (np.dtype(dtype) if dtype is not None else dtype_of(a),
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


def arange(start, stop=None, step=None, dtype=None):
    """numpy.arange with static bounds; inside jit an iota (no literal)."""
    values = np.arange(start, stop, step, dtype=dtype) if step is not None else (
        np.arange(start, stop, dtype=dtype) if stop is not None else np.arange(start,
                                                                               dtype=dtype))
    if current_trace() is not None and values.size > 16 and step in (None, 1) and (
            stop is None or start == 0):
        return lax.iota(values.dtype, values.shape, 0)
    return as_array(values)


def linspace(start, stop, num: int = 50, endpoint: bool = True, dtype=None):
    return as_array(np.linspace(start, stop, num, endpoint=endpoint, dtype=dtype))


def eye(N: int, M: Optional[int] = None, k: int = 0, dtype=float):
    return as_array(np.eye(N, M, k, dtype=dtype))


def identity(n: int, dtype=float):
    return eye(n, dtype=dtype)


def asarray(a: Any, dtype=None):
    value = asarray_or_tracer(a, dtype)
    return wrap(value)


def array(a: Any, dtype=None, copy: bool = True):
    value = asarray_or_tracer(a, dtype)
    return wrap(value if isinstance(value, Tracer) or not copy else np.array(value))
